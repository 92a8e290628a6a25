"""How events become an image: :class:`RenderConfig`, image sizes, bin edges and the diagonal mask."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ms2img.errors import ConfigError

log = logging.getLogger(__name__)


AGGREGATIONS = ("max", "sum")
TRANSFORMS = ("none", "sqrt", "log1p")
PAPER_SIZES = ((75, 70), (150, 140), (300, 280))


def parse_size(text: str | Sequence[int]) -> tuple[int, int]:
    """``"150x140"`` -> ``(150, 140)`` (W x H: W precursor bins on x, H fragment bins on y)."""
    if not isinstance(text, str):
        try:
            w, h = (int(v) for v in text)
        except (TypeError, ValueError):
            raise ConfigError(f"image size {text!r} is not a (width, height) pair") from None
    else:
        parts = text.strip().lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"image size '{text}' is not WIDTHxHEIGHT, e.g. '150x140' (precursor x fragment bins)")
        w, h = (int(p) for p in parts)
    if w < 1 or h < 1:
        raise ConfigError(f"image size {w}x{h} must have at least one bin in each direction")
    if w * h > 50_000_000:
        raise ConfigError(f"image size {w}x{h} is unreasonably large")
    return w, h


def format_size(width: int, height: int) -> str:
    """``(150, 140)`` -> ``"150x140"``."""
    return f"{width}x{height}"


def _parse_range(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"render {name} {value!r} is not a [low, high] m/z pair") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(f"render {name} [{lo}, {hi}] must be finite with low < high")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class RenderConfig:
    """How events become an image; validated on construction (bad values raise :class:`ConfigError`)."""

    width: int = 150
    height: int = 140
    x_range: tuple[float, float] = (100.0, 1500.0)
    y_range: tuple[float, float] = (0.0, 1500.0)
    aggregation: str = "max"
    transform: str = "none"
    mask_diagonal: bool = True
    per_replicate: bool = False
    ppm_jitter: float = 0.0

    def __post_init__(self) -> None:
        w, h = parse_size((self.width, self.height))
        object.__setattr__(self, "width", w)
        object.__setattr__(self, "height", h)
        object.__setattr__(self, "x_range", _parse_range(self.x_range, "x_range"))
        object.__setattr__(self, "y_range", _parse_range(self.y_range, "y_range"))
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"unknown aggregation '{self.aggregation}'; choose one of {', '.join(AGGREGATIONS)}")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"unknown intensity transform '{self.transform}'; choose one of {', '.join(TRANSFORMS)}")
        try:
            ppm = float(self.ppm_jitter)
        except (TypeError, ValueError):
            raise ConfigError(f"ppm_jitter {self.ppm_jitter!r} is not a number") from None
        if not np.isfinite(ppm) or ppm < 0:
            raise ConfigError(f"ppm_jitter must be a finite number >= 0, got {self.ppm_jitter!r}")
        object.__setattr__(self, "ppm_jitter", ppm)
        object.__setattr__(self, "mask_diagonal", bool(self.mask_diagonal))
        object.__setattr__(self, "per_replicate", bool(self.per_replicate))

    @property
    def size(self) -> str:
        """``"WxH"``, e.g. ``"150x140"``."""
        return format_size(self.width, self.height)

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Bin edges ``(x_edges (W+1), y_edges (H+1))`` in m/z."""
        return image_edges(self)

    def with_size(self, size: str | Sequence[int]) -> RenderConfig:
        """A copy at another resolution."""
        w, h = parse_size(size)
        return dataclasses.replace(self, width=w, height=h)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (stored in the ``.npz`` and logged as run parameters)."""
        d = dataclasses.asdict(self)
        d["x_range"] = list(self.x_range)
        d["y_range"] = list(self.y_range)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RenderConfig:
        """Inverse of :meth:`to_dict` (unknown keys ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k.endswith("_range") else v) for k, v in d.items() if k in names})

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None, **overrides: Any) -> RenderConfig:
        """Build from ``params.yaml``'s ``render`` section (``size: 150x140`` or ``width``/``height``).

        ``overrides`` (e.g. from CLI flags) win; ``None`` values in them are ignored.
        """
        params = dict(params or {})
        known = {f.name for f in dataclasses.fields(cls)} | {"size", "sizes"}
        unknown = sorted(set(params) - known)
        if unknown:
            log.warning("ignoring unknown render parameters %s (known: %s)", unknown, sorted(known))
        kw: dict[str, Any] = {}
        if "size" in params and params["size"] is not None:
            kw["width"], kw["height"] = parse_size(params["size"])
        for f in dataclasses.fields(cls):
            if f.name in params and params[f.name] is not None:
                kw[f.name] = params[f.name]
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if "size" in overrides:
            kw["width"], kw["height"] = parse_size(overrides.pop("size"))
        bad = sorted(set(overrides) - {f.name for f in dataclasses.fields(cls)})
        if bad:
            raise ConfigError(f"unknown render options {bad}")
        kw.update(overrides)
        for key in ("x_range", "y_range"):
            if key in kw:
                kw[key] = _parse_range(kw[key], key)
        return cls(**kw)


def image_edges(config: RenderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Bin edges ``(x_edges (W+1), y_edges (H+1))`` for ``config``."""
    x_edges = np.linspace(config.x_range[0], config.x_range[1], config.width + 1)
    y_edges = np.linspace(config.y_range[0], config.y_range[1], config.height + 1)
    return x_edges, y_edges


def diagonal_mask(x_edges: np.ndarray, y_edges: np.ndarray) -> np.ndarray:
    """Boolean ``(H, W)``: True where a pixel lies entirely above the diagonal (fragment m/z > precursor m/z).

    A pixel is above the diagonal when its lowest fragment m/z exceeds its highest precursor m/z; those pixels
    cannot hold a real fragment and are set to zero.
    """
    x_edges = np.asarray(x_edges, dtype=np.float64)
    y_edges = np.asarray(y_edges, dtype=np.float64)
    return y_edges[:-1, None] > x_edges[None, 1:]


_MASKS: dict[tuple, np.ndarray] = {}


def cached_mask(config: RenderConfig) -> np.ndarray:
    """:func:`diagonal_mask` for ``config``, computed once per geometry (the renderer applies it to every image)."""
    key = (config.width, config.height, config.x_range, config.y_range)
    mask = _MASKS.get(key)
    if mask is None:
        mask = diagonal_mask(*image_edges(config))
        _MASKS[key] = mask
    return mask
