"""The regression head (ms2img.models.cnn_regression): same network, linear output in the assay's units."""

from __future__ import annotations

import warnings

import keras
import numpy as np

from ms2img.models.cnn_regression import in_units, linear_head


def test_the_regressor_answers_in_units_without_a_structure_warning():
    """Rebuilt on ``model.inputs`` (a list), every call with an array warned "the structure of inputs doesn't match":
    five lines per regression training. The head is linear, and ``in_units`` maps its output back to the units."""
    inputs = keras.Input((4,), name="x")
    classifier = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(inputs))
    classifier.compile(optimizer="adam", loss="binary_crossentropy")
    regressor = linear_head(classifier)
    served = in_units(regressor, mean=10.0, scale=2.0)
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = np.asarray(regressor(x)).ravel()
        value = np.asarray(served(x)).ravel()
    np.testing.assert_allclose(value, raw * 2.0 + 10.0, rtol=1e-5)
    assert regressor.layers[-1].activation.__name__ == "linear"
