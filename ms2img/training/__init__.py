"""Training: from labelled accessions to cross-validated, scored and fitted models of every family.

* :mod:`~ms2img.training.labels`: activity values -> low / middle / high (one :class:`LabelScaling` from params).
* :mod:`~ms2img.training.dataset`: one assay's inputs (images, feature tables, labels) and its repeated folds.
* :mod:`~ms2img.training.experiment`: the one cross-validation loop every family runs through, and the final refit.
* :mod:`~ms2img.training.scores`: the metric vocabulary (``SCORES``), intervals and paired tests on the same folds.
* :mod:`~ms2img.training.fold_metrics`: per-fold summaries, pooled ROC and confusion matrices for the figures.
* :mod:`~ms2img.training.stage`: the ``train@<assay>`` and ``resolution@<assay>`` DVC stages (files, plots, MLflow).

Nothing here imports :mod:`ms2img.serving`: editing how models are served never makes a trained model stale.
"""
