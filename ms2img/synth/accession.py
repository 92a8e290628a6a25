"""One accession: its latent chemistry and assays, then what the LC-MS/MS run of its extract looks like.

Instrument and run effects, in the order they apply: per compound amount x response factor; ion suppression
(each feature's height divided by ``1 + co-eluting load / SUPPRESSION_HEIGHT``, the load being the
Gaussian-weighted sum of heights within ~0.05 min); injection batch effects unrelated to activity (m/z
calibration offset of a few ppm, RT shift and stretch, intensity scale, sensitivity drift along the batch, the
batch's own contaminants and system-ion level); per replicate injection factor, ppm offset and RT drift; per peak
m/z and intensity noise; peak-picking misses, a detection limit (heights below it are written as 0) and
occasional alignment splits. MS/MS (DDA): weak precursors often get none, fragments are dropped at random (weak
ones more often), chemical-noise peaks, unfragmented precursor left in the scan with its M+1/M+2 isotope peaks
above the precursor m/z (co-isolated by the quadrupole window), isotope peaks of intense fragments, and the
main ion in the spectra of adducts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ms2img.io.msdial_writer import AlignmentExport, Annotation, isotope_cells, msms_cells
from ms2img.synth.chemistry import CHEMOTYPES, FAMILIES, Latent, assays_from_latent, draw_latent
from ms2img.synth.library import MAX_FRAGMENTS
from ms2img.synth.world import BACKGROUND, CONTAMINANT, DOMINANT_RESPONSE, MATRIX, PROTON, World

HEIGHT_PER_MG = 1.0e5  # MS1 height of 1 mg/g at response factor 1
DETECTION_LIMIT = 2000.0  # heights below this are written as 0 (not detected)
SUPPRESSION_HEIGHT = 3.0e6  # co-eluting load that halves a feature's signal
SUPPRESSION_WIDTH = 0.05  # min, sd of the co-elution kernel
N_QC_EXTRAS = 15
BACKGROUND_SD = 0.5
C13_DELTA = 1.003355
BATCH_SIZE = 40  # accessions per injection batch (in accession order)
BATCH_CONTAMINANTS = 8  # contaminants active in one batch (of world's N_CONTAMINANTS)

# adduct label, m/z of the adduct from the main ion m/z, MS/MS transform ("fa": main ion + its fragments,
# "dimer": main ion dominant, "h2o": main fragments below the new precursor), probability, height ratio range
ADDUCTS = {
    "negative": {
        "main": "[M-H]-",
        "extra": [
            ("[M+FA-H]-", lambda mz: mz + 46.005479, "fa", 0.15, (0.03, 0.15)),
            ("[2M-H]-", lambda mz: 2 * mz + PROTON, "dimer", 0.06, (0.01, 0.06)),
            ("[M-H2O-H]-", lambda mz: mz - 18.010565, "h2o", 0.1, (0.02, 0.1)),
            ("[M+Na-2H]-", lambda mz: mz + 21.981945, "fa", 0.03, (0.01, 0.05)),
        ],
    },
    "positive": {
        "main": "[M+H]+",
        "extra": [
            ("[M+Na]+", lambda mz: mz + 21.981945, "fa", 0.15, (0.05, 0.3)),
            ("[M+NH4]+", lambda mz: mz + 17.026549, "fa", 0.06, (0.02, 0.1)),
            ("[2M+H]+", lambda mz: 2 * mz - PROTON, "dimer", 0.05, (0.01, 0.06)),
            ("[M+H-H2O]+", lambda mz: mz - 18.010565, "h2o", 0.12, (0.03, 0.2)),
        ],
    },
}


@dataclass
class Batch:
    """The injection batch an accession was run in: effects shared by its accessions, unrelated to activity."""

    index: int  # 0-based
    position: int  # accession's position in the batch (0-based)
    ppm: float  # m/z calibration offset
    rt_shift: float  # min
    rt_scale: float
    intensity: float  # multiplicative sensitivity of the batch
    drift: float  # relative sensitivity loss per position along the batch
    system: float  # level factor of system ions (matrix ions seen in blanks, contaminants)
    contaminants: np.ndarray  # world indices of the contaminants active in this batch


def batch_of(world: World, seed: int, i: int) -> Batch:
    """Batch effects of accession number ``i`` (1-based): batch ``(i - 1) // BATCH_SIZE``, drawn from the seed."""
    b, pos = divmod(int(i) - 1, BATCH_SIZE)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2, b]))
    cont = np.where(world.family == CONTAMINANT)[0]
    return Batch(
        index=b,
        position=pos,
        ppm=float(rng.normal(0, 3.0)),
        rt_shift=float(rng.normal(0, 0.08)),
        rt_scale=float(rng.normal(1.0, 0.006)),
        intensity=float(rng.lognormal(0, 0.25)),
        drift=float(rng.uniform(0.0, 0.006)),
        system=float(rng.lognormal(0, 0.5)),
        contaminants=np.sort(rng.choice(cont, size=min(BATCH_CONTAMINANTS, cont.size), replace=False)),
    )


@dataclass
class Accession:
    """One simulated accession: the export to write plus the chemistry behind it."""

    name: str
    export: AlignmentExport
    n_rows: int
    latent: Latent
    assays: dict[str, float]


def _gather(offsets: np.ndarray, comps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the fragments of ``comps`` and the position (feature index) each belongs to."""
    counts = offsets[comps + 1] - offsets[comps]
    owner = np.repeat(np.arange(comps.size), counts)
    starts = np.repeat(offsets[comps] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return starts + np.arange(counts.sum()), owner


def _amounts(world: World, latent: Latent, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Compounds present in the accession's extract and their amounts (mg/g-equivalents)."""
    w = world
    fam_idx = np.where(w.family >= 0)[0]
    fam_abund = latent.families[w.family[fam_idx]]
    take = (fam_abund > 0) & (rng.random(fam_idx.size) < w.prevalence[fam_idx])
    share = w.weight[fam_idx] / np.bincount(w.family[fam_idx], w.weight[fam_idx])[w.family[fam_idx]]
    fam_amount = fam_abund * share * 3.0 * rng.lognormal(0.0, 0.25, fam_idx.size)

    bg_idx = np.where(w.family == BACKGROUND)[0]
    bg_take = rng.random(bg_idx.size) < w.prevalence[bg_idx]
    bg_amount = np.exp(w.log_mu[bg_idx] + BACKGROUND_SD * rng.normal(0, 1.0, bg_idx.size))

    mx_idx = np.where(w.family == MATRIX)[0]
    mx_amount = np.exp(w.log_mu[mx_idx] + rng.normal(0, 0.6, mx_idx.size))

    comps = np.concatenate([fam_idx[take], bg_idx[bg_take], w.minor[latent.minor > 0], mx_idx])
    amount = np.concatenate([fam_amount[take], bg_amount[bg_take], latent.minor[latent.minor > 0], mx_amount])
    # the chemotype's dominant compound: its dominant amount on top of whatever it has already
    dom = w.dominant[latent.chemotype]
    extra = latent.dominant
    if CHEMOTYPES[latent.chemotype][0] not in FAMILIES:  # a lipid-rich extract: a matrix lipid dominates
        extra *= DOMINANT_RESPONSE * rng.uniform(0.7, 1.4)
    hit = np.where(comps == dom)[0]
    if hit.size:
        amount[hit[0]] += extra
    else:
        comps = np.append(comps, dom)
        amount = np.append(amount, extra)
    return comps, amount


def _suppression(rt: np.ndarray, height: np.ndarray) -> np.ndarray:
    """Ion suppression factor per feature from the co-eluting load (all features, itself included).

    The load is the height-weighted RT histogram (0.01 min bins) smoothed with a Gaussian of
    SUPPRESSION_WIDTH, read at each feature's bin: linear in the number of features.
    """
    step = 0.01
    pos = np.clip(np.round(rt / step).astype(np.int64), 0, None)
    hist = np.bincount(pos, height, minlength=int(pos.max()) + 1)
    half = int(4 * SUPPRESSION_WIDTH / step)
    x = np.arange(-half, half + 1) * step / SUPPRESSION_WIDTH
    load = np.convolve(hist, np.exp(-0.5 * x * x), mode="same")
    return 1.0 / (1.0 + load[pos] / SUPPRESSION_HEIGHT)


def simulate_accession(
    world: World, name: str, rng: np.random.Generator, batch: Batch, replicates: int = 3
) -> Accession:
    """One accession: latent chemistry, assays, and its MS-DIAL alignment export."""
    latent = draw_latent(rng)
    assays = assays_from_latent(latent, rng)
    w = world
    n_rep = replicates
    n_samp = n_rep + 2  # replicates, blank, QC
    blank_col, qc_col = n_rep, n_rep + 1

    comps, amount = _amounts(w, latent, rng)
    true_height = amount * w.response[comps] * HEIGHT_PER_MG

    # features: (component, ion m/z, rt, true height, adduct label, parent feature, msms mode, kind)
    f_comp, f_mz, f_rt, f_h = list(comps), list(w.ion_mz[comps]), list(w.rt[comps]), list(true_height)
    main_label = ADDUCTS[w.polarity]["main"]
    f_adduct = [main_label] * comps.size
    f_parent = [-1] * comps.size
    f_mode = ["main"] * comps.size
    f_kind = ["sample"] * comps.size
    non_matrix = np.where(w.family[comps] != MATRIX)[0]
    for label, to_mz, mode, prob, (lo, hi) in ADDUCTS[w.polarity]["extra"]:
        pick = non_matrix[rng.random(non_matrix.size) < prob]
        ratios = rng.uniform(lo, hi, pick.size)
        for p, ratio in zip(pick.tolist(), ratios.tolist(), strict=True):
            mz = to_mz(f_mz[p])
            if not 60 < mz < 1700:
                continue
            f_comp.append(comps[p])
            f_mz.append(mz)
            f_rt.append(f_rt[p] + rng.normal(0, 0.002))
            f_h.append(f_h[p] * ratio)
            f_adduct.append(label)
            f_parent.append(p)
            f_mode.append(mode)
            f_kind.append("sample")
    for c in batch.contaminants.tolist():
        f_comp.append(c)
        f_mz.append(w.ion_mz[c])
        f_rt.append(w.rt[c])
        f_h.append(float(np.exp(w.log_mu[c]) * 3e4 / 0.6 * batch.system))
        f_adduct.append(main_label)
        f_parent.append(-1)
        f_mode.append("main")
        f_kind.append("contaminant")
    bg_idx = np.where(w.family == BACKGROUND)[0]
    absent_bg = np.setdiff1d(bg_idx, comps)
    common = absent_bg[w.prevalence[absent_bg] > 0.35]
    for c in rng.choice(common, size=min(N_QC_EXTRAS, common.size), replace=False).tolist() if common.size else []:
        f_comp.append(c)
        f_mz.append(w.ion_mz[c])
        f_rt.append(w.rt[c])
        f_h.append(float(np.exp(w.log_mu[c] + rng.normal(0, 0.5)) * w.response[c] * HEIGHT_PER_MG * 0.5))
        f_adduct.append(main_label)
        f_parent.append(-1)
        f_mode.append("main")
        f_kind.append("qc")

    n = len(f_comp)
    f_comp = np.asarray(f_comp)
    f_mz = np.asarray(f_mz, dtype=float)
    f_rt = np.asarray(f_rt, dtype=float)
    f_h = np.asarray(f_h, dtype=float)
    kind = np.asarray(f_kind)
    is_sample, is_cont, is_qc = kind == "sample", kind == "contaminant", kind == "qc"
    fam_f = w.family[f_comp]
    is_matrix = is_sample & (fam_f == MATRIX)
    system = is_matrix & (w.in_blank[f_comp] >= 0.5)
    f_h = np.where(system, f_h * batch.system, f_h)
    f_h = f_h * np.where(is_sample, _suppression(f_rt, f_h * is_sample), 1.0)

    # ---- heights per sample column
    sens = batch.intensity * (1.0 - batch.drift * batch.position)
    inj = sens * rng.lognormal(0, 0.08, n_samp)
    heights = np.zeros((n, n_samp))
    heights[:, :n_rep] = (f_h * is_sample)[:, None] * inj[:n_rep] * rng.lognormal(0, 0.15, (n, n_rep))
    heights[:, qc_col] = f_h * is_sample * rng.uniform(0.3, 0.7) * inj[qc_col] * rng.lognormal(0, 0.15, n)
    heights[is_qc, qc_col] = f_h[is_qc] * sens
    blank_level = (f_h * is_cont + f_h * is_matrix * w.in_blank[f_comp]) * sens
    heights[:, blank_col] = blank_level * rng.lognormal(0, 0.2, n)
    heights[is_cont, :n_rep] = blank_level[is_cont, None] * rng.uniform(0.5, 1.5, (is_cont.sum(), n_rep))
    heights[is_cont, qc_col] = blank_level[is_cont] * rng.uniform(0.5, 1.5, is_cont.sum())
    top = np.argsort(-heights[:, 0])[:5]  # carry-over of the most intense sample features into the blank
    heights[top, blank_col] += heights[top, 0] * 0.01
    heights[rng.random((n, n_samp)) < 0.02] = 0.0  # peak-picking misses
    heights[heights < DETECTION_LIMIT] = 0.0
    heights = np.round(heights)

    # ---- occasional alignment split: part of the samples end up in a second row
    detected = heights > 0
    split = np.where((detected.sum(1) >= 2) & (rng.random(n) < 0.01))[0]
    if split.size:
        extra = heights[split].copy()
        for k, row in enumerate(split.tolist()):
            cols = np.where(detected[row])[0]
            moved = rng.choice(cols, size=rng.integers(1, cols.size), replace=False)
            extra[k, np.setdiff1d(np.arange(n_samp), moved)] = 0
            heights[row, moved] = 0
        heights = np.vstack([heights, extra])
        f_comp = np.concatenate([f_comp, f_comp[split]])
        f_mz = np.concatenate([f_mz, f_mz[split]])
        f_rt = np.concatenate([f_rt, f_rt[split] + rng.normal(0, 0.05, split.size)])
        f_adduct += [f_adduct[i] for i in split]
        f_parent += [f_parent[i] for i in split]
        f_mode += [f_mode[i] for i in split]
        kind = np.concatenate([kind, kind[split]])
        n = len(f_comp)
    detected = heights > 0

    # ---- observed m/z and RT: batch calibration + per-replicate offsets + per-peak noise, averaged
    ppm_s = batch.ppm + rng.normal(0, 1.5, n_samp)
    rt_shift = batch.rt_shift + rng.normal(0, 0.02, n_samp)
    rt_scale = batch.rt_scale + rng.normal(0, 0.002, n_samp)
    mz_obs = f_mz[:, None] * (1 + (ppm_s + rng.normal(0, 3.0, (n, n_samp))) * 1e-6)
    rt_obs = f_rt[:, None] * rt_scale + rt_shift + rng.normal(0, 0.01, (n, n_samp))
    cnt = np.maximum(detected.sum(1), 1)
    avg_mz = (mz_obs * detected).sum(1) / cnt
    avg_rt = np.clip((rt_obs * detected).sum(1) / cnt, 0.05, None)
    ref = np.argmax(heights, axis=1)
    ref_h = heights[np.arange(n), ref]

    fmz, fabs, owner = _msms(w, rng, f_comp, f_mz, np.asarray(f_mode), ref_h, avg_mz, ppm_s[ref], n)
    bounds = np.searchsorted(owner, np.arange(n + 1))

    # ---- rows in m/z order, annotation, text cells
    keep = np.where(heights.max(1) > 0)[0]
    order_rows = keep[np.argsort(avg_mz[keep], kind="stable")]
    row_id = {int(f): i for i, f in enumerate(order_rows.tolist())}
    annotate_draw = rng.random(n)
    sn_noise = rng.lognormal(np.log(250), 0.3, n)
    score_draw = rng.uniform([75, 80, 0.7, 0.75, 60], [95, 99, 0.95, 0.98, 100], (n, 5))
    sample_names = [f"{name}_r{r + 1}" for r in range(n_rep)] + [f"{name}_blank", f"{name}_QC"]
    bounds_l = bounds.tolist()
    msms = msms_cells(fmz, fabs, bounds, order_rows.tolist())
    annots, post = [], []
    for f in order_rows.tolist():
        lo, hi = bounds_l[f], bounds_l[f + 1]
        base = w.annot[int(f_comp[f])] if f_mode[f] == "main" and kind[f] == "sample" else None
        if base is not None and hi > lo and annotate_draw[f] < 0.6:
            annots.append(Annotation(**{**base.__dict__, "scores": tuple(score_draw[f].tolist())}))
        else:
            annots.append(None)
        parent = f_parent[f]
        post.append(f"adduct linked to {row_id[parent]}_{main_label}" if parent >= 0 and parent in row_id else "")
    o = order_rows
    ref_h_int = heights[o, ref[o]]
    export = AlignmentExport(
        samples=sample_names,
        classes=[name] * n_rep + ["Blank", "QC"],
        file_types=["Sample"] * n_rep + ["Blank", "QC"],
        groups=[list(range(n_rep)), [blank_col], [qc_col]],
        group_names=[name, "Blank", "QC"],
        rt=avg_rt[o],
        mz=avg_mz[o],
        heights=heights[o],
        adduct=[f_adduct[f] for f in o.tolist()],
        msms=msms,
        isotopes=isotope_cells(avg_mz[o], ref_h_int, f_mz[o]),
        ref_file=[sample_names[r] for r in ref[o].tolist()],
        sn=ref_h[o] / sn_noise[o],
        annotations=annots,
        post_curation=post,
        batch=[str(batch.index + 1)] * n_samp,
        injection_order=[batch.position * n_samp + k + 1 for k in range(n_samp)],
    )
    return Accession(name=name, export=export, n_rows=len(o), latent=latent, assays=assays)


def _msms(w: World, rng, f_comp, f_mz, mode_arr, ref_h, avg_mz, ppm_ref, n):
    """DDA MS/MS of every feature: flat (fragment m/z, integer intensity, owner) sorted by owner then m/z."""
    p_msms = 1.0 / (1.0 + np.exp(-2.5 * (np.log10(np.maximum(ref_h, 1)) - 3.6)))
    has_msms = rng.random(n) < p_msms
    idx, owner = _gather(w.frag_off, f_comp)
    fmz = w.frag_mz[idx]
    frel = w.frag_rel[idx] * np.where(mode_arr[owner] == "dimer", 0.3, 1.0)
    parts_mz, parts_rel, parts_own = [fmz], [frel], [owner]
    # adduct spectra show the main ion (loss of formate/Na/monomer)
    add_rows = np.where(np.isin(mode_arr, ["fa", "dimer"]))[0]
    parts_mz.append(w.ion_mz[f_comp[add_rows]])
    parts_rel.append(np.full(add_rows.size, 100.0))
    parts_own.append(add_rows)
    # unfragmented precursor left in the scan (the diagonal), with its isotopes co-isolated above it
    resid = np.where(rng.random(n) < 0.65)[0]
    r_rel = rng.uniform(2.0, 40.0, resid.size)
    iso = rng.random(resid.size) < 0.35  # isolation window wide enough to pass the isotopes
    r1 = 0.011 * np.maximum(f_mz[resid[iso]], 100) / 16.0 * rng.uniform(0.6, 1.0, iso.sum())
    parts_mz += [f_mz[resid], f_mz[resid[iso]] + C13_DELTA, f_mz[resid[iso]] + 2 * C13_DELTA]
    parts_rel += [r_rel, r_rel[iso] * r1, r_rel[iso] * r1 * r1 / 2]
    parts_own += [resid, resid[iso], resid[iso]]
    # M+1 of intense fragments
    strong = np.where(frel > 30)[0]
    parts_mz.append(fmz[strong] + C13_DELTA)
    parts_rel.append(frel[strong] * 0.011 * fmz[strong] / 16.0)
    parts_own.append(owner[strong])
    # chemical noise
    n_noise = rng.poisson(1.2, n)
    noise_owner = np.repeat(np.arange(n), n_noise)
    parts_mz.append(50 + rng.random(noise_owner.size) * np.maximum(f_mz[noise_owner] - 50, 1))
    parts_rel.append(rng.uniform(0.5, 4.0, noise_owner.size))
    parts_own.append(noise_owner)
    fmz, frel, owner = np.concatenate(parts_mz), np.concatenate(parts_rel), np.concatenate(parts_own)
    # per-peak effects
    frel = frel * rng.lognormal(0, 0.25, frel.size)
    p_drop = 0.08 + 0.25 * (frel < 5)
    base_abs = np.maximum(ref_h * rng.uniform(0.03, 0.15, n), 150)
    fabs = np.round(frel / 100 * base_abs[owner])
    fmz = fmz * (1 + (ppm_ref[owner] + rng.normal(0, 5.0, fmz.size)) * 1e-6)
    # nothing above the isolation window (precursor + 2.1 Da)
    ok = (rng.random(fmz.size) >= p_drop) & (fabs >= 5) & (fmz < avg_mz[owner] + 2.1) & has_msms[owner]
    owner, fmz, fabs = owner[ok], fmz[ok], fabs[ok]
    order = np.lexsort((-fabs, owner))
    owner, fmz, fabs = owner[order], fmz[order], fabs[order]
    first = np.searchsorted(owner, owner, side="left")
    topk = (np.arange(owner.size) - first) < MAX_FRAGMENTS
    owner, fmz, fabs = owner[topk], fmz[topk], fabs[topk]
    order = np.lexsort((fmz, owner))
    return fmz[order], fabs[order], owner[order]
