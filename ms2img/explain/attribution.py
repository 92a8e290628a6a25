"""Model-agnostic attribution: which m/z boxes of the fingerprint (or which merged features) carry a prediction.

Image families (``cnn``, ``rf-image``) are explained by **occlusion**: every window of ``block`` pixels is set to
0 in every image (one batched ``predict_proba`` call per chunk of occluded copies) and the change in P(high) is
recorded. Because every pixel of an MS2toImg fingerprint is an exact (precursor m/z, fragment m/z) box, the top
windows are m/z boxes that can be joined back to the precursors of the exports (:mod:`ms2img.explain.drivers`).

* ``contribution[i, w] = p_i - p_i(window w occluded)``: evidence the window gives accession ``i`` for *high*.
* ``importance[w]`` (with labels) ``= mean_i contribution[i, w] * (+1 high, -1 low)``: how much the window helps
  the model towards the *right* class (drop in P(high) for high accessions, rise for low ones); without labels,
  ``mean_i |contribution[i, w]|``.

Windows that are zero in every image, or (for a random forest) that hold no pixel any tree splits on, cannot change
the prediction and are skipped without approximation. Feature families (``rf-cosine``, ``rf-entropy``) get
permutation importance over their features (:func:`permutation_importance`), same sign convention.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]
MAX_BATCH_PIXELS = 40_000_000  # occluded copies per predict call are capped at this many pixels (~160 MB float32)


@dataclass
class OcclusionResult:
    """Occlusion of ``n`` images by ``len(windows)`` windows.

    ``windows`` int ``(n_windows, 4)``: ``row0, row1, col0, col1`` (half-open pixel ranges); ``baseline`` P(high)
    of the intact images ``(n,)``; ``contribution`` ``(n, n_windows)``; ``importance`` ``(n_windows,)`` (see the
    module docstring); ``shape`` ``(H, W)``; ``ids`` accession per image (optional).
    """

    windows: np.ndarray
    baseline: np.ndarray
    contribution: np.ndarray
    importance: np.ndarray
    shape: tuple[int, int]
    ids: np.ndarray | None = None
    labels: np.ndarray | None = None

    @property
    def mean_contribution(self) -> np.ndarray:
        """Signed mean evidence for *high* per window (positive: the box pushes towards high activity)."""
        return self.contribution.mean(axis=0) if self.contribution.size else np.zeros(len(self.windows))

    def pixel_map(self, values: np.ndarray | None = None) -> np.ndarray:
        """``(H, W)`` per-pixel importance: the mean of the windows covering each pixel (0 where none does)."""
        values = self.importance if values is None else np.asarray(values, dtype=np.float64)
        total = np.zeros(self.shape)
        count = np.zeros(self.shape)
        for (r0, r1, c0, c1), v in zip(self.windows, values, strict=True):
            total[r0:r1, c0:c1] += v
            count[r0:r1, c0:c1] += 1
        return np.divide(total, count, out=np.zeros(self.shape), where=count > 0)


def make_windows(shape: tuple[int, int], block: int | Sequence[int] = 3, stride: int | Sequence[int] | None = None):
    """All ``block`` windows of an ``(H, W)`` image at ``stride`` (default: non-overlapping), clipped at the edge."""
    h, w = int(shape[0]), int(shape[1])
    br, bc = (int(block), int(block)) if np.isscalar(block) else (int(block[0]), int(block[1]))
    if stride is None:
        sr, sc = br, bc
    else:
        sr, sc = (int(stride), int(stride)) if np.isscalar(stride) else (int(stride[0]), int(stride[1]))
    if min(br, bc, sr, sc) < 1:
        raise ValueError(f"block {block!r} and stride {stride!r} must be >= 1")
    out = [
        (r, min(r + br, h), c, min(c + bc, w))
        for r in range(0, max(h - br + sr, 1), sr)
        for c in range(0, max(w - bc + sc, 1), sc)
        if r < h and c < w
    ]
    return np.asarray(out, dtype=np.int64).reshape(-1, 4)


def auto_block(shape: tuple[int, int], per_axis: int = 15) -> tuple[int, int]:
    """A block giving about ``per_axis`` windows along each axis (for quick, coarse explanations)."""
    return max(1, int(np.ceil(shape[0] / per_axis))), max(1, int(np.ceil(shape[1] / per_axis)))


def relevant_pixels(estimator: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """``(H, W)`` mask of the pixels a fitted forest (bare or after :class:`FlattenImages`) ever splits on.

    Occluding pixels no tree reads cannot change the prediction, so their windows are skipped exactly. Returns
    None for anything else (a CNN reads every pixel).
    """
    steps = list(getattr(estimator, "steps", [("model", estimator)]))
    used = _split_features(steps[-1][1])
    if used is None:
        return None
    n_pixels = int(shape[0] * shape[1])
    support = np.ones(n_pixels, dtype=bool)
    for _, step in steps[:-1]:
        sup = getattr(step, "support_", None)
        if sup is not None and len(sup) == n_pixels:
            support = np.asarray(sup, dtype=bool)
        elif step is not None and step != "passthrough" and sup is None and not hasattr(step, "image_shape_"):
            return None  # an unknown transformer: the column mapping is not ours to guess
    columns = np.flatnonzero(support)
    if used.size and used.max() >= columns.size:
        return None
    mask = np.zeros(n_pixels, dtype=bool)
    mask[columns[used]] = True
    return mask.reshape(shape)


def occlusion(
    predict: PredictFn,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    block: int | Sequence[int] = 3,
    stride: int | Sequence[int] | None = None,
    relevant: np.ndarray | None = None,
    fill: float = 0.0,
    ids: Sequence[str] | None = None,
    max_batch_pixels: int = MAX_BATCH_PIXELS,
) -> OcclusionResult:
    """Occlude every window of every image and record the change in P(high) (see the module docstring).

    ``predict`` maps ``(n, H, W)`` images to P(high) ``(n,)``; ``labels`` 0/1 per image (optional, gives the
    class-aware importance); ``relevant`` an ``(H, W)`` mask of the pixels the model can read at all.
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"images must be (N, H, W), got shape {x.shape}")
    n, h, w = x.shape
    windows = make_windows((h, w), block, stride)
    nonzero = np.any(x != fill, axis=0)
    live = nonzero if relevant is None else nonzero & np.asarray(relevant, dtype=bool)
    keep = np.array([live[r0:r1, c0:c1].any() for r0, r1, c0, c1 in windows], dtype=bool)
    windows = windows[keep]
    contribution = np.zeros((n, len(windows)))
    per_chunk = max(1, int(max_batch_pixels // max(1, n * h * w)) - 1)
    baseline = None
    for start in range(0, max(len(windows), 1), per_chunk):
        chunk = windows[start : start + per_chunk]
        # the intact images ride along with the first chunk: one predict call when everything fits (serving)
        lead = 1 if baseline is None else 0
        copies = np.repeat(x[None], len(chunk) + lead, axis=0)  # (lead + k, n, H, W)
        for j, (r0, r1, c0, c1) in enumerate(chunk):
            copies[lead + j, :, r0:r1, c0:c1] = fill
        p = np.asarray(predict(copies.reshape(-1, h, w)), dtype=np.float64).reshape(len(chunk) + lead, n)
        if lead:
            baseline, p = p[0], p[1:]
        contribution[:, start : start + len(chunk)] = baseline[:, None] - p.T
    y = None if labels is None else np.asarray(labels).astype(int).reshape(n)
    importance = class_aware(contribution, y)
    return OcclusionResult(
        windows=windows,
        baseline=baseline,
        contribution=contribution,
        importance=importance,
        shape=(h, w),
        ids=None if ids is None else np.asarray(ids).astype(str),
        labels=y,
    )


def class_aware(contribution: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
    """Mean of ``contribution`` signed towards each sample's true class; mean absolute value without labels."""
    if contribution.size == 0:
        return np.zeros(contribution.shape[1] if contribution.ndim == 2 else 0)
    if labels is None:
        return np.abs(contribution).mean(axis=0)
    sign = np.where(np.asarray(labels) == 1, 1.0, -1.0)
    return (contribution * sign[:, None]).mean(axis=0)


def window_boxes(
    result: OcclusionResult, x_edges: np.ndarray, y_edges: np.ndarray, top: int | None = None
) -> pd.DataFrame:
    """The windows as m/z boxes, most important first.

    Columns: ``box, row0, row1, col0, col1, precursor_mz_lo, precursor_mz_hi, fragment_mz_lo, fragment_mz_hi,
    importance, contribution`` (signed mean evidence for high).
    """
    x_edges = np.asarray(x_edges, dtype=np.float64)
    y_edges = np.asarray(y_edges, dtype=np.float64)
    win = result.windows
    df = pd.DataFrame(
        {
            "row0": win[:, 0],
            "row1": win[:, 1],
            "col0": win[:, 2],
            "col1": win[:, 3],
            "precursor_mz_lo": x_edges[win[:, 2]],
            "precursor_mz_hi": x_edges[win[:, 3]],
            "fragment_mz_lo": y_edges[win[:, 0]],
            "fragment_mz_hi": y_edges[win[:, 1]],
            "importance": result.importance,
            "contribution": result.mean_contribution,
        }
    )
    df = df.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)
    if top is not None:
        df = df.head(int(top))
    df.insert(0, "box", np.arange(1, len(df) + 1))
    return df


def image_predictor(model: Any) -> PredictFn:
    """``predict_proba`` of a FamilyModel (or anything with it) as images -> P(high)."""
    if hasattr(model, "family"):
        return lambda x: np.asarray(model.predict_proba(x), dtype=np.float64).ravel()
    return lambda x: np.asarray(model.predict_proba(x), dtype=np.float64)[:, -1]


def _estimator_of(model: Any) -> Any:
    return getattr(model, "estimator", model)


def explain_images(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray | None = None,
    block: int | Sequence[int] = 3,
    stride: int | Sequence[int] | None = None,
    ids: Sequence[str] | None = None,
) -> OcclusionResult:
    """Occlusion attribution of an image-family model (FamilyModel ``cnn`` / ``rf-image``, or a fitted pipeline)."""
    x = np.asarray(images, dtype=np.float32)
    relevant = relevant_pixels(_estimator_of(model), x.shape[1:])
    return occlusion(image_predictor(model), x, labels=labels, block=block, stride=stride, relevant=relevant, ids=ids)


def explain_one(
    model: Any, image: np.ndarray, x_edges: np.ndarray, y_edges: np.ndarray, top: int = 5, block: Any = None
) -> list[dict]:
    """The ``top`` m/z boxes that move one accession's prediction most, for serving (``explain: true``).

    Coarse windows (about 15 per axis unless ``block`` is given), one batched prediction. Each dict:
    ``precursor_mz_lo/hi, fragment_mz_lo/hi`` (the box), ``contribution`` (P(high) minus P(high) with the box
    removed: positive supports *high*), ``supports`` ("high" or "low"), ``probability`` (of the intact image).
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim == 3 and img.shape[0] == 1:
        img = img[0]
    if img.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {img.shape}")
    blk = auto_block(img.shape) if block is None else block
    res = explain_images(model, img[None], labels=None, block=blk)
    contrib = res.contribution[0] if res.contribution.size else np.zeros(0)
    order = np.argsort(-np.abs(contrib), kind="stable")[: int(top)]
    x_edges = np.asarray(x_edges, dtype=np.float64)
    y_edges = np.asarray(y_edges, dtype=np.float64)
    out = []
    for k in order:
        r0, r1, c0, c1 = (int(v) for v in res.windows[k])
        if contrib[k] == 0:
            break
        out.append(
            {
                "precursor_mz_lo": round(float(x_edges[c0]), 4),
                "precursor_mz_hi": round(float(x_edges[c1]), 4),
                "fragment_mz_lo": round(float(y_edges[r0]), 4),
                "fragment_mz_hi": round(float(y_edges[r1]), 4),
                "contribution": round(float(contrib[k]), 6),
                "supports": "high" if contrib[k] > 0 else "low",
                "probability": round(float(res.baseline[0]), 6),
            }
        )
    return out


# --------------------------------------------------------------------------------------------- feature families
def permutation_importance(
    model: Any,
    x: np.ndarray,
    labels: np.ndarray | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    columns: Sequence[int] | None = None,
    max_batch_values: int = 20_000_000,
) -> pd.DataFrame:
    """Permutation importance of a feature-family model over its input columns (raw heights, accessions x F).

    Each column is shuffled across accessions ``n_repeats`` times (copies batched into few predict calls);
    ``contribution = p - p(shuffled)`` per accession, ``importance`` as for occlusion (class-aware with labels).
    Columns no tree splits on are skipped (importance 0). Returns ``column, importance, importance_sd,
    contribution`` sorted by importance.
    """
    x = np.asarray(x, dtype=np.float32)
    n, f = x.shape
    predict = image_predictor(model)
    if columns is None:
        used = _forest_columns(_estimator_of(model), f)
        columns = np.arange(f) if used is None else used
    columns = np.asarray(columns, dtype=np.int64)
    rng = np.random.default_rng(seed)
    baseline = np.asarray(predict(x), dtype=np.float64)
    y = None if labels is None else np.asarray(labels).astype(int)
    imp = np.zeros((len(columns), n_repeats))
    signed = np.zeros(len(columns))
    per_chunk = max(1, int(max_batch_values // max(1, n * f * n_repeats)))
    for start in range(0, len(columns), per_chunk):
        cols = columns[start : start + per_chunk]
        copies = np.repeat(x[None, None], len(cols), axis=0).repeat(n_repeats, axis=1)  # (k, r, n, f)
        for j, c in enumerate(cols):
            for r in range(n_repeats):
                copies[j, r, :, c] = x[rng.permutation(n), c]
        p = np.asarray(predict(copies.reshape(-1, f)), dtype=np.float64).reshape(len(cols), n_repeats, n)
        contrib = baseline[None, None, :] - p  # (k, r, n)
        for j in range(len(cols)):
            imp[start + j] = class_aware(contrib[j].T, y)
            signed[start + j] = contrib[j].mean()
    out = pd.DataFrame(
        {
            "column": columns,
            "importance": imp.mean(axis=1),
            "importance_sd": imp.std(axis=1),
            "contribution": signed,
        }
    )
    return out.sort_values("importance", ascending=False, kind="stable").reset_index(drop=True)


def _split_features(forest: Any) -> np.ndarray | None:
    """The input columns any tree of a fitted forest splits on (None for a model without trees)."""
    trees = getattr(forest, "estimators_", None)
    if trees is None:
        return None
    try:
        return np.unique(np.concatenate([t.tree_.feature[t.tree_.feature >= 0] for t in np.ravel(trees)]))
    except AttributeError:
        return None


def _forest_columns(estimator: Any, n_features: int) -> np.ndarray | None:
    steps = list(getattr(estimator, "steps", [("model", estimator)]))
    if len(steps) > 1:
        return None
    used = _split_features(steps[-1][1])
    if used is None:
        return None
    return used[used < n_features].astype(np.int64)
