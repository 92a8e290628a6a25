"""params.yaml: the one place for seeds, thresholds and sizes; DVC tracks its dotted keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ms2img.errors import ConfigError

DEFAULT_PARAMS_PATH = Path("params.yaml")


PROFILES_DIR = Path("profiles")


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """Read params.yaml: the values in it are the values that run (DVC records exactly these)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found (run from the project root or pass --params)")
    return read_yaml(path)


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML file of settings ({} when empty); ConfigError in one line naming the file and line when it is not YAML."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:  # DVC reads it as UTF-8 too (not io.text: every stage imports params)
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}, line {line}: not UTF-8 (a character such as µ saved by an older editor); save "
                          "it as UTF-8") from None  # fmt: skip
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(path, text, exc)) from None


def yaml_problem(path: Path, text: str, exc: yaml.YAMLError) -> str:
    """One line for a YAML error: file, line, the parser's problem, the line itself, and for an unquoted value
    that YAML reads as syntax (a unit such as % inhibition), the cure."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    lines = text.splitlines()
    if mark is None or not 0 <= mark.line < len(lines):
        return f"{path}: not valid YAML: {problem}"
    cure = ""
    if "cannot start any token" in problem or "mapping values are not allowed" in problem:
        cure = " (a value that starts with % @ ` or holds ': ' needs quotes, e.g. TPC: \"% inhibition\")"
    return f"{path}, line {mark.line + 1}: not valid YAML: {problem} in {lines[mark.line].strip()!r}{cure}"


def profile_overrides(name: str, root: str | Path = ".") -> dict[str, Any]:
    """The dotted overrides of ``profiles/<name>.yaml`` (e.g. the paper's protocol)."""
    path = Path(root) / PROFILES_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(root) / PROFILES_DIR).glob("*.yaml"))
        raise ConfigError(f"unknown profile '{name}' ({path} not found); profiles: {known}")
    return read_yaml(path)


def set_cli_args(overrides: dict[str, Any]) -> list[str]:
    """``dvc exp run`` arguments that set ``overrides`` (``-S key=value`` in YAML flow style)."""
    args = []
    for key, value in overrides.items():
        text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
        args += ["-S", f"{key}={text}"]
    return args


def _represent_float(representer: Any, value: float) -> Any:
    """Floats as YAML 1.1 floats (``1.0e-06``, not ``1e-06``, which PyYAML would read back as a string)."""
    text = repr(float(value))
    mantissa, _, exponent = text.partition("e")
    if exponent and "." not in mantissa:
        text = f"{mantissa}.0e{exponent}"
    return representer.represent_scalar("tag:yaml.org,2002:float", text)


def apply_overrides(params_path: str | Path, overrides: dict[str, Any]) -> list[str]:
    """Write dotted ``overrides`` into params.yaml keeping its comments (round-trip YAML, as ``dvc exp run -S``
    does); returns the keys whose value changed. Nothing is written when nothing changes."""
    from ruamel.yaml import YAML

    path = Path(params_path)
    rt = YAML()
    rt.preserve_quotes = True
    rt.representer.add_representer(float, _represent_float)
    doc = rt.load(path.read_text(encoding="utf-8"))
    changed = []
    for dotted, value in overrides.items():
        node = doc
        *parents, leaf = dotted.split(".")
        for key in parents:
            if key not in node:
                raise ConfigError(f"{path}: no section '{key}' for override '{dotted}'")
            node = node[key]
        if node.get(leaf) != value:
            node[leaf] = value
            changed.append(dotted)
    if changed:
        import io

        from ms2img.atomic import write_text

        buf = io.StringIO()
        rt.dump(doc, buf)
        write_text(path, buf.getvalue())
    return changed


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
