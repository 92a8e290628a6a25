"""The paper's CNN, its Keras Tuner search and the training helpers, on tiny planted-patch images."""

from __future__ import annotations

import importlib.util
import inspect
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from ms2img.errors import ConfigError
from ms2img.models import cnn
from ms2img.models.tuning import (
    COMPACT_SPACE,
    PAPER_SPACE,
    CompactHyperModel,
    Ms2ImgHyperModel,
    TuningFailed,
    stratified_split,
    tune_cnn,
)

H, W = 30, 28


def make_images(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Faint noise; class 1 images carry a bright 6x6 patch."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, H, W)) * 0.1).astype(np.float32)
    y = np.array([0, 1] * (n // 2))
    x[y == 1, 10:16, 10:16] += 1.0
    return x, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_images()


def fit_paper_cnn(x, y, validation_data=None):
    """The paper's network, 2 epochs, seeded, class-weighted: what a refit does."""
    keras.utils.set_random_seed(7)
    model = cnn.build_paper_cnn((H, W, 1))
    val = None if validation_data is None else (cnn.as_model_input(validation_data[0]), validation_data[1])
    fitted = model.fit(cnn.as_model_input(x), y, epochs=2, batch_size=8, validation_data=val,
                       class_weight=cnn.class_weights(y), verbose=0)  # fmt: skip
    return model, cnn.history_dict(fitted)


@pytest.fixture(scope="module")
def trained(data):
    x, y = data
    return fit_paper_cnn(x, y, validation_data=(x, y))


def layer_summary(model: keras.Model) -> list[tuple]:
    out = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            out.append((kind, layer.filters, tuple(layer.kernel_size), layer.activation.__name__))
        elif kind == "MaxPooling2D":
            out.append((kind, tuple(layer.pool_size)))
        elif kind == "Dense":
            out.append((kind, layer.units, layer.activation.__name__))
        elif kind == "Dropout":
            out.append((kind, layer.rate))
        elif kind != "InputLayer":
            out.append((kind,))
    return out


PAPER_LAYERS = [
    ("Conv2D", 48, (3, 3), "relu"),
    ("Conv2D", 48, (3, 3), "relu"),
    ("MaxPooling2D", (2, 2)),
    ("Flatten",),
    ("Dense", 512, "relu"),
    ("Dropout", 0.5),
    ("Dense", 256, "relu"),
    ("Dropout", 0.5),
    ("Dense", 128, "relu"),
    ("Dropout", 0.5),
    ("Dense", 64, "relu"),
    ("Dropout", 0.5),
    ("Dense", 32, "relu"),
    ("Dropout", 0.5),
    ("Dense", 1, "sigmoid"),
]


def test_paper_cnn_structure():
    model = cnn.build_paper_cnn((H, W, 1))
    assert layer_summary(model) == PAPER_LAYERS
    assert model.input_shape == (None, H, W, 1)
    assert model.output_shape == (None, 1)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-4)
    assert model.loss == "binary_crossentropy"


def test_paper_cnn_trains_on_tensorflow(trained):
    if keras.backend.backend() != "tensorflow":  # tests/conftest.py sets it unless KERAS_BACKEND says otherwise
        pytest.skip(f"KERAS_BACKEND is {keras.backend.backend()}")
    _, history = trained
    assert len(history["loss"]) == 2
    assert all(math.isfinite(v) for v in history["loss"] + history["val_loss"])
    assert {"accuracy", "auc", "val_accuracy", "val_auc"} <= set(history)


JAX_SCRIPT = """
import json, math, sys
import numpy as np
import keras
from ms2img.models import cnn
imported_tf = "tensorflow" in sys.modules
{helpers}
x, y = make_images()
model = cnn.build_paper_cnn((30, 28, 1))
ok = json.loads(json.dumps(layer_summary(model))) == json.loads(sys.argv[1])
model, history = fit_paper_cnn(x, y)
p = cnn.predict_proba(model, x[:5])
print(json.dumps({{"backend": keras.backend.backend(), "structure": ok, "loss": history["loss"],
                  "proba_ok": bool(np.isfinite(p).all() and p.shape == (5,)), "tf_imported": imported_tf}}))
"""


def test_paper_cnn_trains_on_jax():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install 'jax[cpu]' or the 'jax' extra)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    helpers = "H, W = 30, 28\n" + "".join(inspect.getsource(f) for f in (make_images, layer_summary, fit_paper_cnn))
    script = JAX_SCRIPT.format(helpers=helpers)
    expected = json.dumps(PAPER_LAYERS)
    proc = subprocess.run(
        [sys.executable, "-c", script, expected], check=False, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["backend"] == "jax"
    assert result["structure"]
    assert len(result["loss"]) == 2 and all(math.isfinite(v) for v in result["loss"])
    assert result["proba_ok"]
    assert not result["tf_imported"], "importing the model code must not import tensorflow on the jax backend"


def test_predict_proba_matches_predict(trained, data):
    model, _ = trained
    x, _ = data
    direct = cnn.predict_proba(model, x, batch_size=5)  # several batches, a ragged last one
    reference = model.predict(cnn.as_model_input(x), verbose=0).reshape(-1)
    assert direct.shape == (x.shape[0],) and direct.dtype == np.float32
    np.testing.assert_allclose(direct, reference, atol=1e-5)
    assert cnn.predict_proba(model, x[:0]).shape == (0,)
    with pytest.raises(ConfigError, match="expects 30x28"):
        cnn.predict_proba(model, np.zeros((2, 20, 20), np.float32))


def test_fit_is_deterministic_given_seed(trained, data):
    model, history = trained
    x, y = data
    again, history_again = fit_paper_cnn(x, y, validation_data=(x, y))
    np.testing.assert_allclose(cnn.predict_proba(again, x), cnn.predict_proba(model, x), atol=1e-6)
    np.testing.assert_allclose(history_again["loss"], history["loss"], rtol=1e-6)


def test_tuner_runs_every_trial_to_completion(data, tmp_path):
    x, y = data
    seen = []
    result = tune_cnn(x, y, trials=2, epochs=1, seed=3, directory=tmp_path, batch_size=8, on_trial_end=seen.append)
    statuses = [t.status for t in result.tuner.oracle.trials.values()]
    assert statuses == ["COMPLETED", "COMPLETED"]
    assert [t["status"] for t in result.trials] == ["COMPLETED", "COMPLETED"]
    assert [s["trial_id"] for s in seen] == [t["trial_id"] for t in result.trials]
    assert all(len(s["histories"][0]["val_accuracy"]) == 1 for s in seen)
    assert set(result.best_hp) == {
        "conv_layers", "filters", "dense_layers", "units_0", "units_1", "units_2", "dropout", "learning_rate"
    }  # fmt: skip
    hp = result.best_hp
    assert hp["conv_layers"] in PAPER_SPACE["conv_layers"] and hp["filters"] in (16, 32, 48, 64)
    assert hp["units_0"] in range(32, 513, 32) and hp["dropout"] in (0.1, 0.2, 0.3, 0.4, 0.5)
    assert 1e-6 <= hp["learning_rate"] <= 1e-4
    assert result.best_score == max(t["score"] for t in result.trials)
    json.dumps(result.to_dict())  # loggable
    # the best values rebuild the tuned network through the same builder
    model = cnn.build_cnn_from_hp(hp, (H, W, 1))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == hp["conv_layers"] and kinds.count("Dropout") == hp["dense_layers"]
    # same seed -> same first trial (values and score), whatever the number of trials
    again = tune_cnn(x, y, trials=1, epochs=1, seed=3, directory=tmp_path / "again", batch_size=8)
    assert again.trials[0]["hyperparameters"] == result.trials[0]["hyperparameters"]
    assert again.trials[0]["score"] == pytest.approx(result.trials[0]["score"], abs=1e-6)


def test_tuning_split_is_stratified(data):
    _, y = data
    train_idx, val_idx = stratified_split(y, 0.25, seed=5)
    assert np.bincount(y[val_idx]).tolist() == [3, 3] and not set(train_idx) & set(val_idx)
    assert sorted([*train_idx, *val_idx]) == list(range(len(y)))
    with pytest.raises(ConfigError, match="stratified"):
        stratified_split([0, 0, 0, 1], 0.5, seed=0)


class BrokenBuild(Ms2ImgHyperModel):
    def build(self, hp):
        raise ValueError("planted build failure")


class BrokenFit(Ms2ImgHyperModel):
    def fit(self, hp, model, *args, **kwargs):
        raise RuntimeError("planted fit failure")


def test_broken_build_raises_clear_error(data, tmp_path):
    x, y = data
    with pytest.raises(TuningFailed, match="cannot be built: ValueError: planted build failure"):
        tune_cnn(x, y, trials=2, epochs=1, seed=1, directory=tmp_path, hypermodel=BrokenBuild((H, W)))


def test_failing_trial_raises_instead_of_returning(data, tmp_path):
    x, y = data
    seen = []
    with pytest.raises(TuningFailed, match="trial 0 ended FAILED: RuntimeError: planted fit failure") as info:
        tune_cnn(
            x, y, trials=3, epochs=1, seed=1, directory=tmp_path, hypermodel=BrokenFit((H, W)), on_trial_end=seen.append
        )
    assert [s["status"] for s in seen] == ["FAILED"]  # failed fast, and the callback still saw it
    assert "Traceback" in info.value.details


def test_as_labels_and_history_dict():
    labels = cnn.as_labels([0, 1, 1], 3)
    assert labels.tolist() == [0, 1, 1] and labels.dtype == np.float32
    with pytest.raises(ConfigError, match="2 labels for 3 images"):
        cnn.as_labels([0, 1], 3)
    with pytest.raises(ConfigError, match=r"found \[-1\]"):
        cnn.as_labels([0, -1, 1], 3)  # a middle accession must never reach the CNN

    from types import SimpleNamespace

    out = cnn.history_dict(SimpleNamespace(history={"loss": [np.float32(0.5), 0.25], "val_auc": [np.float64(0.75)]}))
    assert out == {"loss": [0.5, 0.25], "val_auc": [0.75]}
    assert all(type(v) is float for vals in out.values() for v in vals)
    assert cnn.history_dict(None) == {}
    assert not hasattr(cnn, "tune_cnn"), "cnn.py no longer re-exports the tuner (import ms2img.models.tuning)"


def _weights(model: keras.Model) -> int:
    return int(sum(np.prod(w.shape) for w in model.weights))


def test_compact_cnn_keeps_position_and_is_small():
    model = cnn.build_compact_cnn((H, W), conv_layers=2, filters=8, units=16, dropout=0.3)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 2 and kinds.count("MaxPooling2D") == 2
    assert "Flatten" in kinds and "GlobalAveragePooling2D" not in kinds  # the m/z position is kept
    assert model.input_shape == (None, H, W, 1) and model.output_shape == (None, 1)
    assert model.get_layer("conv_2").filters == 16  # filters double per block
    assert _weights(model) < _weights(cnn.build_paper_cnn((H, W, 1))) / 10
    # augmentation layers are training-only: prediction is deterministic
    x, _ = make_images(4)
    np.testing.assert_array_equal(cnn.predict_proba(model, x), cnn.predict_proba(model, x))
    plain = cnn.build_compact_cnn((H, W), fragment_dropout=0.0, intensity_noise=0.0, l2=0.0)
    names = [layer.name for layer in plain.layers]
    assert "fragment_dropout" not in names and "intensity_noise" not in names
    assert "fragment_dropout" in [layer.name for layer in model.layers]


def test_compact_hypermodel_samples_its_space():
    import keras_tuner

    space = {"conv_layers": [1], "filters": [4, 8], "units": [8], "learning_rate": [1e-3, 1e-2], "l2": [0.0, 0.0]}
    hm = CompactHyperModel((H, W), space=space, batch_size=4)
    assert hm.input_shape == (H, W, 1) and set(hm.space) == set(COMPACT_SPACE)
    hp = keras_tuner.HyperParameters()
    values = hm.sample(hp)
    assert values["conv_layers"] == 1 and values["units"] == 8  # one-element lists are fixed
    assert values["filters"] in (4, 8) and 1e-3 <= values["learning_rate"] <= 1e-2
    assert values["l2"] == 0.0  # an empty range is fixed
    assert 0.2 <= values["dropout"] <= 0.5  # defaults fill the keys not given
    declared = {h.name: h for h in hp.space}
    assert declared["learning_rate"].sampling == "log" and declared["dropout"].sampling == "linear"
    model = hm.build(keras_tuner.HyperParameters())
    assert model.name == "ms2img_compact_cnn" and model.input_shape == (None, H, W, 1)
    assert [type(la).__name__ for la in model.layers].count("Conv2D") == 1
    with pytest.raises(ConfigError, match="unknown tune.space keys \\['dense_layers'\\]"):
        CompactHyperModel((H, W), space={"dense_layers": [1, 2]})


def test_tune_compact_with_callbacks_and_own_validation_split(data, tmp_path):
    x, y = data
    val = stratified_split(y, 0.25, seed=2)
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=1, restore_best_weights=True)
    space = {"conv_layers": [1], "filters": [4], "units": [8], "learning_rate": [3e-3, 1e-2]}
    result = tune_cnn(
        x,
        y,
        trials=2,
        epochs=4,
        seed=0,
        directory=tmp_path,
        batch_size=8,
        objective="val_auc",
        hypermodel=CompactHyperModel((H, W), space=space, batch_size=8),
        callbacks=[stop],
        validation=val,
    )
    np.testing.assert_array_equal(result.validation_index, val[1])
    assert result.best_model is not None and result.best_model.name == "ms2img_compact_cnn"
    history = result.tuner.best_history
    assert 1 <= result.best_epoch <= len(history["val_auc"]) <= 4
    assert history["val_auc"][result.best_epoch - 1] == pytest.approx(max(history["val_auc"]))
    assert result.best_score == pytest.approx(max(t["score"] for t in result.trials))
    assert result.space == {**COMPACT_SPACE, **space}  # the space searched, defaults filled in
    p = cnn.predict_proba(result.best_model, x[val[1]])
    assert p.shape == (len(val[1]),) and np.isfinite(p).all()
    json.dumps(result.to_dict())


def test_the_reported_epoch_is_the_one_early_stopping_kept():
    """Keras' EarlyStopping ignores the epochs before ``start_from_epoch``: a lower loss there is not the network kept,
    so it must not be the trial's score or its best epoch (nor, without restoring, anything but the last epoch)."""
    from types import SimpleNamespace

    from ms2img.models.search import best_epoch, best_of, kept_epoch

    loss = SimpleNamespace(name="val_loss", direction="min")
    history = {"val_loss": [0.10, 0.50, 0.40, 0.45]}
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True, start_from_epoch=1)
    assert kept_epoch(history, loss, [stop]) == 2
    assert best_of(history, loss, [stop]) == pytest.approx(-0.40) and best_epoch(history, loss, [stop]) == 3
    assert kept_epoch(history, loss) == 3  # nothing restores: the last weights are the ones kept
    late = keras.callbacks.EarlyStopping(monitor="val_loss", restore_best_weights=True, start_from_epoch=9)
    assert kept_epoch(history, loss, [late]) == 3  # training ended before it watched anything
    assert kept_epoch({"val_loss": [float("nan")]}, loss, [stop]) is None and best_of({}, loss) is None


class UnwatchedLowLoss(keras.callbacks.Callback):
    """Reports a loss of 0 for the first epoch, one that early stopping (from epoch 3) never watches: a score or best
    epoch read off every epoch would take it, though no kept network has it."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            logs["val_loss"] = 0.0


def test_tuned_score_is_the_restored_networks_own(data, tmp_path):
    x, y = data
    val = stratified_split(y, 0.25, seed=2)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True, start_from_epoch=2)
    result = tune_cnn(
        x, y, trials=1, epochs=5, seed=0, directory=tmp_path, batch_size=8, objective="val_loss",
        hypermodel=CompactHyperModel((H, W), space={"conv_layers": [1], "filters": [4], "units": [8]}, batch_size=8),
        callbacks=[UnwatchedLowLoss(), stop], validation=val,
    )  # fmt: skip
    history = result.tuner.best_history["val_loss"]
    assert history[0] == 0.0  # the history holds the unwatched epoch ...
    assert result.best_epoch >= 3  # ... but epochs 1-2 are not watched
    assert result.best_score == pytest.approx(history[result.best_epoch - 1])  # the oracle's score of the trial
    assert result.best_score == pytest.approx(min(history[2:]))
