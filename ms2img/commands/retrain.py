"""``ms2img retrain``: the Prefect flow of ``python -m flows.retrain``, from any project folder.

The flows ship with the package (pyproject.toml installs ``flows``), so a lab's project made by ``ms2img init``
needs no checkout. The flow brings ``.ms2img-version`` in line with the installed ms2img first: an upgrade (or
edited code) makes every stage stale, as a code dep does in the checkout.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ms2img.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``retrain`` subcommand."""
    p = subparsers.add_parser(
        "retrain",
        help="pull/record data, retrain what changed, promote, explain, report, push (the Prefect retrain flow)",
        description=(
            "Run the retrain flow once on the project in the current folder (or --project-dir): ingest, render, "
            "features, then per assay train, promote and explain when data, params or code changed; the report; "
            "a push to the DVC remote; a summary of the champions."
        ),
    )
    p.add_argument("--assays", default=None, metavar="A,B", help="comma-separated assays (default: labels.assays)")
    p.add_argument("--force", action="store_true", help="retrain even if the data did not change")
    p.add_argument("--profile", default=None, help="apply profiles/<NAME>.yaml to params.yaml first, e.g. paper")
    p.add_argument("--project-dir", type=Path, default=None, help="the project (default: the current folder)")
    p.set_defaults(func=run)


def flow_argv(args: argparse.Namespace, project: Path) -> list[str]:
    """The command line of ``flows.retrain.main`` for these arguments."""
    argv = ["--project-dir", str(project)]
    if args.assays:
        argv += ["--assays", args.assays]
    if args.force:
        argv.append("--force")
    if args.profile:
        argv += ["--profile", args.profile]
    return argv


def run(args: argparse.Namespace) -> int:
    """Run the flow on the project; its exit code."""
    project = (args.project_dir or Path.cwd()).expanduser().resolve()
    if not (project / "dvc.yaml").is_file():
        raise ConfigError(f"{project}: not an ms2img project (no dvc.yaml); run `ms2img init DIR --assays ...` first")
    try:
        from flows.retrain import main
    except ModuleNotFoundError as exc:
        if exc.name != "flows":
            raise
        raise ConfigError("the retrain flow is not installed with this ms2img (package 'flows' missing)") from None
    return int(main(flow_argv(args, project)) or 0)
