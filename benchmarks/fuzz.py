"""Hostile-input fuzz run over ``ms2img ingest`` / ``ms2img validate`` and the serving guard (issue 16).

    nice -n 19 .venv/bin/python benchmarks/fuzz.py [--work DIR] [--keep] [--only exports,assays,serving]

(a) corrupted MS-DIAL exports, built from a small synthetic cohort (``ms2img synth --accessions 6 --seed 3``):
    each case is a copy of the six exports with one (or all) mutated; ``ms2img ingest EXPORTS --out OUT`` runs on
    it with OUT pre-populated from a good run, then ``ms2img validate OUT --assays assays.csv`` when ingest
    succeeds. A failed ingest must leave OUT byte-identical (hash of the folder before/after) and no staging
    leftovers beside it.
(b) bad assays.csv tables, validated against the good events folder.
(c) requests to :class:`ms2img.serving.app.GuardedApp`, called in-process as a raw ASGI app (no server): the
    inner app is MLflow's real scoring app (``scoring_server.init``) around a duck-typed pyfunc whose predict is
    ms2img's own :class:`~ms2img.serving.predictor.FamilyPredictor` (request parsing, rendering) over a dummy estimator
    (constant probability), wrapped like :class:`~ms2img.serving.predictor.FamilyPyfunc` (RequestError -> 400).

Outcomes: ``clean error`` (non-zero exit, stderr holds exactly one non-log line, ``ms2img <cmd>: error: ...``,
naming a file), ``unclear error`` (non-zero exit without traceback, but not that one line or no file named),
``traceback`` (a Python traceback in the output), ``accepted`` (exit 0 on every stage), ``crash`` (killed by a
signal or past the timeout). Every case says whether it should be rejected, accepted, or accepted with a
warning; accepts of inputs that should be rejected (or accepted without the expected warning) and rejects of
valid inputs are listed as doubtful. For serving: ``clean error`` = a 4xx JSON ``{error_code, message}`` with
no echoed input or traceback; ``traceback`` = a 5xx, a traceback in the body, an exception out of the app, or a
traceback in the log; ``accepted`` = 200; ``crash`` = no answer within the timeout.

Every subprocess runs under ``nice -n 19``; nothing is parallel. Prints one table and the lists; exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MS2IMG = ROOT / ".venv" / "bin" / "ms2img"
PARAMS = ROOT / "params.yaml"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
FILE_TOKEN = re.compile(r"[\w./~-]+\.(txt|tsv|csv|parquet|mgf|mzml|mzxml|yaml)\b|/[\w./-]+", re.IGNORECASE)
TARGET = "ACC0002.txt"  # the export most cases corrupt

CATEGORIES = ["clean error", "unclear error", "traceback", "accepted", "crash"]


# --------------------------------------------------------------------------------------------- subprocesses
@dataclass
class Run:
    cmd: str
    rc: int | None
    out: str
    err: str
    secs: float
    timed_out: bool = False


def run_cli(args: list[str], cwd: Path, timeout: float) -> Run:
    cmd = ["nice", "-n", "19", str(MS2IMG), *map(str, args)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "MPLBACKEND": "Agg", "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
        timed_out = False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group of the process this run started, nothing else
        out, err = proc.communicate()
        timed_out = True
    return Run(
        "ms2img " + " ".join(map(str, args)), proc.returncode, out.decode("utf-8", "replace"),
        err.decode("utf-8", "replace"), time.perf_counter() - t0, timed_out,
    )  # fmt: skip


def classify(run: Run, sub: str) -> tuple[str, str]:
    """(category, short reason) of one CLI run."""
    text = run.out + run.err
    if run.timed_out or run.rc is None or run.rc < 0 or run.rc in (137, 139):
        return "crash", f"rc={run.rc}{' (timeout)' if run.timed_out else ''}"
    if "Traceback (most recent call last)" in text:
        last = [ln for ln in text.strip().splitlines() if ln.strip()][-1:]
        return "traceback", (last[0][:300] if last else "")
    if run.rc == 0:
        return "accepted", ""
    lines = [ln for ln in run.err.splitlines() if ln.strip() and not LOG_LINE.match(ln)]
    prefix = f"ms2img {sub}: error:"
    if len(lines) == 1 and lines[0].startswith(prefix):
        if FILE_TOKEN.search(lines[0][len(prefix) :]):
            return "clean error", lines[0][:300]
        return "unclear error", "names no file: " + lines[0][:300]
    return "unclear error", f"rc={run.rc}, {len(lines)} non-log stderr line(s): " + " | ".join(lines)[:300]


def tree_hash(path: Path) -> str:
    """sha256 over relative names, kinds and bytes of everything under ``path`` (hidden entries included)."""
    h = hashlib.sha256()
    if not path.exists():
        return "absent"
    if path.is_file():
        return "file:" + hashlib.sha256(path.read_bytes()).hexdigest()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file() and not p.is_symlink():
            h.update(hashlib.sha256(p.read_bytes()).digest())
        else:
            h.update(b"dir" if p.is_dir() else b"other")
    return h.hexdigest()


# --------------------------------------------------------------------------------------------- export model
class Export:
    """One MS-DIAL export as metadata lines, header and body rows (lists of cells), for mutation."""

    def __init__(self, path: Path):
        lines = path.read_text(encoding="utf-8").split("\n")
        if lines and lines[-1] == "":
            lines = lines[:-1]
        self.h = next(i for i, ln in enumerate(lines) if ln.startswith("Alignment ID"))
        self.meta = lines[: self.h]
        self.header = lines[self.h].split("\t")
        self.rows = [ln.split("\t") for ln in lines[self.h + 1 :]]

    def col(self, name: str) -> int:
        return self.header.index(name)

    def samples(self) -> list[str]:
        return [c for c in self.header if re.fullmatch(r"ACC\d+_r\d+", c)]

    def set(self, name: str, fn: Callable[[int, list[str]], str], rows: Any = None) -> Export:
        j = self.col(name)
        for i, row in enumerate(self.rows):
            if rows is None or i in rows:
                row[j] = fn(i, row)
        return self

    def drop(self, name: str) -> Export:
        j = self.col(name)
        self.header.pop(j)
        for r in self.rows:
            r.pop(j)
        for k, ln in enumerate(self.meta):  # metadata rows are as wide as the table
            cells = ln.split("\t")
            if len(cells) > j:
                cells.pop(j)
            self.meta[k] = "\t".join(cells)
        return self

    def text(self, eol: str = "\n") -> str:
        lines = [*self.meta, "\t".join(self.header), *("\t".join(r) for r in self.rows)]
        return eol.join(lines) + eol


def msms_pairs(cell: str) -> list[tuple[str, str]]:
    return [tuple(p.split(":", 1)) for p in cell.split() if ":" in p]  # type: ignore[misc]


# --------------------------------------------------------------------------------------------- cases
@dataclass
class Case:
    group: str
    name: str
    expect: str  # reject | accept | warn | either
    build: Callable[[Path, Path], list[str]]  # (case dir, pristine exports) -> ingest input args
    out_args: Callable[[Path], list[str]] | None = None  # extra ingest args, e.g. a different --out
    post: Callable[[Path], list[str]] | None = None  # extra checks after the run -> problems found
    validate: bool = True


@dataclass
class Outcome:
    case: Case
    category: str
    reason: str
    stage: str
    notes: list[str] = field(default_factory=list)
    secs: float = 0.0
    summary: str = ""


def copy_exports(case_dir: Path, good: Path) -> Path:
    ex = case_dir / "exports"
    shutil.copytree(good, ex)
    return ex


def mutate(fn: Callable[[Export], Any], target: str = TARGET, eol: str = "\n", encoding: str = "utf-8"):
    """A case builder: copy the exports, parse ``target``, apply ``fn``, write it back."""

    def build(case_dir: Path, good: Path) -> list[str]:
        ex = copy_exports(case_dir, good)
        targets = sorted(ex.glob("*.txt")) if target == "*" else [ex / target]
        for t in targets:
            e = Export(t)
            res = fn(e)
            if isinstance(res, bytes):
                t.write_bytes(res)
            else:
                t.write_bytes(e.text(eol).encode(encoding))
        return [str(ex)]

    return build


def raw(fn: Callable[[bytes], bytes], target: str = TARGET):
    """A case builder over the bytes of ``target``."""

    def build(case_dir: Path, good: Path) -> list[str]:
        ex = copy_exports(case_dir, good)
        t = ex / target
        t.write_bytes(fn(t.read_bytes()))
        return [str(ex)]

    return build


def custom(fn: Callable[[Path, Path], list[str] | None]):
    def build(case_dir: Path, good: Path) -> list[str]:
        ex = copy_exports(case_dir, good)
        args = fn(case_dir, ex)
        return args if args is not None else [str(ex)]

    return build


def first_sample_cell(value: str, rows: Any = (3,)):
    def fn(e: Export):
        e.set(e.samples()[0], lambda i, r: value, rows=set(rows))

    return fn


def msms_cell(fn_cell: Callable[[str, float], str], rows: Any = (3,)):
    """Rewrite the MS/MS cell of ``rows`` (``None`` = every row) from (cell, precursor m/z)."""

    def fn(e: Export):
        mz = e.col("Average Mz")
        e.set("MS/MS spectrum", lambda i, r: fn_cell(r[e.col("MS/MS spectrum")], float(r[mz])),
              rows=None if rows is None else set(rows))  # fmt: skip

    return fn


def first_fragment(repl: Callable[[str, str], tuple[str, str]]):
    def cell(c: str, _pmz: float) -> str:
        pairs = msms_pairs(c) or [("100.0", "10")]
        pairs[0] = repl(*pairs[0])
        return " ".join(f"{a}:{b}" for a, b in pairs)

    return cell


def rename_header(old: str, new: str):
    def fn(e: Export):
        e.header[e.col(old)] = new

    return fn


def duplicate_column(name: str, value: Callable[[int, list[str]], str]):
    """Append a second column called ``name`` (different values) after the first."""

    def fn(e: Export):
        j = e.col(name)
        e.header.insert(j + 1, name)
        for i, r in enumerate(e.rows):
            r.insert(j + 1, value(i, r))
        for k, ln in enumerate(e.meta):
            cells = ln.split("\t")
            cells.insert(min(j + 1, len(cells)), cells[j] if j < len(cells) else "")
            e.meta[k] = "\t".join(cells)

    return fn


def random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


def exports_cases() -> list[Case]:
    C: list[Case] = []

    def add(name, expect, build, **kw):
        C.append(Case("exports", name, expect, build, **kw))

    # -- truncation, garbage, encodings
    add("truncated mid-row (60% of bytes)", "reject", raw(lambda b: b[: int(len(b) * 0.6)]))
    add("truncated mid-cell inside MS/MS string", "reject", raw(lambda b: b[: b.index(b"\n", int(len(b) * 0.5)) - 400]))
    add(
        "truncated to header only (no rows)", "reject", raw(lambda b: b[: b.index(b"\n", b.index(b"Alignment ID")) + 1])
    )
    add("truncated inside metadata rows (no header)", "reject", raw(lambda b: b[:300]))
    add("empty file (0 bytes)", "reject", raw(lambda b: b""))
    add("binary garbage (64 KiB random)", "reject", raw(lambda b: random_bytes(65536)))
    add("valid file + 4 KiB NUL bytes appended", "reject", raw(lambda b: b + b"\0" * 4096))
    add("gzip-compressed export named .txt", "reject", raw(lambda b: __import__("gzip").compress(b)))
    add("UTF-16 LE with BOM", "either", raw(lambda b: b.decode().encode("utf-16")))
    add(
        "Windows-1252 metabolite name (é)",
        "accept",
        mutate(lambda e: e.set("Metabolite name", lambda i, r: "Quercétine", rows={2}), encoding="cp1252"),
    )
    add(
        "invalid UTF-8 bytes inside a height cell",
        "reject",
        raw(lambda b: b.replace(b"\t0\t", b"\t\xff\xfe\t", 1) if b"\t0\t" in b else b + b"\xff"),
    )
    add("UTF-8 BOM", "accept", raw(lambda b: b"\xef\xbb\xbf" + b))
    add("CRLF line endings", "accept", mutate(lambda e: None, eol="\r\n"))
    add("BOM + CRLF", "accept", raw(lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")))
    add(
        "mixed CRLF / LF lines",
        "accept",
        raw(lambda b: b"\n".join(ln + (b"\r" if i % 2 else b"") for i, ln in enumerate(b.split(b"\n")))),
    )
    add("CR-only line endings (old Mac)", "either", raw(lambda b: b.replace(b"\n", b"\r")))
    add("blank lines between rows", "accept", raw(lambda b: b.replace(b"\n", b"\n\n", 30)))
    add("trailing whitespace-only lines", "accept", raw(lambda b: b + b"   \n\t\t\n\n"))
    add(
        "NUL byte inside a metabolite name",
        "reject",
        mutate(lambda e: e.set("Metabolite name", lambda i, r: "Quer\0cetin", rows={2})),
    )
    # -- header columns
    add("missing column 'MS/MS spectrum'", "reject", mutate(lambda e: e.drop("MS/MS spectrum")))
    add("missing column 'Average Mz'", "reject", mutate(lambda e: e.drop("Average Mz")))
    add("missing column 'Alignment ID' (header starts elsewhere)", "reject", mutate(lambda e: e.drop("Alignment ID")))
    add("missing column 'Average Rt(min)'", "reject", mutate(lambda e: e.drop("Average Rt(min)")))
    add("renamed 'Average Mz' -> 'Average m/z'", "reject", mutate(rename_header("Average Mz", "Average m/z")))
    add(
        "header names with trailing spaces",
        "accept",
        mutate(lambda e: setattr(e, "header", [h + " " for h in e.header])),
    )
    add(
        "duplicated 'Average Mz' column (2nd one +100 Da)",
        "reject",
        mutate(duplicate_column("Average Mz", lambda i, r: f"{float(r[2]) + 100:.5f}")),
    )
    add(
        "duplicated 'MS/MS spectrum' column (2nd one different)",
        "reject",
        mutate(duplicate_column("MS/MS spectrum", lambda i, r: "500.0:1000")),
    )
    add(
        "two sample columns with the same name (r2 renamed r1)",
        "reject",
        mutate(rename_header("ACC0002_r2", "ACC0002_r1")),
    )
    add("no metadata rows above header", "either", mutate(lambda e: setattr(e, "meta", [])))
    add(
        "'File type' row says Blank for every column (no samples)",
        "reject",
        mutate(lambda e: e.meta.__setitem__(1, re.sub(r"\t(Sample|QC)\b", "\tBlank", e.meta[1]))),
    )
    add(
        "unknown sample type 'Sampel'",
        "reject",
        mutate(lambda e: e.meta.__setitem__(1, e.meta[1].replace("\tSample", "\tSampel", 1))),
    )
    add("header only, 200k tab columns", "reject", raw(lambda b: b"Alignment ID" + b"\tX" * 200_000 + b"\n"))
    # -- ragged rows
    add("one row with 5 cells fewer", "reject", mutate(lambda e: e.rows.__setitem__(4, e.rows[4][:-5])))
    add("one row with 3 extra cells", "reject", mutate(lambda e: e.rows[4].extend(["1", "2", "3"])))
    # -- values: heights
    add("height 'nan'", "warn", mutate(first_sample_cell("nan")))
    add("height 'NA' in 50 rows", "warn", mutate(first_sample_cell("NA", rows=range(50))))
    add("height 'inf'", "reject", mutate(first_sample_cell("inf")))
    add("height '-inf'", "reject", mutate(first_sample_cell("-inf")))
    add("height 1e308", "reject", mutate(first_sample_cell("1e308")))
    add("height 1e13 (above max_intensity 1e12)", "reject", mutate(first_sample_cell("1e13")))
    add("height 1e400 (overflows to inf)", "reject", mutate(first_sample_cell("1e400")))
    add("height negative (-5)", "reject", mutate(first_sample_cell("-5")))
    add("height text 'abc'", "reject", mutate(first_sample_cell("abc")))
    add("height with decimal comma '12,5'", "reject", mutate(first_sample_cell("12,5")))
    add("height with thousands separator '1,234'", "reject", mutate(first_sample_cell("1,234")))
    add("height hex '0x10'", "reject", mutate(first_sample_cell("0x10")))
    add("all heights of one replicate = 0", "either", mutate(lambda e: e.set(e.samples()[0], lambda i, r: "0")))
    add(
        "all sample heights of the file = 0 (nothing detected)",
        "reject",
        mutate(lambda e: [e.set(s, lambda i, r: "0") for s in e.samples()]),
    )
    # -- values: precursor / RT / IDs
    add("precursor m/z negative", "reject", mutate(lambda e: e.set("Average Mz", lambda i, r: "-5", rows={3})))
    add("precursor m/z 0", "reject", mutate(lambda e: e.set("Average Mz", lambda i, r: "0", rows={3})))
    add("precursor m/z 'nan'", "reject", mutate(lambda e: e.set("Average Mz", lambda i, r: "nan", rows={3})))
    add("precursor m/z 1e308", "reject", mutate(lambda e: e.set("Average Mz", lambda i, r: "1e308", rows={3})))
    add(
        "precursor m/z 50000 (above mz_max 2000)",
        "reject",
        mutate(lambda e: e.set("Average Mz", lambda i, r: "50000", rows={3})),
    )
    add("precursor m/z empty", "reject", mutate(lambda e: e.set("Average Mz", lambda i, r: "", rows={3})))
    add("RT negative", "reject", mutate(lambda e: e.set("Average Rt(min)", lambda i, r: "-1", rows={3})))
    add("RT 'inf'", "reject", mutate(lambda e: e.set("Average Rt(min)", lambda i, r: "inf", rows={3})))
    add("duplicate Alignment ID", "reject", mutate(lambda e: e.set("Alignment ID", lambda i, r: "1", rows={5})))
    add("empty Alignment ID", "reject", mutate(lambda e: e.set("Alignment ID", lambda i, r: "", rows={5})))
    add("non-numeric Alignment IDs (F-x)", "accept", mutate(lambda e: e.set("Alignment ID", lambda i, r: f"F-{i}")))
    # -- values: MS/MS strings
    add("MS/MS fragment intensity 1e308", "reject", mutate(msms_cell(first_fragment(lambda a, b: (a, "1e308")))))
    add("MS/MS fragment intensity 1e13", "reject", mutate(msms_cell(first_fragment(lambda a, b: (a, "1e13")))))
    add("MS/MS fragment intensity 'nan'", "reject", mutate(msms_cell(first_fragment(lambda a, b: (a, "nan")))))
    add("MS/MS fragment intensity 'inf'", "reject", mutate(msms_cell(first_fragment(lambda a, b: (a, "inf")))))
    add("MS/MS fragment intensity negative", "reject", mutate(msms_cell(first_fragment(lambda a, b: (a, "-10")))))
    add("MS/MS fragment intensity 0", "either", mutate(msms_cell(first_fragment(lambda a, b: (a, "0")))))
    add("MS/MS fragment m/z negative", "reject", mutate(msms_cell(first_fragment(lambda a, b: ("-50.0", b)))))
    add("MS/MS fragment m/z 'nan'", "reject", mutate(msms_cell(first_fragment(lambda a, b: ("nan", b)))))
    add("MS/MS fragment m/z 1e308", "reject", mutate(msms_cell(first_fragment(lambda a, b: ("1e308", b)))))
    add("MS/MS malformed 'abc:def'", "reject", mutate(msms_cell(lambda c, p: "abc:def")))
    add("MS/MS without colons '100.1 200.2'", "reject", mutate(msms_cell(lambda c, p: "100.1 200.2")))
    add("MS/MS empty intensity '100.1:'", "reject", mutate(msms_cell(lambda c, p: "100.1: 101.2:5")))
    add("MS/MS ';'-separated pairs", "either", mutate(msms_cell(lambda c, p: "60.1:5;70.2:6;80.3:7")))
    add("MS/MS ','-separated pairs", "either", mutate(msms_cell(lambda c, p: "60.1:5,70.2:6,80.3:7")))
    add("MS/MS triple 'a:b:c'", "reject", mutate(msms_cell(lambda c, p: "60.1:5:9 70.2:6")))
    add("MS/MS duplicate fragment m/z", "either", mutate(msms_cell(lambda c, p: "60.1:5 60.1:7 70.2:6")))
    add("empty MS/MS in every row of one file", "reject", mutate(lambda e: e.set("MS/MS spectrum", lambda i, r: "")))
    add(
        "empty MS/MS in every row of every file",
        "reject",
        mutate(lambda e: e.set("MS/MS spectrum", lambda i, r: ""), target="*"),
    )
    add(
        "fragments above precursor on every row of every file",
        "reject",
        mutate(msms_cell(lambda c, p: f"{p + 10:.4f}:500 {p + 30:.4f}:800 {p + 50:.4f}:300", rows=None), target="*"),
    )
    add(
        "fragments above precursor on every row of one file",
        "reject",
        mutate(msms_cell(lambda c, p: f"{p + 10:.4f}:500 {p + 30:.4f}:800", rows=None)),
    )
    add(
        "fragment m/z 5000 (above mz_max) on every row",
        "reject",
        mutate(msms_cell(lambda c, p: "5000.0:100 5001.0:200", rows=None)),
    )
    # -- huge lines
    add(
        "huge line: 20 MB metabolite name",
        "either",
        mutate(lambda e: e.set("Metabolite name", lambda i, r: "X" * 20_000_000, rows={2})),
    )
    add(
        "huge MS/MS cell: 300k fragments",
        "either",
        mutate(msms_cell(lambda c, p: " ".join(f"{50 + k * 1e-3:.4f}:{k % 97 + 1}" for k in range(300_000)))),
    )
    add("5 MB single line, no newline, no header", "reject", raw(lambda b: b"A" * 5_000_000))

    # -- folder / naming
    def two_names(case_dir, ex):
        shutil.copy(ex / "ACC0001.txt", ex / "ACC0001.tsv")

    add("two files -> one accession (ACC0001.txt + ACC0001.tsv)", "reject", custom(two_names))

    def sanitised_clash(case_dir, ex):
        shutil.copy(ex / "ACC0001.txt", ex / "ACC 0001.txt")  # accession_filename: ' ' -> '_' ?
        shutil.copy(ex / "ACC0001.txt", ex / "ACC_0001.txt")

    add("two stems that sanitise to one file name ('ACC 0001', 'ACC_0001')", "reject", custom(sanitised_clash))

    def case_clash(case_dir, ex):
        shutil.copy(ex / "ACC0001.txt", ex / "acc0001.txt")

    add("stems differing only in case (ACC0001 / acc0001)", "reject", custom(case_clash))

    def dir_like_file(case_dir, ex):
        (ex / "ACC0007.txt").mkdir()
        shutil.copy(ex / "ACC0001.txt", ex / "ACC0007.txt" / "inner.txt")

    add("directory named ACC0007.txt inside the folder", "either", custom(dir_like_file))
    add(
        "directory named ACC0007.txt given explicitly",
        "reject",
        custom(lambda d, ex: (dir_like_file(d, ex), [str(ex / "ACC0001.txt"), str(ex / "ACC0007.txt")])[1]),
    )

    def dangling(case_dir, ex):
        (ex / "ACC0008.txt").symlink_to(case_dir / "does-not-exist.txt")

    add("dangling symlink ACC0008.txt in the folder", "either", custom(dangling))
    add(
        "explicit input that does not exist",
        "reject",
        custom(lambda d, ex: [str(ex / "ACC0001.txt"), str(ex / "nope.txt")]),
    )

    def readme(case_dir, ex):
        (ex / "README.txt").write_text("These are the exports of the 2024 run.\nAsk Ana.\n")

    add("a README.txt beside the exports", "either", custom(readme))

    def empty_folder(case_dir, ex):
        shutil.rmtree(ex)
        ex.mkdir()

    add("empty exports folder", "reject", custom(empty_folder))

    def single_traversal(case_dir, ex):
        e = Export(ex / "ACC0001.txt")
        e.header[e.col("ACC0001_r1")] = "../../evil"
        e.header[e.col("ACC0001_r2")] = ""
        (ex / "ACC0001.txt").write_text(e.text())
        return [str(ex / "ACC0001.txt")]

    add(
        "single export, sample columns '../../evil' and '' (column mode)",
        "reject",
        custom(single_traversal),
        post=lambda d: [f"file escaped OUT: {p}" for p in d.parent.rglob("evil*")],
    )

    def single_clash(case_dir, ex):
        e = Export(ex / "ACC0001.txt")
        e.header[e.col("ACC0001_r1")] = "S/1"
        e.header[e.col("ACC0001_r2")] = "S_1"
        (ex / "ACC0001.txt").write_text(e.text())
        return [str(ex / "ACC0001.txt")]

    add("single export, sample columns 'S/1' and 'S_1' (same file name)", "reject", custom(single_clash))
    # -- --out problems and the existing output
    add(
        "--out is an existing file",
        "reject",
        custom(lambda d, ex: [str(ex)]),
        out_args=lambda d: ["--out", str(_touch(d / "out.file"))],
        validate=False,
    )
    add(
        "--out under a file (not a directory)",
        "reject",
        custom(lambda d, ex: [str(ex)]),
        out_args=lambda d: ["--out", str(_touch(d / "plainfile") / "sub")],
        validate=False,
    )
    add(
        "--out in /proc (unwritable)",
        "reject",
        custom(lambda d, ex: [str(ex)]),
        out_args=lambda d: ["--out", "/proc/ms2img-fuzz-out"],
        validate=False,
    )
    add("--out = the input folder itself", "reject", custom(lambda d, ex: [str(ex)]),
        out_args=lambda d: ["--out", str(d / "exports")],
        post=lambda d: [] if len(list((d / "exports").glob("*.txt"))) == 6 else
        [f"input exports lost: {_listing(d / 'exports')}"],
        validate=False)  # fmt: skip
    add("--out = the folder that holds the inputs", "reject", custom(lambda d, ex: [str(ex)]),
        out_args=lambda d: ["--out", str(d)],
        post=lambda d: [] if len(list((d / "exports").glob("*.txt"))) == 6 else ["input exports lost"],
        validate=False)  # fmt: skip

    def subset(case_dir, ex):
        for n in ("ACC0005.txt", "ACC0006.txt"):
            (ex / n).unlink()

    add("4 of 6 exports into the full OUT without --replace", "reject", custom(subset),
        post=lambda d: [] if len(list((d / "out").glob("*.parquet"))) == 6 else
        [f"OUT now holds {len(list((d / 'out').glob('*.parquet')))} accessions"], validate=False)  # fmt: skip
    return C


def _touch(p: Path) -> Path:
    p.write_text("not a folder\n")
    return p


def assays_cases(good_csv: Path) -> list[Case]:
    import csv
    import io

    rows = list(csv.reader(good_csv.read_text().splitlines()))
    head, body = rows[0], rows[1:]

    def table(h, b) -> str:
        s = io.StringIO()
        csv.writer(s, lineterminator="\n").writerows([h, *b])
        return s.getvalue()

    def with_cell(r: int, c: int, v: str) -> str:
        b = [list(x) for x in body]
        b[r][c] = v
        return table(head, b)

    cases: list[tuple[str, str, str | bytes | None]] = [
        ("good assays.csv (control)", "accept", table(head, body)),
        ("missing accession column (renamed 'id')", "reject", table(["id", *head[1:]], body)),
        ("no accession header at all (data only)", "reject", table(body[0], body[1:])),
        ("duplicate accession row, same values", "reject", table(head, [*body, body[0]])),
        (
            "duplicate accession row, conflicting values",
            "reject",
            table(head, [*body, [body[0][0], "99", "99", "99", "99"]]),
        ),
        ("text value 'high' in DPPH", "reject", with_cell(0, 1, "high")),
        ("empty cell (NaN) in DPPH", "either", with_cell(0, 1, "")),
        ("'nan' literal in DPPH", "either", with_cell(0, 1, "nan")),
        ("'inf' in DPPH", "reject", with_cell(0, 1, "inf")),
        ("1e308 in DPPH", "reject", with_cell(0, 1, "1e308")),
        ("negative -50 in DPPH", "either", with_cell(0, 1, "-50")),
        ("constant DPPH column (all 50)", "reject", table(head, [[r[0], "50", *r[2:]] for r in body])),
        ("all-NaN DPPH column", "reject", table(head, [[r[0], "", *r[2:]] for r in body])),
        ("unknown accession ACC9999 added", "either", table(head, [*body, ["ACC9999", "1", "2", "3", "4"]])),
        ("accession ACC0006 missing", "either", table(head, body[:-1])),
        ("accessions lowercased (acc0001 ...)", "reject", table(head, [[r[0].lower(), *r[1:]] for r in body])),
        ("accessions with surrounding spaces", "either", table(head, [[f" {r[0]} ", *r[1:]] for r in body])),
        ("no assay columns (accession only)", "reject", table(head[:1], [r[:1] for r in body])),
        ("duplicated column name DPPH", "reject", table([*head, "DPPH"], [[*r, "1"] for r in body])),
        ("semicolon-separated", "reject", table(head, body).replace(",", ";")),
        ("decimal commas, semicolon-separated", "reject", table(head, body).replace(",", ";").replace(".", ",")),
        ("UTF-8 BOM", "accept", "\ufeff" + table(head, body)),
        ("CRLF", "accept", table(head, body).replace("\n", "\r\n")),
        ("ragged row (one cell short)", "reject", table(head, body).replace(body[2][-1] + "\n", "\n", 1)),
        ("empty file", "reject", ""),
        ("header only", "reject", table(head, [])),
        ("binary garbage", "reject", random_bytes(4096, 1)),
        ("UTF-16 encoded", "either", table(head, body).encode("utf-16")),
        ("assays path is a directory", "reject", None),
        ("assays path does not exist", "reject", "MISSING"),
    ]
    out = []
    for name, expect, content in cases:

        def build(case_dir: Path, good: Path, content=content) -> list[str]:
            p = case_dir / "assays.csv"
            if content is None:
                p.mkdir()
            elif content == "MISSING":
                pass
            else:
                p.write_bytes(content if isinstance(content, bytes) else content.encode())
            return [str(p)]

        out.append(Case("assays", name, expect, build))
    return out


# --------------------------------------------------------------------------------------------- (a) + (b) runner
def _case_dir(work: Path, name: str) -> Path:
    """A fresh folder per case, numbered (two names may sanitise alike: "height 'inf'" / "height '-inf'")."""
    root = work / "cases"
    root.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^\w]+", "_", name)[:60]
    d = root / f"{sum(1 for _ in root.iterdir()):03d}_{slug}"
    d.mkdir()
    return d


def run_export_case(case: Case, work: Path, good_exports: Path, good_out: Path, good_assays: Path,
                    timeout: float) -> Outcome:  # fmt: skip
    d = _case_dir(work, case.name)
    out = d / "out"
    shutil.copytree(good_out, out)
    inputs = case.build(d, good_exports)
    out_args = case.out_args(d) if case.out_args else ["--out", str(out)]
    out_path = Path(out_args[1])
    before = tree_hash(out_path) if not str(out_path).startswith("/proc") else "proc"
    out_before = tree_hash(out)
    watch = out_path.parent.is_dir() and not str(out_path).startswith("/proc")
    siblings_before = set(os.listdir(out_path.parent)) if watch else set()
    r = run_cli(["ingest", *inputs, *out_args, "--params", PARAMS], d, timeout)
    cat, reason = classify(r, "ingest")
    notes: list[str] = []
    stage = "ingest"
    if cat != "accepted":
        after = tree_hash(out_path) if not str(out_path).startswith("/proc") else "proc"
        if after != before or tree_hash(out) != out_before:
            notes.append("failed ingest CHANGED the previous OUT folder")
        if watch:
            extra = set(os.listdir(out_path.parent)) - siblings_before
            if extra:
                notes.append(f"leftovers beside OUT after the failure: {sorted(extra)}")
    summary = r.out.strip().splitlines() or [""]
    summary_txt = " / ".join(ln.strip() for ln in summary if ln.strip())[:400]
    warned = "warning" in (r.out + r.err).lower()
    secs = r.secs
    if cat == "accepted" and case.validate:
        v = run_cli(["validate", out, "--assays", good_assays, "--report-dir", d / "reports", "--params", PARAMS],
                    d, timeout)  # fmt: skip
        secs += v.secs
        vcat, vreason = classify(v, "validate")
        warned = warned or "warning" in (v.out + v.err).lower()
        if vcat != "accepted":
            cat, reason, stage = vcat, vreason, "validate"
        else:
            summary_txt += " || " + " / ".join(ln.strip() for ln in v.out.splitlines()[:1])
            stage = "ingest+validate"
    if case.post:
        notes += case.post(d)
    if cat == "accepted" and case.expect == "warn" and not warned:
        notes.append("accepted without the expected warning")
    return Outcome(case, cat, reason, stage, notes, secs, summary_txt + (" [warned]" if warned else ""))


def run_assays_case(case: Case, work: Path, good_out: Path, timeout: float) -> Outcome:
    d = _case_dir(work, "assays " + case.name)
    (path,) = case.build(d, good_out)
    before = tree_hash(good_out)
    r = run_cli(["validate", good_out, "--assays", path, "--report-dir", d / "reports", "--params", PARAMS],
                d, timeout)  # fmt: skip
    cat, reason = classify(r, "validate")
    notes = [] if tree_hash(good_out) == before else ["validate CHANGED the events folder"]
    first = (r.out.strip().splitlines() or [""])[0][:300]
    warned = "warning" in (r.out + r.err).lower()
    return Outcome(case, cat, reason, "validate", notes, r.secs, first + (" [warned]" if warned else ""))


# --------------------------------------------------------------------------------------------- (c) serving
class _DummyFamily:
    """Stands in for a fitted FamilyModel: image family, 75x70 render, constant probability."""

    family = "rf-image"
    card = {"render": {"width": 75, "height": 70, "transform": "sqrt"}}  # noqa: RUF012 - read-only stand-in
    threshold = 0.5
    assay = "DPPH"

    def predict_proba(self, x):
        import numpy as np

        return np.full(len(x), 0.5)


class _DummyPyFuncModel:
    """Duck-typed ``PyFuncModel`` (``metadata.get_input_schema``, ``predict``) around ms2img's FamilyPredictor,
    raising like :class:`ms2img.serving.predictor.FamilyPyfunc`."""

    def __init__(self):
        from types import SimpleNamespace

        from ms2img.serving.predictor import FamilyPredictor, request_signature

        sig = request_signature()
        self.metadata = SimpleNamespace(
            get_input_schema=lambda: sig.inputs, get_params_schema=lambda: None, signature=sig,
            get_output_schema=lambda: sig.outputs, flavors={}, metadata=None,
        )  # fmt: skip
        self.predictor = FamilyPredictor(_DummyFamily(), version="fuzz")

    def predict(self, data, params=None):
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE

        from ms2img.serving.predictor import ModelCallError
        from ms2img.serving.request import RequestError

        try:
            return self.predictor.predict(data)
        except RequestError as exc:
            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None
        except ModelCallError as exc:
            raise MlflowException(str(exc), error_code=INTERNAL_ERROR) from None


class _LogCatcher(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


async def asgi_call(app, method: str, path: str, headers: list[tuple[str, str]], chunks: list[bytes],
                    disconnect_after: int | None = None, timeout: float = 60.0):  # fmt: skip
    """(status, body, error) of one raw ASGI request; ``chunks`` are sent as separate body messages."""
    queue = list(chunks) or [b""]
    sent = {"n": 0}

    async def receive():
        if disconnect_after is not None and sent["n"] >= disconnect_after:
            return {"type": "http.disconnect"}
        if sent["n"] < len(queue):
            i = sent["n"]
            sent["n"] += 1
            return {"type": "http.request", "body": queue[i], "more_body": i < len(queue) - 1}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    resp = {"status": None, "body": b""}

    async def send(msg):
        if msg["type"] == "http.response.start":
            resp["status"] = msg["status"]
        elif msg["type"] == "http.response.body":
            resp["body"] += msg.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080), "state": {},
    }  # fmt: skip
    try:
        await asyncio.wait_for(app(scope, receive, send), timeout)
    except TimeoutError:
        return resp["status"], resp["body"], "timeout"
    except Exception as exc:  # noqa: BLE001 - an exception out of the app = the server's 500 + traceback
        return resp["status"], resp["body"], f"{exc.__class__.__name__}: {exc}"[:300]
    return resp["status"], resp["body"], None


def serving_requests(good_rows: list[dict]) -> list[tuple[str, str, dict]]:
    """(name, expect, request spec): spec keys method, path, ctype, body (bytes) or chunks, clen, disconnect."""
    R = lambda rows: json.dumps({"dataframe_records": rows}).encode()  # noqa: E731
    row = good_rows[0]

    def mod(**kw):
        return [{**r, **kw} for r in good_rows]

    deep = b"[" * 100_000 + b"]" * 100_000
    deep_dict = ('{"a":' * 40 + "1" + "}" * 40).encode()
    big_msms = " ".join(f"{60 + k * 1e-3:.4f}:{k % 97 + 1}" for k in range(300_000))
    return [
        ("good request (control)", "accept", {"body": R(good_rows)}),
        ("no Content-Type", "reject", {"ctype": None, "body": R(good_rows)}),
        ("Content-Type text/plain", "reject", {"ctype": "text/plain", "body": R(good_rows)}),
        (
            "application/json; charset=latin-1 (forwarded to MLflow)",
            "either",
            {"ctype": "application/json; charset=latin-1", "body": R(good_rows)},
        ),
        (
            "application/json; foo=bar (forwarded)",
            "either",
            {"ctype": "application/json; foo=bar", "body": R(good_rows)},
        ),
        ("Content-Length 'abc'", "reject", {"clen": "abc", "body": R(good_rows)}),
        ("Content-Length -1", "reject", {"clen": "-1", "body": R(good_rows)}),
        ("Content-Length 10 GB", "reject", {"clen": str(10 * 2**30), "body": R(good_rows)}),
        (
            "streamed 9 MB without Content-Length (limit 8 MB)",
            "reject",
            {"clen": None, "chunks": [b"[" + b" " * (1 << 20)] * 9},
        ),
        ("client disconnects mid-body", "reject", {"clen": None, "chunks": [b"{", b"}"], "disconnect": 1}),
        ("empty body", "reject", {"body": b""}),
        ("whitespace body", "reject", {"body": b"  \n "}),
        ("invalid JSON", "reject", {"body": b'{"dataframe_records": [1,'}),
        ("invalid UTF-8 in JSON", "reject", {"body": b'{"dataframe_records": ["\xff\xfe"]}'}),
        ("UTF-8 BOM before JSON", "either", {"body": b"\xef\xbb\xbf" + R(good_rows)}),
        ("100k-deep nested list", "reject", {"body": deep}),
        ("40-deep nested object", "reject", {"body": deep_dict}),
        ("top-level JSON array", "reject", {"body": json.dumps(good_rows).encode()}),
        ("top-level JSON string", "reject", {"body": b'"hello"'}),
        (
            "both dataframe_split and dataframe_records",
            "reject",
            {
                "body": json.dumps(
                    {"dataframe_records": good_rows, "dataframe_split": {"columns": [], "data": []}}
                ).encode()
            },
        ),
        ("dataframe_records is an object", "reject", {"body": json.dumps({"dataframe_records": row}).encode()}),
        (
            "dataframe_records row is a list",
            "reject",
            {"body": json.dumps({"dataframe_records": [list(row.values())]}).encode()},
        ),
        ("dataframe_records = []", "reject", {"body": R([])}),
        ("dataframe_records = [{}]", "reject", {"body": R([{}])}),
        ("row missing 'msms'", "reject", {"body": R([*good_rows, {k: v for k, v in row.items() if k != "msms"}])}),
        ("extra column 'evil'", "reject", {"body": R(mod(evil=1))}),
        ("precursor_mz 'abc'", "reject", {"body": R(mod(precursor_mz="abc"))}),
        ("precursor_mz NaN (JSON NaN literal)", "reject", {"body": R(mod(precursor_mz=math.nan))}),
        ("precursor_mz Infinity", "reject", {"body": R(mod(precursor_mz=math.inf))}),
        ("precursor_mz 1e308", "reject", {"body": R(mod(precursor_mz=1e308))}),
        (
            "precursor_mz 10**400 (huge integer)",
            "reject",
            {"body": json.dumps({"dataframe_records": mod(precursor_mz=10**400)}).encode()},
        ),
        ("precursor_mz null", "reject", {"body": R(mod(precursor_mz=None))}),
        ("precursor_mz [1,2] (nested)", "reject", {"body": R(mod(precursor_mz=[1, 2]))}),
        ("precursor_mz {} (object)", "reject", {"body": R(mod(precursor_mz={"a": 1}))}),
        ("precursor_intensity 1e308", "reject", {"body": R(mod(precursor_intensity=1e308))}),
        ("precursor_intensity negative", "reject", {"body": R(mod(precursor_intensity=-1.0))}),
        ("rt_min -5", "either", {"body": R(mod(rt_min=-5.0))}),
        ("msms 'abc'", "reject", {"body": R(mod(msms="abc"))}),
        ("msms '' on every row", "reject", {"body": R(mod(msms=""))}),
        ("msms null on every row", "reject", {"body": R(mod(msms=None))}),
        ("msms a number", "reject", {"body": R(mod(msms=123.4))}),
        ("msms fragment intensity 1e308", "reject", {"body": R(mod(msms="100.0:1e308 120.0:5"))}),
        ("msms fragment intensity nan", "reject", {"body": R(mod(msms="100.0:nan 120.0:5"))}),
        (  # requests carry no charge: fragments above a 2+ precursor's m/z are physics; validate owns that check
            "msms fragments above precursor only",
            "either",
            {"body": R([{**r, "msms": f"{r['precursor_mz'] + 20:.3f}:100"} for r in good_rows])},
        ),
        ("msms 300k fragments in one row", "either", {"body": R([*good_rows, {**row, "msms": big_msms}])}),
        ("accession null", "reject", {"body": R(mod(accession=None))}),
        ("accession a number", "either", {"body": R(mod(accession=7))}),
        ("accession 1 MB string", "either", {"body": R(mod(accession="A" * (1 << 20)))}),
        ("accession NaN", "reject", {"body": R(mod(accession=math.nan))}),
        ("rows above max_rows (1001 > 1000)", "reject", {"body": R([row] * 1001)}),
        (
            "dataframe_split columns not a list",
            "reject",
            {"body": json.dumps({"dataframe_split": {"columns": "x", "data": []}}).encode()},
        ),
        (
            "dataframe_split rows of wrong length",
            "reject",
            {"body": json.dumps({"dataframe_split": {"columns": list(row), "data": [[1, 2]]}}).encode()},
        ),
        (
            "dataframe_split duplicated columns",
            "reject",
            {
                "body": json.dumps(
                    {"dataframe_split": {"columns": [*row, "msms"], "data": [[*row.values(), "1:1"]]}}
                ).encode()
            },
        ),
        ("'instances' list of rows", "either", {"body": json.dumps({"instances": good_rows}).encode()}),
        (
            "'inputs' dict of columns",
            "either",
            {"body": json.dumps({"inputs": {k: [r[k] for r in good_rows] for k in row}}).encode()},
        ),
        (
            "'params' with junk",
            "either",
            {"body": json.dumps({"dataframe_records": good_rows, "params": {"x": [1]}}).encode()},
        ),
        (
            "duplicate JSON keys in a row",
            "either",
            {"body": R([row]).replace(b'"msms":', b'"msms": "1:1", "msms":', 1)},
        ),
        ("JSON body with Content-Type text/csv", "reject", {"ctype": "text/csv", "body": R(good_rows)}),
        (
            "valid CSV body (text/csv, forwarded)",
            "either",
            {
                "ctype": "text/csv",
                "body": (
                    "accession,precursor_mz,precursor_intensity,rt_min,msms\n"
                    + "".join(
                        f"{r['accession']},{r['precursor_mz']},{r['precursor_intensity']},{r['rt_min']},{r['msms']}\n"
                        for r in good_rows
                    )
                ).encode(),
            },
        ),
        ("garbage CSV (text/csv)", "reject", {"ctype": "text/csv", "body": random_bytes(2000, 2)}),
        ("parquet content-type with garbage", "reject", {"ctype": "application/x-parquet", "body": b"PAR1junk"}),
        ("GET /invocations", "reject", {"method": "GET", "body": b""}),
        ("POST /ping", "either", {"path": "/ping", "body": b"{}"}),
        ("unknown path /admin", "reject", {"path": "/admin", "body": b""}),
    ]


def run_serving(work: Path, good_out: Path, timeout: float) -> tuple[list[Outcome], list[str]]:
    os.environ.setdefault("MS2IMG_RENDER_KERNEL", "numpy")  # no numba compile for a fuzz run
    t0 = time.perf_counter()
    from mlflow.pyfunc import scoring_server

    from ms2img.io.schema import read_events
    from ms2img.serving.app import GuardedApp
    from ms2img.serving.request import events_to_request

    model = _DummyPyFuncModel()
    app = GuardedApp(scoring_server.init(model), max_bytes=8 * 2**20, max_rows=1000, model=model)
    ev = read_events(good_out / "ACC0001.parquet")
    req = events_to_request(ev)
    req = req[req["msms"].astype(str).str.len() > 0].head(40)
    good_rows = json.loads(req.to_json(orient="records"))
    setup = [
        (
            f"serving app built in {time.perf_counter() - t0:.1f} s (MLflow scoring app + ms2img FamilyPredictor, "
            f"dummy estimator; max_bytes 8 MiB, max_rows 1000; {len(good_rows)}-row good request)"
        )
    ]
    catcher = _LogCatcher()
    logging.getLogger().addHandler(catcher)
    logging.getLogger().setLevel(logging.INFO)
    outcomes = []
    good_after_fail = 0
    good_body = json.dumps({"dataframe_records": good_rows}).encode()
    loop = asyncio.new_event_loop()
    for name, expect, spec in serving_requests(good_rows):
        body = spec.get("body", b"")
        chunks = spec.get("chunks") or [body]
        headers = []
        ctype = spec.get("ctype", "application/json")
        if ctype is not None:
            headers.append(("content-type", ctype))
        clen = spec.get("clen", str(sum(map(len, chunks))))
        if clen is not None:
            headers.append(("content-length", clen))
        n_before = len(catcher.records)
        t = time.perf_counter()
        status, resp, err = loop.run_until_complete(
            asgi_call(
                app,
                spec.get("method", "POST"),
                spec.get("path", "/invocations"),
                headers,
                chunks,
                spec.get("disconnect"),
                timeout,
            )
        )
        secs = time.perf_counter() - t
        logged_tb = [r for r in catcher.records[n_before:] if r.exc_info or "Traceback" in r.getMessage()]
        text = resp.decode("utf-8", "replace")
        notes = []
        if err == "timeout":
            cat, reason = "crash", f"no answer within {timeout:.0f} s"
        elif err is not None:
            cat, reason = "traceback", f"exception out of the app: {err}"
        elif status is None:
            cat, reason = "crash", "no response started"
        elif status >= 500 or "Traceback" in text:
            cat, reason = "traceback", f"HTTP {status}: {text[:200]}"
        elif 200 <= status < 300:
            cat, reason = "accepted", f"HTTP {status}: {text[:160]}"
        elif spec.get("path", "/invocations") != "/invocations" or spec.get("method", "POST") != "POST":
            cat, reason = "clean error", f"HTTP {status} (routing): {text[:120]}"
        else:
            try:
                obj = json.loads(resp)
                ok = isinstance(obj, dict) and set(obj) == {"error_code", "message"}
            except ValueError:
                ok = False
            echoed = "Failed to predict data" in text or (len(good_rows) and good_rows[0]["msms"][:40] in text)
            if ok and not echoed:
                cat, reason = "clean error", f"HTTP {status}: {obj['message'][:200]}"
            else:
                cat, reason = "unclear error", f"HTTP {status} body not {{error_code, message}}" + \
                    (" (echoes the request)" if echoed else "") + f": {text[:200]}"  # fmt: skip
        if logged_tb:
            notes.append(f"traceback in the server log: {logged_tb[0].getMessage()[:160]}")
            if cat != "crash":
                cat = "traceback"
        if secs > 5:
            notes.append(f"took {secs:.1f} s")
        # the server still answers a good request after each one
        st2, _, err2 = loop.run_until_complete(
            asgi_call(app, "POST", "/invocations", [("content-type", "application/json")], [good_body], None, timeout)
        )
        if st2 == 200 and err2 is None:
            good_after_fail += 1
        else:
            notes.append(f"next good request answered {st2} {err2 or ''}")
        case = Case("serving", name, expect, lambda d, g: [])
        outcomes.append(Outcome(case, cat, reason, "serve", notes, secs, ""))
    loop.close()
    logging.getLogger().removeHandler(catcher)
    setup.append(f"a good request answered 200 after {good_after_fail} of {len(outcomes)} requests")
    return outcomes, setup


# --------------------------------------------------------------------------------------------- report
def doubtful(o: Outcome) -> str | None:
    e = o.case.expect
    if o.category == "accepted" and e == "reject":
        return "accepted, should have been rejected"
    if o.category == "accepted" and any("without the expected warning" in n for n in o.notes):
        return "accepted silently, a warning was expected"
    if o.category in ("clean error", "unclear error") and e == "accept":
        return "valid input rejected"
    return None


def report(outcomes: list[Outcome], extra: list[str], secs: float) -> None:
    groups = ["exports", "assays", "serving"]
    print()
    print(f"{'group':<9} {'tried':>5} " + " ".join(f"{c:>13}" for c in CATEGORIES))
    tot = {c: 0 for c in CATEGORIES}
    for g in groups:
        sel = [o for o in outcomes if o.case.group == g]
        if not sel:
            continue
        counts = {c: sum(o.category == c for o in sel) for c in CATEGORIES}
        for c in CATEGORIES:
            tot[c] += counts[c]
        print(f"{g:<9} {len(sel):>5} " + " ".join(f"{counts[c]:>13}" for c in CATEGORIES))
    print(f"{'total':<9} {len(outcomes):>5} " + " ".join(f"{tot[c]:>13}" for c in CATEGORIES))
    acc = [o for o in outcomes if o.category == "accepted"]
    bad_acc = [o for o in acc if doubtful(o)]
    print(f"accepted: {len(acc)}, of which doubtful: {len(bad_acc)};  "
          f"valid inputs rejected: {sum(1 for o in outcomes if doubtful(o) == 'valid input rejected')}")  # fmt: skip
    for ln in extra:
        print("  " + ln)

    def show(title, items, fmt):
        print(f"\n== {title} ({len(items)})")
        for o in items:
            print(fmt(o))

    line = lambda o: (  # noqa: E731
        f"  [{o.case.group}/{o.stage}] {o.case.name}: {o.reason}"
        + (f"  (notes: {'; '.join(o.notes)})" if o.notes else "")
    )
    show("tracebacks", [o for o in outcomes if o.category == "traceback"], line)
    show("crashes", [o for o in outcomes if o.category == "crash"], line)
    show("doubtful accepts / wrong rejects", [o for o in outcomes if doubtful(o)],
         lambda o: f"  [{o.case.group}/{o.stage}] {o.case.name}: {doubtful(o)}; {o.summary or o.reason}"[:600]
         + (f"  (notes: {'; '.join(o.notes)})" if o.notes else ""))  # fmt: skip
    show("unclear errors (not one line naming a file)", [o for o in outcomes if o.category == "unclear error"], line)
    show(
        "other findings (OUT changed, leftovers, slow, inputs lost)",
        [o for o in outcomes if o.notes and not doubtful(o) and o.category not in ("traceback", "crash")],
        line,
    )
    show(
        "accepted as expected (either/warn/accept)",
        [o for o in acc if not doubtful(o)],
        lambda o: f"  [{o.case.group}] {o.case.name} ({o.case.expect}): {(o.summary or o.reason)[:240]}",
    )
    show(
        "clean errors",
        [o for o in outcomes if o.category == "clean error"],
        lambda o: f"  [{o.case.group}/{o.stage}] {o.case.name}: {o.reason[:220]}",
    )
    print(f"\nfuzz run: {len(outcomes)} inputs in {secs:.0f} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temp folder, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--only", default="exports,assays,serving", help="comma-separated groups to run")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per command / request")
    args = ap.parse_args(argv)
    groups = set(args.only.split(","))
    t0 = time.perf_counter()
    work = args.work or Path(tempfile.mkdtemp(prefix="ms2img-fuzz-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        cohort = work / "cohort"
        r = run_cli(["synth", "--accessions", 6, "--seed", 3, "--out", cohort, "--force"], work, 300)
        assert r.rc == 0, r.err
        good_exports, good_assays = cohort / "exports", cohort / "assays.csv"
        good_out = work / "good_out"
        r = run_cli(["ingest", good_exports, "--out", good_out, "--params", PARAMS], work, 300)
        assert r.rc == 0, r.err
        extra = [f"baseline: synth 6 accessions (seed 3) + ingest: {r.out.strip().splitlines()[1].strip()}"]
        outcomes: list[Outcome] = []
        if "exports" in groups:
            cases = exports_cases()
            for i, c in enumerate(cases, 1):
                o = run_export_case(c, work, good_exports, good_out, good_assays, args.timeout)
                outcomes.append(o)
                print(f"[{i:3d}/{len(cases)}] exports {o.category:<13} {o.secs:5.1f}s  {c.name}", flush=True)
        if "assays" in groups:
            cases = assays_cases(good_assays)
            for i, c in enumerate(cases, 1):
                o = run_assays_case(c, work, good_out, args.timeout)
                outcomes.append(o)
                print(f"[{i:3d}/{len(cases)}] assays  {o.category:<13} {o.secs:5.1f}s  {c.name}", flush=True)
        if "serving" in groups:
            try:
                souts, setup = run_serving(work, good_out, min(args.timeout, 60.0))
                outcomes += souts
                extra += setup
            except Exception as exc:  # noqa: BLE001 - (c) is optional: say why it did not run
                extra.append(f"serving skipped: could not build the app ({exc.__class__.__name__}: {exc})")
        report(outcomes, extra, time.perf_counter() - t0)
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def _listing(folder: Path) -> str:
    return str(sorted(p.name for p in folder.iterdir())) if folder.exists() else "folder gone"


if __name__ == "__main__":
    sys.exit(main())
