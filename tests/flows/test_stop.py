"""A SIGTERM or Ctrl-C to a flow process stops the stage commands it runs at once, not after they finish."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

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


def _start(project, failures: list, code: str | None = None) -> threading.Thread:
    """Run ``python -c code`` as a stage command from a task thread, as a flow does (default: one that would run
    60 s, with a child of its own, watching its starter as every ms2img command does, :mod:`ms2img.lifeline`)."""
    stage = "from ms2img.lifeline import watch_parent; watch_parent('long stage'); import subprocess; "
    cmd = [sys.executable, "-c", code or stage + "subprocess.run(['sleep', '60'])"]

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
            time.sleep(1)  # past the interpreter's start: a SIGINT there is a KeyboardInterrupt traceback, exit 1
            started = time.monotonic()
            os.kill(os.getpid(), signum)
            time.sleep(1)  # the handler runs in the main thread at its next instruction
        thread.join(30)  # past pipeline.ESCALATION's SIGKILL (20 s): a loaded machine can lose the first interrupts
        assert not thread.is_alive(), "the stage command kept running after the signal"
        assert time.monotonic() - started < 25  # the command alone would run 60 s
        assert proc.returncode is not None
        with pytest.raises(ProcessLookupError):  # its whole process group is gone, the grandchild too
            for _ in range(50):
                os.killpg(proc.pid, 0)
                time.sleep(0.1)
        assert "killed by signal 2 (2: interrupted" in str(failures[0]) or "KeyboardInterrupt" in str(failures[0])
        assert pipeline.stopping()
        with pytest.raises(pipeline.StageFailed, match="not started: the flow is stopping"):
            pipeline.run(["true"], cwd=project)
        assert pipeline.run(["echo", "recorded"], cwd=project, stoppable=False).strip() == "recorded"  # a dvc commit
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


def test_a_command_that_loses_the_interrupt_is_interrupted_again_then_ended(project, monkeypatch):
    """Python drops a KeyboardInterrupt raised inside a gc or weakref callback (the ops engineer: 3 of 5 trainings
    ran on after one SIGINT); the interrupt is sent again, then SIGTERM, then SIGKILL."""
    monkeypatch.setattr(pipeline, "ESCALATION", ((0.5, signal.SIGINT), (1.0, signal.SIGTERM), (1.5, signal.SIGKILL)))
    deaf = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    failures: list = []
    thread = _start(project, failures, deaf)
    time.sleep(0.5)
    started = time.monotonic()
    assert pipeline.stop_commands() == 1
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert "killed by signal 15" in str(failures[0])  # ignored SIGINT twice, ended by SIGTERM


def test_a_child_that_outlives_the_interrupted_command_is_ended_too(project, monkeypatch):
    """A signal landing while the command starts a child: the command exits on the SIGINT, the child (deaf to it)
    held the output pipe, and the flow waited for it to the end (a loaded CI machine, 60 s); the escalation goes on
    while any process of the command's group runs."""
    monkeypatch.setattr(pipeline, "ESCALATION", ((0.5, signal.SIGINT), (1.0, signal.SIGTERM), (1.5, signal.SIGKILL)))
    parent = ("import subprocess, time; subprocess.Popen(['sh', '-c', 'trap \"\" INT; sleep 60']); "
              "print('up', flush=True); time.sleep(60)")  # fmt: skip
    failures: list = []
    thread = _start(project, failures, parent)
    time.sleep(1.0)
    proc = next(iter(pipeline._live))
    started = time.monotonic()
    assert pipeline.stop_commands() == 1
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - started < 5
    with pytest.raises(ProcessLookupError):  # the deaf grandchild is gone with the group
        for _ in range(30):
            os.killpg(proc.pid, 0)
            time.sleep(0.1)


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of each child of ``pid`` (from /proc)."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                out[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return out


@pytest.mark.slow
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_a_retrain_stopped_from_a_terminal_or_by_kill_ends_in_seconds_and_leaves_nothing_running(tiny_project, how):
    """Ctrl-C in a terminal signals the whole foreground group: Prefect's temporary server died first and the flow
    spent minutes retrying to report the run (the ops engineer: 150-213 s, the run "Running" for good). SIGTERM left
    that server running. Both now: the run Crashed, the server stopped, exit 130 / 143 within seconds."""
    import subprocess

    project = tiny_project(f"stop-{how}", overrides={"cnn.epochs": 40, "cnn.min_epochs": 40, "train.families": ["cnn"]})
    env = {**os.environ, "MLFLOW_TRACKING_URI": project.tracking_uri}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = project.root.parent / "retrain.log"
    with log.open("w") as out:
        flow = subprocess.Popen(["ms2img", "retrain"], cwd=project.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip  # as a terminal's foreground group
        deadline = time.monotonic() + 600
        while "train@elastase: elastase: 24 accessions" not in log.read_text() and time.monotonic() < deadline:
            assert flow.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        time.sleep(3)
        servers = [pid for pid, cmd in _children(flow.pid).items() if "uvicorn" in cmd]
        assert len(servers) == 1, _children(flow.pid)
        started = time.monotonic()
        if how == "ctrl-c":
            os.killpg(flow.pid, signal.SIGINT)
        else:
            flow.send_signal(signal.SIGTERM)
        rc = flow.wait(timeout=120)
    said = log.read_text()
    assert rc == (130 if how == "ctrl-c" else 143), said[-3000:]
    assert time.monotonic() - started < 60, said[-3000:]
    assert "Finished in state Crashed(" in said and "Stopping temporary server" in said
    assert "ConnectError" not in said
    time.sleep(2)
    assert not Path(f"/proc/{servers[0]}").exists() or "Z" in Path(f"/proc/{servers[0]}/stat").read_text().split()[2]
