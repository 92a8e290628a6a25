"""Builders for small, fully known input files (MS-DIAL export, quant CSV + MGF, mzML, mzXML).

Imported by tests/io/conftest.py and the tests (``from io_builders import ...``)."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np

# A tiny MS-DIAL v4 export. Line numbers as an editor shows them:
#   1-4 metadata (Class, File type, Injection order, Batch ID), 5 header, 6-8 features 1-3.
# Samples s1, s2 (Sample), qc (QC), blank (Blank); "A" is a summary column (type NA).
MSDIAL_ROWS = [
    # id, rt, mz, adduct, msms, s1, s2, qc, blank, A
    ("1", "1.5", "200.1", "[M+H]+", "50.1:100 80.2:50", "1000", "0", "800", "10", "500"),
    ("2", "2.5", "300.2", "[M+H]+", "", "2000", "3000", "2500", "0", "2500"),
    ("3", "3.5", "400.3", "[M+Na]+", "100.5:10 150.5:20 200.5:30", "500", "600", "550", "400", "550"),
]
FIXED = ["Alignment ID", "Average Rt(min)", "Average Mz", "Metabolite name", "Adduct type", "MS/MS spectrum"]
SAMPLES = ["s1", "s2", "qc", "blank", "A"]
META = {
    "Class": ["A", "A", "QC", "Blank", "NA"],
    "File type": ["Sample", "Sample", "QC", "Blank", "NA"],
    "Injection order": ["1", "2", "3", "4", "NA"],
    "Batch ID": ["1", "1", "1", "1", "Average"],
}


def msdial_lines(
    rows=MSDIAL_ROWS, samples=SAMPLES, meta=META, type_label="File type", adduct_column="Adduct type"
) -> list[str]:
    """The export's lines (no line ends); edit them to make malformed variants."""
    pad = [""] * (len(FIXED) - 1)
    lines = []
    for label, values in meta.items():
        lines.append("\t".join(pad + [type_label if label == "File type" else label] + values))
    fixed = [adduct_column if c == "Adduct type" else c for c in FIXED]
    lines.append("\t".join(fixed + list(samples)))
    for r in rows:
        lines.append("\t".join([r[0], r[1], r[2], "Unknown", r[3], r[4], *r[5:]]))
    return lines


def write_lines(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_text(newline.join(lines) + newline, encoding="utf-8")
    return path


QUANT_HEADER = "id,mz,rt,datafile:a.mzML:height,datafile:a.mzML:area,datafile:b.mzML:height,datafile:b.mzML:area"
QUANT_ROWS = ["1,200.1,1.5,1.0E3,5,,", "2,300.2,2.5,2.0E3,6,3000,7", "3,400.3,3.5,500,8,600,9"]
MGF_BLOCKS = {
    "1": ["50.1 100", "80.2 50"],
    "3": ["100.5 10", "150.5 20", "200.5 30"],
    "99": ["60.0 1"],  # no quant row
}


# PEPMASS of each MGF_BLOCKS spectrum: the quant table's m/z of that id (the join checks they agree).
MGF_PEPMASS = {"1": 200.1, "2": 300.2, "3": 400.3, "99": 600.0}


def mgf_lines(blocks=MGF_BLOCKS, key="FEATURE_ID", extra=("CHARGE=1-",), pepmass=None) -> list[str]:
    pepmass = {**MGF_PEPMASS, **(pepmass or {})}
    lines = []
    for fid, peaks in blocks.items():
        pm = f"PEPMASS={pepmass.get(fid, 200.1)}"
        lines += ["BEGIN IONS", f"{key}={fid}", pm, *extra, "MSLEVEL=2", *peaks, "END IONS", ""]
    return lines


def _b64(values, dtype: str) -> str:
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode()


def mzml_text(scans: list[dict]) -> str:
    """A minimal uncompressed mzML. Each scan: id, level, rt (s), mz, intensity, [pmz, pint], [polarity]."""
    spectra = []
    for i, s in enumerate(scans):
        pol = {"+": ("MS:1000130", "positive scan"), "-": ("MS:1000129", "negative scan")}[s.get("polarity", "+")]
        precursor = ""
        if s["level"] == 2:
            pint = (
                f'<cvParam cvRef="MS" accession="MS:1000042" name="peak intensity" value="{s["pint"]}"/>'
                if s.get("pint") is not None
                else ""
            )
            precursor = (
                '<precursorList count="1"><precursor><selectedIonList count="1"><selectedIon>'
                f'<cvParam cvRef="MS" accession="MS:1000744" name="selected ion m/z" value="{s["pmz"]}"/>{pint}'
                "</selectedIon></selectedIonList></precursor></precursorList>"
            )
        arrays = "".join(
            f'<binaryDataArray encodedLength="0"><cvParam cvRef="MS" accession="MS:1000523" name="64-bit float"/>'
            f'<cvParam cvRef="MS" accession="MS:1000576" name="no compression"/>'
            f'<cvParam cvRef="MS" accession="{acc}" name="{name}"/><binary>{_b64(s[key], "<f8")}</binary>'
            "</binaryDataArray>"
            for key, acc, name in (("mz", "MS:1000514", "m/z array"), ("intensity", "MS:1000515", "intensity array"))
        )
        spectra.append(
            f'<spectrum index="{i}" id="scan={s["id"]}" defaultArrayLength="{len(s["mz"])}">\n'
            f'<cvParam cvRef="MS" accession="MS:1000511" name="ms level" value="{s["level"]}"/>'
            f'<cvParam cvRef="MS" accession="{pol[0]}" name="{pol[1]}"/>\n'
            f'<scanList count="1"><scan><cvParam cvRef="MS" accession="MS:1000016" name="scan start time" '
            f'value="{s["rt"]}" unitCvRef="UO" unitAccession="UO:0000010" unitName="second"/></scan></scanList>\n'
            f"{precursor}\n"
            f'<binaryDataArrayList count="2">{arrays}</binaryDataArrayList>\n</spectrum>'
        )
    body = "\n".join(spectra)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<mzML xmlns="http://psi.hupo.org/ms/mzml" version="1.1.0">\n'
        f'<run id="r"><spectrumList count="{len(spectra)}">\n{body}\n</spectrumList></run>\n</mzML>\n'
    )


def mzxml_text(scans: list[dict]) -> str:
    """A minimal uncompressed mzXML (peaks are big-endian m/z-intensity pairs)."""
    out = []
    for s in scans:
        pairs = np.column_stack([s["mz"], s["intensity"]]).ravel()
        precursor = ""
        if s["level"] == 2:
            pint = f' precursorIntensity="{s["pint"]}"' if s.get("pint") is not None else ""
            precursor = f"<precursorMz{pint}>{s['pmz']}</precursorMz>\n"
        out.append(
            f'<scan num="{s["id"]}" msLevel="{s["level"]}" peaksCount="{len(s["mz"])}" '
            f'polarity="{s.get("polarity", "+")}" retentionTime="PT{s["rt"]}S">\n{precursor}'
            f'<peaks precision="64" byteOrder="network" pairOrder="m/z-int" compressionType="none" '
            f'compressedLen="0">{_b64(pairs, ">f8")}</peaks>\n</scan>'
        )
    body = "\n".join(out)
    return (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<mzXML xmlns="http://sashimi.sourceforge.net/schema_revision/mzXML_3.2">\n'
        f'<msRun scanCount="{len(out)}">\n{body}\n</msRun>\n</mzXML>\n'
    )


# MS1 at 60 s with peaks at 200.001 (5 ppm from 200.0) and 300.01 (33 ppm from 300.0); three MS2 scans:
# precursor intensity given (7777), found in MS1 (1234), not found (0, counted).
RAW_SCANS = [
    {"id": 1, "level": 1, "rt": 60.0, "mz": [150.0, 200.001, 300.01], "intensity": [10.0, 1234.0, 99.0]},
    {"id": 2, "level": 2, "rt": 61.2, "mz": [50.0, 90.0], "intensity": [5.0, 6.0], "pmz": 250.0, "pint": 7777.0},
    {"id": 3, "level": 2, "rt": 62.4, "mz": [60.0], "intensity": [7.0], "pmz": 200.0},
    {"id": 4, "level": 2, "rt": 63.6, "mz": [70.0, 80.0, 95.0], "intensity": [1.0, 2.0, 3.0], "pmz": 300.0},
]
