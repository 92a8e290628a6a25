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

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the stage command: watches its starter, and on the interrupt runs its cleanup as a real command would
COMMAND = textwrap.dedent(
    """
    import os, sys, time
    from ms2img.lifeline import watch_parent
    assert watch_parent("train", 0.1, 5.0)
    try:
        time.sleep(120)
    except KeyboardInterrupt:
        open(os.environ["CLEANUP_MARK"], "w").write("ran")
        sys.exit(130)
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # an orphan reaped late is a zombie: it has stopped


def _starter(tmp_path: Path, how: str) -> tuple[subprocess.Popen, int]:
    """A process that starts the command and prints its pid: ``direct``; ``shell`` (under a shell, as `dvc repro`
    runs it); ``dask-worker`` (SIGINT ignored, as a Dask worker does and its children inherit, and the command's
    output piped to the starter, so its stderr breaks when the starter dies)."""
    command = [sys.executable, "-c", COMMAND]
    code = textwrap.dedent(
        f"""
        import os, shlex, signal, subprocess, sys, time
        env = dict(os.environ, MS2IMG_PARENT_PID=str(os.getpid()), PYTHONPATH={str(ROOT)!r},
                   CLEANUP_MARK={str(tmp_path / "cleanup")!r})
        cmd, err = {command!r}, open({str(tmp_path / "err.txt")!r}, "w")
        if {how!r} == "shell":
            cmd = ["sh", "-c", "exec " + shlex.join(cmd)]
        if {how!r} == "dask-worker":
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            err = subprocess.STDOUT
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err)
        print(child.pid, flush=True)
        time.sleep(120)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


@pytest.mark.parametrize("how", ["direct", "shell", "dask-worker"])
def test_an_orphaned_stage_command_stops_after_its_cleanup(tmp_path, how):
    proc, child = _starter(tmp_path, how)
    time.sleep(1.5)
    assert _alive(child)
    os.kill(proc.pid, signal.SIGKILL)  # as `kill -9` of a Dask worker
    proc.wait()
    deadline = time.monotonic() + 4  # within the poll, well before the 5 s grace's hard exit
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), "the orphaned command is still running"
    assert (tmp_path / "cleanup").read_text() == "ran"  # interrupted, not killed: its finally blocks ran
    if how != "dask-worker":
        err = (tmp_path / "err.txt").read_text()
        assert err.startswith("ms2img train: stopped: the process that started it") and err.count("\n") == 1


def test_a_command_whose_starter_is_already_gone_stops_at_once(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    env = {**os.environ, "MS2IMG_PARENT_PID": str(gone.pid), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-c", COMMAND]
    out = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 143 and "is gone" in out.stderr


def test_a_command_run_by_hand_watches_nothing(monkeypatch):
    from ms2img.lifeline import watch_parent

    monkeypatch.delenv("MS2IMG_PARENT_PID", raising=False)
    assert not watch_parent("train")
    monkeypatch.setenv("MS2IMG_PARENT_PID", "1")  # alive, but an inherited value naming no ancestor of ours
    assert not watch_parent("train")


def test_the_flow_gives_its_stage_commands_its_pid():
    from flows.pipeline import _env

    assert _env(ROOT)["MS2IMG_PARENT_PID"] == str(os.getpid())
