"""params.yaml: the one place for seeds, thresholds and sizes; DVC tracks its dotted keys."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from ms2img.errors import ConfigError

DEFAULT_PARAMS_PATH = Path("params.yaml")


def load_params(path: str | Path = DEFAULT_PARAMS_PATH, profile: str | None = None) -> dict[str, Any]:
    """Read params.yaml; with ``profile`` apply its dotted overrides (``profiles.quick``: ``cnn.epochs: 15``)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found (run from the project root or pass --params)")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if profile is not None:
        params = apply_profile(params, profile)
    return params


def apply_profile(params: dict[str, Any], profile: str) -> dict[str, Any]:
    """Return a copy of ``params`` with the dotted overrides of ``profiles.<profile>`` applied."""
    profiles = params.get("profiles", {})
    if profile not in profiles:
        raise ConfigError(f"unknown profile '{profile}'; params.yaml defines {sorted(profiles)}")
    out = copy.deepcopy(params)
    for dotted, value in (profiles[profile] or {}).items():
        node = out
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return out


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested params to dotted keys, e.g. for ``mlflow.log_params``."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
