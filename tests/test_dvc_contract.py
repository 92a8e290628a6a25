"""dvc.yaml tells the truth about the code each stage runs; the package has no import cycles and no huge modules.

Each stage's ``cmd`` runs ``ms2img <subcommand>`` (the ``ms2img`` entry point, ``ms2img/cli.py``, which runs
``ms2img/commands/<subcommand>.py``). The code that stage runs is the transitive closure of those modules' imports
inside ``ms2img/``, read with :mod:`ast`: ``import x`` and ``from x import y`` anywhere in a module (function-level
imports included: they run when the stage does), each package's ``__init__.py`` included (Python runs it on the
way to a submodule). Every file of that closure must be covered by a ``deps`` entry of the stage: the file itself
or a folder above it. Otherwise ``dvc repro`` calls a stage up to date after its code changed, and dvc.lock, the
audit record, lies.

Run ``python -m tests.test_dvc_contract`` (or ``python tests/test_dvc_contract.py``) from the repository root for
a report of what each stage misses, with a suggested ``deps`` list; ``python -m tests.test_dvc_contract --why
ingest ms2img/registry.py`` shows the import chain that makes a stage run a file.
"""

from __future__ import annotations

import ast
import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "ms2img"
MAX_LINES = 600


# ------------------------------------------------------------------------------------------ the import graph
def module_files(repo: Path = REPO) -> dict[str, Path]:
    """Every module of the package: dotted name -> file (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted((repo / PACKAGE).rglob("*.py")):
        rel = path.relative_to(repo).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module, module_level_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Import statements of a module that can run: never those under ``if TYPE_CHECKING:``; with
    ``module_level_only`` only those that run on import (not inside functions)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) and module_level_only:
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
        else:
            stack.extend(ast.iter_child_nodes(node))


_TREES: dict[tuple[Path, int], ast.Module] = {}


def _parse(path: Path) -> ast.Module:
    key = (path, path.stat().st_mtime_ns)
    if key not in _TREES:
        _TREES[key] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return _TREES[key]


def imported_modules(name: str, modules: dict[str, Path], module_level_only: bool = False) -> set[str]:
    """The package's modules that module ``name`` imports by name (``from pkg import sub`` -> ``pkg.sub`` when it is
    a module, else ``pkg``). Parent packages are not added here (see :func:`with_parents`)."""
    path = modules[name]
    tree = _parse(path)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in _import_nodes(tree, module_level_only):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = name.split(".")
                base_parts = base_parts[: len(base_parts) - node.level + (1 if is_pkg else 0)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = []
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                targets.append(sub if sub in modules else base)
        for target in targets:
            # the longest prefix that is a module of ours (``import ms2img.io.schema`` -> ms2img.io.schema)
            parts = target.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts and parts[0] == PACKAGE:
                out.add(".".join(parts))
    out.discard(name)
    return out


def with_parents(names: Iterable[str], modules: dict[str, Path]) -> set[str]:
    """Add every parent package: importing ``a.b.c`` runs ``a/__init__.py`` and ``a/b/__init__.py`` first."""
    out = set()
    for name in names:
        parts = name.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules)
    return out


def runtime_closure(roots: Iterable[str], modules: dict[str, Path]) -> set[str]:
    """Every module of the package that running ``roots`` can execute (all imports, parents included)."""
    todo = list(with_parents(roots, modules))
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(with_parents(imported_modules(name, modules), modules) - seen)
    return seen


def import_cycles(modules: dict[str, Path], module_level_only: bool = False) -> list[list[str]]:
    """Strongly connected components (size > 1, or a self-import) of the import graph: every import, those inside
    functions included (they run too, just later), unless ``module_level_only``.

    An edge goes to each module imported by name and to the parent packages of that module that the importer does
    not itself belong to (a submodule importing a sibling does not re-run its own package's ``__init__``).
    """
    graph: dict[str, set[str]] = {}
    for name in modules:
        own = {".".join(name.split(".")[:i]) for i in range(1, len(name.split(".")) + 1)}
        direct = imported_modules(name, modules, module_level_only=module_level_only)
        graph[name] = (with_parents(direct, modules) - own) | (direct - {name})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:  # Tarjan; the package is small enough for recursion
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return cycles


def cycle_edges(cycle: list[str], modules: dict[str, Path]) -> list[str]:
    """The imports inside one cycle, ``a -> b``, for the failure message."""
    members = set(cycle)
    return [f"{a} -> {b}" for a in cycle for b in sorted(imported_modules(a, modules) & members)]


# ------------------------------------------------------------------------------------------ dvc.yaml
_REF = re.compile(r"\$\{\s*([^}]+?)\s*\}")


def _lookup(context: dict[str, Any], dotted: str) -> Any:
    value: Any = context
    for key in dotted.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _substitute(obj: Any, context: dict[str, Any]) -> Any:
    """Resolve ``${a.b}`` (and ``${item}``) in every string of ``obj``; unresolvable references stay as they are."""
    if isinstance(obj, str):
        whole = _REF.fullmatch(obj.strip())
        if whole:
            try:
                return _lookup(context, whole.group(1))
            except (KeyError, IndexError, TypeError, ValueError):
                return obj

        def one(m: re.Match) -> str:
            try:
                return str(_lookup(context, m.group(1)))
            except (KeyError, IndexError, TypeError, ValueError):
                return m.group(0)

        return _REF.sub(one, obj)
    if isinstance(obj, list):
        return [_substitute(v, context) for v in obj]
    if isinstance(obj, dict):
        return {_substitute(k, context): _substitute(v, context) for k, v in obj.items()}
    return obj


def load_stages(repo: Path = REPO) -> dict[str, dict[str, Any]]:
    """dvc.yaml's stages with ``foreach``/``do`` expanded (``name@item``) and ``${...}`` resolved from params.yaml
    and dvc.yaml's ``vars`` (enough of DVC's templating to read each stage's cmd and deps)."""
    dvc = yaml.safe_load((repo / "dvc.yaml").read_text(encoding="utf-8")) or {}
    params_file = repo / "params.yaml"
    context: dict[str, Any] = {}
    if params_file.exists():
        context = yaml.safe_load(params_file.read_text(encoding="utf-8")) or {}
    for var in dvc.get("vars") or []:
        if isinstance(var, dict):
            context.update(var)
        elif isinstance(var, str) and (repo / var.split(":")[0]).is_file():
            context.update(yaml.safe_load((repo / var.split(":")[0]).read_text(encoding="utf-8")) or {})
    stages: dict[str, dict[str, Any]] = {}
    for name, stage in (dvc.get("stages") or {}).items():
        if isinstance(stage, dict) and "foreach" in stage:
            items = _substitute(stage["foreach"], context)
            pairs = items.items() if isinstance(items, dict) else ((str(i), i) for i in items)
            for key, item in pairs:
                ctx = {**context, "item": item, "key": key}
                stages[f"{name}@{key}"] = _substitute(stage["do"], ctx)
        else:
            stages[name] = _substitute(stage, context)
    return stages


def subcommands(cmd: str | list[str]) -> list[str]:
    """The ``ms2img`` subcommands a stage's cmd runs (``ms2img render ...``, ``python -m ms2img.cli render ...``)."""
    found = []
    for line in [cmd] if isinstance(cmd, str) else cmd:
        for part in re.split(r"&&|\|\||;|\|", line):
            try:
                tokens = shlex.split(part)
            except ValueError:
                tokens = part.split()
            for i, tok in enumerate(tokens):
                rest = None
                if Path(tok).name == PACKAGE:
                    rest = tokens[i + 1 :]
                elif tok == "-m" and i + 1 < len(tokens) and tokens[i + 1] in (PACKAGE, f"{PACKAGE}.cli"):
                    rest = tokens[i + 2 :]
                if rest is not None:
                    sub = next((t for t in rest if not t.startswith("-")), None)
                    if sub:
                        found.append(sub)
                    break
    return found


def _dep_paths(stage: dict[str, Any]) -> list[str]:
    out = []
    for dep in stage.get("deps") or []:
        out.extend(dep.keys() if isinstance(dep, dict) else [dep])
    return [str(d).strip().rstrip("/").removeprefix("./") for d in out]


def _covered(rel: str, deps: list[str]) -> bool:
    return any(rel == d or rel.startswith(d + "/") for d in deps)


def stage_code(stage: dict[str, Any], modules: dict[str, Path], repo: Path = REPO) -> tuple[list[str], list[str]]:
    """``(code files the stage runs, subcommands without a module)``, paths relative to the repository."""
    roots, unknown = [f"{PACKAGE}.cli"], []
    for sub in dict.fromkeys(subcommands(stage.get("cmd", ""))):
        name = f"{PACKAGE}.commands.{sub}"
        (roots if name in modules else unknown).append(name if name in modules else sub)
    files = {modules[m].relative_to(repo).as_posix() for m in runtime_closure(roots, modules)}
    return sorted(files), unknown


def suggest_deps(missing: Iterable[str], code: Iterable[str], deps: Iterable[str], repo: Path = REPO) -> list[str]:
    """The stage's existing code deps plus a short list covering ``missing``: a folder when every module in it
    (recursively) is code the stage runs, else the file."""
    needed = set(code)
    out = {d for d in deps if d.startswith(f"{PACKAGE}/") and (repo / d).exists()}
    for f in sorted(missing):
        best = f
        parent = Path(f).parent
        while parent.as_posix() != PACKAGE and parent != Path("."):
            if {p.relative_to(repo).as_posix() for p in (repo / parent).rglob("*.py")} <= needed:
                best = parent.as_posix()
            parent = parent.parent
        out.add(best)
    return sorted(out)


def contract_report(repo: Path = REPO) -> dict[str, dict[str, Any]]:
    """Per stage that runs ``ms2img``: the code it runs, what dvc.yaml's deps miss, and deps that do not exist."""
    modules = module_files(repo)
    report = {}
    for name, stage in load_stages(repo).items():
        if not subcommands(stage.get("cmd", "")):
            continue
        deps = _dep_paths(stage)
        files, unknown = stage_code(stage, modules, repo)
        missing = [f for f in files if not _covered(f, deps)]
        report[name] = {
            "subcommands": list(dict.fromkeys(subcommands(stage.get("cmd", "")))),
            "code": files,
            "missing": missing,
            "unknown_subcommands": unknown,
            "absent_deps": [d for d in deps if d.startswith(f"{PACKAGE}/") and not (repo / d).exists()],
            "suggested": suggest_deps(missing, files, deps, repo),
        }
    return report


def format_report(report: dict[str, dict[str, Any]], only_problems: bool = True) -> str:
    """Readable report; stages of one ``foreach`` with the same findings are shown once."""
    groups: dict[tuple, list[str]] = {}
    for name, r in report.items():
        problems = r["missing"] or r["absent_deps"] or r["unknown_subcommands"]
        if only_problems and not problems:
            continue
        key = (name.split("@")[0], tuple(r["missing"]), tuple(r["absent_deps"]), tuple(r["unknown_subcommands"]))
        groups.setdefault(key, []).append(name)
    lines = []
    for names in groups.values():
        r = report[names[0]]
        lines.append(f"stage {', '.join(repr(n) for n in names)} (ms2img {', '.join(r['subcommands'])}):")
        if r["missing"]:
            lines.append(f"  runs code its deps do not list ({len(r['missing'])}): " + ", ".join(r["missing"]))
        if r["absent_deps"]:
            lines.append("  lists deps that do not exist (dvc repro fails): " + ", ".join(r["absent_deps"]))
        if r["unknown_subcommands"]:
            lines.append("  runs subcommands without a module: " + ", ".join(r["unknown_subcommands"]))
        if r["missing"]:
            lines.append("  code deps that would cover it: " + ", ".join(r["suggested"]))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ tests
def test_the_import_graph_reader_follows_every_import_form(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "commands").mkdir()
    files = {
        "__init__.py": "",
        "cli.py": "import ms2img.errors\n",
        "errors.py": "",
        "a.py": "from ms2img.sub import b\nfrom ms2img.sub.c import thing\n",
        "sub/__init__.py": "from .c import thing\n",
        "sub/b.py": "def f():\n    import ms2img.late\n",
        "sub/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ms2img import a\nthing = 1\n",
        "late.py": "from . import errors\n",
        "unused.py": "",
        "commands/__init__.py": "",
        "commands/go.py": "from ms2img import a\n",
    }
    for rel, text in files.items():
        (pkg / rel).write_text(text)
    modules = module_files(tmp_path)
    assert imported_modules("ms2img.a", modules) == {"ms2img.sub.b", "ms2img.sub.c"}
    assert imported_modules("ms2img.sub", modules) == {"ms2img.sub.c"}  # relative, from a package
    assert imported_modules("ms2img.late", modules) == {"ms2img.errors"}
    assert imported_modules("ms2img.sub.b", modules, module_level_only=True) == set()  # function-level
    assert imported_modules("ms2img.sub.c", modules, module_level_only=True) == set()  # TYPE_CHECKING only
    closure = runtime_closure(["ms2img.commands.go"], modules)
    assert closure == {
        "ms2img",
        "ms2img.commands",
        "ms2img.commands.go",
        "ms2img.a",
        "ms2img.sub",
        "ms2img.sub.b",
        "ms2img.sub.c",
        "ms2img.late",
        "ms2img.errors",
    }
    assert import_cycles(modules) == []
    (pkg / "sub" / "c.py").write_text("import ms2img.a\nthing = 1\n")  # a -> sub.c -> a at module level
    # (importing ms2img.a runs ms2img/sub/__init__.py, which imports sub.c, which imports a)
    assert import_cycles(module_files(tmp_path)) == [["ms2img.a", "ms2img.sub", "ms2img.sub.c"]]
    (pkg / "sub" / "c.py").write_text("from ms2img.sub import b\nthing = 1\n")  # sibling import: no cycle
    assert import_cycles(module_files(tmp_path)) == []
    (pkg / "sub" / "b.py").write_text("from ms2img.sub import thing\n")  # through its own package's __init__
    assert import_cycles(module_files(tmp_path)) == [["ms2img.sub", "ms2img.sub.b", "ms2img.sub.c"]]
    (pkg / "sub" / "b.py").write_text("")
    (pkg / "sub" / "c.py").write_text("def f():\n    import ms2img.a\nthing = 1\n")  # runs later: still a cycle
    assert import_cycles(module_files(tmp_path)) == [["ms2img.a", "ms2img.sub", "ms2img.sub.c"]]
    assert import_cycles(module_files(tmp_path), module_level_only=True) == []


def test_dvc_templating_and_commands_are_read(tmp_path):
    (tmp_path / "params.yaml").write_text("labels:\n  assays: [X, Y]\n")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n"
        "  one:\n    cmd: ms2img go data && ms2img other --flag\n    deps: [ms2img/a.py, data]\n"
        "  per:\n    foreach: ${labels.assays}\n    do:\n      cmd: .venv/bin/ms2img go --assay ${item}\n"
        "      deps:\n        - metrics/${item}.json\n        - ms2img/sub/:\n            hash: md5\n"
        "  plain:\n    cmd: python -m ms2img.cli go\n"
    )
    stages = load_stages(tmp_path)
    assert sorted(stages) == ["one", "per@X", "per@Y", "plain"]
    assert stages["per@Y"]["cmd"] == ".venv/bin/ms2img go --assay Y"
    assert _dep_paths(stages["per@X"]) == ["metrics/X.json", "ms2img/sub"]
    assert subcommands(stages["one"]["cmd"]) == ["go", "other"]
    assert subcommands(stages["plain"]["cmd"]) == ["go"]
    assert _covered("ms2img/sub/b.py", ["ms2img/sub"]) and not _covered("ms2img/subway.py", ["ms2img/sub"])


_CACHED: dict[str, Any] = {}


def _report() -> dict[str, dict[str, Any]]:
    """:func:`contract_report`, computed once per test session."""
    if "report" not in _CACHED:
        _CACHED["report"] = contract_report()
    return _CACHED["report"]


def test_dvc_stage_deps_cover_the_code_each_stage_runs():
    report = _report()
    assert report, "no dvc.yaml stage runs ms2img"
    bad = {k: {**r, "absent_deps": []} for k, r in report.items() if r["missing"] or r["unknown_subcommands"]}
    if bad:
        pytest.fail(
            "dvc.yaml misses code its stages run, so `dvc repro` would call them up to date after that code changed "
            "(fix dvc.yaml; `python -m tests.test_dvc_contract` prints this report):\n" + format_report(bad),
            pytrace=False,
        )


def test_dvc_code_deps_exist():
    report = _report()
    absent = {k: r["absent_deps"] for k, r in report.items() if r["absent_deps"]}
    if absent:
        pytest.fail(
            "dvc.yaml lists code deps that do not exist (`dvc repro` fails on them): "
            + "; ".join(f"stage '{k}': {', '.join(v)}" for k, v in absent.items()),
            pytrace=False,
        )


def test_no_module_is_part_of_an_import_cycle():
    modules = module_files()
    cycles = import_cycles(modules)
    if cycles:
        pytest.fail(
            "import cycles, imports inside functions included (move the shared code down a layer):\n"
            + "\n".join(f"  {' <-> '.join(c)}: {'; '.join(cycle_edges(c, modules))}" for c in cycles),
            pytrace=False,
        )


def test_no_module_is_longer_than_the_limit():
    long = {
        p.relative_to(REPO).as_posix(): n
        for p in sorted((REPO / PACKAGE).rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    if long:
        pytest.fail(
            f"modules over {MAX_LINES} lines (split them by concern): "
            + ", ".join(f"{k} ({v})" for k, v in long.items()),
            pytrace=False,
        )


def test_training_stages_neither_run_nor_list_serving_code():
    """Editing how models are served (request check, HTTP app, pyfunc) must never make a trained model stale."""
    modules = module_files()
    for name, stage in load_stages().items():
        if "--assay" not in str(stage.get("cmd", "")) or subcommands(stage["cmd"]) != ["train"]:
            continue
        runs = [f for f in stage_code(stage, modules)[0] if f.startswith(f"{PACKAGE}/serving")]
        lists = [d for d in _dep_paths(stage) if d.startswith(f"{PACKAGE}/serving")]
        assert not runs and not lists, f"stage '{name}' runs {runs} and lists {lists} (serving code)"


def test_no_module_imports_another_modules_private_names():
    modules = module_files()
    found = []
    for name, path in modules.items():
        for node in _import_nodes(_parse(path), module_level_only=False):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
                found += [f"{name}: {node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
    found = [f for f in found if not f.endswith(".__version__")]
    assert not found, "private names imported across modules (make them public or move them): " + "; ".join(found)


def import_chain(roots: Iterable[str], target: str, modules: dict[str, Path]) -> list[str]:
    """The shortest import chain from ``roots`` to module ``target`` (breadth first), as the closure follows it."""
    start = sorted(with_parents(roots, modules))
    came: dict[str, str | None] = dict.fromkeys(start)
    queue = list(start)
    while queue:
        name = queue.pop(0)
        if name == target:
            chain = [name]
            while came[chain[-1]] is not None:
                chain.append(came[chain[-1]])
            return chain[::-1]
        for nxt in sorted(with_parents(imported_modules(name, modules), modules)):
            if nxt not in came:
                came[nxt] = name
                queue.append(nxt)
    return []


def main(argv: list[str] | None = None) -> int:
    """Print what each dvc.yaml stage misses (and a deps list covering its code); exit 1 when something is.

    ``--why SUBCOMMAND FILE`` prints the import chain by which ``ms2img SUBCOMMAND`` reaches FILE instead.
    """
    argv = sys.argv[1:] if argv is None else argv
    modules = module_files()
    if argv[:1] == ["--why"] and len(argv) == 3:
        target = next((m for m, p in modules.items() if p.relative_to(REPO).as_posix() == argv[2]), argv[2])
        chain = import_chain([f"{PACKAGE}.cli", f"{PACKAGE}.commands.{argv[1]}"], target, modules)
        print(" -> ".join(chain) if chain else f"ms2img {argv[1]} does not reach {argv[2]}")
        return 0
    report = contract_report()
    text = format_report(report)
    cycles = import_cycles(modules)
    print(text or "dvc.yaml: every stage's deps cover the code it runs")
    for c in cycles:
        print(f"import cycle: {' <-> '.join(c)} ({'; '.join(cycle_edges(c, modules))})")
    return 1 if text or cycles else 0


if __name__ == "__main__":
    sys.exit(main())
