"""Run the events and assays checks (:mod:`~ms2img.validation.events`, :mod:`~ms2img.validation.assays`), apply
the policy (fail or quarantine) and write the reports."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ms2img.errors import ConfigError, ValidationFailed
from ms2img.validation.assays import read_csv_strings, validate_assays
from ms2img.validation.events import (
    DEFAULT_FRAGMENT_TOLERANCE_DA,
    DEFAULT_MAX_ABOVE_PRECURSOR_SHARE,
    DEFAULT_MAX_INTENSITY,
    DEFAULT_MZ_RANGE,
    ISOTOPE_WINDOW_DA,
    validate_events,
)
from ms2img.validation.report import (
    ValidationReport,
    ValidationResult,
    write_reports,
)
from ms2img.validation.suites import gx_session

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_FRAGMENT_TOLERANCE_DA",
    "DEFAULT_MAX_ABOVE_PRECURSOR_SHARE",
    "DEFAULT_MAX_INTENSITY",
    "DEFAULT_MZ_RANGE",
    "MIN_ACCESSIONS",
    "POLICIES",
    "options_from_params",
    "quarantine_dir_for",
    "read_csv_strings",
    "run_validation",
    "validate_assays",
    "validate_events",
]

POLICIES = ("fail", "quarantine")
MIN_ACCESSIONS = 2  # quarantine must leave at least this many accessions to train on


# -------------------------------------------------------------------------------------- policy + reports


def _physics_note(events: ValidationResult, limit: float) -> str:
    """``; 1,234 fragments above their precursor (0.35%, in 238 accessions, at most 0.9% per accession, limit 5%)``
    plus the warning counts: what real data carries, said once."""
    st = events.statistics
    note = ""
    if st.get("fragments_above_precursor"):
        note += (
            f"; {st['fragments_above_precursor']:,} fragments above their precursor "
            f"({100 * st['above_precursor_share']:.2f}%, in {st['accessions_with_fragments_above_precursor']} "
            f"accession(s), at most {100 * st['max_above_precursor_share']:.2f}% per accession, limit "
            f"{100 * limit:g}%; {st.get('fragments_above_precursor_near', 0):,} within "
            f"{ISOTOPE_WINDOW_DA:g} Da: isotopes, co-isolated ions; masked by the renderer)"
        )
    if st.get("fragments_above_precursor_mz_of_multiply_charged"):
        note += (
            f"; {st['fragments_above_precursor_mz_of_multiply_charged']:,} fragments above the m/z of a multiply "
            "charged precursor but below its singly charged mass (physics, not counted)"
        )
    n_warn = sum(w.unexpected_count for w in events.warnings)
    if n_warn:
        checks = sorted({w.check for w in events.warnings})
        note += f"; warnings: {n_warn:,} rows ({'; '.join(checks)})"
    return note


def quarantine_dir_for(events_dir: str | Path) -> Path:
    """``<events_dir>/../quarantine``: beside the events folder, so a later glob of it never sees them."""
    return Path(events_dir).resolve().parent / "quarantine"


def _quarantined_accessions(qdir: Path) -> list[str]:
    out = set()
    for f in sorted(qdir.glob("*.parquet")) if qdir.is_dir() else []:
        try:
            values = pd.read_parquet(f, columns=["accession"])["accession"].dropna().astype(str).unique()
        except Exception:  # noqa: BLE001  # unreadable: quarantined for that reason, the name is all we have
            values = []
        out.update(values if len(values) == 1 else [f.stem])
    return sorted(out)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def options_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for :func:`run_validation` from params.yaml (``validate.*``, ``labels.assays``)."""
    v = params.get("validate") or {}
    policy = v.get("policy", "fail")
    if policy not in POLICIES:
        raise ConfigError(f"validate.policy must be one of {POLICIES}, got {policy!r}")
    try:
        mz_range = (float(v.get("mz_min", DEFAULT_MZ_RANGE[0])), float(v.get("mz_max", DEFAULT_MZ_RANGE[1])))
        tol = float(v.get("fragment_tolerance_da", DEFAULT_FRAGMENT_TOLERANCE_DA))
        max_intensity = float(v.get("max_intensity", DEFAULT_MAX_INTENSITY))
        max_share = float(v.get("max_above_precursor_share", DEFAULT_MAX_ABOVE_PRECURSOR_SHARE))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            "validate.mz_min / mz_max / fragment_tolerance_da / max_intensity / max_above_precursor_share must be "
            f"numbers ({exc})"
        ) from None
    assays = (params.get("labels") or {}).get("assays")
    if assays is not None and (isinstance(assays, str) or not all(isinstance(a, str) for a in assays)):
        raise ConfigError(f"labels.assays must be a list of column names, got {assays!r}")
    return {
        "policy": policy,
        "mz_range": mz_range,
        "fragment_tolerance_da": tol,
        "assays": assays,
        "max_intensity": max_intensity,
        "max_above_precursor_share": max_share,
    }


def run_validation(
    events_dir: str | Path,
    assays_csv: str | Path | None = None,
    report_dir: str | Path = "reports",
    policy: str = "fail",
    *,
    mz_range: tuple[float, float] = DEFAULT_MZ_RANGE,
    fragment_tolerance_da: float = DEFAULT_FRAGMENT_TOLERANCE_DA,
    assays: Sequence[str] | None = None,
    min_accessions: int = MIN_ACCESSIONS,
    max_intensity: float = DEFAULT_MAX_INTENSITY,
    max_above_precursor_share: float = DEFAULT_MAX_ABOVE_PRECURSOR_SHARE,
) -> ValidationReport:
    """Validate events (+ assays), apply the policy, write reports/validation.{json,html} atomically.

    ``fail``: any failure raises :class:`ValidationFailed` (after the reports are written). ``quarantine``:
    the Parquet files of failing accessions move to ``<events_dir>/../quarantine/`` and the run passes if at
    least ``min_accessions`` remain and assays.csv passes. A failed run moves nothing.
    """
    if policy not in POLICIES:
        raise ConfigError(f"policy must be one of {POLICIES}, got {policy!r}")
    events_dir = Path(events_dir)
    qdir = quarantine_dir_for(events_dir)
    with gx_session():  # one GX context for the events and assays suites
        events = validate_events(
            events_dir,
            mz_range=mz_range,
            fragment_tolerance_da=fragment_tolerance_da,
            max_intensity=max_intensity,
            max_above_precursor_share=max_above_precursor_share,
        )
        previously = _quarantined_accessions(qdir) if policy == "quarantine" else []
        assay_res = None
        if assays_csv is not None:
            known = sorted(set(events.accessions) | set(previously))
            assay_res = validate_assays(assays_csv, accessions=known, assays=assays)

    assays_ok = assay_res is None or assay_res.success
    candidates: list[str] = []
    if policy == "fail":
        bad_files: list[str] = []
        remaining = sorted(set(events.accessions) - set(events.failed_accessions))
        success = events.success and assays_ok
    else:
        bad_files = list(events.failed_files)
        unattributed = [f for f in events.failures if f.file not in events.files]  # e.g. GX errors
        remaining = sorted({a for f, a in events.files.items() if f not in set(bad_files) and a})
        success = assays_ok and not unattributed and len(remaining) >= min_accessions
    params = {
        "mz_min": mz_range[0],
        "mz_max": mz_range[1],
        "fragment_tolerance_da": fragment_tolerance_da,
        "max_intensity": max_intensity,
        "max_above_precursor_share": max_above_precursor_share,
        "assays": list(assays) if assays is not None else None,
        "min_accessions": min_accessions,
        "events_dir": _display(events_dir),
        "assays_csv": _display(Path(assays_csv)) if assays_csv is not None else None,
    }

    quarantined: list[dict[str, Any]] = []
    if policy == "quarantine" and bad_files:
        if success:
            qdir.mkdir(parents=True, exist_ok=True)
            for file in bad_files:
                src = Path(file)
                dst = qdir / src.name
                os.replace(src, dst)  # same filesystem: atomic
                acc = events.files.get(file) or src.stem
                checks = sorted({f.check for f in events.failures if f.file == file})
                quarantined.append({"accession": acc, "file": file, "moved_to": _display(dst), "checks": checks})
                log.warning("quarantined %s (%s): %s", acc, file, "; ".join(checks))
        else:
            candidates = sorted({events.files.get(f) or Path(f).stem for f in bad_files})

    failures = events.failures + (assay_res.failures if assay_res else [])
    report_html = Path(report_dir) / "validation.html"
    if success:
        message = f"validation passed: {len(remaining)} accession(s), {events.statistics['rows']:,} rows"
        if assay_res:
            message += f", {assay_res.statistics['rows']} assay rows"
            not_measured = [f"{w.column} on {w.unexpected_count}" for w in assay_res.warnings]
            if not_measured:  # empty cells: those accessions sit out that assay's training
                message += f" (not measured, left out of that assay: {', '.join(not_measured)})"
        if quarantined:
            message += f"; quarantined {len(quarantined)}: {', '.join(q['accession'] for q in quarantined)}"
        message += _physics_note(events, max_above_precursor_share)
    else:
        blocking = failures if policy == "fail" else (assay_res.failures if assay_res else [])
        if policy == "quarantine" and not blocking:
            blocking = [f for f in events.failures if f.file not in events.files]
        parts = [f.describe() for f in blocking[:3]]
        if policy == "quarantine" and len(remaining) < min_accessions:
            parts.insert(0, f"only {len(remaining)} accession(s) pass validation, at least {min_accessions} needed")
        more = len(blocking) - 3
        message = (
            f"validation failed ({len(failures)} problem(s)): " + "; ".join(parts)
            + (f"; and {more} more" if more > 0 else "")
            + f". Full report: {_display(report_html)}"
        )  # fmt: skip

    report = ValidationReport(
        success=success,
        policy=policy,
        events=events,
        assays=assay_res,
        params=params,
        message=message,
        quarantined=quarantined,
        quarantine_candidates=candidates,
        previously_quarantined=previously,
        remaining_accessions=remaining,
    )
    write_reports(report, report_dir)
    log.info("validation reports: %s, %s", report.json_path, report.html_path)
    if not success:
        exc = ValidationFailed(message)
        exc.report = report  # type: ignore[attr-defined]  # for callers that log the summary anyway
        raise exc
    return report
