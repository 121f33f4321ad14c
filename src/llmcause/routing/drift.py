"""Has a policy's value changed over time? Estimates per time window, an exponentially
weighted estimate, and tests of change.

The log is cut into consecutive windows holding equal numbers of rows (by
time). Within a window, the DR value of the policy is the mean of the
per-row DR scores of that window's rows (nuisances cross-fitted on the whole
log, with time among the features, so they can follow the drift). Windows
are disjoint sets of rows, so their estimates are independent:

- change between the first and the last window: their difference, with the variances added;
- any change: the Wald statistic Σ_w (θ̂_w − θ̄)²/se_w² with θ̄ the
  inverse-variance weighted mean, χ² with W − 1 degrees of freedom;
- the exponentially weighted value: Σ_w ω_w θ̂_w with ω_w ∝ 2^(−age_w/half-life),
  age in windows counted back from the latest.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import stats

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import contrast, estimate_from_influence, linear_combination
from .evaluate import Nuisances, fit_nuisances, outcome_table
from .logs import RoutingLog
from .policies import parse_policy, policy_matrix


def window_labels(time: np.ndarray, n_windows: int) -> np.ndarray:
    """Window index 0..W−1 per row: consecutive blocks of (nearly) equal size in time order."""
    if n_windows < 2:
        raise ValueError("need at least 2 time windows")
    if time.shape[0] < 2 * n_windows:
        raise ValueError(f"{time.shape[0]} rows are too few for {n_windows} time windows")
    order = np.argsort(time, kind="stable")
    labels = np.empty(time.shape[0], dtype=np.int64)
    labels[order] = (np.arange(time.shape[0]) * n_windows) // time.shape[0]
    return labels


def _fmt_time(t: float, is_date: bool) -> str:
    if is_date:
        import pandas as pd

        return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
    return f"{t:.4g}"


def drift_study(log: RoutingLog, policies: Sequence[str], *, n_windows: int = 4, half_life: float = 1.0,
                estimands: Sequence[str] = ("quality",), lam: float | None = None, level: float = 0.95,
                n_folds: int = 5, seed: int = 0, learner: str = "linear",
                nuisances: Nuisances | None = None) -> EstimateTable:
    """Per-window DR values, the exponentially weighted value and change tests for each policy.

    Estimates are named ``"<policy> [window j/W]"``, ``"<policy> [weighted]"``,
    ``"<policy> [last - first window]"``; the weighted estimate's diagnostics
    carry the χ² test of no change (``chi2``, ``df``, ``p_change``).
    """
    if log.time is None:
        raise ValueError("drift needs a time column (--time)")
    labels = window_labels(log.time, n_windows)
    nuis = nuisances or fit_nuisances(log, n_folds=n_folds, seed=seed, learner=learner)
    table = outcome_table(log, nuis, lam)
    out: list[Estimate] = []
    warnings: list[str] = []
    rows_all = np.arange(log.n)
    for spec in (parse_policy(p) for p in policies):
        pi = policy_matrix(spec, log)
        w = pi[rows_all, log.action] / nuis.propensity
        for estimand in estimands:
            if estimand not in table:
                continue
            u, q = table[estimand]
            phi = np.einsum("ij,ij->i", pi, q) + w * (u - q[rows_all, log.action])
            per = []
            for j in range(n_windows):
                rows = np.flatnonzero(labels == j)
                theta = float(phi[rows].mean())
                t0, t1 = log.time[rows].min(), log.time[rows].max()
                per.append(estimate_from_influence(
                    theta, phi[rows] - theta, name=f"{spec.label} [window {j + 1}/{n_windows}]", estimand=estimand,
                    method="dr", level=level, rows=rows, cluster=None if log.cluster is None else log.cluster[rows],
                    diagnostics={"from": _fmt_time(t0, log.time_is_date), "to": _fmt_time(t1, log.time_is_date),
                                 "rows": int(rows.size)}))
                matched = float(np.sum(pi[rows, log.action[rows]]))
                if matched < 50:
                    warnings.append(f"{spec.label}, window {j + 1}: only {matched:.3g} logged rows agree with the "
                                    "policy; that window's interval may under-cover")
            out += per
            out += _change(per, spec.label, estimand, half_life)
    return EstimateTable(out, warnings)


def _change(per: list[Estimate], label: str, estimand: str, half_life: float) -> list[Estimate]:
    n_w = len(per)
    theta = np.array([e.estimate for e in per])
    se = np.array([e.se for e in per])
    age = np.arange(n_w)[::-1]
    omega = 0.5 ** (age / half_life)
    omega /= omega.sum()
    if np.all(se > 0):
        prec = 1.0 / se ** 2
        pooled = float(np.sum(prec * theta) / prec.sum())
        chi2 = float(np.sum(prec * (theta - pooled) ** 2))
        p = float(stats.chi2.sf(chi2, n_w - 1))
    else:
        chi2, p = float("nan"), float("nan")
    ew = linear_combination(per, omega, name=f"{label} [weighted]", estimand=estimand, method="dr",
                            diagnostics={"half_life_windows": half_life, "weights": omega.tolist(), "chi2": chi2,
                                         "df": n_w - 1, "p_change": p})
    diff = contrast(per[-1], per[0], name=f"{label} [last - first window]", estimand=f"change in {estimand}",
                    method="dr")
    return [ew, diff.with_(diagnostics={**diff.diagnostics, "chi2_any_change": chi2, "p_any_change": p})]
