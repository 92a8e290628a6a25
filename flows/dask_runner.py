"""Which task runner the retrain flow's per-assay work runs on: this machine's threads, or a Dask cluster.

Default (no address): Prefect's ``ThreadPoolTaskRunner`` of ``LOCAL_THREADS``. With ``--dask-address`` or
``$MS2IMG_DASK_ADDRESS`` (``tcp://host:8786``) the flow joins an existing Dask cluster through
``prefect_dask.DaskTaskRunner``: each assay's stage commands (train, promote, explain) run on a Dask worker, and
the worker records each stage in dvc.lock as it finishes (waiting for DVC's repository lock: one writer at a
time). The workers must run
the same environment, see the project folder at the same path (shared filesystem) and import ``flows`` (start
them from the checkout with ``PYTHONPATH=$PWD``); see the README.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from ms2img.errors import ConfigError

log = logging.getLogger(__name__)
ADDRESS_ENV = "MS2IMG_DASK_ADDRESS"
LOCAL_THREADS = 2  # the embedded default: two stage chains side by side on this machine (three measured slower)


def dask_address(address: str | None = None) -> str | None:
    """The Dask scheduler to join: ``address``, else $MS2IMG_DASK_ADDRESS, else None (run locally)."""
    address = (address or os.environ.get(ADDRESS_ENV) or "").strip()
    if not address:
        return None
    if "://" not in address:
        address = f"tcp://{address}"
    return address


def task_runner(address: str | None = None) -> TaskRunner:
    """A ``DaskTaskRunner`` joined to the cluster at ``address`` (or $MS2IMG_DASK_ADDRESS); else the local
    ``ThreadPoolTaskRunner`` the flow always had, so the default path neither imports nor needs Dask."""
    address = dask_address(address)
    if address is None:
        return ThreadPoolTaskRunner(max_workers=LOCAL_THREADS)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:  # pragma: no cover - part of the runtime install
        raise ConfigError(f"{ADDRESS_ENV}/--dask-address needs prefect-dask (pip install prefect-dask)") from None
    # a short connect time-out: an unreachable scheduler fails the run in seconds with one line, not after 30 s
    return DaskTaskRunner(address=address, client_kwargs={"timeout": "20s"})


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds with one line when the scheduler does not answer, before any work starts."""
    parts = urlsplit(address)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 8786), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"Dask scheduler {address} not reachable ({exc}); start one with `dask scheduler` or unset {ADDRESS_ENV}"
        ) from None


def on_cluster(flow: Any, address: str | None = None) -> Any:
    """``flow`` with the task runner for ``address`` (or $MS2IMG_DASK_ADDRESS) and one Prefect API for the flow
    and its workers (:func:`shared_api`); the flow object itself, unchanged, when no address is set."""
    address = dask_address(address)
    if address is None:
        return flow
    check_reachable(address)
    on_dask = flow.with_options(task_runner=task_runner(address))

    def run(*args: Any, **kwargs: Any) -> Any:
        with shared_api(address):
            return on_dask(*args, **kwargs)

    return run


def api_port(address: str) -> int:
    """The temporary API's port for the cluster at ``address`` (or any name that stays the same for the workers
    that report to it): the same on every run. A Dask worker's Prefect events
    client is made once per process with the first URL it is given, so a new port per run (Prefect's own choice)
    left workers that served one flow run sending the next run's task events to a stopped server. The host is
    resolved first, so ``tcp://localhost:8786`` and ``tcp://127.0.0.1:8786`` name one cluster and one port."""
    return API_PORTS.start + zlib.crc32(_resolved(address).encode()) % len(API_PORTS)


def _resolved(address: str) -> str:
    """A ``tcp://`` address with its host name replaced by its IPv4 address; any other address (``inproc://``, a
    host that does not resolve, a port that is not a number) as written."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls"):
        return address
    try:
        host, port = socket.gethostbyname(parts.hostname or ""), parts.port
    except (OSError, UnicodeError, ValueError):
        return address
    return f"{parts.scheme}://{host}:{port}" if port else f"{parts.scheme}://{host}"


API_PORTS = range(9100, 9900)  # outside 8000-8999, where Prefect picks its own temporary servers' ports


def _port_free(port: int) -> bool:
    """Nothing listens on ``port`` here. Bound with SO_REUSEADDR, as the server binds it: the last run's closed
    connections (TIME_WAIT, a minute) do not count as taken, which Prefect's own check says they are."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def temporary_server(address: str | None) -> Any:
    """The temporary Prefect API server of this process (not started): Prefect's own, on a port it picks, for a run
    on this machine; for the Dask cluster at ``address`` one on :func:`api_port` (another, with a warning, when
    something else listens there). One per port and process, so a second run in this process reuses it."""
    from prefect.server.api.server import SubprocessASGIServer

    if address is None:
        return SubprocessASGIServer()
    port = api_port(address)
    server = SubprocessASGIServer(port)
    if not server.running and not _port_free(port):
        log.warning(
            "port %d for the workers' Prefect API is taken: this run's API gets another, and workers that served an "
            "earlier run report to that run's (restart them, or set PREFECT_API_URL to a standing server)", port
        )  # fmt: skip
        return SubprocessASGIServer()
    return server


@contextlib.contextmanager
def shared_api(address: str) -> Iterator[str | None]:
    """Dask workers report their task runs to the flow's Prefect API. Without $PREFECT_API_URL a flow starts a
    temporary server that only its own process knows, and every worker would start another (seconds of CPU each,
    task runs missing from the flow's UI): start the temporary server here (:func:`temporary_server`) and hand its
    URL to flow and workers. It listens on 127.0.0.1, so workers on other machines need a real server
    ($PREFECT_API_URL)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        yield PREFECT_API_URL.value()
        return
    server = temporary_server(address)
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield server.api_url


@contextlib.contextmanager
def local_cluster(
    workers: int = 2, threads: int = 1, env: dict[str, str] | None = None, timeout: float = 120.0
) -> Iterator[str]:
    """A Dask scheduler and ``workers`` worker processes on 127.0.0.1, started with the ``dask`` command of this
    environment exactly as the README starts them by hand (tests and benchmarks/scale.py); yields the address.

    Workers import ``flows`` from this checkout (PYTHONPATH) and run without a nanny, so the worker process itself
    (and the stage commands it starts) is what a test measures. Everything is stopped on exit."""
    from distributed import Client

    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or "dask"
    root = Path(__file__).resolve().parents[1]
    run_env = {**os.environ, **(env or {})}
    run_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), run_env.get("PYTHONPATH", "")) if p)
    procs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="ms2img-dask-") as tmp:
        scheduler_file = Path(tmp) / "scheduler.json"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": run_env, "cwd": root}
        try:
            procs.append(
                subprocess.Popen(
                    [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", str(scheduler_file)],
                    **quiet,
                )
            )  # fmt: skip
            deadline = time.monotonic() + timeout
            while not scheduler_file.exists():
                if time.monotonic() > deadline or procs[0].poll() is not None:
                    raise ConfigError("the local Dask scheduler did not start")
                time.sleep(0.2)
            address = json.loads(scheduler_file.read_text())["address"]
            for i in range(workers):
                procs.append(
                    subprocess.Popen(
                        [dask, "worker", address, "--nthreads", str(threads), "--nworkers", "1", "--no-nanny",
                         "--no-dashboard", "--name", f"worker-{i}", "--host", "127.0.0.1",
                         "--local-directory", str(Path(tmp) / f"worker-{i}")],
                        **quiet,
                    )
                )  # fmt: skip
            with Client(address, timeout="30s") as client:
                client.wait_for_workers(workers, timeout=timeout)
            yield address
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in reversed(procs):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
