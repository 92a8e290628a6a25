"""Which compounds drive an assay's predictions: attribution to m/z boxes, drivers, library annotation.

* :mod:`~ms2img.explain.attribution`: occlusion over m/z boxes (image families), permutation importance (feature
  families), :func:`explain_one` for serving.
* :mod:`~ms2img.explain.drivers`: boxes -> precursors of the training exports, grouped across accessions.
* :mod:`~ms2img.explain.annotation`: Flash entropy search against PhenolicsDB or any MSP/MGF library.
* :mod:`~ms2img.explain.translator`: an optional HTTP client for a de novo structure translator.
* :mod:`~ms2img.explain.pipeline`: :func:`explain_assay`, what ``ms2img explain`` runs.
"""

from ms2img.explain.attribution import (
    OcclusionResult,
    explain_images,
    explain_one,
    occlusion,
    permutation_importance,
    window_boxes,
)

__all__ = [
    "OcclusionResult",
    "explain_images",
    "explain_one",
    "occlusion",
    "permutation_importance",
    "window_boxes",
]
