"""A SIGTERM or Ctrl-C to a flow process stops the stage commands it runs at once, not after they finish."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from flows import pipeline


class Stopped(Exception):
    """What the test's own handler (standing in for Prefect's SIGTERM bridge) raises."""


def _stop(signum, frame):
    raise Stopped(signum)


@pytest.fixture
def project(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    yield tmp_path
    pipeline._stopping.clear()  # as the next flow's start does: the other tests run commands in this process


def _start(project, failures: list) -> threading.Thread:
    """A stage command that would run 60 s, with a child of its own, run from a task thread as a flow does."""
    cmd = [sys.executable, "-c", "import subprocess; subprocess.run(['sleep', '60'])"]

    def work():
        try:
            pipeline.run(cmd, cwd=project, what="long stage")
        except pipeline.StageFailed as exc:
            failures.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    deadline = time.monotonic() + 20
    while not pipeline._live and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pipeline._live, "the command never started"
    return thread


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_flow_interrupts_its_commands_and_starts_no_more(project, signum):
    previous = signal.signal(signum, _stop)
    failures: list = []
    try:
        with pytest.raises(Stopped), pipeline.commands_stop_with_flow():
            thread = _start(project, failures)
            proc = next(iter(pipeline._live))
            started = time.monotonic()
            os.kill(os.getpid(), signum)
            time.sleep(1)  # the handler runs in the main thread at its next instruction
        thread.join(10)
        assert not thread.is_alive(), "the stage command kept running after the signal"
        assert time.monotonic() - started < 10
        assert proc.returncode is not None
        with pytest.raises(ProcessLookupError):  # its whole process group is gone, the grandchild too
            for _ in range(50):
                os.killpg(proc.pid, 0)
                time.sleep(0.1)
        assert "killed by signal 2 (2: interrupted" in str(failures[0])
        assert pipeline.stopping()
        with pytest.raises(pipeline.StageFailed, match="not started: the flow is stopping"):
            pipeline.run(["true"], cwd=project)
    finally:
        signal.signal(signum, previous)
    assert signal.getsignal(signum) is previous


def test_a_new_flow_in_the_same_process_runs_commands_again(project):
    pipeline.stop_commands()
    with pipeline.commands_stop_with_flow():
        assert pipeline.run([sys.executable, "-c", "print('ran')"], cwd=project).strip() == "ran"
    assert not pipeline.stopping()


def test_a_watcher_tick_during_a_running_flow_is_a_quiet_skip(project):
    from flows.watch import watch_new_data

    assert pipeline.project_holder(project) is None
    with pipeline.project_lock(project):
        assert pipeline.project_holder(project).startswith(f"pid {os.getpid()}, started ")
        assert watch_new_data.fn(project_dir=str(project)) is False  # before reading params: this project has none
    assert pipeline.project_holder(project) is None
