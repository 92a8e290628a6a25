"""Does the CNN earn its place? Every family on the same folds, through the project's own commands.

Generates a cohort under a seed the demo and tests never use, with ``ms2img synth`` (``--generator synth``, the
default) or with ``benchmarks/cohort_b.py`` (``--generator cohort_b``: real spectra, another activity model; a
default chosen on one generator is confirmed on the other), or takes ``--cohort DIR`` holding ``exports/`` and
``assays.csv``. It runs ingest + validate, render, features and ``ms2img train`` per assay in a scratch project with
``cv.repeats`` 3 (``--repeats``; with one repeat a paired test has ``folds - 1`` degrees of freedom and decides
nothing), two assays side by side (``--jobs``, as the flow runs them), and prints one table: per assay and family
the cross-validated AUC (mean ± SD and the corrected 95% interval), OPLS-DA Q2Y, the paired p-values of the CNN
against every baseline, and wall times; then per assay the paired difference ``cnn - rf-image`` in AUC on the same
folds with its corrected 95% interval (Nadeau & Bengio, the ``paired`` block ``ms2img train`` writes to
``metrics/<assay>.json``) and what it decides.
The last lines are ``<F> folds x <R> repeats`` and ``<assay> <family> auc=<mean> sd=<sd>``, for scripts.

    .venv/bin/python benchmarks/science.py                       # 240 accessions, seed 2718, 5 folds x 3 repeats
    .venv/bin/python benchmarks/science.py --generator cohort_b  # the same on the second development cohort
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
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SEED = 2718  # never used by the demo (42) or the tests
REPEATS = 3  # cv.repeats unless --repeats / --set cv.repeats says otherwise
GENERATORS = ("synth", "cohort_b")
MARGIN = 0.02  # the CNN issue's bar: cnn mean AUC >= rf-image - MARGIN on every assay
PAIRS = (("cnn", "rf-image"), ("cnn-mt", "rf-image"), ("image-ensemble", "rf-image"))  # network family - the forest


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


def set_value(params: dict, dotted: str, value: Any) -> None:
    """Set the params value at dotted key ``dotted`` (``cnn.epochs``), making sections as needed."""
    node = params
    *parents, leaf = dotted.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[leaf] = value


def set_values(params: dict, items: list[str]) -> None:
    """Apply ``key.sub=value`` overrides (values parsed as YAML, e.g. ``train.families='[cnn, rf-image]'``)."""
    for item in items:
        key, _, value = item.partition("=")
        set_value(params, key, yaml.safe_load(value))


def generate(generator: str, raw: Path, accessions: int, seed: int, work: Path) -> float:
    """Write ``raw/exports`` and ``raw/assays.csv`` with ``ms2img synth`` or ``benchmarks/cohort_b.py``."""
    if raw.exists():
        shutil.rmtree(raw)  # no exports of another cohort left behind
    if generator == "cohort_b":
        args = [sys.executable, str(REPO / "benchmarks" / "cohort_b.py"), "--out", str(raw)]
    else:
        args = ["ms2img", "synth", "--out", str(raw), "--force"]
    return sh([*args, "--accessions", str(accessions), "--seed", str(seed)], work)


def paired(metrics: Mapping[str, Any], a: str, b: str) -> dict[str, float] | None:
    """The corrected paired test of ``a - b`` from the ``paired`` block of ``metrics/<assay>.json`` (stored as
    ``"a vs b"`` or ``"b vs a"``: the latter is turned round); None when either family was not trained."""
    block = metrics.get("paired") or {}
    if f"{a} vs {b}" in block:
        return dict(block[f"{a} vs {b}"])
    t = block.get(f"{b} vs {a}")
    if t is None:
        return None
    return {**t, "diff": -t["diff"], "ci_low": -t["ci_high"], "ci_high": -t["ci_low"]}


def verdict(t: Mapping[str, float], a: str, b: str) -> str:
    """What the corrected 95% interval of ``a - b`` decides: one is better, or the folds cannot tell."""
    if t["ci_low"] > 0:
        return f"{a} better"
    if t["ci_high"] < 0:
        return f"{b} better"
    return "undecided"


def bar_lines(metrics: Mapping[str, Mapping[str, Any]], margin: float = MARGIN) -> list[str]:
    """The network against the forest on pixels as the CNN issue judges it: ``cnn - rf-image >= -margin`` on every
    assay, and the best family with a network (``PAIRS``' first members) ahead of rf-image on at least 3 of 4."""
    lines = [f"\nagainst rf-image (cnn within {margin:g} on every assay; a family with a network ahead on >= 3 of 4):"]
    within = ahead = counted = 0
    for assay, m in metrics.items():
        diffs = {a: t["diff"] for a, b in PAIRS if (t := paired(m, a, b)) is not None}
        if "cnn" not in diffs:
            lines.append(f"{assay:<9} -  (cnn or rf-image not trained)")
            continue
        best = max(diffs, key=diffs.get)
        counted += 1
        within += diffs["cnn"] >= -margin
        ahead += diffs[best] > 0
        near = "within" if diffs["cnn"] >= -margin else "OUTSIDE"
        lead = "ahead" if diffs[best] > 0 else "not ahead"
        lines.append(
            f"{assay:<9} cnn {diffs['cnn']:+.3f} ({near}); best network family {best} {diffs[best]:+.3f} ({lead})"
        )
    lines.append(
        f"cnn within {margin:g} on {within}/{counted} assays; a family with a network ahead on {ahead}/{counted}"
    )
    return lines


def summary_lines(
    metrics: Mapping[str, Mapping[str, Any]], selections: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]
) -> tuple[list[str], list[str]]:
    """The report of a run from each assay's ``metrics/<assay>.json`` and ``selection.json``: the table with the
    paired differences, and the closing lines ``<F> folds x <R> repeats`` and ``<assay> <family> auc= sd=``."""
    table = [f"{'assay':<9} {'family':<14} {'AUC mean ± SD':<15} {'95% CI':<15} {'p vs cnn':<9} {'fit s':>6}"]
    tail: list[str] = []
    for assay, m in metrics.items():
        for fam, entry in m["families"].items():
            a = entry["auc"]
            t = paired(m, "cnn", fam) if fam != "cnn" else None
            p_text = "-" if t is None or t.get("p_value") is None else f"{t['p_value']:.3f}"
            ci = f"[{a['ci_low']:.2f}, {a['ci_high']:.2f}]"
            table.append(
                f"{assay:<9} {fam:<14} {a['mean']:.3f} ± {a['sd']:.3f}  {ci}   {p_text:<9} {entry['seconds']:>6.0f}"
            )
            tail.append(f"{assay} {fam} auc={a['mean']:.4f} sd={a['sd']:.4f}")
        q2 = m.get("oplsda", {}).get("q2y")
        winner = selections.get(assay, {}).get("winner")
        table.append(f"{assay:<9} {'opls-da':<14} Q2Y {q2 if q2 is None else round(q2, 3)}; winner {winner}")
    for a, b in PAIRS:
        table.append(f"\npaired difference {a} - {b} in AUC on the same folds (corrected resampled t, 95% interval):")
        for assay, m in metrics.items():
            t = paired(m, a, b)
            if t is None:
                table.append(f"{assay:<9} -  ({a} or {b} not trained)")
                continue
            table.append(f"{assay:<9} {t['diff']:+.3f} [{t['ci_low']:+.3f}, {t['ci_high']:+.3f}] p={t['p_value']:.3f}"
                         f" ({t.get('n_folds', '?')} folds): {verdict(t, a, b)}")  # fmt: skip
    table += bar_lines(metrics)
    cv = params.get("cv", {})
    protocols: dict[tuple[Any, Any], list[str]] = {}
    for assay, m in metrics.items():  # what train ran (numbers), else what params asked for
        key = (m.get("folds", cv.get("folds")), m.get("repeats", cv.get("repeats", 1)))
        protocols.setdefault(key, []).append(assay)
    if not protocols:
        protocols[(cv.get("folds"), cv.get("repeats", 1))] = []
    closing = [f"{f} folds x {r} repeats" + (f" ({', '.join(names)})" if len(protocols) > 1 else "")
               for (f, r), names in protocols.items()]  # fmt: skip
    return table, closing + tail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", type=Path, help="folder with exports/ and assays.csv (default: generate one)")
    ap.add_argument("--generator", choices=GENERATORS, default="synth",
                    help="synth: ms2img synth; cohort_b: benchmarks/cohort_b.py (ignored with --cohort)")  # fmt: skip
    ap.add_argument("--accessions", type=int, default=240)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--repeats", type=int, default=REPEATS, help=f"cv.repeats (default {REPEATS})")
    ap.add_argument("--assays", default=None, help="comma-separated (default: labels.assays)")
    ap.add_argument("--set", action="append", default=[], help="override a params.yaml value, e.g. cnn.epochs=30")
    ap.add_argument("--jobs", type=int, default=2, help="assays trained side by side (default 2, as the flow)")
    ap.add_argument("--keep", type=Path, default=None, help="scratch project folder to keep (default: temporary)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="ms2img-science-"))
    work.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.setdefault("cv", {})["repeats"] = args.repeats
    set_values(params, args.set)  # --set cv.repeats=... wins over --repeats
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assays = args.assays.split(",") if args.assays else list(params["labels"]["assays"])
    raw = work / "data" / "raw"
    times: dict[str, float] = {}
    started = time.perf_counter()
    if args.cohort:
        source = str(args.cohort)
        if raw.exists():
            shutil.rmtree(raw)
        shutil.copytree(args.cohort, raw)
    else:
        script = "benchmarks/cohort_b.py" if args.generator == "cohort_b" else "ms2img synth"
        source = f"{script} --accessions {args.accessions} --seed {args.seed}"
        stamp = work / "cohort.txt"  # a kept folder reuses its cohort only when it was made the same way
        if not (raw / "assays.csv").exists() or not stamp.exists() or stamp.read_text().strip() != source:
            times[args.generator] = generate(args.generator, raw, args.accessions, args.seed, work)
            stamp.write_text(source + "\n")
    times["ingest+validate"] = sh(["ms2img", "ingest", "data/raw/exports", "--out", "data/events", "--replace"], work)
    times["ingest+validate"] += sh(["ms2img", "validate", "data/events", "--assays", "data/raw/assays.csv"], work)
    times["render"] = sh(["ms2img", "render", "data/events", "--sizes", params["render"]["size"],
                          "--out-dir", "data/images"], work)  # fmt: skip
    times["features"] = sh(["ms2img", "features", "data/events", "--out", "data/features"], work)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # assays side by side, as the flow runs them
        took = pool.map(lambda a: sh(["ms2img", "train", "--assay", a, "--no-track"], work), assays)
        times.update({f"train {a}": t for a, t in zip(assays, took, strict=True)})
    total = time.perf_counter() - started

    metrics = {a: json.loads((work / "metrics" / f"{a}.json").read_text()) for a in assays}
    selections = {a: json.loads((work / "reports" / a / "selection.json").read_text()) for a in assays}
    table, closing = summary_lines(metrics, selections, params)
    print(f"\ncohort: {source}; size {params['render']['size']}; scratch project {work}")
    print("\n".join(table))
    print("wall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total:.0f} s")
    print("\n".join(closing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
