"""A network shaped like an MS2toImg image: one small encoder shared by every precursor column, a linear head.

Why this shape. A pixel's position is its meaning: a column is a precursor m/z window and a row a fragment m/z
window, so sliding a pattern along the precursor axis makes it another compound. The compact CNN's 3x3
convolutions and pooling share weights across precursors and then flatten into ~10^5 weights for ~150 training
images. Here the shared part only reads down a column (``(k, 1)`` kernels along the fragment axis: a fragment
and its neighbours, so a fragment drawn one pixel off still counts) and keeps every position; the only
position-specific part is one L2-regularised linear weight per encoded pixel: a model a few hundred images can
pin down, cheap enough to train several times and average.

What the network sees of a pixel. MS2toImg pixels are sparse and heavy-tailed: most pixels are dark in most
images, and the few lit ones span orders of magnitude. Standardising each pixel (mean/SD, the compact CNN) turns
a rarely lit, weak peak into a huge value; a forest never sees scale at all, only ranks. :class:`PixelECDF` gives
the network both: every pixel's empirical CDF over the training images (mid-ranks for ties, so a pixel dark in
90% of the training images maps dark -> 0.45 and lit -> 0.9..1.0; a pixel never lit is a constant 0.5 and
carries nothing) and its intensity in units of the training pixels' SD, weighted by ``cnn.intensity_weight``
(:func:`pixel_scale`). Measured with a linear model on 5 folds of two development cohorts from different
generators (``ms2img synth --seed 1234`` and ``benchmarks/cohort_b.py``): the ECDF alone won by up to 0.09 AUC on
the first and lost up to 0.06 on the second, intensity alone the reverse; both channels, intensity at a tenth of
the ECDF's weight, matched or beat the better one on both (mean AUC of the four assays). The knots and
the scale are fitted on the training images only (:func:`ecdf_knots`, :func:`pixel_scale`) and saved inside the
network as non-trainable weights, so a served image is transformed exactly as the training images were.

Which pixels the head can afford. An assay is driven by a few compounds, a handful of columns among ~75, and one
L2 penalty on ~21,000 head weights spreads the score over every lit pixel; a forest instead picks the few pixels
that split the classes. ``cnn.relevance_power`` (:func:`pixel_relevance`, :class:`PixelWeights`) weights each
pixel's two channels by how well that pixel alone separates the classes of the rows the network trains on, so the
penalty is light on telling pixels and heavy on the rest (an adaptive ridge), fitted per member and saved with it.

Backend-neutral Keras 3 (``keras.ops`` only): trains on tensorflow, jax or torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from ms2img.errors import ConfigError
from ms2img.models.cnn import as_model_input, compiled

MAX_KNOTS = 64  # quantiles stored per pixel: the ECDF's resolution is 1/64 of the training images at most


def ecdf_knots(images: Any, max_knots: int = MAX_KNOTS) -> np.ndarray:
    """Per-pixel quantiles of the training images ``(N, H, W[, 1])`` as a ``(K, H, W, 1)`` float32 array.

    ``K = min(N, max_knots)`` knots at probabilities ``(k + 0.5) / K``: with few images every image's value is a
    knot (the exact ECDF), with many the ECDF is read at ``K`` evenly spaced ranks.
    """
    x = as_model_input(images)
    if x.shape[0] < 2:
        raise ConfigError(f"the pixel ECDF needs at least 2 training images; got {x.shape[0]}")
    k = int(min(x.shape[0], max_knots))
    q = (np.arange(k) + 0.5) / k
    return np.quantile(x, q, axis=0, method="inverted_cdf").astype(np.float32)


@keras.saving.register_keras_serializable(package="ms2img")
class PixelECDF(keras.layers.Layer):
    """Two channels per pixel: its mid-rank empirical CDF among the training images' values there, centred (-0.5 ..
    0.5; 0 = "nothing known"), and its intensity over the training images' pixel SD (the scale a forest never needs).

    ``knots`` (from :func:`ecdf_knots`) and ``scale`` become non-trainable weights, saved with the model; a reloaded
    layer is built empty and gets them back from the weights file.
    """

    def __init__(self, n_knots: int, knots: np.ndarray | None = None, scale: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.n_knots = int(n_knots)
        self._initial = None if knots is None else (np.asarray(knots, dtype=np.float32), float(scale or 1.0))

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = (self.n_knots, *[int(s) for s in input_shape[1:]])
        if self._initial is not None and tuple(self._initial[0].shape) != shape:
            raise ConfigError(f"ECDF knots have shape {self._initial[0].shape}; images need {shape}")
        known = self._initial is not None
        self.knots = self.add_weight(
            name="knots", shape=shape, trainable=False,
            initializer=keras.initializers.Constant(self._initial[0]) if known else "zeros",
        )  # fmt: skip
        self.scale = self.add_weight(
            name="scale", shape=(), trainable=False,
            initializer=keras.initializers.Constant(self._initial[1]) if known else "ones",
        )  # fmt: skip
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        x = keras.ops.expand_dims(inputs, 1)  # (B, 1, H, W, 1) against knots (K, H, W, 1)
        below = keras.ops.mean(keras.ops.cast(x > self.knots, "float32"), axis=1)
        at_or_below = keras.ops.mean(keras.ops.cast(x >= self.knots, "float32"), axis=1)
        return keras.ops.concatenate([0.5 * (below + at_or_below) - 0.5, inputs / self.scale], axis=-1)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], 2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "n_knots": self.n_knots}


def pixel_scale(images: Any, intensity_weight: float = 1.0) -> float:
    """The intensity channel's unit: the training images' pixel SD over all pixels (1 when they are all equal)
    divided by ``intensity_weight`` (``cnn.intensity_weight``).

    Why a weight. One L2 penalty acts on both channels' weights, so the channel with the larger values is the cheaper
    one to use: at weight 1 a lit pixel's intensity (several SDs of the mostly dark image) outweighs its ECDF (at most
    0.5) and the network leans on intensity. Measured with an L2 logistic regression on the two channels, 5 folds,
    development cohort A (``ms2img synth --seed 1234``), mean AUC of the four assays at weights 0, 0.03, 0.1, 0.3, 1:
    0.925, 0.925, 0.925, 0.913, 0.891 (TFC alone 0.938 -> 0.846 from 0 to 1); the default 0.1 is the largest of the
    tied best there. On cohort B (``benchmarks/cohort_b.py``) the same sweep gave 0.813, 0.816, 0.831, 0.838, 0.822:
    some intensity is needed, which 0.1 keeps.
    """
    if not float(intensity_weight) > 0:
        raise ConfigError(f"cnn.intensity_weight must be > 0; got {intensity_weight}")
    sd = float(as_model_input(images).std())
    return (sd if sd > 0 else 1.0) / float(intensity_weight)


def pixel_channels(images: Any, knots: np.ndarray, scale: float) -> np.ndarray:
    """:class:`PixelECDF` in NumPy, ``(N, H, W, 2)``: applied once to a fit's images so its epochs do not recompute
    the ECDF (the served network, :func:`with_pixel_ecdf`, applies the layer itself)."""
    x = as_model_input(images)
    ecdf = np.empty_like(x)
    for start in range(0, x.shape[0], 32):
        part = x[start : start + 32, None]
        ecdf[start : start + 32] = 0.5 * ((part > knots).mean(axis=1) + (part >= knots).mean(axis=1))
    return np.concatenate([ecdf - 0.5, x / np.float32(scale)], axis=-1)


def pixel_relevance(channels: Any, targets: Any, power: float) -> np.ndarray:
    """Per-pixel input weights ``(H, W, 1)`` from the training rows: ``|2 AUC - 1| ** power``, the AUC of the pixel's
    ECDF channel between the two classes (targets 0/1), or ``|Spearman rho| ** power`` with graded targets (soft
    labels); ties are mid-ranked, so a pixel dark in every image scores 0. Scaled to root-mean-square 1 over the
    pixels that vary (so ``cnn`` L2 means the same with or without them).

    Why. Only a few compounds drive an assay, and an L2-penalised head spreads its weight over every lit pixel; a
    forest instead picks the few pixels that split the classes. Weighting each pixel by how well it separates the
    training classes on its own lowers the penalty on the informative ones (an adaptive ridge): relevant pixels are
    cheap to use, the rest are not forbidden. Fitted on the rows a network trains on (:class:`PixelWeights` stores it
    in the network), never on held-out rows.
    """
    from scipy.stats import rankdata

    x = np.asarray(channels, dtype=np.float64)[..., 0]
    flat = x.reshape(len(x), -1)
    t = np.asarray(targets, dtype=np.float64).reshape(len(x))
    ranks = rankdata(flat, axis=0)
    if np.isin(t, (0.0, 1.0)).all():
        high = t == 1.0
        n_high, n_low = int(high.sum()), int((~high).sum())
        if n_high == 0 or n_low == 0:
            raise ConfigError(f"pixel relevance needs both classes in its training rows; {n_high} high, {n_low} low")
        separation = 2.0 * (ranks[high].sum(axis=0) - n_high * (n_high + 1) / 2.0) / (n_high * n_low) - 1.0
    else:
        r = rankdata(t) - (len(t) + 1) / 2.0
        centred = ranks - ranks.mean(axis=0)
        norm = np.sqrt((centred**2).sum(axis=0) * (r**2).sum())
        if not (r**2).sum() > 0:
            raise ConfigError("pixel relevance needs targets that vary in the training rows; got one value")
        separation = np.divide(centred.T @ r, norm, out=np.zeros(flat.shape[1]), where=norm > 0)
    weight = np.abs(separation) ** float(power)
    live = flat.std(axis=0) > 0
    weight[~live] = 0.0
    rms = float(np.sqrt(np.mean(weight[live] ** 2))) if live.any() else 0.0
    weight = weight / rms if rms > 0 else np.ones_like(weight)
    return weight.reshape(*x.shape[1:], 1).astype(np.float32)


@keras.saving.register_keras_serializable(package="ms2img")
class PixelWeights(keras.layers.Layer):
    """Multiplies every channel of a pixel by that pixel's fixed weight (:func:`pixel_relevance`): a non-trainable
    ``(H, W, 1)`` weight, set before training (``ColumnHyperModel.adapt``), saved with the network (1 when built)."""

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = (*[int(s) for s in input_shape[1:-1]], 1)
        self.pixel_weights = self.add_weight(name="pixel_weights", shape=shape, trainable=False, initializer="ones")
        super().build(input_shape)

    def call(self, inputs: Any) -> Any:
        return inputs * self.pixel_weights

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)


def build_column_cnn(
    input_shape: Sequence[int],
    filters: int = 4,
    kernel: int = 3,
    dropout: float = 0.2,
    l2: float = 1e-3,
    learning_rate: float = 1e-2,
    tasks: int = 1,
    relevance: bool = False,
) -> keras.Model:
    """The trainable column network, compiled, on :func:`pixel_channels` ``(H, W, 2)``: ``filters`` ReLU
    ``(kernel, 1)`` convolutions down each precursor column (one encoder shared by all columns, fragment
    positions kept) -> dropout -> one L2-regularised weight per encoded pixel -> sigmoid. ``filters: 0`` drops
    the encoder: a linear model of the two pixel channels. Dropout is standard (Bernoulli) dropout of the
    encoded pixels, active in training only. ``relevance``: a :class:`PixelWeights` layer first (weights 1 until
    :func:`pixel_relevance` is set on the training rows).

    ``tasks`` > 1: one head per assay over the shared encoder (the ``cnn-mt`` family), trained with
    :func:`masked_binary_crossentropy` on :func:`packed_targets`; :func:`task_network` cuts one assay's network
    out of it.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or shape[-1] != 2:
        raise ConfigError(f"the column network reads (H, W, 2) pixel channels; got {tuple(input_shape)}")
    if int(filters) < 0 or int(kernel) < 1 or int(kernel) > shape[0]:
        raise ConfigError(f"need filters >= 0 and 1 <= kernel <= image height {shape[0]}; got {filters}, {kernel}")
    inputs = keras.Input(shape=shape, name="pixel_channels")
    x = PixelWeights(name="relevance")(inputs) if relevance else inputs
    if int(filters):
        encoder = keras.layers.Conv2D(int(filters), (int(kernel), 1), padding="same", activation="relu", name="column")
        x = encoder(x)
    x = keras.layers.Flatten(name="pixel_features")(x)
    if dropout:
        x = keras.layers.Dropout(float(dropout), name="dropout")(x)
    reg = keras.regularizers.L2(float(l2)) if l2 else None
    outputs = keras.layers.Dense(int(tasks), activation="sigmoid", kernel_regularizer=reg, name="activity")(x)
    network = keras.Model(inputs, outputs, name="column_network")
    if int(tasks) == 1:
        return compiled(network, learning_rate, steps_per_execution=1)
    network.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
        loss=masked_binary_crossentropy,
        jit_compile=False,
    )
    return network


def packed_targets(y: np.ndarray, balanced: bool) -> np.ndarray:
    """``(N, T)`` labels (NaN: unknown) -> ``(N, 2T)`` ``[labels, weights]`` for :func:`masked_binary_crossentropy`.

    ``balanced``: each assay's known labels weighted ``n / (2 n_class)`` (the single-assay network's class
    weights, per head); otherwise 1 for a known label. Unknown labels weigh 0: their head learns nothing there.
    """
    y = np.asarray(y, dtype=np.float32)
    known = np.isfinite(y)
    weights = known.astype(np.float32)
    if balanced:
        for t in range(y.shape[1]):
            for c in (0.0, 1.0):
                is_c = known[:, t] & (y[:, t] == c)
                if is_c.any():
                    weights[is_c, t] = known[:, t].sum() / (2.0 * is_c.sum())
    return np.concatenate([np.where(known, y, 0.0), weights], axis=1)


def masked_binary_crossentropy(packed: Any, p: Any) -> Any:
    """Binary cross-entropy of each head on :func:`packed_targets`, weighted, summed, over the weights' sum (training
    only: the served :func:`task_network` is never compiled with it, so it needs no Keras registration)."""
    tasks = keras.ops.shape(p)[-1]
    y, w = packed[:, :tasks], packed[:, tasks:]
    p = keras.ops.clip(p, 1e-7, 1.0 - 1e-7)
    loss = -(y * keras.ops.log(p) + (1.0 - y) * keras.ops.log(1.0 - p)) * w
    return keras.ops.sum(loss) / keras.ops.maximum(keras.ops.sum(w), 1.0)


def task_network(network: keras.Model, task: int = 0) -> keras.Model:
    """One assay's network cut out of a multi-task one: the shared encoder and that assay's head, one output, the
    same layers and names as a single-assay :func:`build_column_cnn` (so saving, loading and serving are unchanged).
    """
    inputs = keras.Input(shape=network.input_shape[1:], name="pixel_channels")
    x, copies = inputs, []
    names = [layer.name for layer in network.layers]
    if "relevance" in names:
        weights = PixelWeights(name="relevance")
        x = weights(x)
        copies.append((weights, network.get_layer("relevance").get_weights()))
    if "column" in names:
        encoder = network.get_layer("column")
        conv = keras.layers.Conv2D.from_config(encoder.get_config())
        x = conv(x)
        copies.append((conv, encoder.get_weights()))
    x = keras.layers.Flatten(name="pixel_features")(x)
    kernel, bias = network.get_layer("activity").get_weights()
    head = keras.layers.Dense(1, activation="sigmoid", name="activity")
    outputs = head(x)
    copies.append((head, [kernel[:, task : task + 1], bias[task : task + 1]]))
    for layer, weights in copies:
        layer.set_weights(weights)
    return keras.Model(inputs, outputs, name="column_network")


def with_pixel_ecdf(network: keras.Model, knots: np.ndarray, scale: float) -> keras.Model:
    """The served model: images ``(H, W, 1)`` -> :class:`PixelECDF` (knots and scale saved inside) -> ``network``."""
    h, w = (int(s) for s in network.input_shape[1:3])
    inputs = keras.Input(shape=(h, w, 1), name="image")
    x = PixelECDF(int(np.asarray(knots).shape[0]), knots=knots, scale=scale, name="pixel_ecdf")(inputs)
    return keras.Model(inputs, network(x), name="ms2img_column_cnn")
