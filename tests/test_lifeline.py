"""A stage command stops when the process that started it is killed (a Dask worker's kill -9 orphaned a training
that Dask then ran again elsewhere: two trainings wrote one assay's outputs)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # an orphan reaped late is a zombie: it has stopped


def test_an_orphaned_stage_command_stops_and_one_run_by_hand_does_not_watch(tmp_path):
    starter = textwrap.dedent(
        f"""
        import os, subprocess, sys, time
        env = dict(os.environ, MS2IMG_PARENT_PID=str(os.getpid()), PYTHONPATH={str(ROOT)!r})
        child = subprocess.Popen([sys.executable, "-c", "import time; from ms2img.lifeline import watch_parent; "
                                  "assert watch_parent('train', 0.1); time.sleep(120)"], env=env,
                                 stderr=open({str(tmp_path / "err.txt")!r}, "w"))
        print(child.pid, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    time.sleep(1.0)
    assert _alive(child)
    os.kill(proc.pid, signal.SIGKILL)  # as `kill -9` of a Dask worker
    proc.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the orphaned command is still running"
    err = (tmp_path / "err.txt").read_text()
    assert "ms2img train: stopped: the process that started it" in err and err.count("\n") == 1

    from ms2img.lifeline import watch_parent

    assert not watch_parent("train")  # this test process was not started with its parent's pid: nothing to watch


def test_the_flow_gives_its_stage_commands_its_pid():
    from flows.pipeline import _env

    assert _env(ROOT)["MS2IMG_PARENT_PID"] == str(os.getpid())
