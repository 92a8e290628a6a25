# ms2img: `make demo` runs the main job on the bundled synthetic cohort, `make test` runs the tests.
# Both create .venv and install pinned dependencies (requirements.lock) on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?= -m "not slow"

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
# a fresh Prefect home migrates its database on the first temporary-server start: allow a slow machine time
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: install demo test test-all lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[test]"
	touch $(STAMP)

demo: install
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m flows.demo

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check ms2img flows tests benchmarks docker
	$(BIN)/ruff format --check ms2img flows tests benchmarks docker
	LINT_DEPLOY_STRICT=1 bash scripts/lint_deploy.sh

bench: install
	$(BIN)/python benchmarks/render.py

clean:
	rm -rf $(VENV) .pytest_cache
