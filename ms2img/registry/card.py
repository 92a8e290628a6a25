"""The model card (a version's description) and the registered model's description, as markdown."""

from __future__ import annotations

import math
from typing import Any

from ms2img.explain.labels import fold_text, shown_name
from ms2img.training.scores import SPEARMAN_MIN_PAIRS, TOP_MIN_K, withheld_top


def card_metric(card: dict, key: str) -> dict[str, float]:
    m = (card.get("metrics") or {}).get(key) or {}
    if isinstance(m, int | float):
        return {"mean": float(m)}
    return {k: float(v) for k, v in m.items() if isinstance(v, int | float) and math.isfinite(v)}  # NaN: not shown


def _fmt_metric(m: dict[str, float]) -> str:
    if "mean" not in m:
        return "n/a"
    text = f"{m['mean']:.3f}"
    if "sd" in m:
        text += f" ± {m['sd']:.3f} (SD)"
    if "ci_low" in m and "ci_high" in m:
        text += f", 95 % CI {m['ci_low']:.3f} to {m['ci_high']:.3f}"
    return text


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _fmt_pooled(card: dict, key: str) -> str:
    """A pooled score with its interval; on too few accessions "n/a" with the count (and rho's permutation p)."""
    m = (card.get("pooled") or {}).get(key) or {}
    if not _finite(m.get("value")):
        k = m.get("k")
        if not _finite(k):
            return "n/a"
        return withheld_top(int(k), f"reported from {TOP_MIN_K}")
    text = f"{m['value']:.3f}"
    if _finite(m.get("ci_low")) and _finite(m.get("ci_high")):
        text += f", 95 % CI {m['ci_low']:.3f} to {m['ci_high']:.3f}"
    elif _finite(m.get("n")) and m["n"] < SPEARMAN_MIN_PAIRS:
        text += f", 95 % CI n/a ({m['n']} accessions)"
    if _finite(m.get("p_value")):
        text += f", p {m['p_value']:.2g}"  # rho: by permutation up to 30 accessions (scores.spearman_p)
    return text


def regression_card(card: dict[str, Any], *, version: str, data_hash: str, code_version: str, trained_at: str) -> str:
    """The version description of a regression model (``labels.mode: regression``): value, units, Spearman first."""
    rho = card_metric(card, "spearman")
    headline = f", cross-validated Spearman rho {rho['mean']:.3f}" if "mean" in rho else ""
    units = card.get("units") or "the assay's units"
    span = card.get("value_range") or {}
    lines = [
        (
            f"{card.get('assay')} {card.get('family')} v{version}{headline}: the {card.get('assay')} value ({units}) "
            "per accession from raw LC-MS/MS peaks (regression)."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| Spearman rho (per fold) | {_fmt_metric(rho)} |",
        f"| RMSE (per fold, {units}) | {_fmt_metric(card_metric(card, 'rmse'))} |",
        f"| R2 (per fold) | {_fmt_metric(card_metric(card, 'r2'))} |",
        f"| Spearman rho (pooled out-of-fold) | {_fmt_pooled(card, 'spearman')} |",
        (
            f"| training values | {span.get('min', '?')} to {span.get('max', '?')} "
            f"({card.get('n_accessions', 'n/a')} accessions) |"
        ),
        *([f"| cohort | {card.get('protocol') or 'small cohort'} |"] if card.get("small_cohort") else []),
        f"| input | {card.get('input')} ({_input_detail(card)}) |",
        f"| data version (DVC) | `{data_hash}` |",
        f"| code version | `{code_version}` |",
        f"| trained | {trained_at} ({float(card.get('seconds', 0) or 0):.0f} s) |",
    ]
    return "\n".join(lines)


def _acted_on(card: dict[str, Any]) -> list[str]:
    """Rows of the scores a lab acts on (cards written before them have none): precision among the top 10% ranked
    by P(high), per fold and pooled, and Spearman's rho of the pooled P(high) with the raw assay value."""
    rows = []
    if card_metric(card, "precision_top10"):
        rows.append(
            f"| precision in top 10% by P(high) (per fold) | {_fmt_metric(card_metric(card, 'precision_top10'))} |"
        )
    pooled = card.get("pooled") or {}
    if "precision_top10" in pooled:
        k = pooled["precision_top10"].get("k")
        rows.append(f"| precision in top 10% (pooled, top {k}) | {_fmt_pooled(card, 'precision_top10')} |")
    if "spearman" in pooled:
        rows.append(f"| Spearman rho of P(high) with the value (pooled) | {_fmt_pooled(card, 'spearman')} |")
    return rows


def model_card(card: dict[str, Any], *, version: str, data_hash: str, code_version: str, trained_at: str) -> str:
    """The version description shown in the registry (markdown)."""
    if card.get("mode") == "regression":
        return regression_card(card, version=version, data_hash=data_hash, code_version=code_version,
                               trained_at=trained_at)  # fmt: skip
    counts = card.get("class_counts") or {}
    scaling = card.get("label_scaling") or {}
    auc = card_metric(card, "auc")
    headline = f", cross-validated AUC {auc['mean']:.3f}" if "mean" in auc else ""
    lines = [
        (  # plain text first: the registry's versions list shows this line, cut, without rendering markdown
            f"{card.get('assay')} {card.get('family')} v{version}{headline}: P(high activity) per accession from "
            "raw LC-MS/MS peaks."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| AUC (cross-validated) | {_fmt_metric(card_metric(card, 'auc'))} |",
        f"| balanced accuracy | {_fmt_metric(card_metric(card, 'balanced_accuracy'))} |",
        f"| MCC | {_fmt_metric(card_metric(card, 'mcc'))} |",
        *_acted_on(card),
        (
            f"| class counts | {', '.join(f'{k}: {v}' for k, v in counts.items()) or 'n/a'} "
            f"({card.get('n_accessions', 'n/a')} accessions) |"
        ),
        *([f"| cohort | {card.get('protocol') or 'small cohort'} |"] if card.get("small_cohort") else []),
        (
            f"| label scaling | normalised = (value - {scaling.get('min', '?')}) / ({scaling.get('max', '?')} - "
            f"{scaling.get('min', '?')}); low < {scaling.get('low', 0.4)}, high > {scaling.get('high', 0.6)} |"
        ),
        f"| decision threshold | {float(card.get('threshold', 0.5)):.3f} on P(high) |",
        f"| input | {card.get('input')} ({_input_detail(card)}) |",
        f"| data version (DVC) | `{data_hash}` |",
        f"| code version | `{code_version}` |",
        f"| trained | {trained_at} ({float(card.get('seconds', 0) or 0):.0f} s) |",
    ]
    return "\n".join(lines)


def _input_detail(card: dict) -> str:
    if card.get("input") == "image":
        r = card.get("render") or {}
        return f"{r.get('width')}x{r.get('height')} fingerprint, transform {r.get('transform', 'none')}"
    m = card.get("matching") or {}
    return f"training features matched by MS1/RT/{m.get('method', 'MS2')} mean similarity > {m.get('threshold', 0.8)}"


def registered_model_description(assay: str, mode: str = "classification") -> str:
    """The registered model's description: what it predicts and how to call it."""
    if mode == "regression":
        return (
            f"Predicts the **{assay} value** of a natural-product extract (regression, `labels.mode: regression`) "
            "from its untargeted LC-MS/MS peaks. One version per model family (tag `family`); `@champion` is the "
            "safely promoted best one by Spearman rho.\n\n"
            f"Call: `ms2img serve --assay {assay}` (or `mlflow models serve -m models:/ms2img-{assay}@champion`), "
            "then POST `/invocations` with one row per precursor (`accession, precursor_mz, precursor_intensity, "
            "rt_min, msms`). The answer per accession: `prediction` (in `units`), `mode` (regression), `family`, "
            "`model_version`, `in_domain` / `domain_note` (out of domain the value is null unless the request sends "
            "class_out_of_domain)."
        )
    return (
        f"Predicts whether a natural-product extract is **high or low in {assay} activity** from its untargeted "
        "LC-MS/MS peaks (no compound identification). One version per model family (tag `family`: cnn, rf-image, "
        "rf-cosine, rf-entropy); `@champion` is the safely promoted best one, `@challenger` the latest one that "
        "was not promoted (reason in its tags).\n\n"
        f"Call: `ms2img serve --assay {assay}` (or `mlflow models serve -m models:/ms2img-{assay}@champion`), then "
        "POST `/invocations` with `Content-Type: application/json` and one row per precursor: "
        '`{"dataframe_records": [{"accession": "S1", "precursor_mz": 609.1461, "precursor_intensity": 152000, '
        '"rt_min": 6.2, "msms": "300.0274:1200 301.0352:8800"}]}`. The answer per accession: `probability` '
        "(P(high)), `class`, `family`, `model_version`, and `in_domain` / `domain_note` (false = the accession is "
        "unlike the training data: its class is null unless the request sends class_out_of_domain)."
    )


# ------------------------------------------------------------------------------------------ drivers on the card
DRIVERS_HEADING = "#### Drivers (`ms2img explain`)"
DRIVERS_TAG = "explain.drivers"  # the artifact path of drivers.csv in the version's run
DRIVERS_URI_TAG = "explain.drivers_uri"  # runs:/<run_id>/explain/drivers.csv
TOP_DRIVERS_TAG = "explain.top_drivers"  # the top drivers in one line


def _text(value: Any) -> str:
    """A cell as plain text: '' for missing values (NaN, None), markdown table separators escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip().replace("|", "/")


def _driver_rows(drivers: Any, top: int) -> list[dict]:
    """The first ``top`` drivers (by ``rank`` when given) as dicts; ``drivers`` is a DataFrame or a list of dicts."""
    rows = drivers.to_dict(orient="records") if hasattr(drivers, "to_dict") else [dict(r) for r in drivers]
    if rows and "rank" in rows[0]:
        rows = sorted(rows, key=lambda r: float(r["rank"]))
    return rows[: max(0, int(top))]


def _num(row: dict, key: str, fmt: str) -> str:
    try:
        value = float(row.get(key))
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(value) else format(value, fmt)


def drivers_section(drivers: Any, *, artifact_uri: str, figure_uri: str | None = None, top: int = 5) -> str:
    """The card's drivers section (markdown): the top ``top`` drivers (m/z, RT, direction, fold change, library
    name, importance) and where the full table (and the figure) are stored."""
    rows = _driver_rows(drivers, top)
    n_total = len(drivers) if hasattr(drivers, "__len__") else len(rows)
    lines = [
        DRIVERS_HEADING,
        "",
        (
            f"The {len(rows)} of {n_total} candidate compounds that carry the champion's held-out predictions most "
            "(occlusion of m/z boxes joined to the training precursors; `up`: more abundant in high-activity "
            "accessions; importance: its share of the class-aware change in held-out P(high) when its m/z boxes are "
            "occluded; conditional: importance x its effect given the other candidates, which orders them)."
        ),
        "",
        "| rank | precursor m/z | RT (min) | direction | fold change | library name | importance | conditional |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {_num(r, 'rank', '.0f')} | {_num(r, 'precursor_mz', '.4f')} | {_num(r, 'rt_min', '.2f')} | "
            f"{_text(r.get('direction'))} | {fold_text(r)} | {_text(shown_name(r)) or '-'} | "
            f"{_num(r, 'importance', '.3g')} | {_num(r, 'conditional_importance', '.3g')} |"
        )
    lines += ["", f"Full table: `{artifact_uri}`" + (f"; figure: `{figure_uri}`" if figure_uri else "") + "."]
    return "\n".join(lines)


def with_drivers(description: str, section: str) -> str:
    """``description`` with its drivers section replaced by ``section`` (appended when there is none yet)."""
    text = description or ""
    at = text.find(DRIVERS_HEADING)
    if at >= 0:
        text = text[:at]
    return text.rstrip() + "\n\n" + section if text.strip() else section


def top_drivers_tag(drivers: Any, top: int = 5, limit: int = 4000) -> str:
    """The top drivers in one line for a tag: ``m/z 447.0934 RT 3.13 up Quercetin 3-O-rhamnoside; ...``."""
    parts = []
    for r in _driver_rows(drivers, top):
        name = shown_name(r)
        part = f"m/z {_num(r, 'precursor_mz', '.4f')} RT {_num(r, 'rt_min', '.2f')} {_text(r.get('direction'))}"
        parts.append(part + (f" {name}" if name else ""))
    return "; ".join(parts)[:limit]


def attach_drivers(
    name: str,
    version: str | int,
    drivers: Any,
    *,
    run_id: str,
    artifact_path: str = "explain/drivers.csv",
    figure_path: str | None = "explain/drivers.png",
    top: int = 5,
    client: Any = None,
) -> str:
    """Put the drivers on a registered model version's card: its description gets (or has replaced) the drivers
    section, tags ``explain.drivers`` (the artifact path in ``run_id``), ``explain.drivers_uri`` and
    ``explain.top_drivers``. ``drivers`` is the drivers table (a DataFrame, or the path of drivers.csv); the files
    must already be logged to ``run_id`` (``ms2img explain`` does it; FileNotFoundError otherwise); the figure is
    linked when it is logged too. Returns the new description."""
    import pandas as pd
    from mlflow import MlflowClient

    if not hasattr(drivers, "to_dict") and not isinstance(drivers, list):
        drivers = pd.read_csv(drivers, keep_default_na=False)
    client = client or MlflowClient()
    version = str(version)
    uri = f"runs:/{run_id}/{artifact_path}"
    figure = f"runs:/{run_id}/{figure_path}" if figure_path else None
    folder = artifact_path.rpartition("/")[0]
    logged = {f.path for f in client.list_artifacts(run_id, folder or None)}
    if artifact_path not in logged:
        raise FileNotFoundError(f"run {run_id} has no artifact {artifact_path} (log drivers.csv first)")
    figure = figure if figure_path in logged else None
    current = client.get_model_version(name, version).description or ""
    description = with_drivers(current, drivers_section(drivers, artifact_uri=uri, figure_uri=figure, top=top))
    client.update_model_version(name, version, description=description)
    client.set_model_version_tag(name, version, DRIVERS_TAG, artifact_path)
    client.set_model_version_tag(name, version, DRIVERS_URI_TAG, uri)
    client.set_model_version_tag(name, version, TOP_DRIVERS_TAG, top_drivers_tag(drivers, top))
    return description
