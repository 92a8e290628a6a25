"""Optional sample sheet: maps sample columns / raw files to accessions, replicates, types and classes.

CSV with a header; ``sample`` and ``accession`` are required, ``replicate`` (default: the sample name),
``type`` (Sample | QC | Blank, any case; default: what the input says, an MS-DIAL export's File type row, else
Sample) and ``class`` (default empty) are optional. A sheet type that changes an export's own File type is kept and
counted in a warning (:func:`type_changes`): a blank trained as a sample must never happen silently. A row naming
no input sample but close to one the sheet leaves unlisted is a typo and fails, naming its line and that sample
(:func:`unmatched_rows`); other unused rows (another export's samples) and input samples the sheet does not list
(kept on the input's defaults: a sheet may only re-type a blank) are counted in a warning.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pandas as pd

from ms2img.errors import InputFileError, Ms2ImgError
from ms2img.io.schema import SAMPLE_TYPES
from ms2img.io.text import csv_rows, nfc, read_text_lines, refuse_other_separator

MANIFEST = "samples.csv"  # what ingest writes beside the events: every input sample, its accession and type

SHEET_COLUMNS = ["sample", "accession", "replicate", "type", "class"]
SHEET_SOURCE, SHEET_LINES = "ms2img_sheet_path", "ms2img_sheet_lines"  # DataFrame.attrs of a sheet read from a file
REQUIRED = ("sample", "accession")
_TYPES = {t.lower(): t for t in SAMPLE_TYPES}
# File extensions stripped when a sheet names a raw file without it (or with it when the data does not).
RAW_EXTENSIONS = (".mzml", ".mzxml", ".mzdata", ".raw", ".d", ".wiff", ".cdf", ".mgf", ".abf")


def normalize_type(value: str) -> str | None:
    """``"sample"`` / ``"QC"`` / ``"BLANK"`` -> the canonical spelling; anything else -> None."""
    return _TYPES.get(str(value).strip().lower())


def strip_raw_extension(name: str) -> str:
    """``"A_01.mzXML"`` -> ``"A_01"`` (and ``"A_01 .mzXML"`` too); names without a known raw-file extension are
    returned unchanged."""
    stem, dot, ext = str(name).rpartition(".")
    return stem.strip() if dot and stem.strip() and f".{ext.lower()}" in RAW_EXTENSIONS else str(name)


def read_sample_sheet(path: str | Path) -> pd.DataFrame:
    """Read and validate a sample sheet; returns ``SHEET_COLUMNS`` as strings, one row per unique sample, with the
    file (``attrs[SHEET_SOURCE]``) and each sample's line (``attrs[SHEET_LINES]``) for errors about a row."""
    path = Path(path)
    lines = read_text_lines(path)
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None:
        raise InputFileError(path, "file is empty", line=1)
    rows = csv_rows(path, lines[first:], first + 1)
    header = [h.strip().lower() for h in rows[0]]
    header_line = first + 1
    refuse_other_separator(path, lines[first], header_line)
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputFileError(
            path, f"missing column(s) {missing}; expected a header with {SHEET_COLUMNS}", line=header_line
        )
    dup_cols = sorted({h for h in header if h and header.count(h) > 1})
    if dup_cols:
        raise InputFileError(path, f"duplicate column(s) {dup_cols} in the header", line=header_line)
    pos = {c: header.index(c) for c in SHEET_COLUMNS if c in header}

    records, seen, stems, pairs = [], {}, {}, {}
    for k, fields in enumerate(rows[1:], start=1):
        line = header_line + k
        if not any(f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise InputFileError(path, f"has {len(fields)} fields, the header has {len(header)}", line=line)
        rec = {c: fields[i].strip() for c, i in pos.items()}
        for c in REQUIRED:
            if not rec[c]:
                raise InputFileError(path, f"empty {c}", line=line, column=c)
        rec.setdefault("replicate", "")
        rec["replicate"] = rec["replicate"] or rec["sample"]
        raw_type = rec.get("type", "")
        rec["type"] = normalize_type(raw_type) if raw_type else ""  # "": the input's own type decides
        if rec["type"] is None:
            raise InputFileError(
                path, f"unknown type '{raw_type}' (expected one of {list(SAMPLE_TYPES)})", line=line, column="type"
            )
        rec.setdefault("class", "")
        key = strip_raw_extension(rec["sample"])  # a.mzML and a.mzXML name one sample column: two rows, two answers
        if key in stems:
            first = stems[key]
            raise InputFileError(
                path, f"duplicate sample '{rec['sample']}' (first on line {seen[first]}: '{first}')", line
            )
        seen[rec["sample"]], stems[key] = line, rec["sample"]
        pair = (rec["accession"], rec["replicate"])
        if pair in pairs:
            raise InputFileError(
                path, f"accession '{pair[0]}' replicate '{pair[1]}' already used on line {pairs[pair]}", line=line
            )
        pairs[pair] = line
        records.append(rec)
    if not records:
        raise InputFileError(path, "no samples listed below the header", line=header_line)
    sheet = pd.DataFrame(records, columns=SHEET_COLUMNS).astype(str)
    sheet.attrs[SHEET_SOURCE], sheet.attrs[SHEET_LINES] = str(path), seen  # for errors about a row: file and line
    return sheet


def unmatched_rows(sheet: pd.DataFrame, samples: list[str]) -> list[str]:
    """The sheet's samples that name no input sample (by name, or without a raw-file extension).

    A row that is a typo fails instead: when a sample sheet read from a file (:func:`read_sample_sheet`) has an
    unused row close to an input sample it does not list, one line names the sheet, the row's line and that input
    sample. The typo would otherwise leave the row unused and the misspelt column an accession of its own, which
    nothing downstream can explain. Other unused rows are only counted: a project's sheet lists the samples of
    every export, and ingesting one export by path leaves the others' rows unused (as a metadata table may list
    more runs than one table holds).
    """
    names = set(samples) | {strip_raw_extension(n) for n in samples}
    unused = [s for s in sheet["sample"] if s not in names and strip_raw_extension(s) not in names]
    path, lines = sheet.attrs.get(SHEET_SOURCE), sheet.attrs.get(SHEET_LINES)
    if not unused or not path or not lines:
        return unused
    index = index_sheet(sheet)
    unlisted = {strip_raw_extension(n): n for n in dict.fromkeys(samples) if sheet_row(index, n) is None}
    for row in sorted(unused, key=lambda s: lines.get(s, 0)):
        # the column the typo meant is the one left unlisted (compared without raw-file extensions)
        # ... and a name differing only in case is one even when too short for difflib ('1B' for '1b': ratio 0.5)
        folded = [n for c, n in unlisted.items() if c.casefold() == strip_raw_extension(row).casefold()]
        close = folded or [
            unlisted[c] for c in difflib.get_close_matches(strip_raw_extension(row), list(unlisted), n=1)
        ]
        if close:
            more = f" ({len(unused) - 1} more rows name no input sample)" if len(unused) > 1 else ""
            raise InputFileError(
                path,
                f"sample '{row}' names no sample column or file of the inputs; closest: '{close[0]}', which the "
                f"sheet does not list: fix the name{more}",
                line=lines.get(row),
            )
    return unused


def index_sheet(sheet: pd.DataFrame | str | Path | None) -> dict[str, dict[str, str]]:
    """Sheet rows by sample name, also reachable without a raw-file extension (``A_01`` for ``A_01.mzXML``).

    ``sheet`` is what :func:`read_sample_sheet` returns, or a path to read it from.
    """
    if sheet is None:
        return {}
    if isinstance(sheet, (str, Path)):
        sheet = read_sample_sheet(sheet)
    records = sheet.to_dict("records")
    index = {rec["sample"]: rec for rec in records}
    for rec in records:
        index.setdefault(strip_raw_extension(rec["sample"]), rec)
    return index


def sheet_row(index: dict[str, dict[str, str]], name: str) -> dict[str, str] | None:
    """The sheet row of sample ``name`` (by name, or without its raw-file extension, in NFC as the sheet is); None
    when not listed."""
    name = nfc(name)
    return index.get(name) or index.get(strip_raw_extension(name))


def resolve(
    index: dict[str, dict[str, str]],
    name: str,
    accession: str,
    replicate: str,
    sample_type: str,
    sample_class: str = "",
) -> dict[str, str]:
    """Manifest fields for sample ``name``: the sheet's values where it lists the sample, else the defaults. Every
    reader's sample and accession names pass here, so here they become NFC (:func:`ms2img.io.text.nfc`), as the sheet
    already is (``read_text_lines``)."""
    name, accession, replicate = nfc(name), nfc(accession), nfc(replicate)
    rec = sheet_row(index, name)
    if rec is None:
        return {
            "sample": name,
            "accession": accession,
            "replicate": replicate,
            "type": sample_type,
            "class": sample_class,
        }
    return {
        "sample": name,
        "accession": rec["accession"],
        "replicate": rec["replicate"],
        "type": rec["type"] or sample_type,
        "class": rec["class"] or sample_class,
    }


SHEET_TYPE_WARNING = "sample columns whose File type the sample sheet or metadata changes (its type is used)"


def type_changes(index: dict[str, dict[str, str]], own_types: dict[str, str]) -> list[str]:
    """``"name: Blank -> Sample"`` for each sample whose sheet type differs from the input's own type
    (``own_types``: sample name -> the export's File type; inputs without one have nothing to compare)."""
    changed = []
    for name, own in own_types.items():
        rec = sheet_row(index, name)
        if rec is not None and rec["type"] and rec["type"] != own:
            changed.append(f"{name}: {own} -> {rec['type']}")
    return changed


# ------------------------------------------------------------------------------ how inputs became accessions
SHEET_NAME = "sample_sheet.csv"  # data/raw/sample_sheet.csv beside data/raw/exports: picked up by ``ms2img ingest``
_STEM_TAIL = re.compile(r"[_.\- ]+(?:\d+|[A-Za-z]|(?:r|rep|inj|run|injection|replicate)\d+)$", re.IGNORECASE)


def sheet_has_rows(path: str | Path) -> bool:
    """True when a sample sheet lists at least one sample below its header (a template holds the header only)."""
    lines = [ln for ln in read_text_lines(Path(path)) if ln.strip()]
    return len(lines) > 1


def name_stem(name: str) -> str:
    """A sample name without its injection suffix: ``Hi01_neg_PASEF_2_1_2457`` -> ``Hi01_neg_PASEF_2_1``,
    ``QC_03`` -> ``QC``, ``A_r2`` -> ``A``; names without such a suffix are returned unchanged."""
    name = strip_raw_extension(str(name))
    stem = _STEM_TAIL.sub("", name)
    return stem or name


def replicate_groups(names: list[str]) -> dict[str, list[str]]:
    """Names that differ only in their injection suffix, by stem (only stems shared by two or more names):
    likely replicate injections of one extract, each now an accession of its own."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(name_stem(n), []).append(n)
    return {s: g for s, g in groups.items() if len(g) > 1}


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _shape(rows: pd.DataFrame, training_types: tuple[str, ...] | list[str], what: str) -> str:
    """``"9 columns -> 3 accessions x 1 replicate, 5 QCs skipped"`` for the manifest ``rows`` of one input or group."""
    train = rows[rows["type"].isin(training_types)]
    per_acc = train.groupby("accession", sort=False).size()
    skipped = rows.loc[~rows["type"].isin(training_types), "type"].value_counts()
    skip = ", ".join(f"{_count(int(n), t.lower() if t != 'QC' else 'QC')} skipped" for t, n in skipped.items())
    reps = sorted(set(per_acc.tolist()))
    if not reps:  # every sample a blank or QC: no accession
        shape = ""
    elif len(reps) == 1:
        shape = f" x {_count(reps[0], 'replicate')}"
    else:
        shape = f" x {reps[0]}-{reps[-1]} replicates"
    return f"{_count(len(rows), what)} -> {_count(len(per_acc), 'accession')}{shape}" + (f", {skip}" if skip else "")


def describe_sources(manifest: pd.DataFrame, training_types: tuple[str, ...] | list[str]) -> list[str]:
    """One line per input saying how its sample columns became accessions, e.g. ``GnpsTable.txt: 29 columns ->
    6 accessions x 4 replicates, 5 blanks skipped``; raw files (one sample each) are one line together, so a sheet
    that groups them reads ``a.mzML, b.mzML: 2 files -> 1 accession x 2 replicates``; many one-accession exports
    are summed up in one line. ``manifest`` is ingest's samples.csv (sample, accession, replicate, type, source)."""
    names = manifest["source"].map(lambda source: nfc(Path(str(source)).name))  # samples are NFC (resolve)
    one_file = (manifest.groupby("source")["sample"].transform("size") == 1) & (manifest["sample"] == names)
    lines, singles = [], []
    n_sources = manifest["source"].nunique()
    for source, rows in manifest[~one_file].groupby("source", sort=False):
        per_acc = rows[rows["type"].isin(training_types)]["accession"].nunique()
        if per_acc == 1 and n_sources > 5:
            singles.append(int(rows["type"].isin(training_types).sum()))
            continue
        lines.append(f"{Path(str(source)).name}: {_shape(rows, training_types, 'column')}")
    files = manifest[one_file]
    if len(files):
        listed = list(names[one_file])
        label = ", ".join(listed) if len(listed) <= 3 else f"{listed[0]} ... {listed[-1]}"
        lines.append(f"{label}: {_shape(files, training_types, 'file')}")
    if singles:
        reps = sorted(set(singles))
        each = _count(reps[0], "replicate") if len(reps) == 1 else f"{reps[0]}-{reps[-1]} replicates"
        lines.append(f"{len(singles)} files: one accession each (file name), {each} each")
    return lines


def replicate_hint(manifest: pd.DataFrame, training_types: tuple[str, ...] | list[str], limit: int = 3) -> str | None:
    """A hint when training accessions named after their own sample column share a name stem (replicate
    injections of one extract, or of a QC pool, each trained as a separate extract); None otherwise."""
    train = manifest[manifest["type"].isin(training_types)]
    own = train[train["accession"] == train["sample"]]  # not mapped by a sheet
    names = list(dict.fromkeys(own["accession"]))
    groups = replicate_groups(names)
    if not groups or (len(groups) == 1 and len(next(iter(groups.values()))) == len(names) > 5):
        return None  # nothing shared, or one numbered series (Extract_01 ... Extract_40): not a replicate pattern
    sizes = sorted({len(g) for g in groups.values()})
    times = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    shown = ", ".join(f"{s}*" for s in list(groups)[:limit])
    n = sum(len(g) for g in groups.values())
    return (
        f"{n} accessions look like {_count(len(groups), 'extract')} injected {times} times each ({shown}"
        f"{', ...' if len(groups) > limit else ''}): if they are replicates, "
        + _sheet_advice(own, [name for g in groups.values() for name in g])
    )


def _sheet_advice(rows: pd.DataFrame, names: list[str]) -> str:
    """What to do about replicates trained apart. An export named by path (``data/raw/exports/X.txt``) is not read
    with the project's ``data/raw/sample_sheet.csv`` (only a folder is): when that sheet exists and lists these
    samples, the advice is to pass it, not to create what is already there."""
    sources = dict.fromkeys(rows["source"]) if "source" in rows.columns else {}
    sheet = next((p for p in (Path(str(s)).parent.parent / SHEET_NAME for s in sources if s) if p.is_file()), None)
    if sheet is None:
        return (
            "give each group one accession in a sample sheet (sample, accession, replicate, type; "
            f"data/raw/{SHEET_NAME} in a project)"
        )
    try:
        listed = sheet_has_rows(sheet) and any(sheet_row(index_sheet(sheet), n) is not None for n in names)
    except Ms2ImgError:  # a broken sheet: passing it makes ingest name the line to fix
        listed = True
    if listed:
        return f"pass the sample sheet that groups them: --sample-sheet {sheet}"
    return (
        f"give each group one accession in {sheet} (sample, accession, replicate, type) and pass it: "
        f"--sample-sheet {sheet}"
    )


def mixed_class_warnings(
    manifest: pd.DataFrame, training_types: tuple[str, ...] | list[str], limit: int = 3
) -> list[str]:
    """Training accessions whose sample columns carry different classes (the export's Class row, or the sheet's
    ``class``): their images average different extracts, as happens when a folder of several alignment exports is
    read one export per accession. One line per accession (at most ``limit``, then a count); [] when none."""
    if "class" not in manifest.columns:
        return []
    train = manifest[manifest["type"].isin(training_types) & manifest["class"].str.strip().ne("")]
    out = []
    for accession, rows in train.groupby("accession", sort=False):
        counts = rows["class"].value_counts(sort=False)
        if len(counts) > 1:
            classes = ", ".join(f"{c} x{n}" for c, n in counts.items())
            out.append(
                f"accession '{accession}' ({Path(str(rows['source'].iat[0])).name}) averages {len(rows)} sample "
                f"columns of {len(counts)} classes ({classes}); if they are different extracts, give them their own "
                f"accessions (a {SHEET_NAME}, or that export ingested alone: each column an accession)"
            )
    return out[:limit] + ([f"... and {len(out) - limit} more accessions like these"] if len(out) > limit else [])


def read_manifest(events_dir: str | Path) -> pd.DataFrame | None:
    """The ``samples.csv`` ingest wrote into ``events_dir`` (every input sample: accession, replicate, type,
    source ...), as text; None when the folder has none (events from elsewhere)."""
    path = Path(events_dir) / MANIFEST
    return pd.read_csv(path, dtype=str, keep_default_na=False) if path.is_file() else None
