"""The paper's CNN for MS2toImg fingerprint images, in backend-neutral Keras 3.

Everything here uses ``keras.*`` only, so the same code trains on the tensorflow, jax and torch backends
(the backend is chosen by ``KERAS_BACKEND`` before ``keras`` is first imported).

Architecture (paper, "Model Architecture" and "CNN Architecture and Training Procedure"): two 3x3
convolutions with 48 filters and ReLU, one 2x2 max-pool, flatten, five ReLU dense layers
(512, 256, 128, 64, 32) each followed by Dropout(0.5), and one sigmoid unit; Adam (lr 1e-4) and binary
cross-entropy. Convolutions use Keras' default ``valid`` padding and the one max-pool follows the last
convolution, also when the tuner picks one or three convolutions.

One builder: :func:`build_cnn_from_hp` turns a dict of hyperparameter values (what the tuner's search space
produces, see :mod:`ms2img.models.tuning`) into :func:`build_paper_cnn` arguments, so the best trial's values
rebuild exactly the tuned network.

Class imbalance: the tuner and the refits pass Keras ``class_weight`` computed from the training
labels with the "balanced" rule ``n_samples / (2 * n_class)`` (scikit-learn's ``compute_class_weight``),
so each class contributes the same total weight to the loss. Validation metrics are unweighted.

The tuner API (``Ms2ImgHyperModel``, ``CompactHyperModel``, ``tune_cnn``, ``TuneResult``,
``TuningFailed``) lives in :mod:`ms2img.models.tuning` and :mod:`ms2img.models.search`; this module never
imports keras-tuner (serving loads it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np

from ms2img.errors import ConfigError

PAPER_CONV_LAYERS = 2
PAPER_FILTERS = 48
PAPER_DENSE_UNITS: tuple[int, ...] = (512, 256, 128, 64, 32)
PAPER_DROPOUT = 0.5
PAPER_LEARNING_RATE = 1e-4
KERNEL_SIZE = 3
POOL_SIZE = 2


# --------------------------------------------------------------------------------------------- inputs


def as_model_input(images: Any) -> np.ndarray:
    """Images ``(N, H, W)`` (or one ``(H, W)`` image) as a float32 ``(N, H, W, 1)`` array for the CNN.

    An array that already has a channel axis (images ``(N, H, W, 1)``, the column network's pixel channels
    ``(N, H, W, 2)``) is passed through (as float32).
    """
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 2:
        x = x[None, :, :]
    if x.ndim == 3:
        return x[..., None]
    if x.ndim == 4:
        return x
    raise ConfigError(f"images must have shape (N, H, W) or (N, H, W, 1); got {x.shape}")


def as_labels(y: Any, n: int) -> np.ndarray:
    labels = np.asarray(y).reshape(-1)
    if labels.shape[0] != n:
        raise ConfigError(f"{labels.shape[0]} labels for {n} images")
    if labels.size and not np.isin(labels, (0, 1)).all():
        bad = sorted({v for v in labels.tolist() if v not in (0, 1)})[:5]
        raise ConfigError(f"labels must be 0 (low activity) or 1 (high activity); found {bad}")
    return labels.astype(np.float32)


def class_weights(y: Any) -> dict[int, float]:
    """Balanced class weights ``n / (2 * n_c)`` for binary labels, as Keras' ``class_weight`` dict.

    A class absent from ``y`` gets weight 1.0 (it never contributes to the loss anyway).
    """
    labels = np.asarray(y).reshape(-1).astype(int)
    n = labels.size
    out: dict[int, float] = {}
    for c in (0, 1):
        n_c = int((labels == c).sum())
        out[c] = float(n / (2 * n_c)) if n_c else 1.0
    return out


# ---------------------------------------------------------------------------------------------- model


def build_paper_cnn(
    input_shape: Sequence[int] = (140, 150, 1),
    conv_layers: int = PAPER_CONV_LAYERS,
    filters: int = PAPER_FILTERS,
    dense_units: Sequence[int] = PAPER_DENSE_UNITS,
    dropout: float = PAPER_DROPOUT,
    learning_rate: float = PAPER_LEARNING_RATE,
) -> keras.Model:
    """The paper's CNN (defaults) or a variant from the tuner's search space, compiled.

    ``input_shape`` is ``(H, W, 1)`` (``(H, W)`` is accepted). Metrics: ``accuracy`` and ``auc``
    (so histories carry ``val_accuracy`` / ``val_auc`` when validation data is given).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    if len(shape) != 3 or shape[-1] != 1:
        raise ConfigError(f"input_shape must be (H, W, 1); got {tuple(input_shape)}")
    conv_layers, filters = int(conv_layers), int(filters)
    units = [int(u) for u in dense_units]
    if conv_layers < 1 or filters < 1 or not units or min(units) < 1:
        raise ConfigError(
            f"need >= 1 conv layer, filter and dense layer; got conv_layers={conv_layers}, "
            f"filters={filters}, dense_units={units}"
        )
    if not 0.0 <= float(dropout) < 1.0:
        raise ConfigError(f"dropout must be in [0, 1); got {dropout}")
    if not float(learning_rate) > 0.0:
        raise ConfigError(f"learning_rate must be > 0; got {learning_rate}")
    shrink = conv_layers * (KERNEL_SIZE - 1)  # 'valid' convolutions lose 2 pixels per layer and axis
    if min(shape[0], shape[1]) - shrink < POOL_SIZE:
        raise ConfigError(
            f"images of {shape[0]}x{shape[1]} (HxW) are too small for {conv_layers} 3x3 convolutions and a 2x2 max-pool"
        )

    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    for i in range(conv_layers):
        x = keras.layers.Conv2D(filters, KERNEL_SIZE, activation="relu", name=f"conv_{i + 1}")(x)
    x = keras.layers.MaxPooling2D(POOL_SIZE, name="max_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, n_units in enumerate(units):
        x = keras.layers.Dense(n_units, activation="relu", name=f"dense_{i + 1}")(x)
        x = keras.layers.Dropout(float(dropout), name=f"dropout_{i + 1}")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="activity")(x)
    model = keras.Model(inputs, outputs, name="ms2img_cnn")
    return compiled(model, learning_rate)


def compiled(model: keras.Model, learning_rate: float, steps_per_execution: int = 8) -> keras.Model:
    """Adam and binary cross-entropy, with ``accuracy`` and ``auc`` so histories carry ``val_auc``.

    ``steps_per_execution`` > 1 runs that many steps per graph call (fewer Python round trips) at the price of
    tracing a loop once per network (~1 s on CPU): worth it for big networks, not for tiny ones.
    """
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=float(learning_rate)),
        loss="binary_crossentropy",
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
        jit_compile=False,  # XLA costs seconds per new model and runs slower for these small CPU batches (measured)
        steps_per_execution=int(steps_per_execution),
    )
    return model


HP_KEYS = ("conv_layers", "filters", "dense_layers", "dropout", "learning_rate")  # plus units_0 .. units_{k-1}


def architecture_from_hp(values: Mapping[str, Any]) -> dict[str, Any]:
    """``build_paper_cnn`` keyword arguments from the tuner's hyperparameter values."""
    missing = [k for k in HP_KEYS if k not in values]
    n_dense = int(values["dense_layers"]) if "dense_layers" in values else 0
    missing += [f"units_{i}" for i in range(n_dense) if f"units_{i}" not in values]
    if missing:
        raise ConfigError(f"hyperparameters lack {missing}; got {sorted(values)}")
    return {
        "conv_layers": int(values["conv_layers"]),
        "filters": int(values["filters"]),
        "dense_units": tuple(int(values[f"units_{i}"]) for i in range(n_dense)),
        "dropout": float(values["dropout"]),
        "learning_rate": float(values["learning_rate"]),
    }


def build_cnn_from_hp(values: Mapping[str, Any], input_shape: Sequence[int]) -> keras.Model:
    """The paper hypermodel's builder: the best trial's values rebuild exactly the tuned network."""
    return build_paper_cnn(input_shape, **architecture_from_hp(values))


# ------------------------------------------------------------------------------------------- training


def history_dict(history: Any) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in (getattr(history, "history", None) or {}).items()}


# ---------------------------------------------------------------------------------------- prediction


def predict_proba(model: keras.Model, x: Any, batch_size: int = 256) -> np.ndarray:
    """P(high activity) per image, shape ``(N,)`` float32, by calling the model directly in batches.

    ``model(x, training=False)`` skips ``model.predict``'s per-call setup (data adapter, compiled predict
    function), which dominates for the few images of a serving request. ``x`` is ``(N, H, W)`` or
    ``(N, H, W, 1)`` and must match the model's input size.
    """
    arr = as_model_input(x)
    expected = tuple(model.input_shape[1:3]) if getattr(model, "input_shape", None) else None
    if expected and all(e is not None for e in expected) and tuple(arr.shape[1:3]) != expected:
        raise ConfigError(
            f"images are {arr.shape[1]}x{arr.shape[2]} (HxW) but the model expects {expected[0]}x{expected[1]}; "
            f"render them with the model's size"
        )
    if arr.shape[0] == 0:
        return np.zeros((0,), dtype=np.float32)
    step = max(1, int(batch_size))
    parts = []
    for start in range(0, arr.shape[0], step):
        out = model(arr[start : start + step], training=False)
        parts.append(np.asarray(keras.ops.convert_to_numpy(out), dtype=np.float32).reshape(-1))
    return np.concatenate(parts)


# ----------------------------------------------------------------------------------------- compact network


def pixel_statistics(images: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and scale of training images ``(N, H, W[, 1])``, as ``(H, W, 1)`` float32 arrays.

    The scale is the pixel's standard deviation plus the mean standard deviation over all pixels: a pixel that
    is lit in a few images is standardised like the others instead of being blown up by a tiny deviation.
    Fitted on the training images only and stored in the network (its ``pixel_standardize`` layer), so a served
    image is scaled as the training images were.
    """
    x = as_model_input(images).astype(np.float64)
    mean, sd = x.mean(axis=0), x.std(axis=0)
    scale = sd + (sd.mean() if sd.mean() > 0 else 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def build_compact_cnn(
    input_shape: Sequence[int],
    conv_layers: int = 2,
    filters: int = 16,
    units: int = 32,
    dropout: float = 0.3,
    fragment_dropout: float = 0.1,
    intensity_noise: float = 0.2,
    l2: float = 1e-4,
    learning_rate: float = 1e-3,
    pixel_stats: tuple[np.ndarray, np.ndarray] | None = None,
) -> keras.Model:
    """A small CNN for a few hundred fingerprints: conv blocks that keep the m/z position, one narrow dense layer.

    The paper's network has ~10^8 weights for ~500 images; this one has ~10^4-10^5. The pixel position is the
    m/z, so the head flattens (no global pooling, which would forget which m/z lit up). Two training-only
    layers are the augmentation, neither active at prediction time. ``pixel_stats`` (:func:`pixel_statistics`
    of the training images) first standardises every pixel, so weak but telling fragments weigh as much as the
    base peak's; then ``fragment_dropout`` sets pixels to their training mean (a fragment's information
    withheld) and ``intensity_noise`` (Keras ``GaussianDropout(rate)``) multiplies the standardised deviations by
    ``N(1, sqrt(rate / (1 - rate)))``: rate 0.3 is noise of SD ~0.65, not 0.3. On held-out
    folds of a development cohort (synth seed 1234, never used by the demo, tests or benchmarks/science.py)
    standardising measured +0.04-0.09 AUC, and augmenting after it rather than before +0.03 more.
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        shape = (*shape, 1)
    reg = keras.regularizers.L2(float(l2)) if l2 else None
    inputs = keras.Input(shape=shape, name="image")
    x = inputs
    if pixel_stats is not None:
        mean, scale = (np.asarray(a, np.float32).reshape(shape) for a in pixel_stats)
        x = keras.layers.Normalization(axis=(1, 2, 3), mean=mean, variance=scale**2, name="pixel_standardize")(x)
    if fragment_dropout:
        x = keras.layers.Dropout(float(fragment_dropout), name="fragment_dropout")(x)
    if intensity_noise:
        x = keras.layers.GaussianDropout(float(intensity_noise), name="intensity_noise")(x)
    for i in range(int(conv_layers)):
        x = keras.layers.Conv2D(
            int(filters) * (2**i),
            KERNEL_SIZE,
            padding="same",
            activation="relu",
            kernel_regularizer=reg,
            name=f"conv_{i + 1}",
        )(x)
        x = keras.layers.MaxPooling2D(POOL_SIZE, name=f"pool_{i + 1}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(float(dropout), name="dropout_flat")(x)
    x = keras.layers.Dense(int(units), activation="relu", kernel_regularizer=reg, name="dense")(x)
    x = keras.layers.Dropout(float(dropout), name="dropout_dense")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="activity")(x)
    model = keras.Model(inputs, outputs, name="ms2img_compact_cnn")
    return compiled(model, learning_rate)
