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
    # the drift note is a command of the source tree for this project's own assays, not the demo's DPPH in `.`
    assert f"benchmarks/drift.py --project PROJECT --assays {','.join(ASSAYS)}" in html
    assert ".venv/bin/python benchmarks/drift.py" not in html


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
                    {
                        "size": "75x70",
                        "auc_mean": 0.7,
                        "auc_sd": 0.1,
                        "balanced_accuracy_mean": 0.6,
                        "balanced_accuracy_sd": 0.1,
                    },
                    {
                        "size": "150x140",
                        "auc_mean": 0.8,
                        "auc_sd": 0.1,
                        "balanced_accuracy_mean": 0.65,
                        "balanced_accuracy_sd": 0.1,
                    },
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
    assert "0.650 ± 0.100" in html  # Table 1's balanced accuracy, read by its stats.SCORES name
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


# ------------------------------------------------------------------------- reading like the paper (issue 26)
DRIVER_ROW = {
    "rank": 1, "precursor_mz": 577.13417, "rt_min": 2.1125, "importance": 0.0213, "direction": "up",
    "conditional_effect": 0.113, "conditional_importance": 0.0024, "fold_change": 2.656, "log2_fold_change": 1.41,
    "mean_high": 0.35, "mean_low": 0.13, "n_accessions": 31, "n_high": 15, "n_low": 16,
    "library_name": "Procyanidin B2", "library_score": 0.8793, "library_precursor_mz": 577.135,
    "library_adduct": "[M-H]-", "matched_peaks": 15, "analogue_name": "", "analogue_score": None,
    "analogue_precursor_mz": None, "analogue_matched_peaks": 0, "adducts": "", "boxes": "13 16 31 41",
    "polarity": "negative", "n_fragments": 21, "consensus_spectrum": "125.0241:100.0 289.0714:88.5",
}  # fmt: skip


def write_paper_project(root, families=("cnn", "rf-image", "rf-cosine", "rf-entropy"), drift=False):
    """Stage outputs plus what `make demo` adds: model cards, drivers (csv, json, a wide figure), validation."""
    write_stage_outputs(root, assays=("DPPH",), families=families)
    folds = pd.read_csv(root / "reports" / "DPPH" / "folds.csv")
    folds["threshold"] = np.linspace(0.3, 0.6, len(folds))
    folds.to_csv(root / "reports" / "DPPH" / "folds.csv", index=False)
    card = root / "models" / "DPPH" / "cnn" / "model.json"
    card.parent.mkdir(parents=True)
    card.write_text(json.dumps({"threshold": 0.611, "n_accessions": 24, "class_counts": {"low": 12, "high": 12}}))
    rows = [{**DRIVER_ROW, "rank": i + 1, "precursor_mz": 300.0 + i} for i in range(30)]
    rows[1].update(library_name="", analogue_name="Procyanidin A2", analogue_score=0.70, analogue_precursor_mz=575.12)
    rows[1].update(analogue_matched_peaks=6)
    rows[2].update(library_name="", analogue_name="Catechin", analogue_score=0.02, analogue_matched_peaks=1)  # too weak
    pd.DataFrame(rows).to_csv(root / "reports" / "DPPH" / "drivers.csv", index=False)
    meta = {"family": "cnn", "n_accessions": 25, "n_high": 12, "n_low": 13, "attribution": "held-out refits"}
    meta["labels_from"] = "reports/DPPH/oof.csv"
    (root / "reports" / "DPPH" / "drivers.json").write_text(json.dumps(meta))
    from ms2img.plots import new_figure, save_figure

    fig = new_figure(12.5, 5.4)  # as wide as ms2img explain draws it: wider than a laptop's page
    fig.add_subplot().set_title("drivers")
    save_figure(fig, root / "reports" / "DPPH" / "drivers.png")
    (root / "reports" / "validation.json").write_text(json.dumps({"success": True, "summary": {"files": 3}}))
    (root / "reports" / "validation.html").write_text("<html>validation</html>")
    if drift:
        levels = [{"mz_ppm": 0, "rt_min": 0, "dropout": 0, "noise": 0}, {"mz_ppm": 5, "rt_min": 0.2, "dropout": 0.1}]
        levels[1]["noise"] = 0.1
        results = [
            {"assay": "DPPH", "family": f, "level": lv, "mean": 0.8, "sd": 0.05}
            for f in ("rf-image", "rf-cosine")
            for lv in (0, 1)
        ]
        (root / "reports" / "drift.json").write_text(json.dumps({"levels": levels, "results": results}))
    return root


def _local_links(html):
    return [h for h in re.findall(r"href=['\"]([^'\"]+)['\"]", html) if not h.startswith(("http:", "https:"))]


def test_report_sections_follow_the_paper_and_every_local_link_resolves(tmp_path):
    write_paper_project(tmp_path)
    result = build_report(tmp_path, "report/index.html")
    html = result.path.read_text(encoding="utf-8")
    order = ["overview", "table1", "table2", "fig3", "fig4", "fig5", "drivers", "drift", "provenance"]
    positions = [html.index(f'<section id="{s}"') for s in order]
    assert positions == sorted(positions)
    links = _local_links(html)
    assert "../reports/validation.html" in links and "../reports/DPPH/drivers.csv" in links
    for href in links:
        if href.startswith("#"):
            assert f"id='{href[1:]}'" in html or f'id="{href[1:]}"' in html, href
        else:
            assert (result.path.parent / href).is_file(), href


def test_drivers_are_a_top_table_a_chemist_reads_with_the_csv_linked(tmp_path):
    write_paper_project(tmp_path)
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    drivers = html[html.index('<section id="drivers"') : html.index('<section id="drift"')]
    for column in ("rank", "precursor m/z", "RT (min)", "direction", "fold change", "evidence", "library match"):
        assert f"<th>{column}" in drivers
    assert drivers.count("<tr>") == 1 + 10  # header + top 10 of 30
    assert "Procyanidin B2 [M-H]-" in drivers and "analogue of" in drivers and "577.1342" not in drivers
    assert (
        "Catechin" not in drivers and drivers.count("analogue of") == 1
    )  # an open-search best hit at 0.02 names nothing
    assert "consensus_spectrum" not in drivers and "125.0241:100.0" not in drivers  # the CSV keeps those
    assert "Top 10 of 30 drivers" in drivers and "the 25 accessions the attribution ran on" in drivers


def test_drivers_of_a_model_that_is_no_longer_served_are_marked_out_of_date(tmp_path):
    """A retrain and promote by hand (not `dvc repro`) left the last explain's drivers in the report as if they
    explained the model now served."""
    from ms2img.report.collect import collect
    from ms2img.report.findings import stale_drivers

    write_paper_project(tmp_path)
    a = collect(tmp_path).assays[0]
    assert a.winner == "cnn" and stale_drivers(a, a.drivers_meta) is None
    assert "the winner is now cnn" in stale_drivers(a, {**a.drivers_meta, "family": "rf-image"})
    a.cards["cnn"]["training_key"] = "new"
    assert stale_drivers(a, {**a.drivers_meta, "training_key": "new"}) is None
    assert "trained again after these drivers" in stale_drivers(a, {**a.drivers_meta, "training_key": "old"})
    meta = json.loads((tmp_path / "reports" / "DPPH" / "drivers.json").read_text())
    (tmp_path / "reports" / "DPPH" / "drivers.json").write_text(json.dumps({**meta, "family": "rf-image"}))
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    drivers = html[html.index('<section id="drivers"') : html.index('<section id="drift"')]
    assert "Out of date: these drivers explain the rf-image model; the winner is now cnn" in drivers


def test_counts_say_which_protocol_they_come_from(tmp_path):
    write_paper_project(tmp_path)
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    for start, end in (("overview", "table1"), ("fig3", "fig4"), ("drivers", "drift")):
        part = html[html.index(f'<section id="{start}"') : html.index(f'<section id="{end}"')]
        assert part.count("class=counts") == 1, start  # one line per place, naming its protocol
    assert "threshold 0.611; trained on 24 (12 low + 12 high)" in html  # the served model's card, in the overview


def test_thresholds_are_the_ones_the_models_use(tmp_path):
    from ms2img.report.collect import collect
    from ms2img.report.sections import thresholds

    write_paper_project(tmp_path)
    a = collect(tmp_path).assays[0]
    t, label, band = thresholds(a, "cnn")  # the saved model's own threshold, the folds' range beside it
    assert t == pytest.approx(0.611) and "saved model" in label and band[0] < band[1]
    t, label, _ = thresholds(a, "rf-image")  # no card: the folds' median, said so
    per_fold = a.folds.loc[a.folds["family"] == "rf-image", "threshold"]
    assert t == pytest.approx(float(per_fold.median())) and "median fold threshold" in label
    a.folds = None
    assert thresholds(a, "rf-image") == (None, None, None)  # nothing recorded: no line, never a made-up 0.5


def test_fig4_panels_have_one_letter_each(tmp_path):
    write_paper_project(tmp_path)
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    fig4 = html[html.index('<section id="fig4"') : html.index('<section id="fig5"')]
    letters = re.findall(r"<figcaption>([A-Z])\. DPPH", fig4)
    assert letters == ["A", "B"]  # the rf-cosine and rf-entropy ROCs (no PCA/OPLS-DA plots here): no two "C."
    assert "A. DPPH: rf-cosine" in fig4 and "B. DPPH: rf-entropy" in fig4


def test_drift_embedded_when_run_else_one_line(tmp_path):
    write_paper_project(tmp_path)
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    drift = html[html.index('<section id="drift"') : html.index('<section id="provenance"')]
    assert "benchmarks/drift.py" in drift and "Not run:" in drift and "<table" not in drift
    assert drift.count("<p") == 1
    write_paper_project(tmp_path / "ran", drift=True)
    html = build_report(tmp_path / "ran", "report/index.html").path.read_text(encoding="utf-8")
    drift = html[html.index('<section id="drift"') : html.index('<section id="provenance"')]
    assert "L1 (5 ppm, 0.2 min, 10% dropout, noise 0.1)" in drift and "0.800 ± 0.050" in drift


def test_figures_are_compressed_and_shown_at_the_size_drawn(tmp_path):
    import io

    from PIL import Image

    write_paper_project(tmp_path)
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    tags = re.findall(r'<img alt="[^"]*" width="(\d+)" height="(\d+)"[^>]*base64,([A-Za-z0-9+/=]+)"', html)
    assert len(tags) == len(_images(html)) >= 7  # Fig. 3 A-C, two Fig. 4 ROCs, Fig. 5, the drivers figure
    for width, _height, b64 in tags:
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert im.mode == "P"  # a 256-colour palette, a third of matplotlib's RGBA PNG
        assert int(width) == round(im.width * 96 / im.info["dpi"][0])  # drawn at W inches: W x 96 CSS px
    assert len(html) < 3_000_000


def test_a_small_cohort_is_named_in_the_overview(tmp_path):
    write_paper_project(tmp_path)
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    assert "small cohort" not in html
    sel = tmp_path / "reports" / "DPPH" / "selection.json"
    protocol = "small cohort: 3 low / 3 high labelled accessions (below 20 per class): 3-fold CV x 4 repeats"
    sel.write_text(json.dumps({**json.loads(sel.read_text()), "small_cohort": True, "protocol": protocol}))
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    overview = html[html.index('<section id="overview"') : html.index('<section id="table1"')]
    assert "DPPH</b>: small cohort: 3 low / 3 high" in overview


def test_table2_says_why_precision_in_the_top_tenth_is_withheld():
    """Six accessions make the top 10% one accession: the cell says n/a with the count, not a bare dash."""
    from ms2img.report.sections import _score_cell

    nan = float("nan")
    withheld = {"precision_top10": {"mean": nan, "sd": nan, "ci_low": nan, "ci_high": nan},
                "pooled": {"precision_top10": {"value": None, "k": 1}}}  # fmt: skip
    assert "n/a (top 10% is 1 accession)" in _score_cell(withheld, "precision_top10")
    shown = {"precision_top10": {"mean": 0.9, "sd": 0.1, "ci_low": 0.8, "ci_high": 1.0},
             "pooled": {"precision_top10": {"value": 0.9, "k": 16}}}  # fmt: skip
    assert _score_cell(shown, "precision_top10").startswith("<span class=nowrap>0.900 ± 0.100")
    # a demo-sized fold's top 10% is 3 accessions: per fold withheld, the pooled top of 16 shown, marked pooled
    pooled = {"precision_top10": {"mean": nan, "sd": nan, "ci_low": nan, "ci_high": nan},
              "pooled": {"precision_top10": {"value": 0.9375, "ci_low": 0.717, "ci_high": 0.989, "k": 16}}}  # fmt: skip
    assert _score_cell(pooled, "precision_top10") == "0.938 [0.717, 0.989] <span class='note'>pooled, top 16</span>"
    assert _score_cell({}, "auc") == "–"


def test_paired_table_bolds_only_what_survives_holm_within_the_assay():
    """15 comparisons per assay: a raw p of 0.03 among them is not a finding; its Holm-adjusted p says so."""
    from types import SimpleNamespace

    from ms2img.report.sections import _paired_rows

    paired = {"cnn vs rf-image": {"diff": 0.03, "ci_low": 0.01, "ci_high": 0.05, "p_value": 0.03},
              "cnn vs rf-cosine": {"diff": 0.01, "ci_low": -0.02, "ci_high": 0.04, "p_value": 0.4},
              "rf-image vs rf-cosine": {"diff": 0.09, "ci_low": 0.07, "ci_high": 0.11, "p_value": 0.001}}  # fmt: skip
    rows = _paired_rows(SimpleNamespace(name="DPPH", metrics={"paired": paired}, selection=None))
    raw, holm = {r[1]: r[4] for r in rows}, {r[1]: r[5] for r in rows}
    assert raw["cnn vs rf-image"] == "0.030" and holm["cnn vs rf-image"] == "0.060"  # 2 x 0.03: not bold
    assert holm["rf-image vs rf-cosine"] == "<b>0.003</b>" and holm["cnn vs rf-cosine"] == "0.400"
    assert not any("<b>" in r[4] for r in rows)  # raw p never bold


def test_a_permutation_p_at_its_floor_says_so():
    from ms2img.report.sections import _permutation_p

    assert _permutation_p(1 / 51, 50).startswith("≤ 0.02 ") and "50 permutations" in _permutation_p(1 / 51, 50)
    assert _permutation_p(1 / 2001, 2000).startswith("≤ 0.0005 ")  # not "≤ < 0.001"
    assert _permutation_p(24 / 51, 50) == "0.471" and _permutation_p(None, 50) == "–"


def test_a_rejected_promotion_names_the_served_champion_not_this_runs_winner(tmp_path):
    """The lab user's retrain: promotion kept champion v3 (rf-cosine), yet the report's "winner (served)" named this
    run's rf-image and showed its drivers as the served model's."""
    write_paper_project(tmp_path)
    promotion = {"promoted": False, "rejected": True, "champion_after": "3", "champion_family": "rf-cosine",
                 "candidate": "8", "reason": "kept champion 3: not better by the margin"}  # fmt: skip
    from html import unescape

    (tmp_path / "reports" / "DPPH" / "promotion.json").write_text(json.dumps(promotion))
    html = build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8")
    overview = html[html.index('<section id="overview"') : html.index('<section id="table1"')]
    assert "<b>v3 (rf-cosine)</b>, not this winner: kept champion 3: not better by the margin" in overview
    assert "winner of this run" in overview
    drivers = html[html.index('<section id="drivers"') : html.index('<section id="drift"')]
    said = "Not the served model: these drivers explain this run's winner, cnn; the registry still serves v3"
    assert said in unescape(drivers)


def test_a_rollback_by_hand_after_the_promotion_names_the_version_rolled_back_to(tmp_path):
    """The report trusted promotion.json, which `ms2img rollback` does not rewrite (promote@ would go stale and decide
    again): after a rollback it named the version rolled back from as served."""
    from html import unescape

    from ms2img.commands.rollback import record_rollback
    from ms2img.registry.decision import PromotionDecision

    write_paper_project(tmp_path)
    report_dir = tmp_path / "reports" / "DPPH"
    promotion = {"promoted": True, "rejected": False, "champion_after": "3", "candidate": "3", "reason": "better"}
    (report_dir / "promotion.json").write_text(json.dumps(promotion))
    rollback = PromotionDecision("ms2img-DPPH", "1", "3", True, "v3 mispredicts batch 7", "rollback", "rf-image")
    assert record_rollback(report_dir, rollback) == report_dir / "rollback.json"
    assert record_rollback(tmp_path / "reports" / "elsewhere", rollback) is None  # no promotion there: no project
    html = unescape(build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8"))
    overview = html[html.index('<section id="overview"') : html.index('<section id="table1"')]
    assert "<b>v1 (rf-image)</b>, rolled back by hand from v3: v3 mispredicts batch 7" in overview
    drivers = html[html.index('<section id="drivers"') : html.index('<section id="drift"')]
    assert "the registry serves v1 (rf-image), rolled back to by hand" in drivers
    # a later promotion decides again: the rollback no longer describes the registry
    (report_dir / "promotion.json").write_text(json.dumps({**promotion, "champion_after": "5", "candidate": "5"}))
    html = unescape(build_report(tmp_path, "report/index.html").path.read_text(encoding="utf-8"))
    assert "rolled back" not in html
