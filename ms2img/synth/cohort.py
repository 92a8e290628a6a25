"""The cohort: accessions written one export each, assays.csv, latent.csv, truth.csv, cohort.json; append."""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ms2img.atomic import write_bytes
from ms2img.errors import ConfigError
from ms2img.io.msdial_writer import format_alignment
from ms2img.synth.accession import batch_of, simulate_accession
from ms2img.synth.chemistry import (
    ASSAY_WEIGHTS,
    ASSAYS,
    CHEMOTYPES,
    DOMINANT_MGG,
    FAMILIES,
    FAMILY_NAMES,
    MINOR_ACTIVES,
    MINOR_RANGE,
    PHENOLIC_FAMILIES,
    assays_from_latent,
    draw_latent,
    latent_columns,
)
from ms2img.synth.world import POLARITIES, World, build_world

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
TRUTH_COLUMNS = ["assay", "compound", "precursor_mz", "rt_min", "weight", "library_name"]
TRUTH_MIN_WEIGHT = 0.005  # truth.csv lists compounds with at least this share of an assay's expected active sum
_ACC_RE = re.compile(r"^ACC(\d+)$")


@dataclass
class CohortSummary:
    """What :func:`make_cohort` wrote."""

    out_dir: Path
    accessions: list[str]  # written by this call
    n_total: int  # accessions in the cohort after this call
    files: list[Path]
    precursors: list[int]  # rows per export written by this call
    class_counts: dict[str, dict[str, int]]  # whole cohort, thresholds 0.4 / 0.6 (ms2img.training.labels.make_labels)
    latent: pd.DataFrame  # this call's accessions: family abundances (mg/g), total_phenolics, chemotype, minors
    assays: pd.DataFrame  # this call's accessions
    seconds: float = 0.0
    bytes_written: int = 0
    seed: int = 42
    polarity: str = "negative"
    extra: dict = field(default_factory=dict)

    @property
    def precursors_mean(self) -> float:
        return float(np.mean(self.precursors)) if self.precursors else 0.0

    def format(self) -> str:
        """A short human-readable report."""
        lines = [
            f"synthetic cohort in {self.out_dir} (seed {self.seed}, {self.polarity} mode)",
            (
                f"  accessions written: {len(self.accessions)} ({self.accessions[0]}..{self.accessions[-1]}), "
                f"cohort total {self.n_total}"
            ),
            f"  files: {len(self.files)}, {self.bytes_written / 1e6:.1f} MB, {self.seconds:.1f} s",
            (
                f"  precursors per accession: mean {self.precursors_mean:.0f} "
                f"(min {min(self.precursors)}, max {max(self.precursors)})"
            ),
            "  classes after min-max normalisation (<0.4 low, >0.6 high):",
        ]
        for assay, c in self.class_counts.items():
            if c:
                lines.append(f"    {assay:9s} low {c['low']:4d}  high {c['high']:4d}  left out {c['dropped']:4d}")
            else:
                lines.append(f"    {assay:9s} too few accessions to label")
        return "\n".join(lines)


def cohort_class_counts(assays: pd.DataFrame, low: float = 0.4, high: float = 0.6) -> dict[str, dict[str, int]]:
    """Per assay ``{low, high, dropped}`` with the project's labelling rule (empty dict when it cannot label)."""
    from ms2img.training.labels import class_counts, make_labels
    from ms2img.training.labels import logger as labels_log

    out: dict[str, dict[str, int]] = {}
    level = labels_log.level
    labels_log.setLevel(max(level, logging.WARNING))  # the summary prints the counts; no log line per assay
    try:
        for assay in ASSAYS:
            try:
                labels = make_labels(assays, assay, low=low, high=high)
            except ConfigError:
                out[assay] = {}
                continue
            out[assay] = {**class_counts(labels), "dropped": int(labels.attrs.get("n_middle", 0))}
    finally:
        labels_log.setLevel(level)
    return out


def accession_rng(seed: int, i: int) -> np.random.Generator:
    """The random stream of accession number ``i`` (independent of how many accessions are made)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), 1, int(i)]))


def accession_name(i: int) -> str:
    """``ACC0001`` for ``i = 1`` (four digits, more when needed)."""
    return f"ACC{i:04d}"


def _frames(names: list[str], latents: list, assays: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = latent_columns()
    latent_df = pd.DataFrame(np.array([lt.row() for lt in latents]).reshape(len(names), len(cols)), columns=cols)
    latent_df.insert(len(FAMILY_NAMES), "total_phenolics", latent_df[PHENOLIC_FAMILIES].sum(axis=1))
    latent_df["chemotype"] = [CHEMOTYPES[int(c)][0] for c in latent_df["chemotype"]]
    latent_df.insert(0, "accession", names)
    assay_df = pd.DataFrame(assays, columns=list(ASSAYS))
    assay_df.insert(0, "accession", names)
    return latent_df, assay_df


def cohort_assays(accessions: int = 200, seed: int = 42, start: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(latent, assays)`` exactly as :func:`make_cohort` draws them, without simulating the spectra (fast).

    Used to check class balance and assay/chemistry dependence for many accessions and seeds.
    """
    names, latents, assays = [], [], []
    for i in range(start, start + accessions):
        rng = accession_rng(seed, i)
        latent = draw_latent(rng)
        names.append(accession_name(i))
        latents.append(latent)
        assays.append(assays_from_latent(latent, rng))
    return _frames(names, latents, assays)


def planted_actives(world: World) -> pd.DataFrame:
    """truth.csv: per assay, the compounds that drive it and their expected share of its active sum.

    ``weight`` of a compound = its expected contribution to the assay's weighted sum of actives
    (:func:`ms2img.synth.chemistry.active_sum`) over accessions, divided by the expected sum over all
    contributing compounds: for a family member the family's assay weight x the family's mean total x the
    compound's share of it x its prevalence; for a chemotype's dominant compound the family weight x its mean
    dominant amount x the chemotype's probability; for a minor active its potency x prevalence x mean amount.
    Rows with ``weight >= TRUTH_MIN_WEIGHT`` are listed, heaviest first; ``precursor_mz`` is the main ion
    ([M-H]- or [M+H]+), ``rt_min`` the retention time before batch and run shifts.
    """
    fam = world.family
    fam_idx = np.where(fam >= 0)[0]
    totals = np.bincount(fam[fam_idx], world.weight[fam_idx], minlength=len(FAMILY_NAMES))
    share = np.zeros(world.n)
    share[fam_idx] = world.weight[fam_idx] / totals[fam[fam_idx]]
    mean_total = np.array([FAMILIES[f][1] * FAMILIES[f][3] for f in FAMILY_NAMES])
    probs = np.array([p for _, p in CHEMOTYPES])
    probs = probs / probs.sum()
    rows = []
    for assay in ASSAYS:
        contrib = np.zeros(world.n)
        for fname, wgt in ASSAY_WEIGHTS[assay].items():
            fi = FAMILY_NAMES.index(fname)
            members = fam_idx[fam[fam_idx] == fi]
            contrib[members] += wgt * mean_total[fi] * share[members] * world.prevalence[members]
            for c, (ctype, _) in enumerate(CHEMOTYPES):
                if ctype == fname:
                    contrib[world.dominant[c]] += wgt * float(np.mean(DOMINANT_MGG)) * probs[c]
        for k, (potency, prevalence, median) in enumerate(MINOR_ACTIVES):
            contrib[world.minor[k]] += potency.get(assay, 0.0) * prevalence * median * float(np.mean(MINOR_RANGE))
        weight = contrib / contrib.sum()
        for i in np.argsort(-weight, kind="stable").tolist():
            if weight[i] < TRUTH_MIN_WEIGHT:
                break
            annot = world.annot[i]
            rows.append({
                "assay": assay, "compound": world.compound_id(i), "precursor_mz": round(float(world.ion_mz[i]), 5),
                "rt_min": round(float(world.rt[i]), 3), "weight": round(float(weight[i]), 4),
                "library_name": annot.name if annot is not None else "",
            })  # fmt: skip
    return pd.DataFrame(rows, columns=TRUTH_COLUMNS)


def _existing_accessions(out_dir: Path) -> list[str]:
    path = out_dir / "assays.csv"
    if not path.exists():
        raise ConfigError(f"{out_dir}: --append needs an existing cohort (no assays.csv there)")
    try:
        df = pd.read_csv(path, dtype={"accession": str})
    except Exception as exc:  # noqa: BLE001 - any parse problem is the user's file
        raise ConfigError(f"{path}: cannot read existing assays ({exc})") from None
    if "accession" not in df.columns:
        raise ConfigError(f"{path}: no 'accession' column")
    return df["accession"].astype(str).tolist()


def _clear_generated(out_dir: Path) -> None:
    """Remove files an earlier run of the generator wrote (only those)."""
    for name in ("assays.csv", "latent.csv", "truth.csv", "cohort.json"):
        (out_dir / name).unlink(missing_ok=True)
    exports = out_dir / "exports"
    if exports.is_dir():
        for p in exports.glob("ACC*.txt"):
            if _ACC_RE.match(p.stem):
                p.unlink()


def _csv_rows(df: pd.DataFrame, header: bool) -> str:
    return df.to_csv(index=False, header=header, lineterminator="\n", float_format="%.4f")


def _check_args(accessions, replicates, polarity, seed, out_dir: Path) -> int:
    if isinstance(accessions, bool) or not isinstance(accessions, int | np.integer) or accessions < 1:
        raise ConfigError(f"accessions must be a positive integer, got {accessions!r}")
    if isinstance(replicates, bool) or not isinstance(replicates, int | np.integer) or not 1 <= replicates <= 20:
        raise ConfigError(f"replicates must be an integer from 1 to 20, got {replicates!r}")
    if polarity not in POLARITIES:
        raise ConfigError(f"polarity must be one of {POLARITIES}, got '{polarity}'")
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be an integer, got {seed!r}") from None
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"{out_dir}: exists and is not a directory")
    return seed


def make_cohort(
    out_dir: str | Path,
    accessions: int = 200,
    replicates: int = 3,
    seed: int = 42,
    append: bool = False,
    polarity: str = "negative",
    force: bool = False,
    progress: bool = False,
) -> CohortSummary:
    """Write a synthetic cohort of ``accessions`` MS-DIAL exports plus ``assays.csv`` under ``out_dir``.

    ``append=True`` adds ``accessions`` new ones after the highest existing number and appends their assay rows;
    existing exports are never touched. The compound pool comes from the seed in ``cohort.json`` (so new
    accessions share the cohort's chemistry and truth.csv stays valid), the new accessions' draws from ``seed``.
    Without ``append`` an existing, non-empty ``out_dir`` is an error unless ``force=True`` (which removes
    earlier generated files).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    seed = _check_args(accessions, replicates, polarity, seed, out_dir)

    meta_path = out_dir / "cohort.json"
    world_seed = seed
    existing: list[str] = []
    if append:
        existing = _existing_accessions(out_dir)
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise ConfigError(f"{meta_path}: not valid JSON ({exc})") from None
            world_seed = int(meta.get("seed", seed))
            if meta.get("polarity", polarity) != polarity:
                raise ConfigError(
                    f"{out_dir}: cohort is {meta.get('polarity')} mode, cannot append {polarity} accessions"
                )
        numbers = [int(m.group(1)) for a in existing if (m := _ACC_RE.match(a))]
        start = max(numbers, default=0) + 1
    else:
        if out_dir.is_dir() and any(out_dir.iterdir()):
            if not force:
                raise ConfigError(f"{out_dir}: output directory exists and is not empty (use --append or --force)")
            _clear_generated(out_dir)
        start = 1

    world = build_world(world_seed, polarity)
    names = [accession_name(i) for i in range(start, start + accessions)]
    clash = [a for a in names if a in set(existing)]
    if clash:
        raise ConfigError(f"{out_dir}: accessions {clash[:3]} already exist")

    exports = out_dir / "exports"
    targets = [exports / f"{name}.txt" for name in names]
    present = [p for p in targets if p.exists()]
    if present:
        raise ConfigError(f"{present[0]}: already exists; refusing to overwrite an existing export")
    files: list[Path] = []
    rows, latents, assays = [], [], []
    n_bytes = 0
    try:
        for i, name, path in tqdm(
            list(zip(range(start, start + accessions), names, targets, strict=True)),
            desc="synth",
            unit="accession",
            disable=None if progress else True,
        ):
            acc = simulate_accession(world, name, accession_rng(seed, i), batch_of(world, seed, i), replicates)
            data = format_alignment(acc.export).encode("utf-8")
            write_bytes(path, data)
            files.append(path)
            n_bytes += len(data)
            rows.append(acc.n_rows)
            latents.append(acc.latent)
            assays.append(acc.assays)
    except BaseException:
        for path in files:  # no half-made cohort: exports without assay rows would block the next append
            path.unlink(missing_ok=True)
        raise
    latent_df, assay_df = _frames(names, latents, assays)

    for fname, df in (("assays.csv", assay_df), ("latent.csv", latent_df)):
        path = out_dir / fname
        if append and path.exists():
            old = path.read_bytes()
            if old and not old.endswith(b"\n"):
                old += b"\n"
            data = old + _csv_rows(df, header=False).encode("utf-8")
        else:
            data = _csv_rows(df, header=True).encode("utf-8")
        write_bytes(path, data)
        files.append(path)
    truth_path = out_dir / "truth.csv"
    if not append or not truth_path.exists():
        truth = planted_actives(world).to_csv(index=False, lineterminator="\n")
        write_bytes(truth_path, truth.encode("utf-8"))
        files.append(truth_path)
    if not append or not meta_path.exists():
        meta = {"generator": "ms2img.synth", "version": GENERATOR_VERSION, "seed": world_seed, "polarity": polarity}
        write_bytes(meta_path, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
        files.append(meta_path)

    all_assays = pd.read_csv(out_dir / "assays.csv", dtype={"accession": str})
    summary = CohortSummary(
        out_dir=out_dir,
        accessions=names,
        n_total=len(all_assays),
        files=files,
        precursors=rows,
        class_counts=cohort_class_counts(all_assays),
        latent=latent_df,
        assays=assay_df,
        seconds=time.perf_counter() - t0,
        bytes_written=n_bytes,
        seed=seed,
        polarity=polarity,
    )
    log.debug("wrote %d accessions to %s in %.1f s", len(names), out_dir, summary.seconds)
    return summary
