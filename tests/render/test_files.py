"""ms2img.render.files: events folders rendered file by file, and atomic output folders (kill -9 included)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from render_builders import ALIGNED, COARSE, events, random_sample, write_events_dir

from ms2img.cli import main
from ms2img.errors import ConfigError, InputFileError
from ms2img.io.schema import write_events
from ms2img.render import ImageSet, RenderConfig, render_dir, render_dir_sizes, render_events, save_pngs


def test_render_dir_errors(tmp_path):
    with pytest.raises(ConfigError, match="no \\*.parquet"):
        render_dir(tmp_path, tmp_path / "out.npz", RenderConfig())
    with pytest.raises(ConfigError, match="does not exist"):
        render_dir(tmp_path / "nope", tmp_path / "out.npz", RenderConfig())
    (tmp_path / "bad.parquet").write_text("garbage")
    with pytest.raises(InputFileError, match="bad.parquet"):
        render_dir(tmp_path, tmp_path / "out.npz", RenderConfig())


def test_render_dir_reads_files_one_by_one_and_sorts(tmp_path):
    ev = write_events_dir(tmp_path / "events", {"B": [("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)], "A": ALIGNED})
    s = render_dir(ev, tmp_path / "img.npz", RenderConfig(**COARSE), progress=False)
    assert list(s.ids) == ["A", "B"]
    back = ImageSet.load(tmp_path / "img.npz")
    whole = render_events(
        pd.concat([events(ALIGNED), events([("B", "r1", "g1", 700.0, 5.0, 600.0, 1.0)])]),
        RenderConfig(**COARSE),
        progress=False,
    )
    np.testing.assert_array_equal(back.images, whole.images)
    written = render_dir_sizes(ev, tmp_path / "multi", RenderConfig(), ["75x70", "150x140"], progress=False)
    assert sorted(written) == ["150x140", "75x70"]
    assert ImageSet.load(written["75x70"]).images.shape == (2, 70, 75)


def test_render_dir_rejects_an_accession_split_over_files(tmp_path):
    ev = write_events_dir(tmp_path / "events", {"a1": ALIGNED[:1], "a2": ALIGNED[1:]})
    with pytest.raises(InputFileError, match="also appears"):
        render_dir(ev, tmp_path / "img.npz", RenderConfig(), progress=False)


def test_render_dir_with_no_events_at_all(tmp_path):
    ev = write_events_dir(tmp_path / "events", {"A": []})
    with pytest.raises(InputFileError, match="no MS/MS events"):
        render_dir(ev, tmp_path / "img.npz", RenderConfig(), progress=False)
    assert not (tmp_path / "img.npz").exists()


def cohort_dir(path, n_accessions: int = 4, n_prec: int = 60, n_frag: int = 8, seed: int = 0):
    """An events folder of ``n_accessions`` one-replicate accessions, one Parquet file each."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n_accessions):
        acc = f"ACC{i:03d}"
        write_events(random_sample(rng, n_prec, n_frag, accession=acc), path / f"{acc}.parquet")
    return path


def folder_state(folder) -> dict[str, str] | None:
    """What a reader sees in an output folder: each visible file's content digest (``.npz`` by its arrays, whose zip
    timestamps differ between runs; others by their bytes); None when the folder does not exist."""
    import hashlib

    if not folder.exists():
        return None
    state = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_dir() or any(part.startswith(".") for part in rel.split("/")):
            continue
        h = hashlib.sha256()
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                for key in sorted(z.files):
                    h.update(key.encode() + np.ascontiguousarray(z[key]).tobytes())
        else:
            h.update(p.read_bytes())
        state[rel] = h.hexdigest()
    return state


def hidden_entries(*folders) -> list[str]:
    return sorted(str(p) for f in folders if f.exists() for p in f.rglob(".*"))


def render_args(ev, images, pngs, variant: str) -> list[str]:
    """Two renderings that differ in every file: ``old`` (linear, max) and ``new`` (sqrt, sum)."""
    kw = ["--transform", "none", "--aggregation", "max"] if variant == "old" else ["--transform", "sqrt"]
    kw += [] if variant == "old" else ["--aggregation", "sum"]
    return ["render", str(ev), "--sizes", "40x35,75x70", "--out-dir", str(images), "--png-dir", str(pngs), *kw]


def test_cli_sizes_replace_the_folder_keep_other_sizes_and_refuse_foreign_files(tmp_path, capsys):
    ev = cohort_dir(tmp_path / "events", n_accessions=3)
    images, pngs = tmp_path / "out" / "images", tmp_path / "out" / "pngs"
    assert main(render_args(ev, images, pngs, "old")) == 0
    old = folder_state(images)
    assert sorted(old) == ["40x35.npz", "75x70.npz"] and len(folder_state(pngs)) == 6
    # a later run of one size: that size is new, the other carried over; its PNGs (one size: at the top of the
    # PNG folder, as before) are only this run's
    args = ["render", str(ev), "--sizes", "75x70", "--out-dir", str(images), "--png-dir", str(pngs)]
    assert main([*args, "--transform", "sqrt", "--png-limit", "1"]) == 0
    now = folder_state(images)
    assert now["40x35.npz"] == old["40x35.npz"] and now["75x70.npz"] != old["75x70.npz"]
    assert sorted(folder_state(pngs)) == [*(f"40x35/ACC00{i}.png" for i in range(3)), "ACC000.png"]
    assert hidden_entries(tmp_path / "out") == []
    # anything render did not write makes it refuse (it replaces the folder as a whole), before rendering
    (images / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(render_args(ev, images, pngs, "new")) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "folder of its own" in err and len(err.strip().splitlines()) == 1
    assert folder_state(images) == {**now, "notes.txt": folder_state(images)["notes.txt"]}
    (images / "notes.txt").unlink()
    (pngs / "40x35" / "keep.txt").write_text("mine")
    assert main(render_args(ev, images, pngs, "new")) == 2
    assert "keep.txt" in capsys.readouterr().err


def test_cli_single_size_png_folder_replaced_and_leftovers_of_killed_runs_cleaned(tmp_path):
    ev = cohort_dir(tmp_path / "events", n_accessions=3)
    out, pngs = tmp_path / "img" / "75x70.npz", tmp_path / "png"
    assert main(["render", str(ev), "--out", str(out), "--size", "75x70", "--png-dir", str(pngs)]) == 0
    assert sorted(folder_state(pngs)) == ["ACC000.png", "ACC001.png", "ACC002.png"]
    # what a killed run leaves: a staging copy and a retired copy of each folder, an interrupted .npz write
    for leftover in (".png.staging-x1", ".png.retired-x2", ".images.staging-x3"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "ACC000.png").write_bytes(b"half")
    (out.parent / ".75x70.npz.abc123.tmp.npz").write_bytes(b"half")
    (pngs / ".ACC000.png.def456.tmp.png").write_bytes(b"half")
    args = ["render", str(ev), "--out", str(out), "--size", "75x70", "--png-dir", str(pngs), "--png-limit", "2"]
    assert main(args) == 0
    assert sorted(folder_state(pngs)) == ["ACC000.png", "ACC001.png"]  # this run's PNGs only
    assert hidden_entries(tmp_path / "img", pngs) == []
    assert sorted(p.name for p in tmp_path.glob(".*")) == [".images.staging-x3"]  # not a folder this run wrote
    images = tmp_path / "images"
    assert main(["render", str(ev), "--sizes", "75x70", "--out-dir", str(images)]) == 0
    assert list(tmp_path.glob(".*")) == []


def test_a_failing_png_write_leaves_the_png_folder_as_it_was(tmp_path, monkeypatch, capsys):
    import ms2img.render.files as render_files_module

    ev = cohort_dir(tmp_path / "events", n_accessions=3)
    images, pngs = tmp_path / "images", tmp_path / "pngs"
    assert main(render_args(ev, images, pngs, "old")) == 0
    before = folder_state(pngs)
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return save_pngs(*args, **kwargs)

    monkeypatch.setattr(render_files_module, "save_pngs", failing)
    capsys.readouterr()
    assert main(render_args(ev, images, pngs, "new")) == 2  # a full disk is one line, not a traceback
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "no output is half-written" in err[0], err
    assert folder_state(pngs) == before  # the first size's new PNGs never became visible
    assert folder_state(images) != folder_state(tmp_path / "missing")  # the image folder was swapped already
    assert hidden_entries(tmp_path / "images", pngs) == [] and list(tmp_path.glob(".pngs.*")) == []


def test_kill_9_at_random_points_leaves_each_folder_entirely_old_or_entirely_new(tmp_path):
    """``kill -9`` of ``ms2img render`` at random points: the image folder and the PNG folder each read as the old
    rendering or the new one, never a mix; after the next successful run nothing hidden is left behind.

    Half the kills land at a random point of the writing phase (from the first staging folder or output file
    appearing, over about the time the rendering and writing take), where a non-atomic writer mixes old and new
    files; the other half after a random delay over a whole run."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    ev = cohort_dir(tmp_path / "events", n_accessions=24, n_prec=150, n_frag=8)
    out = tmp_path / "out"
    images, pngs = out / "images", out / "pngs"
    ref = {}
    for variant, base in (("new", tmp_path / "ref_new"), ("old", out)):  # reference states, rendered in-process
        t0 = time.perf_counter()
        assert main(render_args(ev, base / "images", base / "pngs", variant)) == 0
        work = time.perf_counter() - t0
        ref[variant] = (folder_state(base / "images"), folder_state(base / "pngs"))
    assert ref["old"][0] != ref["new"][0] and ref["old"][1] != ref["new"][1]
    env = {**os.environ, "PYTHONHASHSEED": "0", "MS2IMG_RENDER_KERNEL": "numpy"}
    seed = int(os.environ.get("MS2IMG_KILL_SEED") or random.randrange(1_000_000))
    rnd = random.Random(seed)

    def start(variant: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "ms2img.cli", *render_args(ev, images, pngs, variant)]
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait_for_writing(proc: subprocess.Popen) -> float:
        """Seconds until the run starts writing (a staging folder or a changed file in the output folders)."""
        t0 = time.perf_counter()

        def marks():
            return {p: p.stat().st_mtime_ns for f in (images, pngs) if f.exists() for p in f.iterdir()}

        before = marks()
        while proc.poll() is None:
            try:
                if any(p.name.startswith(".") for p in out.iterdir()) or marks() != before:
                    break
            except FileNotFoundError:  # a folder swapped away under us: writing has begun
                break
            time.sleep(0.002)
        return time.perf_counter() - t0

    to_write = 2.0
    for i in range(6):
        proc = start("new" if i % 4 < 2 else "old")
        if i % 2 == 0:
            to_write = wait_for_writing(proc)
            time.sleep(rnd.uniform(0.0, 1.2) * work)
        else:
            time.sleep(rnd.uniform(0.0, 1.0) * (to_write + work))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        state = (folder_state(images), folder_state(pngs))
        for k, what in enumerate(("image folder", "PNG folder")):
            entire = state[k] in (ref["old"][k], ref["new"][k])
            assert entire, f"kill {i} (MS2IMG_KILL_SEED={seed}): the {what} mixes old and new files"
    assert start("new").wait(timeout=120) == 0
    assert (folder_state(images), folder_state(pngs)) == ref["new"]
    assert hidden_entries(out) == [], "a killed run's leftovers survived the next successful run"


def test_cli_counts_the_events_the_image_leaves_out(tmp_path, capsys):
    """A real export has precursors below m/z 100 (msdialr: 301 fragment events) and fragments past 1500: the image's
    axes leave them out, and render says how many."""
    rows = [
        ("A", "r1", "in", 300.0, 5.0, 150.0, 1.0),
        ("A", "r1", "low", 80.0, 5.0, 50.0, 1.0),  # precursor below 100: both of its fragments
        ("A", "r1", "low", 80.0, 5.0, 60.0, 1.0),
        ("A", "r1", "big", 1490.0, 5.0, 1499.0, 1.0),
        ("A", "r1", "big", 1490.0, 5.0, 1600.0, 1.0),  # fragment past 1500 (an isotope above the precursor)
    ]
    ev = write_events_dir(tmp_path / "events", {"A": rows})
    assert main(["render", str(ev), "--out", str(tmp_path / "img.npz"), "--size", "75x70"]) == 0
    out = capsys.readouterr().out
    assert "left out: 2 fragment events of precursors outside m/z 100-1500" in out
    assert "left out: 1 fragments outside m/z 0-1500" in out
