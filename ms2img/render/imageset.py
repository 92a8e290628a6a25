"""Rendered image tensors on disk: :class:`ImageSet` (``.npz``), stacking, and where the pipeline keeps them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ms2img.atomic import atomic_path
from ms2img.errors import InputFileError
from ms2img.render.config import RenderConfig, format_size, parse_size

# The image folder the pipeline (dvc.yaml's render stage) writes and the training stages read.
IMAGES_ROOT = Path("data/images")


def images_path(size: str | Sequence[int], root: str | Path = IMAGES_ROOT) -> Path:
    """Where the image tensors of one size live: ``<root>/<W>x<H>.npz`` (default root ``data/images``).

    The one place that spells this path; ``size`` is ``"150x140"`` or ``(150, 140)``.
    """
    return Path(root) / f"{format_size(*parse_size(size))}.npz"


def clean_temp_leftovers(target: str | Path) -> list[Path]:
    """Remove the hidden temporary files a killed :func:`ms2img.atomic.atomic_path` write of ``target`` left next
    to it (``.<name>.<random>.tmp<suffix>``); returns what went."""
    target = Path(target)
    gone = []
    if target.parent.is_dir():
        for p in target.parent.glob(f".{target.name}.*.tmp{target.suffix}"):
            if p.is_file():
                p.unlink(missing_ok=True)
                gone.append(p)
    return gone


@dataclasses.dataclass
class ImageSet:
    """Rendered images plus what is needed to interpret them.

    ``images`` float32 ``(N, H, W)``; ``ids`` accession per image; ``replicates`` replicate per image (only in
    per-replicate mode, else None); ``x_edges`` ``(W+1)`` precursor m/z and ``y_edges`` ``(H+1)`` fragment m/z bin
    edges; ``config`` the :class:`RenderConfig` as a dict.
    """

    images: np.ndarray
    ids: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray
    config: dict[str, Any]
    replicates: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images, dtype=np.float32)
        self.ids = np.asarray(self.ids).astype(str)
        self.x_edges = np.asarray(self.x_edges, dtype=np.float64)
        self.y_edges = np.asarray(self.y_edges, dtype=np.float64)
        if self.replicates is not None:
            self.replicates = np.asarray(self.replicates).astype(str)
        if self.images.ndim != 3:
            raise ValueError(f"images must be (N, H, W), got shape {self.images.shape}")
        n, h, w = self.images.shape
        if len(self.ids) != n or (self.replicates is not None and len(self.replicates) != n):
            raise ValueError("ids/replicates must have one entry per image")
        if len(self.x_edges) != w + 1 or len(self.y_edges) != h + 1:
            raise ValueError(f"edges ({len(self.x_edges)}, {len(self.y_edges)}) do not match images {w}x{h} (+1)")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)`` of one image."""
        return int(self.images.shape[1]), int(self.images.shape[2])

    @property
    def size(self) -> str:
        """``"WxH"``."""
        return format_size(self.shape[1], self.shape[0])

    def render_config(self) -> RenderConfig:
        """The :class:`RenderConfig` these images were made with."""
        return RenderConfig.from_dict(self.config)

    def pixel_box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """The m/z box ``(x_lo, x_hi, y_lo, y_hi)`` (precursor, fragment) covered by pixel ``[row, col]``."""
        h, w = self.shape
        if not (0 <= row < h and 0 <= col < w):
            raise IndexError(f"pixel ({row}, {col}) outside a {h}x{w} (H x W) image")
        return (
            float(self.x_edges[col]),
            float(self.x_edges[col + 1]),
            float(self.y_edges[row]),
            float(self.y_edges[row + 1]),
        )

    def index_of(self, accession: str) -> np.ndarray:
        """Indices of the images of ``accession`` (one, or one per replicate)."""
        return np.flatnonzero(self.ids == str(accession))

    def save(self, path: str | Path) -> Path:
        """Write a compressed ``.npz`` atomically, at exactly ``path``."""
        arrays: dict[str, np.ndarray] = {
            "images": self.images,
            "ids": self.ids.astype(np.str_),
            "x_edges": self.x_edges,
            "y_edges": self.y_edges,
            "config": np.array(json.dumps(self.config, sort_keys=True)),
        }
        if self.replicates is not None:
            arrays["replicates"] = self.replicates.astype(np.str_)
        clean_temp_leftovers(path)  # what a killed earlier save left
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:  # a file object: numpy adds no ".npz" suffix
            np.savez_compressed(fh, **arrays)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> ImageSet:
        """Read an :class:`ImageSet` written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise InputFileError(path, "image file not found (run `ms2img render` first)")
        try:
            with np.load(path, allow_pickle=False) as z:
                reps = z["replicates"] if "replicates" in z.files else None
                return cls(
                    images=z["images"],
                    ids=z["ids"],
                    x_edges=z["x_edges"],
                    y_edges=z["y_edges"],
                    config=json.loads(str(z["config"])),
                    replicates=reps,
                )
        except (OSError, ValueError, KeyError) as exc:
            raise InputFileError(path, f"not an ms2img image set ({exc.__class__.__name__}: {exc})") from None


def concat_imagesets(sets: Sequence[ImageSet]) -> ImageSet:
    """Stack image sets made with the same config (same edges)."""
    if not sets:
        raise ValueError("nothing to concatenate")
    first = sets[0]
    for s in sets[1:]:
        if not (np.array_equal(s.x_edges, first.x_edges) and np.array_equal(s.y_edges, first.y_edges)):
            raise ValueError("image sets have different bin edges")
    reps = None if first.replicates is None else np.concatenate([s.replicates for s in sets])
    return ImageSet(
        images=np.concatenate([s.images for s in sets]),
        ids=np.concatenate([s.ids for s in sets]),
        x_edges=first.x_edges,
        y_edges=first.y_edges,
        config=first.config,
        replicates=reps,
    )
