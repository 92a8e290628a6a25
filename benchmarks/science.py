"""Does the CNN earn its place? Every family on the same folds, through the project's own commands.

Generates a cohort with ``ms2img synth`` under a seed the demo and tests never use (or takes ``--cohort DIR``
holding ``exports/`` and ``assays.csv``), runs ingest + validate, render, features and ``ms2img train`` per
assay in a scratch project, and prints one table: per assay and family the cross-validated AUC (mean ± SD and
the corrected 95% interval), OPLS-DA Q2Y, the paired p-values of the CNN against every baseline, and wall times.
The last lines are ``<assay> <family> auc=<mean> sd=<sd>`` for scripts.

    .venv/bin/python benchmarks/science.py                       # 240 accessions, seed 2718
    .venv/bin/python benchmarks/science.py --cohort /path/to/project_data --assays DPPH,TPC
    .venv/bin/python benchmarks/science.py --set cnn.ensemble=2 --set tune.trials=4   # try a recipe
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = 2718  # never used by the demo (42) or the tests


def sh(args: list[str], cwd: Path) -> float:
    """Run one project command; its output goes to the terminal; returns its wall time."""
    started = time.perf_counter()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n" + "\n".join(proc.stdout.splitlines()[-20:]))
    return time.perf_counter() - started


def set_values(params: dict, items: list[str]) -> None:
    for item in items:
        key, _, value = item.partition("=")
        node = params
        *parents, leaf = key.split(".")
        for k in parents:
            node = node[k]
        node[leaf] = yaml.safe_load(value)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", type=Path, help="folder with exports/ and assays.csv (default: synthesise one)")
    ap.add_argument("--accessions", type=int, default=240)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--assays", default=None, help="comma-separated (default: labels.assays)")
    ap.add_argument("--set", action="append", default=[], help="override a params.yaml value, e.g. cnn.epochs=30")
    ap.add_argument("--keep", type=Path, default=None, help="scratch project folder to keep (default: temporary)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="ms2img-science-"))
    work.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    set_values(params, args.set)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assays = args.assays.split(",") if args.assays else list(params["labels"]["assays"])
    raw = work / "data" / "raw"
    times: dict[str, float] = {}
    started = time.perf_counter()
    if args.cohort:
        if raw.exists():
            shutil.rmtree(raw)
        shutil.copytree(args.cohort, raw)
    elif not (raw / "assays.csv").exists():
        times["synth"] = sh(["ms2img", "synth", "--accessions", str(args.accessions), "--seed", str(args.seed),
                             "--out", str(raw), "--force"], work)  # fmt: skip
    times["ingest+validate"] = sh(["ms2img", "ingest", "data/raw/exports", "--out", "data/events", "--replace"], work)
    times["ingest+validate"] += sh(["ms2img", "validate", "data/events", "--assays", "data/raw/assays.csv"], work)
    times["render"] = sh(["ms2img", "render", "data/events", "--sizes", params["render"]["size"],
                          "--out-dir", "data/images"], work)  # fmt: skip
    times["features"] = sh(["ms2img", "features", "data/events", "--out", "data/features"], work)
    for assay in assays:
        times[f"train {assay}"] = sh(["ms2img", "train", "--assay", assay, "--no-track"], work)
    total = time.perf_counter() - started

    source = args.cohort or f"ms2img synth --accessions {args.accessions} --seed {args.seed}"
    cv = params["cv"]
    print(f"\ncohort: {source}; {cv['folds']} folds x {cv.get('repeats', 1)} repeats; size {params['render']['size']}")
    print(f"{'assay':<9} {'family':<11} {'AUC mean ± SD':<15} {'95% CI':<15} {'p vs cnn':<9} {'fit s':>6}")
    tail = []
    for assay in assays:
        m = json.loads((work / "metrics" / f"{assay}.json").read_text())
        sel = json.loads((work / "reports" / assay / "selection.json").read_text())
        for fam, entry in m["families"].items():
            a = entry["auc"]
            p = m["paired"].get(f"cnn vs {fam}", {}).get("p_value")
            p_text = "-" if p is None else f"{p:.3f}"
            print(f"{assay:<9} {fam:<11} {a['mean']:.3f} ± {a['sd']:.3f}  [{a['ci_low']:.2f}, {a['ci_high']:.2f}]"
                  f"   {p_text:<9} {entry['seconds']:>6.0f}")  # fmt: skip
            tail.append(f"{assay} {fam} auc={a['mean']:.4f} sd={a['sd']:.4f}")
        q2 = m.get("oplsda", {}).get("q2y")
        print(f"{assay:<9} {'opls-da':<11} Q2Y {q2 if q2 is None else round(q2, 3)}; winner {sel['winner']}")
    print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total:.0f} s")
    print("\n".join(tail))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
