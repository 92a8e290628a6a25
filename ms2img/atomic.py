"""Atomic file writes: a crash or a bad input never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only if the block succeeds.

    The temporary file keeps the target's suffix so libraries that infer a format from it (numpy, pandas,
    matplotlib) behave as they would on the real name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; outputs should look like any other file
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(target: str | Path, text: str) -> Path:
    """Write ``text`` to ``target`` atomically (UTF-8)."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


_STAGING = ".{name}.staging-"
_RETIRED = ".{name}.retired-"


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step with Linux ``renameat2(RENAME_EXCHANGE)``; False where it is unavailable."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def clean_leftovers(target: str | Path) -> list[Path]:
    """Remove staging and retired copies of ``target`` that a killed run left behind; returns what went."""
    import shutil

    target = Path(target)
    gone = []
    if target.parent.exists():
        for pattern in (_STAGING, _RETIRED):
            for p in target.parent.glob(pattern.format(name=target.name) + "*"):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
                gone.append(p)
    return gone


@contextlib.contextmanager
def atomic_dir(target: str | Path, keep: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder next to ``target``; on success swap it in as ``target`` in one step.

    Readers see the old folder or the new one, never a mix: the swap is an atomic exchange of the two
    names (``renameat2``), with a two-rename fallback elsewhere. A failed block, or a killed process, leaves
    ``target`` as it was; the next call removes what a killed run left behind. ``keep=True`` starts the
    staging folder as a copy of ``target`` (for updates that touch only some files).
    """
    import shutil

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not target.is_dir():
        from ms2img.errors import ConfigError

        raise ConfigError(f"{target}: exists and is not a folder")
    clean_leftovers(target)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING.format(name=target.name), dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        if keep and target.exists():
            shutil.copytree(target, staging, dirs_exist_ok=True)
        yield staging
        if target.exists():
            if _exchange(staging, target):
                shutil.rmtree(staging, ignore_errors=True)  # now holds the old content
                return
            retired = Path(tempfile.mkdtemp(prefix=_RETIRED.format(name=target.name), dir=target.parent))
            os.rmdir(retired)
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
