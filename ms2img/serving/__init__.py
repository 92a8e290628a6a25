"""Serving: a registered family model answering raw-peak requests over HTTP.

* :mod:`~ms2img.serving.request`: the one request check (columns, rows, fragments) and events <-> request.
* :mod:`~ms2img.serving.predictor`: the pyfunc every registered family is (render or match, predict, answer).
* :mod:`~ms2img.serving.pyfunc_model`: the MLflow models-from-code entry point that builds that pyfunc.
* :mod:`~ms2img.serving.domain`: how far a request lies from the training accessions (applicability domain).
* :mod:`~ms2img.serving.app`: MLflow's scoring app behind request-size guards, for ``ms2img serve``.
"""
