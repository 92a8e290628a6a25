"""The ``retrain`` flow: pull data, retrain what new data or code changed, promote, push, summarise.

Run once:            python -m flows.retrain [--profile paper] [--project-dir DIR]
Served on a cron:    python -m flows.deploy        (needs `prefect server start` and PREFECT_API_URL)
Without Prefect:     retrain.fn(...) runs the same steps as plain function calls (no server, no task runs),
                     which is what unit tests and a debugger want.

The flow works on one DVC project (``project_dir``; default: $MS2IMG_PROJECT_DIR, else the cwd when it holds a
dvc.yaml, else this checkout); every stage runs there exactly as dvc.yaml defines it.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from flows import dask_runner, pipeline, process
from ms2img import atomic, registry, tracking
from ms2img.commands.init import VERSION_FILE, write_version_file
from ms2img.errors import ConfigError, Ms2ImgError, ValidationFailed
from ms2img.params import load_params


def raw_dir(project: str | Path | None = None) -> Path:
    """The project's raw data folder (MS-DIAL exports + assays.csv), tracked by data/raw.dvc."""
    return pipeline.project_dir(project) / "data" / "raw"


# ------------------------------------------------------------------------------------------ run context helpers
def in_flow_run() -> bool:
    """True inside a Prefect flow run; False under ``flow.fn()`` (plain call, no Prefect server)."""
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """The flow run's logger in a run, the module logger under ``flow.fn()``."""
    return pipeline.run_logger(logging.getLogger("flows.retrain"))


def call(step: Callable, *args: Any, **kwargs: Any) -> Any:
    """Run a task (or subflow) as a Prefect task run inside a flow run, as its plain function otherwise."""
    return step(*args, **kwargs) if in_flow_run() else step.fn(*args, **kwargs)


def submit_each(step: Callable, jobs: dict[str, tuple]) -> dict[str, Any]:
    """Start ``step(*args)`` per key on the flow's task runner (side by side) in a flow run; under ``flow.fn()`` run
    each now, one after another. Pass what this returns to :func:`collect`."""
    if in_flow_run():
        return {key: step.submit(*args) for key, args in jobs.items()}
    done: dict[str, Any] = {}
    for key, args in jobs.items():
        try:
            done[key] = ("result", step.fn(*args))
        except Exception as exc:  # noqa: BLE001 - collect, report after the others are recorded
            done[key] = ("failed", exc)
    return done


def collect(started: dict[str, Any]) -> tuple[dict[str, Any], dict[str, BaseException]]:
    """Wait for every job of :func:`submit_each`; (results, failures), so one failing key does not hide others."""
    results: dict[str, Any] = {}
    failed: dict[str, BaseException] = {}
    for key, job in started.items():
        if isinstance(job, tuple):
            (results if job[0] == "result" else failed)[key] = job[1]
            continue
        try:
            results[key] = job.result()  # a stage failure surfaces here, after its retries
        except Exception as exc:  # noqa: BLE001
            failed[key] = exc
    return results, failed


# ------------------------------------------------------------------------------------------------------ tasks
@task
def preflight(project: Path, profile: str | None, assays: list[str] | None) -> dict[str, Any]:
    """Fail at the start, not after an hour of training: params, profile, DVC remote and MLflow store must be usable.

    Nothing in the project changes before these checks pass.
    """
    from ms2img.params import profile_overrides

    params = load_params(project / "params.yaml")
    if profile is not None:
        profile_overrides(profile, project)  # ConfigError for an unknown profile
    known = list(params["labels"]["assays"])
    chosen = list(assays or known)
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise ConfigError(f"unknown assays {unknown}; params.yaml labels.assays lists {known}")
    remote = pipeline.check_remote(project)
    uri = pipeline.check_tracking(project)
    return {"dvc_remote": remote, "mlflow": uri, "assays": chosen, "prefix": params["registry"]["model_prefix"]}


NEW_LOCAL = "recorded new local data (pushed once it passes validation)"


def raw_pointer(project: Path) -> Path:
    return project / "data" / "raw.dvc"


def refused_marker(project: Path) -> Path:
    """Where a refused drop's file hash is kept (:func:`ms2img.tracking.files_hash`; DVC's untracked tmp folder), so
    the watcher does not retrain on the same refused files every few minutes."""
    return project / ".dvc" / "tmp" / "ms2img-refused-raw"


def unvalidated_marker(project: Path) -> Path:
    """The data/raw.dvc of the last validated data while the pointer records a drop ingest and validation have not
    passed yet: a run interrupted in between (Ctrl-C, a crash during ingest) leaves it, and the next run puts the
    pointer back here if the drop is refused, as the interrupted run would have."""
    return project / ".dvc" / "tmp" / "ms2img-validated-raw.dvc"


def refused_files(project: Path) -> bool:
    """data/raw holds exactly the files a retrain refused (until they change, a retrain would refuse them again)."""
    marker = refused_marker(project)
    return marker.is_file() and marker.read_text().strip() == tracking.files_hash(raw_dir(project))


def local_data_is_new(project: Path) -> bool:
    """Files in data/raw that its DVC pointer does not record yet (exports dropped in by hand)."""
    if not raw_dir(project).exists():
        return False
    pointer = raw_pointer(project)
    return not (pointer.exists() and pipeline.is_up_to_date(["data/raw.dvc"], cwd=project))


def worth_retrying(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect's ``retry_condition_fn``: retry a chain after a crash, not after a stage's own refusal (a setting a
    small cohort cannot meet, a regression model asked for class attribution): that would train and register
    every family a second time to fail at the same place. Nor once the flow is stopping (SIGTERM, Ctrl-C)."""
    exc = state.data if isinstance(state.data, BaseException) else None
    return not (isinstance(exc, pipeline.StageFailed) and exc.deterministic) and not pipeline.stopping()


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=worth_retrying)
def sync_data(project: Path) -> str:
    """Bring data/raw and its DVC pointer in line: record new local exports, else pull the pointed-at version.

    New accessions land either as files dropped into data/raw (recorded here with ``dvc add``; pushed by
    :func:`push_data` only once ingest validated them) or as a new data/raw.dvc from git (fetched with ``dvc pull``).
    """
    pointer = raw_pointer(project)
    local = (project / "data" / "raw").exists()
    if local and (not pointer.exists() or not pipeline.is_up_to_date(["data/raw.dvc"], cwd=project)):
        pending = unvalidated_marker(project)
        if pointer.exists() and not pending.exists():  # the last validated pointer, until ingest + validate pass
            pending.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(pending, pointer.read_bytes())
        pipeline.dvc("add", "data/raw", cwd=project)
        return NEW_LOCAL
    said = pipeline.dvc("pull", "data/raw.dvc", cwd=project)
    return "as data/raw.dvc records it" if "up to date" in said.lower() else "pulled as data/raw.dvc records it"


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=worth_retrying)
def push_data(project: Path) -> None:
    """Push the validated local exports to the DVC remote, so another machine can pull this data version."""
    pipeline.dvc("push", "data/raw.dvc", cwd=project)


@task
def detect_new_data(assays: list[str], prefix: str, project: str | Path | None = None) -> dict[str, bool]:
    """Per assay: is the raw data new to the registry?

    False when the current champion, or the newest registered version (a challenger already judged on this
    data), was trained on the current data hash; True otherwise, and when there is no model yet. Comparing with
    the newest version too stops a rejected challenger from being retrained on the same data every night.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    project = pipeline.project_dir(project)
    current = tracking.data_hash(raw_dir(project))
    client = MlflowClient(tracking_uri=pipeline.tracking_uri(project))
    changed = {}
    for assay in assays:
        name = registry.model_name(assay, prefix=prefix)
        seen = set()
        try:
            seen.add(client.get_model_version_by_alias(name, registry.CHAMPION).tags.get(registry.DATA_TAG))
        except MlflowException:
            pass  # no champion (yet)
        try:
            versions = client.search_model_versions(f"name='{name}'")
        except MlflowException:
            versions = []
        if versions:
            seen.add(max(versions, key=lambda v: int(v.version)).tags.get(registry.DATA_TAG))
        changed[assay] = current is None or current not in seen
    return changed


IMAGES = ("ingest", "render")  # what the resolution studies need; features follows beside them


@task(task_run_name="upstream-{stages}")
def upstream_stages(
    project: Path, stages: tuple[str, ...] = (*IMAGES, "features"), last_good: bytes | None = None
) -> None:
    """Ingest + validate, render and features: shared by all assays, run by DVC itself.

    A validation failure, or ingest refusing the data (an export it cannot read, a mixed-polarity drop), stops
    here, before any training, with the message; models, champions and dvc.lock stay as they were, data/raw.dvc
    goes back to ``last_good`` (:func:`unvalidated_marker`: its bytes before the new data was recorded, by this
    run or an interrupted one), so a bad drop never becomes the versioned data, and the files are marked refused
    (:func:`refused_marker`). Anything else (a crash, a setting another stage refuses) keeps the pointer: the data
    passed what checks data.
    """
    try:
        pipeline.repro(*stages, cwd=project, echo=run_logger().info)
    except pipeline.StageFailed as exc:
        problem = next((line for line in str(exc).splitlines() if "validation failed" in line), None)
        if problem is None and exc.refused_by not in ("ingest", "validate"):
            raise  # not the data's fault: the recorded data passed ingest and validation
        refused_marker(project).parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(refused_marker(project), f"{tracking.files_hash(raw_dir(project))}\n")
        pointer, pointer_note = raw_pointer(project), ""
        if last_good is not None and (not pointer.exists() or pointer.read_bytes() != last_good):
            atomic.write_bytes(pointer, last_good)
            pointer_note = "; data/raw.dvc is back at the last validated data (your files in data/raw stay)"
        unvalidated_marker(project).unlink(missing_ok=True)
        if problem is None:
            raise pipeline.StageFailed(
                f"{str(exc).rstrip('.')}. Nothing was trained or pushed; every champion stays{pointer_note}. Fix or "
                "remove the refused input in data/raw.",
                exc.returncode,
                exc.tail,
            ) from None
        problem = problem.split("error: ", 1)[-1]
        raise ValidationFailed(
            f"{problem} (report: {project / 'reports' / 'validation.html'}). Nothing was trained or pushed; every "
            f"champion stays{pointer_note}. Fix or remove the bad input in data/raw, or set validate.policy: "
            "quarantine."
        ) from None


CHAIN = ("train", "promote", "explain")  # per assay, in order; each needs the one before


def assay_stages(assays: list[str], project: Path) -> tuple[list[str], list[str]]:
    """The per-assay stages of ``assays``: their train/promote/explain chains, and the resolution studies of those
    in ``resolution.assays``."""
    study = (load_params(project / "params.yaml").get("resolution") or {}).get("assays") or []
    return [f"{kind}@{a}" for a in assays for kind in CHAIN], [f"resolution@{a}" for a in assays if a in study]


@task
def plan_studies(assays: list[str], force: bool, project: Path) -> dict[str, list[tuple[str, str]]]:
    """The stale resolution studies (the paper's Table 1; key ``resolution@<assay>``) of the assays in
    ``resolution.assays``, with their commands: they need only the images, so they run beside the features stage."""
    _, studies = assay_stages(assays, project)
    stale = set(studies) if force else pipeline.stale(studies, cwd=project)
    return {name: [(name, pipeline.stage_command(name, cwd=project))] for name in studies if name in stale}


@task
def plan_stages(assays: list[str], force: bool, project: Path) -> dict[str, list[tuple[str, str]]]:
    """The (stage, command) pairs to run, asked of DVC up front. Per assay (key: the assay): from the first stale
    stage of train@ -> promote@ -> explain@ on (a retrained model must be promoted and explained again)."""
    names, _ = assay_stages(assays, project)
    stale = set(names) if force else pipeline.stale(names, cwd=project)
    plan = {}
    for a in assays:
        chain = [f"{kind}@{a}" for kind in CHAIN]
        first = next((i for i, n in enumerate(chain) if n in stale), len(chain))
        plan[a] = [(n, pipeline.stage_command(n, cwd=project)) for n in chain[first:]]
    return plan


_finished: dict[tuple[str, str], dict[str, bool]] = {}  # (flow run id, chain) -> stage: recorded (False: ran only)


@task(retries=1, retry_delay_seconds=10, retry_condition_fn=worth_retrying, task_run_name="train-{assay}")
def train_assay(assay: str, stages: list[tuple[str, str]], project: Path) -> list[str]:
    """Run one assay's stale stages (train, promote, explain: commands exactly as dvc.yaml defines them, no
    shell) in order, beside the other assays, showing their progress lines as they come; return what ran.

    Each stage is recorded in dvc.lock (``dvc commit``) as soon as it finishes: a chain that fails or is stopped at
    promote keeps its training, and the next run starts at promote (with one record for all at the end, a Ctrl-C
    during explain threw away the chain's training, hours of it on a GPU). DVC's repository lock, waited for, keeps
    one writer at a time. A retry in the same flow run (after a crash) starts after the stages its earlier attempt
    finished (it retrained and registered every family again); one whose record failed is only recorded."""
    from prefect.runtime import flow_run

    logger = run_logger()
    run_id = flow_run.id
    finished = _finished.setdefault((str(run_id), assay), {}) if run_id else {}
    for name, command in stages:
        if finished.get(name):
            logger.info("%s: finished and recorded by the previous attempt; not run again", name)
            continue
        if name not in finished:
            for args in pipeline.command_args(command):
                pipeline.run(args, cwd=project, what=name, echo=logger.info)
            finished[name] = False
        pipeline.commit(name, cwd=project)
        finished[name] = True
    _finished.pop((str(run_id), assay), None)
    return [name for name, _ in stages]


def decision(assay: str, project: Path) -> dict:
    """The promotion decision of ``assay`` as its promote stage wrote it."""
    return {**_read(project / "metrics" / f"{assay}_promotion.json"),
            **_read(project / "reports" / assay / "promotion.json")}  # fmt: skip


@task
def check_recorded(assays: list[str], project: Path) -> list[str]:
    """After the chains (each stage recorded as it finished): the stages of the asked assays (and those upstream)
    must be up to date before the report is built; a stale one would make the next ``dvc repro`` train again.
    Returns what is stale, logged as one line each with DVC's reason (empty: the check passed)."""
    chains, studies = assay_stages(assays, project)
    status = json.loads(pipeline.dvc("status", "--json", "--with-deps", *chains, *studies, cwd=project) or "{}")
    for stage, why in status.items():
        run_logger().warning("still stale after recording: %s (%s)", stage, json.dumps(why)[:300])
    return sorted(status)


@task
def report(project: Path) -> None:
    """The one HTML report, rebuilt from what exists: the report stage alone (``dvc repro --single-item``), so a
    run asked for one assay never retrains another whose stages are stale (they wait for a run that asks)."""
    pipeline.repro("report", cwd=project, echo=run_logger().info, single=True)


@task
def push(project: Path) -> None:
    """Push data and cached pipeline outputs to the DVC remote, so an auditor can pull exactly this state."""
    pipeline.dvc("push", cwd=project)


def registry_state(assays: list[str], prefix: str, project: Path) -> dict[str, dict[str, Any]]:
    """Per assay, read from the registry after the run: the champion's version and family, and how many versions
    the registered model holds (the summary reports what is there, not what the run meant to do)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=pipeline.tracking_uri(project))
    state = {}
    for assay in assays:
        name = registry.model_name(assay, prefix=prefix)
        entry: dict[str, Any] = {"name": name, "version": None, "family": None, "versions": 0}
        try:
            entry["versions"] = len(client.search_model_versions(f"name='{name}'"))
            champion = client.get_model_version_by_alias(name, registry.CHAMPION)
            entry.update(version=str(champion.version), family=champion.tags.get(registry.FAMILY_TAG))
        except MlflowException:
            pass  # no model or no champion yet
        state[assay] = entry
    return state


def summarise(
    results: dict[str, dict], state: dict[str, dict], seconds: float, project: Path, checks: list[str] = ()
) -> str:
    """A markdown table: per assay every family's cross-validated AUC with its interval, the champion (family and
    version, read from the registry), the decision and its reason (or why its training failed: ``{"failed": ...}``);
    then what was checked."""
    from ms2img.models.family import FAMILIES

    scored = {a: {} if res.get("failed") else _read(project / "metrics" / f"{a}.json").get("families", {})
              for a, res in results.items()}  # fmt: skip
    trained = [f for f in FAMILIES if any(f in fams for fams in scored.values())]
    shown = trained or list(load_params(project / "params.yaml")["train"]["families"])
    head = "| assay | " + " | ".join(shown) + " | champion | decision |"
    lines = [head, "|---" * (len(shown) + 3) + "|"]
    for assay, res in results.items():
        fams = scored[assay]
        cells = []
        for fam in shown:
            a = fams.get(fam, {}).get("auc")
            cells.append(f"{_num(a['mean'])} [{_num(a['ci_low'])}, {_num(a['ci_high'])}]" if a else "-")
        champ = state.get(assay, {})
        who = f"{champ['family']} v{champ['version']}" if champ.get("version") else "none"
        verdict = "promoted" if res.get("promoted") else ("rejected" if res.get("rejected") else "kept")
        reason = str(res.get("reason") or "")
        decision = reason if reason.startswith(verdict) else f"{verdict}: {reason}" if reason else "skipped: unchanged"
        if res.get("failed"):
            decision = f"training failed (champion kept): {res['failed']}"
        lines.append(f"| {assay} | " + " | ".join(cells) + f" | {who} | {decision} |")
    lines.append(
        "\nAUC: mean over folds [95% corrected resampled t interval, at least as wide as Newcombe's score interval "
        "for the labelled accessions]; champion as the registry holds it now."
    )
    for assay, res in results.items():
        if res.get("failed"):
            continue  # its selection.json is an earlier run's
        selection = _read(project / "reports" / assay / "selection.json")
        if selection.get("small_cohort"):
            lines.append(f"\n{assay}: {selection.get('protocol') or 'small cohort'}")
        lines += [f"\n{assay}: warning: {w}" for w in selection.get("warnings", [])]
    lines += [f"\n{c}" for c in checks]
    lines.append(f"\nWall time: {seconds:.0f} s")
    return "\n".join(lines)


def first_line(exc: BaseException) -> str:
    """An error's first line for a markdown table cell (its type when it has no message; no "|")."""
    return ((str(exc).splitlines() or [type(exc).__name__])[0])[:300].replace("|", "/")


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"  # metrics JSON writes NaN as null


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


# ------------------------------------------------------------------------------------------------------- flow
# per-assay work: two threads here, or the Dask cluster at $MS2IMG_DASK_ADDRESS (flows/dask_runner.py)
@flow(name="retrain", log_prints=True, task_runner=dask_runner.task_runner())
def retrain(
    assays: list[str] | None = None, profile: str | None = None, force: bool = False, project_dir: str | None = None
) -> dict[str, dict]:
    """Retrain and promote per assay when the data (or code/params, via DVC) changed; ``force`` retrains all.

    Returns the promotion decision per assay that was (re)considered; {} when there was nothing to do.
    """
    quiet_known_errors()  # here too: a run served by flows.deploy runs in a process of Prefect's, not main()'s
    project = pipeline.project_dir(project_dir)
    with pipeline.project_lock(project), pipeline.commands_stop_with_flow():
        return _retrain(assays, profile, force, project)


def _retrain(assays: list[str] | None, profile: str | None, force: bool, project: Path) -> dict[str, dict]:
    logger = run_logger()
    started = time.perf_counter()
    where = call(preflight, project, profile, assays)
    assays = where["assays"]
    logger.info("project %s, DVC remote %s, MLflow %s", project, where["dvc_remote"], where["mlflow"])
    if profile is not None:
        changed_keys = pipeline.apply_profile(profile, project)
        logger.info("profile %s: %s", profile, f"params.yaml changed {changed_keys}" if changed_keys else "in force")
    if (project / VERSION_FILE).is_file() and write_version_file(project):  # a project made by `ms2img init`
        logger.info("%s: ms2img changed since the last run; every stage reruns", VERSION_FILE)
    synced = call(sync_data, project)
    logger.info("data: %s (%s)", synced, tracking.data_hash(raw_dir(project)))
    changed = call(detect_new_data, assays, where["prefix"], project)
    todo = [
        a
        for a in assays
        if force or changed[a] or not pipeline.is_up_to_date([f"promote@{a}"], cwd=project, with_deps=True)
    ]
    if not todo:
        if synced == NEW_LOCAL:  # the exports every stage already validated and trained on
            call(push_data, project)
            unvalidated_marker(project).unlink(missing_ok=True)
        logger.info(
            "nothing to do: every champion, or a challenger promotion rejected, was trained on the current data and "
            "the pipeline is up to date"
        )
        return {}
    logger.info(
        "bringing %s up to date (new data: %s, forced: %s): stale stages run, up-to-date ones are skipped",
        todo, [a for a in todo if changed[a]], force,
    )  # fmt: skip
    pending = unvalidated_marker(project)  # this run's drop, or one an interrupted run recorded and never validated
    validated = pending.read_bytes() if pending.exists() else None  # a pulled pointer stays
    call(upstream_stages, project, IMAGES, validated)
    pending.unlink(missing_ok=True)
    if synced == NEW_LOCAL or validated is not None:
        call(push_data, project)
    studies = call(plan_studies, todo, force, project)
    jobs = submit_each(train_assay, {key: (key, stages, project) for key, stages in studies.items()})
    try:
        call(upstream_stages, project, ("features",))  # beside the studies, which need only the images
        plan = call(plan_stages, todo, force, project)
        jobs |= submit_each(train_assay, {key: (key, stages, project) for key, stages in plan.items()})
    finally:
        ran, failed = collect(jobs)  # a failed features stage still waits for the studies it runs beside
    results = {a: decision(a, project) for a in todo if a in ran}
    stale, pushed = [], False
    if results:  # with every asked assay failed there is nothing new to check, report or push
        stale = call(check_recorded, list(results), project)
        try:
            call(report, project)
            call(push, project)
            pushed = True
        except pipeline.StageFailed as exc:
            if not failed:
                raise
            logger.warning("report and pipeline push skipped after the failed training: %s", exc)
    rows = results | {a: {"failed": first_line(failed[a])} for a in todo if a in failed}
    state = registry_state(list(rows), where["prefix"], project)
    recorded = (
        f"still stale after recording: {', '.join(stale)}"
        if stale
        else (f"dvc status of {', '.join(results) or 'no assay'} (and upstream) up to date after recording")
    )
    versions = ", ".join(f"{entry['name']} {entry['versions']} versions" for entry in state.values()) or "no model"
    pushed_note = "data and pipeline outputs pushed to the DVC remote" if pushed else "report and pipeline push skipped"
    checks = [f"Checked: {recorded}; registry: {versions}; {pushed_note}."]
    summary = summarise(rows, state, time.perf_counter() - started, project, checks)
    if in_flow_run():
        create_markdown_artifact(summary, key="retrain-summary", description="ms2img retrain")
    print(summary)
    if failed:
        details = "; ".join(f"{a}: {e}" for a, e in failed.items())
        raise pipeline.StageFailed(
            f"training failed for {sorted(failed)} (their previous outputs and champions stay): {details}"
        )
    return results


class KnownErrorsInOneLine(logging.Filter):
    """Prefect logs a failed flow or task with its traceback; for the project's own errors (a stage that failed,
    an unreachable store, a busy project) the message is the whole story, so the traceback is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, Ms2ImgError):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_known_errors() -> None:
    """Attach :class:`KnownErrorsInOneLine` to Prefect's flow and task run loggers (once)."""
    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, KnownErrorsInOneLine) for f in logger.filters):
            logger.addFilter(KnownErrorsInOneLine())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the ms2img retrain flow once.")
    parser.add_argument("--assays", default=None, help="comma-separated assays (default: labels.assays)")
    parser.add_argument("--profile", default=None, help="apply profiles/<NAME>.yaml to params.yaml first, e.g. paper")
    parser.add_argument("--force", action="store_true", help="retrain even if the data did not change")
    parser.add_argument(
        "--project-dir",
        default=None,
        help=f"the DVC project (default: ${pipeline.PROJECT_ENV}, else the cwd if it has dvc.yaml, else this checkout)",
    )
    parser.add_argument(
        "--dask-address",
        default=None,
        help=f"run the per-assay work on a Dask scheduler, tcp://host:8786 (default: ${dask_runner.ADDRESS_ENV})",
    )
    args = parser.parse_args(argv)
    quiet_known_errors()
    process.temporary_server_apart()
    process.exit_on_sigterm()
    try:
        dask_runner.on_cluster(retrain, args.dask_address)(
            assays=args.assays.split(",") if args.assays else None,
            profile=args.profile,
            force=args.force,
            project_dir=args.project_dir,
        )
    except Ms2ImgError as exc:
        print(f"retrain: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
