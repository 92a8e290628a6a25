"""``ms2img render`` (ms2img/commands/render.py): one and several sizes, bad arguments as one line, exit codes."""

from __future__ import annotations

import pytest
from render_builders import ALIGNED, write_events_dir

from ms2img.cli import main
from ms2img.render import ImageSet


def test_cli_render_single_and_multiple_sizes(tmp_path, capsys):
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED, "B": [("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)]})
    out = tmp_path / "img" / "75x70.npz"
    rc = main(["render", str(ev), "--out", str(out), "--size", "75x70", "--aggregation", "sum",
               "--png-dir", str(tmp_path / "png"), "--png-limit", "1"])  # fmt: skip
    assert rc == 0
    s = ImageSet.load(out)
    assert s.images.shape == (2, 70, 75) and s.config["aggregation"] == "sum"
    assert len(list((tmp_path / "png").glob("*.png"))) == 1
    rc = main(["render", str(ev), "--sizes", "75x70,300x280", "--out-dir", str(tmp_path / "multi"), "--per-replicate"])
    assert rc == 0
    assert ImageSet.load(tmp_path / "multi" / "300x280.npz").replicates.tolist() == ["r1", "r2", "r1"]
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--size", "150by140"], "150by140"),
        (["--aggregation", "median"], "aggregation"),
        (["--transform", "log2"], "transform"),
        (["--sizes", "75x70", "--out", "x.npz"], "--out-dir"),
    ],
)
def test_cli_bad_arguments_exit_2_with_one_line(tmp_path, capsys, extra, message):
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED})
    out = [] if "--out" in extra else ["--out", str(tmp_path / "o.npz")]
    assert main(["render", str(ev), *out, *extra]) == 2
    assert not (tmp_path / "o.npz").exists()
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_empty_events_dir(tmp_path, capsys):
    (tmp_path / "events").mkdir()
    assert main(["render", str(tmp_path / "events"), "--out", str(tmp_path / "o.npz")]) == 2
    assert "no *.parquet" in capsys.readouterr().err


def test_cli_rejects_a_bad_png_gamma(tmp_path, capsys):
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED})
    assert main(["render", str(ev), "--out", str(tmp_path / "o.npz"), "--png-gamma", "0"]) == 2
    assert "--png-gamma" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


def test_cli_render_says_which_settings_apply(tmp_path, monkeypatch, capsys):
    """Outside a project there is no params.yaml: the run says so, and every "wrote" line names the transform."""
    ev = write_events_dir(tmp_path / "events", {"A": ALIGNED})
    monkeypatch.chdir(tmp_path)
    assert main(["render", str(ev), "--out", str(tmp_path / "o.npz"), "--size", "75x70"]) == 0
    out = capsys.readouterr().out
    assert "no params.yaml here: the renderer's built-in defaults" in out
    assert "transform=none" in out  # RenderConfig's own default (the paper's linear scale), not params' sqrt
