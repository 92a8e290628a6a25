"""Validation results as plain data, and the JSON + HTML reports written from them.

A failure always names the file, where in it (Parquet: 0-based row position, ``df.iloc[row]``; CSV: the line
number an editor shows, header = line 1), the check and GX expectation, and the first offending values
(:data:`MAX_LISTED` per file and expectation) with the total count.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ms2img.atomic import write_text
from ms2img.errors import InputFileError, Ms2ImgError
from ms2img.jsonio import to_jsonable

MAX_LISTED = 20  # rows / values listed per (file, expectation); the count is always the full one
JSON_NAME = "validation.json"
HTML_NAME = "validation.html"


def jsonable(value: Any) -> Any:
    """Strict-JSON values for the report; NaN/inf stay visible as text (they are what was wrong)."""
    return to_jsonable(value, nonfinite="text")


def short_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Expectation kwargs for the report, long value sets cut to their first entries."""
    out: dict[str, Any] = {}
    for k, v in kwargs.items():
        if isinstance(v, (list, tuple)) and len(v) > MAX_LISTED:
            out[k] = [*list(v)[:MAX_LISTED], f"... ({len(v)} in all)"]
        else:
            out[k] = v
    return jsonable(out)


@dataclass
class Failure:
    """One failed expectation in one file."""

    file: str
    suite: str
    check: str  # what a person reads: "fragment_intensity >= 0 and finite"
    expectation: str  # GX type: "expect_column_values_to_be_between"
    column: str | None
    unexpected_count: int
    row_kind: str | None = None  # "row" (Parquet, 0-based) | "line" (CSV, 1-based) | None (whole file)
    rows: list[int] = field(default_factory=list)  # first MAX_LISTED
    values: list[Any] = field(default_factory=list)  # aligned with rows (or the missing values)
    context: list[dict[str, Any]] = field(default_factory=list)  # extra columns per listed row
    accession: str | None = None
    error: str | None = None
    hint: str | None = None  # what the values suggest (a misspelt accession's likely meaning)

    def where(self) -> str:
        """``file, rows 3, 7 (+5 more)`` / ``file, line 4`` / ``file``."""
        if not self.rows or not self.row_kind:
            return self.file
        shown = ", ".join(str(r) for r in self.rows[:5])
        more = self.unexpected_count - min(len(self.rows), 5)
        plural = "s" if self.unexpected_count > 1 else ""
        return f"{self.file}, {self.row_kind}{plural} {shown}" + (f" (+{more} more)" if more > 0 else "")

    def describe(self) -> str:
        """One line naming file, row/line, check, expectation and offending values."""
        col = f" on '{self.column}'" if self.column else ""
        text = f"{self.where()}: {self.check} [{self.expectation}{col}]"
        if self.error:
            return f"{text}: {self.error}"
        if self.values:
            vals = ", ".join(_fmt(v) for v in self.values[:5])
            more = "" if len(self.values) <= 5 and self.unexpected_count <= 5 else ", ..."
            text += f": {self.unexpected_count} unexpected, values {vals}{more}"
        elif self.unexpected_count:
            text += f": {self.unexpected_count} unexpected"
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "file": self.file,
                "accession": self.accession,
                "suite": self.suite,
                "check": self.check,
                "expectation": self.expectation,
                "column": self.column,
                "unexpected_count": self.unexpected_count,
                "row_kind": self.row_kind,
                "rows": self.rows,
                "values": self.values,
                "context": self.context,
                "error": self.error,
                "hint": self.hint,
                "message": self.describe(),
            }
        )


def _fmt(value: Any) -> str:
    v = jsonable(value)
    if v in ("NaN", "inf", "-inf") and not isinstance(value, str):
        return v
    return repr(v) if isinstance(v, str) else str(v)


@dataclass
class ValidationResult:
    """The outcome of validating one input (the events folder or assays.csv)."""

    name: str  # "events" | "assays"
    source: str
    success: bool
    expectations: list[dict[str, Any]]  # one entry per (suite, expectation), cohort-wide counts
    failures: list[Failure]  # one entry per (file, expectation)
    statistics: dict[str, Any]
    accessions: list[str] = field(default_factory=list)
    failed_accessions: list[str] = field(default_factory=list)  # events only: accessions with any failure
    files: dict[str, str] = field(default_factory=dict)  # events only: Parquet path -> accession
    failed_files: list[str] = field(default_factory=list)  # events only: files with any failure
    warnings: list[Failure] = field(default_factory=list)  # warning-severity findings (counted, not blocking)
    physics: dict[str, Any] = field(default_factory=dict)  # events only: fragments above the precursor

    def messages(self, limit: int | None = None) -> list[str]:
        """One line per failure (file, row/line, check, expectation, values)."""
        failures = self.failures if limit is None else self.failures[:limit]
        return [f.describe() for f in failures]

    def failures_for(self, accession: str) -> list[Failure]:
        return [f for f in self.failures if f.accession == accession]

    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "name": self.name,
                "source": self.source,
                "success": self.success,
                "statistics": self.statistics,
                "expectations": self.expectations,
                "failures": [f.to_dict() for f in self.failures],
                "accessions": len(self.accessions),
                "failed_accessions": self.failed_accessions,
                "failed_files": self.failed_files,
                "warnings": [w.to_dict() for w in self.warnings],
                "above_precursor": self.physics or None,
            }
        )


@dataclass
class ValidationReport:
    """Everything one ``ms2img validate`` run found and did; written as JSON and HTML."""

    success: bool
    policy: str
    events: ValidationResult
    assays: ValidationResult | None
    params: dict[str, Any]
    message: str
    quarantined: list[dict[str, Any]] = field(default_factory=list)  # moved this run
    quarantine_candidates: list[str] = field(default_factory=list)  # would be moved (run failed: nothing moved)
    previously_quarantined: list[str] = field(default_factory=list)
    remaining_accessions: list[str] = field(default_factory=list)
    json_path: Path | None = None
    html_path: Path | None = None
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))

    @property
    def failures(self) -> list[Failure]:
        return self.events.failures + (self.assays.failures if self.assays else [])

    def summary(self) -> dict[str, float | int | bool]:
        """Flat numbers for experiment tracking (e.g. ``mlflow.log_metrics({f"validation.{k}": v ...})``)."""
        results = [self.events] + ([self.assays] if self.assays else [])
        evaluated = sum(r.statistics.get("evaluated_expectations", 0) for r in results)
        failed = sum(r.statistics.get("unsuccessful_expectations", 0) for r in results)
        return {
            "success": bool(self.success),
            "files": int(self.events.statistics.get("files", 0)),
            "rows": int(self.events.statistics.get("rows", 0)),
            "accessions": len(self.events.accessions),
            "accessions_remaining": len(self.remaining_accessions),
            "quarantined": len(self.quarantined),
            "evaluated_expectations": int(evaluated),
            "failed_expectations": int(failed),
            "failures": len(self.failures),
            "unexpected_values": int(sum(f.unexpected_count for f in self.failures)),
            "warnings": int(sum(w.unexpected_count for w in self.events.warnings)),
            "fragments_above_precursor": int(self.events.statistics.get("fragments_above_precursor", 0)),
            "above_precursor_share": float(self.events.statistics.get("above_precursor_share", 0.0)),
            "max_above_precursor_share": float(self.events.statistics.get("max_above_precursor_share", 0.0)),
            "events_success": bool(self.events.success),
            "assays_success": bool(self.assays.success) if self.assays else True,
        }

    def to_dict(self, clock: bool = False) -> dict[str, Any]:
        """The report as data. ``clock``: with when it was made and how long each part took (the HTML shows them);
        without, a pure function of the inputs: validation.json is a dependency of every train stage, and a re-run
        ingest of the same data must leave it byte-identical."""
        from ms2img import __version__

        def timed(section: Any) -> dict[str, Any] | None:
            out = section.to_dict() if section else None
            if out is not None and not clock:
                out["statistics"] = {k: v for k, v in out.get("statistics", {}).items() if k != "seconds"}
            return out

        return jsonable(
            {
                **({"created": self.created} if clock else {}),
                "success": self.success,
                "message": self.message,
                "policy": self.policy,
                "ms2img_version": __version__,
                "params": self.params,
                "summary": self.summary(),
                "row_numbers": "Parquet rows are 0-based positions in the file (df.iloc[row]); "
                "CSV lines are 1-based as an editor shows them (header = line 1)",
                "quarantined": self.quarantined,
                "quarantine_candidates": self.quarantine_candidates,
                "previously_quarantined": self.previously_quarantined,
                "remaining_accessions": self.remaining_accessions,
                "events": timed(self.events),
                "assays": timed(self.assays),
            }
        )


# ----------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0} .ok{color:#1a7f37;font-weight:bold} .bad{color:#c62828;font-weight:bold}
code{font-size:0.95em} td.v{max-width:40em;word-break:break-all}
"""


def _esc(value: Any) -> str:
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    return html.escape("" if value is None else str(value))


def _status(ok: bool) -> str:
    return '<span class="ok">passed</span>' if ok else '<span class="bad">FAILED</span>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: dict[str, Any]) -> str:
    """A self-contained page (inline CSS, no scripts) from :meth:`ValidationReport.to_dict`."""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>ms2img validation: {'passed' if data['success'] else 'FAILED'}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>ms2img validation {_status(data['success'])}</h1>",
        f"<p>{_esc(data['message'])}</p>",
        (
            f"<p>Policy <code>{_esc(data['policy'])}</code>, created {_esc(data['created'])}, "
            f"ms2img {_esc(data['ms2img_version'])}. {_esc(data['row_numbers'])}.</p>"
        ),
        "<h2>Summary</h2>",
        _table(["metric", "value"], [[_esc(k), _esc(v)] for k, v in data["summary"].items()]),
    ]
    if data["quarantined"] or data["quarantine_candidates"] or data["previously_quarantined"]:
        parts.append("<h2>Quarantine</h2>")
        rows = [
            [_esc(q["accession"]), _esc(q["file"]), _esc(q["moved_to"]), _esc("; ".join(q["checks"]))]
            for q in data["quarantined"]
        ]
        rows += [[_esc(a), "", "not moved (the run failed)", ""] for a in data["quarantine_candidates"]]
        rows += [[_esc(a), "", "quarantined by an earlier run", ""] for a in data["previously_quarantined"]]
        parts.append(_table(["accession", "file", "moved to", "failed checks"], rows))
    for key in ("events", "assays"):
        res = data.get(key)
        if not res:
            continue
        parts.append(f"<h2>{_esc(key)} <small>({_esc(res['source'])})</small> {_status(res['success'])}</h2>")
        parts.append(_table(["statistic", "value"], [[_esc(k), _esc(v)] for k, v in res["statistics"].items()]))
        if res["failures"]:
            parts.append("<h3>Failures</h3>")
            parts.append(
                _table(
                    ["file", "where", "check", "expectation", "column", "unexpected", "first values", "detail"],
                    [
                        [
                            _esc(f["file"]),
                            _esc(f"{f['row_kind']}s {', '.join(map(str, f['rows']))}" if f["rows"] else ""),
                            _esc(f["check"]),
                            f"<code>{_esc(f['expectation'])}</code>",
                            _esc(f["column"]),
                            _esc(f["unexpected_count"]),
                            f"<span class='v'>{_esc(f['values'])}</span>",
                            _esc(f["error"] or f.get("hint") or (f["context"] if f["context"] else "")),
                        ]
                        for f in res["failures"]
                    ],
                )
            )
        if res.get("warnings"):
            parts.append("<h3>Warnings (counted, not blocking)</h3>")
            parts.append(
                _table(
                    ["file", "where", "check", "unexpected", "first values"],
                    [
                        [
                            _esc(w["file"]),
                            _esc(f"{w['row_kind']}s {', '.join(map(str, w['rows']))}" if w["rows"] else ""),
                            _esc(w["check"]),
                            _esc(w["unexpected_count"]),
                            f"<span class='v'>{_esc(w['values'])}</span>",
                        ]
                        for w in res["warnings"]
                    ],
                )
            )
        physics = res.get("above_precursor")
        if physics and physics.get("per_accession"):
            with_above = [r for r in physics["per_accession"] if r["above_precursor"]]
            parts.append(
                f"<h3>Fragments above the precursor (+{_esc(physics['tolerance_da'])} Da)</h3>"
                f"<p>{_esc(physics['total_above'])} of {_esc(physics['total_fragments'])} fragments "
                f"({_esc(round(100 * physics['share'], 3))}%) in {len(with_above)} accession(s), "
                f"{_esc(physics.get('total_near', 0))} of them within {_esc(physics.get('isotope_window_da', ''))} "
                "Da (13C isotopes of the precursor, co-isolated ions), the rest weak noise or a wrong export; "
                "masked by the renderer (the region above the diagonal). A multiply charged precursor is judged "
                "by its singly charged mass: "
                f"{_esc(physics.get('total_explained_by_charge', 0))} fragments above its m/z but below that mass "
                "are not counted. An accession fails only when its share passes the limit.</p>"
            )
            parts.append(
                _table(
                    ["accession", "file", "fragments", "above precursor", "share", "first (precursor, fragment)"],
                    [
                        [
                            _esc(r["accession"]),
                            _esc(r["file"]),
                            _esc(r["fragments"]),
                            _esc(r["above_precursor"]),
                            _esc(f"{100 * r['above_precursor_share']:.3f}%"),
                            _esc([(p["precursor_mz"], p["fragment_mz"]) for p in r["first_pairs"][:3]]),
                        ]
                        for r in sorted(with_above, key=lambda r: -r["above_precursor_share"])
                    ],
                )
            )
        parts.append("<h3>Expectations</h3>")
        parts.append(
            _table(
                ["suite", "check", "expectation", "kwargs", "result", "unexpected", "files"],
                [
                    [
                        _esc(e["suite"]),
                        _esc(e["check"]),
                        f"<code>{_esc(e['expectation'])}</code>",
                        f"<code>{_esc(e['kwargs'])}</code>",
                        _status(e["success"]),
                        _esc(e["unexpected_count"]),
                        _esc(e.get("files_failed", "")),
                    ]
                    for e in res["expectations"]
                ],
            )
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_reports(report: ValidationReport, report_dir: str | Path) -> tuple[Path, Path]:
    """Write validation.json and validation.html atomically; both are rendered before either is replaced."""
    report_dir = Path(report_dir)
    json_path, html_path = report_dir / JSON_NAME, report_dir / HTML_NAME
    report.json_path, report.html_path = json_path, html_path
    data = report.to_dict()
    json_text = json.dumps(data, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
    html_text = render_html(report.to_dict(clock=True))
    write_text(json_path, json_text)
    write_text(html_path, html_text)
    return json_path, html_path


def write_read_failure(error: Ms2ImgError, source: str | Path, report_dir: str | Path, policy: str) -> None:
    """A failed report for an input that could not be read at all (so no expectation ran): without it, the report of
    the last reading that passed would stay in ``report_dir`` and say 'passed' about a file that now fails. An
    :class:`InputFileError` names its file and line; another refusal (mixed ion modes, clashing names) the input."""
    line = error.line if isinstance(error, InputFileError) else None
    failure = Failure(
        file=error.path if isinstance(error, InputFileError) else str(source),
        suite="read",
        check="the input reads as the format it claims",
        expectation="readable",
        column=error.column if isinstance(error, InputFileError) else None,
        unexpected_count=1,
        row_kind="line" if line is not None else None,
        rows=[line] if line is not None else [],
        error=error.problem if isinstance(error, InputFileError) else str(error),
    )
    events = ValidationResult(
        name="events", source=str(source), success=False, expectations=[], failures=[failure], statistics={}
    )
    message = f"validation failed (1 problem(s)): {error}"
    report = ValidationReport(success=False, policy=policy, events=events, assays=None, params={}, message=message)
    write_reports(report, report_dir)
