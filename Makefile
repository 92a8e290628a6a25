# ms2img: `make demo` runs the main job on the bundled synthetic cohort, `make test` runs the tests.
# Both create .venv and install pinned dependencies (requirements.lock) on first use: `make demo` the runtime
# only, `make test` adds the `test` extra, `make lint` the `lint` extra. Each stamp file records one install,
# so every target installs what it needs once (and again after pyproject.toml or requirements.lock change).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet -c requirements.lock
STAMP      := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-stamp
LINT_STAMP := $(VENV)/.lint-stamp
PYTEST_ARGS ?= -m "not slow"

export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
# a fresh Prefect home migrates its database on the first temporary-server start: allow a slow machine time
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120

.PHONY: install install-test install-lint install-dev demo test test-all lint bench clean

install: $(STAMP)
install-test: $(TEST_STAMP)
install-lint: $(LINT_STAMP)
install-dev: $(TEST_STAMP) $(LINT_STAMP)

# the runtime: what `make demo` (and a lab's pipeline) needs, no test or lint tools
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" wheel
	$(PIP) -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP) -e ".[test]"
	touch $(TEST_STAMP)

$(LINT_STAMP): $(STAMP)
	$(PIP) -e ".[lint]"
	touch $(LINT_STAMP)

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m flows.demo

test: $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-all: $(TEST_STAMP)
	$(BIN)/python -m pytest

lint: $(LINT_STAMP)
	$(BIN)/ruff check ms2img flows tests benchmarks docker
	$(BIN)/ruff format --check ms2img flows tests benchmarks docker
	LINT_DEPLOY_STRICT=1 bash scripts/lint_deploy.sh

bench: $(STAMP)
	$(BIN)/python benchmarks/render.py

clean:
	rm -rf $(VENV) .pytest_cache
