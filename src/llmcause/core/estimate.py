"""The result types every estimator returns: `Estimate` and `EstimateTable`.

An `Estimate` is a point estimate with its standard error and confidence
interval, plus (optionally) the per-row influence values it was built from.
Influence values are what make contrasts, cluster-robust errors and
simultaneous intervals possible later, in `core.inference`, without refitting.

Convention: for influence values ψ of length n, θ̂ − θ ≈ mean(ψ). Each ψᵢ
belongs to a sampling unit: its cluster label when the estimate is
cluster-robust, otherwise its row id (`rows`; by default 0..n−1). Two
estimates whose units overlap are dependent (a paired design); units that
appear in only one of them contribute independently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

from .._lazy import lazy_module

np = lazy_module("numpy")  # imported on first use: the command line starts without it

JSON_KEYS = ("name", "estimand", "method", "estimate", "se", "ci_low", "ci_high", "level", "n", "diagnostics")


@dataclass(frozen=True, eq=False)
class Estimate:
    """A point estimate with its uncertainty.

    Parameters
    ----------
    name : what is estimated about (a model, a policy, ``"B - A"``, ``"ATE"``).
    estimand : the causal quantity in words (``"ATE"``, ``"mean human score"``).
    method : how it was estimated (``"aipw"``, ``"ppi++"``, ``"naive"``).
    estimate, se, ci_low, ci_high, level : the point estimate, its standard
        error and a two-sided interval at confidence ``level``.
    n : number of rows the estimate used.
    diagnostics : JSON-serialisable facts about the fit (overlap, ESS, ...).
    influence : optional per-row influence values ψ with θ̂ − θ ≈ mean(ψ).
    rows : optional row ids of the influence values (for pairing estimates
        computed on the same rows); default ``arange(n)``.
    cluster : optional cluster label per influence value; when given the
        standard error is cluster-robust and contrasts pair by cluster.
    df : degrees of freedom of the t reference distribution (None: normal).
    warnings : plain-language warnings about this estimate.
    """

    name: str
    estimand: str
    method: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    level: float = 0.95
    n: int = 0
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    influence: np.ndarray | None = field(default=None, repr=False)
    rows: np.ndarray | None = field(default=None, repr=False)
    cluster: np.ndarray | None = field(default=None, repr=False)
    df: float | None = None
    warnings: tuple[str, ...] = ()

    @property
    def pvalue(self) -> float:
        """Two-sided p-value for the null hypothesis that the estimand is 0."""
        from scipy import stats

        if not (self.se > 0) or not math.isfinite(self.se):
            return float("nan")
        t = abs(self.estimate) / self.se
        if self.df is None:
            return float(2 * stats.norm.sf(t))
        return float(2 * stats.t.sf(t, self.df))

    def covers(self, value: float) -> bool:
        """Whether the interval contains ``value``."""
        return bool(self.ci_low <= value <= self.ci_high)

    def with_(self, **changes: Any) -> "Estimate":
        """A copy with some fields changed (the dataclass is immutable)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of DESIGN.md: exactly the keys in `JSON_KEYS`."""
        return {
            "name": str(self.name),
            "estimand": str(self.estimand),
            "method": str(self.method),
            "estimate": _json_float(self.estimate),
            "se": _json_float(self.se),
            "ci_low": _json_float(self.ci_low),
            "ci_high": _json_float(self.ci_high),
            "level": _json_float(self.level),
            "n": int(self.n),
            "diagnostics": to_jsonable(dict(self.diagnostics)),
        }


class EstimateTable(Sequence[Estimate]):
    """An ordered collection of estimates plus the warnings raised making them.

    Look up by position (``table[0]``) or by name (``table["B - A"]``); when a
    name occurs with several methods, use ``table.get(name, method)``.
    """

    def __init__(self, estimates: Iterable[Estimate] = (), warnings: Iterable[str] = ()):
        self._estimates = list(estimates)
        own = [w for e in self._estimates for w in e.warnings]
        self.warnings: list[str] = _unique([*warnings, *own])

    def __len__(self) -> int:
        return len(self._estimates)

    def __iter__(self) -> Iterator[Estimate]:
        return iter(self._estimates)

    def __getitem__(self, key):  # type: ignore[override]
        if isinstance(key, (int, np.integer)):
            return self._estimates[key]
        if isinstance(key, slice):
            return EstimateTable(self._estimates[key], self.warnings)
        matches = [e for e in self._estimates if e.name == key]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise KeyError(f"no estimate named {key!r}; names: {self.names}")
        methods = [e.method for e in matches]
        raise KeyError(f"{len(matches)} estimates named {key!r} (methods {methods}); use get(name, method)")

    def get(self, name: str, method: str | None = None) -> Estimate:
        """The estimate with this name (and method, when several share a name)."""
        matches = [e for e in self._estimates if e.name == name and (method is None or e.method == method)]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} estimates match name={name!r}, method={method!r}")
        return matches[0]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self._estimates]

    def __add__(self, other: "EstimateTable") -> "EstimateTable":
        return EstimateTable([*self, *other], [*self.warnings, *other.warnings])

    def __repr__(self) -> str:
        return f"EstimateTable({len(self)} estimates, {len(self.warnings)} warnings)\n{self.to_frame().to_string()}"

    def to_frame(self):
        """A pandas DataFrame with one row per estimate (diagnostics as a dict column)."""
        import pandas as pd

        cols = list(JSON_KEYS)
        return pd.DataFrame([{k: getattr(e, k) for k in cols} for e in self._estimates], columns=cols)

    def _repr_html_(self) -> str:
        """The table in a notebook: name, estimand, method, estimate, SE, CI, n; naive rows in grey, then warnings."""
        from html import escape

        head = "".join(f"<th>{h}</th>" for h in ("name", "estimand", "method", "estimate", "SE", "CI", "n"))
        body = []
        for e in self._estimates:
            style = " style='color:#777'" if e.method == "naive" else ""
            ci = f"[{_fmt(e.ci_low, 3)}, {_fmt(e.ci_high, 3)}] ({e.level:.0%})" if math.isfinite(e.ci_low) else "—"
            cells = [escape(str(e.name)), escape(str(e.estimand)), escape(str(e.method)), _fmt(e.estimate, 4),
                     _fmt(e.se, 4), ci, str(e.n)]
            body.append(f"<tr{style}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        warnings = "".join(f"<li>{escape(str(w))}</li>" for w in self.warnings)
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
                + (f"<p>warnings:</p><ul>{warnings}</ul>" if warnings else ""))

    def to_dict(self, command: str) -> dict[str, Any]:
        """The CLI's JSON document: ``{"command", "estimates", "warnings"}``."""
        return {
            "command": command,
            "estimates": [e.to_dict() for e in self._estimates],
            "warnings": [str(w) for w in self.warnings],
        }

    def to_json(self, command: str, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(command), indent=indent, allow_nan=False)

    def rich_table(self, title: str | None = None, digits: int = 4):
        """A `rich.table.Table` for the terminal."""
        from rich.table import Table
        from rich.text import Text

        # Names, estimands and methods are data: Text cells are never parsed as markup ("model[v2]" stays whole).
        show_ci = any(math.isfinite(e.ci_low) for e in self._estimates)
        table = Table(title=None if title is None else Text(str(title)), show_lines=False)
        table.add_column("name", overflow="fold")  # a long name wraps in its cell, never cut
        for col, justify in (("estimand", "left"), ("method", "left"), ("estimate", "right"), ("se", "right")):
            table.add_column(col, justify=justify, overflow="fold", no_wrap=justify == "right")
        if show_ci:
            table.add_column("CI", justify="right")
        table.add_column("n", justify="right")
        for e in self._estimates:
            row = [str(e.name), str(e.estimand), str(e.method), _fmt(e.estimate, digits), _fmt(e.se, digits)]
            if show_ci:
                row.append(f"[{_fmt(e.ci_low, digits - 1)}, {_fmt(e.ci_high, digits - 1)}]")
            row.append(str(e.n))
            table.add_row(*[Text(cell) for cell in row], style=None)
        return table

    def plot(self, ax=None, truth: Mapping[str, float] | None = None, title: str | None = None):
        """Forest plot: one row per name, its estimates stacked on that row; returns the (first) axes.

        The naive answer sits on the same row as the causal one it should be
        read against (grey); each method has its own colour and a legend
        entry. Estimands on different scales (a log-odds strength, a
        probability, a cost) get separate panels, one x axis each, when
        ``ax`` is None. ``truth`` maps ``"name (method)"`` or ``"name"`` to a
        known true value, drawn as a red cross (legend: truth). A tour-style
        ``diagnostics["naive"]`` value without an interval is an open grey
        diamond.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        methods = _unique(e.method for e in self._estimates if e.method != "naive")
        palette = ["C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9"]  # red (C3) is the truth's, grey (C7) naive's
        colour = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
        colour["naive"] = "0.55"
        panels = [self._estimates] if ax is not None else _panels(self._estimates)
        sizes = [len(_plot_rows(p)) for p in panels]
        if ax is None:
            fig, axes = plt.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": sizes},
                                     figsize=(7.0, 0.55 * sum(sizes) + 1.1 * len(panels) + 0.6))
            axes = list(axes[:, 0])
        else:
            axes = [ax]
        shown: dict[str, Any] = {}
        for panel_ax, panel in zip(axes, panels):
            _forest(panel_ax, panel, truth, colour, shown)
            if len(panels) > 1:
                panel_ax.set_title(str(panel[0].estimand), fontsize="medium", loc="left", parse_math=False)
        if len(shown) > 1 or "truth" in shown:
            order = [k for k in [*methods, "naive", "naive (no interval)", "truth"] if k in shown]
            last = axes[-1]
            legend = last.legend([shown[k] for k in order], order, loc="upper center", ncol=min(len(order), 4),
                                 frameon=False, fontsize="small",
                                 bbox_to_anchor=(0.5, -0.16 - 0.5 / (len(_plot_rows(panels[-1])) + 2)))
            for text in legend.get_texts():
                text.set_parse_math(False)
        if title:
            axes[0].figure.suptitle(title, parse_math=False)
        axes[0].figure.tight_layout()
        return axes[0]


def _forest(ax, estimates: Sequence[Estimate], truth, colour: Mapping[str, str], shown: dict) -> None:
    rows = _plot_rows(estimates)
    n = len(rows)
    for r, (_, members) in enumerate(rows):
        y0 = n - 1 - r
        offsets = np.linspace(0.2, -0.2, len(members)) if len(members) > 1 else np.zeros(1)
        marked = False
        for off, e in zip(offsets, members):
            y = y0 + off
            c = colour.get(e.method, "C0")
            if math.isfinite(e.ci_low) and math.isfinite(e.ci_high):
                ax.plot([e.ci_low, e.ci_high], [y, y], color=c, lw=2)
            (dot,) = ax.plot([e.estimate], [y], "o", color=c)
            shown.setdefault(e.method, dot)
            naive = e.diagnostics.get("naive") if isinstance(e.diagnostics, Mapping) else None
            if isinstance(naive, (int, float)) and math.isfinite(naive) and len(members) == 1:
                (dia,) = ax.plot([naive], [y], "D", mfc="none", color="0.45", ms=7)
                shown.setdefault("naive (no interval)", dia)
            t = None if not truth else truth.get(_label(e), truth.get(e.name))
            if t is not None and not marked:
                (cross,) = ax.plot([t], [y0], "x", color="C3", ms=9, mew=2)
                shown.setdefault("truth", cross)
                marked = True
    ax.set_yticks(np.arange(n)[::-1])
    # User names are drawn as written, never as mathtext ("gpt-4o ($5/M)", "$\\frac{$").
    ax.set_yticklabels([label for label, _ in rows], parse_math=False)
    ax.set_ylim(-0.7, n - 0.3)
    ax.axvline(0.0, color="0.85", lw=1, zorder=0)
    ax.set_xlabel("estimate with confidence interval")


def _panels(estimates: Sequence[Estimate]) -> list[list[Estimate]]:
    """One panel per estimand; a lone naive row (the naive difference beside the ATE) joins the only panel left."""
    by: dict[str, list[Estimate]] = {}
    for e in estimates:
        by.setdefault(str(e.estimand), []).append(e)
    causal = [k for k, es in by.items() if any(e.method != "naive" for e in es)]
    naive_only = [k for k, es in by.items() if all(e.method == "naive" for e in es)]
    if len(causal) == 1:
        for k in naive_only:
            by[causal[0]].extend(by.pop(k))
    return list(by.values()) or [[]]


def _label(e: Estimate) -> str:
    return f"{e.name} ({e.method})"


def _plot_rows(estimates: Sequence[Estimate]) -> list[tuple[str, list[Estimate]]]:
    """Forest-plot rows: estimates of one name and estimand share a row; a naive estimate joins the row of
    its namesake, or, when it has none and the table has one other row, that row (the naive difference
    beside the ATE)."""
    keys: dict[tuple[str, str], list[Estimate]] = {}
    naive = [e for e in estimates if e.method == "naive"]
    for e in estimates:
        if e.method != "naive":
            keys.setdefault((str(e.name), str(e.estimand)), []).append(e)
    lone = []
    for e in naive:
        same = [k for k in keys if k[0] == str(e.name)]
        home = (str(e.name), str(e.estimand)) if (str(e.name), str(e.estimand)) in keys else (same[0] if same else None)
        if home is not None:
            keys[home].append(e)
        else:
            lone.append(e)
    if len(keys) == 1 and len(lone) == 1:
        next(iter(keys.values())).append(lone.pop())
    for e in lone:
        keys.setdefault((str(e.name), str(e.estimand)), []).append(e)
    names: dict[str, int] = {}
    for name, _ in keys:
        names[name] = names.get(name, 0) + 1
    return [(f"{name}: {estimand}" if names[name] > 1 else name, members)
            for (name, estimand), members in keys.items()]


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(str(item), None)
    return list(seen)


def _fmt(x: float, digits: int) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}g}" if abs(x) >= 1e4 or (x != 0 and abs(x) < 1e-3) else f"{x:.{digits}f}"


def _json_float(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars and arrays, tuples and non-finite floats into plain JSON values."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _json_float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)
