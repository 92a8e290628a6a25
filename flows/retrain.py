"""The ``retrain`` flow: pull data, retrain what new data or code changed, promote, push, summarise.

Run once:            python -m flows.retrain --profile quick
Served on a cron:    python -m flows.deploy        (needs `prefect server start` and PREFECT_API_URL)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from flows import pipeline
from ms2img import registry, tracking
from ms2img.params import load_params

ROOT = pipeline.ROOT
RAW = ROOT / "data" / "raw"


@task
def preflight() -> dict[str, str]:
    """Fail at the start, not after an hour of training: DVC remote and MLflow store must be usable."""
    remote = pipeline.check_remote()
    uri = tracking.setup_tracking()
    return {"dvc_remote": remote, "mlflow": uri}


@task(retries=2, retry_delay_seconds=5)
def sync_data() -> str:
    """Bring data/raw and its DVC pointer in line: record new local exports, else pull the pointed-at version.

    New accessions land either as files dropped into data/raw (recorded here with ``dvc add`` and pushed) or
    as a new data/raw.dvc from git (fetched with ``dvc pull``).
    """
    pointer = ROOT / "data" / "raw.dvc"
    if not pointer.exists() or not pipeline.is_up_to_date(["data/raw.dvc"]):
        if (ROOT / "data" / "raw").exists():
            pipeline.dvc("add", "data/raw")
            pipeline.dvc("push", "data/raw.dvc")
            return "recorded new local data"
    pipeline.dvc("pull", "data/raw.dvc")
    return "pulled"


@task
def detect_new_data(assays: list[str], prefix: str) -> dict[str, bool]:
    """Per assay: does the raw-data hash differ from the one the current champion was trained on?"""
    current = tracking.data_hash(RAW)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    changed = {}
    for assay in assays:
        name = registry.model_name(assay, prefix=prefix)
        try:
            champion = MlflowClient().get_model_version_by_alias(name, registry.CHAMPION)
            changed[assay] = champion.tags.get(registry.DATA_TAG) != current
        except MlflowException:
            changed[assay] = True  # no champion yet
    return changed


@task
def upstream_stages() -> None:
    """Ingest + validate, render and features: shared by all assays, run by DVC itself."""
    pipeline.repro("ingest", "render", "features")


@task
def plan_stages(assays: list[str], force: bool) -> dict[str, list[tuple[str, str]]]:
    """Per assay, the (stage, command) pairs of train@ and baselines@ that must run, asked of DVC up front."""
    names = [f"{kind}@{a}" for a in assays for kind in ("train", "baselines")]
    todo = set(names) if force else pipeline.stale(names)
    return {a: [(n, pipeline.stage_command(n)) for n in (f"train@{a}", f"baselines@{a}") if n in todo] for a in assays}


@task(retries=1, retry_delay_seconds=10)
def train_assay(assay: str, stages: list[tuple[str, str]]) -> list[str]:
    """Run one assay's stale stages (commands exactly as dvc.yaml defines them) in order; return what ran."""
    for name, command in stages:
        pipeline.run(command, what=name)
    return [name for name, _ in stages]


@task
def record_and_promote(assay: str, ran: list[str]) -> dict:
    """Record the stages that ran in dvc.lock, then run the promotion stage (keeps or replaces the champion)."""
    if ran:
        pipeline.commit(*ran)
    pipeline.repro(f"promote@{assay}")
    path = ROOT / "metrics" / f"{assay}_promotion.json"
    return json.loads(path.read_text()) if path.exists() else {}


@task
def push() -> None:
    """Push data and cached pipeline outputs to the DVC remote, so an auditor can pull exactly this state."""
    pipeline.dvc("push")


def summarise(results: dict[str, dict], seconds: float) -> str:
    """A markdown table for the Prefect UI: per assay CNN and RF AUC, and the promotion decision."""
    lines = ["| assay | CNN AUC | RF (cosine) AUC | model version | decision |", "|---|---|---|---|---|"]
    for assay, res in results.items():
        cnn = _read(ROOT / "metrics" / f"{assay}.json")
        base = _read(ROOT / "metrics" / f"{assay}_baselines.json")
        auc = cnn.get("cnn", {}).get("summary", {}).get("roc_auc", {})
        rf = base.get("rf cosine", {}).get("summary", {}).get("roc_auc", {})
        lines.append(
            f"| {assay} | {auc.get('mean', float('nan')):.3f} ± {auc.get('sd', float('nan')):.3f} "
            f"| {rf.get('mean', float('nan')):.3f} ± {rf.get('sd', float('nan')):.3f} "
            f"| {res.get('candidate', '-')} | {res.get('reason', 'skipped: data unchanged')} |"
        )
    lines.append(f"\nWall time: {seconds:.0f} s")
    return "\n".join(lines)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


@flow(name="retrain", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=2))
def retrain(assays: list[str] | None = None, profile: str = "quick", force: bool = False) -> dict[str, dict]:
    """Retrain and promote per assay when the data (or code/params, via DVC) changed; ``force`` retrains all."""
    logger = get_run_logger()
    started = time.perf_counter()
    if pipeline.set_params_profile(profile):
        logger.info("params.yaml now selects the %s profile", profile)
    params = load_params(ROOT / "params.yaml")
    assays = assays or list(params["labels"]["assays"])
    unknown = sorted(set(assays) - set(params["labels"]["assays"]))
    if unknown:
        raise ValueError(f"unknown assays {unknown}; params.yaml labels.assays lists {params['labels']['assays']}")
    where = preflight()
    logger.info("DVC remote %s, MLflow %s", where["dvc_remote"], where["mlflow"])
    logger.info("data: %s (%s)", sync_data(), tracking.data_hash(RAW))
    changed = detect_new_data(assays, params["registry"]["model_prefix"])
    todo = [a for a in assays if force or changed[a] or not pipeline.is_up_to_date([f"promote@{a}"], with_deps=True)]
    if not todo:
        logger.info("nothing to do: every champion was trained on the current data and the pipeline is up to date")
        return {}
    upstream_stages()
    plan = plan_stages(todo, force)
    futures = {a: train_assay.submit(a, plan[a]) for a in todo}
    ran, failed = {}, {}
    for assay, fut in futures.items():
        try:
            ran[assay] = fut.result()  # a stage failure surfaces here, after its retries
        except Exception as exc:  # noqa: BLE001 - record the other assays before reporting it
            failed[assay] = exc
    results = {a: record_and_promote(a, ran[a]) for a in ran}
    push()
    summary = summarise(results, time.perf_counter() - started)
    create_markdown_artifact(summary, key="retrain-summary", description="ms2img retrain")
    print(summary)
    if failed:
        details = "; ".join(f"{a}: {str(e).splitlines()[0]}" for a, e in failed.items())
        raise RuntimeError(f"training failed for {sorted(failed)} (their previous outputs and champions stay): {details}")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ms2img retrain flow once.")
    parser.add_argument("--assays", default=None, help="comma-separated assays (default: labels.assays)")
    parser.add_argument("--profile", default="quick", choices=["quick", "full"])
    parser.add_argument("--force", action="store_true", help="retrain even if the data did not change")
    args = parser.parse_args(argv)
    retrain(assays=args.assays.split(",") if args.assays else None, profile=args.profile, force=args.force)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
