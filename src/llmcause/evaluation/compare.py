"""Comparisons between groups and a ranking with simultaneous intervals.

Estimands. Differences θ_B − θ_A of the per-group means from `judge_means`,
and the rank of each group. Contrasts are paired automatically: groups that
share prompts (the same cluster labels) enter as ψᴮ − ψᴬ per prompt, and the
calibration's own uncertainty, shared by every group that uses it, cancels
where it should. Family-wise error over all comparisons is controlled by
max-t simultaneous intervals from a multiplier bootstrap (Chernozhukov,
Chetverikov & Kato 2013) and Holm-adjusted p-values (Holm 1979).

Ranks. A group's rank interval [rank_low, rank_high] counts the groups that
are surely better or surely worse: rank_low = 1 + #{j : θ_j − θ_i > 0
simultaneously}, rank_high = m − #{j : θ_i − θ_j > 0 simultaneously}. All m
ranks hold jointly with probability ≥ level, because they come from one
simultaneous family of pairwise intervals.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import contrast, simultaneous_intervals


def select_method(table: EstimateTable, method: str | None = None) -> list[Estimate]:
    """The estimates of one method (default: the first method in the table), one per group."""
    if not len(table):
        raise ValueError("the table has no estimates")
    method = method or table[0].method
    chosen = [e for e in table if e.method == method]
    if not chosen:
        raise ValueError(f"no estimates with method {method!r}; methods: {sorted({e.method for e in table})}")
    names = [e.name for e in chosen]
    if len(set(names)) < len(names):
        raise ValueError(f"several {method!r} estimates share a name; cannot compare them")
    return chosen


def compare_groups(table: EstimateTable, *, method: str | None = None, baseline: str | None = None,
                   level: float | None = None, n_boot: int = 10_000, seed: int = 0) -> EstimateTable:
    """Differences ``"B - A"`` between groups, paired on shared prompts, with joint error control.

    Without ``baseline``: every pair, B after A in the table's order. With it:
    each other group minus the baseline. Each contrast keeps its own
    (pointwise) interval; diagnostics add the simultaneous interval over the
    whole family (``ci_low_simultaneous``, ``ci_high_simultaneous``), its
    multiplier and the Holm-adjusted p-value ``p_holm``.
    """
    groups = select_method(table, method)
    if len(groups) < 2:
        raise ValueError("comparisons need at least two groups")
    if baseline is not None:
        base = [e for e in groups if e.name == baseline]
        if not base:
            raise ValueError(f"no group named {baseline!r}; groups: {[e.name for e in groups]}")
        pairs = [(e, base[0]) for e in groups if e.name != baseline]
    else:
        pairs = [(groups[j], groups[i]) for i in range(len(groups)) for j in range(i + 1, len(groups))]
    diffs = [contrast(b, a) for b, a in pairs]
    if level is not None:
        diffs = [_relevel(d, level) for d in diffs]
    joint = simultaneous_intervals(diffs, level=diffs[0].level, n_boot=n_boot, seed=seed)
    out = []
    for d, j in zip(diffs, joint):
        diag = {**d.diagnostics, "p_value": d.pvalue, "p_holm": j.diagnostics["p_holm"],
                "ci_low_simultaneous": j.ci_low, "ci_high_simultaneous": j.ci_high,
                "simultaneous_critical_value": j.diagnostics["critical_value"]}
        out.append(d.with_(diagnostics=diag))
    return EstimateTable(out)


def rank_groups(table: EstimateTable, *, method: str | None = None, level: float | None = None,
                n_boot: int = 10_000, seed: int = 0) -> EstimateTable:
    """The groups best first, with simultaneous intervals on their means and rank intervals.

    Each returned estimate is a group mean whose interval is simultaneous over
    all groups; diagnostics hold ``rank`` (by the point estimate, 1 = highest),
    ``rank_low`` and ``rank_high`` (jointly valid, see the module docstring).
    """
    groups = select_method(table, method)
    if len(groups) < 2:
        raise ValueError("a ranking needs at least two groups")
    lev = level if level is not None else groups[0].level
    means = simultaneous_intervals(groups, level=lev, n_boot=n_boot, seed=seed)
    m = len(groups)
    pairs = [(i, j) for i in range(m) for j in range(m) if i < j]
    diffs = [contrast(groups[j], groups[i]) for i, j in pairs]
    joint = simultaneous_intervals(diffs, level=lev, n_boot=n_boot, seed=seed)
    better = np.zeros((m, m), dtype=bool)  # better[j, i]: group j surely above group i
    for (i, j), d in zip(pairs, joint):
        if d.ci_low > 0:
            better[j, i] = True
        elif d.ci_high < 0:
            better[i, j] = True
    order = np.argsort([-e.estimate for e in groups], kind="stable")
    point_rank = np.empty(m, dtype=int)
    point_rank[order] = np.arange(1, m + 1)
    out = []
    for idx in order:
        e = means[int(idx)]
        diag = {**e.diagnostics, "rank": int(point_rank[idx]), "rank_low": int(1 + better[:, idx].sum()),
                "rank_high": int(m - better[idx, :].sum())}
        out.append(e.with_(diagnostics=diag))
    return EstimateTable(out)


def _relevel(e: Estimate, level: float) -> Estimate:
    from ..core.inference import wald_interval

    lo, hi = wald_interval(e.estimate, e.se, level, e.df)
    return e.with_(ci_low=lo, ci_high=hi, level=level)


def rank_frame(ranked: EstimateTable | Sequence[Estimate]):
    """The ranking as a small DataFrame (for reports)."""
    import pandas as pd

    return pd.DataFrame([{"group": e.name, "estimate": e.estimate, "simultaneous CI low": e.ci_low,
                          "simultaneous CI high": e.ci_high, "rank": e.diagnostics.get("rank"),
                          "rank range": f"{e.diagnostics.get('rank_low')}–{e.diagnostics.get('rank_high')}"}
                         for e in ranked])
