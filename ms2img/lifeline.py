"""A stage command stops when the flow or Dask worker that started it dies.

Why: ``kill -9`` of a Dask worker (or of the flow process) orphans the ``ms2img train`` it started; the orphan
trains on, and Dask then runs the same task again on another worker, so two trainings write one assay's outputs
at once and MLflow gets every run twice. The starter puts its own pid in ``$MS2IMG_PARENT_PID``
(``flows.pipeline``); a command that has the starter among its ancestors (directly, or under ``dvc repro``) watches
it and stops once it has gone: KeyboardInterrupt in the main thread (raised by a SIGUSR1 handler: Dask workers
ignore SIGINT, and their children inherit that), so ``finally`` blocks and context managers run
(MLflow runs end, temporary files go), then a hard exit if the command has not stopped after a grace period. Each
output is swapped in whole (:mod:`ms2img.atomic`); the stage is left stale and reruns next time. A watcher thread,
not ``preexec_fn`` or a parent-death signal: the starter runs stages from threads, where ``preexec_fn`` may
deadlock, and a parent-death signal does not pass through ``dvc``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

PARENT_ENV = "MS2IMG_PARENT_PID"
POLL_SECONDS = 2.0
GRACE_SECONDS = 30.0  # after the interrupt, a command that has not stopped is ended without cleanup
EXIT_CODE = 143  # as a SIGTERM'd process


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie, killed and not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # no /proc (not Linux): the signal check above is all there is


def _ancestors(limit: int = 16) -> list[int]:
    """This process's parent, its parent's parent, ... (from /proc; just the parent where there is none)."""
    out, pid = [], os.getppid()
    while pid > 1 and len(out) < limit:
        out.append(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4, after the command name in parentheses
    return out


def watch_parent(command: str, poll_seconds: float = POLL_SECONDS, grace_seconds: float = GRACE_SECONDS) -> bool:
    """Start the watcher when ``$MS2IMG_PARENT_PID`` names a running ancestor of this process; True if started.

    A starter already gone when this command starts (it died between starting it and this call) stops it at once.
    """
    expected = os.environ.get(PARENT_ENV, "").strip()
    if not expected.isdigit():
        return False  # run by hand: nothing to watch
    starter = int(expected)
    if not _alive(starter):
        _stop(command, starter, grace_seconds)
        return True
    if starter not in _ancestors():
        return False  # a variable inherited by something the starter did not start

    # the interrupt comes as SIGUSR1, handled here: a Dask worker ignores SIGINT, and its children inherit that
    signal.signal(signal.SIGUSR1, _interrupt)
    # the flow stops its commands with SIGINT (flows.pipeline.stop_commands): a starter that ignores it (a Dask
    # worker, a flow started with `&` or nohup) passed the ignore on, and the command trained on until the SIGTERM
    # (no cleanup); commands run in their own session, so a terminal's Ctrl-C does not reach them either way
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def watch() -> None:
        while _alive(starter):
            time.sleep(poll_seconds)
        _stop(command, starter, grace_seconds)

    threading.Thread(target=watch, name="ms2img-lifeline", daemon=True).start()
    return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(command: str, starter: int, grace_seconds: float) -> None:
    try:  # stderr may be a pipe its dead starter was reading: a broken pipe must not stop the stop
        print(
            f"ms2img {command}: stopped: the process that started it (pid {starter}) is gone; each output is swapped "
            "whole, the stage is left stale and reruns next time",
            file=sys.stderr,
            flush=True,
        )
    except OSError:
        pass
    if threading.current_thread() is threading.main_thread():
        sys.exit(EXIT_CODE)
    # a signal to the main thread itself, so a blocking call returns at once: KeyboardInterrupt, finally blocks run
    signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
    time.sleep(grace_seconds)
    os._exit(EXIT_CODE)
