"""Keras Tuner random search (nested inside each outer CV fold) over the hypermodels of every network.

One ``tune.space`` grammar for all three networks (:class:`ListSpaceHyperModel`): the column network's
(:data:`COLUMN_SPACE`, the default), the compact one's (:data:`COMPACT_SPACE`) and the paper's
(:data:`PAPER_SPACE`): Keras Tuner random search, 120 trials, 1-3 conv layers, 16-64 filters, 1-3 dense layers,
32-512 units per dense layer, dropout 0.1-0.5, learning rate log-uniform 1e-6..1e-4, best model by validation
accuracy. (The paper's final network has five dense layers, outside its own stated 1-3 range; profiles/paper.yaml
widens ``dense_layers`` to include it.)

Nested tuning: :func:`tune_cnn` receives only the outer-training part of a fold and carves its own
stratified validation split out of it, so the outer test fold never influences the chosen architecture.

keras-tuner traps handled here (keras-tuner 1.4.8, Keras 3.15):

* a trial that raises is recorded as INVALID/FAILED and the search goes on (by default until 3
  *consecutive* failures), and ``get_best_hyperparameters`` then happily returns a failed trial's values.
  We turn the library's counter off and raise :class:`TuningFailed` with the trial's own error message as
  soon as a trial ends in any state but COMPLETED.
* ``Tuner.run_trial`` checkpoints the best epoch of *every* trial to ``<directory>/<project>/trial_*``
  (for ``get_best_models``) — about 0.5 GB per trial for the paper's network on 150x140 images, i.e.
  tens of GB for 120 trials. We override ``run_trial`` without that checkpoint (we retrain from
  ``best_hp`` anyway), which also skips the TensorBoard-dir hook that imports ``tensorboard`` on the
  TF backend.
* the hypermodel's ``build`` runs once in the tuner's constructor (to discover the space), so a
  broken builder raises there, not in a trial; :func:`tune_cnn` reports both the same way.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import keras
import keras_tuner
import numpy as np

from ms2img.errors import ConfigError, Ms2ImgError
from ms2img.models.cnn import (
    as_labels,
    as_model_input,
    build_cnn_from_hp,
    build_compact_cnn,
    class_weights,
)
from ms2img.models.column_cnn import (
    build_column_cnn,
    packed_targets,
    pixel_channels,
    pixel_relevance,
    task_network,
    with_pixel_ecdf,
)
from ms2img.models.search import (
    COMPLETED,
    Ms2ImgRandomSearch,
    TuningFailed,
    last_line,
    plain_values,
    trial_info,
)

log = logging.getLogger(__name__)
OBJECTIVES = {"val_accuracy": "max", "val_auc": "max", "val_loss": "min"}
# -------------------------------------------------------------------------------------------- space


class ImageHyperModel(keras_tuner.HyperModel):
    """A hypermodel whose networks read the images themselves; the column network overrides both hooks."""

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """What the built networks train on, from images ``(N, H, W, 1)``."""
        return x

    def served(self, model: keras.Model) -> keras.Model:
        """A trained network as it answers images ``(N, H, W, 1)``."""
        return model

    def adapt(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
        """Fit a built network's fixed, data-derived weights on the rows it is about to train on (none here)."""


COMPACT_SPACE: dict[str, Any] = {
    "conv_layers": [1, 2],
    "filters": [8, 16],
    "units": [16, 32, 64],
    "dropout": [0.2, 0.5],
    "fragment_dropout": [0.0, 0.2],
    "intensity_noise": [0.0, 0.3],
    "l2": [1e-5, 1e-3],
    "learning_rate": [3e-4, 3e-3],
}
COLUMN_SPACE: dict[str, Any] = {
    "filters": [0, 4],
    "kernel": [3, 5],
    "dropout": [0.0, 0.5],
    "l2": [1e-4, 1e-2],
    "learning_rate": [3e-3, 3e-2],
}


class ListSpaceHyperModel(ImageHyperModel):
    """The one ``tune.space`` grammar (paper, compact and column networks): a one-element list fixes the value;
    lists of whole numbers (``CHOICES`` keys) and any list of three or more values are choices; a pair of floats
    is a range (log-uniform for ``LOG`` keys). ``SPACE`` lists the keys and their defaults."""

    SPACE: ClassVar[dict[str, Any]] = {}
    CHOICES: tuple[str, ...] = ()
    LOG: tuple[str, ...] = ("l2", "learning_rate")

    def __init__(self, input_shape: Sequence[int], space: Mapping[str, Any] | None, batch_size: int, name: str):
        super().__init__(name=name, tunable=True)
        shape = tuple(int(s) for s in input_shape)
        self.input_shape = shape if len(shape) == 3 else (*shape, 1)
        unknown = sorted(set(space or {}) - set(self.SPACE))
        if unknown:
            raise ConfigError(f"unknown tune.space keys {unknown} for the {name} network; known: {sorted(self.SPACE)}")
        self.space = {**self.SPACE, **dict(space or {})}
        self.batch_size = int(batch_size)

    def sample(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        """Declare (first call) and read every key of the space; returns the values the builder takes."""
        return {name: self.draw(hp, name, bounds) for name, bounds in self.space.items()}

    def draw(self, hp: keras_tuner.HyperParameters, name: str, bounds: Sequence[Any], key: str | None = None) -> Any:
        """One hyperparameter ``name`` from ``bounds``, read by the grammar of space key ``key`` (default: name)."""
        bounds, key = list(bounds), key or name
        if len(bounds) == 1:
            return hp.Fixed(name, bounds[0])
        if key in self.CHOICES:
            return hp.Choice(name, [int(b) for b in bounds])
        if len(bounds) > 2:
            return hp.Choice(name, [float(b) for b in bounds])
        if float(bounds[0]) == float(bounds[1]):
            return hp.Fixed(name, float(bounds[0]))
        log = key in self.LOG and float(bounds[0]) > 0
        return hp.Float(name, float(bounds[0]), float(bounds[1]), sampling="log" if log else "linear")

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("batch_size", self.batch_size)
        self.last_model = model
        return model.fit(*args, **kwargs)


PAPER_SPACE: dict[str, Any] = {  # the paper's stated space (its final network has 5 dense layers: widen dense_layers)
    "conv_layers": [1, 2, 3],
    "filters": [16, 32, 48, 64],
    "dense_layers": [1, 2, 3],
    "units": list(range(32, 513, 32)),
    "dropout": [0.1, 0.2, 0.3, 0.4, 0.5],
    "learning_rate": [1e-6, 1e-4],
}


class Ms2ImgHyperModel(ListSpaceHyperModel):
    """The paper's search space (keys of :data:`PAPER_SPACE`) over :func:`ms2img.models.cnn.build_cnn_from_hp`.
    One ``filters`` value is shared by all conv layers; each dense layer ``i`` draws its own ``units_i`` from
    ``units``, and all ``units_i`` up to the largest layer count are declared in every trial (same keys always)."""

    SPACE = PAPER_SPACE
    CHOICES = ("conv_layers", "filters", "dense_layers", "units")

    def __init__(self, input_shape: Sequence[int], space: Mapping[str, Any] | None = None, batch_size: int = 16):
        super().__init__(input_shape, space, batch_size, name="ms2img_cnn")

    def sample(self, hp: keras_tuner.HyperParameters) -> dict[str, Any]:
        values = {name: self.draw(hp, name, bounds) for name, bounds in self.space.items() if name != "units"}
        for i in range(max(int(n) for n in self.space["dense_layers"])):
            values[f"units_{i}"] = self.draw(hp, f"units_{i}", self.space["units"], key="units")
        return values

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_cnn_from_hp(self.sample(hp), self.input_shape)


class CompactHyperModel(ListSpaceHyperModel):
    """Search space over :func:`ms2img.models.cnn.build_compact_cnn` (keys of :data:`COMPACT_SPACE`)."""

    SPACE = COMPACT_SPACE
    CHOICES = ("conv_layers", "filters", "units")

    def __init__(
        self,
        input_shape: Sequence[int],
        space: Mapping[str, Any] | None = None,
        batch_size: int = 16,
        pixel_stats: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        super().__init__(input_shape, space, batch_size, name="ms2img_compact_cnn")
        self.pixel_stats = pixel_stats  # per-pixel standardisation of the training images (cnn.pixel_statistics)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_compact_cnn(self.input_shape, **self.sample(hp), pixel_stats=self.pixel_stats)


class ColumnHyperModel(ListSpaceHyperModel):
    """Search space over :func:`ms2img.models.column_cnn.build_column_cnn` (keys of :data:`COLUMN_SPACE`). The
    pixel ECDF's knots and scale come from the training images and are not tuned; networks train on
    :meth:`prepare`'s pixel channels (computed once) and answer images through :meth:`served`.

    ``tasks`` > 1 (the ``cnn-mt`` family): one head per assay; targets are ``(N, tasks)`` labels (NaN: unknown),
    column 0 the assay being modelled. Training weighs each head's known labels class-balanced; the inner
    validation loss (early stopping, the trial's score) counts column 0 only; :meth:`served` keeps column 0's head.
    """

    SPACE = COLUMN_SPACE
    CHOICES = ("filters", "kernel")

    def __init__(
        self,
        input_shape: Sequence[int],
        space: Mapping[str, Any] | None,
        batch_size: int,
        knots: Any,
        scale: float,
        passes_per_epoch: int = 1,
        tasks: int = 1,
        relevance_power: float = 0.0,
    ):
        super().__init__(input_shape, space, batch_size, name="ms2img_column_cnn")
        self.knots, self.scale = knots, float(scale)
        self.passes_per_epoch = int(passes_per_epoch)
        self.tasks = int(tasks)
        self.relevance_power = float(relevance_power)

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> Any:
        """One Keras epoch = ``passes_per_epoch`` shuffled passes over the training images: Keras' fixed cost per
        epoch (~0.1-0.3 s on CPU, validation included) would otherwise dominate a network this small. The pixel
        weights (``cnn.relevance_power``) are fitted on these training rows first."""
        if len(args) >= 2:
            self.adapt(model, args[0], args[1])
        if self.tasks > 1 and len(args) >= 2:
            x, y, *rest = args
            args = (x, packed_targets(y, balanced=True), *rest)
            x_val, y_val = kwargs["validation_data"]
            focal = np.full_like(np.asarray(y_val, dtype=np.float32), np.nan)
            focal[:, 0] = np.asarray(y_val, dtype=np.float32)[:, 0]
            kwargs["validation_data"] = (x_val, packed_targets(focal, balanced=False))
        if self.passes_per_epoch > 1 and len(args) >= 2:
            x, y, *rest = args
            args = (np.concatenate([x] * self.passes_per_epoch), np.concatenate([y] * self.passes_per_epoch), *rest)
        return super().fit(hp, model, *args, **kwargs)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        return build_column_cnn(
            (*self.input_shape[:2], 2), **self.sample(hp), tasks=self.tasks, relevance=self.relevance_power > 0
        )

    def adapt(self, model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
        """The network's pixel weights (:func:`~ms2img.models.column_cnn.pixel_relevance`) from these rows and this
        assay's targets (column 0 when multi-task); :meth:`build` gave it the layer when ``relevance_power`` > 0."""
        if self.relevance_power > 0:
            targets = np.asarray(y, dtype=float)
            weights = pixel_relevance(x, targets if targets.ndim == 1 else targets[:, 0], self.relevance_power)
            model.get_layer("relevance").set_weights([weights])

    def prepare(self, x: np.ndarray) -> np.ndarray:
        return pixel_channels(x, self.knots, self.scale)

    def served(self, model: keras.Model) -> keras.Model:
        return with_pixel_ecdf(task_network(model) if self.tasks > 1 else model, self.knots, self.scale)


# ------------------------------------------------------------------------------------------- tuner


@dataclass
class TuneResult:
    """Best hyperparameter values (rebuild with the hypermodel's builder) and every trial's record."""

    best_hp: dict[str, Any]
    trials: list[dict[str, Any]]
    objective: str = "val_accuracy"
    best_score: float | None = None
    space: dict[str, Any] = field(default_factory=dict)
    tuner: Any = field(default=None, repr=False, compare=False)  # the keras-tuner object, for inspection
    best_model: Any = field(default=None, repr=False, compare=False)  # the best trial's fitted model
    best_epoch: int | None = None  # its best epoch (early stopping restores those weights)
    validation_index: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the tuner object (JSON-ready)."""
        skip = ("tuner", "best_model", "validation_index")
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name not in skip}


def stratified_split(y: Any, fraction: float, seed: int, groups: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)``, stratified by label, ``fraction`` of the samples for validation.

    ``groups`` (e.g. the accession of each replicate image): a group never sits on both sides, so the validation
    rows are not near-copies of training rows (the split is the first fold of a stratified group K-fold with
    ``K = round(1 / fraction)``)."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    labels = np.asarray(y).reshape(-1)
    if not 0.0 < float(fraction) < 1.0:
        raise ConfigError(f"validation_split must be in (0, 1); got {fraction}")
    counts = {int(c): int((labels == c).sum()) for c in np.unique(labels)}
    try:
        if groups is None:
            train_idx, val_idx = train_test_split(
                np.arange(labels.size), test_size=float(fraction), stratify=labels, random_state=int(seed)
            )
        else:
            splitter = StratifiedGroupKFold(n_splits=max(2, round(1 / float(fraction))), shuffle=True,
                                            random_state=int(seed))  # fmt: skip
            train_idx, val_idx = next(splitter.split(labels, labels, np.asarray(groups)))
    except ValueError as exc:
        raise ConfigError(
            f"cannot carve a stratified {fraction:.0%} validation split out of {labels.size} training samples "
            f"(class counts {counts}): {exc}"
        ) from None
    return np.sort(train_idx), np.sort(val_idx)


def tune_cnn(
    x_train: Any,
    y_train: Any,
    *,
    trials: int,
    epochs: int,
    seed: int,
    directory: str | Path,
    validation_split: float = 0.2,
    batch_size: int = 16,
    objective: str = "val_accuracy",
    on_trial_end: Callable[[dict[str, Any]], None] | None = None,
    space: Mapping[str, Any] | None = None,
    executions_per_trial: int = 1,
    balance_classes: bool = True,
    project_name: str = "cnn",
    progress: bool | None = None,
    hypermodel: keras_tuner.HyperModel | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    validation: tuple[np.ndarray, np.ndarray] | None = None,
    continuous: bool = False,
) -> TuneResult:
    """Random search (``trials`` trials, ``epochs`` each) on the outer-training images of one fold.

    A stratified ``validation_split`` of ``x_train`` (seeded by ``seed``) scores the trials by ``objective``
    (``val_accuracy`` as in the paper, or ``val_auc`` / ``val_loss``; the best epoch of each trial counts).
    ``on_trial_end(info)`` runs after every trial with ``trial_id``, ``status``, ``hyperparameters``,
    ``score``, ``message`` and ``histories`` (per-epoch metrics of each execution), e.g. to log an MLflow
    nested run. ``directory/project_name`` holds keras-tuner's trial records (overwritten each call).
    Raises :class:`TuningFailed` with the trial's error when a trial fails (no silent "best" of failures).
    ``continuous``: ``y_train`` holds values, not 0/1 labels (regression; pass ``validation`` and
    ``balance_classes=False``, see :mod:`ms2img.models.cnn_regression`). A 2-D ``y_train`` is a multi-task
    target (see :class:`ColumnHyperModel`; its hypermodel weighs the classes, so pass ``balance_classes=False``).
    """
    if objective not in OBJECTIVES:
        raise ConfigError(f"objective must be one of {sorted(OBJECTIVES)}; got '{objective}'")
    if int(trials) < 1 or int(epochs) < 1:
        raise ConfigError(f"trials and epochs must be >= 1; got {trials}, {epochs}")
    x = as_model_input(x_train)
    if np.ndim(y_train) == 2:
        y = np.asarray(y_train, dtype=np.float32)
        as_labels(y[:, 0], x.shape[0])  # the assay being modelled: a 0/1 label on every row
    elif continuous:
        y = np.asarray(y_train, dtype=np.float32).reshape(-1)
    else:
        y = as_labels(y_train, x.shape[0])
    if validation is not None:  # the caller's own (e.g. grouped) split
        train_idx, val_idx = (np.asarray(i) for i in validation)
    else:
        train_idx, val_idx = stratified_split(y if y.ndim == 1 else y[:, 0], validation_split, seed)
    x_fit, y_fit, x_val, y_val = x[train_idx], y[train_idx], x[val_idx], y[val_idx]

    keras.utils.set_random_seed(int(seed))
    if hypermodel is None:
        hypermodel = Ms2ImgHyperModel(x.shape[1:], space=space, batch_size=batch_size)
    space_dict = {k: list(v) for k, v in getattr(hypermodel, "space", {}).items()}
    from ms2img.models import distributed_tuning  # trials on a Dask cluster when asked ($MS2IMG_TUNER_WORKERS)

    if workers := distributed_tuning.workers_requested(trials):
        log.info(
            "search of %d trials on %d Dask tuner worker(s) at %s", trials, workers, distributed_tuning.dask_address()
        )
        tuner = distributed_tuning.search(
            hypermodel=hypermodel, objective=keras_tuner.Objective(objective, OBJECTIVES[objective]), trials=trials,
            seed=seed, epochs=epochs, executions_per_trial=executions_per_trial, directory=str(directory),
            project_name=project_name, data=(x_fit, y_fit, x_val, y_val), workers=workers, on_trial_end=on_trial_end,
            class_weight=class_weights(y_fit) if balance_classes else None, callbacks=callbacks, progress=progress,
        )  # fmt: skip
        best = tuner.oracle.get_best_trials(1)[0]
        return TuneResult(
            best_hp=plain_values(best.hyperparameters.values), objective=objective, space=space_dict, tuner=tuner,
            trials=[{**trial_info(t), "tuner": tuner.ran_by.get(t.trial_id)} for t in tuner.oracle.trials.values()],
            best_score=None if best.score is None else float(best.score), best_model=tuner.best_model,
            best_epoch=tuner.best_epoch, validation_index=val_idx,
        )  # fmt: skip
    try:
        tuner = Ms2ImgRandomSearch(
            hypermodel=hypermodel,
            objective=keras_tuner.Objective(objective, OBJECTIVES[objective]),
            max_trials=int(trials),
            seed=int(seed),
            executions_per_trial=int(executions_per_trial),
            max_retries_per_trial=0,
            max_consecutive_failed_trials=None,  # we raise on the first failed trial ourselves
            directory=str(directory),
            project_name=project_name,
            overwrite=True,
            trial_seed=int(seed),
            on_trial_end=on_trial_end,
            progress=progress,
        )
    except Ms2ImgError:
        raise
    except Exception as exc:
        import traceback

        raise TuningFailed(
            f"the CNN hypermodel cannot be built: {type(exc).__name__}: {exc}", details=traceback.format_exc()
        ) from exc

    tuner.search(
        x_fit,
        y_fit,
        epochs=int(epochs),
        validation_data=(x_val, y_val),
        class_weight=class_weights(y_fit) if balance_classes else None,
        callbacks=list(callbacks),
        shuffle=True,
        verbose=0,
    )

    records = [trial_info(t) for t in tuner.oracle.trials.values()]
    bad = [r for r in records if r["status"] != str(COMPLETED)]
    if bad or not records:  # belt and braces: on_trial_end raises first
        first = bad[0] if bad else {"trial_id": "-", "status": "none ran", "message": "no trial ran"}
        raise TuningFailed(
            f"tuning trial {first['trial_id']} ended {first['status']}: {last_line(first['message'])}",
            details=first.get("message") or "",
            trials=records,
        )
    best = tuner.oracle.get_best_trials(1)[0]
    return TuneResult(
        best_hp=plain_values(best.hyperparameters.values),
        trials=records,
        objective=objective,
        best_score=None if best.score is None else float(best.score),
        space=space_dict,
        tuner=tuner,
        best_model=tuner.best_model,
        best_epoch=tuner.best_epoch,
        validation_index=val_idx,
    )
