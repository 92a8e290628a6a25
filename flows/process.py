"""How a flow process ends when it is told to: Ctrl-C in a terminal, or SIGTERM from a scheduler or ``kill``.

Two things Prefect's defaults get wrong for a command-line flow run: its temporary API server is a child in the
terminal's process group, so Ctrl-C kills it first and the flow then spends minutes retrying to report the run
(which stays "Running" for good); and SIGTERM ends the process by the signal itself, so the server, stopped only
at a normal exit, is left behind. Stage commands are :mod:`flows.pipeline`'s (each in its own process group).
"""

from __future__ import annotations

import functools
import signal
import subprocess
import sys
import threading
import types

TERMINATED = 143  # the exit status of a process ended by SIGTERM, as shells report it


def temporary_server_apart() -> None:
    """Start Prefect's temporary API server, when one is needed, in its own session: Ctrl-C reaches the flow, which
    interrupts its commands, reports the run Crashed and then stops the server at exit."""
    from prefect.server.api import server as prefect_server
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value() or None in prefect_server.SubprocessASGIServer._instances:
        return  # a real server, or one already started

    apart = types.SimpleNamespace(Popen=functools.partial(subprocess.Popen, start_new_session=True))

    class ServerApart(prefect_server.SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen:
            prefect_server.subprocess = apart  # the one Popen of Prefect's method, in a session of its own
            try:
                return super()._run_uvicorn_command()
            finally:
                prefect_server.subprocess = subprocess

    ServerApart()  # registered under port None: every SubprocessASGIServer() of this process returns it


def exit_on_sigterm() -> None:
    """SIGTERM becomes a normal exit (status 143) once the flow has handled it: atexit handlers run, so the
    temporary server is stopped instead of left running. Prefect restores this handler after its own."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(TERMINATED))
