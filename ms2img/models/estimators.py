"""Every model family as a scikit-learn classifier with its own decision threshold, so one CV loop serves all.

``fit(X, y)`` does all selection inside the data it is given (nested): the CNN tunes on an inner stratified
validation split, trials ranked and stopped early on the inner loss (``tune.objective``); the forests choose
their grid point and threshold by out-of-bag predictions. ``predict_proba`` and ``threshold_`` are what the outer
loop scores. Nothing here sees a test fold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, is_classifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from ms2img.errors import ConfigError
from ms2img.models.baselines import FlattenImages
from ms2img.models.family import ENSEMBLE, NETWORKS
from ms2img.training.fold_metrics import predict_labels
from ms2img.training.scores import choose_threshold

log = logging.getLogger(__name__)


class ForestGrid(BaseEstimator):
    """What both forests share (:class:`ForestClassifier`, :class:`ms2img.models.regressors.ForestRegressor`): the
    grid of tree counts x ``max_features``, the seed, and flattening images first (zero columns dropped)."""

    def __init__(
        self,
        n_estimators: Sequence[int] = (300,),
        max_features: Sequence[Any] = ("sqrt",),
        flatten: bool = False,
        seed: int = 0,
        n_jobs: int = 1,
    ):
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.flatten = flatten
        self.seed = seed
        self.n_jobs = n_jobs

    def _forest(self, forest_class: type, n_trees: int, max_features: Any, **kwargs: Any) -> Any:
        rf = forest_class(
            n_estimators=int(n_trees),
            max_features=max_features,
            oob_score=True,
            random_state=int(self.seed),
            n_jobs=int(self.n_jobs),
            **kwargs,
        )
        return Pipeline([("flatten", FlattenImages(drop_zero_columns=True)), ("rf", rf)]) if self.flatten else rf


def group_out_of_bag(forest: Any, X: Any, groups: Any) -> np.ndarray:
    """P(high) (a regressor: the value) per row from the trees that drew no row of its group (NaN where every
    tree drew one).

    A forest's own out-of-bag prediction of a replicate image comes from trees that trained on its sibling
    replicates, near-copies of it: optimistic. ``forest`` is a fitted pipeline or bare forest (bootstrapped)."""
    if isinstance(forest, Pipeline):
        X, forest = forest[:-1].transform(X), forest[-1]
    X = np.asarray(X, dtype=np.float32)
    codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    classifier = is_classifier(forest)
    total, count = np.zeros(len(codes)), np.zeros(len(codes))
    for tree, drawn in zip(forest.estimators_, forest.estimators_samples_, strict=True):
        held = ~np.isin(codes, codes[drawn])
        if held.any():
            total[held] += tree.predict_proba(X[held])[:, 1] if classifier else tree.predict(X[held])
            count[held] += 1
    with np.errstate(invalid="ignore"):
        return total / count


class ForestClassifier(ClassifierMixin, ForestGrid):
    """Random forest whose grid point is chosen by out-of-bag AUC and whose decision threshold comes from its
    out-of-bag predictions (``choose_threshold``): no inner folds."""

    def _make(self, n_trees: int, max_features: Any) -> Any:
        return self._forest(RandomForestClassifier, n_trees, max_features, class_weight="balanced_subsample")

    def fit(self, X: Any, y: Any, groups: Any = None) -> ForestClassifier:
        """``groups``: the accession of each row when an accession has several images; out-of-bag then means out
        of bag with all of its accession's images (:func:`group_out_of_bag`)."""
        y = np.asarray(y).astype(int)
        best = None
        for n in self.n_estimators:
            for mf in self.max_features:
                model = self._make(n, mf).fit(X, y)
                rf = model[-1] if self.flatten else model
                oob = rf.oob_decision_function_[:, 1] if groups is None else group_out_of_bag(model, X, groups)
                oob = np.nan_to_num(oob, nan=0.5)
                auc = roc_auc_score(y, oob) if len(np.unique(y)) == 2 else 0.5
                if best is None or auc > best[0]:
                    best = (auc, model, oob, {"n_estimators": int(n), "max_features": mf})
        self.oob_auc_, self.model_, oob, self.best_params_ = best
        self.threshold_ = choose_threshold(y, oob)
        self.inner_proba_ = oob  # held-out (out-of-bag) P(high) per training row
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.model_.predict_proba(X)

    def predict(self, X: Any) -> np.ndarray:
        return predict_labels(self.predict_proba(X)[:, 1], self.threshold_)


def cross_fit_folds(
    labels: np.ndarray, groups: np.ndarray | None, members: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The cross-fitted members' inner folds ``(train, held out)``: a stratified ``max(2, members)``-fold split
    (fewer when the rarer class has fewer rows, or accessions when ``groups``: an accession's replicate images never
    sit on both sides), the first ``members`` of its folds."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    units = labels if groups is None else labels[np.unique(groups, return_index=True)[1]]  # one per accession
    fewest = int(np.bincount(units, minlength=2).min())  # a small cohort: inner folds as its rarer class allows
    if fewest < 2:
        raise ConfigError(
            f"cnn.cross_fit: a training part holds {fewest} {'image' if groups is None else 'accession'}(s) of "
            "one class; cross-fitting needs 2 (set cnn.cross_fit: false, or drop cnn from train.families)"
        )
    n_splits = min(max(2, int(members)), fewest)
    splitter = (StratifiedKFold if groups is None else StratifiedGroupKFold)(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(labels, labels, groups))[: int(members)]


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """The tuned CNN: Keras Tuner random search on inner splits of ``X``; the probability is its members' mean.

    ``architecture``: "column" (:class:`ms2img.models.tuning.ColumnHyperModel`, pixel ECDF and intensity channels
    fitted on ``X``), "compact" (:class:`~ms2img.models.tuning.CompactHyperModel`, pixels standardised with
    statistics of ``X``) or "paper" (the paper's network and search space). Each inner split ranks the trials by
    ``objective`` and stops early on it (not before ``min_epochs``, best weights restored).

    ``cross_fit`` (the default in params.yaml): ``ensemble`` members, each tuned and trained on its own fold of an
    inner stratified ``max(2, ensemble)``-fold split of ``X`` (fewer folds and members when the rarer class has
    fewer images than that); the decision threshold comes from the members' own
    held-out predictions, so the threshold and the probability come from the same networks. Otherwise: one inner
    split (``validation_split``) tunes and sets the threshold, then ``ensemble`` networks of the best trial's
    values are refitted on all of ``X`` for its epoch count (``ensemble=0`` keeps the inner network itself).

    Multi-task (the ``cnn-mt`` family; column network, cross-fitted): ``y`` of shape ``(N, T)``, column 0 this
    assay's 0/1 labels and the others companion assays' labels (NaN: unknown or middle band). The encoder is shared,
    each assay has its own head, the inner loss that stops training counts column 0 only, and the members keep
    column 0's head: a companion assay shapes the encoder, never this assay's score directly.
    """

    def __init__(
        self,
        architecture: str = "column",
        space: Mapping[str, Any] | None = None,
        trials: int = 1,
        max_epochs: int = 20,
        patience: int = 4,
        batch_size: int = 32,
        validation_split: float = 0.25,
        ensemble: int = 3,
        cross_fit: bool = True,
        passes_per_epoch: int = 4,
        objective: str = "val_loss",
        min_epochs: int = 5,
        intensity_weight: float = 0.1,
        relevance_power: float = 1.0,
        seed: int = 0,
        on_trial_end: Callable[[dict], None] | None = None,
        callbacks: Sequence[Any] = (),
    ):
        self.architecture = architecture
        self.space = space
        self.trials = trials
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.validation_split = validation_split
        self.ensemble = ensemble
        self.cross_fit = cross_fit
        self.passes_per_epoch = passes_per_epoch
        self.objective = objective
        self.min_epochs = min_epochs
        self.intensity_weight = intensity_weight
        self.relevance_power = relevance_power
        self.seed = seed
        self.on_trial_end = on_trial_end
        self.callbacks = callbacks

    def _hypermodel(self, x: np.ndarray, tasks: int = 1, relevance_power: float | None = None):
        """The architecture's hypermodel on training images ``x`` (``relevance_power``: overrides the estimator's)."""
        from ms2img.models.cnn import pixel_statistics
        from ms2img.models.column_cnn import ecdf_knots, pixel_scale
        from ms2img.models.tuning import ColumnHyperModel, CompactHyperModel, Ms2ImgHyperModel

        shape = x.shape[1:]
        if tasks > 1 and (self.architecture != "column" or not self.cross_fit or self.objective != "val_loss"):
            raise ConfigError(
                "multi-task training (cnn-mt) needs cnn.architecture: column, cnn.cross_fit: true and "
                f"tune.objective: val_loss; got {self.architecture}, {self.cross_fit}, {self.objective}"
            )
        if self.architecture == "paper":
            return Ms2ImgHyperModel(shape, self.space, self.batch_size)
        if self.architecture == "compact":
            return CompactHyperModel(shape, self.space, self.batch_size, pixel_stats=pixel_statistics(x))
        if self.architecture == "column":
            return ColumnHyperModel(
                shape,
                self.space,
                self.batch_size,
                ecdf_knots(x),
                pixel_scale(x, float(self.intensity_weight)),
                int(self.passes_per_epoch),
                tasks,
                float(self.relevance_power if relevance_power is None else relevance_power),
            )
        raise ConfigError(f"cnn.architecture must be column, compact or paper; got {self.architecture!r}")

    def _tune(
        self, x: np.ndarray, y: np.ndarray, hypermodel: Any, seed: int, validation: Any = None, continuous: bool = False
    ) -> Any:
        """One Keras Tuner search on ``x`` (inner split ``validation``, or a stratified ``validation_split``), trials
        ranked and stopped early on ``objective``; ``continuous``: regression targets, always ranked by the inner
        loss (AUC and accuracy mean nothing there) and without class weights."""
        import tempfile

        import keras

        from ms2img.models.tuning import OBJECTIVES, tune_cnn

        objective = "val_loss" if continuous else self.objective
        stop = keras.callbacks.EarlyStopping(
            monitor=objective,
            mode=OBJECTIVES.get(objective, "max"),
            patience=int(self.patience),
            restore_best_weights=True,
            start_from_epoch=int(self.min_epochs),
        )
        with tempfile.TemporaryDirectory(prefix="ms2img-kt-") as tmp:
            return tune_cnn(
                x,
                y,
                trials=int(self.trials),
                epochs=int(self.max_epochs),
                seed=int(seed),
                directory=tmp,
                validation_split=float(self.validation_split),
                batch_size=int(self.batch_size),
                objective=objective,
                hypermodel=hypermodel,
                callbacks=[stop, *self.callbacks],
                on_trial_end=self.on_trial_end,
                validation=validation,
                balance_classes=not continuous and y.ndim == 1,
                continuous=continuous,
            )

    def _fit_cross(self, x: np.ndarray, y: np.ndarray, hypermodel: Any, groups: np.ndarray | None) -> None:
        """Members on the folds of an inner split (grouped when ``groups``); the threshold from their own held-out
        predictions."""
        from ms2img.models.cnn import predict_proba

        n_members = max(1, int(self.ensemble))
        labels = (y if y.ndim == 1 else y[:, 0]).astype(int)  # this assay's classes (column 0 when multi-task)
        splits = cross_fit_folds(labels, groups, n_members, int(self.seed))
        held_out = np.full(len(y), np.nan)
        members, results = [], []
        inputs = hypermodel.prepare(x)
        for k, (train, val) in enumerate(splits):
            result = self._tune(inputs, y, hypermodel, int(self.seed) + 7919 * k, validation=(train, val))
            members.append(hypermodel.served(result.best_model))
            held_out[val] = predict_proba(members[-1], x[val])
            results.append(result)
        seen = np.isfinite(held_out)
        self.threshold_ = choose_threshold(labels[seen], held_out[seen])
        self.inner_proba_ = held_out  # held-out P(high) per training row (NaN: in no member's inner fold)
        self.best_hp_ = results[0].best_hp
        self.inner_score_ = float(np.mean([r.best_score for r in results]))
        self.best_epoch_ = int(np.median([r.best_epoch for r in results]))
        self.history_ = results[0].tuner.best_history  # the first member's curves (its inner fold)
        self.members_ = members

    def fit(self, X: Any, y: Any, groups: Any = None) -> CNNClassifier:
        """``groups``: the accession of each row when an accession has several images (``render.per_replicate``);
        the inner splits then keep an accession's replicate images on one side."""
        import keras

        from ms2img.models.cnn import as_model_input, class_weights, predict_proba
        from ms2img.models.tuning import stratified_split

        x = as_model_input(X)
        y = np.asarray(y, dtype=float)
        if y.ndim == 1:
            y = y.astype(int)
        elif not np.isin(y[:, 0], (0, 1)).all():
            raise ConfigError("multi-task targets: column 0 (the assay being modelled) must be 0 or 1 on every row")
        hypermodel = self._hypermodel(x, tasks=1 if y.ndim == 1 else y.shape[1])
        self.classes_ = np.array([0, 1])
        groups = None if groups is None else np.asarray(groups)
        if self.cross_fit:
            self._fit_cross(x, y, hypermodel, groups)
            return self
        inputs = hypermodel.prepare(x)
        validation = stratified_split(y, float(self.validation_split), int(self.seed), groups)  # grouped if given
        result = self._tune(inputs, y, hypermodel, int(self.seed), validation=validation)
        self.best_hp_, self.inner_score_ = result.best_hp, result.best_score
        self.best_epoch_ = max(int(result.best_epoch), min(int(self.min_epochs), int(self.max_epochs)))
        self.history_ = result.tuner.best_history  # per-epoch curves of the chosen network (inner split)
        val = result.validation_index
        self.inner_proba_ = np.full(len(y), np.nan)  # held-out P(high) of the inner split's rows
        self.inner_proba_[val] = predict_proba(result.best_model, inputs[val])
        self.threshold_ = choose_threshold(y[val], self.inner_proba_[val])
        members = [] if int(self.ensemble) > 0 else [hypermodel.served(result.best_model)]
        for k in range(int(self.ensemble)):
            keras.utils.set_random_seed(int(self.seed) + 7919 * (k + 1))
            hp = fixed_hp(result.tuner, result.best_hp)
            model = hypermodel.build(hp)
            hypermodel.adapt(model, inputs, y)
            model.fit(
                inputs,
                y,
                epochs=self.best_epoch_ * int(getattr(hypermodel, "passes_per_epoch", 1)),
                batch_size=int(self.batch_size),
                class_weight=class_weights(y),
                callbacks=list(self.callbacks),
                shuffle=True,
                verbose=0,
            )
            members.append(hypermodel.served(model))
        self.members_ = members
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        from ms2img.models.cnn import predict_proba

        p = np.mean([predict_proba(m, X) for m in self.members_], axis=0)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return predict_labels(self.predict_proba(X)[:, 1], self.threshold_)


def fixed_hp(tuner: Any, values: Mapping[str, Any]):
    """A HyperParameters object holding exactly ``values`` (to rebuild the best trial's network)."""
    hp = tuner.oracle.get_space()
    for k, v in values.items():
        if k in hp.values:
            hp.values[k] = v
    return hp


def make_estimator(family: str, params: Mapping[str, Any], seed: int, on_trial_end=None) -> BaseEstimator:
    """The estimator of ``family`` configured from params.yaml (``cnn``/``tune`` or ``baselines``)."""
    if family == ENSEMBLE:
        from ms2img.models.ensemble import ImageEnsembleClassifier

        return ImageEnsembleClassifier(
            make_estimator("cnn", params, seed, on_trial_end), make_estimator("rf-image", params, seed)
        )
    if family in NETWORKS:  # cnn-mt: the same network settings; fit_family gives it the companion assays' labels
        c, t = params["cnn"], params["tune"]
        return CNNClassifier(  # every value from params.yaml: defaults live there, not here
            architecture=str(c["architecture"]),
            space=t.get("space"),
            trials=int(t["trials"]),
            max_epochs=int(c["epochs"]),
            patience=int(c["patience"]),
            batch_size=int(c["batch_size"]),
            validation_split=float(t["validation_split"]),
            ensemble=int(c["ensemble"]),
            cross_fit=bool(c["cross_fit"]),
            passes_per_epoch=int(c["passes_per_epoch"]),
            objective=str(t["objective"]),
            min_epochs=int(c["min_epochs"]),
            intensity_weight=float(c.get("intensity_weight", 1.0)),  # absent: a project from before the key, as it ran
            relevance_power=float(c.get("relevance_power", 0.0)),  # absent: as above
            seed=seed,
            on_trial_end=on_trial_end,
        )
    b = params["baselines"]
    return ForestClassifier(
        n_estimators=tuple(b["rf_trees"]),
        max_features=tuple(b["rf_max_features"]),
        flatten=family == "rf-image",
        seed=seed,
    )
