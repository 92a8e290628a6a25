"""Thin wrappers over DVC: stage status, stage commands as written in dvc.yaml, repro, commit, push and pull.

Prefect tasks call these so each stage stays defined once, in dvc.yaml. DVC holds a repository lock while it
runs, so parallel per-assay training asks DVC first which stages are stale and what their commands are (one
call each, before the parallel part), runs those commands side by side without DVC, and records the results
afterwards with ``dvc commit``, one assay at a time.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from ms2img.errors import ConfigError, Ms2ImgError

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]


class StageFailed(Ms2ImgError):
    """A DVC command or stage command exited non-zero; the message holds the tail of its output."""


def _env() -> dict[str, str]:
    """The environment for stage commands: this interpreter's bin first, so `ms2img`/`dvc` resolve to the venv."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def run(cmd: list[str] | str, cwd: Path = ROOT, what: str | None = None) -> str:
    """Run a command, stream nothing, return its output; raise StageFailed with the tail on failure."""
    shell = isinstance(cmd, str)
    label = what or (cmd if shell else shlex.join(cmd))
    log.info("running: %s", label)
    proc = subprocess.run(cmd, cwd=cwd, shell=shell, env=_env(), capture_output=True, text=True)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = "\n".join(output.strip().splitlines()[-25:])
        raise StageFailed(f"{label} failed with exit code {proc.returncode}:\n{tail}")
    return output


def dvc(*args: str, cwd: Path = ROOT) -> str:
    """Run ``dvc ARGS`` from the project's environment."""
    exe = shutil.which("dvc", path=_env()["PATH"]) or "dvc"
    return run([exe, *args], cwd=cwd)


def stage_names(cwd: Path = ROOT) -> list[str]:
    """Every stage of dvc.yaml, foreach stages expanded (``train@DPPH``)."""
    out = dvc("stage", "list", "--name-only", cwd=cwd)
    return [line.strip() for line in out.splitlines() if line.strip()]


def stage_command(name: str, cwd: Path = ROOT) -> str:
    """The command of a stage exactly as dvc.yaml defines it (foreach and ${...} resolved by DVC itself)."""
    from dvc.repo import Repo

    with Repo(str(cwd)) as repo:
        stages = repo.stage.collect(name)
        if not stages:
            raise ConfigError(f"dvc.yaml has no stage {name}")
        return stages[0].cmd if isinstance(stages[0].cmd, str) else " && ".join(stages[0].cmd)


def stale(names: list[str], cwd: Path = ROOT, with_deps: bool = False) -> set[str]:
    """The stages (or .dvc files) among ``names`` (and upstream, ``with_deps``) that must run again."""
    out = dvc("status", "--json", *(["--with-deps"] if with_deps else []), *names, cwd=cwd)
    return set(json.loads(out or "{}"))


def is_up_to_date(names: list[str], cwd: Path = ROOT, with_deps: bool = False) -> bool:
    """True when ``dvc status`` reports nothing to do for the given stages (and upstream, ``with_deps``)."""
    return not stale(names, cwd, with_deps)


def repro(*names: str, cwd: Path = ROOT) -> str:
    """``dvc repro`` the named stages (and what they depend on)."""
    return dvc("repro", *names, cwd=cwd)


def commit(*names: str, cwd: Path = ROOT) -> str:
    """Record the outputs of stages that were run outside ``dvc repro`` in dvc.lock."""
    return dvc("commit", "--force", *names, cwd=cwd)


def remote_url(cwd: Path = ROOT) -> str | None:
    """URL of the default DVC remote, or None when none is configured."""
    try:
        out = dvc("remote", "list", cwd=cwd)
    except StageFailed:
        return None
    default = dvc("remote", "default", cwd=cwd).strip() if out.strip() else ""
    for line in out.splitlines():
        parts = line.split()
        if parts and (parts[0] == default or not default):
            return parts[1]
    return None


def check_remote(cwd: Path = ROOT) -> str:
    """Fail fast with a clear error when the default DVC remote is missing; create a local one's folder."""
    url = remote_url(cwd)
    if url is None:
        raise ConfigError("no default DVC remote: `dvc remote add -d <name> <url>` (a local folder works)")
    if "://" not in url:
        path = (cwd / ".dvc" / url).resolve() if not Path(url).is_absolute() else Path(url)
        path.mkdir(parents=True, exist_ok=True)
    return url


def params_profile(path: Path = ROOT / "params.yaml") -> str:
    """The training profile params.yaml selects (``cnn.profile``)."""
    return str((yaml.safe_load(path.read_text()) or {}).get("cnn", {}).get("profile", "quick"))


def set_params_profile(profile: str, path: Path = ROOT / "params.yaml") -> bool:
    """Select a profile in params.yaml (a tracked parameter, so DVC retrains what it affects); True if changed."""
    import re

    text = path.read_text()
    new = re.sub(r"(?m)^(\s+profile:\s*)\S+", rf"\g<1>{profile}", text, count=1)
    if new != text:
        path.write_text(new)
        return True
    return False
