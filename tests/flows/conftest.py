"""A tiny ms2img project for the flow and DVC pipeline tests.

``make_project`` builds, in a temp folder, what a lab's repository holds after ``make demo``'s first step: a git
repository with the checkout's dvc.yaml and profiles/, a shrunken params.yaml (one assay, 24 accessions, 2 folds x
1 repeat, a 1-epoch CNN with 1 tuner trial, 75x70 images, 10 RF trees, 3 permutations, a quick explain), a copy of
ms2img/ (the stages list its files as dependencies), ``dvc init`` with a local default remote, and the synthetic
cohort in data/raw tracked by data/raw.dvc. ``project_env`` points MLflow at the project's own SQLite store and
makes the project the cwd.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ASSAY = "elastase"  # synth seed 42 x 24 accessions: 8 low / 11 high / 5 middle

# Prefect writes its home (profiles, temporary-server database) here, never into ~/.prefect; set before the
# first `import prefect` of this session where possible (the harness test also uses its own database).
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="ms2img-prefect-home-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
os.environ.setdefault("DO_NOT_TRACK", "1")

TINY = {
    "synth.accessions": 24,
    "labels.assays": [ASSAY],
    "render.size": "75x70",
    "render.sizes": ["75x70"],
    "cv.folds": 2,
    "cv.repeats": 1,
    "cnn.epochs": 1,
    "cnn.ensemble": 1,
    "tune.trials": 1,
    "resolution.assays": [ASSAY],
    "resolution.epochs": 1,
    "baselines.rf_trees": [10],
    "baselines.rf_max_features": ["sqrt"],
    "baselines.oplsda_cv_folds": 2,
    "baselines.oplsda_permutations": 3,
    "explain.refit": False,
    "explain.n_repeats": 1,
    "explain.top": 10,
    "registry.beyond_chance": False,  # 24 accessions, 1-epoch CNN: its interval reaches chance; these test the flow
}


@dataclass
class Project:
    """A temp ms2img project: paths, its DVC remote and MLflow store, and helpers to run commands in it."""

    root: Path
    remote: Path | None
    tracking_uri: str

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw"

    def sh(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in the project with the venv's bin first on PATH and the project's MLflow store."""
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        env["MLFLOW_TRACKING_URI"] = self.tracking_uri
        opts = {"cwd": self.root, "env": env, "capture_output": True, "text": True, "timeout": 900}
        proc = subprocess.run(list(cmd), check=False, **opts)
        if check and proc.returncode != 0:
            tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{tail}")
        return proc

    def dvc(self, *args: str, check: bool = True) -> str:
        proc = self.sh(str(BIN / "dvc"), *args, check=check)
        return proc.stdout + proc.stderr

    def status(self, *args: str) -> dict:
        """``dvc status --json [ARGS]``: stage name -> what changed; {} when everything is up to date."""
        return json.loads(self.dvc("status", "--json", *args).strip() or "{}")

    def json(self, rel: str) -> dict:
        return json.loads((self.root / rel).read_text())

    def set_param(self, dotted: str, value) -> None:
        """Set a dotted parameter in params.yaml."""
        path = self.root / "params.yaml"
        params = yaml.safe_load(path.read_text())
        _set_dotted(params, dotted, value)
        path.write_text(yaml.safe_dump(params, sort_keys=False))

    def ran_stages(self, output: str) -> set[str]:
        """Stages ``dvc repro`` (or a flow) ran, from DVC's "Running stage 'NAME':" lines."""
        return set(re.findall(r"Running stage '([^']+)'", output))

    def mtimes(self, *rels: str) -> dict[str, int]:
        """Modification times (ns) of every file under the given paths: a stage that re-ran changes them."""
        out = {}
        for rel in rels:
            path = self.root / rel
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                out[str(f.relative_to(self.root))] = f.stat().st_mtime_ns
        return out

    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def versions(self, name: str) -> list[str]:
        return sorted((str(v.version) for v in self.client().search_model_versions(f"name='{name}'")), key=int)

    def champion(self, name: str):
        return self.client().get_model_version_by_alias(name, "champion")


def _set_dotted(params: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value


def make_project(root: Path, *, remote: bool = True, overrides: dict | None = None) -> Project:
    """Build the tiny project in ``root`` (about 10 s): git + DVC + shrunken params + profiles + synthetic data/raw.

    ``overrides`` (dotted keys) change the tiny params further, e.g. two assays and forests only."""
    root.mkdir(parents=True, exist_ok=True)
    store = root.parent / f"{root.name}-remote" if remote else None
    project = Project(root=root, remote=store, tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    project.sh("git", "init", "-q")
    project.sh("git", "config", "user.email", "tests@ms2img.invalid")
    project.sh("git", "config", "user.name", "ms2img tests")
    shutil.copy(REPO_ROOT / "dvc.yaml", root / "dvc.yaml")
    shutil.copy(REPO_ROOT / ".gitignore", root / ".gitignore")
    shutil.copytree(REPO_ROOT / "ms2img", root / "ms2img", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copytree(REPO_ROOT / "profiles", root / "profiles")

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for dotted, value in {**TINY, **(overrides or {})}.items():
        _set_dotted(params, dotted, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    project.dvc("init", "-q")
    shutil.copy(REPO_ROOT / ".dvcignore", root / ".dvcignore")  # after init, which writes its own
    project.dvc("config", "core.analytics", "false")
    project.dvc("config", "core.autostage", "true")
    if store is not None:
        project.dvc("remote", "add", "-d", "localstore", str(store))
    project.sh(str(BIN / "ms2img"), "synth", "--out", "data/raw")
    project.dvc("add", "data/raw")
    project.sh("git", "add", "-A")
    project.sh("git", "commit", "-q", "-m", "tiny ms2img project")
    return project


@contextlib.contextmanager
def project_env(project: Project) -> Iterator[Project]:
    """The project as cwd, its SQLite store as MLFLOW_TRACKING_URI; MLflow's global URI restored afterwards."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    previous = tracking_utils._tracking_uri
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", project.tracking_uri)
        mp.delenv("MS2IMG_PROJECT_DIR", raising=False)
        mp.chdir(project.root)
        try:
            yield project
        finally:
            mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory):
    """Factory: ``tiny_project("name", remote=True)`` builds a fresh tiny project (see the module docstring)."""

    def build(name: str, remote: bool = True, overrides: dict | None = None) -> Project:
        return make_project(tmp_path_factory.mktemp(name) / "project", remote=remote, overrides=overrides)

    return build


@pytest.fixture(scope="session")
def in_project():
    """``with in_project(project): ...`` runs with the project as cwd and its MLflow store as the tracking URI."""
    return project_env


@dataclass
class Reproduced:
    """The session project and what its first `dvc repro` left (a snapshot: later tests retrain the project)."""

    project: Project
    status_before: dict  # `dvc status` of the fresh project
    output: str  # what the first `dvc repro` printed
    metrics: dict[str, dict]  # metrics/*.json right after it
    champion: dict  # version and tags of the champion of every labels.assays model right after it
    data_hash: str  # DVC's hash of data/raw it ran on


@pytest.fixture(scope="session")
def reproduced(tiny_project) -> Reproduced:
    """The session's trained project: built, then one `dvc repro` from scratch (several minutes on 2 cores: every
    family is trained, promoted and explained, and the report is built; only the slow tests use it).

    test_dvc_pipeline.py checks that repro and changes parameters; test_retrain.py then drives the same project
    with the flow (new data, force, faults), so the CNN is trained from scratch once per session. Each test
    asserts relative to the state it finds (model versions before/after), not on a global count.
    """
    project = tiny_project("pipeline")
    with project_env(project):
        before = project.status()
        output = project.dvc("repro")
        metrics = {f.name: json.loads(f.read_text()) for f in sorted((project.root / "metrics").glob("*.json"))}
        champion = {}
        for assay in TINY["labels.assays"]:
            with contextlib.suppress(Exception):  # the test says what is missing
                mv = project.champion(f"ms2img-{assay}")
                champion[assay] = {"version": str(mv.version), "tags": dict(mv.tags)}
        from ms2img.tracking import data_hash

        return Reproduced(project, before, output, metrics, champion, data_hash(project.raw))


@pytest.fixture
def project(reproduced) -> Iterator[Project]:
    """The session's trained project, as cwd with its MLflow store (per test: nothing leaks to other tests)."""
    with project_env(reproduced.project) as p:
        yield p
