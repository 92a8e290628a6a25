"""Shared fixtures: paths to real LC-MS/MS test files and small generated cohorts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
TEST_DATA = TESTS_DIR / "data"
REPO_ROOT = TESTS_DIR.parent
# ../shared/data sits beside the checkout (and beside CI's clean clone); MS2IMG_SHARED_DATA overrides.
SHARED_DATA = Path(os.environ.get("MS2IMG_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Permissively licensed real files copied into the repo (see tests/data/README.md)."""
    return TEST_DATA


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data, for files we may not redistribute (GNPS, non-profit licence); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not available at {SHARED_DATA}")
    return SHARED_DATA
