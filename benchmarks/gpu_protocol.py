"""Time the CNN on a GPU with the JAX backend: the default profile and the paper's (the CNN issue, item 9).

A lent GPU machine has JAX but neither TensorFlow, MLflow nor a package index, and its time is short; so the
work is split. Here, once: ``prepare`` renders a cohort no test or demo uses (``ms2img synth --seed 2718``, 240
accessions) at 75x70 and 150x140 into ``.gpu_bundle/`` and downloads the Keras wheels the machine lacks into
``.whl/`` (both git-ignored; carry both). There: ``run`` cross-validates the ``cnn`` family alone through the
project's own code (``ms2img.training.experiment.cross_validate``, the folds and seeds ``ms2img train`` uses) and
prints, per assay, the AUC and the wall time, and which backend and device ran it.

    .venv/bin/python benchmarks/gpu_protocol.py prepare
    # on the GPU machine (device tool: carry .gpu_bundle and .whl), one command:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax
    python3 benchmarks/gpu_protocol.py run --profile default
    python3 benchmarks/gpu_protocol.py run --profile paper --trials 2 --folds 1

The paper's protocol (120 tuner trials in each of 5 folds x 3 repeats, 80 epochs, 4 assays) is hours even on a
GPU. ``--trials`` and ``--folds`` run a measured slice of it, and the total is extrapolated from the seconds per
trial and fold measured, printed as such beside what was measured.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / ".gpu_bundle"
WHEELS = REPO / ".whl"
SIZES = ("75x70", "150x140")  # the default profile's size and the paper's
# What the GPU machine lacks for the CNN (its image has numpy, pandas, scikit-learn, scipy, pyarrow, PyYAML, tqdm,
# h5py, rich, absl-py, ml-dtypes and JAX); versions from requirements.lock, so the machine runs the Keras here.
WHEEL_PACKAGES = ("keras", "keras-tuner", "kt-legacy", "namex", "optree")
WHEEL_PYTHON = "3.12"  # the GPU machine's python3
WHEEL_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from science import REPEATS, SEED, generate, set_value, set_values, sh  # noqa: E402 - the benchmark's own helpers, one home


def locked_versions(names: tuple[str, ...]) -> dict[str, str]:
    """``{name: version}`` of ``names`` as pinned in requirements.lock."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and name.lower() in names:
            pins[name.lower()] = version.split(";")[0].strip()
    missing = sorted(set(names) - set(pins))
    if missing:
        sys.exit(f"requirements.lock pins no version of {missing}")
    return pins


def prepare(args: argparse.Namespace) -> int:
    """Render the cohort into the bundle and download the wheels (here, where ms2img and pip work)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ms2img-gpu-") as tmp:
        work = Path(tmp)
        raw = work / "data" / "raw"
        generate("synth", raw, args.accessions, args.seed, work)
        sh(["ms2img", "ingest", "data/raw/exports", "--out", "data/events", "--replace"], work)
        sh(["ms2img", "render", "data/events", "--sizes", ",".join(SIZES), "--out-dir", "data/images"], work)
        if BUNDLE.exists():
            shutil.rmtree(BUNDLE)
        shutil.copytree(work / "data" / "images", BUNDLE / "images")
        shutil.copy2(raw / "assays.csv", BUNDLE / "assays.csv")
    (BUNDLE / "cohort.txt").write_text(f"ms2img synth --accessions {args.accessions} --seed {args.seed}\n")
    WHEELS.mkdir(exist_ok=True)
    platforms = [a for p in WHEEL_PLATFORMS for a in ("--platform", p)]
    for name, version in locked_versions(WHEEL_PACKAGES).items():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
             WHEEL_PYTHON, "--implementation", "cp", *platforms, "-d", str(WHEELS), f"{name}=={version}"],
            check=True,
        )  # fmt: skip
    size = sum(p.stat().st_size for d in (BUNDLE, WHEELS) for p in d.rglob("*") if p.is_file()) / 2**20
    took = time.perf_counter() - started
    print(f"bundle {BUNDLE.name}/ and {WHEELS.name}/ ready ({size:.1f} MiB to carry), {took:.0f} s")
    return 0


def protocol_params(profile: str, trials: int | None, overrides: list[str], repeats: int | None = None) -> dict:
    """params.yaml with ``cv.repeats`` 3 (the issue's 5 folds x 3 repeats), then ``profiles/<profile>.yaml``'s dotted
    keys unless ``default``, then ``--repeats``, ``--trials`` and ``--set``, each winning over the ones before."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["cv"]["repeats"] = REPEATS
    if profile != "default":
        from ms2img.params import profile_overrides

        for dotted, value in profile_overrides(profile, REPO).items():
            set_value(params, dotted, value)
    for dotted, value in {"cv.repeats": repeats, "tune.trials": trials}.items():
        if value is not None:
            set_value(params, dotted, value)
    set_values(params, list(overrides))
    return params


def device_line() -> str:
    """The Keras backend and the devices it sees (the GPU, or only a CPU: the timing then says so)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        devices = ", ".join(sorted({f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in jax.devices()}))
    else:
        devices = "see the backend's own device listing"
    return f"keras {keras.__version__}, backend {backend}, devices {devices}"


def run(args: argparse.Namespace) -> int:
    """Cross-validate the cnn family on every assay of the bundle under one profile; print AUC and wall time."""
    import numpy as np

    from ms2img.render import images_path
    from ms2img.training.dataset import data_from_params
    from ms2img.training.experiment import cross_validate

    params = protocol_params(args.profile, args.trials, args.set, args.repeats)
    size = params["render"]["size"]
    npz = images_path(size, args.bundle / "images")
    if not npz.is_file():
        sys.exit(f"{npz} not found: run `benchmarks/gpu_protocol.py prepare` first and carry {args.bundle.name}")
    assays = args.assays.split(",") if args.assays else list(params["labels"]["assays"])
    cohort = (args.bundle / "cohort.txt").read_text().strip() if (args.bundle / "cohort.txt").exists() else "?"
    trials = int(params["tune"]["trials"])
    target = int(args.full_trials or protocol_params(args.profile, None, args.set, args.repeats)["tune"]["trials"])
    print(f"{device_line()}\nprofile {args.profile}: {size}, cnn.architecture {params['cnn']['architecture']}, "
          f"{trials} trial(s) per fit, cnn.epochs {params['cnn']['epochs']}; cohort {cohort}")  # fmt: skip
    lines, measured, full = [], 0.0, 0.0
    for assay in assays:
        data = data_from_params(assay, params, npz, args.bundle / "assays.csv")
        n_all = len(data.folds)
        data.folds = data.folds[: args.folds] if args.folds else data.folds
        started = time.perf_counter()
        result = cross_validate(data, ["cnn"], params, seed=int(params["base"]["seed"]))
        took = time.perf_counter() - started
        auc = result.folds["auc"].to_numpy(dtype=float)
        measured += took
        full += took * n_all / len(data.folds) * target / trials
        sd = np.nanstd(auc, ddof=1) if len(auc) > 1 else np.nan
        lines.append(f"{assay} cnn auc={np.nanmean(auc):.3f} sd={sd:.3f} folds={len(data.folds)}/{n_all} "
                     f"seconds={took:.1f}")  # fmt: skip
    print("\n".join(lines))
    print(f"measured wall time: {measured:.0f} s ({len(assays)} assays)")
    if full > measured * 1.01:
        print(f"extrapolated to every fold and {target} trial(s) per fit: {full:.0f} s = {full / 3600:.2f} h "
              "(linear in folds and trials; not measured)")  # fmt: skip
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="here: render the cohort into .gpu_bundle/ and download wheels into .whl/")
    p.add_argument("--accessions", type=int, default=240)
    p.add_argument("--seed", type=int, default=SEED)
    p.set_defaults(func=prepare)
    r = sub.add_parser("run", help="on the GPU machine: cross-validate the cnn on every assay, timed")
    r.add_argument("--profile", default="default", help="default (params.yaml) or a profiles/NAME.yaml, e.g. paper")
    r.add_argument("--bundle", type=Path, default=BUNDLE)
    r.add_argument("--assays", default=None, help="comma-separated (default: labels.assays)")
    r.add_argument("--trials", type=int, default=None, help="tune.trials for a measured slice (default: profile's)")
    r.add_argument(
        "--full-trials", type=int, default=None, help="extrapolate to this many trials (default: the profile's)"
    )
    r.add_argument("--repeats", type=int, default=None, help=f"cv.repeats (default {REPEATS}, as the profile's)")
    r.add_argument("--folds", type=int, default=None, help="run only the first N of the folds x repeats")
    r.add_argument("--set", action="append", default=[], help="override a params value, e.g. cnn.epochs=30")
    r.set_defaults(func=run)
    args = ap.parse_args()
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
