"""The Keras Tuner search itself: the random search that records every trial's per-epoch history and refits
nothing, its failure type and the helpers that read trials. Shared by the in-process tuning
(:mod:`ms2img.models.tuning`) and the trials on a Dask cluster (:mod:`ms2img.models.distributed_tuning`), so
neither imports the other's internals.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import keras_tuner
import numpy as np

from ms2img.errors import Ms2ImgError
from ms2img.models.cnn import history_dict

COMPLETED = "COMPLETED"  # keras_tuner TrialStatus values are plain strings


class TuningFailed(Ms2ImgError, RuntimeError):
    """A tuning trial (or the hypermodel itself) failed; ``details`` holds the full traceback."""

    def __init__(self, message: str, details: str = "", trials: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.details = details
        self.trials = trials or []


def trial_info(trial: Any) -> dict[str, Any]:
    score = trial.score
    return {
        "trial_id": trial.trial_id,
        "status": str(trial.status),
        "hyperparameters": plain_values(trial.hyperparameters.values),
        "score": None if score is None or not np.isfinite(score) else float(score),
        "message": trial.message,
    }


def plain_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON/MLflow-friendly copy (numpy scalars to Python numbers)."""
    out = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in values.items()}
    # 12 significant digits: 0.30000000000000004 (float step arithmetic) logs as 0.3
    return {k: (float(f"{v:.12g}") if isinstance(v, float) else v) for k, v in out.items()}


def kept_epoch(history: Mapping[str, Sequence[float]], objective: Any, callbacks: Sequence[Any] = ()) -> int | None:
    """0-based index of the epoch whose weights the fit kept: with an ``EarlyStopping(restore_best_weights=True)``
    among ``callbacks``, the best finite objective value from its ``start_from_epoch`` on (Keras ignores the epochs
    before it, and keeps the last weights when training never got there); otherwise the last epoch. None: no finite
    value at that epoch."""
    values = np.asarray(history.get(objective.name, []), dtype=float)
    stop = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping) and c.restore_best_weights), None)
    start = int(stop.start_from_epoch) if stop is not None else len(values)
    watched = np.where(np.isfinite(values[start:]), values[start:], np.nan)
    if np.isnan(watched).all():
        return len(values) - 1 if len(values) and np.isfinite(values[-1]) else None
    return start + int(np.nanargmax(watched) if objective.direction == "max" else np.nanargmin(watched))


def best_of(history: Mapping[str, Sequence[float]], objective: Any, callbacks: Sequence[Any] = ()) -> float | None:
    """The trial's objective at the kept epoch (:func:`kept_epoch`), as a number to maximise."""
    epoch = kept_epoch(history, objective, callbacks)
    if epoch is None:
        return None
    value = float(history[objective.name][epoch])
    return value if objective.direction == "max" else -value


def best_epoch(history: Mapping[str, Sequence[float]], objective: Any, callbacks: Sequence[Any] = ()) -> int:
    """1-based number of the kept epoch (:func:`kept_epoch`; the last when none is finite)."""
    epoch = kept_epoch(history, objective, callbacks)
    return (len(history.get(objective.name, [])) - 1 if epoch is None else epoch) + 1


def last_line(message: str | None) -> str:
    lines = [ln for ln in (message or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "unknown error"


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar per trial (epochs); tqdm hides itself when stderr is not a terminal unless forced."""

    def __init__(self, desc: str, disable: bool | None):
        super().__init__()
        self.desc, self.disable, self.bar = desc, disable, None

    def on_train_begin(self, logs: Any = None) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.params.get("epochs"), desc=self.desc, unit="epoch", leave=False, disable=self.disable
        )

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        if self.bar is not None:
            keys = ("loss", "val_loss", "val_accuracy", "val_auc")
            shown = {k: f"{float(v):.3f}" for k, v in (logs or {}).items() if k in keys}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)

    def on_train_end(self, logs: Any = None) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Ms2ImgRandomSearch(keras_tuner.RandomSearch):
    """RandomSearch that reseeds each trial, skips per-trial checkpoints, reports each trial, fails fast."""

    def __init__(
        self,
        *args: Any,
        trial_seed: int = 0,
        on_trial_end: Callable[[dict[str, Any]], None] | None = None,
        progress: bool | None = None,
        **kwargs: Any,
    ):
        self._trial_seed = int(trial_seed)
        self._trial_callback = on_trial_end
        self._progress_disable = None if progress is None else not progress
        self._histories: dict[str, list[dict[str, list[float]]]] = {}
        self.best_model, self.best_model_score, self.best_epoch, self.best_history = None, None, None, {}
        super().__init__(*args, **kwargs)

    def run_trial(self, trial: Any, *args: Any, **kwargs: Any) -> list[Any]:
        original_callbacks = kwargs.pop("callbacks", [])
        histories = []
        for execution in range(self.executions_per_trial):
            # Each trial's weights/shuffling depend only on (seed, trial, execution), not on earlier trials.
            keras.utils.set_random_seed(self._trial_seed + 1000 * int(trial.trial_id) + execution)
            run_kwargs = copy.copy(kwargs)
            callbacks = self._deepcopy_callbacks(original_callbacks)
            n = self.oracle.max_trials
            callbacks.append(EpochProgress(f"trial {int(trial.trial_id) + 1}/{n}", self._progress_disable))
            run_kwargs["callbacks"] = callbacks
            histories.append(self._build_and_fit_model(trial, *args, **run_kwargs))
        self._histories[trial.trial_id] = [history_dict(h) for h in histories]
        objective = self.oracle.objective
        # each execution's objective at the epoch whose weights were kept; the oracle ranks trials on it too (Keras
        # Tuner's own reading takes the best of every epoch, including those early stopping ignores)
        kept = [best_of(h, objective, original_callbacks) for h in self._histories[trial.trial_id]]
        model, score = getattr(self.hypermodel, "last_model", None), kept[0]
        if model is not None and score is not None and (self.best_model_score is None or score > self.best_model_score):
            self.best_model, self.best_model_score = model, score
            self.best_epoch = best_epoch(self._histories[trial.trial_id][0], objective, original_callbacks)
            self.best_history = self._histories[trial.trial_id][0]
        worst = -np.inf if objective.direction == "max" else np.inf  # a diverged trial ranks last, never arbitrarily
        return [{objective.name: worst if v is None else (v if objective.direction == "max" else -v)} for v in kept]

    def on_trial_end(self, trial: Any) -> None:
        super().on_trial_end(trial)  # oracle.end_trial: final status and score
        ended = self.oracle.get_trial(trial.trial_id)
        info = trial_info(ended)
        if self._trial_callback is not None:
            self._trial_callback({**info, "histories": self._histories.get(trial.trial_id, [])})
        if ended.status != COMPLETED:
            raise TuningFailed(
                f"tuning trial {ended.trial_id} ended {ended.status}: {last_line(ended.message)} "
                f"(hyperparameters {info['hyperparameters']})",
                details=ended.message or "",
                trials=[trial_info(t) for t in self.oracle.trials.values()],
            )
