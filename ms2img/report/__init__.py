"""``ms2img report``: the paper's evidence regenerated on your cohort, as one self-contained HTML file.

:func:`build_report` reads what the stages wrote (docs/contracts.md: ``metrics/<A>.json``,
``reports/<A>/{oof,folds}.csv``, ``selection.json``, ``drivers.{csv,json}``, ``plots/<A>/*.png``,
``models/<A>/<family>/model.json``, ``reports/drift.json``, ``reports/validation.json``, ``params.yaml``, the DVC
hash of ``data/raw``), draws the figures it can from the tables, embeds every figure as a 256-colour PNG shown at
the size it was drawn (the page stays a few MB) and writes the page atomically. A piece that is absent shows a
"not run" note; nothing here raises for a missing or malformed input. Links to files beside the stage outputs
(``drivers.csv``, ``validation.html``) are relative to the page's folder, so they resolve where it is written.

Sections follow the paper: an overview, Table 1 (resolution study), Table 2 (every assay and family, mean ± SD,
95% interval, paired tests), Fig. 3 per assay (out-of-fold predictions vs assay values with cut-offs and the
threshold the model is used at, ROC, confusion), Fig. 4 (PCA, OPLS-DA scores and permutation test,
feature-table RF ROC), Fig. 5 (per-fold score box plots), then example fingerprints, the top drivers, drift, data
version, validation summary and the parameters in effect. Where class counts come from different protocols
(whole cohort, per fold, the attribution's accessions), each place says which in one line.
"""

from __future__ import annotations

import datetime as _dt
import logging
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ms2img.atomic import write_bytes, write_text
from ms2img.report import findings
from ms2img.report import sections as S
from ms2img.report.collect import AssayInputs, ReportInputs, collect
from ms2img.report.html import CSS, esc, missing, section

__all__ = ["AssayInputs", "ReportInputs", "ReportResult", "build_report", "collect", "log_report", "render_html"]

log = logging.getLogger(__name__)


@dataclass
class ReportResult:
    path: Path
    assays: list[str]
    families: list[str]
    n_figures: int
    missing: list[str] = field(default_factory=list)
    pdf_path: Path | None = None


def render_html(
    inp: ReportInputs,
    *,
    units: Mapping[str, str] | None = None,
    title: str = "ms2img report",
    scratch: Path | None = None,
    base: Path | None = None,
) -> tuple[str, list[tuple[str, bytes]]]:
    """The whole report as one HTML string, plus the embedded figures (caption, PNG bytes) in page order.

    ``base`` is the folder the page will be written to: links to stage outputs (drivers.csv, validation.html)
    are made relative to it, and left out without it.
    """
    figs = S.Figures()
    own = scratch is None
    tmp = tempfile.TemporaryDirectory(prefix="ms2img-report-") if own else None
    scratch = Path(tmp.name) if tmp else Path(scratch)
    try:
        builders = [  # the paper's order: Table 1, Table 2, Figures 3-5, then drivers and drift
            ("overview", lambda: S.overview(inp)),
            ("table1", lambda: S.table1(inp, figs)),
            ("table2", lambda: S.table2(inp)),
            ("fig3", lambda: S.fig3(inp, figs, scratch, units)),
            ("fig4", lambda: S.fig4(inp, figs, scratch)),
            ("fig5", lambda: S.fig5(inp, figs, scratch)),
            ("fingerprints", lambda: S.fingerprints(inp, figs, scratch, units)),
            ("drivers", lambda: findings.drivers(inp, figs, base)),
            ("drift", lambda: findings.drift(inp, figs)),
            ("provenance", lambda: findings.provenance(inp, base)),
        ]
        sections = []
        for i, (name, build) in enumerate(builders, 1):
            log.info("report: section %d/%d %s", i, len(builders), name)  # progress in the terminal and Prefect
            try:
                sections.append(build())
            except Exception as exc:
                log.warning("report: section %s failed: %s", name, exc, exc_info=True)
                sections.append(
                    section(
                        name,
                        name,
                        missing(f"this section could not be built ({esc(exc.__class__.__name__)}: {esc(exc)})"),
                    )
                )
    finally:
        if tmp is not None:
            tmp.cleanup()
    from ms2img import __version__

    created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    nav = "".join(
        f"<a href='#{k}'>{t}</a>"
        for k, t in (
            ("overview", "Overview"),
            ("table1", "Table 1"),
            ("table2", "Table 2"),
            ("fig3", "Figure 3"),
            ("fig4", "Figure 4"),
            ("fig5", "Figure 5"),
            ("fingerprints", "Fingerprints"),
            ("drivers", "Drivers"),
            ("drift", "Drift"),
            ("provenance", "Data & parameters"),
        )
    )
    assays = ", ".join(esc(a.name) for a in inp.assays) or "none"
    head = (
        f"<header><h1>{esc(title)}</h1><div class=meta>Assays: {assays} &middot; data/raw "
        f"<code>{esc(inp.data_version or 'unversioned')}</code> &middot; ms2img {esc(__version__)} &middot; "
        f"generated {esc(created)}</div></header>"
    )
    page = (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width, initial-scale=1'><title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{head}<nav>{nav}</nav><main>{''.join(sections)}</main></body></html>\n"
    )
    return page, figs.pngs


def _write_pdf(pngs: Sequence[tuple[str, bytes]], path: Path) -> Path | None:
    """The report's figures, one per page (a PDF for print; the tables live in the HTML)."""
    import io

    from PIL import Image

    if not pngs:
        return None
    pages = [Image.open(io.BytesIO(b)).convert("RGB") for _, b in pngs]
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=150)
    return write_bytes(path, buf.getvalue())


REPORT_PATH = Path("report") / "index.html"  # the pipeline's report stage; not under reports/, which it reads


def build_report(
    root: str | Path = ".",
    out: str | Path = REPORT_PATH,
    *,
    assays: list[str] | None = None,
    metrics_dir: str | Path = "metrics",
    reports_dir: str | Path = "reports",
    plots_dir: str | Path = "plots",
    models_dir: str | Path = "models",
    params_path: str | Path | None = "params.yaml",
    params: Mapping[str, Any] | None = None,
    units: Mapping[str, str] | None = None,
    pdf: bool = False,
    title: str = "ms2img report",
) -> ReportResult:
    """Collect every stage output under ``root`` and write the self-contained report to ``out`` (atomically).

    ``units`` maps assay -> units for the axes (else ``labels.units`` in params.yaml, if any). With ``pdf`` the
    figures are also written to ``out`` with a ``.pdf`` suffix. Relative ``out`` is taken from ``root``.
    """
    inp = collect(
        root,
        assays=assays,
        metrics_dir=metrics_dir,
        reports_dir=reports_dir,
        plots_dir=plots_dir,
        models_dir=models_dir,
        params_path=params_path,
        params=dict(params) if params is not None else None,
    )
    out = Path(out)
    out = out if out.is_absolute() else Path(root) / out
    page, pngs = render_html(inp, units=units, title=title, base=out.parent)
    write_text(out, page)
    pdf_path = _write_pdf(pngs, out.with_suffix(".pdf")) if pdf else None
    return ReportResult(
        path=out,
        assays=[a.name for a in inp.assays],
        families=inp.families,
        n_figures=len(pngs),
        missing=inp.missing,
        pdf_path=pdf_path,
    )


def log_report(
    result: ReportResult, *, experiment: str = "ms2img-report", uri: str | None = None, data_version: str | None = None
) -> str:
    """Log the report (and its PDF) as artifacts of a new MLflow run; returns the run id.

    Raises :class:`ms2img.errors.ConfigError` within seconds when the tracking server is unreachable.
    """
    import mlflow

    from ms2img import tracking

    tracking.setup_tracking(uri)
    tracking.use_experiment(experiment)
    with mlflow.start_run(run_name="report") as run:
        tags = {"run.kind": "report", "assays": ",".join(result.assays), "families": ",".join(result.families)}
        if data_version:
            tags["data.version"] = data_version
        tags["git.commit"] = tracking.code_version()
        mlflow.set_tags(tags)
        mlflow.log_metric("report_figures", result.n_figures)
        mlflow.log_artifact(str(result.path), "report")
        if result.pdf_path:
            mlflow.log_artifact(str(result.pdf_path), "report")
        return run.info.run_id
