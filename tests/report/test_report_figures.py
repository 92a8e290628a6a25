"""The report's figures as drawn (issue 26): legends clear of the data they explain, thresholds as used."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from ms2img import plots
from ms2img.models.oplsda import oplsda


def _capture(monkeypatch) -> list[Figure]:
    """Figures at the moment they are saved (the plot functions close nothing but return only the path)."""
    seen: list[Figure] = []
    original = Figure.savefig

    def spy(self, *a, **k):
        seen.append(self)
        return original(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", spy)
    return seen


def test_permutation_legend_leaves_the_observed_markers_visible(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 30))
    y = np.repeat([0, 1], 20)
    x[:, :3] += 0.3 * y[:, None]  # a weak effect: a low observed Q2Y, where the old legend sat
    res = oplsda(x, y, permutations=20, seed=1)
    seen = _capture(monkeypatch)
    plots.plot_permutation(res, tmp_path / "perm.png", assay="DPPH")
    fig = seen[-1]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent(renderer)
    observed = ax.transData.transform([[1.0, res.r2y], [1.0, res.q2y]])
    for px, py in observed:
        assert not legend.contains(px, py)
    assert legend.y1 < ax.get_window_extent(renderer).y0  # below the axes
    width_in = fig.get_size_inches()[0]
    assert width_in * 96 <= 1100  # fits a report page at the size it is drawn


def test_oof_plot_draws_the_threshold_it_is_given_and_none_without(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    vals = rng.uniform(10, 90, 40)
    lab = np.where(vals < 40, 0, np.where(vals > 60, 1, -1))
    prob = np.clip((vals - 10) / 80 + rng.normal(0, 0.1, 40), 0, 1)
    seen = _capture(monkeypatch)
    plots.plot_oof_predictions(
        vals, prob, lab, tmp_path / "a.png", threshold=0.611, threshold_label="saved model's threshold 0.611",
        threshold_band=(0.3, 0.6),
    )  # fmt: skip
    labels = [t.get_text() for t in seen[-1].axes[0].get_legend().get_texts()]
    assert "saved model's threshold 0.611" in labels and "folds' thresholds" in labels
    assert not any(t.startswith("threshold 0.5") for t in labels)
    plots.plot_oof_predictions(vals, prob, lab, tmp_path / "b.png", threshold=None)
    labels = [t.get_text() for t in seen[-1].axes[0].get_legend().get_texts()]
    assert not any("threshold" in t for t in labels)
    ax = seen[-1].axes[0]
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1  # beside the points, not on them


@pytest.mark.parametrize("kind", ["plot", "heatmap"])
def test_compress_keeps_the_figure_and_makes_it_smaller(tmp_path, kind):
    import io

    from PIL import Image

    from ms2img.report.html import compress, drawn_size

    fig = plots.new_figure(6, 4)
    ax = fig.add_subplot()
    if kind == "plot":
        ax.plot(np.arange(50), np.random.default_rng(0).normal(size=50), label="a line")
        ax.legend()
    else:
        ax.imshow(np.random.default_rng(0).random((70, 75)) ** 3, cmap="magma")
    path = plots.save_figure(fig, tmp_path / "f.png")
    raw = path.read_bytes()
    small = compress(raw)
    assert len(small) < 0.7 * len(raw)
    a, b = Image.open(io.BytesIO(raw)), Image.open(io.BytesIO(small))
    assert a.size == b.size and b.mode == "P"
    diff = np.abs(np.asarray(a.convert("RGB"), dtype=int) - np.asarray(b.convert("RGB"), dtype=int))
    assert diff.mean() < 3  # no visible loss
    assert drawn_size(small) == (576, 384)  # 6 x 4 in at 96 CSS px per inch
    assert compress(b"not an image") == b"not an image"


def test_a_served_threshold_outside_the_folds_says_the_dots_were_scored_at_theirs():
    from ms2img.plots import decision_threshold

    value, label, band = decision_threshold(0.782, [0.17, 0.4, 0.655])
    assert value == 0.782 and band == (0.17, 0.655) and "outside the folds' thresholds" in label
    assert decision_threshold(0.5, [0.17, 0.655])[1] == "saved model's threshold 0.5"


def test_an_excel_assays_csv_labels_the_example_fingerprints_and_the_logged_dataset(tmp_path):
    """Excel's "CSV (Comma delimited)" is Windows-1252 and keeps accession 001 as typed: every reader of assays.csv
    takes it (pandas' default read crashed the tracked training run on an accession with é, and made 001 the number
    1, so the report's fingerprints lost their values)."""
    import mlflow
    from builders import temporary_store

    from ms2img.report.figures import example_fingerprints
    from ms2img.tracking import log_dataset

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "assays.csv").write_bytes("accession,DPPH\r\n001,10\r\nProbe_é_µ,90\r\n".encode("cp1252"))
    rng = np.random.default_rng(0)
    images = tmp_path / "images.npz"
    np.savez(images, images=rng.random((2, 14, 15)).astype(np.float32), ids=np.array(["001", "Probe_é_µ"]),
             x_edges=np.linspace(100, 1500, 16), y_edges=np.linspace(0, 1500, 15))  # fmt: skip
    shown = example_fingerprints(images, raw / "assays.csv", "DPPH", tmp_path)
    titles = [title for title, _ in shown]
    assert len(titles) == 2 and "Probe_é_µ" in titles[0] and "001" in titles[1] and "10" in titles[1], titles
    with temporary_store(tmp_path):
        experiment = mlflow.set_experiment("excel")  # by id: another test's active experiment may linger
        with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
            log_dataset(raw, "cohort")
        (logged,) = mlflow.get_run(run.info.run_id).inputs.dataset_inputs
        assert logged.dataset.name == "cohort" and '"name": "accession"' in logged.dataset.schema
