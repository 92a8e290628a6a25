"""MLflow models-from-code entry point of every registered ms2img model (``python_model=<this file>``).

MLflow copies this file into the model and executes it at load time; the ``ms2img`` package travels with the model
in its ``code/`` folder (``code_paths``), and the fitted estimator is plain files (``.keras`` / ``.skops``), so no
pickle is ever loaded from the artifact store.
"""

import mlflow

from ms2img.serving.predictor import FamilyPyfunc

mlflow.models.set_model(FamilyPyfunc())
