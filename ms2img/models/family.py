"""One saved form for every model family, so training, registration, serving and attribution agree.

A family model is a folder ``models/<assay>/<family>/``:

* ``model.json``: the card: ``assay``, ``family``, ``input`` ("image" or "features"), ``render`` (the
  RenderConfig dict the images were made with), ``threshold`` (decision threshold chosen on inner data),
  ``label_scaling`` (``min``, ``max``, ``low``, ``high`` fitted on the training accessions: the served class
  means what it meant at training time), ``metrics`` (cross-validated ``auc`` / ``balanced_accuracy`` /
  ``mcc`` / ``f1``, each ``mean, sd, ci_low, ci_high``), ``class_counts``, ``n_accessions``, ``files``,
  ``hyperparameters``, ``seconds``, ``matching`` (feature families: the merge rule) and anything else.
* the estimator: ``cnn`` and ``cnn-mt`` -> one ``.keras`` file per ensemble member (probability = their mean;
  a ``cnn-mt`` member holds the shared encoder and this assay's head only);
  ``rf-*`` -> ``model.skops`` (a scikit-learn estimator, loaded with skops' trusted types, no pickle);
  ``image-ensemble`` -> both and ``references.json`` (``{"networks", "forest", "references"}``; score = the mean of
  each member's quantile among its held-out training predictions, :mod:`ms2img.models.ensemble`).
* regression models (``labels.mode: regression``): ``mode: regression``, ``value_range`` (training values) and
  ``metrics`` of ``spearman`` / ``rmse`` / ``r2`` (``pooled`` too) instead of a threshold, scaling and class counts;
  :meth:`FamilyModel.predict_value` answers in the assay's units.
* ``accessions.txt``: the accessions the final model was fitted on (one per line), so a later comparison can
  tell which accessions a model has never seen.
* feature families: ``features.parquet``, the training features (column order of the model's input).

``predict_proba`` takes images ``(N, H, W)`` for image families and a feature matrix ``(N, F)`` of raw
heights (accessions x training features, 0 = absent) for feature families; ``log1p`` is applied inside.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ms2img.atomic import atomic_dir
from ms2img.errors import InputFileError
from ms2img.jsonio import to_jsonable

ENSEMBLE = "image-ensemble"  # the cnn and rf-image probabilities averaged (ms2img.models.ensemble)
MULTITASK = "cnn-mt"  # the column network trained on every assay of the cohort at once, this assay's head served
NETWORKS = ("cnn", MULTITASK)  # families whose model is a list of Keras networks alone
FAMILIES = ("cnn", MULTITASK, "rf-image", "rf-cosine", "rf-entropy", ENSEMBLE)
SIMPLICITY = {"rf-image": 0, "rf-cosine": 1, "rf-entropy": 2, "cnn": 3, MULTITASK: 4, ENSEMBLE: 5}  # ties: simpler
SKOPS_TRUSTED = ["sklearn.tree._tree.Tree", "ms2img.models.baselines.FlattenImages"]
CARD = "model.json"
REFERENCES = "references.json"  # image-ensemble: each member's sorted held-out predictions (its quantile scale)


def input_kind(family: str) -> str:
    """'image' for families that read fingerprints, 'features' for those on a merged feature table."""
    return "image" if family in (*NETWORKS, "rf-image", ENSEMBLE) else "features"


def has_network(family: str) -> bool:
    """Whether the family's model holds Keras networks (needs Keras to load; too costly to refit for attribution)."""
    return family in (*NETWORKS, ENSEMBLE)


@dataclass
class FamilyModel:
    """A fitted final model of one family with its card (see the module docstring)."""

    family: str
    card: dict[str, Any]
    estimator: Any  # list of keras models (cnn), a scikit-learn estimator, or both in a dict (image-ensemble)
    accessions: list[str] = field(default_factory=list)
    features: pd.DataFrame | None = None

    @property
    def assay(self) -> str:
        return str(self.card["assay"])

    @property
    def threshold(self) -> float:
        return float(self.card.get("threshold", 0.5))

    @property
    def mode(self) -> str:
        """``regression`` for a model of the raw assay value (card ``mode``; labels.mode), else ``classification``."""
        return str(self.card.get("mode", "classification"))

    def predict_value(self, x: np.ndarray) -> np.ndarray:
        """The predicted assay value per row, in the assay's units (a regression model; same inputs as
        :meth:`predict_proba`)."""
        if isinstance(self.estimator, list):  # keras networks answering in the assay's units
            from ms2img.models.cnn import predict_proba

            return np.mean([predict_proba(m, x) for m in self.estimator], axis=0).astype(np.float64)
        arr = np.asarray(x, dtype=np.float32)
        if input_kind(self.family) == "features":
            arr = np.log1p(np.clip(arr, 0, None))
        return np.asarray(self.estimator.predict(arr), dtype=np.float64)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(high activity) per row: images for image families, raw feature heights for feature families."""
        networks, forest, references = self._parts()
        if networks:  # Keras only for the families that hold networks
            from ms2img.models.cnn import predict_proba

            p_networks = np.mean([predict_proba(m, x) for m in networks], axis=0)
            if forest is None:
                return p_networks.astype(np.float32)
        if references is not None:
            from ms2img.models.ensemble import mean_quantile

            members = {"cnn": p_networks, "rf-image": forest.predict_proba(np.asarray(x, dtype=np.float32))[:, 1]}
            return mean_quantile(references, members).astype(np.float32)
        arr = np.asarray(x, dtype=np.float32)
        if input_kind(self.family) == "features":
            arr = np.log1p(np.clip(arr, 0, None))
        return forest.predict_proba(arr)[:, 1].astype(np.float32)

    def _parts(self) -> tuple[list[Any], Any, dict[str, np.ndarray] | None]:
        """``(networks, forest or scikit-learn estimator, references)`` of :attr:`estimator`, whatever the family."""
        if self.family in NETWORKS:
            return list(self.estimator), None, None
        if self.family == ENSEMBLE:
            return list(self.estimator["networks"]), self.estimator["forest"], self.estimator["references"]
        return [], self.estimator, None

    def save(self, folder: str | Path) -> Path:
        """Write the folder as one swap (a reader never sees half a model)."""
        folder = Path(folder)
        with atomic_dir(folder) as tmp:
            files = []
            networks, forest, references = self._parts()
            for i, model in enumerate(networks):
                name = f"member_{i}.keras"
                model.save(tmp / name)
                files.append(name)
            if forest is not None:
                import skops.io as sio

                sio.dump(forest, tmp / "model.skops")
                files.append("model.skops")
            if references is not None:  # the members' held-out predictions that rank new ones
                refs = {m: np.asarray(r).tolist() for m, r in references.items()}
                (tmp / REFERENCES).write_text(json.dumps(refs) + "\n", encoding="utf-8")
                files.append(REFERENCES)
            if self.features is not None:
                self.features.to_parquet(tmp / "features.parquet", index=False)
                files.append("features.parquet")
            (tmp / "accessions.txt").write_text("".join(f"{a}\n" for a in self.accessions), encoding="utf-8")
            card = {**self.card, "family": self.family, "input": input_kind(self.family), "files": files}
            # a score a fold could not give (NaN) is null: bare NaN is not JSON, and other tools refuse the card
            text = json.dumps(to_jsonable(card), indent=2, sort_keys=True, allow_nan=False)
            (tmp / CARD).write_text(text + "\n", encoding="utf-8")
        return folder

    @staticmethod
    def read_card(folder: str | Path) -> dict[str, Any]:
        """The card alone (no estimator loaded): what the registry needs to decide whether to register."""
        path = Path(folder) / CARD
        if not path.is_file():
            raise InputFileError(
                path, "no trained model here: run `ms2img train` for this assay (or `dvc repro`) first"
            )
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputFileError(path, f"unreadable model card ({exc.__class__.__name__}: {exc})") from None

    @classmethod
    def load(cls, folder: str | Path) -> FamilyModel:
        """Read a folder written by :meth:`save`; a missing or truncated file is an :class:`InputFileError`."""
        folder = Path(folder)
        card_path = folder / CARD
        card = cls.read_card(folder)
        family = str(card.get("family"))
        if family not in FAMILIES:
            raise InputFileError(card_path, f"unknown family {family!r}; known: {list(FAMILIES)}")
        try:
            networks, forest = [], None
            if has_network(family):
                import keras

                from ms2img.models import column_cnn  # noqa: F401 - registers PixelECDF for load_model

                networks = [
                    keras.saving.load_model(folder / f, compile=False) for f in card["files"] if f.endswith(".keras")
                ]
            if family not in NETWORKS:
                import skops.io as sio

                forest = sio.load(folder / "model.skops", trusted=SKOPS_TRUSTED)
            estimator = networks if family in NETWORKS else forest
            if family == ENSEMBLE:
                refs = json.loads((folder / REFERENCES).read_text(encoding="utf-8"))
                references = {m: np.asarray(r, dtype=np.float64) for m, r in refs.items()}
                estimator = {"networks": networks, "forest": forest, "references": references}
            features = pd.read_parquet(folder / "features.parquet") if "features.parquet" in card["files"] else None
            accessions = (folder / "accessions.txt").read_text(encoding="utf-8").split()
        except InputFileError:
            raise
        except Exception as exc:  # noqa: BLE001 - a truncated zip, a bad parquet: name the folder and the cause
            raise InputFileError(folder, f"unreadable {family} model ({exc.__class__.__name__}: {exc})") from None
        return cls(family=family, card=card, estimator=estimator, accessions=accessions, features=features)
