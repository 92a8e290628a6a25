"""MS2toImg rendering: LC-MS/MS fragmentation events -> grayscale "molecular fingerprint" images.

The paper draws a matplotlib scatter at 600 dpi and resizes it (kept for comparison in :mod:`.paper`). We keep its
semantics but bin directly (numpy, or numba-compiled loops when numba is installed), so the cost is linear in the
number of fragments and a sample of 150,000 fragments renders in about a millisecond:

* precursor intensity scaled to 0..1 within the image's sample (divided by the sample's largest precursor);
* fragment intensity scaled to 0..1 within its precursor (divided by that precursor's largest fragment);
* pixel value = product of the two, aggregated per pixel by ``max`` (default) or ``sum``;
* x = precursor m/z over ``x_range`` in ``width`` bins, y = fragment m/z over ``y_range`` in ``height`` bins
  (half-open ranges and bins, ``[lo, hi)``); events outside the ranges are dropped; pixels entirely above the
  diagonal (fragment > precursor, physically impossible) are set to zero after binning.

Row index = fragment bin ascending (row 0 = lowest fragment m/z), column = precursor bin ascending. Bin edges are
stored with the tensors (:class:`ImageSet`) so each pixel maps back to an m/z box.

Modules, each importing only those above it:

* :mod:`.config`   ``RenderConfig``, ``parse_size``/``format_size``, bin edges, the diagonal mask
* :mod:`.imageset` ``ImageSet`` (``.npz`` I/O), ``concat_imagesets``, ``images_path`` (``data/images/<WxH>.npz``)
* :mod:`.scaling`  the two intensity scalings and ``replicate_mean`` (the replicate average)
* :mod:`.kernels`  numba-compiled per-row loops (``set_kernel``, ``warm_up``)
* :mod:`.arrow`    fast codes for Arrow-string and categorical id columns
* :mod:`.core`     binning: ``render_arrays``, ``render_events``
* :mod:`.pictures` PNGs for people: ``to_uint8``, ``save_png``, ``save_pngs``
* :mod:`.files`    events folders: ``render_files``, ``render_dir``, ``render_dir_sizes``, atomic output folders
* :mod:`.paper`    the paper's matplotlib recipe, for comparison only

This package re-exports the public names, so ``from ms2img.render import ...`` is all callers need.
"""

from __future__ import annotations

from ms2img.render.config import (
    AGGREGATIONS,
    PAPER_SIZES,
    TRANSFORMS,
    RenderConfig,
    diagonal_mask,
    format_size,
    image_edges,
    parse_size,
)
from ms2img.render.core import RENDER_COLUMNS, render_arrays, render_events
from ms2img.render.files import (
    check_output_folder,
    render_dir,
    render_dir_sizes,
    render_files,
    write_image_folder,
    write_png_folder,
)
from ms2img.render.imageset import IMAGES_ROOT, ImageSet, concat_imagesets, images_path
from ms2img.render.kernels import KERNELS, NUMBA_MIN_ROWS, set_kernel, warm_up
from ms2img.render.paper import render_paper_recipe
from ms2img.render.pictures import PNG_GAMMA, save_png, save_pngs, to_uint8
from ms2img.render.scaling import MERGE_MZ_DECIMALS, replicate_mean, scaled_intensities

__all__ = [
    "AGGREGATIONS",
    "IMAGES_ROOT",
    "KERNELS",
    "MERGE_MZ_DECIMALS",
    "NUMBA_MIN_ROWS",
    "PAPER_SIZES",
    "PNG_GAMMA",
    "RENDER_COLUMNS",
    "TRANSFORMS",
    "ImageSet",
    "RenderConfig",
    "check_output_folder",
    "concat_imagesets",
    "diagonal_mask",
    "format_size",
    "image_edges",
    "images_path",
    "parse_size",
    "render_arrays",
    "render_dir",
    "render_dir_sizes",
    "render_events",
    "render_files",
    "render_paper_recipe",
    "replicate_mean",
    "save_png",
    "save_pngs",
    "scaled_intensities",
    "set_kernel",
    "to_uint8",
    "warm_up",
    "write_image_folder",
    "write_png_folder",
]
