"""What every reader returns (``ReadResult``) and what an ingest run reports (``IngestSummary``), plus the plumbing
readers share (the sample manifest, the events table of an aligned feature table); text loading is
:mod:`ms2img.io.text`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ms2img.errors import ConfigError, InputFileError
from ms2img.io.schema import CHARGE, EVENT_COLUMNS, SAMPLE_COLUMNS, WRITTEN_COLUMNS, coerce_events


class ReadResult:
    """One input's events (every sample incl. blanks and QC) and its sample manifest.

    ``events`` is the canonical pandas table; readers may hand over an Arrow table instead (``table``), which
    ingest writes without a pandas round trip, plus ``sample_of_row`` (row -> position in ``samples``).
    ``samples`` is the manifest as a DataFrame, or its rows as dicts (:func:`manifest_rows`; the DataFrame is
    then built on first use: ingest reads the rows and builds one manifest for all inputs).
    ``precursors_without_msms`` counts features / MS2 scans that gave no fragments; ``undetected_cells`` the
    feature x column cells of an aligned table with height 0 or empty (not detected there: no events, reported as
    a count); ``warnings`` counts recoverable problems by kind (e.g. a precursor intensity that could not be found,
    a height cell ``nan``).
    """

    def __init__(
        self,
        events: pd.DataFrame | pa.Table,
        samples: pd.DataFrame | list[dict],
        source: Path,
        precursors_without_msms: int = 0,
        warnings: dict[str, int] | None = None,
        aligned: bool = True,
        sample_of_row: np.ndarray | None = None,
        activity: pd.DataFrame | None = None,
        rt_unit: str = "",
        features: AlignedFeatures | None = None,
        undetected_cells: int = 0,
    ):
        self._frame = events if isinstance(events, pd.DataFrame) else None
        self._table = events if isinstance(events, pa.Table) else None
        self._samples = samples if isinstance(samples, pd.DataFrame) else None
        self._sample_rows = None if isinstance(samples, pd.DataFrame) else manifest_rows(samples)
        self.source = Path(source)
        self.precursors_without_msms = int(precursors_without_msms)
        self.undetected_cells = int(undetected_cells)
        self.warnings = dict(warnings or {})
        self.aligned = aligned  # feature ids are shared across samples (needed for blank subtraction)
        self._sample_of_row = sample_of_row
        self.activity = activity  # sample -> assay values found in the input (bioactivity layouts), or None
        self.rt_unit = rt_unit  # how the input's retention times were read, for the ingest printout
        self.polarities: dict[str, int] = {}  # events per polarity, counted by ingest before the events go
        # an aligned table kept parsed but not expanded (``events`` may then be None): the events are built on
        # first use, or streamed sample by sample (:meth:`AlignedFeatures.sample_events`) without the whole table
        self.features = features

    def declare_polarity(self, declared: str) -> None:
        """The lab's ion mode (``ingest.polarity``) for ions the input does not label (MZmine quant tables, MGFs
        with ``CHARGE=0+``): they take it, so models and requests know their mode and serving can refuse the other.
        An input whose labelled ions say the other mode is refused, naming the file."""
        if self.features is not None:
            self.features.polarity = _declared(self.features.polarity, declared, self.source)
            return
        table = self.table
        column = table.schema.get_field_index("polarity")
        self._table = table.set_column(column, "polarity", _declared(table["polarity"], declared, self.source))
        self._frame = None  # built again from the table when asked for

    def release_events(self) -> None:
        """Drop the events (ingest keeps only the manifest and counts of an input once its parts are written)."""
        self._frame = self._table = self._sample_of_row = self.features = None

    @property
    def samples(self) -> pd.DataFrame:
        """The sample manifest (``SAMPLE_COLUMNS``, all strings), one row per sample column / raw file."""
        if self._samples is None:
            self._samples = make_manifest(self._sample_rows)
        return self._samples

    @samples.setter
    def samples(self, value: pd.DataFrame) -> None:
        self._samples, self._sample_rows = value, None

    @property
    def sample_rows(self) -> list[dict[str, str]]:
        """The manifest as a list of ``SAMPLE_COLUMNS`` dicts (no pandas work when the reader gave rows)."""
        if self._sample_rows is None:
            self._sample_rows = self._samples.to_dict("records")
        return self._sample_rows

    @property
    def events(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = coerce_events(self.table.to_pandas(), optional=True)
        return self._frame

    @property
    def table(self) -> pa.Table:
        """The events as an Arrow table with the canonical columns (strings may be dictionary-encoded)."""
        if self._table is None and self._frame is None and self.features is not None:
            self._table, self._sample_of_row = self.features.table()
        if self._table is None:
            self._table = pa.Table.from_pandas(coerce_events(self._frame, optional=True), preserve_index=False)
        return self._table

    @property
    def sample_of_row(self) -> np.ndarray:
        """Position in ``samples`` of each events row (matched on accession + replicate when not given)."""
        if self._sample_of_row is None and self._table is None and self._frame is None and self.features is not None:
            self._table, self._sample_of_row = self.features.table()
        if self._sample_of_row is None:
            ev = self.events
            keys = pd.MultiIndex.from_frame(self.samples[["accession", "replicate"]].astype(str))
            rows = pd.MultiIndex.from_arrays([ev["accession"].astype(str), ev["replicate"].astype(str)])
            self._sample_of_row = keys.get_indexer(rows).astype(np.int64)
        return self._sample_of_row


def make_manifest(rows: list[dict]) -> pd.DataFrame:
    """A sample manifest with exactly ``SAMPLE_COLUMNS`` (all strings) from a list of row dicts."""
    df = pd.DataFrame(rows, columns=SAMPLE_COLUMNS)
    return df.fillna("").astype(str).reset_index(drop=True)


def manifest_rows(rows: list[dict]) -> list[dict[str, str]]:
    """The rows :func:`make_manifest` would hold, as dicts of ``SAMPLE_COLUMNS`` strings (missing -> "")."""
    return [{c: _cell_text(r.get(c)) for c in SAMPLE_COLUMNS} for r in rows]


def _cell_text(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value if isinstance(value, str) else str(value)


def polarity_counts(table: pa.Table) -> dict[str, int]:
    """Fragment events per polarity of one input (unknown left out: it mixes with either). Dictionary columns
    are counted by their codes: no string per row (22M rows for a 300 MB export)."""
    out: Counter[str] = Counter()
    for chunk in table.column("polarity").chunks:
        if pa.types.is_dictionary(chunk.type):
            names = chunk.dictionary.cast(pa.string()).to_pylist()
            for c in pc.value_counts(chunk.indices).to_pylist():
                if c["values"] is not None:
                    out[names[c["values"]]] += int(c["counts"])
        else:
            for c in pc.value_counts(chunk).to_pylist():
                out[str(c["values"])] += int(c["counts"])
    return {p: n for p, n in out.items() if p in ("positive", "negative")}


def check_polarities(by_file: dict[str, dict[str, int]], allowed: bool) -> None:
    """Positive and negative ions in one ingest: one line naming the files of each, unless allowed."""
    if allowed:
        return
    files = {p: [f for f, c in by_file.items() if c.get(p)] for p in ("positive", "negative")}
    if not (files["positive"] and files["negative"]):
        return

    def listed(names: list[str]) -> str:
        return ", ".join(Path(n).name for n in names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")

    raise ConfigError(
        f"the inputs mix polarities: positive ions in {listed(files['positive'])}; negative ions in "
        f"{listed(files['negative'])}. Ingest each polarity into its own events folder, or pass "
        "--allow-mixed-polarity (params: ingest.allow_mixed_polarity: true) to image them together"
    )


def _declared(values: Any, declared: str, source: Path) -> Any:
    """``values`` (polarity per row, dictionary-encoded) with "unknown" as ``declared``; an input that labels
    ions the other way contradicts the lab's setting: one line naming the file."""
    plain = pc.cast(values, pa.string())
    other = sorted(set(pc.unique(plain).to_pylist()) - {declared, "unknown", None})
    if other:
        raise InputFileError(
            source,
            f"it labels ions {', '.join(other)}, but ingest.polarity says {declared}: ingest each ion mode into its "
            "own events folder, or set ingest.polarity: auto",
        )
    return pc.if_else(pc.equal(plain, "unknown"), declared, plain).dictionary_encode()


def aligned_table(
    *,
    feature_id: np.ndarray | list[str],
    precursor_mz: np.ndarray,
    rt_min: np.ndarray,
    polarity: np.ndarray | list[str],
    fragment_feature: np.ndarray,
    fragment_mz: np.ndarray,
    fragment_intensity: np.ndarray,
    heights: np.ndarray,
    accessions: list[str],
    replicates: list[str],
    samples: np.ndarray | None = None,
    charge: np.ndarray | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """Events of an aligned feature table as Arrow: every (sample, feature with height > 0) x its fragments.

    ``fragment_feature[k]`` is the feature (row of ``heights``, features x samples) of fragment ``k``, ascending.
    Only the sample positions in ``samples`` (default: all) are expanded. Returns the table (string columns
    dictionary-encoded: no per-row Python strings) and each row's sample position. Rows are grouped by sample,
    in the order of ``samples``. ``charge`` (per feature; 0 = unknown, stored as 1) adds the optional column.
    """
    heights = np.asarray(heights, dtype=np.float64)
    feature_of_fragment = np.asarray(fragment_feature, dtype=np.int64)
    cols = np.arange(heights.shape[1]) if samples is None else np.asarray(samples, dtype=np.int64).reshape(-1)
    # (sample position, fragment) of every detected pair, sample-major: one boolean matrix, one nonzero
    detected = (heights[:, cols] > 0).T[:, feature_of_fragment] if len(cols) else np.zeros((0, 0), dtype=bool)
    col_pos, frags = np.nonzero(detected)
    samp = cols[col_pos].astype(np.int64, copy=False)
    table = event_table(
        feature_id=feature_id,
        precursor_mz=precursor_mz,
        rt_min=rt_min,
        polarity=polarity,
        heights=heights,
        accessions=accessions,
        replicates=replicates,
        charge=charge,
        sample=samp,
        feature=feature_of_fragment[frags],
        fragment_mz=np.asarray(fragment_mz, dtype=np.float64)[frags],
        fragment_intensity=np.asarray(fragment_intensity, dtype=np.float64)[frags],
    )
    return table, samp


def event_table(
    *,
    feature_id: np.ndarray | list[str] | pa.Array,
    precursor_mz: np.ndarray,
    rt_min: np.ndarray,
    polarity: np.ndarray | list[str] | pa.Array,
    heights: np.ndarray,
    accessions: list[str],
    replicates: list[str],
    charge: np.ndarray | None,
    sample: np.ndarray,
    feature: np.ndarray,
    fragment_mz: np.ndarray,
    fragment_intensity: np.ndarray,
) -> pa.Table:
    """The events table of chosen rows: row ``i`` is fragment ``fragment_mz[i]`` of feature ``feature[i]`` in
    sample position ``sample[i]`` (the per-feature and per-sample arguments as :func:`aligned_table` takes them).
    The one recipe for event columns, whether the rows come at once or a row group at a time."""
    feats = np.asarray(feature, dtype=np.int64)
    arrays = {
        "accession": dictionary_strings(accessions, sample),
        "replicate": dictionary_strings(replicates, sample),
        "feature_id": dictionary_strings(feature_id, feats),
        "precursor_mz": pa.array(np.asarray(precursor_mz, dtype=np.float64)[feats]),
        "rt_min": pa.array(np.asarray(rt_min, dtype=np.float64)[feats]),
        "precursor_intensity": pa.array(heights[feats, sample]),
        "fragment_mz": pa.array(fragment_mz),
        "fragment_intensity": pa.array(fragment_intensity),
        "polarity": dictionary_strings(polarity, feats),
    }
    names = EVENT_COLUMNS
    if charge is not None:
        z = np.maximum(np.asarray(charge, dtype=np.int64), 1).astype(np.int16)
        arrays[CHARGE] = pa.array(z[feats])
        names = WRITTEN_COLUMNS
    return pa.table([arrays[c] for c in names], names=names)


class FragmentBlock(NamedTuple):
    """The fragments of the consecutive features ``start, start + 1, ...``: feature ``start + i`` owns
    ``mz[offsets[i]:offsets[i + 1]]`` (and the same ``intensity``)."""

    start: int
    offsets: np.ndarray  # int64, one more than the block's features
    mz: np.ndarray
    intensity: np.ndarray

    def feature_of_fragment(self) -> np.ndarray:
        """The (global) feature of each fragment, int64."""
        n = len(self.offsets) - 1
        return np.repeat(np.arange(self.start, self.start + n, dtype=np.int64), np.diff(self.offsets))


@dataclass
class AlignedFeatures:
    """An aligned feature table as parsed, before it is expanded into events: per-feature columns, the heights
    (features x samples) and the fragments in blocks of consecutive features.

    It is much smaller than its events (one fragment is repeated for every sample that detected its feature), so
    a reader can hand it over whole and ingest can write each accession's events block by block
    (:meth:`sample_events`): peak memory then follows the file, not the number of events. :meth:`table` builds
    all events at once, the same rows :func:`aligned_table` gives for the whole file.
    """

    feature_id: pa.DictionaryArray
    precursor_mz: np.ndarray
    rt_min: np.ndarray
    polarity: pa.DictionaryArray
    charge: np.ndarray | None
    heights: np.ndarray
    blocks: list[FragmentBlock]
    accessions: list[str]  # per sample (heights column)
    replicates: list[str]
    expand: list[int] | None = None  # sample positions expanded into events (None: all)

    def _columns(self) -> list[int]:
        return list(range(self.heights.shape[1])) if self.expand is None else list(self.expand)

    def fragment_counts(self) -> np.ndarray:
        """Fragments per feature (int64)."""
        if not self.blocks:
            return np.zeros(len(self.precursor_mz), dtype=np.int64)
        return np.concatenate([np.diff(b.offsets) for b in self.blocks])

    def event_counts(self) -> dict[int, int]:
        """Events per expanded sample position: the fragments of the features it detected (height > 0)."""
        counts = self.fragment_counts()
        return {s: int(counts[self.heights[:, s] > 0].sum()) for s in self._columns()}

    def polarity_counts(self) -> dict[str, int]:
        """Events per polarity (positive / negative; unknown left out) over the expanded samples."""
        cols = self._columns()
        detected = (self.heights[:, cols] > 0).sum(axis=1) if cols else np.zeros(len(self.heights), np.int64)
        per_feature = detected.astype(np.int64) * self.fragment_counts()
        names = self.polarity.dictionary.to_pylist()
        codes = self.polarity.indices.to_numpy(zero_copy_only=False)
        totals = np.bincount(codes, weights=per_feature, minlength=len(names))
        return {p: int(n) for p, n in zip(names, totals, strict=True) if p in ("positive", "negative") and n > 0}

    def table(self) -> tuple[pa.Table, np.ndarray]:
        """All events at once (:func:`aligned_table` over the whole file) and each row's sample position."""
        blocks = self.blocks
        if len(blocks) == 1:  # the whole-file reader's one block: no copies
            return self._aligned(blocks[0].feature_of_fragment(), blocks[0].mz, blocks[0].intensity, self.expand)
        empty = np.empty(0, dtype=np.float64)
        return self._aligned(
            np.concatenate([b.feature_of_fragment() for b in blocks]) if blocks else np.empty(0, dtype=np.int64),
            np.concatenate([b.mz for b in blocks]) if blocks else empty,
            np.concatenate([b.intensity for b in blocks]) if blocks else empty,
            self.expand,
        )

    def row_groups(self, samples: list[int], rows: int) -> Iterator[pa.Table]:
        """The events of the sample positions ``samples`` (in that order) as tables of ``rows`` rows (the last one
        shorter): concatenated, the rows (and dictionaries) :meth:`table` holds for those samples, in the same
        order. Only about one table's worth of events is in memory at a time."""
        pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []  # (sample, features, m/z, intensity)
        n = 0
        for s in samples:
            detected = self.heights[:, s] > 0
            for block in self.blocks:
                feature_of_fragment = block.feature_of_fragment()
                frags = np.flatnonzero(detected[feature_of_fragment])
                while len(frags):
                    take, frags = frags[: rows - n], frags[rows - n :]
                    pending.append((s, feature_of_fragment[take], block.mz[take], block.intensity[take]))
                    n += len(take)
                    if n == rows:
                        yield self._rows(pending)
                        pending, n = [], 0
        if n:
            yield self._rows(pending)

    def _rows(self, pending: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]) -> pa.Table:
        sample = np.concatenate([np.full(len(f), s, dtype=np.int64) for s, f, _, _ in pending])
        feature = np.concatenate([f for _, f, _, _ in pending])
        mz = np.concatenate([m for _, _, m, _ in pending])
        intensity = np.concatenate([i for _, _, _, i in pending])
        pending.clear()
        return event_table(
            feature_id=self.feature_id,
            precursor_mz=self.precursor_mz,
            rt_min=self.rt_min,
            polarity=self.polarity,
            heights=self.heights,
            accessions=self.accessions,
            replicates=self.replicates,
            charge=self.charge,
            sample=sample,
            feature=feature,
            fragment_mz=mz,
            fragment_intensity=intensity,
        )

    def _aligned(self, feature_of_fragment, mz, intensity, samples) -> tuple[pa.Table, np.ndarray]:
        return aligned_table(
            feature_id=self.feature_id,
            precursor_mz=self.precursor_mz,
            rt_min=self.rt_min,
            polarity=self.polarity,
            fragment_feature=feature_of_fragment,
            fragment_mz=mz,
            fragment_intensity=intensity,
            heights=self.heights,
            accessions=self.accessions,
            replicates=self.replicates,
            samples=samples,
            charge=self.charge,
        )


def dictionary_strings(
    values: list[str] | np.ndarray | pa.Array | pa.DictionaryArray, codes: np.ndarray
) -> pa.DictionaryArray:
    """``values[codes]`` as an Arrow dictionary array (int32 codes): cheap to build, write and read.

    ``values`` may be an Arrow string array (encoded in C) or an Arrow dictionary array (used as it is)."""
    if isinstance(values, pa.Array) and not pa.types.is_dictionary(values.type):
        values = pc.dictionary_encode(values.cast(pa.string()))
    if isinstance(values, pa.DictionaryArray):
        remap = values.indices.to_numpy(zero_copy_only=False)
        dictionary = values.dictionary
        if dictionary.type != pa.string():
            dictionary = dictionary.cast(pa.string())
    else:  # a Python dict factorizes a short list faster than pandas sets up
        index: dict[str, int] = {}
        texts = [v if isinstance(v, str) else str(v) for v in values]
        remap = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
        dictionary = pa.array(list(index), type=pa.string())
    codes = remap[np.asarray(codes, dtype=np.int64)] if len(codes) else np.empty(0, dtype=np.int64)
    # codes index the dictionary by construction: no bounds check (safe=False)
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32, copy=False)), dictionary, safe=False)


def flatten_spectra(spectra: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature ``(mz, intensity)`` pairs -> ``(feature of fragment, mz, intensity)`` flat arrays."""
    counts = np.fromiter((len(mz) for mz, _ in spectra), dtype=np.int64, count=len(spectra))
    empty = np.empty(0, dtype=np.float64)
    mz = np.concatenate([m for m, _ in spectra]) if len(spectra) else empty
    it = np.concatenate([i for _, i in spectra]) if len(spectra) else empty
    return np.repeat(np.arange(len(spectra)), counts), mz, it


@dataclass
class IngestSummary:
    """What an ingest run wrote and found."""

    out_dir: Path
    files: int = 0
    accessions: int = 0
    samples: dict[str, int] = field(default_factory=dict)  # by type, incl. blanks and QC
    events: int = 0
    precursors_without_msms: int = 0
    undetected_cells: int = 0  # aligned tables' feature x column cells of height 0 or empty
    blank_removed: int = 0  # (sample, feature) pairs dropped by blank subtraction
    stale_removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # tables in an input folder that are not LC-MS/MS data
    metadata_found: str = ""  # the sample metadata table found among the inputs and used (no sheet, no --metadata)
    warnings: dict[str, int] = field(default_factory=dict)
    assays_out: Path | None = None
    assays: list[str] = field(default_factory=list)  # assay columns written to assays_out
    rt_units: dict[str, list[str]] = field(default_factory=dict)  # how RTs were read -> the files read so
    polarities: dict[str, int] = field(default_factory=dict)  # fragment events per polarity, all inputs
    # training injections that gave no event (no detected precursor): "<sample> (accession A: 3 of 4 replicates kept)"
    silent_injections: list[str] = field(default_factory=list)

    def format(self) -> str:
        """A few lines for people."""
        types = ", ".join(f"{n} {t}" for t, n in sorted(self.samples.items())) or "none"
        lines = [
            f"ingested {self.files} file(s) into {self.out_dir}",
            f"  accessions written: {self.accessions} ({self.events:,} fragment events)",
            f"  samples: {types}",
            *self.fact_lines(),
        ]
        if self.blank_removed:
            lines.append(f"  removed by blank subtraction: {self.blank_removed} sample features")
        if self.stale_removed:
            lines.append(f"  removed stale files: {', '.join(self.stale_removed)}")
        lines += self.found_lines()
        if self.assays_out is not None:
            lines.append(f"  assays: {', '.join(self.assays)} -> {self.assays_out}")
        lines += self.warning_lines()
        return "\n".join(lines)

    def fact_lines(self) -> list[str]:
        """What the inputs hold that a lab checks before trusting them (``ms2img validate`` prints them too):
        precursors without MS/MS, cells not detected, how retention times were read, the polarity."""
        lines = [f"  precursors without MS/MS: {self.precursors_without_msms}"]
        if self.undetected_cells:
            lines.append(f"  not detected (height 0 or empty): {self.undetected_cells:,} feature x sample cells")
        for said, files in self.rt_units.items():
            named = Path(files[0]).name if len(files) == 1 else f"{len(files)} files"
            lines.append(f"  retention time: {named}: {said}")
        if self.polarities:
            lines.append("  polarity: " + " and ".join(sorted(self.polarities)))
        return lines

    def found_lines(self) -> list[str]:
        """The sample metadata table used and the files skipped among the inputs (``ms2img validate`` prints them
        too)."""
        used = "(found among the inputs: sample types and classes from it)"
        lines = [f"  metadata: {self.metadata_found} {used}"] if self.metadata_found else []
        return lines + [f"  skipped: {what}" for what in self.skipped]

    def warning_lines(self, limit: int = 5) -> list[str]:
        """What the readers counted (missing heights, sheet type changes, unlisted samples...), one line each; first
        the injections left out for want of a detected precursor, named (at most ``limit``), with what their
        accessions kept."""
        lines = []
        if self.silent_injections:
            n = len(self.silent_injections)
            shown = "; ".join(self.silent_injections[:limit]) + (f"; and {n - limit} more" if n > limit else "")
            lines.append(f"  warning: {n} injection(s) with no detected precursor (with MS/MS), left out: {shown}")
        return lines + [f"  warning: {kind}: {n}" for kind, n in sorted(self.warnings.items())]


def silent_samples(result: ReadResult, types: Collection[str]) -> list[int]:
    """Manifest positions of the training samples (injections) that give no event: no detected precursor (every
    height 0) or none with MS/MS. A dead injection is what instruments produce, not a broken file, so it is not an
    error; but leaving it out without a word would let an accession train on fewer replicates than the sheet says."""
    rows = result.sample_rows
    if result.features is not None:
        counts = result.features.event_counts()
        n = np.array([counts.get(s, 0) for s in range(len(rows))], dtype=np.int64)
    else:
        of_row = result.sample_of_row
        n = np.bincount(of_row[of_row >= 0], minlength=len(rows))
    return [s for s, r in enumerate(rows) if r["type"] in types and n[s] == 0]


def silent_injection_lines(silent: list[tuple[str, str]], manifest: pd.DataFrame, types: Collection[str]) -> list[str]:
    """``"<sample> (accession <a>: <k> of <n> replicates kept)"`` for each silent ``(sample, accession)``."""
    training = manifest[manifest["type"].isin(types)].groupby("accession").size()
    lost = Counter(acc for _, acc in silent)
    return [
        f"{sample} (accession {acc}: {int(training.get(acc, 0)) - lost[acc]} of {int(training.get(acc, 0))} "
        "replicates kept)"
        for sample, acc in silent
    ]
