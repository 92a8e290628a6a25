"""kill -9 during ``ms2img ingest``: the events folder is the old state or the new one, never a mix, and the
next successful run leaves no staging or retired copies behind."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from io_builders import MSDIAL_ROWS, msdial_lines, write_lines

from ms2img.io.ingest import MANIFEST, ingest

REPO = Path(__file__).resolve().parents[2]


def exports(folder: Path, names: list[str], scale: float) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [(*r[:5], *(str(float(v) * scale) for v in r[5:])) for r in MSDIAL_ROWS]
    for name in names:
        write_lines(folder / f"{name}.txt", msdial_lines(rows=rows))
    return folder


def state(out: Path) -> tuple[frozenset[str], bytes]:
    names = frozenset(p.name for p in out.iterdir()) if out.is_dir() else frozenset()
    manifest = (out / MANIFEST).read_bytes() if (out / MANIFEST).is_file() else b""
    return names, manifest


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_kill_9_at_random_points_leaves_old_or_new(tmp_path):
    old_in = exports(tmp_path / "old", [f"ACC{i:03d}" for i in range(20)], 1.0)
    new_in = exports(tmp_path / "new", [f"ACC{i:03d}" for i in range(40)], 2.0)
    out = tmp_path / "events"
    ingest([old_in], out)
    old = state(out)
    ingest([new_in], tmp_path / "expected")
    new = state(tmp_path / "expected")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "ms2img.cli", "ingest", str(new_in), "--out", str(out)]
    rng = random.Random(1234)
    seen = set()
    for _ in range(4):
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        now = state(out)
        is_old = now == old
        is_new = now == new
        assert is_old or is_new, f"mixed events folder after kill -9: {sorted(now[0])[:8]}..."
        seen.add("old" if is_old else "new")
    ingest([new_in], out)  # the next successful run cleans what the killed ones left
    assert state(out)[0] == new[0]
    assert leftovers(out) == []
    assert not (out / ".parts").exists()
