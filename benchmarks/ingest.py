"""Ingest at disk speed: ingest + validate + render of a 240-accession MS-DIAL cohort, beside a plain ``csv`` parse.

Goal (issue 12): ingest + validate + render under 15 s on 2 cores, and ingest no slower than twice a plain Python
``csv.reader`` pass over the same files (ratio = ingest seconds / csv seconds <= 2), measured in the same run.

Run: ``python benchmarks/ingest.py`` (builds the cohort with ``ms2img synth --accessions 240 --seed 777``
in a temporary folder) or ``python benchmarks/ingest.py --cohort DIR`` (DIR holds ``exports/`` or is the
exports folder). Prints MB, seconds, MB/s and the ratio.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def plain_csv_parse(files: list[Path]) -> int:
    """What any Python tool must do at least: split every line of every file into fields."""
    fields = 0
    for f in files:
        with f.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh, delimiter="\t"):
                fields += len(row)
    return fields


def build_cohort(root: Path, accessions: int, seed: int) -> Path:
    cmd = [sys.executable, "-m", "ms2img.cli", "synth", "--accessions", str(accessions), "--seed", str(seed)]
    subprocess.run([*cmd, "--out", str(root)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", type=Path, help="existing cohort (folder with exports/, or the exports folder)")
    ap.add_argument("--accessions", type=int, default=240)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--size", default="150x140", help="render size")
    ap.add_argument("--repeats", type=int, default=1, help="csv and ingest timings: best of N")
    args = ap.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from ms2img.io.ingest import ingest
    from ms2img.render import RenderConfig, parse_size, render_files
    from ms2img.validation import run_validation

    tmp = Path(tempfile.mkdtemp(prefix="ms2img-bench-ingest-"))
    if args.cohort is None:
        t0 = time.perf_counter()
        root = build_cohort(tmp / "cohort", args.accessions, args.seed)
        print(f"built cohort: {args.accessions} accessions, seed {args.seed} ({time.perf_counter() - t0:.1f} s)")
    else:
        root = args.cohort
    exports = root / "exports" if (root / "exports").is_dir() else root
    assays = root / "assays.csv" if (root / "assays.csv").is_file() else None
    files = sorted(p for p in exports.iterdir() if p.suffix.lower() in (".txt", ".tsv"))
    mb = sum(p.stat().st_size for p in files) / 1e6
    for f in files:  # warm the page cache so both parsers read from memory
        f.read_bytes()

    csv_s, ingest_s = float("inf"), float("inf")
    for r in range(args.repeats):
        t0 = time.perf_counter()
        plain_csv_parse(files)
        csv_s = min(csv_s, time.perf_counter() - t0)
        events = tmp / f"events{r}"
        t0 = time.perf_counter()
        summary = ingest([exports], events)
        ingest_s = min(ingest_s, time.perf_counter() - t0)

    t0 = time.perf_counter()
    report = run_validation(events, assays, tmp / "reports")
    validate_s = time.perf_counter() - t0

    w, h = parse_size(args.size)
    t0 = time.perf_counter()
    [images] = render_files(events, [RenderConfig(width=w, height=h)], progress=False)
    images.save(tmp / f"{args.size}.npz")
    render_s = time.perf_counter() - t0

    total = ingest_s + validate_s + render_s
    ratio = ingest_s / csv_s
    print(
        f"input: {len(files)} MS-DIAL exports, {mb:.1f} MB, {summary.events:,} fragment events, cores {os.cpu_count()}"
    )
    print(f"plain csv parse  {csv_s:7.2f} s  {mb / csv_s:6.1f} MB/s")
    print(f"ingest           {ingest_s:7.2f} s  {mb / ingest_s:6.1f} MB/s")
    print(f"validate         {validate_s:7.2f} s  ({report.events.statistics['rows']:,} rows, "
          f"{report.events.statistics['fragments_above_precursor']:,} above precursor)")  # fmt: skip
    print(f"render {args.size:9s} {render_s:7.2f} s")
    print(f"ingest + validate + render: {total:.2f} s (goal < 15 s)")
    print(f"ratio ingest / plain csv parse: {ratio:.2f} (goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
