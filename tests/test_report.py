"""``ms2img report`` on small synthetic stage outputs written in the contract's format (docs/contracts.md)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from ms2img.commands import report as report_cmd
from ms2img.errors import ConfigError
from ms2img.report import build_report
from ms2img.report.figures import raw_cutoffs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ASSAYS = ("DPPH", "TFC")
FAMILIES = ("cnn", "rf-image", "rf-cosine")


def _stat(rng, centre):
    m = float(centre + rng.normal(0, 0.02))
    return {"mean": m, "sd": 0.05, "ci_low": m - 0.08, "ci_high": m + 0.08}


def write_stage_outputs(root, assays=ASSAYS, families=FAMILIES, n=30, folds=3, repeats=2, seed=0):
    """metrics/<A>.json, reports/<A>/{oof,folds}.csv and selection.json as the training stage writes them."""
    rng = np.random.default_rng(seed)
    for assay in assays:
        value = rng.uniform(5, 95, n)
        norm = (value - value.min()) / (value.max() - value.min())
        label = np.where(norm < 0.4, 0, np.where(norm > 0.6, 1, -1))
        oof_rows, fold_rows = [], []
        for r in range(repeats):
            fold_of = rng.permutation(np.arange(n) % folds)
            for fam_i, fam in enumerate(families):
                for k in range(folds):
                    test = np.flatnonzero(fold_of == k)
                    train = np.flatnonzero(fold_of != k)
                    lo, hi = value[train].min(), value[train].max()
                    prob = np.clip(norm[test] + rng.normal(0, 0.15 + 0.05 * fam_i, test.size), 0, 1)
                    for i, p in zip(test, prob, strict=True):
                        oof_rows.append(
                            {
                                "accession": f"ACC{i:04d}",
                                "repeat": r,
                                "fold": k,
                                "family": fam,
                                "probability": p,
                                "value": value[i],
                                "normalized": (value[i] - lo) / (hi - lo),
                                "label": int(label[i]),
                            }
                        )
                    fold_rows.append(
                        {
                            "family": fam,
                            "repeat": r,
                            "fold": k,
                            "auc": rng.uniform(0.6, 0.95),
                            "balanced_accuracy": rng.uniform(0.5, 0.9),
                            "mcc": rng.uniform(0, 0.8),
                            "f1": rng.uniform(0.5, 0.9),
                            "threshold": 0.5,
                            "n_test": int(test.size),
                        }
                    )
        rdir = root / "reports" / assay
        rdir.mkdir(parents=True)
        pd.DataFrame(oof_rows).to_csv(rdir / "oof.csv", index=False)
        pd.DataFrame(fold_rows).to_csv(rdir / "folds.csv", index=False)
        metrics = {
            "n_accessions": n,
            "n_low": int((label == 0).sum()),
            "n_high": int((label == 1).sum()),
            "n_middle": int((label == -1).sum()),
            "folds": folds,
            "repeats": repeats,
            "families": {
                fam: {
                    **{s: _stat(rng, 0.8 - 0.05 * i) for s in ("auc", "balanced_accuracy", "mcc", "f1")},
                    "spearman": 0.6,
                    "seconds": 3.2,
                }
                for i, fam in enumerate(families)
            },
            "paired": {
                f"{a} vs {b}": {"diff": 0.05, "ci_low": -0.02, "ci_high": 0.12, "p_value": 0.2}
                for i, a in enumerate(families)
                for b in families[i + 1 :]
            },
            "oplsda": {"r2y": 0.97, "q2y": 0.1, "p_r2y": 0.4, "p_q2y": 0.3},
            "pca": {"pc1": 0.05, "pc2": 0.03},
        }
        (root / "metrics").mkdir(exist_ok=True)
        (root / "metrics" / f"{assay}.json").write_text(json.dumps(metrics))
        selection = {
            "winner": families[0],
            "reason": f"{families[0]} has the best mean AUC",
            "ranking": [{"family": f, "auc_mean": 0.8 - 0.05 * i} for i, f in enumerate(families)],
            "paired": {},
        }
        (rdir / "selection.json").write_text(json.dumps(selection))
    (root / "params.yaml").write_text(yaml.safe_dump({"labels": {"assays": list(assays), "low": 0.4, "high": 0.6}}))
    return root


def _images(html):
    return re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)


def test_report_names_every_assay_and_family_and_embeds_images(tmp_path):
    write_stage_outputs(tmp_path)
    result = build_report(tmp_path, "reports/index.html", units={"DPPH": "% scavenging"})
    html = result.path.read_text(encoding="utf-8")
    assert result.path == tmp_path / "reports" / "index.html"
    assert result.assays == list(ASSAYS) and result.families == list(FAMILIES)
    for name in (*ASSAYS, *FAMILIES):
        assert name in html
    for heading in ("Table 1", "Table 2", "Figure 3", "Figure 4", "Figure 5"):
        assert heading in html
    images = _images(html)
    # per assay: Fig. 3 (oof, ROC, confusion) for the CNN, Fig. 4C (rf-cosine ROC), Fig. 5 box plot
    assert len(images) == result.n_figures >= 5 * len(ASSAYS)
    assert all(base64.b64decode(b)[:8] == PNG_MAGIC for b in images)
    assert "cnn vs rf-image" in html and "0.200" in html  # paired test
    assert "[0." in html  # 95% intervals
    assert "<img" in html and 'src="http' not in html and "src='http" not in html  # self-contained
    assert "Not run:" in html  # no resolution study, drivers, drift, validation in this fixture


def test_report_on_an_empty_project_says_not_run(tmp_path):
    result = build_report(tmp_path, tmp_path / "out" / "r.html", params_path=None)
    html = result.path.read_text(encoding="utf-8")
    assert result.assays == [] and "Not run:" in html and "<html" in html


def test_report_survives_broken_and_partial_inputs(tmp_path):
    write_stage_outputs(tmp_path, assays=("DPPH", "TPC"))
    (tmp_path / "metrics" / "TPC.json").write_text("{not json")
    (tmp_path / "reports" / "TPC" / "oof.csv").write_text("accession\n")  # no family column
    (tmp_path / "reports" / "drift.json").write_text(
        json.dumps({"note": "images hold up", "table": [{"family": "cnn", "ppm": 10, "auc": 0.8}]})
    )
    (tmp_path / "reports" / "validation.json").write_text(
        json.dumps({"success": True, "message": "all good", "policy": "fail", "summary": {"files": 3, "rows": 10}})
    )
    (tmp_path / "reports" / "DPPH" / "drivers.csv").write_text("feature,importance\nmz 301.1,0.5\nmz 447.2,0.3\n")
    from ms2img.plots import new_figure, save_figure

    fig = new_figure(3, 2)
    fig.add_subplot().set_title("drivers figure")
    save_figure(fig, tmp_path / "reports" / "DPPH" / "drivers.png")
    (tmp_path / "metrics" / "DPPH_resolution.json").write_text(
        json.dumps(
            {
                "assay": "DPPH",
                "table": [
                    {"size": "75x70", "auc_mean": 0.7, "auc_sd": 0.1, "accuracy_mean": 0.6, "accuracy_sd": 0.1},
                    {"size": "150x140", "auc_mean": 0.8, "auc_sd": 0.1, "accuracy_mean": 0.7, "accuracy_sd": 0.1},
                ],
            }
        )
    )
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.dvc").write_text(yaml.safe_dump({"outs": [{"md5": "abc123.dir", "path": "raw"}]}))
    result = build_report(tmp_path)
    html = result.path.read_text(encoding="utf-8")
    assert "TPC" in html and "DPPH" in html
    assert "images hold up" in html and "all good" in html and "mz 301.1" in html
    assert "DPPH: drivers" in html  # reports/DPPH/drivers.png embedded
    assert "150x140" in html and "md5:abc123.dir" in html
    assert any("TPC.json (unreadable" in m for m in result.missing)


def _cli(argv):
    """The report subcommand alone (the full CLI imports every stage's module)."""
    import argparse

    parser = argparse.ArgumentParser(prog="ms2img")
    report_cmd.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_report_writes_html_without_tracking(tmp_path, capsys):
    write_stage_outputs(tmp_path, assays=("DPPH",), families=("cnn", "rf-image"))
    out = tmp_path / "site" / "index.html"
    rc = _cli(["report", "--root", str(tmp_path), "--out", str(out), "--no-track", "--units", "DPPH=%", "--pdf"])
    assert rc == 0 and out.is_file()
    assert out.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"
    assert "report:" in capsys.readouterr().out
    with pytest.raises(ConfigError, match="ASSAY=UNITS"):
        _cli(["report", "--root", str(tmp_path), "--no-track", "--units", "bad"])


def test_report_is_a_registered_command():
    from ms2img.cli import COMMANDS

    assert "report" in COMMANDS


def test_raw_cutoffs_undo_each_folds_scaling():
    value = np.array([10.0, 20.0, 30.0, 50.0])
    oof = pd.DataFrame({"repeat": 0, "fold": 0, "value": value, "normalized": (value - 10) / 40})
    lo, hi = raw_cutoffs(oof, 0.4, 0.6)
    assert lo == pytest.approx(26.0) and hi == pytest.approx(34.0)
    assert raw_cutoffs(pd.DataFrame({"x": [1]}), 0.4, 0.6) == (None, None)
