"""The report's closing sections: the compounds behind each assay (drivers), drift under batch effects, and
provenance (data version, validation, parameters). Split from :mod:`ms2img.report.sections` (the paper's tables
and figures) so each module keeps one kind of section.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ms2img.explain.labels import fold_text, shown_name
from ms2img.report.collect import AssayInputs, ReportInputs
from ms2img.report.html import (
    esc,
    link,
    missing,
    num,
    records_table,
    section,
    stat_cell,
    table,
)
from ms2img.report.sections import Figures

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
    if name and shown_name(r):  # an open-search hit strong enough to name (labels.NAME_MIN_SCORE / _PEAKS)
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
        fc = _float(r.get("mean_high"))  # the fold change itself is inf for a compound no low accession shows
        rows.append(
            [
                num(r.get("rank")) if _float(r.get("rank")) is not None else str(i),
                num(r.get("precursor_mz"), 4),
                num(r.get("rt_min"), 2),
                {
                    "up": "<span class=nowrap>up in active</span>",
                    "down": "<span class=nowrap>down in active</span>",
                }.get(direction, esc(direction) or "–"),
                fold_text(r) if fc is not None else "–",
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


def stale_drivers(a: AssayInputs, meta: dict[str, Any]) -> str | None:
    """Why an assay's drivers no longer explain its model, or None: ``ms2img explain`` ran on another winner, or on
    an earlier training of the same family (``drivers.json`` keeps the model's ``training_key``), or promotion kept
    an older champion, so the winner explained is not served. ``dvc repro``
    re-runs explain after train; a retrain and promote by hand did not, and the report showed the old drivers."""
    family, winner = meta.get("family"), a.winner
    rerun = f"run `ms2img explain --assay {a.name}` (or `dvc repro explain@{a.name}`)"
    if family and winner and family != winner:
        return f"Out of date: these drivers explain the {family} model; the winner is now {winner}: {rerun}."
    trained = (a.cards.get(str(family)) or {}).get("training_key")
    if meta.get("training_key") and trained and trained != meta["training_key"]:
        return f"Out of date: the {family} model was trained again after these drivers were computed: {rerun}."
    if rollback := a.rolled_back:
        return (
            f"Not the served model: these drivers explain this run's winner, {family}; the registry serves "
            f"v{rollback.get('champion')} ({rollback.get('family') or '?'}), rolled back to by hand."
        )
    promotion = a.promotion or {}
    if promotion.get("rejected") and promotion.get("champion_after"):
        return (
            f"Not the served model: these drivers explain this run's winner, {family}; the registry still serves "
            f"v{promotion['champion_after']} ({promotion.get('champion_family') or '?'}), which promotion kept."
        )
    return None


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
            stale = stale_drivers(a, meta)
            if stale:
                parts.append(f"<p class='missing'>{esc(stale)}</p>")
            csv = link(a.drivers_csv, base, f"reports/{a.name}/drivers.csv")
            parts.append(
                f"<p class='note'>Top {min(DRIVERS_TOP, len(a.drivers))} of {len(a.drivers)} drivers"
                f"{' of ' + esc(meta['family']) if meta.get('family') else ''}; every column (consensus spectra, "
                f"adducts, image boxes) in {csv}.</p>"
            )
            if meta.get("n_samples") is not None and meta.get("n_accessions") is None:  # a regression's correlation
                parts.append(
                    f"<p class=counts>{esc(meta.get('attribution', 'correlation'))}: {num(meta.get('n_features'))} "
                    f"features x {num(meta.get('n_samples'))} samples, {num(meta.get('n_q_below_0.05'))} with "
                    f"q &lt; 0.05 (p by {esc(meta.get('p_method', 'permutation'))}); direction is the sign of r.</p>"
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
        assays = ",".join(a.name for a in inp.assays) or "ASSAY"
        return section(
            "drift",
            "Drift stress test",
            "<p class='note'>Not run: the drift stress test is a benchmark of the ms2img source tree; from a clone of "
            f"it, <code>python benchmarks/drift.py --project PROJECT --assays {esc(assays)}</code> writes this "
            "project's reports/drift.json and plots/drift.png, which the next <code>ms2img report</code> shows here."
            "</p>" + pngs,
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
            f"{esc(v.get('message', ''))} <span class='note'>(policy {esc(v.get('policy'))}"
            f"{', ' + esc(v['created']) if v.get('created') else ''})</span></p>"
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
