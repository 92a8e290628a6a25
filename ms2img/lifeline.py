"""A stage command stops when the flow or Dask worker that started it dies.

Why: ``kill -9`` of a Dask worker (or of the flow process) orphans the ``ms2img train`` it started; the orphan
trains on, and Dask then runs the same task again on another worker, so two trainings write one assay's outputs
at once and MLflow gets every run twice. The starter puts its own pid in ``$MS2IMG_PARENT_PID``
(``flows.pipeline``); a command started so watches its parent and exits once it has gone. Outputs are swapped in
whole (:mod:`ms2img.atomic`), so the stop leaves the last good state. A watcher thread, not ``preexec_fn`` or a
parent-death signal: the starter runs stages from threads, where ``preexec_fn`` may deadlock.
"""

from __future__ import annotations

import os
import sys
import threading
import time

PARENT_ENV = "MS2IMG_PARENT_PID"
POLL_SECONDS = 2.0
EXIT_CODE = 143  # as a SIGTERM'd process: the starter is gone, nobody reads it


def watch_parent(command: str, poll_seconds: float = POLL_SECONDS) -> bool:
    """Start the watcher when ``$MS2IMG_PARENT_PID`` names this process's parent; True if it was started."""
    expected = os.environ.get(PARENT_ENV, "").strip()
    if not expected.isdigit() or int(expected) != os.getppid():
        return False  # run by hand, or by something that did not ask: nothing to watch

    def watch() -> None:
        while os.getppid() == int(expected):
            time.sleep(poll_seconds)
        print(
            f"ms2img {command}: stopped: the process that started it (pid {expected}) is gone; outputs are as they "
            "were before this run",
            file=sys.stderr,
            flush=True,
        )
        os._exit(EXIT_CODE)

    threading.Thread(target=watch, name="ms2img-lifeline", daemon=True).start()
    return True
