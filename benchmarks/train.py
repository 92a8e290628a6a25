"""Where one outer fold of the CNN spends its time: pure ``fit`` against the whole fold.

One fold of the default profile (params.yaml as it is): the tuned CNN (Keras Tuner trials with early stopping,
threshold on the inner split, ensemble refits) fitted on the fold's training part and scored on its test part.
"Pure fit" is the time inside Keras' training loops (``on_train_begin`` to ``on_train_end`` of every
``model.fit``: trials and refits); the rest of the fold is overhead (model building, graph tracing, the tuner's
bookkeeping, prediction). Goal: overhead under 20% of the fold.

    .venv/bin/python benchmarks/train.py                     # synthesises 240 accessions (seed 2718) once
    .venv/bin/python benchmarks/train.py --project /tmp/sci1 --assay TPC
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


class FitClock(keras.callbacks.Callback):
    """Adds up the wall time spent inside ``model.fit`` training loops (in a class-level total, because Keras
    Tuner deep-copies the callbacks it is given for every trial)."""

    total = {"seconds": 0.0, "fits": 0, "first_epochs": 0.0}  # noqa: RUF012 - shared on purpose

    def on_train_begin(self, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        if epoch == 0:  # the first epoch holds the graph tracing of the new model
            FitClock.total["first_epochs"] += time.perf_counter() - self._start

    def on_train_end(self, logs=None) -> None:
        FitClock.total["seconds"] += time.perf_counter() - self._start
        FitClock.total["fits"] += 1


def cohort(project: Path, size: str) -> None:
    """A scratch project with images of ``size`` (made with the project's own commands when missing)."""
    raw = project / "data" / "raw"
    run = lambda *a: subprocess.run([str(BIN / "ms2img"), *a], cwd=project, check=True, capture_output=True)  # noqa: E731
    project.mkdir(parents=True, exist_ok=True)
    if not (raw / "assays.csv").exists():
        run("synth", "--accessions", "240", "--seed", "2718", "--out", str(raw), "--force")
    if not (project / "data" / "images" / f"{size}.npz").exists():
        run("ingest", "data/raw/exports", "--out", "data/events", "--replace")
        run("render", "data/events", "--sizes", size, "--out-dir", "data/images")


def main() -> int:
    from ms2img.models.estimators import make_estimator
    from ms2img.render import images_path
    from ms2img.training.dataset import MIDDLE, data_from_params
    from ms2img.training.experiment import family_input
    from ms2img.training.scores import fold_scores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=Path("/tmp/ms2img-bench-train"))
    ap.add_argument("--assay", default="DPPH")
    ap.add_argument("--fold", type=int, default=0, help="which outer fold (0-based)")
    args = ap.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    size = params["render"]["size"]
    cohort(args.project, size)
    data = data_from_params(args.assay, params, images_path(size, args.project / "data" / "images"),
                            args.project / "data" / "raw" / "assays.csv")  # fmt: skip
    fold = data.folds[args.fold]
    y_all = data.scaling(fold.train).labels(data.values[fold.train])
    train, y = fold.train[y_all != MIDDLE], y_all[y_all != MIDDLE]
    clock = FitClock()
    started = time.perf_counter()
    x, owner = family_input(data, "cnn", train)
    model = make_estimator("cnn", params, seed=42).set_params(callbacks=[clock])
    model.fit(x, y[np.searchsorted(train, owner)])
    fitted = time.perf_counter()
    x_test, _ = family_input(data, "cnn", fold.test)
    prob = model.predict_proba(x_test)[:, 1]
    wall = time.perf_counter() - started
    y_test = data.scaling(fold.train).labels(data.values[fold.test])
    auc = fold_scores(y_test[y_test != MIDDLE], prob[y_test != MIDDLE], model.threshold_)["auc"]
    fit_seconds, fits = FitClock.total["seconds"], FitClock.total["fits"]
    overhead = wall - fit_seconds
    print(f"{args.assay} fold {args.fold + 1}: {len(train)} training images of {size}, "
          f"{params['tune']['trials']} trials, ensemble {params['cnn'].get('ensemble', 1)}; AUC {auc:.3f}")  # fmt: skip
    print(f"pure fit {fit_seconds:.1f} s in {fits} model.fit calls; whole fold {wall:.1f} s "
          f"(fit() {fitted - started:.1f} s, predict {wall - (fitted - started):.2f} s)")  # fmt: skip
    first = FitClock.total["first_epochs"]
    print(f"overhead {overhead:.1f} s = {overhead / wall:.0%} of the fold (goal < 20%); the first epochs, which "
          f"include tracing each new model's graph, took {first:.1f} s of the pure fit")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
