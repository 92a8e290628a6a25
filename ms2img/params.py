"""params.yaml: the one place for seeds, thresholds and sizes; DVC tracks its dotted keys."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ms2img.errors import ConfigError

DEFAULT_PARAMS_PATH = Path("params.yaml")


PROFILES_DIR = Path("profiles")


def load_params(path: str | Path = DEFAULT_PARAMS_PATH) -> dict[str, Any]:
    """Read params.yaml and check every key it holds against :data:`SCHEMA`: the values in it are the values that
    run (DVC records exactly these), so a misspelt key (``cv.fold``) or a value no stage can use (``cnn.ensemble:
    0``, ``blank_subtraction: 'false'``) is refused in one line naming the file and line before any work starts,
    not silently ignored or found after hours of training."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: parameters file not found (run from the project root or pass --params)")
    params = read_yaml(path)
    check_params(params, path)
    return params


# Every key params.yaml may hold and what its value must be (tests/test_params.py: the shipped params.yaml and
# profiles hold exactly these, bar the optional ones). Ranges a stage checks against the data (folds against
# class sizes, sizes against the image) stay with that stage.
SCHEMA: dict[str, dict[str, str]] = {
    "base": {"seed": "seed"},
    "synth": {"accessions": "int>=1", "replicates": "int>=1", "seed": "seed", "polarity": "str"},
    "ingest": {"sample_types": "list", "blank_subtraction": "bool", "blank_fold": "number>0",
               "join_mz_tol_da": "number>0", "rt_unit": "str", "allow_mixed_polarity": "bool",
               "polarity": "str"},
    "validate": {"policy": "str", "mz_min": "number>=0", "mz_max": "number>0", "fragment_tolerance_da": "number>=0",
                 "max_above_precursor_share": "number>=0", "max_intensity": "number>0"},
    "render": {"size": "str", "sizes": "list", "x_range": "range", "y_range": "range", "aggregation": "str",
               "transform": "str", "per_replicate": "bool", "width": "int>=1", "height": "int>=1",
               "mask_diagonal": "bool", "ppm_jitter": "number>=0"},
    "labels": {"assays": "list", "mode": "str", "low": "number>=0", "high": "number>=0", "units": "map|null"},
    "cv": {"folds": "int>=2|auto", "repeats": "int>=1|auto", "seed": "seed"},
    "resolution": {"assays": "list|empty", "folds": "int>=2", "trials": "int>=1", "epochs": "int>=1",
                   "ensemble": "int>=1"},
    "train": {"families": "list"},
    "cnn": {"architecture": "str", "epochs": "int>=1", "min_epochs": "int>=0", "intensity_weight": "number>0",
            "relevance_power": "number>=0", "patience": "int>=0", "passes_per_epoch": "int>=1", "batch_size": "int>=1",
            "ensemble": "int>=1", "cross_fit": "bool"},
    "tune": {"trials": "int>=1", "objective": "str", "validation_split": "number>0|auto", "space": "map"},
    "features": {"mz_tol_ppm": "number>0", "mz_sigma_ppm": "number>0|null", "mz_sigma_factor": "number>0",
                 "rt_tol_min": "number>0", "ms2_tol_da": "number>0", "threshold": "number>0", "similarity": "list"},
    "baselines": {"rf_trees": "list[trees]", "rf_max_features": "list", "oplsda_cv_folds": "int>=2|auto",
                  "oplsda_permutations": "int>=0"},
    "registry": {"model_prefix": "str", "z": "number>=0", "beyond_chance": "bool"},
    "serve": {"port": "int>=1", "host": "str", "max_rows": "int>=1", "workers": "int>=0", "max_bytes": "int>=1"},
    "schedule": {"cron": "str", "watch_minutes": "number>0"},
    "explain": {"block": "int>=1", "stride": "int>=1|null", "refit": "bool", "n_repeats": "int>=1",
                "conditional": "bool", "direction_first": "bool",
                "mz_ppm": "number>0", "rt_tol_min": "number>0", "min_accessions": "int>=1", "top": "int>=1",
                "libraries": "any", "ms1_tol_da": "number>0", "ms2_tol_da": "number>0", "translator_url": "str|null",
                "translator_timeout_s": "number>0", "translator_top": "int>=1", "seed": "seed"},
}  # fmt: skip
# read with a default when absent; not in the shipped params.yaml (render: RenderConfig's own fields)
OPTIONAL = {"serve.workers", "serve.max_bytes", "synth.polarity", "explain.conditional", "explain.direction_first",
            "render.width", "render.height", "render.mask_diagonal", "render.ppm_jitter"}  # fmt: skip
MAX_TREES = 100_000  # a forest larger than this adds nothing measurable and may not fit in memory


def _number(value: Any) -> float | None:
    """A finite number as YAML gives it, or as text that reads as one (PyYAML 1.1 reads ``1.0e12`` and ``1e12`` as
    text: the code converts them with float()); None otherwise."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def value_problem(kind: str, value: Any) -> str | None:
    """Why ``value`` is not a ``kind`` of :data:`SCHEMA`, or None."""
    if kind == "any" or (value is None and kind.endswith(("|null", "|empty"))):  # resolution.assays: none
        return None
    base = kind.removesuffix("|null").removesuffix("|auto").removesuffix("|empty")
    if kind.endswith("|auto") and str(value).strip().lower() == "auto":
        return None
    if base == "bool":
        return None if isinstance(value, bool) else "must be true or false (unquoted)"
    if base == "str":
        return None if isinstance(value, str) and value.strip() else "must be a text"
    if base == "map":
        return None if isinstance(value, dict) else "must be a mapping of key: value lines"
    if base.startswith("list"):
        if not isinstance(value, list) or (not value and not kind.endswith("|empty")):
            return "must be a list, e.g. [a, b]" + ("" if kind.endswith("|empty") else " (not empty)")
        if base == "list[trees]":
            bad = [v for v in value if value_problem("int>=1", v) or int(v) > MAX_TREES]
            return f"must list whole numbers of trees from 1 to {MAX_TREES:,}; got {bad[0]!r}" if bad else None
        return None
    if base == "range":
        lo, hi = (_number(v) for v in value) if isinstance(value, list) and len(value) == 2 else (None, None)
        ok = lo is not None and hi is not None and 0 <= lo < hi
        return None if ok else "must be [low, high] m/z with 0 <= low < high"
    whole = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip().isdigit()
    )  # a quoted "5" reads as 5 where the code takes int(); "2e5" or 5.0 does not
    if base == "seed":
        return None if whole and 0 <= int(value) < 2**32 else f"must be a whole number from 0 to {2**32 - 1}"
    number = _number(value)
    if base.startswith("int") and not whole:
        return "must be a whole number" + (" or auto" if kind.endswith("|auto") else "")
    if number is None:
        return "must be a number"
    limit = base.split(">", 1)[1] if ">" in base else None
    if limit is not None:
        least = float(limit.removeprefix("="))
        if number < least or (not limit.startswith("=") and number == least):
            return f"must be {'>=' if limit.startswith('=') else '>'} {least:g}"
    return None


def check_params(params: Any, path: str | Path = DEFAULT_PARAMS_PATH) -> None:
    """Every key of ``params`` known to :data:`SCHEMA` and its value of the right kind; ConfigError in one line
    naming the file, the key's line and the closest known key (``cv.fold``: did you mean ``cv.folds``?)."""
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: must be a mapping of sections (base:, cv:, ...), got {type(params).__name__}")
    for section, values in params.items():
        if section not in SCHEMA:
            raise ConfigError(_unknown(path, str(section), list(SCHEMA)))
        if not isinstance(values, dict):
            raise ConfigError(_at(path, section, f"section {section} must hold key: value lines, got {values!r}"))
        for key, value in values.items():
            check_key(path, f"{section}.{key}", value)


def check_key(path: str | Path, dotted: str, value: Any) -> None:
    """One ``section.key: value`` of ``path`` against :data:`SCHEMA` (params.yaml's sections, a profile's dotted
    keys); ConfigError naming the line and the closest known key."""
    section, _, key = dotted.partition(".")
    if key not in SCHEMA.get(section, {}):
        sections = [section] if section in SCHEMA else list(SCHEMA)  # a misspelt key, or a misspelt section
        raise ConfigError(_unknown(path, dotted, [f"{s}.{k}" for s in sections for k in SCHEMA[s]]))
    problem = value_problem(SCHEMA[section][key], value)
    if problem:
        raise ConfigError(_at(path, dotted, f"{dotted} {problem}; got {value!r}"))


def _unknown(path: str | Path, dotted: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(dotted, known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else f"; known: {', '.join(known)}"
    return _at(path, dotted, f"unknown key {dotted}{hint}")


def _at(path: str | Path, dotted: str, message: str) -> str:
    """``message`` prefixed with the file and, when the file is there to read, the line of ``dotted``."""
    line = _key_line(Path(path), dotted)
    return f"{path}{f', line {line}' if line else ''}: {message}"


def _key_line(path: Path, dotted: str) -> int | None:
    try:
        node = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    line = None
    if isinstance(node, yaml.MappingNode):  # a profile's keys are dotted at the top: "cnn.epochs: 80"
        flat = next((k for k, _ in node.value if getattr(k, "value", None) == dotted), None)
        if flat is not None:
            return flat.start_mark.line + 1
    for part in dotted.split("."):
        if not isinstance(node, yaml.MappingNode):
            return line
        found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
        if found is None:
            return line
        line, node = found[0].start_mark.line + 1, found[1]
    return line


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
        return yaml.load(text, Loader=_UniqueKeyLoader) or {}  # a SafeLoader that refuses repeated keys
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_problem(path, text, exc)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; DVC (ruamel) refuses the file, so ``dvc repro`` and ms2img would
    disagree on what runs. A repeated key is an error on its line here too."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark
                )
            if isinstance(key, str | int | float | bool):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


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
    overrides = read_yaml(path)
    for dotted, value in overrides.items():  # checked before any of it is written into params.yaml
        check_key(path, str(dotted), value)
    return overrides


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
