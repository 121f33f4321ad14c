"""Render an `EstimateTable` as one self-contained HTML file (plots inline as PNG data URIs).

Every string that came from the user (names, column values, warnings) is
HTML-escaped; nothing is fetched from the network when the file is opened.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from ..core.estimate import EstimateTable, to_jsonable
from ..io import write_text_atomic

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1000px;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.naive td{color:#777}
.warn{background:#fff6e0;border-left:4px solid #e0a800;padding:.5em 1em}
code{background:#f4f4f4;padding:0 .2em}
details{margin:.3em 0}summary{cursor:pointer}
img{max-width:100%;height:auto}
table{display:block;overflow-x:auto;max-width:100%}
table.header th{font-weight:600;white-space:nowrap}
code.hash{word-break:break-all}
p.how{color:#444;font-size:.93em}
"""


@dataclass
class ReportSection:
    """An extra section: a heading with any of text, a figure, a table (DataFrame) or trusted HTML."""

    title: str
    text: str | None = None
    figure: Any = None  # a matplotlib Figure
    frame: Any = None  # a pandas DataFrame
    html: str | None = None  # trusted markup built by llmcause itself (must escape user strings)
    notes: Sequence[str] = field(default_factory=tuple)


def literal_text(fig) -> None:
    """Draw every text of ``fig`` as written: no mathtext, no TeX (labels hold user names such as "$5/M")."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        text.set_parse_math(False)
        text.set_usetex(False)


def figure_to_data_uri(fig) -> str:
    """A matplotlib figure as a PNG data URI (no metadata, so the bytes are reproducible).

    Text is drawn literally (see `literal_text`), also for tick labels made while drawing.
    """
    import matplotlib

    literal_text(fig)
    buf = io.BytesIO()
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        fig.savefig(buf, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def render_report(table: EstimateTable, *, title: str, command: str | None = None,
                  sections: Iterable[ReportSection] = (), truth: Mapping[str, float] | None = None,
                  intro: str | None = None, notes: Sequence[str] = (), inputs: Sequence[str] = (),
                  created: str | None = None) -> str:
    """The report as an HTML string.

    The header names the command, each input file (name, size, SHA-256),
    the llmcause version and ``created`` (left out when None, so that the
    same call gives the same bytes). ``notes`` are the plain-English lines
    the terminal prints under its table (overlap, balance, sensitivity).
    """
    from .. import __version__

    e = html.escape
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    parts.append(_header(command, inputs, __version__, created))
    if intro:
        parts.append(f"<p>{e(intro)}</p>")
    if table.warnings:
        items = "".join(f"<li>{e(w)}</li>" for w in table.warnings)
        parts.append(f"<h2>Warnings</h2><p class='how'>{_HOW_WARNINGS}</p><div class='warn'><ul>{items}</ul></div>")
    if len(table):
        ax = table.plot(truth=truth)
        parts.append("<h2>Estimates</h2>")
        parts.append(f"<p class='how'>{_HOW_ESTIMATES}{_HOW_TRUTH if truth else ''}</p>")
        parts.append(f"<img alt='forest plot of the estimates' src='{figure_to_data_uri(ax.figure)}'>")
        parts.append(_estimates_table(table, truth))
        if notes:
            parts.append("<ul class='notes'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
        if any(est.diagnostics for est in table):
            parts.append("<h2>Diagnostics</h2>")
            parts.append(f"<p class='how'>{_HOW_DIAGNOSTICS}</p>")
        for est in table:
            if est.diagnostics:
                label = f"{est.name} ({est.method})"
                parts.append(f"<details><summary>{e(label)}</summary>{_mapping_table(to_jsonable(est.diagnostics))}"
                             "</details>")
    for sec in sections:
        parts.append(f"<h2>{e(sec.title)}</h2>")
        if sec.text:
            parts.append(f"<p>{e(sec.text)}</p>")
        if sec.figure is not None:
            parts.append(f"<img alt='{e(sec.title)}' src='{figure_to_data_uri(sec.figure)}'>")
        if sec.frame is not None:
            parts.append(_frame_table(sec.frame))
        if sec.html:
            parts.append(sec.html)
        for note in sec.notes:
            parts.append(f"<p>{e(note)}</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


_HOW_ESTIMATES = (
    "How to read this: each row is one estimate with its standard error (SE) and confidence interval (CI); "
    "the interval is the range of values the data cannot rule out at the stated level. Grey rows are the "
    "naive answer, the one a plain average or regression gives without the causal adjustment: where naive "
    "and causal rows disagree, the naive answer is biased by what the adjustment removed. In the plot each "
    "row holds one name, its causal and naive answers side by side. ")
_HOW_TRUTH = ("The data come from a world whose true values are known: the truth column (red cross in the plot) "
              "is that value and covered says whether the interval contains it.")
_HOW_DIAGNOSTICS = (
    "How to read this: the facts each estimator recorded about its fit, such as the range of propensities "
    "(overlap), effective sample sizes and the balance of covariates after weighting. Open a row to see them; "
    "they are the same numbers the JSON output holds.")
_HOW_WARNINGS = "How to read this: conditions under which an estimate below may mislead; read them first."


def _header(command: str | None, inputs: Sequence[str], version: str, created: str | None) -> str:
    e = html.escape
    rows = []
    if command:
        rows.append(f"<tr><th>command</th><td><code>{e(command)}</code></td></tr>")
    for path in inputs:
        name, size, digest = _file_facts(path)
        rows.append(f"<tr><th>input</th><td><code>{e(name)}</code>, {size:,} bytes, SHA-256 "
                    f"<code class='hash'>{digest}</code></td></tr>")
    rows.append(f"<tr><th>llmcause</th><td>{e(version)}</td></tr>")
    if created:
        rows.append(f"<tr><th>created</th><td>{e(created)}</td></tr>")
    return f"<table class='header'>{''.join(rows)}</table>"


def _file_facts(path: str) -> tuple[str, int, str]:
    import hashlib
    import os

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return os.path.basename(os.path.normpath(path)), os.path.getsize(path), digest.hexdigest()


def write_report(path, table: EstimateTable, **kwargs) -> None:
    """Render and write the report atomically (no half-written file on failure)."""
    write_text_atomic(path, render_report(table, **kwargs))


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    if isinstance(x, float):
        return f"{x:.4g}"
    return html.escape(str(x))


def _estimates_table(table: EstimateTable, truth: Mapping[str, float] | None) -> str:
    e = html.escape
    head = ["name", "estimand", "method", "estimate", "SE", "CI", "n"] + (["truth", "covered"] if truth else [])
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for est in table:
        ci = f"[{_num(est.ci_low)}, {_num(est.ci_high)}] ({est.level:.0%})"
        cells = [f"<td>{e(str(est.name))}</td>", f"<td>{e(str(est.estimand))}</td>", f"<td>{e(str(est.method))}</td>",
                 f"<td class='num'>{_num(est.estimate)}</td>", f"<td class='num'>{_num(est.se)}</td>",
                 f"<td class='num'>{ci}</td>", f"<td class='num'>{est.n}</td>"]
        if truth:
            t = truth.get(f"{est.name} ({est.method})", truth.get(est.name))
            cells.append(f"<td class='num'>{_num(t)}</td>")
            cells.append(f"<td>{'' if t is None else ('yes' if est.covers(t) else 'no')}</td>")
        cls = " class='naive'" if est.method == "naive" else ""
        rows.append(f"<tr{cls}>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    return "".join(rows)


def _mapping_table(obj: Any) -> str:
    e = html.escape
    if isinstance(obj, dict):
        cells = "".join(f"<tr><th>{e(str(k))}</th><td>{_mapping_table(v)}</td></tr>" for k, v in obj.items())
        return f"<table>{cells}</table>"
    if isinstance(obj, list):
        if len(obj) > 50:
            obj = obj[:50] + [f"... ({len(obj) - 50} more)"]
        return ", ".join(_mapping_table(v) for v in obj)
    return _num(obj)


def _frame_table(df) -> str:
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.head(500).iterrows():
        body.append("<tr>" + "".join(
            f"<td class='num'>{_num(v)}</td>" if isinstance(v, (int, float)) else f"<td>{e(str(v))}</td>"
            for v in row.tolist()) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"
