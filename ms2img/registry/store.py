"""The registry store: model names, the MLflow client, aliases, version tags, content hashes and the promotion lock."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import time
from collections.abc import Iterator
from pathlib import Path

from ms2img.errors import ConfigError

log = logging.getLogger("ms2img.registry")

CHAMPION = "champion"
CHALLENGER = "challenger"
AUC_TAG = "auc_mean"
DATA_TAG = "data.hash"
CODE_TAG = "code.version"
FAMILY_TAG = "family"
CONTENT_TAG = "content.hash"
SCALING_TAG = "label_scaling"
MODE_TAG = "mode"  # labels.mode of the version: classification or regression (absent: classification)
REJECTED_TAG = "promotion.rejected"
TRAINING_TAG = "training.key"  # assay + data + params + code (ms2img.training.stage.training_provenance)
STATUS_TAG = "promotion.status"  # pending (registered, not yet judged), champion, challenger, not-winner, abandoned,
PENDING = "pending"  # retired (a champion the alias moved away from), superseded (a challenger a newer one replaced)
RETIRED = "retired"
SUPERSEDED = "superseded"


def model_name(assay: str, kind: str | None = None, prefix: str = "ms2img") -> str:
    """Registered model of an assay: ``ms2img-DPPH`` (every family is a version of it; ``kind`` is ignored)."""
    return f"{prefix}-{assay}"


def mlflow_client():
    from mlflow import MlflowClient

    return MlflowClient()


def alias_version(name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow_client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str, reason: str) -> None:
    """Point ``alias`` at ``version`` with the reason and time as tags. Moving the champion alias also moves the
    ``promotion.status`` tag: the new holder is ``champion`` (its ``promotion.rejected`` tag goes) and the one it
    replaces ``retired`` (several versions read "champion" in the registry's list after promotions and rollbacks,
    while one held the alias); the challenger alias likewise leaves its last holder ``superseded``, if that still
    read ``challenger``."""
    client = mlflow_client()
    before = alias_version(name, alias) if alias in (CHAMPION, CHALLENGER) else None
    client.set_registered_model_alias(name, alias, version)
    moved = before is not None and before != str(version)
    if alias == CHAMPION:
        client.set_model_version_tag(name, version, STATUS_TAG, CHAMPION)
        if REJECTED_TAG in client.get_model_version(name, str(version)).tags:  # a rollback to a once-rejected version
            client.delete_model_version_tag(name, str(version), REJECTED_TAG)
        if moved:
            client.set_model_version_tag(name, before, STATUS_TAG, RETIRED)
    elif moved and client.get_model_version(name, before).tags.get(STATUS_TAG) == CHALLENGER:
        client.set_model_version_tag(name, before, STATUS_TAG, SUPERSEDED)
    client.set_model_version_tag(name, version, f"alias.{alias}.reason", reason[:4900])
    client.set_model_version_tag(name, version, f"alias.{alias}.at", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    log.info("%s: alias %s -> version %s (%s)", name, alias, version, reason)


def next_version(name: str) -> str:
    """The version number the registry will give the next registration of ``name``."""
    from mlflow.exceptions import MlflowException

    try:
        versions = mlflow_client().search_model_versions(f"name='{name}'")
    except MlflowException:
        return "1"
    return str(max((int(v.version) for v in versions), default=0) + 1)


def model_versions(name: str) -> list:
    from mlflow.exceptions import MlflowException

    try:
        return list(mlflow_client().search_model_versions(f"name='{name}'"))
    except MlflowException:
        return []


def require_model(name: str) -> None:
    """Raise a clear ConfigError when ``name`` is not registered (nothing is changed)."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client().get_registered_model(name)
    except MlflowException:
        raise ConfigError(
            f"no registered model '{name}' (train the assay and run `ms2img promote --assay ...`)"
        ) from None


def require_alias(name: str, alias: str) -> str:
    """The version ``alias`` points at; a clear ConfigError when the model or the alias does not exist."""
    require_model(name)
    version = alias_version(name, alias)
    if version is None:
        rejected = [v for v in model_versions(name) if REJECTED_TAG in v.tags] if alias == CHAMPION else []
        if rejected:  # promotion ran and refused: say why, not "promote a version"
            newest = max(rejected, key=lambda v: int(v.version))
            raise ConfigError(f"'{name}' has no champion: promotion of version {newest.version} said: "
                              f"{newest.tags[REJECTED_TAG]}")  # fmt: skip
        raise ConfigError(f"'{name}' has no '{alias}' alias yet (promote a version: `ms2img promote --assay ...`)")
    return version


def content_hash(folder: str | Path) -> str:
    """SHA-256 over a model folder's file names and bytes: the same folder is registered once."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(f.relative_to(folder)).encode())
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def version_tags(name: str, version: str) -> dict[str, str]:
    return dict(mlflow_client().get_model_version(name, version).tags)


def score_tag(mode: str) -> str:
    """The version tag holding the cross-validated mean of the score that promotes (``auc_mean``; regression:
    ``spearman_mean``)."""
    from ms2img.training.scores import PRIMARY

    return f"{PRIMARY.get(mode, 'auc')}_mean"


def float_tag(tags: dict[str, str], key: str) -> float:
    try:
        return float(tags[key])
    except (KeyError, ValueError):
        return math.nan


# ----------------------------------------------------------------------------------------------- locking
@contextlib.contextmanager
def registry_lock(name: str, timeout: float = 600.0) -> Iterator[Path | None]:
    """An exclusive lock for ``name``'s aliases next to a local store (sqlite / file); no-op for a server store
    (there the re-check before moving the alias does the compare-and-set)."""
    import mlflow

    uri = mlflow.get_tracking_uri()
    folder = None
    if uri.startswith("sqlite:///"):
        folder = Path(uri[len("sqlite:///") :]).resolve().parent
    elif uri.startswith("file:") or "://" not in uri:
        folder = Path(uri.removeprefix("file://").removeprefix("file:")).resolve()
    if folder is None:
        yield None
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.promote.lock"
    with path.open("a+") as fh:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ConfigError(f"another promotion of '{name}' holds {path} for over {timeout:.0f} s") from None
                time.sleep(0.2)
        try:
            yield path
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
