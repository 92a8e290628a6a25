"""The CNN as a regressor (``labels.mode: regression``): the same network with a linear output and a Huber loss.

Whatever the classifier's builder makes (compact or paper network, and whatever it becomes), :func:`linear_head`
replaces its one sigmoid unit by one linear unit on the same penultimate layer and recompiles with the same
optimizer settings and a Huber loss, so the architecture has one home (:mod:`ms2img.models.cnn`) and regression is
a switch on it, not a copy. :class:`RegressionHyperModel` applies the switch to any hypermodel, so Keras Tuner
searches the same space. The network learns standardised targets (mean and SD of the training part); :func:`in_units`
appends the inverse as a fixed ``Rescaling`` layer, so a saved network outputs the assay's own units.
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner
import numpy as np

from ms2img.errors import ConfigError

HUBER_DELTA = 1.0  # in standard deviations of the training values: squared loss inside, linear outside


def linear_head(model: keras.Model) -> keras.Model:
    """``model`` (a compiled one-unit classifier) with a linear output unit and a Huber loss instead."""
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or int(head.units) != 1:
        raise ConfigError(f"the CNN ends in {type(head).__name__}, not one Dense unit; cannot make it a regressor")
    out = keras.layers.Dense(1, kernel_regularizer=head.kernel_regularizer, name="value")(head.input)
    reg = keras.Model(single_input(model), out, name=f"{model.name}_regression")
    optimizer = type(model.optimizer).from_config(model.optimizer.get_config())  # same settings, fresh state
    reg.compile(
        optimizer=optimizer,
        loss=keras.losses.Huber(delta=HUBER_DELTA),
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
        jit_compile=False,
        steps_per_execution=8,
    )
    return reg


def in_units(model: keras.Model, mean: float, scale: float) -> keras.Model:
    """``model`` (trained on ``(value - mean) / scale``) answering in the assay's units: ``output * scale + mean``."""
    out = keras.layers.Rescaling(scale=float(scale), offset=float(mean), name="assay_units")(model.outputs[0])
    return keras.Model(single_input(model), out, name=model.name)


def single_input(model: keras.Model) -> Any:
    """The model's input tensor itself, not a one-element list: a network rebuilt on ``model.inputs`` (a list) warns
    "the structure of inputs doesn't match" on every call with an array."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


class RegressionHyperModel(keras_tuner.HyperModel):
    """Any CNN hypermodel (same search space) building :func:`linear_head` networks, fitted without class weights."""

    def __init__(self, inner: keras_tuner.HyperModel):
        super().__init__(name=f"{inner.name}_regression", tunable=True)
        self.inner = inner
        self.last_model = None

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return linear_head(self.inner.build(hp))

    def prepare(self, x: np.ndarray) -> np.ndarray:
        return self.inner.prepare(x)

    def served(self, model: keras.Model) -> keras.Model:
        return self.inner.served(model)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        kwargs.pop("class_weight", None)
        history = self.inner.fit(hp, model, *args, **kwargs)
        self.last_model = model  # Ms2ImgRandomSearch keeps the best trial's model from here
        return history


def standardise(y: Any) -> tuple[np.ndarray, float, float]:
    """``(z, mean, scale)``: the training values standardised (scale 1 for constant values)."""
    v = np.asarray(y, dtype=np.float64).reshape(-1)
    mean, sd = float(v.mean()), float(v.std())
    scale = sd if sd > 0 else 1.0
    return ((v - mean) / scale).astype(np.float32), mean, scale
