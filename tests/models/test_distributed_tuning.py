"""Keras Tuner's distributed mode: a chief oracle in the test process, two tuner workers in Dask worker processes on
127.0.0.1; the trials are shared between the workers, each trial gets the hyperparameters it gets in a local search,
and the guards end a stuck search with one line."""

from __future__ import annotations

import time

import keras_tuner
import numpy as np
import pytest

from ms2img.models import distributed_tuning
from ms2img.models.tuning import CompactHyperModel, TuningFailed, tune_cnn

H, W = 20, 18
SPACE = {"conv_layers": [1], "filters": [4, 8], "units": [8, 16], "fragment_dropout": [0.0], "intensity_noise": [0.0]}


def make_images(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Faint noise; class 1 images carry a bright patch."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n, H, W)) * 0.1).astype(np.float32)
    y = np.array([0, 1] * (n // 2))
    x[y == 1, 6:12, 6:12] += 1.0
    return x, y


def _tune(tmp_path, name: str):
    x, y = make_images()
    hypermodel = CompactHyperModel((H, W), space=SPACE, batch_size=8)
    return tune_cnn(x, y, trials=6, epochs=2, seed=5, directory=tmp_path / name, hypermodel=hypermodel, batch_size=8)


@pytest.mark.slow
def test_trials_are_shared_between_two_tuner_workers_and_match_a_local_search(tmp_path, monkeypatch):
    from distributed import LocalCluster

    monkeypatch.delenv(distributed_tuning.WORKERS_ENV, raising=False)
    local = _tune(tmp_path, "local")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as c:
        monkeypatch.setenv(distributed_tuning.WORKERS_ENV, "2")
        monkeypatch.setenv(distributed_tuning.ADDRESS_ENV, c.scheduler_address)
        seen = []
        x, y = make_images()
        hypermodel = CompactHyperModel((H, W), space=SPACE, batch_size=8)
        shared = tune_cnn(
            x, y, trials=6, epochs=2, seed=5, directory=tmp_path / "dist", hypermodel=hypermodel, batch_size=8,
            on_trial_end=seen.append,
        )  # fmt: skip

    assert [t["status"] for t in shared.trials] == ["COMPLETED"] * 6
    ran_by = {t["trial_id"]: t["tuner"] for t in shared.trials}
    assert set(ran_by.values()) == {"tuner0", "tuner1"}, ran_by  # both workers ran trials
    assert sorted(s["trial_id"] for s in seen) == sorted(ran_by)  # the chief reported every trial once
    assert all(s["histories"] for s in seen)
    # trial k gets the same hyperparameters whichever worker runs it
    assert {t["trial_id"]: t["hyperparameters"] for t in shared.trials} == {
        t["trial_id"]: t["hyperparameters"] for t in local.trials
    }
    assert shared.best_hp == next(t["hyperparameters"] for t in shared.trials if t["score"] == shared.best_score)
    assert shared.best_model is not None and shared.best_epoch >= 1
    assert shared.best_model.predict(x[:2], verbose=0).shape == (2, 1)


@pytest.mark.slow
def test_no_worker_reaching_the_chief_ends_the_search_in_one_line(tmp_path, monkeypatch):
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=True, host="127.0.0.1", dashboard_address=None) as cluster:
        monkeypatch.setenv(distributed_tuning.WORKERS_ENV, "2")
        monkeypatch.setenv(distributed_tuning.ADDRESS_ENV, cluster.scheduler_address)
        monkeypatch.setenv(distributed_tuning.START_TIMEOUT_ENV, "3")
        started = time.monotonic()
        with pytest.raises(TuningFailed, match="no tuner worker reached the chief oracle") as info:
            _tune(tmp_path, "alone")
    assert time.monotonic() - started < 60
    assert "\n" not in str(info.value)


def test_a_worker_that_cannot_reach_the_chief_fails_in_one_line(tmp_path):
    x, y = make_images(8)
    spec = distributed_tuning.WorkerSpec(
        tuner_id="tuner0", oracle="127.0.0.1:9", hypermodel=CompactHyperModel((H, W), space=SPACE),
        objective="val_accuracy", direction="max", trials=2, seed=0, epochs=1, executions_per_trial=1,
        directory=str(tmp_path), project_name="cnn", class_weight=None, callbacks=[], start_timeout=1.0,
        rpc_timeout=5.0,
    )  # fmt: skip
    with pytest.raises(TuningFailed, match="chief oracle 127.0.0.1:9 not reachable within 1 s") as info:
        distributed_tuning.run_worker(spec, x[:6, ..., None], y[:6], x[6:, ..., None], y[6:])
    assert "\n" not in str(info.value)


def test_distribution_is_off_unless_asked(monkeypatch):
    monkeypatch.delenv(distributed_tuning.WORKERS_ENV, raising=False)
    monkeypatch.delenv(distributed_tuning.TUNER_ADDRESS_ENV, raising=False)
    monkeypatch.setenv(distributed_tuning.ADDRESS_ENV, "tcp://127.0.0.1:8786")
    assert distributed_tuning.workers_requested(10) == 0
    monkeypatch.setenv(distributed_tuning.WORKERS_ENV, "3")
    assert distributed_tuning.workers_requested(10) == 3
    assert distributed_tuning.workers_requested(1) == 0  # one trial: nothing to share
    monkeypatch.delenv(distributed_tuning.ADDRESS_ENV)
    assert distributed_tuning.workers_requested(10) == 0
    monkeypatch.setenv(distributed_tuning.TUNER_ADDRESS_ENV, "tcp://10.0.0.2:8786")  # a cluster for the tuners
    assert distributed_tuning.workers_requested(10) == 3
    assert keras_tuner.__version__ == "1.4.8"  # the OracleServicer/OracleClient internals used here
