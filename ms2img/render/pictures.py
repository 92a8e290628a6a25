"""Pictures for people: 8-bit grayscale PNGs of the image tensors (high fragment m/z at the top)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ms2img.atomic import atomic_path
from ms2img.io.schema import accession_filename
from ms2img.render.imageset import ImageSet

# Display gamma the CLI uses for PNGs. Pixel values span orders of magnitude (a product of two scaled intensities),
# so a linear 8-bit picture is nearly black apart from a few bright pixels; value ** 0.4 shows the faint fragments
# while keeping the order of intensities. Pictures only: tensors and models always see linear values.
PNG_GAMMA = 0.4


def to_uint8(image: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """Scale an image to 0..255 (divided by its max, then raised to ``gamma``; 1 = linear, < 1 brightens faint
    pixels), flipped so high fragment m/z is at the top."""
    if not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"gamma must be a number > 0, got {gamma!r}")
    img = np.asarray(image, dtype=np.float64)
    top = img.max() if img.size else 0.0
    v = img / top if top > 0 else np.zeros_like(img)
    if gamma != 1.0:
        v = v**gamma
    return np.round(np.clip(v, 0, 1) * 255).astype(np.uint8)[::-1]


def save_png(image: np.ndarray, path: str | Path, gamma: float = 1.0) -> Path:
    """Write one image as an 8-bit grayscale PNG for people (high fragment m/z at the top), atomically; ``gamma``
    as in :func:`to_uint8` (the CLI uses :data:`PNG_GAMMA`)."""
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(to_uint8(image, gamma)), mode="L").save(tmp, format="PNG")
    return Path(path)


def save_pngs(imageset: ImageSet, out_dir: str | Path, limit: int | None = None, gamma: float = 1.0) -> list[Path]:
    """Write up to ``limit`` images of ``imageset`` as ``out_dir/<accession>[_<replicate>].png``."""
    n = len(imageset) if limit is None else min(int(limit), len(imageset))
    paths = []
    for i in range(n):
        name = imageset.ids[i] if imageset.replicates is None else f"{imageset.ids[i]}_{imageset.replicates[i]}"
        stem = accession_filename(name).removesuffix(".parquet")
        paths.append(save_png(imageset.images[i], Path(out_dir) / f"{stem}.png", gamma))
    return paths
