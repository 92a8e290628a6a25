"""Serving latency and throughput of the real scoring server (``mlflow models serve``) on one large accession.

Quality bar (../shared/design.md): one accession of ~5,000 precursors answered in under 250 ms at the median on
2 CPU cores, and no errors under concurrent load; serving goals (issue 16): sequential p50 below 100 ms, and under
50 concurrent clients p50 below 2 s with zero errors, on 2 cores.

Without ``--model-uri`` a small model is trained on a synthetic cohort and registered in a temporary MLflow store
(the paper's CNN at 150x140 by default, one epoch: the network's size, not its quality, sets the serving cost; or,
with ``--family rf-image``, the pipeline ``ForestClassifier`` fits for training, 300 trees) and promoted to
champion; with ``--model-uri`` (and ``MLFLOW_TRACKING_URI``) an existing model is served instead.
Then: the server is started with ``--workers`` uvicorn workers, one request of ``--precursors`` x ``--fragments``
(``mz:int`` strings, fragments below their precursor) is sent ``--sequential`` times one after the other (p50/p95),
``--clients`` threads send it concurrently for ``--duration`` seconds (throughput, errors), and the server stops.
``--profile`` also times the stages in-process (MLflow's JSON parsing, our parsing, rendering, the model call).

Run: ``python benchmarks/serve.py`` or ``python benchmarks/serve.py --workers 2`` (prints numbers). Clients run on
the same machine and take CPU from the server: numbers are conservative.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ms2img.serving.request import random_request

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSAY = "DPPH"


def train_and_register(workdir: Path, size: str, accessions: int, family: str = "cnn") -> str:
    """Synthetic cohort -> events -> a FamilyModel folder (the paper's CNN at ``size``, one epoch, or an RF),
    registered with ``registry.register_family`` and promoted; returns the model URI.

    The network's size, not its quality, sets the serving cost, so one epoch on a small cohort is enough.
    """
    from ms2img import registry, synth, tracking
    from ms2img.io.msdial import read_msdial
    from ms2img.io.schema import write_events
    from ms2img.models.family import FamilyModel
    from ms2img.render import RenderConfig, parse_size, render_files

    t0 = time.perf_counter()
    synth.make_cohort(workdir / "raw", accessions=accessions, seed=7)
    events = workdir / "events"
    events.mkdir(parents=True, exist_ok=True)
    for f in sorted((workdir / "raw" / "exports").glob("*.txt")):
        res = read_msdial(f, accession_from="file")
        keep = set(res.samples.loc[res.samples["type"] == "Sample", "replicate"].astype(str))
        write_events(res.events[res.events["replicate"].astype(str).isin(keep)].reset_index(drop=True),
                     events / f"{f.stem}.parquet")  # fmt: skip
    w, h = parse_size(size)
    [images] = render_files(events, [RenderConfig(width=w, height=h)], progress=False)
    y = np.arange(len(images.ids)) % 2
    accs = images.ids.astype(str).tolist()
    card = {"assay": ASSAY, "render": images.config, "threshold": 0.5, "n_accessions": len(accs),
            "label_scaling": {"min": 0.0, "max": 1.0, "low": 0.4, "high": 0.6},
            "metrics": {"auc": {"mean": 0.5, "sd": 0.0, "ci_low": 0.5, "ci_high": 0.5}}}  # fmt: skip
    if family == "cnn":
        from ms2img.models.cnn import build_paper_cnn

        model = build_paper_cnn((h, w, 1))
        model.fit(images.images[..., None], y, epochs=1, verbose=0)
        estimator = [model]
    else:
        from ms2img.models.estimators import ForestClassifier

        # what training registers for rf-image: the fitted pipeline of ForestClassifier (300 trees by default)
        estimator = ForestClassifier(n_estimators=(300,), flatten=True).fit(images.images, y).model_
    folder = FamilyModel(family, card, estimator, accs).save(workdir / "models" / ASSAY / family)
    tracking.setup_tracking()
    version = registry.register_family(folder, data_hash="bench", code_version="bench", events_dir=events)
    name = registry.model_name(ASSAY)
    registry.promote_version(name, version)
    print(f"built and registered {name} v{version} ({family} at {size}) in {time.perf_counter() - t0:.0f} s")
    return f"models:/{name}@champion"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_uri: str, port: int, workers: int, log_path: Path, timeout: float = 180) -> subprocess.Popen:
    """``mlflow models serve`` as ``ms2img serve`` runs it; returns once /ping answers."""
    import requests

    from ms2img.commands.serve import serve_command, serve_env
    from ms2img.tracking import tracking_uri

    env = serve_env(model_uri, tracking_uri(), 64 * 1024 * 1024, 200_000)
    cmd = serve_command(model_uri, "127.0.0.1", port, workers)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop_server(proc)
            raise RuntimeError(f"server did not answer /ping in {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def server_cpu(proc: subprocess.Popen) -> float:
    """CPU seconds (user + system) used so far by the server and its workers; NaN without psutil. Per request,
    this is what the server costs whatever else runs on the machine."""
    try:
        import psutil
    except ImportError:
        return float("nan")
    root = psutil.Process(proc.pid)
    total = 0.0
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        total += t.user + t.system
    return total


def percentiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1e3
    return (
        f"p50 {np.percentile(ms, 50):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, "
        f"mean {ms.mean():.1f} ms, max {ms.max():.1f} ms (n={len(ms)})"
    )


def sequential(url: str, body: bytes, n: int) -> list[float]:
    import requests

    headers = {"Content-Type": "application/json"}
    times = []
    with requests.Session() as s:
        for _ in range(3):  # warm-up: first calls trace the model
            s.post(url, data=body, headers=headers, timeout=60).raise_for_status()
        for _ in range(n):
            t0 = time.perf_counter()
            r = s.post(url, data=body, headers=headers, timeout=60)
            times.append(time.perf_counter() - t0)
            r.raise_for_status()
    return times


def concurrent(url: str, body: bytes, clients: int, duration: float):
    """``clients`` threads posting ``body`` back to back for ``duration`` s.

    Returns (answers within the window, answers after it, errors by kind, latencies, seconds until all returned).
    """
    import requests

    headers = {"Content-Type": "application/json"}
    lock = threading.Lock()
    ok, errors, latencies, late = 0, {}, [], [0]
    start = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def client() -> None:
        nonlocal ok
        with requests.Session() as s:
            start.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                try:
                    r = s.post(url, data=body, headers=headers, timeout=120)
                    kind = None if r.status_code == 200 and r.json()["predictions"] else f"HTTP {r.status_code}"
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    kind = exc.__class__.__name__
                end = time.perf_counter()
                with lock:
                    if kind is None and end <= stop_at[0]:  # answers after the window are not counted
                        ok += 1
                        latencies.append(end - t0)
                    elif kind is None:
                        late[0] += 1
                    else:
                        errors[kind] = errors.get(kind, 0) + 1

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    stop_at[0] = t0 + duration
    start.wait()
    for t in threads:
        t.join()
    return ok, late[0], errors, latencies, time.perf_counter() - t0


def profile_stages(model_uri: str, body: bytes, repeats: int = 20) -> None:
    """Median time of each stage of one request, in-process with the same model."""
    import mlflow
    from mlflow.pyfunc.scoring_server import _parse_json_data

    from ms2img.models.cnn import as_model_input, predict_proba
    from ms2img.render import render_arrays
    from ms2img.serving.predictor import render_request
    from ms2img.serving.request import parse_request

    model = mlflow.pyfunc.load_model(model_uri)
    impl = model.unwrap_python_model().predictor  # the FamilyPredictor (image families)
    impl._max_rows, impl._max_fragments, impl._render = impl.max_rows, impl.max_fragments, impl.render
    impl._model = impl.model.estimator[0] if impl.family == "cnn" else impl.model.estimator
    text = body.decode()
    schema = model.metadata.get_input_schema()

    def timed(fn):
        out, ts = None, []
        for _ in range(repeats):
            t0 = time.perf_counter()
            out = fn()
            ts.append(time.perf_counter() - t0)
        return out, np.median(ts) * 1e3

    df, t_json = timed(lambda: _parse_json_data(text, model.metadata, schema).data)
    parsed, t_parse = timed(lambda: parse_request(df, impl._max_rows, impl._max_fragments))
    (_ids, images), t_all = timed(lambda: render_request(df, impl._render, impl._max_rows, impl._max_fragments))
    req, counts, mz, intensity = parsed
    rows = np.repeat(np.arange(len(req)), counts)
    args = ((np.cumsum(counts > 0) - 1)[rows], req["precursor_mz"].to_numpy()[rows],
            req["precursor_intensity"].to_numpy()[rows], mz, intensity, impl._render)  # fmt: skip
    _, t_render = timed(lambda: render_arrays(*args))
    _, t_model = timed(lambda: impl._infer(images))  # the call the server makes
    if impl.family == "cnn":  # Keras: the compiled call, and the eager call for comparison
        _, t_eager = timed(lambda: predict_proba(impl._model, as_model_input(images)))
        model_note = f"model call {t_model:.1f} ms (eager call {t_eager:.1f} ms)"
    else:  # forests: the served call, and scikit-learn's predict_proba for comparison
        _, t_sk = timed(lambda: impl._model.predict_proba(images))
        model_note = f"model call {t_model:.1f} ms (scikit-learn predict_proba {t_sk:.1f} ms)"
    _, t_total = timed(lambda: model.predict(df))
    print(
        f"in-process stages (median of {repeats}): MLflow JSON->DataFrame {t_json:.1f} ms, validate+parse msms "
        f"{t_parse:.1f} ms, render {t_render:.1f} ms, {model_note}; pyfunc predict total {t_total:.1f} ms "
        f"(validate+parse+render {t_all:.1f} ms; image {impl._render.size})"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-uri", default=None, help="serve this model (e.g. models:/ms2img-DPPH@champion)")
    p.add_argument("--workers", type=int, default=None, help="uvicorn workers (default: ms2img serve's, one per core)")
    p.add_argument("--family", default="cnn", choices=["cnn", "rf-image"], help="family of the model built")
    p.add_argument("--size", default="150x140", help="image size of the model trained when no --model-uri")
    p.add_argument("--accessions", type=int, default=20, help="synthetic accessions to train on")
    p.add_argument("--precursors", type=int, default=5000)
    p.add_argument("--fragments", type=int, default=30)
    p.add_argument("--sequential", type=int, default=100, help="sequential requests")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of concurrent load")
    p.add_argument("--profile", action="store_true", help="also time the stages in-process")
    p.add_argument("--workdir", type=Path, default=None, help="keep the store and logs here (default: temp)")
    args = p.parse_args(argv)
    if args.workers is None:
        from ms2img.serving.app import default_workers

        args.workers = default_workers()

    tmp = None
    if args.workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="ms2img-serve-bench-")
        args.workdir = Path(tmp.name)
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        model_uri = args.model_uri
        if model_uri is None:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{args.workdir.resolve()}/mlflow.db"
            os.chdir(args.workdir)
            model_uri = train_and_register(args.workdir, args.size, args.accessions, args.family)
        print(
            f"host: {platform.node()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; "
            f"model {model_uri}; workers {args.workers}"
        )
        df = random_request(args.precursors, args.fragments)
        body = json.dumps({"dataframe_split": df.to_dict(orient="split", index=False)}).encode()
        print(f"request: 1 accession, {len(df)} precursors x {args.fragments} fragments, {len(body) / 1e6:.2f} MB JSON")
        if args.profile:
            profile_stages(model_uri, body)

        port = free_port()
        t0 = time.perf_counter()
        proc = start_server(model_uri, port, args.workers, args.workdir / "server.log")
        print(f"server up in {time.perf_counter() - t0:.1f} s on port {port}")
        url = f"http://127.0.0.1:{port}/invocations"
        try:
            cpu0, own0 = server_cpu(proc), time.process_time()
            seq = sequential(url, body, args.sequential)
            cpu1, own1 = server_cpu(proc), time.process_time()
            n_seq = args.sequential + 3  # with the warm-up calls
            print(f"sequential, {args.sequential} requests: {percentiles(seq)}")
            print(
                f"  CPU per request: server {(cpu1 - cpu0) / n_seq * 1e3:.1f} ms, "
                f"client {(own1 - own0) / n_seq * 1e3:.1f} ms"
            )
            ok, late, errors, lat, elapsed = concurrent(url, body, args.clients, args.duration)
            cpu2, own2 = server_cpu(proc), time.process_time()
            print(
                f"concurrent, {args.clients} clients for {args.duration:.0f} s: {ok / args.duration:.1f} requests/s "
                f"({ok} answered in the window, {late} more while draining, {elapsed:.1f} s in all), "
                f"{sum(errors.values())} errors {errors or ''}"
            )
            n_conc = max(ok + late + sum(errors.values()), 1)
            print(
                f"  CPU per request: server {(cpu2 - cpu1) / n_conc * 1e3:.1f} ms, clients "
                f"{(own2 - own1) / n_conc * 1e3:.1f} ms; load average now {os.getloadavg()[0]:.1f} on "
                f"{os.cpu_count()} cores (other processes take their share)"
            )
            if lat:
                print(f"  latency under load: {percentiles(lat)}")
            p50 = np.percentile(seq, 50) * 1e3
            verdict = "meets" if p50 < 250 and not errors else "MISSES"
            print(f"quality bar (p50 < 250 ms, no errors under load): {verdict} (p50 {p50:.0f} ms)")
            load_p50 = np.percentile(lat, 50) * 1e3 if lat else float("inf")
            verdict = "meets" if p50 < 100 and load_p50 < 2000 and not errors else "MISSES"
            print(
                f"serving goals (sequential p50 < 100 ms; {args.clients} clients: p50 < 2 s, no errors): {verdict} "
                f"(sequential p50 {p50:.0f} ms, under load p50 {load_p50:.0f} ms, {sum(errors.values())} errors)"
            )
        finally:
            stop_server(proc)
    finally:
        if tmp is not None:
            os.chdir(REPO_ROOT)
            tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
