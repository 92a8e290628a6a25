"""Small HTML building blocks for the report: escaped text, tables, embedded PNGs and "not run" notes."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2733;background:#f6f7f9;
line-height:1.45}
header{background:#14324f;color:#fff;padding:1.4em 2em}
header h1{margin:0 0 .3em 0;font-size:1.6em}
header .meta{font-size:.9em;opacity:.9}
header code{color:#fff}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:.6em 2em;position:sticky;top:0;z-index:1;font-size:.9em}
nav a{margin-right:1.1em;color:#14324f;text-decoration:none;white-space:nowrap}
nav a:hover{text-decoration:underline}
main{padding:1em 2em 3em 2em;max-width:1500px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1em 1.5em;margin:1.2em 0}
h2{margin-top:.2em;color:#14324f;border-bottom:2px solid #e4e8ec;padding-bottom:.2em}
h3{color:#24496e;margin-bottom:.4em}
table{border-collapse:collapse;margin:.6em 0 1em 0;font-size:.86em}
th,td{border:1px solid #d5dae0;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.winner td{background:#eaf6ec}
.missing{background:#fff7e0;border-left:4px solid #e0a800;padding:.5em .9em;margin:.6em 0;color:#5c4a00;font-size:.92em}
.note{color:#4a5867;font-size:.9em}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0;background:#fff;border:1px solid #e4e8ec;border-radius:4px;padding:6px;max-width:100%}
figure img{display:block;width:100%;height:auto}
figure.w1{flex:1 1 300px;max-width:470px}figure.w2{flex:1.6 1 460px;max-width:720px}
figure.w3{flex:1 1 100%;max-width:1150px}
figcaption{font-size:.82em;color:#4a5867;margin-top:4px}
pre{background:#f3f5f7;border:1px solid #dde1e6;padding:.8em;overflow:auto;font-size:.82em;max-height:40em}
details summary{cursor:pointer;color:#14324f;font-weight:600}
.badge{display:inline-block;background:#14324f;color:#fff;border-radius:3px;padding:0 .45em;font-size:.8em}
"""


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def num(value: Any, digits: int = 3) -> str:
    """A number for a table cell (integers as they are); '–' for missing/NaN."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return esc(value) if value not in (None, "") else "–"
    if not math.isfinite(f):
        return "–"
    return f"{f:.{digits}f}"


def pvalue(value: Any) -> str:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(f):
        return "–"
    return "< 0.001" if f < 0.001 else f"{f:.3f}"


def stat_cell(stat: Mapping[str, Any] | None, digits: int = 3) -> str:
    """``mean ± sd [ci_low, ci_high]`` from a contract ``{mean, sd, ci_low, ci_high}`` entry."""
    if not isinstance(stat, Mapping):
        return "–"
    text = num(stat.get("mean"), digits)
    if text == "–":
        return text
    if num(stat.get("sd"), digits) != "–":
        text += f" ± {num(stat.get('sd'), digits)}"
    lo, hi = num(stat.get("ci_low"), digits), num(stat.get("ci_high"), digits)
    if lo != "–" and hi != "–":
        text += f" <span class='note'>[{lo}, {hi}]</span>"
    return text


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    raw: bool = False,
    row_classes: Sequence[str] | None = None,
    numeric: Sequence[int] = (),
) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are trusted HTML built here)."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = []
        for j, cell in enumerate(row):
            content = str(cell) if raw else esc(cell)
            cells.append(f'<td class="num">{content}</td>' if j in numeric else f"<td>{content}</td>")
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def records_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, limit: int = 50) -> str:
    """A table of dict records (columns from the first records unless given), numbers formatted."""
    records = list(records)[:limit]
    if not records:
        return missing("empty table")
    cols = list(columns or dict.fromkeys(k for r in records for k in r))
    rows = [[num(r.get(c)) if isinstance(r.get(c), int | float) else esc(r.get(c)) for c in cols] for r in records]
    return table(cols, rows, raw=True)


def png(data: bytes, caption: str = "", alt: str = "", width: int = 2) -> str:
    """A figure with the PNG embedded as base64 (the report is one self-contained file)."""
    b64 = base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="w{width}"><img alt="{esc(alt or caption)}" src="data:image/png;base64,{b64}">{cap}</figure>'


def missing(what: str) -> str:
    """The "not run" note shown in place of a piece that is absent."""
    return f'<div class="missing"><b>Not run:</b> {what}</div>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'
