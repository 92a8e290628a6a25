"""The model card (a version's description) and the registered model's description, as markdown."""

from __future__ import annotations

from typing import Any


def _metric(card: dict, key: str) -> dict[str, float]:
    m = (card.get("metrics") or {}).get(key) or {}
    if isinstance(m, int | float):
        return {"mean": float(m)}
    return {k: float(v) for k, v in m.items() if isinstance(v, int | float)}


def _fmt_metric(m: dict[str, float]) -> str:
    if "mean" not in m:
        return "n/a"
    text = f"{m['mean']:.3f}"
    if "sd" in m:
        text += f" ± {m['sd']:.3f} (SD)"
    if "ci_low" in m and "ci_high" in m:
        text += f", 95 % CI {m['ci_low']:.3f}-{m['ci_high']:.3f}"
    return text


def model_card(card: dict[str, Any], *, version: str, data_hash: str, code_version: str, trained_at: str) -> str:
    """The version description shown in the registry (markdown)."""
    counts = card.get("class_counts") or {}
    scaling = card.get("label_scaling") or {}
    lines = [
        (
            f"**{card.get('assay')} · {card.get('family')}** (version {version}): P(high activity) per accession "
            "from raw LC-MS/MS peaks."
        ),
        "",
        "| | |",
        "|---|---|",
        f"| AUC (cross-validated) | {_fmt_metric(_metric(card, 'auc'))} |",
        f"| balanced accuracy | {_fmt_metric(_metric(card, 'balanced_accuracy'))} |",
        f"| MCC | {_fmt_metric(_metric(card, 'mcc'))} |",
        (
            f"| class counts | {', '.join(f'{k}: {v}' for k, v in counts.items()) or 'n/a'} "
            f"({card.get('n_accessions', 'n/a')} accessions) |"
        ),
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


def registered_model_description(assay: str) -> str:
    """The registered model's description: what it predicts and how to call it."""
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
        "unlike the training data: treat the class as 'cannot say')."
    )
