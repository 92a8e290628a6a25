"""``ms2img ingest``: read every input, write one events Parquet per training accession plus ``samples.csv``.

Nothing is written to ``out_dir`` until every input was read: per-accession parts are staged in a hidden folder
inside ``out_dir`` and moved in at the end, so a bad file leaves ``out_dir`` as it was. Parquet files of
accessions no longer present are removed only after all new files are in place.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from ms2img.atomic import atomic_path
from ms2img.errors import ConfigError, InputFileError
from ms2img.io.fbmn import is_quant_header, read_fbmn
from ms2img.io.msdial import is_msdial_header, read_msdial
from ms2img.io.raw import read_raw, sniff_raw
from ms2img.io.result import ReadResult, check_not_binary
from ms2img.io.sample_sheet import read_sample_sheet, strip_raw_extension
from ms2img.io.schema import SAMPLE_COLUMNS, SAMPLE_TYPES, accession_filename, empty_events, read_events, write_events

log = logging.getLogger(__name__)

MANIFEST = "samples.csv"
TEXT_EXTENSIONS = {".txt", ".tsv", ".csv", ".mgf"}
RAW_EXTENSIONS = {".mzml", ".mzxml"}
FORMATS = ("msdial", "quant", "mgf", "raw")


@dataclass
class IngestSummary:
    """What an ingest run wrote and found."""

    out_dir: Path
    files: int = 0
    accessions: int = 0
    samples: dict[str, int] = field(default_factory=dict)  # by type, incl. blanks and QC
    events: int = 0
    precursors_without_msms: int = 0
    blank_removed: int = 0  # (sample, feature) pairs dropped by blank subtraction
    stale_removed: list[str] = field(default_factory=list)
    warnings: dict[str, int] = field(default_factory=dict)

    def format(self) -> str:
        """A few lines for people."""
        types = ", ".join(f"{n} {t}" for t, n in sorted(self.samples.items())) or "none"
        lines = [
            f"ingested {self.files} file(s) into {self.out_dir}",
            f"  accessions written: {self.accessions} ({self.events:,} fragment events)",
            f"  samples: {types}",
            f"  precursors without MS/MS: {self.precursors_without_msms}",
        ]
        if self.blank_removed:
            lines.append(f"  removed by blank subtraction: {self.blank_removed} sample features")
        if self.stale_removed:
            lines.append(f"  removed stale files: {', '.join(self.stale_removed)}")
        lines += [f"  warning: {kind}: {n}" for kind, n in sorted(self.warnings.items())]
        return "\n".join(lines)


@dataclass
class _Job:
    kind: str  # msdial | quant | raw
    path: Path
    mgf: Path | None = None
    accession_from: str = "column"


def sniff(path: str | Path) -> str:
    """The format of ``path`` from its content (extension only as a tie-breaker): one of ``FORMATS``."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    with open(path, "rb") as fh:
        head = fh.read(65536)
    check_not_binary(path, head)
    raw = sniff_raw(head)
    if raw:
        return "raw"
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()[:60]
    if any(ln.strip().upper() == "BEGIN IONS" for ln in lines):
        return "mgf"
    if any(is_msdial_header(ln) or ln.lstrip("\ufeff").startswith("Alignment ID") for ln in lines):
        return "msdial"
    if lines and is_quant_header(lines[0]):
        return "quant"
    ext = path.suffix.lower()
    if ext in (".txt", ".tsv"):
        return "msdial"  # let the reader say what is wrong with it
    if ext == ".csv":
        return "quant"
    if ext in RAW_EXTENSIONS:
        return "raw"
    if ext == ".mgf":
        return "mgf"
    raise InputFileError(path, "unrecognised format (expected an MS-DIAL export, quant CSV + MGF, mzML or mzXML)", 1)


def plan(inputs: list[str | Path] | str | Path, mgf: str | Path | None = None) -> list[_Job]:
    """Expand folders, sniff formats, pair quant tables with MGFs and pick the MS-DIAL accession mode.

    MS-DIAL exports found in a folder, or several named explicitly, are one export per accession (accession =
    file stem, replicate = sample column); a single named export makes each sample column an accession.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise ConfigError("no inputs given")
    found: list[tuple[Path, str, bool]] = []  # (path, format, from a folder)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in TEXT_EXTENSIONS | RAW_EXTENSIONS
            )
            if not files:
                raise InputFileError(p, "folder holds no .txt/.tsv/.csv/.mgf/.mzML/.mzXML files")
            found += [(f, sniff(f), True) for f in files]
        else:
            found.append((p, sniff(p), False))
    mgfs = [p for p, kind, _ in found if kind == "mgf"]
    if mgf is not None:
        mgf = Path(mgf)
        if sniff(mgf) != "mgf":
            raise InputFileError(mgf, "not an MGF file (no BEGIN IONS)", line=1)
    quants = [p for p, kind, _ in found if kind == "quant"]
    msdial = [(p, from_dir) for p, kind, from_dir in found if kind == "msdial"]
    several = len([p for p, d in msdial if not d]) > 1

    jobs = [_Job("msdial", p, accession_from="file" if from_dir or several else "column") for p, from_dir in msdial]
    for q in quants:
        jobs.append(_Job("quant", q, mgf=_pair_mgf(q, mgf, mgfs, len(quants))))
    jobs += [_Job("raw", p) for p, kind, _ in found if kind == "raw"]
    if not jobs:
        raise ConfigError("no readable inputs (an MGF needs its quant table)")
    return jobs


def _pair_mgf(quant: Path, explicit: Path | None, mgfs: list[Path], n_quants: int) -> Path:
    if explicit is not None:
        if n_quants > 1:
            raise ConfigError("--mgf pairs with exactly one quant table; give MGFs the same stem as their tables")
        return explicit
    same = quant.with_suffix(".mgf")
    for candidate in [m for m in mgfs if m.stem == quant.stem] + [same, quant.with_suffix(".MGF")]:
        if candidate.is_file():
            return candidate
    if len(mgfs) == 1 and n_quants == 1:
        return mgfs[0]
    raise InputFileError(quant, "no MGF found for this quant table (name it like the table or pass --mgf)")


def ingest(
    inputs: list[str | Path] | str | Path,
    out_dir: str | Path,
    sample_sheet: str | Path | None = None,
    sample_types: tuple[str, ...] | list[str] = ("Sample",),
    blank_subtraction: bool = False,
    blank_fold: float = 5.0,
    mgf: str | Path | None = None,
) -> IngestSummary:
    """Read ``inputs`` (files or folders) and write ``out_dir/<accession>.parquet`` + ``out_dir/samples.csv``.

    Only samples whose type is in ``sample_types`` become training accessions; blanks never do. With
    ``blank_subtraction`` a feature is dropped from a sample when its height < ``blank_fold`` x the highest
    blank height of that feature in the same aligned input.
    """
    types = tuple(sample_types)
    bad = [t for t in types if t not in SAMPLE_TYPES or t == "Blank"]
    if bad or not types:
        raise ConfigError(f"sample types must be among Sample, QC (blanks are never training samples), got {bad}")
    if blank_fold <= 0:
        raise ConfigError(f"blank fold must be > 0, got {blank_fold}")
    jobs = plan(inputs, mgf)
    sheet = read_sample_sheet(sample_sheet) if sample_sheet is not None else None
    out_dir = Path(out_dir)
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".ingest-", dir=out_dir))
    summary = IngestSummary(out_dir=out_dir, files=len(jobs))
    try:
        manifest, parts = _read_all(jobs, sheet, types, blank_subtraction, blank_fold, staging, summary)
        _commit(manifest, parts, types, out_dir, staging, summary)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def _read(job: _Job, sheet: pd.DataFrame | None) -> ReadResult:
    if job.kind == "msdial":
        return read_msdial(job.path, sample_sheet=sheet, accession_from=job.accession_from)
    if job.kind == "quant":
        return read_fbmn(job.path, job.mgf, sample_sheet=sheet)
    return read_raw(job.path, sample_sheet=sheet)


def _read_all(jobs, sheet, types, blank_subtraction, blank_fold, staging, summary):
    """Read each input, stage its training events per accession; returns (manifest, accession -> parts)."""
    manifests: list[pd.DataFrame] = []
    parts: dict[str, list[Path]] = defaultdict(list)
    owner: dict[tuple[str, str], str] = {}
    warnings: Counter[str] = Counter()
    for job in tqdm(jobs, desc="ingest", unit="file", disable=None):
        result = _read(job, sheet)
        for rec in result.samples.to_dict("records"):
            key = (rec["accession"], rec["replicate"])
            if key in owner:
                raise InputFileError(
                    result.source,
                    f"sample '{rec['sample']}' maps to accession '{key[0]}' replicate '{key[1]}', which is already "
                    f"used by {owner[key]}; use a sample sheet to tell them apart",
                )
            owner[key] = f"sample '{rec['sample']}' of {result.source}"
        manifests.append(result.samples)
        warnings.update(result.warnings)
        summary.precursors_without_msms += result.precursors_without_msms
        training = result.samples[result.samples["type"].isin(types)]
        events = _restrict(result.events, training)
        if blank_subtraction:
            events, removed = subtract_blanks(result, blank_fold, events)
            summary.blank_removed += removed
        for accession, group in events.groupby("accession", sort=False):
            part = staging / f"part-{sum(map(len, parts.values()))}.parquet"
            write_events(group, part)
            parts[str(accession)].append(part)
    manifest = pd.concat(manifests, ignore_index=True)[SAMPLE_COLUMNS]
    if sheet is not None:
        unused = sheet.loc[~sheet["sample"].isin(_sample_names(manifest)), "sample"].tolist()
        if unused:
            log.warning("sample sheet rows matching no input: %s", unused[:10])
            warnings["sample-sheet rows matching no input"] = len(unused)
    summary.warnings = dict(warnings)
    return manifest, parts


def _sample_names(manifest: pd.DataFrame) -> set[str]:
    names = set(manifest["sample"])
    return names | {strip_raw_extension(n) for n in names}


def _restrict(events: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``events`` belonging to the (accession, replicate) pairs of ``samples``."""
    pairs = pd.MultiIndex.from_frame(samples[["accession", "replicate"]])
    return events[pd.MultiIndex.from_frame(events[["accession", "replicate"]]).isin(pairs)]


def subtract_blanks(result: ReadResult, fold: float, events: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """Drop (sample, feature) events whose height < ``fold`` x the feature's highest blank height.

    Blank heights come from ``result``; the rows filtered are ``events`` (default: all of ``result``'s
    non-blank rows). Needs aligned feature ids (MS-DIAL, quant table); raw files are returned unchanged.
    Returns the kept rows and the number of (sample, feature) pairs removed.
    """
    samples = result.samples
    blanks = samples[samples["type"] == "Blank"]
    if events is None:
        events = _restrict(result.events, samples[samples["type"] != "Blank"])
    if not result.aligned:
        log.warning("%s: blank subtraction needs aligned features; skipped for this raw file", result.source)
        return events, 0
    if blanks.empty:
        log.warning("%s: no blank samples; blank subtraction skipped", result.source)
        return events, 0
    blank_max = _restrict(result.events, blanks).groupby("feature_id")["precursor_intensity"].max()
    threshold = events["feature_id"].map(blank_max).astype("float64").fillna(0.0).to_numpy() * fold
    drop = events["precursor_intensity"].to_numpy() < threshold
    removed = events.loc[drop, ["accession", "replicate", "feature_id"]].drop_duplicates().shape[0]
    return events[~drop], int(removed)


def _commit(manifest, parts, types, out_dir: Path, staging: Path, summary: IngestSummary) -> None:
    """Merge parts per accession, move them into ``out_dir``, write the manifest, then remove stale files."""
    training = manifest[manifest["type"].isin(types)]
    accessions = list(dict.fromkeys(training["accession"]))
    names: dict[str, str] = {}
    for acc in accessions:
        name = accession_filename(acc)
        if name in names.values():
            other = next(a for a, n in names.items() if n == name)
            raise ConfigError(f"accessions '{other}' and '{acc}' would both be written to {name}; rename one")
        names[acc] = name
    final: dict[str, Path] = {}
    for acc in accessions:
        acc_parts = parts.get(acc, [])
        if len(acc_parts) == 1:
            final[acc] = acc_parts[0]
            continue
        merged = staging / f"merged-{len(final)}.parquet"
        frames = [read_events(p) for p in acc_parts]
        write_events(pd.concat(frames, ignore_index=True) if frames else empty_events(), merged)
        final[acc] = merged
    for acc, staged in final.items():
        summary.events += _rows(staged)
        os.replace(staged, out_dir / names[acc])
    with atomic_path(out_dir / MANIFEST) as tmp:
        manifest.to_csv(tmp, index=False)
    keep = set(names.values())
    for old in sorted(out_dir.glob("*.parquet")):
        if old.name not in keep:
            old.unlink()
            summary.stale_removed.append(old.name)
    summary.accessions = len(accessions)
    summary.samples = {t: int(n) for t, n in manifest["type"].value_counts().items()}


def _rows(parquet: Path) -> int:
    return pq.ParquetFile(parquet).metadata.num_rows
