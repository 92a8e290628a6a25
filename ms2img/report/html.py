"""Small HTML building blocks for the report: escaped text, tables, embedded PNGs and "not run" notes."""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

CSS = """
*,*::before,*::after{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2733;background:#f6f7f9;
line-height:1.45;overflow-wrap:anywhere}
header{background:#14324f;color:#fff;padding:1.2em 1.5em}
header h1{margin:0 0 .3em 0;font-size:1.6em}
header .meta{font-size:.9em;opacity:.9}
header code{color:#fff}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:.6em 1.5em;position:sticky;top:0;z-index:1;font-size:.9em}
nav a{margin-right:1.1em;color:#14324f;text-decoration:none;white-space:nowrap;display:inline-block}
nav a:hover{text-decoration:underline}
main{padding:1em 1.5em 3em 1.5em;max-width:1500px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1em 1.2em;margin:1.2em 0;min-width:0}
h2{margin-top:.2em;color:#14324f;border-bottom:2px solid #e4e8ec;padding-bottom:.2em}
h3{color:#24496e;margin-bottom:.4em}
.tablewrap{max-width:100%;overflow-x:auto;margin:.6em 0 1em 0}
table{border-collapse:collapse;font-size:.86em;overflow-wrap:normal}
th,td{border:1px solid #d5dae0;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.winner td{background:#eaf6ec}
.missing{background:#fff7e0;border-left:4px solid #e0a800;padding:.5em .9em;margin:.6em 0;color:#5c4a00;font-size:.92em}
.note{color:#4a5867;font-size:.9em}
.nowrap{white-space:nowrap}
.counts{color:#4a5867;font-size:.88em;border-left:3px solid #c9d3dd;padding-left:.6em}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.figs{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
figure{margin:0 0 14px 0;background:#fff;border:1px solid #e4e8ec;border-radius:4px;padding:6px;max-width:100%;
min-width:0;flex:0 1 auto}
.figs figure{margin:0}
figure .scroll{overflow-x:auto;max-width:100%}
figure img{display:block;max-width:none;height:auto}
figcaption{font-size:.82em;color:#4a5867;margin-top:4px}
pre{background:#f3f5f7;border:1px solid #dde1e6;padding:.8em;overflow:auto;font-size:.82em;max-height:40em;
max-width:100%}
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
        text = f"<span class=nowrap>{text} ± {num(stat.get('sd'), digits)}</span>"
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
    return f"<div class=tablewrap><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"


def records_table(records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None, limit: int = 50) -> str:
    """A table of dict records (columns from the first records unless given), numbers formatted."""
    records = list(records)[:limit]
    if not records:
        return missing("empty table")
    cols = list(columns or dict.fromkeys(k for r in records for k in r))
    rows = [[num(r.get(c)) if isinstance(r.get(c), int | float) else esc(r.get(c)) for c in cols] for r in records]
    return table(cols, rows, raw=True)


CSS_DPI = 96  # CSS pixels per inch: a figure drawn at W inches is shown W x 96 px wide, its fonts at their size


def compress(data: bytes) -> bytes:
    """A figure re-encoded as a 256-colour palette PNG (about a third of matplotlib's RGBA PNG, no visible loss on
    plots and heat maps); the original when that is not smaller or the bytes are not an image."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        dpi = im.info.get("dpi")
        rgb = im.convert("RGBA")
        flat = Image.new("RGB", rgb.size, "white")
        flat.paste(rgb, mask=rgb.getchannel("A"))
        pal = flat.quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)  # fast, smallest
        buf = io.BytesIO()
        pal.save(buf, format="PNG", optimize=True, **({"dpi": dpi} if dpi else {}))
    except Exception:  # noqa: BLE001 - an unreadable image is embedded as it came
        return data
    out = buf.getvalue()
    return out if len(out) < len(data) else data


def drawn_size(data: bytes) -> tuple[int, int] | None:
    """The size the figure was drawn at, in CSS pixels (pixels x 96 / its DPI); None for unreadable bytes."""
    from PIL import Image

    try:
        im = Image.open(io.BytesIO(data))
        dpi = float((im.info.get("dpi") or (CSS_DPI, CSS_DPI))[0]) or CSS_DPI
        return round(im.width * CSS_DPI / dpi), round(im.height * CSS_DPI / dpi)
    except Exception:  # noqa: BLE001
        return None


def png(data: bytes, caption: str = "", alt: str = "") -> str:
    """A figure embedded as base64 (the report is one self-contained file), shown at the size it was drawn: its
    card is as wide as the figure, and a figure wider than the page scrolls inside its card."""
    b64 = base64.b64encode(data).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    size = drawn_size(data)
    box, dims = "", ""
    if size:
        box = f' style="width:{size[0] + 14}px"'  # 2 x (6 px padding + 1 px border)
        dims = f' width="{size[0]}" height="{size[1]}" style="width:{size[0]}px"'
    return (
        f'<figure{box}><div class="scroll"><img alt="{esc(alt or caption)}"{dims} '
        f'src="data:image/png;base64,{b64}"></div>{cap}</figure>'
    )


def link(target: Path | None, base: Path | None, text: str) -> str:
    """A relative link from the report's folder ``base`` to a file beside the stage outputs, or the bare text when
    either is unknown or the file is absent (the report never links to what is not there)."""
    if target is None or base is None or not Path(target).is_file():
        return esc(text)
    rel = Path(os.path.relpath(Path(target).resolve(), Path(base).resolve())).as_posix()
    return f"<a href='{esc(rel)}'>{esc(text)}</a>"


def missing(what: str) -> str:
    """The "not run" note shown in place of a piece that is absent."""
    return f'<div class="missing"><b>Not run:</b> {what}</div>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{body}</section>'
