"""``ms2img init DIR --assays A,B``: a lab's own project, ready for ``ms2img retrain``, with nothing of the demo.

The pipeline is the packaged one (``ms2img/project_template/dvc.yaml``, a copy of the checkout's dvc.yaml that a
test keeps equal). The checkout's stages list the ms2img sources they read; a lab's project has the package
installed, not in its folder, so those deps become one file, ``.ms2img-version`` (version and source hash of
the installed package, rewritten by ``ms2img retrain``): upgrading ms2img reruns the stages, as editing the
code does in the checkout.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import yaml

from ms2img.errors import ConfigError

VERSION_FILE = ".ms2img-version"
REMOTE_DIR = ".dvcstore"  # the default DVC remote: a folder inside the project (git- and DVC-ignored)
ASSAY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a file name, a DVC foreach item, a model name
SHEET_HEADER = "sample,accession,replicate,type\n"

README = """# {name}: an ms2img project

Bioactivity of extracts from LC-MS/MS data for the assays {assays} (made by `ms2img init`).

1. Put the exports in `data/raw/exports/`: MS-DIAL alignment exports (.txt), MZmine/FBMN quant tables (.csv) with
   their MGF, or mzML/mzXML. A lone MS-DIAL export holding several sample columns is split into its samples; in a
   folder of several MS-DIAL exports each file is one accession (its columns the replicates) unless the sheet says.
2. Say which sample column or file is which extract in `data/raw/sample_sheet.csv` (`sample, accession,
   replicate, type`; type is Sample, QC or Blank: blanks and QCs never train; empty keeps an MS-DIAL export's
   File type, else Sample; injections of one extract share its accession). Without rows, each sample column is
   its own accession.
3. Put the measured activities in `data/raw/assays.csv`: `accession` and one column per assay ({assays}), and
   their units in `params.yaml` (`labels.units`: replace the placeholder `units`, e.g. `"% inhibition"` in quotes).
4. Check what ingest makes of it: `ms2img ingest data/raw/exports --out /tmp/events` (prints how files became
   accessions; nothing in the project changes).
5. Train, promote and report: `ms2img retrain` (the Prefect flow; `--force` retrains, `--assays A` only those).
   The champion of each assay is `{prefix}-<assay>` in the MLflow registry (`mlflow.db` here); serve it with
   `ms2img serve --assay {first}`. The report is `report/index.html`.
6. Record the run: `git add -A && git commit -m "retrain"` (data and models are in DVC: `{remote}/`, the
   default remote; point it elsewhere with `dvc remote modify local url ...`).

Settings are in `params.yaml` (`auto` ones are decided from the cohort and printed); `ms2img retrain --profile
paper` applies the paper's protocol (`profiles/paper.yaml`, GPU).
"""

GITIGNORE = """# local stores (a team points at servers instead)
/mlruns/
/mlartifacts/
/mlflow.db
/kt/
/.prefect/
/{remote}/
/dvc_plots/
# train@ runs outside `dvc repro`, so DVC writes no models/.gitignore
/models/
/.ms2img-*.promote.lock
# reports of lab exports checked with `ms2img validate EXPORT` before they enter the project
/validation/
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``init`` subcommand."""
    p = subparsers.add_parser(
        "init",
        help="start a project for your own data: dvc.yaml, params.yaml, data/raw templates, git + DVC",
        description=(
            "Create DIR (or fill an empty one) with the pipeline (dvc.yaml), params.yaml for the given assays, "
            "data/raw/exports/, a sample-sheet and an assays.csv template, a README of the next commands, git (when "
            "DIR is not inside a repository) and DVC with a local default remote (DIR/.dvcstore)."
        ),
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="the project folder (created when absent)")
    p.add_argument("--assays", required=True, metavar="A,B,...", help="comma-separated assay names, e.g. DPPH,TPC")
    p.set_defaults(func=run)


def parse_assays(text: str) -> list[str]:
    """``"DPPH, TPC"`` -> ``["DPPH", "TPC"]``; names must be file names (letters, digits, ``_ . -``), unique."""
    names = [a.strip() for a in text.split(",") if a.strip()]
    if not names:
        raise ConfigError("--assays: give at least one assay name, e.g. --assays DPPH,TPC")
    bad = [a for a in names if not ASSAY_NAME.match(a)]
    if bad:
        raise ConfigError(f"--assays: '{bad[0]}' is not a usable name (letters, digits, '_', '.', '-')")
    twice = next((a for a in names if names.count(a) > 1), None)
    if twice:
        raise ConfigError(f"--assays: '{twice}' is given twice")
    groups: dict[str, list[str]] = {}  # reports/DPPH and reports/dpph are one folder on macOS and Windows
    for name in names:
        groups.setdefault(name.lower(), []).append(name)
    clash = next((g for g in groups.values() if len(g) > 1), None)
    if clash:
        raise ConfigError(f"--assays: {' and '.join(sorted(clash))} differ only in case")
    return names


TEMPLATES = {"dvc.yaml": "dvc.yaml", "params.yaml": "params.yaml", "paper.yaml": "profiles/paper.yaml"}


def checkout_root() -> Path | None:
    """The source checkout this ms2img runs from (an editable install), else None (an installed wheel)."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "ms2img"' in pyproject.read_text(encoding="utf-8"):
        return root
    return None


def template_text(name: str, packaged: bool = False) -> str:
    """The checkout's dvc.yaml, params.yaml or profiles/paper.yaml: read from the checkout when ms2img runs from
    one (so init always copies the one source), else the copy shipped in ``ms2img/project_template`` (a test
    keeps the copies equal to the checkout's files)."""
    root = None if packaged else checkout_root()
    if root is not None and (root / TEMPLATES[name]).is_file():
        return (root / TEMPLATES[name]).read_text(encoding="utf-8")
    return resources.files("ms2img").joinpath("project_template", name).read_text(encoding="utf-8")


def project_dvc_yaml(text: str | None = None) -> str:
    """The packaged dvc.yaml for a lab's project: every ``ms2img/...`` code dep replaced by ``.ms2img-version``
    (layout and comments kept, so it reads like the checkout's)."""
    text = template_text("dvc.yaml") if text is None else text
    out: list[str] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*- ms2img/", line):
            continue
        out.append(line)
        if line.strip() == "deps:" and i + 1 < len(lines):
            indent = lines[i + 1][: len(lines[i + 1]) - len(lines[i + 1].lstrip())]
            out.append(f"{indent}- {VERSION_FILE}")
    head = [
        "# The ms2img pipeline of this project (from `ms2img init`). Stages run the installed `ms2img`; its version",
        f"# and source hash are in {VERSION_FILE} (a dep of every stage, rewritten by `ms2img retrain`), so an",
        "# upgrade reruns them. Parameters are dotted keys of params.yaml. Raw data lives in data/raw (data/raw.dvc).",
    ]
    body = [ln for ln in out if not ln.startswith("#")]
    result = "\n".join(head + body) + "\n"
    stages = (yaml.safe_load(result) or {}).get("stages") or {}
    for stage in stages.values():
        deps = (stage.get("do") or stage).get("deps") or []
        assert not any(str(d).startswith("ms2img/") for d in deps), "code deps left in the project's dvc.yaml"
    return result


def version_stamp() -> str:
    """What ``.ms2img-version`` holds: the installed package's version and source hash."""
    from ms2img import __version__, tracking

    return f"ms2img {__version__} {tracking.code_hash()}\n"


def write_version_file(project: Path) -> bool:
    """Rewrite ``.ms2img-version`` when the installed ms2img differs from the one recorded; True when it changed."""
    path = Path(project) / VERSION_FILE
    stamp = version_stamp()
    if path.is_file() and path.read_text(encoding="utf-8") == stamp:
        return False
    path.write_text(stamp, encoding="utf-8")
    return True


AUTO_SETTINGS = {  # cohort-size settings a lab's params leave to the cohort (decided before training, printed)
    ("cv", "folds"): "auto: 5, or the smallest class when it has fewer accessions",
    ("cv", "repeats"): "auto: 1; below 20 labelled accessions per class, repeats for >= 10 held-out folds",
    ("tune", "validation_split"): "auto: 0.25, or more when a class would get no inner image",
    ("baselines", "oplsda_cv_folds"): "auto: 7, or one per labelled accession when fewer",
}
PARAMS_HEAD = (
    "ms2img parameters of this project (from `ms2img init`), grouped by stage. DVC stages list the dotted keys\n"
    "they use, so `dvc params diff` and `dvc repro` see exactly what changed. `auto` settings are decided from the\n"
    "cohort before any training and printed; metrics/<assay>.json and the model card say what ran.\n"
)


UNITS_PLACEHOLDER = "units"  # labels.units until the lab fills it: figures read "DPPH (units)", never "x x"
UNITS_COMMENT = "axis labels of figures and report: replace 'units' (e.g. \"% inhibition\", in quotes)"


def project_params(assays: list[str]) -> str:
    """The checkout's params.yaml for a lab (comments kept): the demo's ``synth`` section out, ``labels.assays`` and
    ``labels.units`` for ``assays``, no resolution study, and the cohort-size settings ``auto``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    rt = YAML()
    rt.representer.add_representer(type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = rt.load(template_text("params.yaml"))
    doc.pop("synth", None)
    listed = CommentedSeq(assays)
    listed.fa.set_flow_style()
    doc["labels"]["assays"] = listed
    units = CommentedMap((a, UNITS_PLACEHOLDER) for a in assays)
    doc["labels"]["units"] = units
    doc["labels"].yaml_add_eol_comment(UNITS_COMMENT, "units", column=28)
    empty = CommentedSeq()
    empty.fa.set_flow_style()
    doc["resolution"]["assays"] = empty
    doc["resolution"].yaml_add_eol_comment("assays to study (a CNN per size and fold); [] = none", "assays", column=28)
    for (section, key), said in AUTO_SETTINGS.items():
        doc[section][key] = "auto"
        doc[section].yaml_add_eol_comment(said, key, column=28)
    buf = io.StringIO()
    rt.dump(doc, buf)
    body = buf.getvalue()
    body = body[body.index("base:") :] if "base:" in body else body
    body = re.sub(r"\n(?=[a-z_]+:\n)", "\n\n", body)  # a blank line before every section
    body = re.sub(r"\n{3,}", "\n\n", body)
    text = "".join(f"# {line}\n" for line in PARAMS_HEAD.splitlines()) + body
    loaded = yaml.safe_load(text)
    assert loaded["labels"]["assays"] == assays and set(loaded["labels"]["units"]) == set(assays)
    return text


def project_paper_profile(assays: list[str]) -> str:
    """The checkout's profiles/paper.yaml (comments kept) with ``resolution.assays`` set to the project's assays.

    The paper studies resolution on every one of its assays; copied as is, a lab's project would plan
    ``resolution@DPPH`` and the like for assays it does not have once the profile is applied.
    """
    text = template_text("paper.yaml")
    listed = yaml.safe_dump(list(assays), default_flow_style=True, width=10**6).strip()
    text = re.sub(r"(?m)^resolution\.assays:[^#\n]*?(?=\s*(#|$))", f"resolution.assays: {listed}", text)
    return text


def _git_root(folder: Path) -> Path | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=folder, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise ConfigError("git is not installed; ms2img projects are git + DVC repositories") from None
    return Path(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else None


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"{' '.join(cmd)} in {cwd} failed: {tail[0]}")


def _dvc() -> list[str]:
    exe = shutil.which("dvc", path=str(Path(sys.executable).parent)) or shutil.which("dvc")
    return [exe] if exe else [sys.executable, "-m", "dvc"]


def init_project(folder: str | Path, assays: list[str]) -> list[str]:
    """Create the project in ``folder``; returns what was done, one line each. Refuses a folder that already
    holds a dvc.yaml or params.yaml (nothing is overwritten)."""
    folder = Path(folder).expanduser()
    taken = [
        n
        for n in ("dvc.yaml", "params.yaml", "data/raw/assays.csv", "data/raw/sample_sheet.csv")
        if (folder / n).exists()
    ]
    if taken:
        raise ConfigError(f"{folder}: already holds {taken[0]}; ms2img init only starts new projects")
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    done = []
    (root / "dvc.yaml").write_text(project_dvc_yaml(), encoding="utf-8")
    (root / "params.yaml").write_text(project_params(assays), encoding="utf-8")
    (root / "profiles").mkdir(exist_ok=True)
    (root / "profiles" / "paper.yaml").write_text(project_paper_profile(assays), encoding="utf-8")
    write_version_file(root)
    done.append(f"dvc.yaml, params.yaml (assays: {', '.join(assays)}), profiles/paper.yaml, {VERSION_FILE}")
    raw = root / "data" / "raw"
    (raw / "exports").mkdir(parents=True, exist_ok=True)
    (raw / "exports" / ".gitkeep").write_text("", encoding="utf-8")
    (raw / "sample_sheet.csv").write_text(SHEET_HEADER, encoding="utf-8")
    (raw / "assays.csv").write_text("accession," + ",".join(assays) + "\n", encoding="utf-8")
    done.append("data/raw/exports/, data/raw/sample_sheet.csv and data/raw/assays.csv (headers only: fill them)")
    prefix = yaml.safe_load(project_params(assays))["registry"]["model_prefix"]
    (root / "README.md").write_text(
        README.format(name=root.name, assays=", ".join(assays), prefix=prefix, first=assays[0], remote=REMOTE_DIR),
        encoding="utf-8",
    )
    gitignore = root / ".gitignore"
    gitignore.write_text(
        (gitignore.read_text(encoding="utf-8") if gitignore.exists() else "") + GITIGNORE.format(remote=REMOTE_DIR),
        encoding="utf-8",
    )
    if _git_root(root) is None:
        _run(["git", "init", "-q"], root)
        done.append("git repository initialised")
    else:
        done.append(f"inside the git repository {_git_root(root)}")
    if not (root / ".dvc").is_dir():
        subdir = [] if _git_root(root) == root else ["--subdir"]
        _run([*_dvc(), "init", "-q", *subdir], root)
    _run([*_dvc(), "remote", "add", "-d", "-f", "local", REMOTE_DIR], root)  # DVC stores it as ../.dvcstore
    (root / REMOTE_DIR).mkdir(exist_ok=True)
    with open(root / ".dvcignore", "a", encoding="utf-8") as fh:
        fh.write(f"/{REMOTE_DIR}/\n")
    _run([*_dvc(), "add", "-q", "data/raw"], root)  # data/raw is DVC's from the start, never git's
    done.append(f"DVC initialised, default remote 'local' = {REMOTE_DIR}/, data/raw tracked by data/raw.dvc")
    # staged after the remote is set: `dvc init` staged .dvc/config empty, and a commit of that could not `dvc pull`;
    # only what init wrote (a folder's other files are the user's to add)
    made = ["dvc.yaml", "params.yaml", "README.md", VERSION_FILE, "profiles", ".gitignore", "data/.gitignore",
            "data/raw.dvc", ".dvc/config", ".dvc/.gitignore", ".dvcignore"]  # fmt: skip
    _run(["git", "add", "--", *(m for m in made if (root / m).exists())], root)
    done.append('project files staged for its first commit: git commit -m "ms2img project"')
    return done


def run(args: argparse.Namespace) -> int:
    """Create the project and print what was made and what to do next."""
    assays = parse_assays(args.assays)
    done = init_project(args.dir, assays)
    print(f"ms2img project in {Path(args.dir).resolve()}:")
    for line in done:
        print(f"  {line}")
    print(
        "next: copy exports to data/raw/exports/, fill data/raw/sample_sheet.csv and data/raw/assays.csv, then run "
        f"`ms2img retrain` in {args.dir} (README.md)"
    )
    return 0
