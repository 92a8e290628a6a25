"""Thin wrappers over DVC: stage status, stage commands as written in dvc.yaml, repro, commit, push and pull.

Prefect tasks call these so each stage stays defined once, in dvc.yaml. DVC holds a repository lock while it
runs, so parallel per-assay training asks DVC first which stages are stale and what their commands are (one
call each, before the parallel part), runs those commands side by side without DVC, and records each stage with
``dvc commit`` as it finishes. Every DVC call waits for the lock (``--wait-for-lock``) instead of failing on it,
so a record made beside another DVC call waits its turn.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ms2img.errors import USER_ERROR, ConfigError, Ms2ImgError
from ms2img.lifeline import PARENT_ENV

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]  # this checkout: the default project when the cwd is not one
PROJECT_ENV = "MS2IMG_PROJECT_DIR"


class StageFailed(Ms2ImgError):
    """A DVC command or stage command exited non-zero. The message is one line, ending in the reason its output
    gives (:func:`stage_reason`); ``tail`` holds the output's last lines, logged where it failed."""

    def __init__(self, message: str, returncode: int | None = None, tail: str = ""):
        super().__init__(message)
        self.returncode = returncode
        self.tail = tail

    @property
    def deterministic(self) -> bool:
        """An ``ms2img`` command's own refusal (exit 2: bad input or settings, a full disk): running it again gives
        the same answer, so a retry only repeats the work before it (a chain's training and registrations)."""
        return self.returncode == USER_ERROR

    @property
    def refused_by(self) -> str | None:
        """The ``ms2img`` command that refused its input or settings (its one ``<command>: error:`` line; ``dvc
        repro`` reports that exit 2 as 255), None for a crash."""
        match = _COMMAND_ERROR.search(str(self))
        return match.group(0).split(":", 1)[0].removeprefix("ms2img ") if match else None


def project_dir(path: str | Path | None = None) -> Path:
    """The DVC project the flows work on: ``path``, else $MS2IMG_PROJECT_DIR, else the cwd when it holds a
    dvc.yaml, else this checkout. Every stage runs there, so one installed copy of the flows can drive any
    project (a lab's data repository, a test's temporary one)."""
    if path is None:
        path = os.environ.get(PROJECT_ENV) or (Path.cwd() if (Path.cwd() / "dvc.yaml").exists() else ROOT)
    root = Path(path).expanduser().resolve()
    if not (root / "dvc.yaml").exists():
        raise ConfigError(f"{root}: not an ms2img project (no dvc.yaml); pass project_dir or set {PROJECT_ENV}")
    return root


class ProjectBusy(Ms2ImgError):
    """Another flow holds the project: two flows at once would race on dvc.lock, models/ and the registry.
    ``holder``: what the lock file says of it (pid, start time)."""

    def __init__(self, message: str, holder: str = ""):
        super().__init__(message)
        self.holder = holder


@contextlib.contextmanager
def project_lock(project: str | Path) -> Iterator[Path]:
    """Hold the project for one flow run; a second flow on the same project stops at once with one line.

    A kernel lock (``flock``) on ``.dvc/tmp/ms2img-flow.lock``: released when the process ends, however it ends,
    so a killed flow never leaves the project locked. The file names the holder (pid, start time) for the message.
    """
    root = project_dir(project)
    path = root / ".dvc" / "tmp" / "ms2img-flow.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise ProjectBusy(
                f"{root}: another ms2img flow is running on this project ({holder}); wait for it to finish", holder
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        fh.flush()
        try:
            yield path
        finally:
            fh.seek(0)
            fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)


def project_holder(project: str | Path) -> str | None:
    """Who holds the project now (pid, start time), None when it is free: a watcher tick during a retrain is a
    quiet skip, not a failed run."""
    try:
        with project_lock(project):
            return None
    except ProjectBusy as exc:
        return exc.holder


def tracking_uri(cwd: str | Path | None = None) -> str:
    """The project's tracking URI (``ms2img.tracking.tracking_uri``): absolute, so the flow process and the stage
    commands share one store even when the flow was started from another folder."""
    from ms2img import tracking

    return tracking.tracking_uri(project_dir(cwd))


def _env(cwd: Path | None = None) -> dict[str, str]:
    """The environment for stage commands: this interpreter's bin first (so `ms2img`/`dvc` resolve to the venv),
    and the tracking URI the flow checked."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env[PARENT_ENV] = str(os.getpid())  # the stage command stops if this process dies (ms2img.lifeline)
    if cwd is not None:
        env.setdefault("MLFLOW_TRACKING_URI", tracking_uri(cwd))
    return env


def run(
    cmd: list[str], cwd: str | Path | None = None, what: str | None = None, echo=None, stoppable: bool = True
) -> str:
    """Run a command (an argument list: never through a shell) in the project and return its output; raise
    StageFailed with the tail on failure. ``echo(line)`` receives the progress lines as they come. ``stoppable``
    false: a stopping flow neither refuses nor interrupts it (a record of finished work, seconds long)."""
    cwd = project_dir(cwd)
    label = what or shlex.join(cmd)
    log.info("running: %s (in %s)", label, cwd)
    if stoppable and _stopping.is_set():
        raise StageFailed(f"{label} not started: the flow is stopping (SIGTERM or Ctrl-C)")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: stop_commands interrupts it with everything it started
    )  # fmt: skip
    if stoppable:
        with _live_lock:
            _live.add(proc)
    lines = []
    try:
        for line in proc.stdout:  # streamed, so a long stage shows its folds and time left while it runs
            lines.append(line.rstrip("\n"))
            if echo is not None and _is_progress(line):
                echo(f"{what or Path(cmd[0]).name}: {_LOG_PREFIX.sub('', line.strip())}")
        proc.wait()
    except BaseException:  # Ctrl-C or a termination here, in the main thread: the command stops with it
        _interrupt(proc)
        raise
    finally:
        with _live_lock:
            _live.discard(proc)
    output = "\n".join(lines)
    if proc.returncode != 0:
        tail = "\n".join(lines[-25:])
        run_logger().warning("%s failed with exit code %d; its last output:\n%s", label, proc.returncode, tail)
        raise StageFailed(f"{label} failed with exit code {proc.returncode}: {stage_reason(lines, proc.returncode)}",
                          proc.returncode, tail)  # fmt: skip
    return output


_live: set[subprocess.Popen] = set()  # the commands :func:`run` is waiting for, from any thread
_live_lock = threading.Lock()
_stopping = threading.Event()  # set by stop_commands: run starts nothing more in this flow


# after the first SIGINT, while the command still runs: the interrupt again (Python drops a KeyboardInterrupt raised
# inside a garbage-collection or weakref callback, and training runs many), then SIGTERM, then SIGKILL
ESCALATION = ((3.0, signal.SIGINT), (10.0, signal.SIGTERM), (20.0, signal.SIGKILL))


def _signal_group(proc: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signum)


def _group_alive(proc: subprocess.Popen) -> bool:
    """Is any process of the command's group still running (the command, or a child it started)?"""
    if proc.poll() is None:
        return True
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a member this process may not signal: the group exists
    return True


def _interrupt(proc: subprocess.Popen) -> None:
    """SIGINT to the command's process group (``dvc repro`` and the stage under it), as Ctrl-C in a terminal: the
    stage ends its MLflow run and removes its temporary files; each output is swapped in whole, so the last good
    state stays. A group still running later gets :data:`ESCALATION` (seconds after the first SIGINT): the command's
    children too, since one that outlives the command (an interrupt landing while it was being started) holds its
    output pipe open and the flow waited on it to the end."""
    _signal_group(proc, signal.SIGINT)
    started = time.monotonic()

    def escalate() -> None:
        for at, signum in ESCALATION:
            while time.monotonic() < started + at:
                if not _group_alive(proc):
                    return
                time.sleep(0.1)
            if not _group_alive(proc):
                return
            _signal_group(proc, signum)

    threading.Thread(target=escalate, name="ms2img-stop", daemon=True).start()


def stop_commands() -> int:
    """Interrupt every command :func:`run` is waiting for and refuse new ones; the number interrupted."""
    _stopping.set()
    with _live_lock:
        live = list(_live)
    for proc in live:
        _interrupt(proc)
    return len(live)


def stopping() -> bool:
    """True once :func:`stop_commands` ran in this flow: a retry would only be refused."""
    return _stopping.is_set()


@contextlib.contextmanager
def commands_stop_with_flow() -> Iterator[None]:
    """A SIGTERM (Prefect cancellation, a scheduler, ``kill``) or Ctrl-C to the flow process interrupts its stage
    commands at once.

    Why: the flow engine turns the signal into an exception in the main thread, then waits for its task threads,
    and their commands (each in its own process group, so the terminal's Ctrl-C does not reach them either) would
    train, promote, explain and push to the end first. The handler interrupts them, then hands the signal on to the
    handler it replaced (Prefect's, which marks the run Crashed). Only the main thread can set handlers: elsewhere
    (a Dask worker) this does nothing, and :mod:`ms2img.lifeline` stops a command whose starter died.
    """
    _stopping.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    replaced = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    replaced = {sig: before for sig, before in replaced.items() if before != signal.SIG_IGN}  # `nohup`, `&`: ignored

    def handler(signum: int, frame: Any) -> None:
        log.warning("signal %d: interrupting %d running stage command(s); nothing more starts", signum, stop_commands())
        before = replaced[signum]
        if callable(before):
            before(signum, frame)
        elif before == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    for sig in replaced:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, before in replaced.items():
            signal.signal(sig, before)


_COMMAND_ERROR = re.compile(r"ms2img [\w-]+: error: .*")  # the one line every ms2img command refuses with


def run_logger(fallback: logging.Logger = log) -> logging.Logger | logging.LoggerAdapter:
    """The Prefect run's logger inside a flow or task run (its UI shows what a stage printed), else ``fallback``."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return fallback


def stage_reason(lines: list[str], returncode: int | None = None) -> str:
    """The line of a failed command's output that says why: the last ``ms2img <command>: error: ...`` (a stage's
    own refusal, which DVC follows with its own lines), else DVC's last ``ERROR:`` line, else the last line; a
    process killed by a signal (out of memory: 9) says so, not its last progress line. The failure's first line
    used to end in a colon, the reason 20 log lines above it."""
    if returncode is not None and (returncode < 0 or returncode in (137, 143)):
        signal = -returncode if returncode < 0 else returncode - 128
        return f"killed by signal {signal} (2: interrupted; 9: out of memory or killed; 15: stopped)"
    for line in reversed(lines):
        if match := _COMMAND_ERROR.search(line):
            return match.group(0)
    stripped = [line.strip() for line in lines if line.strip()]
    return next(
        (line for line in reversed(stripped) if line.startswith("ERROR:")), stripped[-1] if stripped else "no output"
    )


_LOG_PREFIX = re.compile(r"^\S+ \S+ (INFO|WARNING|ERROR) ms2img\.\S+: ")  # "<date> <time> INFO ms2img.x: "


def _is_progress(line: str) -> bool:
    """Lines worth showing live: ms2img's own progress and results, not library chatter."""
    return (
        " ms2img." in line
        or "AUC" in line
        or "winner" in line
        or line.startswith(("Running stage", "ms2img "))
        or _is_ingest_summary(line.strip())
    )


def _is_ingest_summary(line: str) -> bool:
    """Ingest's lines a lab must see before trusting the scores: how inputs became accessions (a sample sheet merges
    injections), which sheet or metadata decided, replicate hints and warnings; which inputs were skipped, and what
    render leaves out of the images (precursors outside render.x_range never reach a model)."""
    prefixes = (
        "hint: ",
        "warning: ",
        "sample sheet: ",
        "metadata: ",
        "accessions written: ",
        "skipped: ",
        "left out: ",
    )
    return line.startswith(prefixes) or (" -> " in line and "accession" in line)


def command_args(command: str) -> list[str]:
    """A stage command of dvc.yaml as argument lists (``a && b`` -> two), so nothing passes through a shell."""
    return [shlex.split(part) for part in command.split("&&")]


def dvc(*args: str, cwd: str | Path | None = None, stoppable: bool = True) -> str:
    """Run ``dvc ARGS`` in the project from the project's environment."""
    exe = shutil.which("dvc", path=_env()["PATH"]) or "dvc"
    return run([exe, "--wait-for-lock", *args], cwd=cwd, stoppable=stoppable)


def stage_names(cwd: str | Path | None = None) -> list[str]:
    """Every stage of dvc.yaml, foreach stages expanded (``train@DPPH``)."""
    out = dvc("stage", "list", "--name-only", cwd=cwd)
    return [line.strip() for line in out.splitlines() if line.strip()]


def stage_command(name: str, cwd: str | Path | None = None) -> str:
    """The command of a stage exactly as dvc.yaml defines it (foreach and ${...} resolved by DVC itself). Read under
    DVC's repository lock (waited for): a chain beside it may be writing dvc.lock, which collecting a stage reads."""
    from dvc.repo import Repo

    with Repo(str(project_dir(cwd)), _wait_for_lock=True) as repo, repo.lock:
        stages = repo.stage.collect(name)
        if not stages:
            raise ConfigError(f"dvc.yaml has no stage {name}")
        return stages[0].cmd if isinstance(stages[0].cmd, str) else " && ".join(stages[0].cmd)


def stale(names: list[str], cwd: str | Path | None = None, with_deps: bool = False) -> set[str]:
    """The stages (or .dvc files) among ``names`` (and upstream, ``with_deps``) that must run again."""
    out = dvc("status", "--json", *(["--with-deps"] if with_deps else []), *names, cwd=cwd)
    return set(json.loads(out or "{}"))


def is_up_to_date(names: list[str], cwd: str | Path | None = None, with_deps: bool = False) -> bool:
    """True when ``dvc status`` reports nothing to do for the given stages (and upstream, ``with_deps``)."""
    return not stale(names, cwd, with_deps)


def repro(*names: str, cwd: str | Path | None = None, echo=None, single: bool = False) -> str:
    """``dvc repro`` the named stages (and what they depend on, unless ``single``: then those stages alone, as
    ``--single-item``); ``echo`` receives progress lines as they come. When a stage fails, the outputs DVC
    removed before running it come back from the cache (:func:`restore_removed_outputs`)."""
    exe = shutil.which("dvc", path=_env()["PATH"]) or "dvc"
    try:
        args = [exe, "--wait-for-lock", "repro", *(["--single-item"] if single else []), *names]
        return run(args, cwd=cwd, echo=echo)
    except StageFailed:
        restored = restore_removed_outputs(cwd)
        if restored:
            log.warning("the failed stage's outputs %s are back as dvc.lock records them (the last good run)", restored)
        raise


def restore_removed_outputs(cwd: str | Path | None = None) -> list[str]:
    """Check out from the DVC cache every output dvc.lock records that is missing from the workspace.

    Why. ``dvc repro`` deletes a stage's outputs before its command runs, so a stage that then fails (a truncated
    export in ingest, a killed render) left the project without its last good events or images, though dvc.lock
    and the cache still hold them. Only missing paths are checked out: what the failed command wrote itself (the
    validation report of a failed validation) stays for the user to read.
    """
    import yaml

    root = project_dir(cwd)
    lock = root / "dvc.lock"
    if not lock.is_file():
        return []
    stages = (yaml.safe_load(lock.read_text(encoding="utf-8")) or {}).get("stages") or {}
    recorded = {out["path"] for stage in stages.values() for out in stage.get("outs") or []}
    missing = sorted(path for path in recorded if not (root / path).exists())
    for path in missing:  # one at a time: a path DVC no longer tracks (an assay taken out) must not stop the rest
        try:
            dvc("checkout", path, cwd=root)
        except StageFailed as exc:  # not in the cache (`dvc gc`), no stage any more: said, and the failure raised
            log.warning("could not restore %s from the DVC cache: %s", path, exc)
    return [path for path in missing if (root / path).exists()]


def commit(*names: str, cwd: str | Path | None = None) -> str:
    """Record the outputs of stages that were run outside ``dvc repro`` in dvc.lock (waiting for DVC's lock). A
    stopping flow still records what finished, and does not interrupt a record half-way through dvc.lock."""
    return dvc("commit", "--force", *names, cwd=cwd, stoppable=False)


def remote_url(cwd: str | Path | None = None) -> str | None:
    """URL of the default DVC remote, or None when no default remote is configured.

    Read with ``dvc config`` (one value per call), not from ``dvc remote list``, whose table DVC wraps to the
    terminal's width: a long remote path would be cut across lines."""
    try:
        default = dvc("remote", "default", cwd=cwd).strip()
    except StageFailed:  # "No default remote set"
        return None
    if not default:
        return None
    try:
        return dvc("config", f"remote.{default}.url", cwd=cwd).strip() or None
    except StageFailed:
        return None


def check_remote(cwd: str | Path | None = None) -> str:
    """Fail fast with a clear error when the default DVC remote is missing; create a local one's folder."""
    root = project_dir(cwd)
    url = remote_url(root)
    if url is None:
        raise ConfigError(
            f"{root}: no default DVC remote, so retrained data and models could not be pushed; add one with "
            "`dvc remote add -d <name> <url>` (a local folder works)"
        )
    if "://" not in url:
        path = Path(url) if Path(url).is_absolute() else (root / ".dvc" / url).resolve()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"DVC remote {url}: cannot create {path} ({exc})") from None
    return url


def check_tracking(cwd: str | Path | None = None) -> str:
    """Point MLflow at the project's tracking URI; fails within seconds when a tracking server is unreachable."""
    from ms2img import tracking

    return tracking.setup_tracking(tracking_uri(cwd))


def apply_profile(profile: str, cwd: str | Path | None = None) -> list[str]:
    """Write ``profiles/<profile>.yaml`` into params.yaml (comments kept), so the values that run are the values
    DVC records; returns the keys that changed."""
    from ms2img.params import apply_overrides, profile_overrides

    root = project_dir(cwd)
    return apply_overrides(root / "params.yaml", profile_overrides(profile, root))
