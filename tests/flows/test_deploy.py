"""The scheduled deployments run the project's params.yaml unless told a profile that exists."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from flows.deploy import deployments
from flows.watch import watch_new_data
from ms2img.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def test_deployments_run_params_yaml_as_it_is_and_refuse_an_unknown_profile_at_once():
    nightly, watcher = deployments("0 2 * * *", None, 10, str(REPO))
    assert nightly.parameters["profile"] is None and watcher.parameters["profile"] is None
    assert inspect.signature(watch_new_data.fn).parameters["profile"].default is None
    assert deployments("0 2 * * *", "paper", 10, str(REPO))[0].parameters["profile"] == "paper"
    with pytest.raises(ConfigError, match=r"unknown profile 'quick'.*profiles: \['paper'\]"):
        deployments("0 2 * * *", "quick", 10, str(REPO))


def test_serving_the_schedule_without_a_prefect_server_is_refused_in_one_line(monkeypatch, capsys):
    """Without PREFECT_API_URL, serve() started a temporary server and said 'polling for scheduled runs'."""
    from flows.deploy import main

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(REPO / "no-such-profiles.toml"))  # no profile sets one either
    assert main(["--project-dir", str(REPO)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "PREFECT_API_URL" in err and "prefect server start" in err
