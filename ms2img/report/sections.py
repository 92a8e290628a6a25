"""The report's sections, one function each: HTML for one part of the paper, built from :class:`ReportInputs`.

Each returns a ``<section>``; a piece whose input is absent shows a "not run" note instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ms2img import plots
from ms2img.report import figures as F
from ms2img.report.collect import ReportInputs
from ms2img.report.html import (
    compress,
    esc,
    missing,
    num,
    png,
    pvalue,
    section,
    stat_cell,
    table,
)
from ms2img.report.served import served_model
from ms2img.training.scores import SPEARMAN_MIN_PAIRS, TOP_MIN_K, holm_adjusted, withheld_top

SCORE_COLUMNS = (
    ("auc", "ROC AUC"),
    ("balanced_accuracy", "Balanced accuracy"),
    ("mcc", "MCC"),
    ("f1", "F1"),
    ("precision_top10", "Precision, top 10%"),
)
REGRESSION_COLUMNS = (("spearman", "Spearman ρ"), ("rmse", "RMSE"), ("r2", "R²"))  # labels.mode: regression
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
def overview(inp: ReportInputs) -> str:
    rows = []
    small = []
    for a in inp.assays:
        m = a.metrics or {}
        sel = a.selection or {}
        fam = (m.get("families") or {}).get(a.winner or "", {}) if a.winner else {}
        score = stat_cell(fam.get("spearman")) + " (Spearman ρ)" if a.regression else stat_cell(fam.get("auc"))
        rows.append(
            [
                f"<a href='#fig3-{esc(a.name)}'>{esc(a.name)}</a>",
                f"<b>{esc(a.winner)}</b>" if a.winner else "<span class='note'>not selected (no selection.json)</span>",
                score if fam else "–",
                esc(sel.get("reason", "")),
                served_model(a),
                " / ".join(num(m.get(k)) for k in ("n_accessions", "n_low", "n_high", "n_middle")) if m else "–",
                f"{num(m.get('folds'))} x {num(m.get('repeats'))}" if m else "–",
            ]
        )
        if m.get("small_cohort") or sel.get("small_cohort"):  # intervals wide, scores vary from run to run
            small.append(f"<b>{esc(a.name)}</b>: {esc(sel.get('protocol') or 'small cohort')}")
        small += [f"<b>{esc(a.name)}</b>: warning: {esc(w)}" for w in sel.get("warnings", [])]
    body = [
        (
            "<p>Each assay's accessions are split into low (normalised value below the low cut-off) and high "
            "(above the high cut-off); mid-range accessions are left out of training but every accession is "
            "predicted by the fold that held it out. Every family is trained and scored on the same stratified folds, "
            "an accession's images always on one side (repeated with a fresh split when <code>cv.repeats</code> > 1; "
            "a single repeat gives each paired test 4 degrees of freedom at 5 folds).</p>"
        ),
        table(
            [
                "assay",
                "winner of this run",
                "winner AUC mean ± SD [95% interval]"
                + ("; regression: Spearman ρ" if any(a.regression for a in inp.assays) else ""),
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
        *(f"<p class='note'>{line}</p>" for line in small),
    ]
    return section("overview", "Overview: the winner per assay", "".join(body))


def table1(inp: ReportInputs, figs: Figures) -> str:
    parts = [
        (
            "<p class='note'>The paper's Table 1: the CNN at each input resolution on the same folds, under the "
            "study's own protocol (params.yaml <code>resolution</code>: trials, epochs, refits; stage "
            "<code>resolution@A</code>). Curves per epoch, mean over folds: train and inner-validation loss (binary "
            "cross-entropy) and accuracy; the held-out fold's only where the study recorded it. The scores on the "
            "left are the held-out folds' (mean ± SD).</p>"
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
                        stat_cell({"mean": r.get("balanced_accuracy_mean"), "sd": r.get("balanced_accuracy_sd")}),
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


def _paired_rows(a: Any, suffix: str = "") -> list[list[str]]:
    """The paired comparisons of one assay's families on the same folds (its selecting metric), with p adjusted by
    Holm over the assay's comparisons; bold only where the adjusted p is below 0.05."""
    paired = (a.metrics or {}).get("paired") or (a.selection or {}).get("paired") or {}
    tests = [(name, t) for name, t in paired.items() if isinstance(t, Mapping)]
    raw = [float(t["p_value"]) if isinstance(t.get("p_value"), int | float) else float("nan") for _, t in tests]
    out = []
    for (name, t), adjusted in zip(tests, holm_adjusted(raw), strict=True):
        holm = pvalue(adjusted if math.isfinite(adjusted) else None)
        out.append(
            [
                esc(a.name),
                esc(name) + suffix,
                num(t.get("diff")),
                f"[{num(t.get('ci_low'))}, {num(t.get('ci_high'))}]",
                pvalue(t.get("p_value")),
                f"<b>{holm}</b>" if adjusted < 0.05 else holm,
            ]
        )
    return out


def _score_cell(entry: Mapping[str, Any], key: str) -> str:
    """A per-fold score cell. Precision in the top 10% is per fold only where a fold's top holds
    :data:`TOP_MIN_K` accessions; otherwise the pooled out-of-fold figure with its interval and count, or, when even
    the pooled top is too small, the note saying so."""
    cell = stat_cell(entry.get(key))
    if cell != "–" or key != "precision_top10":
        return cell
    k = ((entry.get("pooled") or {}).get(key) or {}).get("k")
    if not isinstance(k, int):
        return cell
    if k < TOP_MIN_K:
        return f"<span class='note'>{withheld_top(k)}</span>"
    return f"{_pooled_cell(entry, key)} <span class='note'>pooled, top {k}</span>"


def _pooled_cell(entry: Mapping[str, Any], key: str) -> str:
    """A pooled score with its interval (``families.<f>.pooled.<key>``), else the bare number stored under ``key``;
    an interval too few accessions cannot give reads "n/a (6 accessions)", with rho's permutation p."""
    pooled = (entry.get("pooled") or {}).get(key) or {}
    if not pooled:
        return num(entry.get(key))
    lo, hi = num(pooled.get("ci_low")), num(pooled.get("ci_high"))
    if lo != "–" and hi != "–":
        return f"{num(pooled.get('value'))} [{lo}, {hi}]"
    n = pooled.get("n")
    few = n is not None and n < SPEARMAN_MIN_PAIRS  # the count is the reason only below the Fisher-z minimum
    text = num(pooled.get("value")) + (f" <span class='note'>[n/a ({n} accessions)]</span>" if few else "")
    p = pooled.get("p_value")
    return text + (f" <span class='note'>p {pvalue(p)}</span>" if pvalue(p) != "–" else "")


def _regression_rows(a: Any, fams: Mapping[str, Any]) -> list[list[str]]:
    """Table 2 rows of a regression assay: per-fold Spearman, RMSE, R2 and the pooled Spearman with its interval."""
    rows = []
    for fam in [f for f in a.families if f in fams] + [f for f in fams if f not in a.families]:
        e = fams[fam] or {}
        rows.append(
            [esc(a.name), esc(fam) + (" <span class=badge>winner</span>" if fam == a.winner else "")]
            + [stat_cell(e.get(k)) for k, _ in REGRESSION_COLUMNS]
            + [_pooled_cell(e, "spearman"), num(e.get("seconds"), 1)]
        )
    return rows


def table2(inp: ReportInputs) -> str:
    rows, classes, paired_rows, regression_rows = [], [], [], []
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
        if a.regression:
            regression_rows += _regression_rows(a, fams)
            paired_rows += _paired_rows(a, " (Spearman ρ)")
            continue
        for fam in [f for f in a.families if f in fams] + [f for f in fams if f not in a.families]:
            e = fams[fam] or {}
            rows.append(
                [esc(a.name), esc(fam) + (" <span class=badge>winner</span>" if fam == a.winner else "")]
                + [_score_cell(e, k) for k, _ in SCORE_COLUMNS]
                + [_pooled_cell(e, "spearman"), num(e.get("seconds"), 1)]
            )
            classes.append("winner" if fam == a.winner else "")
        paired_rows += _paired_rows(a)
    body = [
        (
            "<p class='note'>Mean ± SD over every fold of every repeat, the 95% interval in brackets (corrected "
            "resampled t, for overlapping training sets; never narrower than one test set of all the labelled "
            "accessions allows: Newcombe's score interval for AUC, Wilson's for the others). Precision, top 10%: "
            "the share of truly high accessions among the 10% of the labelled accessions with the highest P(high), "
            "what a lab following up the top of the ranking finds; per "
            f"fold where every test fold's top 10% holds {TOP_MIN_K} accessions, else pooled over every fold's "
            "out-of-fold P(high) with its Wilson interval (marked pooled), and not shown when even that top holds "
            f"fewer. Spearman: out-of-fold probability against the raw assay value over all accessions, "
            f"mid-range included, with its Fisher-z interval from {SPEARMAN_MIN_PAIRS} accessions (below: n/a, and "
            "its permutation p). With few accessions a paired difference's interval is at least as wide as the two "
            "families' floors allow. The served family is highlighted.</p>"
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
    if regression_rows:  # labels.mode: regression: the value's scores, per fold and pooled
        body = body if rows else body[:1]
        body += [
            (
                "<h3>Regression assays (labels.mode: regression)</h3><p class='note'>Per fold: mean ± SD [95% "
                "corrected resampled t interval; Spearman's never narrower than its Fisher-z interval over the "
                "accessions, RMSE and R² not floored]; pooled: every accession's out-of-fold prediction against its "
                "measured value "
                f"(Spearman's ρ with a Fisher-z interval from {SPEARMAN_MIN_PAIRS} accessions, below that n/a and its "
                "permutation p).</p>"
            ),
            table(
                ["assay", "family"] + [label for _, label in REGRESSION_COLUMNS] + ["pooled Spearman ρ", "seconds"],
                regression_rows,
                raw=True,
            ),
        ]
    body += [f"<p class='note'>{n}</p>" for n in notes]
    mixed = " (Spearman ρ for regression assays)" if regression_rows else ""
    body.append(f"<h3>Paired tests on per-fold AUC{mixed}</h3>")
    paired_table = table(
        [
            "assay",
            "comparison",
            "difference" if mixed else "AUC difference",
            "95% interval",
            "p (corrected resampled t-test)",
            "p, Holm over the assay's comparisons",
        ],
        paired_rows,
        raw=True,
        numeric=(2,),
    )
    if not paired_rows:
        body.append(missing("paired tests (the <code>paired</code> block of metrics/&lt;assay&gt;.json)"))
    elif len(paired_rows) > 12:  # every pair of every assay: folded away so Table 2 stays readable
        body.append(
            f"<details><summary>{len(paired_rows)} comparisons (Holm-adjusted p &lt; 0.05 in bold)</summary>"
            f"{paired_table}</details>"
        )
    else:
        body.append(paired_table)
    return section("table2", "Table 2: every assay, every family", "".join(body))


def thresholds(a: Any, family: str) -> tuple[float | None, str | None, tuple[float, float] | None]:
    """The decision threshold ``family`` is used at and the folds' range (:func:`ms2img.plots.decision_threshold`,
    shared with the training stage's figure): the saved model's own (its card), else the folds' median."""
    per_fold: list[float] = []
    if a.folds is not None and {"family", "threshold"} <= set(a.folds.columns):
        f = a.folds[a.folds["family"].astype(str) == family]
        per_fold = [float(t) for t in f["threshold"] if isinstance(t, int | float) and math.isfinite(t)]
    t = ((a.cards or {}).get(family) or {}).get("threshold")
    return plots.decision_threshold(float(t) if isinstance(t, int | float) else None, per_fold)


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
        if a.regression:  # no classes, ROC or confusion: the training stage's predicted-vs-measured figures
            caption = "{}, {}: out-of-fold predicted against measured value"
            cells = [figs.file(a.plots.get(f"regression_{f.replace('-', '_')}"), caption.format(a.name, f))
                     for f in featured]  # fmt: skip
            parts.append("<div class=figs>" + "".join(cells) + "</div>")
            continue
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


def _permutation_p(p: Any, n_permutations: Any) -> str:
    """A permutation p; at its floor ``1 / (n + 1)`` it reads "≤ p (floor, n permutations)": no permutation scored as
    well, and more permutations would give a smaller p."""
    text = pvalue(p)
    n = n_permutations if isinstance(n_permutations, int) and n_permutations > 0 else None
    if n is not None and isinstance(p, int | float) and abs(float(p) - 1.0 / (n + 1)) < 1e-12:
        return f"≤ {1.0 / (n + 1):.2g} <span class='note'>(floor, {n} permutations)</span>"
    return text


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
                            _permutation_p(o.get("p_r2y"), o.get("n_permutations")),
                            _permutation_p(o.get("p_q2y"), o.get("n_permutations")),
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
        if a.regression:
            parts.append(missing("PCA / OPLS-DA and ROC: not run in regression mode (they describe low/high classes)"))
            continue
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
        if a.regression:
            data, err = F.safe(F.boxplots, a.folds, a.name, scratch, a.families, [k for k, _ in REGRESSION_COLUMNS])
            cells.append(figs.add(data, f"{a.name}: per-fold Spearman ρ, RMSE and R² by family (regression)", err))
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
