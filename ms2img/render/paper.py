"""The paper's rendering recipe, kept only for comparison and for pictures people look at.

MS2toImg (Park et al.) drew each sample as a matplotlib scatter: precursor m/z on x (100-1500), fragment m/z on
y (0-1500), point size from the scaled precursor intensity, grayscale colour from the scaled fragment intensity,
rendered at 600 dpi and resized to 75x70, 150x140 or 300x280 (TensorFlow's resize; PIL's here), with the region
above the diagonal masked. ``ms2img.render.core`` does the same by direct binning, thousands of times faster.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ms2img.render.config import RenderConfig, diagonal_mask, image_edges
from ms2img.render.scaling import scaled_intensities


def render_paper_recipe(
    events_of_one_sample: pd.DataFrame,
    width: int = 150,
    height: int = 140,
    dpi: int = 600,
    figsize: tuple[float, float] = (6.4, 4.8),
    size_min: float = 0.5,
    size_max: float = 20.0,
    x_range: tuple[float, float] = (100.0, 1500.0),
    y_range: tuple[float, float] = (0.0, 1500.0),
    png: bool = True,
) -> np.ndarray:
    """Render one sample the paper's way; returns float32 ``(H, W)`` in 0..1, row 0 = lowest fragment m/z.

    The figure is saved at ``dpi`` as PNG into an in-memory buffer and decoded again, as the paper's image files
    were (minus the disk); ``png=False`` reads the raw canvas instead (the recipe's drawing cost alone).
    ``size_min``/``size_max`` map the scaled precursor intensity to the marker area in points^2 (the paper does not
    give its sizes). ``figsize`` is matplotlib's default, which the paper presumably used.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    config = RenderConfig(width=width, height=height, x_range=x_range, y_range=y_range)
    df = events_of_one_sample
    precursor = pd.MultiIndex.from_arrays([df["replicate"].astype(str), df["feature_id"].astype(str)])
    p_scaled, f_scaled = scaled_intensities(
        pd.factorize(precursor)[0], df["precursor_intensity"].to_numpy(float), df["fragment_intensity"].to_numpy(float)
    )
    x = df["precursor_mz"].to_numpy(float)
    y = df["fragment_mz"].to_numpy(float)
    order = np.argsort(f_scaled, kind="stable")  # bright points on top

    fig = Figure(figsize=figsize, dpi=dpi, facecolor="black")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_facecolor("black")
    ax.set_axis_off()
    ax.set_xlim(*x_range)
    ax.set_ylim(*y_range)
    ax.scatter(
        x[order],
        y[order],
        s=size_min + size_max * p_scaled[order],
        c=f_scaled[order],
        cmap="gray",
        vmin=0.0,
        vmax=1.0,
        linewidths=0,
        marker="o",
    )
    if png:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi, facecolor="black")
        buf.seek(0)
        with Image.open(buf) as im:
            big = im.convert("L")
    else:
        canvas.draw()
        big = Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("L")
    small = big.resize((width, height), Image.Resampling.BILINEAR)
    img = (np.asarray(small, dtype=np.float32) / 255.0)[::-1].copy()  # row 0 = lowest fragment m/z
    img[diagonal_mask(*image_edges(config))] = 0.0
    return img
