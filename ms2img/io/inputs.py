"""Which input is which: a file's format sniffed from its content, and the inputs of one ingest planned as jobs
(MS-DIAL exports, quant tables paired with their MGF, raw mzML/mzXML files)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ms2img.errors import ConfigError, InputFileError
from ms2img.io.fbmn import is_optimus_header, is_quant_header
from ms2img.io.metadata import side_table
from ms2img.io.msdial import is_msdial_header
from ms2img.io.raw import sniff_raw
from ms2img.io.schema import accession_filename
from ms2img.io.text import check_not_binary

TEXT_EXTENSIONS = {".txt", ".tsv", ".csv", ".mgf"}
RAW_EXTENSIONS = {".mzml", ".mzxml"}
SNIFF_LINES = 60  # lines of a file's head that decide its format
FORMATS = ("msdial", "quant", "optimus", "mgf", "raw", "side")  # side: an activity or metadata table (skipped)


@dataclass
class InputJob:
    """One input file and how to read it (its format, the MGF paired with a quant table, where accessions come
    from)."""

    kind: str  # msdial | quant | optimus | raw | side (a table found beside the data in a folder: skipped)
    path: Path
    mgf: Path | None = None
    accession_from: str = "column"
    note: str = ""  # side: what the table is and where it goes
    side: str = ""  # side: activity | metadata (FERMO/GNPS sample metadata) | library | mgf (no quant table's)


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
    cut = -1
    for _ in range(SNIFF_LINES):  # decode and split only the lines looked at
        cut = head.find(b"\n", cut + 1)
        if cut < 0:
            break
    text = (head if cut < 0 else head[: cut + 1]).decode("utf-8", errors="replace")
    lines = text.splitlines()[:SNIFF_LINES]
    if any(ln.strip().upper() == "BEGIN IONS" for ln in lines):
        return "mgf"
    if any(is_msdial_header(ln) or ln.lstrip("\ufeff").startswith("Alignment ID") for ln in lines):
        return "msdial"
    if lines and is_quant_header(lines[0]):
        return "quant"
    if lines and is_optimus_header(lines[0]):
        return "optimus"
    if side_of(lines):
        return "side"
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


LIBRARY_NOTE = "a spectral library (reference spectra): it goes to `ms2img explain --library FILE`"
UNPAIRED_MGF_NOTE = (
    "an MGF that no quant table among the inputs pairs with (name it like its table or pass --mgf; MS-DIAL exports "
    "and mzML/mzXML carry their own MS/MS)"
)
NOT_DATA = "it is not LC-MS/MS data"
MSP_NOTE = "a spectral library (MSP, reference spectra): it goes to `ms2img explain --library FILE`"


def side_of(lines: list[str]) -> tuple[str, str] | None:
    """``(kind, what it is and where it goes)`` of a file that goes beside the LC-MS/MS data, from its first lines:
    ``activity`` or ``metadata`` (:func:`ms2img.io.metadata.side_table`), ``library`` (MSP); None otherwise."""
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        return None
    if first.strip().upper().startswith("NAME:") and any(ln.strip().lower().startswith("num peaks:") for ln in lines):
        return "library", MSP_NOTE
    return side_table(first)


def side_job(path: Path) -> InputJob:
    """The skipped job of a side file (:func:`side_of` of its first lines)."""
    with open(path, "rb") as fh:
        kind, note = side_of(fh.read(65536).decode("utf-8", errors="replace").splitlines()[:SNIFF_LINES]) or ("", "")
    return InputJob("side", path, note=note, side=kind)


def folder_files(folder: Path) -> list[Path]:
    """The files of ``folder`` an input can be (text and raw-file extensions), sorted."""
    exts = TEXT_EXTENSIONS | RAW_EXTENSIONS
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in exts)


def subfolder_hint(folder: Path, most: int = 5) -> str:
    """What to name instead of a parent folder (folders are not searched recursively: one export per folder):
    its subfolders that hold input files, e.g. ``; its subfolders do: a/, b/ (name one)``, else nothing."""
    holding = []
    for d in sorted(folder.iterdir()):
        try:
            if d.is_dir() and not d.name.startswith(".") and folder_files(d):
                holding.append(d.name)
        except OSError:  # a subfolder this user may not read: not a hint
            continue
    if not holding:
        return ""
    shown = ", ".join(f"{name}/" for name in holding[:most])
    if len(holding) > most:
        shown += f" and {len(holding) - most} more"
    return f"; its subfolders do: {shown} (folders are not searched recursively: name one)"


def library_mgf(path: Path) -> bool:
    """Is ``path`` a spectral library (GNPS, PhenolicsDB: its first spectrum has ``NAME=``, ``SMILES=`` or
    ``INCHI=`` and no ``FEATURE_ID=``) rather than the spectra of a feature table? A lab's folder often holds one
    beside its quant table and MGF (FERMO's case study does); it goes to ``ms2img explain --library``."""
    with open(path, "rb") as fh:
        head = fh.read(65536).decode("utf-8", errors="replace")
    end = head.find("END IONS")
    keys = {
        line.split("=", 1)[0].strip().upper() for line in head[: end if end >= 0 else None].splitlines() if "=" in line
    }
    return "FEATURE_ID" not in keys and bool(keys & {"NAME", "SMILES", "INCHI"})


def plan(inputs: list[str | Path] | str | Path, mgf: str | Path | None = None) -> list[InputJob]:
    """Expand folders, sniff formats, pair quant tables with MGFs and pick the MS-DIAL accession mode.

    MS-DIAL exports found in a folder, or several named explicitly, are one export per accession (accession =
    file stem, replicate = sample column); a single named export makes each sample column an accession. Two
    exports whose stems are the same accession (``ACC0001.txt`` and ``ACC0001.tsv``, or stems differing only in
    case, ``ACC0001`` and ``acc0001``) are an error.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    if not inputs:
        raise ConfigError("no inputs given")
    found: list[tuple[Path, str, bool]] = []  # (path, format, from a folder)
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = folder_files(p)
            if not files:
                raise InputFileError(p, "folder holds no .txt/.tsv/.csv/.mgf/.mzML/.mzXML files" + subfolder_hint(p))
            found += [(f, sniff(f), True) for f in files]
        else:
            found.append((p, sniff(p), False))
    unique: dict[Path, tuple[Path, str, bool]] = {}
    for f in found:  # a file named twice, or named and in a named folder: once, as named
        key = f[0].resolve()
        if key not in unique or (unique[key][2] and not f[2]):
            unique[key] = f
    found = list(unique.values())
    libraries = [p for p, kind, _ in found if kind == "mgf" and library_mgf(p)]  # not any table's spectra
    named_side = next((p for p, kind, from_dir in found if not from_dir and (kind == "side" or p in libraries)), None)
    if named_side is not None:
        note = LIBRARY_NOTE if named_side in libraries else side_job(named_side).note
        raise InputFileError(named_side, f"{note}; {NOT_DATA}", 1)
    mgfs = [p for p, kind, _ in found if kind == "mgf" and p not in libraries]
    if mgf is not None:
        mgf = Path(mgf)
        if sniff(mgf) != "mgf":
            raise InputFileError(mgf, "not an MGF file (no BEGIN IONS)", line=1)
        if library_mgf(mgf):  # said as plainly as for an input, not as a second spectrum of one feature
            raise InputFileError(mgf, f"{LIBRARY_NOTE}; {NOT_DATA}", 1)
    quants = [(p, kind) for p, kind, _ in found if kind in ("quant", "optimus")]
    if mgf is not None and not quants:
        raise ConfigError(
            f"--mgf {mgf}: an MGF pairs with a quant table (MZmine / FBMN CSV) and the inputs hold none; MS-DIAL "
            "exports and mzML/mzXML files carry their own MS/MS"
        )
    msdial = [(p, from_dir) for p, kind, from_dir in found if kind == "msdial"]
    several = len([p for p, d in msdial if not d]) > 1

    jobs = [InputJob("msdial", p, accession_from="file" if from_dir or several else "column") for p, from_dir in msdial]
    stems: dict[str, Path] = {}
    for job in jobs:
        if job.accession_from != "file":
            continue
        key = accession_filename(job.path.stem).lower()  # ACC0001 and acc0001 are one file on Windows and macOS
        if key in stems:
            raise InputFileError(
                job.path,
                f"maps to the same accession '{job.path.stem}' as {stems[key]} (accession = file stem); "
                "remove one or rename it",
            )
        stems[key] = job.path
    for q, kind in quants:
        jobs.append(InputJob(kind, q, mgf=_pair_mgf(q, mgf, mgfs, len(quants))))
    jobs += [InputJob("raw", p) for p, kind, _ in found if kind == "raw"]
    paired = {j.mgf.resolve() for j in jobs if j.mgf is not None}
    unpaired = [(p, from_dir) for p, kind, from_dir in found if p in mgfs and p.resolve() not in paired]
    named_mgf = next((p for p, from_dir in unpaired if not from_dir), None)
    if named_mgf is not None or (unpaired and not jobs):
        raise InputFileError(named_mgf or unpaired[0][0], f"{UNPAIRED_MGF_NOTE}; nothing to read it with", 1)
    sides = [side_job(p) for p, kind, _ in found if kind == "side"]
    sides += [InputJob("side", p, note=UNPAIRED_MGF_NOTE, side="mgf") for p, _ in unpaired]
    sides += [InputJob("side", p, note=LIBRARY_NOTE, side="library") for p in libraries]
    if not jobs:
        beside = "; ".join(f"{s.path.name}: {s.note}" for s in sides[:3]) + ("; ..." if len(sides) > 3 else "")
        raise ConfigError(
            "no LC-MS/MS data among the inputs (an MS-DIAL export, a quant CSV with its MGF, mzML or mzXML)"
            + (f"; found only files that go beside it: {beside}" if sides else "")
        )
    return jobs + sides


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
    found = (
        f"{len(mgfs)} MGFs given or found ({', '.join(m.name for m in mgfs[:4])}), none named like it"
        if mgfs
        else "none found"
    )
    raise InputFileError(
        quant, f"which MGF holds this quant table's spectra? {found}; name it like the table or pass --mgf"
    )
