"""``ms2img ingest``: read every input, write one events Parquet per training accession plus ``samples.csv``.

The events folder is built aside and swapped in as one step (:func:`ms2img.atomic.atomic_dir`): a reader sees
the previous folder or the new one, never a mix, and a bad input or a killed run leaves the previous folder as
it was (the next run removes a killed run's leftovers). Inputs are streamed one at a time (memory is flat in the
number of accessions); each is parsed by a vectorised reader and written without a pandas round trip.
Accessions that an existing output holds and the inputs no longer do are removed only with ``replace=True``.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import shutil
from collections import Counter, defaultdict, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ms2img.atomic import atomic_dir, atomic_path, clean_leftovers
from ms2img.errors import ConfigError, InputFileError, Ms2ImgError
from ms2img.io.fbmn import JOIN_MZ_TOL_DA, RT_UNITS, read_fbmn, read_optimus
from ms2img.io.inputs import InputJob, plan
from ms2img.io.metadata import read_sample_metadata
from ms2img.io.msdial import read_msdial
from ms2img.io.raw import read_raw
from ms2img.io.result import (
    IngestSummary,
    ReadResult,
    check_polarities,
    make_manifest,
    polarity_counts,
    silent_injection_lines,
    silent_samples,
)
from ms2img.io.sample_sheet import (
    MANIFEST,
    index_sheet,
    read_sample_sheet,
    sheet_row,
    strip_raw_extension,
    unmatched_rows,
)
from ms2img.io.schema import SAMPLE_COLUMNS, SAMPLE_TYPES, WRITTEN_COLUMNS, accession_filename
from ms2img.io.text import UNTERMINATED_WARNING, unterminated

log = logging.getLogger(__name__)
UNLISTED = "input samples the sample sheet or metadata does not list"

# What ingest itself writes into the events folder; anything else there is someone else's file.
OWN_SUFFIXES = (".parquet",)
PARQUET_COMPRESSION = "snappy"
# Parquet encodings, chosen by what the columns hold (~2x faster to write than the defaults, files as small):
# the string columns are Arrow dictionaries and are written as such; the per-feature numbers (repeated for each
# fragment of a feature) are plain and left to snappy, whose back-references cost less than a dictionary
# built per file; the fragment numbers (nearly all distinct) are byte-stream-split, which snappy then
# compresses. Min/max statistics for the numbers only (string statistics cost a third of the write).
PARQUET_DICTIONARY = ["accession", "replicate", "feature_id", "polarity"]
PARQUET_BYTE_STREAM_SPLIT = ["fragment_mz", "fragment_intensity"]
PARQUET_STATISTICS = ["precursor_mz", "rt_min", "precursor_intensity", "fragment_mz", "fragment_intensity"]
PARQUET_OPTIONS = {
    "compression": PARQUET_COMPRESSION,
    "use_dictionary": PARQUET_DICTIONARY,
    "use_byte_stream_split": PARQUET_BYTE_STREAM_SPLIT,
    "write_statistics": PARQUET_STATISTICS,
}
ROW_GROUP_ROWS = 1024 * 1024  # pyarrow's default largest row group: streamed files are cut as write_table cuts
WORKERS = 4  # reader threads (capped by the CPU count): parsing and Parquet writing release the GIL


def ingest(
    inputs: list[str | Path] | str | Path,
    out_dir: str | Path,
    sample_sheet: str | Path | None = None,
    sample_types: tuple[str, ...] | list[str] = ("Sample",),
    blank_subtraction: bool = False,
    blank_fold: float = 5.0,
    mgf: str | Path | None = None,
    *,
    metadata: str | Path | None = None,
    assays_out: str | Path | None = None,
    replace: bool = False,
    join_mz_tol_da: float = JOIN_MZ_TOL_DA,
    rt_unit: str = "auto",
    allow_mixed_polarity: bool = False,
    find_metadata: bool = True,
    polarity: str = "auto",
) -> IngestSummary:
    """Read ``inputs`` (files or folders) and write ``out_dir/<accession>.parquet`` + ``out_dir/samples.csv``.

    Only samples whose type is in ``sample_types`` become training accessions; blanks never do. With
    ``blank_subtraction`` a feature is dropped from a sample when its height < ``blank_fold`` x the highest
    blank height of that feature in the same aligned input. ``metadata`` is a GNPS/FBMN (``filename``,
    ``ATTRIBUTE_*``) or FERMO (``sample_name``, ``attribute``) sample table, used like a sample sheet; without a
    sheet or ``metadata``, one such table among the inputs is used (``find_metadata``: FERMO's download folder
    marks its blank there).
    ``assays_out`` writes ``accession, <assay>...`` from the activity rows/columns of bioactivity-guided
    layouts. Accessions an existing ``out_dir`` holds that the inputs do not are removed only with ``replace``.

    A quant table and its MGF must agree on each joined feature's precursor m/z within ``join_mz_tol_da``;
    ``rt_unit`` (auto, minutes, seconds) is the quant table's RT unit (auto: decided per table and printed).
    Positive and negative ions in one ingest are refused unless ``allow_mixed_polarity``: their images would mix
    two ionisations of different compounds. ``polarity`` (positive, negative; auto: as the inputs say) labels the
    ions an input leaves unknown (MZmine quant tables) and refuses an input that says otherwise.
    """
    types = tuple(sample_types)
    bad = [t for t in types if t not in SAMPLE_TYPES or t == "Blank"]
    if bad or not types:
        raise ConfigError(f"sample types must be among Sample, QC (blanks are never training samples), got {bad}")
    if blank_fold <= 0:
        raise ConfigError(f"blank fold must be > 0, got {blank_fold}")
    if not join_mz_tol_da >= 0:
        raise ConfigError(f"ingest.join_mz_tol_da must be >= 0 Da, got {join_mz_tol_da}")
    if rt_unit not in RT_UNITS:
        raise ConfigError(f"ingest.rt_unit must be one of {', '.join(RT_UNITS)}, got {rt_unit!r}")
    if polarity not in ("auto", "positive", "negative"):
        raise ConfigError(f"ingest.polarity must be auto, positive or negative, got {polarity!r}")
    opts = {"join_mz_tol_da": float(join_mz_tol_da), "rt_unit": rt_unit, "polarity": polarity}
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: exists and is not a folder")
    _check_out_apart(inputs, out_dir)
    jobs = plan(inputs, mgf)
    found_metadata = [j.path for j in jobs if j.side == "metadata"]
    fermo_activity = [j.path for j in jobs if j.side == "activity"]
    used_metadata = find_metadata and sample_sheet is None and metadata is None and len(found_metadata) == 1
    if used_metadata:  # FERMO's download folder: its group table says which sample is the blank
        metadata = found_metadata[0]
    in_use = Path(metadata).resolve() if metadata is not None else None
    skipped = [f"{j.path.name} ({j.note})" for j in jobs if j.kind == "side" and j.path.resolve() != in_use]
    jobs = [j for j in jobs if j.kind != "side"]
    if sample_sheet is not None and metadata is not None:
        raise ConfigError("give a sample sheet or a sample metadata table, not both")
    sheet = read_sample_sheet(sample_sheet) if sample_sheet is not None else None
    meta_activity = None
    if metadata is not None:
        sheet, meta_activity = read_sample_metadata(metadata)
    clean_leftovers(out_dir)
    _clean_old_staging(out_dir)
    summary = IngestSummary(out_dir=out_dir, files=len(jobs), skipped=skipped)
    if used_metadata:
        summary.metadata_found = str(metadata)
    try:
        with atomic_dir(out_dir) as stage:
            parts_dir = stage / ".parts"
            parts_dir.mkdir()
            manifest, parts, activity = _read_all(
                jobs, sheet, types, blank_subtraction, blank_fold, parts_dir, summary, opts, allow_mixed_polarity
            )
            if meta_activity is not None:
                activity.append(meta_activity)
            _commit(manifest, parts, types, out_dir, stage, summary, replace)
            parts_dir.rmdir()
            if assays_out is not None:
                _write_assays(activity, manifest, types, Path(assays_out), summary, fermo_activity)
    except OSError as exc:
        raise _os_error(exc, out_dir) from None
    return summary


def _check_out_apart(inputs: list[str | Path] | str | Path, out_dir: Path) -> None:
    """``--out`` must not be an input, hold an input, or lie inside an input folder: the swap would replace (or
    read while writing) the inputs themselves."""
    out = out_dir.resolve()
    for item in [inputs] if isinstance(inputs, (str, Path)) else inputs:
        p = Path(item).resolve()
        if out == p:
            where = "is the input"
        elif p.is_relative_to(out):
            where = "contains the input"
        elif out.is_relative_to(p):
            where = "lies inside the input folder"
        else:
            continue
        raise ConfigError(f"--out {out_dir}: {where} {item}; write the events to a folder apart from the inputs")


def _os_error(exc: OSError, out_dir: Path) -> Ms2ImgError:
    """A write problem (disk full, permissions, read-only) as one line naming the file."""
    where = exc.filename or out_dir
    if exc.errno == errno.ENOSPC:
        return InputFileError(where, "no space left on device; nothing was changed in " + str(out_dir))
    reason = exc.strerror or exc.__class__.__name__
    return InputFileError(where, f"cannot write ({reason}); nothing was changed in {out_dir}")


def _clean_old_staging(out_dir: Path) -> None:
    """Staging folders of older ms2img versions (``.ingest-*`` inside the events folder)."""
    if out_dir.is_dir():
        for p in out_dir.glob(".ingest-*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _read(job: InputJob, sheet: pd.DataFrame | None, expand: tuple[str, ...] | None, opts: dict | None = None):
    opts = opts or {}
    tol = opts.get("join_mz_tol_da", JOIN_MZ_TOL_DA)
    if job.kind == "msdial":
        result = read_msdial(job.path, sample_sheet=sheet, accession_from=job.accession_from, expand_types=expand)
    elif job.kind == "quant":
        rt_unit = opts.get("rt_unit", "auto")
        result = read_fbmn(job.path, job.mgf, sample_sheet=sheet, join_mz_tol_da=tol, rt_unit=rt_unit)
    elif job.kind == "optimus":
        result = read_optimus(job.path, job.mgf, sample_sheet=sheet, join_mz_tol_da=tol)
    else:
        return read_raw(job.path, sample_sheet=sheet)
    if cut := unterminated(job.path):  # a table cut inside its last value reads as a shorter number
        log.warning(cut)
        result.warnings[UNTERMINATED_WARNING] = 1
    return result


def _process(
    i: int, job: InputJob, sheet, types, blank_subtraction: bool, blank_fold: float, parts_dir: Path, opts: dict
):
    """Read one input and write its training accessions as parts (runs in a worker thread: pyarrow parsing and
    Parquet writing release the GIL). Returns the result without its events, the parts, the blank count and the
    training samples that gave no events (:func:`ms2img.io.result.silent_samples`)."""
    result = _read(job, sheet, None if blank_subtraction else types, opts)
    if opts["polarity"] != "auto":
        result.declare_polarity(opts["polarity"])
    removed = [0]
    written = []
    silent = silent_samples(result, types)
    if result.features is not None and not blank_subtraction:  # an aligned table: events streamed per sample
        result.polarities = result.features.polarity_counts()
        for k, (accession, pieces) in enumerate(_training_pieces(result, types)):
            part = parts_dir / f"part-{i}-{k}.parquet"
            written.append((accession, part, write_parquet_pieces(pieces, part)))
        result.release_events()
        return result, written, 0, silent
    result.polarities = polarity_counts(result.table)
    for k, (accession, table) in enumerate(_training_tables(result, types, blank_subtraction, blank_fold, removed)):
        part = parts_dir / f"part-{i}-{k}.parquet"
        write_parquet(table, part)
        written.append((accession, part, table.num_rows))
    result.release_events()
    return result, written, removed[0], silent


def _training_pieces(result: ReadResult, types):
    """``(accession, its events as a stream of tables)`` for each training accession of an aligned input: the
    rows, in the order, that :func:`_training_tables` gives, built a sample and a block of features at a time."""
    rows = result.sample_rows
    index: dict[str, int] = {}
    acc_codes = [index.setdefault(r["accession"], len(index)) for r in rows]
    names = list(index)
    features = result.features
    samples_of: dict[int, list[int]] = defaultdict(list)
    for s, n in features.event_counts().items():
        if n and rows[s]["type"] in types:
            samples_of[acc_codes[s]].append(s)
    for code in sorted(samples_of):
        yield names[code], features.row_groups(samples_of[code], ROW_GROUP_ROWS)


def _in_order(pool: ThreadPoolExecutor, fn, items: list, window: int):
    """``fn(i, item)`` for each item on the pool, yielding results in order, at most ``window`` in flight."""
    pending: deque = deque()
    it = iter(enumerate(items))
    try:
        for i, item in it:
            pending.append(pool.submit(fn, i, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        for f in pending:
            if not f.cancelled():
                f.exception()  # let running ones finish before the staging folder goes


def _read_all(jobs, sheet, types, blank_subtraction, blank_fold, parts_dir: Path, summary, opts, mixed_ok=False):
    """Read each input and write its training events per accession as parts; returns (manifest, accession ->
    parts, activity tables). A few inputs are in memory at a time, whatever their number."""
    manifest_rows: list[dict[str, str]] = []
    parts: dict[str, list[tuple[Path, int]]] = defaultdict(list)
    owner: dict[tuple[str, str], str] = {}
    warnings: Counter[str] = Counter()
    activity: list[pd.DataFrame] = []
    polarities: dict[str, dict[str, int]] = {}
    rt_units: dict[str, list[str]] = defaultdict(list)
    silent: list[tuple[str, str]] = []  # (sample, accession) of training injections without events
    workers = max(1, min(WORKERS, os.cpu_count() or 1, len(jobs)))

    def work(i, job):
        return _process(i, job, sheet, types, blank_subtraction, blank_fold, parts_dir, opts)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = _in_order(pool, work, jobs, window=2 * workers)
        for result, written, removed, silent_at in tqdm(
            results, total=len(jobs), desc="ingest", unit="file", disable=None
        ):
            rows = result.sample_rows
            silent += [(rows[s]["sample"], rows[s]["accession"]) for s in silent_at]
            for rec in rows:
                key = (rec["accession"], rec["replicate"])
                if key in owner:
                    raise InputFileError(
                        result.source,
                        f"sample '{rec['sample']}' maps to accession '{key[0]}' replicate '{key[1]}', which is "
                        f"already used by {owner[key]}; use a sample sheet to tell them apart",
                    )
                owner[key] = f"sample '{rec['sample']}' of {result.source}"
            manifest_rows += rows
            warnings.update(result.warnings)
            if result.activity is not None:
                activity.append(result.activity)
            summary.precursors_without_msms += result.precursors_without_msms
            summary.undetected_cells += result.undetected_cells
            summary.blank_removed += removed
            polarities[str(result.source)] = result.polarities
            if result.rt_unit:
                rt_units[result.rt_unit].append(str(result.source))
            for accession, part, n in written:
                parts[accession].append((part, n))
    check_polarities(polarities, mixed_ok)
    summary.rt_units = dict(rt_units)
    summary.polarities = dict(sum((Counter(c) for c in polarities.values()), Counter()))
    manifest = make_manifest(manifest_rows)[SAMPLE_COLUMNS]
    summary.silent_injections = silent_injection_lines(silent, manifest, types)
    if sheet is not None:
        unused = unmatched_rows(sheet, list(manifest["sample"]))  # a sample sheet's typo fails here, naming its line
        if unused:
            log.warning("sample sheet or metadata rows matching no input: %s", unused[:10])
            warnings["sample sheet or metadata rows matching no input"] = len(unused)
        index = index_sheet(sheet)
        unlisted = [n for n in manifest["sample"] if sheet_row(index, n) is None]  # left on the input's defaults
        if unlisted:
            log.warning("input samples the sample sheet does not list: %s", unlisted[:10])
            warnings[f"{UNLISTED} (kept as the input says: own accession, type)"] = len(unlisted)
    summary.warnings = dict(warnings)
    return manifest, parts, activity


def _training_tables(result: ReadResult, types, blank_subtraction: bool, blank_fold: float, removed: list[int]):
    """``(accession, Arrow table)`` for each training accession of one input (rows with fragments only)."""
    if blank_subtraction:
        samples = result.samples
        training = samples["type"].isin(types).to_numpy()
        events = _restrict(result.events, samples[training])
        events, n = subtract_blanks(result, blank_fold, events)
        removed[0] += n
        for accession, group in events.groupby("accession", sort=False):
            columns = [c for c in WRITTEN_COLUMNS if c in group.columns]
            yield str(accession), pa.Table.from_pandas(group[columns], preserve_index=False)
        return
    rows = result.sample_rows
    training = np.array([r["type"] in types for r in rows], dtype=bool)
    table, sample_of_row = result.table, result.sample_of_row
    index: dict[str, int] = {}
    acc_codes = np.array([index.setdefault(r["accession"], len(index)) for r in rows], dtype=np.int64)
    acc_names = list(index)
    row_acc = np.where(training[sample_of_row], acc_codes[sample_of_row], -1) if len(sample_of_row) else sample_of_row
    if len(row_acc) and (np.diff(row_acc) >= 0).all():  # grouped already (one accession, or per sample column)
        order = None
    else:
        order = np.argsort(row_acc, kind="stable")
        row_acc = row_acc[order]
    bounds = np.flatnonzero(np.diff(row_acc)) + 1 if len(row_acc) else np.empty(0, dtype=np.int64)
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(row_acc)]])
    for a, b in zip(starts, ends, strict=True):
        if b <= a or row_acc[a] < 0:
            continue
        rows = table.slice(int(a), int(b - a)) if order is None else table.take(pa.array(order[a:b]))
        yield str(acc_names[row_acc[a]]), rows


def _restrict(events: pd.DataFrame, samples: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``events`` belonging to the (accession, replicate) pairs of ``samples``."""
    pairs = pd.MultiIndex.from_frame(samples[["accession", "replicate"]])
    return events[pd.MultiIndex.from_frame(events[["accession", "replicate"]]).isin(pairs)]


def subtract_blanks(result: ReadResult, fold: float, events: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """Drop (sample, feature) events whose height < ``fold`` x the feature's highest blank height in ``result``;
    filters ``events`` (default: ``result``'s non-blank rows). Needs aligned feature ids (MS-DIAL, quant table): raw
    files are returned unchanged. Returns the kept rows and the number of (sample, feature) pairs removed."""
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


def no_training_samples_message(manifest: pd.DataFrame, types: tuple[str, ...]) -> str:
    """Which sample types the inputs hold and the flag that would include them."""
    found = manifest["type"].value_counts()
    listing = ", ".join(f"{int(n)} {t}" for t, n in found.items()) or "no sample columns"
    hint = ""
    if "QC" in found.index and "QC" not in types:
        hint = "; pass --sample-types QC (or Sample,QC; params: ingest.sample_types) to train on the QC samples"
    elif "Blank" in found.index and set(found.index) <= {"Blank"}:
        hint = "; blanks are never training samples: export the sample columns too (or fix their File type)"
    return f"no training samples of type {'/'.join(types)}: the inputs hold {listing}{hint}"


def _commit(manifest, parts, types, out_dir: Path, stage: Path, summary: IngestSummary, replace: bool) -> None:
    """Merge parts per accession into the staged folder, write the manifest, and check what would go."""
    training = manifest[manifest["type"].isin(types)]
    if training.empty:
        first = manifest["source"].iloc[0] if len(manifest) else str(out_dir)
        raise InputFileError(first, no_training_samples_message(manifest, types))
    accessions = list(dict.fromkeys(training["accession"]))
    names: dict[str, str] = {}
    for acc in accessions:
        name = accession_filename(acc)
        # compared without case: on macOS and Windows B.parquet and b.parquet are one file
        if name.casefold() in (n.casefold() for n in names.values()):
            other = next(a for a, n in names.items() if n.casefold() == name.casefold())
            same = "" if names[other] == name else f" (and {names[other]}: one file where case is ignored)"
            raise ConfigError(f"accessions '{other}' and '{acc}' would both be written to {name}{same}; rename one")
        names[acc] = name
    empty = [a for a in accessions if not parts.get(a)]
    if empty:
        src = training.loc[training["accession"] == empty[0], "source"].iloc[0]
        if summary.blank_removed:
            summary.warnings["accessions left without fragments by blank subtraction"] = len(empty)
        else:
            more = f" (and {len(empty) - 1} more: {', '.join(empty[1:6])})" if len(empty) > 1 else ""
            raise InputFileError(
                src,
                f"accession '{empty[0]}'{more} has no MS/MS fragments: every MS/MS cell of its detected features "
                "is empty (or every height is 0); it would give a blank image. Remove it, or export MS/MS spectra",
            )
    for acc in accessions:
        target = stage / names[acc]
        acc_parts = parts.get(acc, [])
        if len(acc_parts) == 1:
            os.replace(acc_parts[0][0], target)
        else:
            _merge_parts([p for p, _ in acc_parts], target)
            for p, _ in acc_parts:
                p.unlink()
        summary.events += sum(n for _, n in acc_parts)
    with atomic_path(stage / MANIFEST) as tmp:
        manifest.to_csv(tmp, index=False)
    keep = set(names.values())
    old = sorted(p.name for p in out_dir.iterdir()) if out_dir.is_dir() else []
    stale = [n for n in old if n.endswith(OWN_SUFFIXES) and n not in keep]
    if stale and not replace:
        listed = ", ".join(Path(n).stem for n in stale[:10]) + (
            f" and {len(stale) - 10} more" if len(stale) > 10 else ""
        )
        raise ConfigError(
            f"--out {out_dir}: would remove {len(stale)} accession(s) that it holds and the inputs do not "
            f"({listed}); pass --replace to remove them, or ingest into a new folder. Nothing was changed"
        )
    for name in old:  # files ingest did not write (notes, a README) move over with the folder
        if name.endswith(OWN_SUFFIXES) or name == MANIFEST or name.startswith(".ingest-"):
            continue
        src, dst = out_dir / name, stage / name
        if src.is_dir():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
    summary.stale_removed = stale
    summary.accessions = len(accessions)
    summary.samples = {t: int(n) for t, n in manifest["type"].value_counts().items()}


def write_parquet(table: pa.Table, path: Path) -> None:
    """One events table as Parquet (snappy pages; encodings per column: see ``PARQUET_DICTIONARY``)."""
    pq.write_table(table, path, **PARQUET_OPTIONS)


def _merge_parts(paths: list[Path], target: Path) -> None:
    """One accession's parts (from several inputs) as one file. Parts of one schema are copied a row group at a
    time, so memory stays at about one row group however large the accession; others are promoted in memory."""
    files = [pq.ParquetFile(p) for p in paths]
    try:
        if files and all(f.schema_arrow.equals(files[0].schema_arrow) for f in files):
            write_parquet_pieces((f.read_row_group(i) for f in files for i in range(f.num_row_groups)), target)
            return
        tables = [f.read() for f in files]
        write_parquet(pa.concat_tables(tables, promote_options="permissive") if tables else _empty_table(), target)
    finally:
        for f in files:
            f.close()


def write_parquet_pieces(pieces: Iterable[pa.Table], path: Path) -> int:
    """Tables of one schema written as one Parquet file, as :func:`write_parquet` writes their concatenation (the
    same row groups, byte for byte), holding about one row group in memory. Returns the rows written."""
    buffered: list[pa.Table] = []
    n_buffered = total = 0
    writer = None
    try:
        for piece in itertools.chain(pieces, [None]):
            last = piece is None
            if not last:
                buffered.append(piece)
                n_buffered += piece.num_rows
            del piece  # written pieces go while the next one is built
            while n_buffered >= ROW_GROUP_ROWS or (last and n_buffered):
                whole, buffered = pa.concat_tables(buffered), []
                group = whole.slice(0, ROW_GROUP_ROWS).combine_chunks()
                if writer is None:
                    writer = pq.ParquetWriter(path, group.schema, **PARQUET_OPTIONS)
                writer.write_table(group)
                total += group.num_rows
                n_buffered -= group.num_rows
                if n_buffered:
                    buffered = [whole.slice(group.num_rows)]
                del whole, group
    finally:
        if writer is not None:
            writer.close()
    return total


def _empty_table() -> pa.Table:
    from ms2img.io.schema import empty_events

    return pa.Table.from_pandas(empty_events(), preserve_index=False)


def _write_assays(
    activity: list[pd.DataFrame],
    manifest: pd.DataFrame,
    types: tuple[str, ...],
    path: Path,
    summary: IngestSummary,
    fermo: Sequence[Path] = (),
) -> None:
    """``accession, <assay>...`` from the activity tables (``sample`` + one column per assay), averaged over an
    accession's replicates, for the training accessions only. ``fermo``: FERMO activity tables among the inputs
    (they list the active samples only, so they are not turned into a table of every accession's value)."""
    if not activity:
        fermo_hint = (
            f"; {fermo[0].name} is FERMO's activity table, which lists the active samples only: score features with "
            f"`ms2img explain --assay NAME --method correlation --assays {fermo[0]} --absent-as-zero`, or write "
            "assays.csv (accession, one column per assay) with a value for every accession to train"
            if fermo
            else ""
        )
        raise ConfigError(
            f"--assays-out {path}: the inputs hold no activity rows or columns (an MZmine table whose first row is "
            f"'Bioactivity...', an Optimus table with activity columns, or numeric activity columns in --metadata)"
            f"{fermo_hint}"
        )
    values = pd.concat(activity, ignore_index=True).groupby("sample", sort=False).first()
    training = manifest[manifest["type"].isin(types)]
    lookup = {}
    for rec in training.to_dict("records"):
        for name in (rec["sample"], strip_raw_extension(rec["sample"])):
            lookup.setdefault(name, rec["accession"])
    matched = values[values.index.map(lambda n: n in lookup or strip_raw_extension(n) in lookup)]
    if matched.empty:
        raise ConfigError(f"--assays-out {path}: no activity value belongs to a training sample")
    acc = matched.index.map(lambda n: lookup.get(n, lookup.get(strip_raw_extension(n))))
    table = matched.groupby(acc.to_numpy(), sort=False).mean(numeric_only=True)
    table.index.name = "accession"
    order = [a for a in dict.fromkeys(training["accession"]) if a in table.index]
    table = table.loc[order].reset_index()
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.10g")
    summary.assays_out = path
    summary.assays = [c for c in table.columns if c != "accession"]
