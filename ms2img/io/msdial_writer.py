"""Write MS-DIAL v4 alignment exports (``.txt``), the format :func:`ms2img.io.msdial.read_msdial` reads.

The synthetic cohort (:mod:`ms2img.synth`) builds its exports with this writer; tests use it to make small,
exact exports. The layout is copied from a real export (msdialr's ``MSDIAL_Alignment_result_LC-MS.txt``): four
metadata rows (``Class``, ``File type``, ``Injection order``, ``Batch ID``) whose label sits just left of the
first sample column, the header, then one row per alignment spot with the 32 fixed columns, one height column
per sample, then one Average and one Stdev column per class. Lines end in CRLF like the Windows program.

The writer only formats: callers pass columns (lists or arrays, one entry per row, in output order) and the
sample layout. Average/Stdev cells are computed here from the heights, the way MS-DIAL does (sample SD).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MSDIAL_HEADER = [
    "Alignment ID",
    "Average Rt(min)",
    "Average Mz",
    "Metabolite name",
    "Adduct type",
    "Post curation result",
    "Fill %",
    "MS/MS assigned",
    "Reference RT",
    "Reference m/z",
    "Formula",
    "Ontology",
    "INCHIKEY",
    "SMILES",
    "Annotation tag (VS1.0)",
    "RT matched",
    "m/z matched",
    "MS/MS matched",
    "Comment",
    "Manually modified for quantification",
    "Manually modified for annotation",
    "Isotope tracking parent ID",
    "Isotope tracking weight number",
    "Total score",
    "RT similarity",
    "Dot product",
    "Reverse dot product",
    "Fragment presence %",
    "S/N average",
    "Spectrum reference file name",
    "MS1 isotopic spectrum",
    "MS/MS spectrum",
]
METADATA_ROWS = ("Class", "File type", "Injection order", "Batch ID")
EOL = "\r\n"
# identification cells of an unannotated row: Reference RT ... MS/MS matched
UNKNOWN_IDENT = ("null",) * 6 + ("999", "False", "False", "False")
UNKNOWN_SCORES = ("null",) * 5


@dataclass
class Annotation:
    """A library hit written into the identification columns of one row."""

    name: str
    ref_rt: float
    ref_mz: float
    formula: str = "null"
    ontology: str = "null"
    inchikey: str = "null"
    smiles: str = "null"
    scores: tuple[float, float, float, float, float] = (85.0, 90.0, 0.85, 0.9, 80.0)  # total, RT, dot, rev, presence


@dataclass
class AlignmentExport:
    """One alignment export: sample layout plus per-row columns (one entry per row, already in output order)."""

    samples: list[str]  # sample column names
    classes: list[str]  # Class row, per sample
    file_types: list[str]  # "Sample" | "Blank" | "QC", per sample
    groups: list[list[int]]  # class name order for Average/Stdev columns: sample indices per group
    group_names: list[str]
    rt: np.ndarray
    mz: np.ndarray
    heights: np.ndarray  # (rows, samples), integers
    adduct: list[str]
    msms: list[str]  # "mz:int mz:int ..." or ""
    isotopes: list[str]  # "MS1 isotopic spectrum" cells
    ref_file: list[str]  # "Spectrum reference file name"
    sn: np.ndarray  # S/N average
    annotations: list[Annotation | None]
    post_curation: list[str] = field(default_factory=list)
    batch: list[str] = field(default_factory=list)  # Batch ID row, per sample (default "1")
    injection_order: list[int] = field(default_factory=list)  # per sample (default 1..n)


def fmt_num(x: float) -> str:
    """Average/Stdev cells like MS-DIAL (.NET double -> up to 15 significant digits)."""
    return f"{x:.15g}"


def fmt_mz(x: float) -> str:
    """An m/z with at most 5 decimals, shortest form."""
    return repr(round(float(x), 5))


def format_msms(mz: np.ndarray, intensity: np.ndarray) -> str:
    """``mz:int mz:int`` (m/z to 5 decimals, integer intensities), the MS-DIAL ``MS/MS spectrum`` cell."""
    return msms_cells(mz, intensity, np.array([0, len(mz)]), [0])[0]


def msms_cells(mz: np.ndarray, intensity: np.ndarray, bounds: np.ndarray, rows: Sequence[int]) -> list[str]:
    """``MS/MS spectrum`` cells of many rows at once: row ``r``'s peaks are ``mz[bounds[r]:bounds[r + 1]]``."""
    pairs = [
        f"{m}:{a}"
        for m, a in zip(np.round(mz, 5).tolist(), np.asarray(intensity).astype(np.int64).tolist(), strict=True)
    ]
    b = np.asarray(bounds).tolist()
    return [" ".join(pairs[b[r] : b[r + 1]]) for r in rows]


def _metadata_lines(ex: AlignmentExport) -> list[str]:
    n_samp = len(ex.samples)
    n_grp = len(ex.group_names)
    pad = [""] * (len(MSDIAL_HEADER) - 1)
    order = ex.injection_order or list(range(1, n_samp + 1))
    batch = ex.batch or ["1"] * n_samp
    values = {
        "Class": list(ex.classes) + ["NA"] * (2 * n_grp),
        "File type": list(ex.file_types) + ["NA"] * (2 * n_grp),
        "Injection order": [str(i) for i in order] + ["NA"] * (2 * n_grp),
        "Batch ID": list(batch) + ["Average"] * n_grp + ["Stdev"] * n_grp,
    }
    return ["\t".join(pad + [label] + values[label]) for label in METADATA_ROWS]


def format_alignment(ex: AlignmentExport) -> str:
    """The export as text (CRLF line ends)."""
    n = len(ex.mz)
    lines = _metadata_lines(ex)
    lines.append("\t".join(MSDIAL_HEADER + list(ex.samples) + list(ex.group_names) + list(ex.group_names)))
    heights = np.asarray(ex.heights, dtype=float)
    h_cells = [[str(v) for v in row] for row in heights.astype(np.int64).tolist()]
    means = np.stack([heights[:, c].mean(1) for c in ex.groups], axis=1).tolist()
    sds = np.stack([heights[:, c].std(1, ddof=1) if len(c) > 1 else np.zeros(n) for c in ex.groups], axis=1).tolist()
    fill = [f"{x:g}" for x in ((heights > 0).sum(1) / heights.shape[1]).tolist()]
    sn = [f"{x:.2f}" for x in np.asarray(ex.sn, float).tolist()]
    mz_cells = np.round(np.asarray(ex.mz, float), 5).tolist()
    rt_cells = np.round(np.asarray(ex.rt, float), 3).tolist()
    post = ex.post_curation or [""] * n
    for i in range(n):
        annot = ex.annotations[i]
        if annot is not None:
            ident = [
                fmt_num(round(annot.ref_rt, 3)), fmt_mz(annot.ref_mz), annot.formula, annot.ontology,
                annot.inchikey, annot.smiles, "430", "True", "True", "True",
            ]  # fmt: skip
            s = annot.scores
            scores = [f"{s[0]:.1f}", f"{s[1]:.1f}", f"{s[2]:.3f}", f"{s[3]:.3f}", f"{s[4]:.1f}"]
            name = annot.name
        else:
            ident, scores, name = UNKNOWN_IDENT, UNKNOWN_SCORES, "Unknown"
        spec = ex.msms[i]
        cells = [
            str(i), str(rt_cells[i]), str(mz_cells[i]), name, ex.adduct[i], post[i], fill[i],
            "True" if spec else "False", *ident, "", "False", "False", "null", "null", *scores, sn[i],
            ex.ref_file[i], ex.isotopes[i], spec, *h_cells[i],
            *[fmt_num(v) for v in means[i]], *[fmt_num(v) for v in sds[i]],
        ]  # fmt: skip
        lines.append("\t".join(cells))
    return EOL.join(lines) + EOL


def isotope_cells(mz: Sequence[float], height: Sequence[float], ion_mz: Sequence[float]) -> list[str]:
    """``MS1 isotopic spectrum`` cells: M, M+1, M+2 with carbon-number ratios estimated from the ion m/z."""
    mz = np.asarray(mz, float)
    h = np.asarray(height, float).astype(np.int64)
    r1 = 0.011 * np.maximum(np.asarray(ion_mz, float), 100) / 14.0
    c13 = 1.003355
    return [
        f"{m0}:{a0} {m1}:{a1} {m2}:{a2}"
        for m0, m1, m2, a0, a1, a2 in zip(
            np.round(mz, 5).tolist(), np.round(mz + c13, 5).tolist(), np.round(mz + 2 * c13, 5).tolist(),
            h.tolist(), (h * r1).astype(np.int64).tolist(), (h * r1 * r1 / 2).astype(np.int64).tolist(),
            strict=True,
        )
    ]  # fmt: skip
