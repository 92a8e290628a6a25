"""Ingest at disk speed: ingest + validate + render of a 240-accession MS-DIAL cohort, beside a plain ``csv`` parse.

Goal (issue 12): ingest + validate + render under 15 s on 2 cores, and ingest no slower than twice a plain Python
``csv.reader`` pass over the same files (ratio = ingest seconds / csv seconds <= 2), measured in the same run.

Run: ``python benchmarks/ingest.py`` (builds the cohort with ``ms2img synth --accessions 240 --seed 777``
in a temporary folder) or ``python benchmarks/ingest.py --cohort DIR`` (DIR holds ``exports/`` or is the
exports folder). Prints MB, seconds, MB/s and the ratio.

Memory (issue 25): ``python benchmarks/ingest.py --mb [MB]`` (300 when no value is given) builds one MS-DIAL
alignment export of about MB megabytes (10^6 bytes; sizes are printed in MiB) from the rows of ``ms2img synth``
exports (seed 777), renumbered and repeated: 3 samples, a blank and a QC, ~13 fragments per spectrum; a 300 MB
export holds ~23 M fragment events. It ingests the export in a child process and prints file size, wall time, MiB/s,
the child's peak RSS and peak RSS / file size (goal <= 3 at 300 MB, the interpreter and libraries included). The
baseline, the same child ingesting one 0.2 MB export, is printed too.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
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
    ap.add_argument(
        "--mb", type=float, nargs="?", const=300.0, help="memory benchmark instead: one export of MB megabytes (300)"
    )
    ap.add_argument("--keep", action="store_true", help="--mb: keep the temporary folder (prints its path)")
    args = ap.parse_args(argv)
    if args.mb is not None:
        return memory_benchmark(args.mb, args.seed, args.keep)
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


# The child: ingest one file with the library (what ``ms2img ingest FILE`` does) and say what it wrote.
# Its peak RSS is its own VmHWM: wait4's ru_maxrss also counts the parent's pages at fork time.
CHILD = """
import json, resource, sys, time
t0 = time.perf_counter()
from ms2img.io.ingest import ingest
t1 = time.perf_counter()
s = ingest([sys.argv[1]], sys.argv[2])
t2 = time.perf_counter()
try:
    peak = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"events": s.events, "accessions": s.accessions, "import_s": t1 - t0, "ingest_s": t2 - t1,
                  "peak_mib": peak, "cpu_s": ru.ru_utime + ru.ru_stime}))
"""


def build_export(path: Path, mb: float, seed: int) -> dict:
    """One MS-DIAL alignment export of about ``mb`` MB: the body rows of a few ``ms2img synth`` exports (the
    project's own writer), repeated with new Alignment IDs until the size is reached. Deterministic from ``seed``."""
    synth = path.parent / "synth"
    cmd = [sys.executable, "-m", "ms2img.cli", "synth", "--accessions", "4", "--replicates", "3", "--seed", str(seed)]
    cmd += ["--out", str(synth)]
    subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    files = sorted((synth / "exports").glob("*.txt"))
    head: list[bytes] = []
    rows: list[bytes] = []
    for k, f in enumerate(files):
        lines = f.read_bytes().split(b"\r\n")
        h = next(i for i, ln in enumerate(lines) if ln.startswith(b"Alignment ID\t"))
        if k == 0:
            head = lines[: h + 1]
        rows += [ln.split(b"\t", 1)[1] for ln in lines[h + 1 :] if ln]
    target = int(mb * 1e6)
    n = 0
    with path.open("wb") as out:
        out.write(b"\r\n".join(head) + b"\r\n")
        size = out.tell()
        while size < target:
            block = b"".join(b"%d\t%s\r\n" % (n + i, r) for i, r in enumerate(rows))
            out.write(block)
            size += len(block)
            n += len(rows)
    types = head[1].split(b"\t")  # the File type row
    return {"rows": n, "samples": sum(t in (b"Sample", b"Blank", b"QC") for t in types)}


def run_child(export: Path, out: Path) -> tuple[dict, float, float]:
    """Ingest ``export`` in a fresh interpreter: (its report, wall seconds, its peak RSS in MiB)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(export), str(out)], cwd=REPO, stdout=subprocess.PIPE, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"ingest child failed (exit {proc.returncode})")
    report = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    return report, wall, report["peak_mib"]


def memory_benchmark(mb: float, seed: int, keep: bool) -> int:
    """Peak memory of ingesting one large MS-DIAL export, against its size and the interpreter's own baseline."""
    tmp = Path(tempfile.mkdtemp(prefix="ms2img-bench-ingest-mem-"))
    try:
        t0 = time.perf_counter()
        export = tmp / "big.txt"
        shape = build_export(export, mb, seed)
        file_mb = export.stat().st_size / 2**20
        print(f"built export: {file_mb:.1f} MiB, {shape['rows']:,} rows, {shape['samples']} sample columns "
              f"({time.perf_counter() - t0:.1f} s)")  # fmt: skip
        small = min((tmp / "synth" / "exports").glob("*.txt"))
        export.read_bytes()  # warm the page cache: time the parse, not the disk
        _, _, base_rss = run_child(small, tmp / "events-small")
        report, wall, peak = run_child(export, tmp / "events")
        out_mb = sum(p.stat().st_size for p in (tmp / "events").iterdir()) / 2**20
        print(f"input: 1 MS-DIAL export, {file_mb:.1f} MiB, {report['events']:,} fragment events, "
              f"{report['accessions']} accessions, cores {os.cpu_count()}")  # fmt: skip
        print(f"baseline (ingest of {small.name}, {small.stat().st_size / 2**20:.2f} MiB): peak RSS {base_rss:.0f} MiB")
        print(
            f"ingest  {report['ingest_s']:7.2f} s  {file_mb / report['ingest_s']:6.1f} MiB/s  "
            f"(process {wall:.2f} s incl. {report['import_s']:.2f} s imports, {report['cpu_s']:.1f} CPU s); "
            f"wrote {out_mb:.1f} MiB Parquet"
        )
        print(f"peak RSS {peak:.0f} MiB; peak RSS / file size: {peak / file_mb:.2f} (goal <= 3); "
              f"above the baseline: {(peak - base_rss) / file_mb:.2f} x the file")  # fmt: skip
        if keep:
            print(f"kept {tmp}")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
