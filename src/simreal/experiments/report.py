"""A self-contained ``report.html`` from an experiment's ``results.json``.

``results.json`` is the experiment's whole record (config, environment, timings, tables, figure file
names, notes); the report is a view of it with the figures embedded as data URIs, so the one HTML file
can be mailed or archived and still shows everything. ``simreal report DIR`` rebuilds it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from simreal.atomic import write_text
from simreal.errors import SimrealError

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.note{background:#fff8e0;border-left:4px solid #e0b000;padding:.5em 1em;margin:.6em 0}
.fail{color:#b00;font-weight:bold}.pass{color:#080;font-weight:bold}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;font-size:.8em}
"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, bool):
        return '<span class="pass">yes</span>' if value else '<span class="fail">no</span>'
    return html.escape(str(value))


def _table(table: dict[str, Any]) -> str:
    cols = table["columns"]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(row.get(c, ''))}</td>" for c in cols) + "</tr>" for row in table["rows"])
    note = f'<p>{html.escape(table["note"])}</p>' if table.get("note") else ""
    return f'<h3>{html.escape(table["title"])}</h3><table><tr>{head}</tr>{body}</table>{note}'


def _figure(out_dir: Path, fig: dict[str, Any]) -> str:
    path = out_dir / fig["path"]
    if not path.is_file():
        return f'<p class="fail">figure missing: {html.escape(fig["path"])}</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = html.escape(fig.get("title", fig["path"]))
    return f'<figure><img src="data:image/png;base64,{data}" alt="{caption}"><figcaption>{caption}</figcaption></figure>'


def render_report(results: dict[str, Any], out_dir: Path) -> str:
    """The HTML text of a report for ``results`` (figure paths relative to ``out_dir``)."""
    title = f'simreal experiment: {results.get("name", "?")} ({results.get("scale", "?")})'
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if results.get("summary"):
        parts.append(f'<p>{html.escape(results["summary"])}</p>')
    for note in results.get("notes", []):
        parts.append(f'<div class="note">{html.escape(note)}</div>')
    if results.get("targets"):
        parts.append("<h2>Targets</h2>")
        parts.append(_table({"title": "", "columns": ["target", "value", "threshold", "met"], "rows": results["targets"]}))
    if results.get("tables"):
        parts.append("<h2>Results</h2>")
        parts.extend(_table(t) for t in results["tables"])
    if results.get("figures"):
        parts.append("<h2>Figures</h2>")
        parts.extend(_figure(out_dir, f) for f in results["figures"])
    if results.get("timings"):
        parts.append("<h2>Timings</h2>")
        rows = [{"stage": k, "seconds": v} for k, v in results["timings"].items()]
        parts.append(_table({"title": "", "columns": ["stage", "seconds"], "rows": rows}))
    for key in ("config", "environment"):
        if key in results:
            parts.append(f"<h2>{key.title()}</h2><pre>{html.escape(json.dumps(results[key], indent=2, sort_keys=True))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: str | Path) -> Path:
    """(Re)build ``out_dir/report.html`` from ``out_dir/results.json``."""
    out_dir = Path(out_dir)
    results_path = out_dir / "results.json"
    if not results_path.is_file():
        raise SimrealError("no results.json: not an experiment folder", out_dir)
    try:
        results = json.loads(results_path.read_text())
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
        raise SimrealError(f"unreadable results ({exc.__class__.__name__}: {exc})", results_path) from None
    page = render_report(results, out_dir)
    target = out_dir / "report.html"
    write_text(target, page)
    return target
