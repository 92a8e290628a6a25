"""The report's sections, one function each: HTML for one part of the paper, built from :class:`ReportInputs`.

Each returns a ``<section>``; a piece whose input is absent shows a "not run" note instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ms2img.report import figures as F
from ms2img.report.collect import ReportInputs
from ms2img.report.html import (
    compress,
    esc,
    link,
    missing,
    num,
    png,
    pvalue,
    records_table,
    section,
    stat_cell,
    table,
)

SCORE_COLUMNS = (("auc", "ROC AUC"), ("balanced_accuracy", "Balanced accuracy"), ("mcc", "MCC"), ("f1", "F1"))
RF_FEATURE_FAMILIES = ("rf-cosine", "rf-entropy")


class Figures:
    """Collects embedded figures (for the optional PDF) and turns failures into notes."""

    def __init__(self) -> None:
        self.pngs: list[tuple[str, bytes]] = []

    def add(self, data: bytes | None, caption: str, error: str | None = None) -> str:
        """The figure compressed (the whole report stays a few MB) and embedded at the size it was drawn."""
        if data is None:
            return missing(f"{esc(caption)} could not be drawn ({esc(error)})") if error else ""
        data = compress(data)
        self.pngs.append((caption, data))
        return png(data, esc(caption), alt=caption)

    def file(self, path: Path | None, caption: str) -> str:
        if path is None or not Path(path).is_file():
            return ""
        return self.add(Path(path).read_bytes(), caption)


def _units(params: Mapping[str, Any] | None, units: Mapping[str, str] | None, assay: str) -> str | None:
    if units and assay in units:
        return units[assay]
    from_params = ((params or {}).get("labels") or {}).get("units") or {}
    return from_params.get(assay) if isinstance(from_params, Mapping) else None


def _cut(params: Mapping[str, Any] | None) -> tuple[float, float]:
    labels = (params or {}).get("labels") or {}
    return float(labels.get("low", 0.4)), float(labels.get("high", 0.6))


# ---------------------------------------------------------------------------------------------- sections
def _served_model(a: Any) -> str:
    """The winner's card in one cell: its threshold and the accessions it was trained on (low + high)."""
    card = a.cards.get(a.winner or "") if a.winner else None
    if not card:
        return "<span class='note'>no model card</span>"
    counts = card.get("class_counts") or {}
    trained = card.get("n_accessions")
    text = f"threshold {num(card.get('threshold'))}"
    if trained is not None:
        text += f"; trained on {num(trained)}"
        if counts:
            text += f" ({num(counts.get('low'))} low + {num(counts.get('high'))} high)"
    return text


def overview(inp: ReportInputs) -> str:
    rows = []
    for a in inp.assays:
        m = a.metrics or {}
        sel = a.selection or {}
        fam = (m.get("families") or {}).get(a.winner or "", {}) if a.winner else {}
        rows.append(
            [
                f"<a href='#fig3-{esc(a.name)}'>{esc(a.name)}</a>",
                f"<b>{esc(a.winner)}</b>" if a.winner else "<span class='note'>not selected (no selection.json)</span>",
                stat_cell(fam.get("auc")) if fam else "–",
                esc(sel.get("reason", "")),
                _served_model(a),
                " / ".join(num(m.get(k)) for k in ("n_accessions", "n_low", "n_high", "n_middle")) if m else "–",
                f"{num(m.get('folds'))} x {num(m.get('repeats'))}" if m else "–",
            ]
        )
    body = [
        (
            "<p>Each assay's accessions are split into low (normalised value below the low cut-off) and high "
            "(above the high cut-off); mid-range accessions are left out of training but every accession is "
            "predicted by the fold that held it out. Every family is trained and scored on the same repeated "
            "grouped stratified folds.</p>"
        ),
        table(
            [
                "assay",
                "winner (served)",
                "winner AUC mean ± SD [95% interval]",
                "why",
                "served model",
                "accessions / low / high / mid-range",
                "folds x repeats",
            ],
            rows,
            raw=True,
        )
        if rows
        else missing("no assay outputs found"),
        (
            "<p class=counts>Counts here: the whole cohort labelled once (min-max of all values, "
            "<code>labels.low/high</code>; metrics/&lt;assay&gt;.json), as the served model was trained: its card "
            "(models/&lt;assay&gt;/&lt;family&gt;/model.json) counts low + high only.</p>"
        ),
        f"<p>Families: {', '.join(f'<span class=badge>{esc(f)}</span>' for f in inp.families) or '–'}</p>",
    ]
    return section("overview", "Overview: the winner per assay", "".join(body))


def table1(inp: ReportInputs, figs: Figures) -> str:
    parts = [
        (
            "<p class='note'>The paper's Table 1: the CNN at each input resolution on the same folds, under the "
            "study's own protocol (params.yaml <code>resolution</code>: trials, epochs, refits; stage "
            "<code>resolution@A</code>). Curves: train, inner validation (when recorded) and the held-out fold.</p>"
        )
    ]
    not_run = []
    for a in inp.assays:
        res = a.resolution
        if not res:
            not_run.append(a.name)
            continue
        parts.append(f"<h3>{esc(a.name)}</h3>")
        records = res.get("table") if isinstance(res, Mapping) else None
        if isinstance(records, list) and records and "size" in records[0]:
            rows = []
            for r in records:
                rows.append(
                    [
                        esc(r.get("size")),
                        stat_cell({"mean": r.get("auc_mean"), "sd": r.get("auc_sd")}),
                        stat_cell({"mean": r.get("accuracy_mean"), "sd": r.get("accuracy_sd")}),
                        stat_cell({"mean": r.get("f1_mean"), "sd": r.get("f1_sd")}),
                        num(r.get("fit_seconds"), 1),
                    ]
                )
            parts.append(
                table(["size (W x H)", "AUC", "balanced accuracy", "F1", "seconds"], rows, raw=True, numeric=(4,))
            )
        elif isinstance(res, Mapping):
            parts.append(f"<pre>{esc(json.dumps(res, indent=1)[:4000])}</pre>")
        parts.append(figs.file(a.plots.get("resolution_study"), f"{a.name}: learning curves per resolution"))
    if not_run:  # one line for every assay without a study, not a box each
        names = ", ".join(esc(n) for n in not_run)
        first = esc(not_run[0])
        parts.append(
            f"<p class='note'>No resolution study for {names}: add {'it' if len(not_run) == 1 else 'them'} to "
            f"<code>resolution.assays</code> in params.yaml and run <code>dvc repro resolution@{first}</code>"
            f"{' (and the others)' if len(not_run) > 1 else ''}.</p>"
        )
    return section("table1", "Table 1: input image resolution", "".join(parts))


def _percent(value: Any) -> str:
    text = num(value * 100 if isinstance(value, int | float) else value, 1)
    return text + "%" if text != "–" else text


def _summary_from_folds(folds: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for fam, g in folds.groupby("family", sort=False):
        out[str(fam)] = {}
        for key, _ in SCORE_COLUMNS:
            if key in g.columns:
                v = g[key].astype(float)
                out[str(fam)][key] = {"mean": v.mean(), "sd": v.std(ddof=1)}
    return out


def table2(inp: ReportInputs) -> str:
    rows, classes, paired_rows = [], [], []
    notes = []
    for a in inp.assays:
        fams = (a.metrics or {}).get("families") if a.metrics else None
        if not fams and a.folds is not None and "family" in a.folds.columns:
            fams = _summary_from_folds(a.folds)
            notes.append(f"{esc(a.name)}: metrics/{esc(a.name)}.json absent, mean ± SD from folds.csv (no interval)")
        if not fams:
            rows.append([esc(a.name), "<span class='note'>not run</span>"] + ["–"] * (len(SCORE_COLUMNS) + 2))
            classes.append("")
            continue
        for fam in [f for f in a.families if f in fams] + [f for f in fams if f not in a.families]:
            e = fams[fam] or {}
            rows.append(
                [esc(a.name), esc(fam) + (" <span class=badge>winner</span>" if fam == a.winner else "")]
                + [stat_cell(e.get(k)) for k, _ in SCORE_COLUMNS]
                + [num(e.get("spearman")), num(e.get("seconds"), 1)]
            )
            classes.append("winner" if fam == a.winner else "")
        paired = (a.metrics or {}).get("paired") or (a.selection or {}).get("paired") or {}
        for name, t in paired.items():
            if isinstance(t, Mapping):
                sig = isinstance(t.get("p_value"), int | float) and t["p_value"] < 0.05
                paired_rows.append(
                    [
                        esc(a.name),
                        esc(name),
                        num(t.get("diff")),
                        f"[{num(t.get('ci_low'))}, {num(t.get('ci_high'))}]",
                        ("<b>" + pvalue(t.get("p_value")) + "</b>") if sig else pvalue(t.get("p_value")),
                    ]
                )
    body = [
        (
            "<p class='note'>Mean ± SD over every fold of every repeat, the 95% interval in brackets (corrected for "
            "overlapping training sets). Spearman: out-of-fold probability against the raw assay value over all "
            "accessions, mid-range included. The served family is highlighted.</p>"
        ),
        table(
            ["assay", "family"] + [label for _, label in SCORE_COLUMNS] + ["Spearman ρ", "seconds"],
            rows,
            raw=True,
            row_classes=classes,
        )
        if rows
        else missing("no assay metrics"),
    ]
    body += [f"<p class='note'>{n}</p>" for n in notes]
    body.append("<h3>Paired tests on per-fold AUC</h3>")
    paired_table = table(
        ["assay", "comparison", "AUC difference", "95% interval", "p (corrected resampled t-test)"],
        paired_rows,
        raw=True,
        numeric=(2,),
    )
    if not paired_rows:
        body.append(missing("paired tests (the <code>paired</code> block of metrics/&lt;assay&gt;.json)"))
    elif len(paired_rows) > 12:  # every pair of every assay: folded away so Table 2 stays readable
        body.append(
            f"<details><summary>{len(paired_rows)} comparisons (p &lt; 0.05 in bold)</summary>{paired_table}</details>"
        )
    else:
        body.append(paired_table)
    return section("table2", "Table 2: every assay, every family", "".join(body))


def thresholds(a: Any, family: str) -> tuple[float | None, str | None, tuple[float, float] | None]:
    """The decision threshold ``family`` is used at: the saved model's own (its card) or, without a card, the
    median of the folds' thresholds (folds.csv); plus the range of the folds' thresholds, each fold having
    picked its own on its training part. ``(None, None, None)`` when nothing recorded one."""
    per_fold: list[float] = []
    if a.folds is not None and {"family", "threshold"} <= set(a.folds.columns):
        f = a.folds[a.folds["family"].astype(str) == family]
        per_fold = [float(t) for t in f["threshold"] if isinstance(t, int | float) and math.isfinite(t)]
    band = (min(per_fold), max(per_fold)) if len(per_fold) > 1 and min(per_fold) < max(per_fold) else None
    card = (a.cards or {}).get(family) or {}
    t = card.get("threshold")
    if isinstance(t, int | float) and math.isfinite(t):
        return float(t), f"saved model's threshold {t:.3g}", band
    if per_fold:
        med = (
            float(sorted(per_fold)[len(per_fold) // 2])
            if len(per_fold) % 2
            else float((sorted(per_fold)[len(per_fold) // 2 - 1] + sorted(per_fold)[len(per_fold) // 2]) / 2)
        )
        return med, f"median fold threshold {med:.3g}", band
    return None, None, band


def fig3(inp: ReportInputs, figs: Figures, scratch: Path, units: Mapping[str, str] | None) -> str:
    low, high = _cut(inp.params)
    parts = []
    for a in inp.assays:
        parts.append(f"<h3 id='fig3-{esc(a.name)}'>{esc(a.name)}</h3>")
        u = _units(inp.params, units, a.name)
        if a.oof is None or "family" not in a.oof.columns:
            fallback = [figs.file(a.plots.get(k), f"{a.name}: {k}") for k in ("predictions", "roc", "confusion")]
            fallback = [f for f in fallback if f]
            parts.append(missing(f"out-of-fold predictions (reports/{esc(a.name)}/oof.csv)"))
            if fallback:
                parts.append(
                    "<p class='note'>Figures the training stage drew:</p><div class=figs>"
                    + "".join(fallback)
                    + "</div>"
                )
            continue
        featured = [f for f in ("cnn", a.winner) if f and f in set(a.oof["family"].astype(str))]
        featured = list(dict.fromkeys(featured)) or a.families[:1]
        for fam in featured:
            cells = []
            t, t_label, band = thresholds(a, fam)
            data, err = F.safe(
                F.oof_scatter,
                a.oof,
                fam,
                a.name,
                scratch,
                low=low,
                high=high,
                units=u,
                threshold=t,
                threshold_label=t_label,
                threshold_band=band,
            )
            where = (
                f"models/{a.name}/{fam}/model.json" if fam in a.cards else f"the median of reports/{a.name}/folds.csv"
            )
            line = f"; dotted line: the threshold the model is used at ({where})" if t is not None else ""
            line += "; grey band: the range of the folds' own thresholds (folds.csv)" if band else ""
            cells.append(
                figs.add(
                    data,
                    f"A. {a.name}, {fam}: out-of-fold P(high) against the measured value"
                    f"{' (' + u + ')' if u else ''}; dashed lines: the low/high cut-offs in raw "
                    f"units (median over folds of each fold's training-part scaling){line}",
                    err,
                )
            )
            data, err = F.safe(F.roc, a.oof, fam, a.name, scratch)
            cells.append(figs.add(data, f"B. {a.name}, {fam}: ROC per fold, mean ± SD and pooled", err))
            data, err = F.safe(F.confusion, a.oof, a.folds, fam, a.name, scratch)
            cells.append(
                figs.add(
                    data,
                    f"C. {a.name}, {fam}: confusion matrix, mean ± SD over folds (each fold at its own threshold)",
                    err,
                )
            )
            tag = " <span class=badge>winner</span>" if fam == a.winner else ""
            parts.append(f"<p><b>{esc(fam)}</b>{tag}</p><div class=figs>{''.join(cells)}</div>")
    body = (
        "<p class='note'>The paper's Fig. 3 per assay: (A) predictions against assay values, (B) ROC, "
        "(C) confusion matrix. Shown for the CNN and for the served family.</p>"
        "<p class=counts>Counts in A: each accession as labelled by the fold that held it out (every fold scales "
        "the values on its own training part; reports/&lt;assay&gt;/oof.csv), so a few accessions near the "
        "cut-offs can change class against the overview's whole-cohort counts.</p>" + "".join(parts)
    )
    return section("fig3", "Figure 3: predictions, ROC and confusion per assay", body)


def fig4(inp: ReportInputs, figs: Figures, scratch: Path) -> str:
    parts = []
    for a in inp.assays:
        parts.append(f"<h3>{esc(a.name)}</h3>")
        m = a.metrics or {}
        o, p = m.get("oplsda") or {}, m.get("pca") or {}
        if o or p:
            parts.append(
                table(
                    ["PC1 variance", "PC2 variance", "OPLS-DA R²Y", "Q²Y", "p(R²Y)", "p(Q²Y)"],
                    [
                        [
                            _percent(p.get("pc1")),
                            _percent(p.get("pc2")),
                            num(o.get("r2y")),
                            num(o.get("q2y")),
                            pvalue(o.get("p_r2y")),
                            pvalue(o.get("p_q2y")),
                        ]
                    ],
                    raw=True,
                    numeric=(0, 1, 2, 3, 4, 5),
                )
            )
        panels: list[tuple[str, bytes | Path | None, str | None]] = [
            ("PCA scores (feature table)", a.plots.get("pca_scores"), None),
            ("OPLS-DA scores with R²Y / Q²Y", a.plots.get("oplsda_scores"), None),
        ]
        rf = [f for f in RF_FEATURE_FAMILIES if a.oof is not None and f in set(a.oof["family"].astype(str))]
        for fam in rf:
            data, err = F.safe(F.roc, a.oof, fam, a.name, scratch)
            panels.append((f"{fam} (feature-table RF) ROC", data, err))
        if not rf:
            panels += [(stem, path, None) for stem, path in a.plots.items() if stem.startswith("roc_rf")]
        panels.append(
            (
                "OPLS-DA permutation test (R²Y, Q²Y against label similarity with intercepts; null histograms)",
                a.plots.get("oplsda_permutation"),
                None,
            )
        )
        cells, letter = [], 0
        for what, src, err in panels:  # letters in the order shown: no two panels share one
            if src is None and err is None:
                continue
            caption = f"{chr(ord('A') + letter)}. {a.name}: {what}"
            cell = figs.file(src, caption) if isinstance(src, Path) else figs.add(src, caption, err)
            if cell:
                cells.append(cell)
                letter += 1
        if not cells and not (o or p):
            parts.append(
                missing(
                    f"PCA / OPLS-DA / feature-table RF for {esc(a.name)} (plots/{esc(a.name)}/"
                    "pca_scores.png, oplsda_*.png, the rf-cosine/rf-entropy rows of oof.csv)"
                )
            )
            continue
        parts.append(f"<div class=figs>{''.join(cells)}</div>")
    body = (
        "<p class='note'>The paper's Fig. 4: PCA (unsupervised), OPLS-DA (supervised; a high R²Y with a low Q²Y "
        "is overfitting, the permutation test says whether either beats shuffled labels) and the feature-table "
        "random forest.</p>" + "".join(parts)
    )
    return section("fig4", "Figure 4: PCA, OPLS-DA and the feature-table RF", body)


def fig5(inp: ReportInputs, figs: Figures, scratch: Path) -> str:
    cells = []
    for a in inp.assays:
        if a.folds is None or "family" not in a.folds.columns:
            cells.append(missing(f"per-fold scores of {esc(a.name)} (reports/{esc(a.name)}/folds.csv)"))
            continue
        data, err = F.safe(F.boxplots, a.folds, a.name, scratch, a.families)
        cells.append(figs.add(data, f"{a.name}: per-fold ROC AUC, balanced accuracy, MCC and F1 by family", err))
    return section("fig5", "Figure 5: per-fold scores by family", "".join(cells))


def fingerprints(inp: ReportInputs, figs: Figures, scratch: Path, units: Mapping[str, str] | None) -> str:
    if inp.images is None:
        return section(
            "fingerprints",
            "Example fingerprints",
            missing("rendered images (data/images/*.npz; run <code>ms2img render</code>)"),
        )
    assay = inp.assays[0].name if inp.assays else None
    low, high = _cut(inp.params)
    data, err = F.safe(
        F.example_fingerprints,
        inp.images,
        inp.assays_csv,
        assay,
        scratch,
        low=low,
        high=high,
        units=_units(inp.params, units, assay or ""),
    )
    if data is None:
        return section("fingerprints", "Example fingerprints", missing(f"fingerprints could not be drawn ({esc(err)})"))
    cells = "".join(figs.add(b, t) for t, b in data)
    return section(
        "fingerprints",
        "Example fingerprints",
        f"<p class='note'>From {esc(inp.images.name)}: x = precursor m/z, y = fragment m/z, the most and "
        f"the least active accession of {esc(assay)}.</p><div class=figs>{cells}</div>",
    )


DRIVERS_TOP = 10


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and not math.isfinite(value)) else str(value).strip()


def _evidence(r: Mapping[str, Any]) -> str:
    """What says this compound matters: the model's importance, its effect given the other candidates, where seen."""
    bits = []
    if _float(r.get("importance")) is not None:
        bits.append(f"importance {_float(r.get('importance')):.3g}")
    effect = _float(r.get("conditional_effect"))
    if effect is not None:
        bits.append(f"effect given the others {effect:+.2f}")
    n_high, n_low = _float(r.get("n_high")), _float(r.get("n_low"))
    if n_high is not None and n_low is not None:
        bits.append(f"seen in {int(n_high)} high / {int(n_low)} low accessions")
    elif _float(r.get("n_accessions")) is not None:
        bits.append(f"in {int(_float(r.get('n_accessions')))} accessions")
    return "; ".join(bits) or "–"


def _library(r: Mapping[str, Any]) -> str:
    """The library hit as a chemist reads it: identity match first, else an analogue (shared fragments)."""
    name = _text(r.get("library_name"))
    if name:
        adduct = _text(r.get("library_adduct"))
        score, peaks = _float(r.get("library_score")), _float(r.get("matched_peaks"))
        detail = ", ".join(
            x for x in (f"score {score:.2f}" if score is not None else "", f"{int(peaks)} peaks" if peaks else "") if x
        )
        return f"{esc(name)}{' ' + esc(adduct) if adduct else ''}{f' ({detail})' if detail else ''}"
    name = _text(r.get("analogue_name"))
    if name:
        score, mz = _float(r.get("analogue_score")), _float(r.get("analogue_precursor_mz"))
        detail = ", ".join(
            x for x in (f"score {score:.2f}" if score is not None else "", f"m/z {mz:.4f}" if mz else "") if x
        )
        return f"<span class='note'>analogue of</span> {esc(name)}{f' ({detail})' if detail else ''}"
    return "<span class='note'>no match</span>"


def drivers_table(df: Any, top: int = DRIVERS_TOP) -> str:
    """The top ``top`` drivers with the columns a chemist reads; the CSV keeps every column (spectra, boxes)."""
    rows = []
    for i, r in enumerate(df.head(top).to_dict(orient="records"), 1):
        direction = _text(r.get("direction"))
        fc = _float(r.get("fold_change"))
        rows.append(
            [
                num(r.get("rank")) if _float(r.get("rank")) is not None else str(i),
                num(r.get("precursor_mz"), 4),
                num(r.get("rt_min"), 2),
                {
                    "up": "<span class=nowrap>up in active</span>",
                    "down": "<span class=nowrap>down in active</span>",
                }.get(direction, esc(direction) or "–"),
                f"{fc:.2f}" if fc is not None else "–",
                esc(_evidence(r)),
                _library(r),
            ]
        )
    return table(
        ["rank", "precursor m/z", "RT (min)", "direction", "fold change (high / low)", "evidence", "library match"],
        rows,
        raw=True,
        numeric=(0, 1, 2, 4),
    )


def drivers(inp: ReportInputs, figs: Figures, base: Path | None = None) -> str:
    parts = [
        (
            "<p class='note'>The compounds behind each assay's served model: precursors in the image regions (or "
            "features) the model relies on, grouped across accessions, ranked up-in-active first; fold change is "
            "the mean relative intensity in high over low accessions (<code>ms2img explain</code>).</p>"
        )
    ]
    for a in inp.assays:
        pngs = [figs.file(p, f"{a.name}: {stem}") for stem, p in a.plots.items() if stem.startswith("driver")]
        parts.append(f"<h3>{esc(a.name)}</h3>")
        if a.drivers is None and not any(pngs):
            parts.append(missing(f"drivers (reports/{esc(a.name)}/drivers.csv; run <code>ms2img explain</code>)"))
            continue
        if a.drivers is not None:
            meta = a.drivers_meta or {}
            csv = link(a.drivers_csv, base, f"reports/{a.name}/drivers.csv")
            parts.append(
                f"<p class='note'>Top {min(DRIVERS_TOP, len(a.drivers))} of {len(a.drivers)} drivers"
                f"{' of ' + esc(meta['family']) if meta.get('family') else ''}; every column (consensus spectra, "
                f"adducts, image boxes) in {csv}.</p>"
            )
            if meta.get("n_accessions") is not None:
                parts.append(
                    f"<p class=counts>Counts here: the {num(meta.get('n_accessions'))} accessions the attribution "
                    f"ran on ({num(meta.get('n_high'))} high, {num(meta.get('n_low'))} low; "
                    f"{esc(meta.get('attribution', 'attribution'))}), labelled as in "
                    f"{esc(meta.get('labels_from', 'oof.csv'))} (each fold's own scaling), which is why they can "
                    "differ by a few from the served model's card.</p>"
                )
            if "precursor_mz" in a.drivers.columns:
                parts.append(drivers_table(a.drivers))
            else:  # not ms2img explain's table: its first columns as they are
                cols = list(a.drivers.columns[:8])
                parts.append(records_table(a.drivers.head(DRIVERS_TOP).to_dict(orient="records"), cols))
        parts.append("".join(pngs))
    return section("drivers", "Drivers of each assay", "".join(parts))


def _drift_table(d: Mapping[str, Any]) -> str | None:
    """benchmarks/drift.py's ``{levels, results}``: one row per assay and family, AUC mean ± SD per level."""
    levels, results = d.get("levels"), d.get("results")
    if not (isinstance(levels, list) and isinstance(results, list) and results):
        return None
    if not all(isinstance(r, Mapping) and {"family", "level", "mean"} <= set(r) for r in results):
        return None
    heads = []
    for i, lv in enumerate(levels):
        if isinstance(lv, Mapping) and any(lv.values()):
            drop = _float(lv.get("dropout"))
            heads.append(
                f"L{i} ({num(lv.get('mz_ppm'), 0)} ppm, {num(lv.get('rt_min'), 1)} min, "
                f"{num(drop * 100 if drop is not None else None, 0)}% dropout, noise {num(lv.get('noise'), 1)})"
            )
        else:
            heads.append(f"L{i} (none)")
    rows: dict[tuple[str, str], list[str]] = {}
    for r in results:
        key = (str(r.get("assay", "")), str(r["family"]))
        cells = rows.setdefault(key, ["–"] * len(heads))
        i = int(r["level"])
        if 0 <= i < len(cells):
            cells[i] = stat_cell({"mean": r.get("mean"), "sd": r.get("sd")})
    return table(
        ["assay", "family", *heads],
        [[esc(k[0]), f"<span class=nowrap>{esc(k[1])}</span>", *v] for k, v in rows.items()],
        raw=True,
    )


def drift(inp: ReportInputs, figs: Figures) -> str:
    d = inp.drift
    pngs = "".join(figs.file(p, f"Drift: {p.stem}") for p in inp.drift_plots)
    if d is None:
        return section(
            "drift",
            "Drift stress test",
            "<p class='note'>Not run: <code>.venv/bin/python benchmarks/drift.py --project . --assays DPPH</code> "
            "writes reports/drift.json and plots/drift.png, which the next <code>ms2img report</code> shows here.</p>"
            + pngs,
        )
    parts = []
    if isinstance(d, Mapping):
        for key in ("note", "summary", "conclusion"):
            if isinstance(d.get(key), str):
                parts.append(f"<p>{esc(d[key])}</p>")
        known = _drift_table(d)
        if known:
            parts.append(
                "<p class='note'>Held-out AUC (mean ± SD over folds) of every family trained on clean folds and "
                "scored on test folds perturbed like a second instrument batch (m/z offset, RT shift, fragment "
                "dropout, intensity noise), from reports/drift.json.</p>" + known
            )
        tables = {
            k: v
            for k, v in d.items()
            if isinstance(v, list) and v and isinstance(v[0], Mapping) and not (known and k in ("levels", "results"))
        }
        for k, v in tables.items():
            parts.append(f"<h3>{esc(k)}</h3>" + records_table(v, limit=200))
        scalars = {
            k: v
            for k, v in d.items()
            if isinstance(v, str | int | float | bool) and k not in ("note", "summary", "conclusion")
        }
        if scalars:
            parts.append(table(["key", "value"], [[k, v] for k, v in scalars.items()]))
        rest = {
            k: v
            for k, v in d.items()
            if k not in tables
            and k not in scalars
            and not isinstance(v, str)
            and not (known and k in ("levels", "results"))
        }
        if rest:
            parts.append(
                f"<details><summary>other fields</summary><pre>{esc(json.dumps(rest, indent=1))}</pre></details>"
            )
    elif isinstance(d, list) and d and isinstance(d[0], Mapping):
        parts.append(records_table(d, limit=200))
    else:
        parts.append(f"<pre>{esc(json.dumps(d, indent=1))}</pre>")
    return section("drift", "Drift stress test", "".join(parts) + pngs)


def provenance(inp: ReportInputs, base: Path | None = None) -> str:
    v = inp.validation
    parts = ["<h3>Data version</h3>"]
    if inp.data_version:
        parts.append(
            f"<p>data/raw: <code>{esc(inp.data_version)}</code> <span class='note'>(from "
            f"{esc(inp.data_version_source)})</span></p>"
        )
    else:
        parts.append(
            missing(
                "a DVC hash of data/raw (data/raw.dvc or dvc.lock; run <code>dvc add data/raw</code> or "
                "<code>dvc repro</code>)"
            )
        )
    parts.append("<h3>Validation</h3>")
    if isinstance(v, Mapping):
        s = v.get("summary") or {}
        ok = v.get("success")
        parts.append(
            f"<p>{'<span class=ok>passed</span>' if ok else '<span class=bad>FAILED</span>'} "
            f"{esc(v.get('message', ''))} <span class='note'>(policy {esc(v.get('policy'))}, "
            f"{esc(v.get('created'))})</span></p>"
        )
        if s:
            parts.append(
                table(["check", "value"], [[k, num(x) if not isinstance(x, bool) else x] for k, x in s.items()])
            )
        if inp.validation_html is not None and base is not None:
            parts.append(f"<p class='note'>Full report: {link(inp.validation_html, base, 'validation.html')}</p>")
    else:
        parts.append(missing("validation (reports/validation.json; run <code>ms2img validate</code>)"))
    parts.append("<h3>Parameters in effect</h3>")
    if inp.params_text:
        parts.append(f"<details><summary>params.yaml</summary><pre>{esc(inp.params_text)}</pre></details>")
    else:
        parts.append(missing("params.yaml"))
    if inp.missing:
        items = "".join(f"<li><code>{esc(m)}</code></li>" for m in inp.missing)
        parts.append(
            f"<h3>Inputs not found</h3><details><summary>{len(inp.missing)} file(s)</summary><ul>{items}</ul></details>"
        )
    return section("provenance", "Data version, validation and parameters", "".join(parts))
