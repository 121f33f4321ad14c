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
        """Forest plot: one line per estimate with its interval; returns the axes.

        ``truth`` maps a row label (``"name (method)"`` or ``"name"``) to a
        known true value, drawn as a red cross.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        n = len(self._estimates)
        if ax is None:
            _, ax = plt.subplots(figsize=(7.0, 0.45 * n + 1.2))
        labels = [_label(e) for e in self._estimates]
        shown = _distinct_labels(self._estimates, labels)
        ys = np.arange(n)[::-1]
        for y, e in zip(ys, self._estimates):
            color = "0.55" if e.method == "naive" else "C0"
            if math.isfinite(e.ci_low) and math.isfinite(e.ci_high):
                ax.plot([e.ci_low, e.ci_high], [y, y], color=color, lw=2)
            ax.plot([e.estimate], [y], "o", color=color)
        if truth:
            for y, e, lab in zip(ys, self._estimates, labels):
                t = truth.get(lab, truth.get(e.name))
                if t is not None:
                    ax.plot([t], [y], "x", color="C3", ms=9, mew=2)
        ax.set_yticks(ys)
        # User names are drawn as written, never as mathtext ("gpt-4o ($5/M)", "$\\frac{$").
        ax.set_yticklabels(shown, parse_math=False)
        ax.axvline(0.0, color="0.85", lw=1, zorder=0)
        ax.set_xlabel("estimate with confidence interval")
        if title:
            ax.set_title(title, parse_math=False)
        ax.figure.tight_layout()
        return ax


def _label(e: Estimate) -> str:
    return f"{e.name} ({e.method})"


def _distinct_labels(estimates: Sequence[Estimate], labels: list[str]) -> list[str]:
    """Row labels for display: where a name and method repeat, add the estimand (e.g. quality vs cost)."""
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    return [f"{e.name}: {e.estimand} ({e.method})" if counts[lab] > 1 else lab for e, lab in zip(estimates, labels)]


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
