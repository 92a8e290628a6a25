"""Keras Tuner's distributed mode for one fold's search: a chief oracle here, tuner workers on a Dask cluster.

Why: the paper's protocol is 120 trials per fold; one process runs them one after another. With
``$MS2IMG_TUNER_WORKERS`` (N >= 1), a Dask scheduler (``$MS2IMG_DASK_ADDRESS``, or ``$MS2IMG_TUNER_DASK_ADDRESS``)
and ``tune.trials`` > 1, :func:`ms2img.models.tuning.tune_cnn` hands the search to :func:`search`: this process holds
the chief oracle (Keras Tuner's gRPC ``OracleServicer`` over the fold's own tuner, so the fold uses the chief's best
trial) and N Dask tasks run tuner workers, each a ``Ms2ImgRandomSearch`` whose oracle is a client of the chief,
configured as Keras Tuner documents it (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``). Trial ``k`` gets the same hyperparameters and seed as in a local search, whichever
worker runs it. The assays in flight hold worker threads while their stage commands run: the tuner workers need
free threads on that cluster (more workers than assays) or a cluster of their own.

Keras Tuner's own chief (``Tuner.search`` with ``KERASTUNER_TUNER_ID=chief``) is not used: it polls for the end of
the search every 20 s and waits forever for a worker that died mid-trial, and its workers wait an hour for a chief
that never came. Here: a worker that cannot reach the chief within the start time-out, a worker whose trial or
gRPC call fails, a search with no worker after the start time-out and a search past its overall time-out all end
in :class:`~ms2img.models.tuning.TuningFailed` with one line. Time-outs (seconds): ``$MS2IMG_TUNER_START_TIMEOUT``
(default 300: a worker importing TensorFlow on a busy machine), ``$MS2IMG_TUNER_TIMEOUT`` (default 86400).
The oracle's address: ``$KERASTUNER_ORACLE_IP`` (default: this host's address towards the scheduler) and
``$KERASTUNER_ORACLE_PORT`` (default: a free port).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures as cf
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

WORKERS_ENV = "MS2IMG_TUNER_WORKERS"
ADDRESS_ENV = "MS2IMG_DASK_ADDRESS"
TUNER_ADDRESS_ENV = "MS2IMG_TUNER_DASK_ADDRESS"  # a separate cluster for the tuner workers (default: ADDRESS_ENV)
START_TIMEOUT_ENV = "MS2IMG_TUNER_START_TIMEOUT"
TIMEOUT_ENV = "MS2IMG_TUNER_TIMEOUT"
KT_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def dask_address() -> str:
    """The tuner workers' Dask scheduler: $MS2IMG_TUNER_DASK_ADDRESS, else $MS2IMG_DASK_ADDRESS ('' if neither).

    The flow's assays occupy worker threads while their stage commands run, so the tuner workers need free
    threads on that cluster (more workers than assays in flight) or a cluster of their own."""
    return (os.environ.get(TUNER_ADDRESS_ENV) or os.environ.get(ADDRESS_ENV) or "").strip()


def workers_requested(trials: int) -> int:
    """How many tuner workers to start for a search of ``trials`` trials: 0 (search locally) unless trials > 1,
    $MS2IMG_TUNER_WORKERS >= 1 and a Dask scheduler (:func:`dask_address`) are set."""
    from ms2img.errors import ConfigError

    raw = os.environ.get(WORKERS_ENV, "").strip()
    if int(trials) < 2 or not raw or not dask_address():
        return 0
    try:
        n = int(raw)
    except ValueError:
        raise ConfigError(f"{WORKERS_ENV} must be a number of tuner workers, got {raw!r}") from None
    return max(n, 0)


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


@dataclass
class WorkerSpec:
    """What one tuner worker needs besides the data (pickled to the Dask worker)."""

    tuner_id: str
    oracle: str  # host:port of the chief
    hypermodel: Any
    objective: str
    direction: str
    trials: int
    seed: int
    epochs: int
    executions_per_trial: int
    directory: str
    project_name: str
    class_weight: dict | None
    callbacks: list
    start_timeout: float
    rpc_timeout: float


# --------------------------------------------------------------------------------------------- the chief


def _servicer(oracle: Any, expected: int, gather_s: float) -> Any:
    """Keras Tuner's ``OracleServicer`` that records which worker ran which trial, and holds the first trial
    requests until ``expected`` workers have asked (at most ``gather_s``), so the trials are shared."""
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    class Servicer(OracleServicer):
        def __init__(self) -> None:
            super().__init__(oracle)
            self.arrived: dict[str, float] = {}
            self.ran_by: dict[str, str] = {}
            self.lock = threading.Lock()

        def CreateTrial(self, request: Any, context: Any) -> Any:
            with self.lock:
                self.arrived.setdefault(request.tuner_id, time.monotonic())
                first = min(self.arrived.values())
            while len(self.arrived) < expected and time.monotonic() - first < gather_s:
                time.sleep(0.05)
            response = super().CreateTrial(request, context)
            running = oracle.ongoing_trials.get(request.tuner_id)
            if running is not None:
                self.ran_by[running.trial_id] = request.tuner_id
            return response

    return Servicer()


def _own_address(scheduler: str) -> str:
    """This host's address as the Dask scheduler's host reaches it (127.0.0.1 for a local cluster)."""
    if os.environ.get("KERASTUNER_ORACLE_IP"):
        return os.environ["KERASTUNER_ORACLE_IP"]
    host = urlsplit(scheduler if "://" in scheduler else f"tcp://{scheduler}").hostname or "127.0.0.1"
    if host in ("127.0.0.1", "localhost"):
        return "127.0.0.1"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((host, 9))  # no packet is sent: this only picks the interface
        return s.getsockname()[0]


def search(
    *,
    hypermodel: Any,
    objective: Any,
    trials: int,
    seed: int,
    epochs: int,
    executions_per_trial: int,
    directory: str,
    project_name: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    class_weight: dict | None,
    callbacks: Sequence[Any],
    workers: int,
    address: str | None = None,
    on_trial_end: Callable[[dict[str, Any]], None] | None = None,
    progress: bool | None = None,
) -> Any:
    """Run the search with a chief oracle in this process and ``workers`` tuner workers on the Dask cluster at
    ``address`` (default :func:`dask_address`); returns the chief's tuner (its oracle holds every trial) with the
    best trial's fitted model, epoch and history, and a ``ran_by`` map trial id -> tuner id."""
    import grpc
    from distributed import Client
    from keras_tuner.src import protos

    from ms2img.models.search import COMPLETED, Ms2ImgRandomSearch, TuningFailed, last_line

    address = address or dask_address()
    start_timeout = _seconds(START_TIMEOUT_ENV, 300)
    deadline = time.monotonic() + _seconds(TIMEOUT_ENV, 86400)
    with _without_kt_env():  # the chief's tuner keeps its own oracle
        chief = Ms2ImgRandomSearch(
            hypermodel=hypermodel, objective=objective, max_trials=int(trials), seed=int(seed),
            executions_per_trial=int(executions_per_trial), max_retries_per_trial=0,
            max_consecutive_failed_trials=None, directory=directory, project_name=project_name, overwrite=True,
            trial_seed=int(seed), progress=progress,
        )  # fmt: skip
    servicer = _servicer(chief.oracle, workers, gather_s=min(60.0, start_timeout))
    server = grpc.server(cf.ThreadPoolExecutor(max_workers=workers + 4))
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    ip = _own_address(address)
    port = server.add_insecure_port(f"{ip}:{os.environ.get('KERASTUNER_ORACLE_PORT', '0')}")
    if not port:
        raise TuningFailed(f"distributed tuning: cannot open the chief oracle's port on {ip}")
    server.start()
    started = time.monotonic()
    try:
        with Client(address, timeout="30s") as client:
            futures = []
            for i in range(workers):
                spec = WorkerSpec(
                    tuner_id=f"tuner{i}", oracle=f"{ip}:{port}", hypermodel=hypermodel, objective=objective.name,
                    direction=objective.direction, trials=int(trials), seed=int(seed), epochs=int(epochs),
                    executions_per_trial=int(executions_per_trial), directory=str(directory),
                    project_name=project_name, class_weight=class_weight, callbacks=list(callbacks),
                    start_timeout=start_timeout, rpc_timeout=max(600.0, 2 * start_timeout),
                )  # fmt: skip
                futures.append(client.submit(run_worker, spec, *data, pure=False, retries=0, key=f"tuner{i}-{port}"))
            while not all(f.done() for f in futures):
                failed = next((f for f in futures if f.status == "error"), None)
                if failed is not None:
                    raise TuningFailed(f"distributed tuning: {last_line(str(failed.exception()))}")
                now = time.monotonic()
                if not servicer.arrived and now - started > start_timeout:
                    raise TuningFailed(
                        f"distributed tuning: no tuner worker reached the chief oracle at {ip}:{port} within "
                        f"{start_timeout:.0f} s (Dask cluster {address} busy or its workers cannot reach this host; "
                        f"{START_TIMEOUT_ENV} sets the wait)"
                    )
                if now > deadline:
                    raise TuningFailed(f"distributed tuning: not finished within {_seconds(TIMEOUT_ENV, 86400):.0f} s")
                time.sleep(0.2)
            for f in futures:
                if f.status == "error":
                    raise TuningFailed(f"distributed tuning: {last_line(str(f.exception()))}")
            results = [f.result() for f in futures]
            for f in futures:
                f.cancel()
    finally:
        server.stop(grace=None)
    oracle = chief.oracle
    ended = sorted(oracle.trials.values(), key=lambda t: int(t.trial_id))
    unfinished = [t.trial_id for t in ended if t.status != COMPLETED]
    if oracle.ongoing_trials or unfinished or not ended:
        raise TuningFailed(f"distributed tuning: trials {unfinished or 'none'} did not complete on the workers")
    infos = {info["trial_id"]: info for r in results for info in r["trials"]}
    if on_trial_end is not None:
        for t in ended:
            on_trial_end(infos.get(t.trial_id) or {"trial_id": t.trial_id})
    best_id = oracle.get_best_trials(1)[0].trial_id
    holder = next((r for r in results if r["best_trial"] == best_id), None)
    holder = holder or max((r for r in results if r["best_model"] is not None), key=lambda r: r["best_score"])
    chief.best_model, chief.best_model_score = pickle.loads(holder["best_model"]), holder["best_score"]
    chief.best_epoch, chief.best_history = holder["best_epoch"], holder["best_history"]
    chief._histories = {tid: info.get("histories", []) for tid, info in infos.items()}
    chief.ran_by = dict(servicer.ran_by)
    return chief


# -------------------------------------------------------------------------------------------- a worker

_ENV_LOCK = threading.Lock()
_ENV_USERS = 0


@contextlib.contextmanager
def _without_kt_env() -> Iterator[None]:
    """No KERASTUNER_* variables while building a tuner that must keep its own oracle."""
    with _ENV_LOCK:
        saved = {k: os.environ.pop(k) for k in KT_ENV if k in os.environ}
        try:
            yield
        finally:
            os.environ.update(saved)


@contextlib.contextmanager
def _kt_env(spec: WorkerSpec) -> Iterator[None]:
    """Keras Tuner reads its distribution settings from os.environ; set them for this worker's search and restore
    them afterwards, so stage commands this Dask worker starts later never inherit them."""
    global _ENV_USERS
    host, port = spec.oracle.rsplit(":", 1)
    with _ENV_LOCK:
        if _ENV_USERS == 0:
            _kt_env.saved = {k: os.environ.get(k) for k in KT_ENV}  # type: ignore[attr-defined]
        _ENV_USERS += 1
        os.environ.update(KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=port, KERASTUNER_TUNER_ID=spec.tuner_id)
    try:
        yield
    finally:
        with _ENV_LOCK:
            _ENV_USERS -= 1
            if _ENV_USERS == 0:
                for k, v in _kt_env.saved.items():  # type: ignore[attr-defined]
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v


def run_worker(spec: WorkerSpec, x_fit: np.ndarray, y_fit: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> dict:
    """A Dask task: one tuner worker. Runs trials the chief hands out until it says stop; returns what it ran
    (trial records with per-epoch histories) and its best trial's fitted model for the chief."""
    import grpc
    import keras_tuner
    from keras_tuner.src.distribute import oracle_client

    from ms2img.models.search import Ms2ImgRandomSearch, TuningFailed, last_line

    who = f"tuner worker {spec.tuner_id} on {socket.gethostname()}"
    channel = grpc.insecure_channel(spec.oracle)
    try:
        grpc.channel_ready_future(channel).result(timeout=spec.start_timeout)
    except grpc.FutureTimeoutError:
        raise TuningFailed(
            f"{who}: chief oracle {spec.oracle} not reachable within {spec.start_timeout:.0f} s"
        ) from None
    finally:
        channel.close()
    oracle_client.TIMEOUT = spec.rpc_timeout  # a vanished chief fails the next call in minutes, not in an hour
    records: list[dict[str, Any]] = []
    try:
        with _kt_env(spec):
            with _ENV_LOCK:  # the tuner id is read while the tuner is built (another thread may run a worker too)
                os.environ["KERASTUNER_TUNER_ID"] = spec.tuner_id
                tuner = Ms2ImgRandomSearch(
                    hypermodel=spec.hypermodel, objective=keras_tuner.Objective(spec.objective, spec.direction),
                    max_trials=spec.trials, seed=spec.seed, executions_per_trial=spec.executions_per_trial,
                    max_retries_per_trial=0, max_consecutive_failed_trials=None, directory=spec.directory,
                    project_name=f"{spec.project_name}-{spec.tuner_id}", overwrite=True, trial_seed=spec.seed,
                    on_trial_end=records.append, progress=False,
                )  # fmt: skip
            tuner.oracle.trials = {}  # TuningFailed lists the chief's trials; a client has none to list
            tuner.search(
                x_fit, y_fit, epochs=spec.epochs, validation_data=(x_val, y_val), class_weight=spec.class_weight,
                callbacks=list(spec.callbacks), shuffle=True, verbose=0,
            )  # fmt: skip
    except grpc.RpcError as exc:
        raise TuningFailed(f"{who}: lost the chief oracle {spec.oracle}: {exc.code().name}") from None
    except TuningFailed as exc:
        raise TuningFailed(f"{who}: {last_line(str(exc))}") from None
    except Exception as exc:  # noqa: BLE001 - one line to the chief, whatever broke
        raise TuningFailed(f"{who}: {type(exc).__name__}: {last_line(str(exc))}") from None
    best = None
    if tuner.best_model is not None:
        best = next(
            (r["trial_id"] for r in records if r["histories"] and r["histories"][0] == tuner.best_history), None
        )
    return {
        "tuner_id": spec.tuner_id,
        "trials": [{**r, "tuner": spec.tuner_id} for r in records],
        "best_trial": best,
        # as bytes (Keras 3's own pickling): Dask's keras serializer predates Keras 3
        "best_model": None if tuner.best_model is None else pickle.dumps(tuner.best_model),
        "best_score": tuner.best_model_score,
        "best_epoch": tuner.best_epoch,
        "best_history": tuner.best_history,
    }
