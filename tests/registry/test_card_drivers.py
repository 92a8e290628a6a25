"""The champion's model card links and summarises its drivers (ms2img.registry.card.attach_drivers), on a real
temporary MLflow store (SQLite, local artifacts): no mocks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ms2img.registry.card import (
    DRIVERS_HEADING,
    drivers_section,
    model_card,
    top_drivers_tag,
    with_drivers,
)

NAME = "ms2img-TFC"


def _drivers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [2, 1, 3, 4, 5, 6],
            "precursor_mz": [623.16187, 447.0934, 369.028335, 505.09935, 508.97114, 593.1514],
            "rt_min": [3.124, 3.13, 1.994, 3.603, 3.442, 2.602],
            "importance": [0.00146, 0.00199, 0.00126, 0.00049, 0.00044, 0.00033],
            "direction": ["up", "up", "up", "up", "down", "up"],
            "fold_change": [1.98, 1.90, 1.51, 1.95, 0.43, 1.74],
            "library_name": ["Isorhamnetin 3-O-rutinoside", "Quercetin 3-O-rhamnoside", "", "", "", "Saponaretin"],
            "analogue_name": ["", "", "Gallocatechin", "Catechin", "", ""],
            "analogue_score": [None, None, 0.82, 0.02, None, None],  # rank 4's open-search best is 0.02: no name
            "analogue_matched_peaks": [0, 0, 5, 1, 0, 0],
        }
    )


def test_drivers_section_lists_the_top_drivers_and_the_artifact():
    section = drivers_section(_drivers(), artifact_uri="runs:/abc/explain/drivers.csv", top=5)
    lines = section.splitlines()
    assert lines[0] == DRIVERS_HEADING
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert len(rows) == 5 and rows[0].startswith("| 1 | 447.0934 | 3.13 | up | 1.90 | Quercetin 3-O-rhamnoside |")
    assert "| 3 | 369.0283 | 1.99 | up | 1.51 | ~Gallocatechin |" in rows[2]  # an analogue match is marked
    assert "| 4 | 505.0994 | 3.60 | up | 1.95 | - |" in rows[3] and "Catechin |" not in section  # too weak to name
    assert "| down |" in rows[4] and "Saponaretin" not in section  # rank 6 is not in the top 5
    assert "`runs:/abc/explain/drivers.csv`" in section and "5 of 6" in section
    tag = top_drivers_tag(_drivers(), top=2)
    assert (
        tag == "m/z 447.0934 RT 3.13 up Quercetin 3-O-rhamnoside; m/z 623.1619 RT 3.12 up Isorhamnetin 3-O-rutinoside"
    )
    card = "**TFC · rf-image** (version 1)\n\n| | |"
    once = with_drivers(card, section)
    assert once.startswith(card) and once.count(DRIVERS_HEADING) == 1
    again = with_drivers(once, drivers_section(_drivers().head(2), artifact_uri="runs:/def/explain/drivers.csv"))
    assert again.startswith(card) and again.count(DRIVERS_HEADING) == 1 and "runs:/abc" not in again


@pytest.fixture()
def store(tmp_path, monkeypatch):
    """A temporary SQLite MLflow store with local artifacts (the test's working directory)."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    from ms2img import tracking

    previous = tracking_utils._tracking_uri
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    monkeypatch.chdir(tmp_path)
    try:
        tracking.setup_tracking()
        yield tmp_path
    finally:
        mlflow.set_tracking_uri(previous)


def test_attach_drivers_puts_them_on_the_champion_card(store: Path):
    import mlflow
    from mlflow import MlflowClient

    from ms2img import tracking
    from ms2img.registry.card import attach_drivers

    client = MlflowClient()
    tracking.ensure_experiment("TFC")
    (store / "model").mkdir()
    (store / "model" / "model.json").write_text('{"family": "rf-image"}')
    card = {"assay": "TFC", "family": "rf-image", "metrics": {"auc": {"mean": 0.81, "sd": 0.05}}, "input": "image"}
    with mlflow.start_run(run_name="tfc register rf-image") as run:
        mlflow.log_artifacts(str(store / "model"), artifact_path="rf-image")
    run_id = run.info.run_id
    client.create_registered_model(NAME)
    mv = client.create_model_version(NAME, f"{run.info.artifact_uri}/rf-image", run_id=run_id)
    description = model_card(card, version=str(mv.version), data_hash="md5:x", code_version="t", trained_at="now")
    client.update_model_version(NAME, mv.version, description=description)
    client.set_registered_model_alias(NAME, "champion", mv.version)

    # what `ms2img explain` does first: the files go to the champion's run under explain/
    reports = store / "reports" / "TFC"
    reports.mkdir(parents=True)
    _drivers().to_csv(reports / "drivers.csv", index=False)
    (reports / "drivers.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    champion = client.get_model_version_by_alias(NAME, "champion")
    for f in ("drivers.csv", "drivers.png"):
        client.log_artifact(champion.run_id, str(reports / f), artifact_path="explain")

    out = attach_drivers(NAME, champion.version, reports / "drivers.csv", run_id=champion.run_id)
    mv = client.get_model_version(NAME, champion.version)
    assert mv.description == out and mv.description.startswith(description)  # the card keeps its metrics
    assert "| 1 | 447.0934 | 3.13 | up | 1.90 | Quercetin 3-O-rhamnoside | 0.00199 |" in mv.description
    uri = f"runs:/{champion.run_id}/explain/drivers.csv"
    assert f"`{uri}`" in mv.description and f"runs:/{champion.run_id}/explain/drivers.png" in mv.description
    assert mv.tags["explain.drivers"] == "explain/drivers.csv" and mv.tags["explain.drivers_uri"] == uri
    assert mv.tags["explain.top_drivers"].startswith("m/z 447.0934 RT 3.13 up Quercetin 3-O-rhamnoside; m/z 623.1619")

    # the link resolves to the logged table
    local = Path(mlflow.artifacts.download_artifacts(mv.tags["explain.drivers_uri"], dst_path=str(store / "dl")))
    back = pd.read_csv(local, keep_default_na=False)
    assert np.allclose(back["precursor_mz"], _drivers()["precursor_mz"])

    # a second explanation replaces the section instead of stacking another one
    newer = _drivers().assign(rank=[1, 2, 3, 4, 5, 6])
    attach_drivers(NAME, champion.version, newer, run_id=champion.run_id, top=3)
    text = client.get_model_version(NAME, champion.version).description
    assert text.count(DRIVERS_HEADING) == 1 and text.startswith(description)
    assert "| 1 | 623.1619 |" in text and "| 4 |" not in text

    # nothing is linked that the run does not hold
    with mlflow.start_run(run_name="empty") as other:
        pass
    with pytest.raises(FileNotFoundError, match="explain/drivers.csv"):
        attach_drivers(NAME, champion.version, newer, run_id=other.info.run_id)


def test_a_compound_absent_from_one_group_is_said_so_not_given_a_ratio_of_the_floor():
    """FERMO's drivers: a compound never seen in the low group had fold change 771239 (the 1e-6 floor)."""
    from ms2img.explain.labels import fold_text

    assert fold_text({"mean_high": 0.77, "mean_low": 0.0, "fold_change": 771239.0}) == "high only"
    assert fold_text({"mean_high": 0.77, "mean_low": 0.0, "fold_change": float("inf")}) == "high only"
    assert fold_text({"mean_high": 0.0, "mean_low": 0.2, "fold_change": 5e-6}) == "low only"
    assert fold_text({"mean_high": 0.4, "mean_low": 0.2, "fold_change": 2.0}) == "2.00"
    assert fold_text({}) == "-"
    row = {**_drivers().iloc[1].to_dict(), "mean_high": 0.5, "mean_low": 0.0}
    assert "| up | high only | Quercetin 3-O-rhamnoside |" in drivers_section(pd.DataFrame([row]), artifact_uri="x")
