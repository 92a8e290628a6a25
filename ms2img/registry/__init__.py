"""Model registry: one registered model ``ms2img-<assay>`` per assay, one version per trained family model.

Every ``models/<assay>/<family>/`` folder (``FamilyModel``) is registered as a version of ``ms2img-<assay>``
(tag ``family``), logged from code (``ms2img/serving/pyfunc_model.py``) with the ``ms2img`` package in
``code_paths``, its
files as artifacts (``.keras`` / ``.skops``, no pickle), a real input signature, an input example, an
applicability-domain reference and a model card as the version's description.

``@champion`` follows ``reports/<assay>/selection.json``'s winner, safely:

* **new accessions** (in the challenger's ``oof.csv`` but not in the champion's ``accessions.txt``): both models
  are scored on exactly those accessions, labelled with the champion's stored label scaling, each without having
  seen them (the champion predicts them through its served pyfunc, the challenger brings its out-of-fold
  predictions). The challenger wins only when its AUC exceeds the champion's by more than ``z`` standard errors
  of the AUC difference (stratified paired bootstrap over the accessions), a margin taken from the measured
  uncertainty, not a fixed number.
* **no new accessions** (first training, same data): the selection's paired comparison decides (its winner, ties
  to the simpler model); a refit of the champion's own family replaces it when its cross-validated AUC is not lower.

A rejected challenger keeps the ``challenger`` alias with the reason tagged (``promotion.rejected``). Promotion is
a compare-and-set: it runs under a file lock next to a local store, and the champion is re-read right before the
alias moves; if it changed, the comparison is redone against the new champion.

Modules: :mod:`~ms2img.registry.store` (names, client, aliases, tags, the lock), :mod:`~ms2img.registry.card`
(model card), :mod:`~ms2img.registry.registration` (:func:`register_family`), :mod:`~ms2img.registry.decision`
(the rule, :class:`PromotionDecision`), :mod:`~ms2img.registry.promotion` (:func:`promote_version`,
:func:`promote_assay`) and :mod:`~ms2img.registry.rollback`.
"""

from ms2img.registry.card import model_card, registered_model_description
from ms2img.registry.decision import (
    DEFAULT_Z,
    MIN_PER_CLASS,
    PromotionDecision,
    paired_auc_difference,
    smoke_predict,
)
from ms2img.registry.promotion import champion_auc, promote_assay, promote_version
from ms2img.registry.registration import EXAMPLE_ROWS, PACKAGE_DIR, PYFUNC_CODE, register_family
from ms2img.registry.rollback import rollback
from ms2img.registry.store import (
    AUC_TAG,
    CHALLENGER,
    CHAMPION,
    CODE_TAG,
    CONTENT_TAG,
    DATA_TAG,
    FAMILY_TAG,
    REJECTED_TAG,
    SCALING_TAG,
    content_hash,
    mlflow_client,
    model_name,
    registry_lock,
    require_alias,
    require_model,
)

__all__ = [
    "AUC_TAG",
    "CHALLENGER",
    "CHAMPION",
    "CODE_TAG",
    "CONTENT_TAG",
    "DATA_TAG",
    "DEFAULT_Z",
    "EXAMPLE_ROWS",
    "FAMILY_TAG",
    "MIN_PER_CLASS",
    "PACKAGE_DIR",
    "PYFUNC_CODE",
    "REJECTED_TAG",
    "SCALING_TAG",
    "PromotionDecision",
    "champion_auc",
    "content_hash",
    "mlflow_client",
    "model_card",
    "model_name",
    "paired_auc_difference",
    "promote_assay",
    "promote_version",
    "register_family",
    "registered_model_description",
    "registry_lock",
    "require_alias",
    "require_model",
    "rollback",
    "smoke_predict",
]
