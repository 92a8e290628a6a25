"""Rendering an events folder (one Parquet file at a time) and writing the image and PNG folders atomically."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from ms2img.atomic import atomic_dir
from ms2img.errors import ConfigError, InputFileError
from ms2img.render.config import RenderConfig, parse_size
from ms2img.render.core import RENDER_COLUMNS, render_events
from ms2img.render.imageset import ImageSet, concat_imagesets, images_path
from ms2img.render.pictures import save_pngs

log = logging.getLogger(__name__)


def event_files(events_dir: str | Path) -> list[Path]:
    """The events Parquet files of a folder (or the one file given), sorted; a clear error when there are none."""
    events_dir = Path(events_dir)
    if events_dir.is_file() and events_dir.suffix == ".parquet":
        return [events_dir]
    if events_dir.is_file():  # an export or MGF given where its ingested events belong
        raise ConfigError(f"'{events_dir}' is a file, not an events folder: read it first with `ms2img ingest "
                          f"{events_dir} --out EVENTS` and pass EVENTS")  # fmt: skip
    if not events_dir.is_dir():
        raise ConfigError(f"events folder '{events_dir}' does not exist (run `ms2img ingest` first)")
    files = sorted(events_dir.glob("*.parquet"))
    if not files:
        raise ConfigError(f"events folder '{events_dir}' holds no *.parquet files (run `ms2img ingest` first)")
    return files


def read_render_columns(path: Path) -> pd.DataFrame:
    """The columns the renderer needs, string columns dictionary-encoded (read as categoricals: no hashing)."""
    try:
        schema = pq.read_schema(path)
        missing = [c for c in RENDER_COLUMNS if c not in schema.names]
        if missing:
            raise InputFileError(path, f"events file lacks columns {missing}")
        table = pq.read_table(path, columns=RENDER_COLUMNS, read_dictionary=["accession", "replicate", "feature_id"])
        return table.to_pandas()
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types; the user needs the file name
        raise InputFileError(path, f"not a readable Parquet events file ({exc.__class__.__name__}: {exc})") from None


def render_files(
    events_dir: str | Path,
    configs: Sequence[RenderConfig],
    rng: np.random.Generator | None = None,
    progress: bool = True,
    outside: dict[str, int] | None = None,
) -> list[ImageSet]:
    """Render every ``*.parquet`` in ``events_dir`` (read one at a time) at each config; one ImageSet per config.

    ``outside``: filled with the fragment events the images leave out (every config shares the m/z ranges):
    ``precursor``, those whose precursor m/z is outside ``x_range``; ``fragment``, the others whose fragment m/z is
    outside ``y_range``."""
    files = event_files(events_dir)
    parts: list[list[ImageSet]] = [[] for _ in configs]
    sources: dict[tuple[str, str], Path] = {}
    for f in tqdm(files, desc="render", unit="file", disable=None if progress else True):
        df = read_render_columns(f)
        if outside is not None and configs:
            (x_lo, x_hi), (y_lo, y_hi) = configs[0].x_range, configs[0].y_range
            x, y = df["precursor_mz"].to_numpy(), df["fragment_mz"].to_numpy()
            off_x = ~((x >= x_lo) & (x < x_hi))
            outside["precursor"] = outside.get("precursor", 0) + int(off_x.sum())
            outside["fragment"] = outside.get("fragment", 0) + int((~off_x & ~((y >= y_lo) & (y < y_hi))).sum())
        for k, cfg in enumerate(configs):
            s = render_events(df, cfg, rng=rng, progress=False)
            parts[k].append(s)
            if k == 0:
                keys = zip(s.ids, s.replicates if s.replicates is not None else [""] * len(s), strict=True)
                for key in keys:
                    if key in sources:
                        raise InputFileError(
                            f,
                            f"accession '{key[0]}' also appears in {sources[key]}; render expects each accession's "
                            "events in one file (as `ms2img ingest` writes them)",
                        )
                    sources[key] = f
    if not sources:
        raise InputFileError(events_dir, "no MS/MS events in any events file; nothing to render")
    out = []
    for k, cfg in enumerate(configs):
        s = concat_imagesets(parts[k])
        reps = s.replicates if s.replicates is not None else np.full(len(s), "")
        order = np.lexsort((reps, s.ids))
        out.append(
            ImageSet(
                s.images[order],
                s.ids[order],
                s.x_edges,
                s.y_edges,
                cfg.to_dict(),
                None if s.replicates is None else s.replicates[order],
            )
        )
    return out


def render_dir(
    events_dir: str | Path,
    out_path: str | Path,
    config: RenderConfig | None = None,
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> ImageSet:
    """Render an events folder (one Parquet file at a time, to bound memory) and save the ``.npz`` at ``out_path``."""
    config = config or RenderConfig()
    (images,) = render_files(events_dir, [config], rng=rng, progress=progress)
    images.save(out_path)
    log.info("wrote %d images (%s) to %s", len(images), config.size, out_path)
    return images


def render_dir_sizes(
    events_dir: str | Path,
    out_dir: str | Path,
    config: RenderConfig,
    sizes: Iterable[str | Sequence[int]],
    rng: np.random.Generator | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """Render several resolutions in one pass over the events; writes ``out_dir/<W>x<H>.npz`` for each, the folder
    swapped in as one step (:func:`write_image_folder`)."""
    configs = [config.with_size(s) for s in sizes]
    check_output_folder(out_dir, "images")
    sets = render_files(events_dir, configs, rng=rng, progress=progress)
    return write_image_folder(sets, out_dir)


# ------------------------------------------------------------------------------------------ output folders
# `ms2img render` owns its output folders and replaces each as a whole: the image folder (``<WxH>.npz`` per size)
# and the PNG folder (``*.png`` for one size, ``<WxH>/*.png`` for several). Each is built aside and swapped in
# with one exchange (ms2img.atomic.atomic_dir), so a reader, or a run killed at any point, sees the old folder or
# the new one, never a mix; what a killed run left (staging copies, temporary files) goes on the next run.
FOLDER_KINDS = ("images", "pngs")


def _is_temp_leftover(p: Path) -> bool:
    """A hidden temporary file of an interrupted atomic write (``.<name>.<random>.tmp<suffix>``)."""
    return p.name.startswith(".") and ".tmp" in p.name


def _is_size_name(name: str) -> bool:
    try:
        parse_size(name)
    except ConfigError:
        return False
    return True


def _foreign_entries(folder: Path, kind: str) -> list[str]:
    """Entries of ``folder`` that render does not write (temporary leftovers excepted)."""
    foreign = []
    for p in sorted(folder.iterdir()):
        if _is_temp_leftover(p):
            continue
        if kind == "images":
            ok = p.is_file() and p.suffix == ".npz" and _is_size_name(p.stem)
        elif p.is_dir() and _is_size_name(p.name):
            inner = [q for q in sorted(p.iterdir()) if not (q.is_file() and q.suffix == ".png")]
            foreign += [f"{p.name}/{q.name}" for q in inner if not _is_temp_leftover(q)]
            continue
        else:
            ok = p.is_file() and p.suffix == ".png"
        if not ok:
            foreign.append(p.name)
    return foreign


def check_output_folder(folder: str | Path, kind: str) -> Path:
    """Refuse an output folder that holds anything render did not write (it is replaced as a whole), or a file.

    ``kind``: ``"images"`` (``<WxH>.npz`` files) or ``"pngs"`` (``*.png`` and ``<WxH>/`` folders of them).
    """
    if kind not in FOLDER_KINDS:
        raise ValueError(f"kind must be one of {FOLDER_KINDS}, got {kind!r}")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder}: exists and is not a folder")
    if folder.is_dir():
        foreign = _foreign_entries(folder, kind)
        if foreign:
            shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
            what = "<WxH>.npz image files" if kind == "images" else "PNG files and <WxH>/ PNG folders"
            raise ConfigError(
                f"{folder}: holds {shown}, which `ms2img render` did not write; render replaces this folder as a "
                f"whole (it may hold only {what}), so give it a folder of its own"
            )
    return folder


def write_image_folder(sets: Sequence[ImageSet], out_dir: str | Path) -> dict[str, Path]:
    """Save each set as ``out_dir/<WxH>.npz`` and swap the folder in as one step; returns size -> path.

    Sizes rendered earlier but not now are carried over unchanged; a killed run leaves the old folder.
    """
    out_dir = check_output_folder(out_dir, "images")
    sizes = {s.size for s in sets}
    with atomic_dir(out_dir) as stage:
        if out_dir.is_dir():
            for p in out_dir.iterdir():
                if not _is_temp_leftover(p) and p.stem not in sizes:
                    shutil.copy2(p, stage / p.name)
        for s in sets:
            s.save(images_path(s.size, stage))
    written = {s.size: images_path(s.size, out_dir) for s in sets}
    for s in sets:
        log.info("wrote %d images (%s) to %s", len(s), s.size, written[s.size])
    return written


def write_png_folder(
    sets: Sequence[ImageSet],
    png_dir: str | Path,
    limit: int | None = None,
    gamma: float = 1.0,
    by_size: bool | None = None,
) -> dict[str, tuple[Path, int]]:
    """Write up to ``limit`` PNGs per set into ``png_dir`` (``by_size``, the default for several sets:
    ``png_dir/<WxH>/``) and swap the folder in as one step; returns size -> (folder, number of PNGs).

    The PNGs a set gets replace all earlier PNGs in its folder (no stale pictures of other accessions remain);
    ``<WxH>/`` folders of sizes not written now are carried over.
    """
    png_dir = check_output_folder(png_dir, "pngs")
    by_size = len(sets) > 1 if by_size is None else by_size
    if not by_size and len(sets) > 1:
        raise ValueError("several image sets need by_size=True (one PNG folder per size)")
    sizes = {s.size for s in sets}
    out: dict[str, tuple[Path, int]] = {}
    with atomic_dir(png_dir) as stage:
        if png_dir.is_dir():
            for p in png_dir.iterdir():
                if _is_temp_leftover(p) or (p.is_dir() and p.name in sizes) or (p.is_file() and not by_size):
                    continue  # rewritten below (or a leftover)
                if p.is_dir():
                    shutil.copytree(p, stage / p.name, ignore=lambda _d, names: [n for n in names if n[0] == "."])
                else:
                    shutil.copy2(p, stage / p.name)
        for s in sets:
            rel = Path(s.size) if by_size else Path()
            n = len(save_pngs(s, stage / rel, limit=limit, gamma=gamma))
            out[s.size] = (png_dir / rel, n)
    return out
