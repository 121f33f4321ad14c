"""Has an estimand changed over time? Time windows, an exponentially weighted estimate,
tests of change and a single change point, shared by every stage.

Rows are cut into consecutive windows holding equal numbers of rows (by
time). A stage makes one `Estimate` per window (the mean of per-row scores of
that window's rows, or a refit on those rows); windows are disjoint sets of
rows, so their estimates are independent. From them:

- change between the first and the last window: their difference, with the variances added;
- any change: the Wald statistic Σ_w (θ̂_w − θ̄)²/se_w² with θ̄ the
  inverse-variance weighted mean, χ² with W − 1 degrees of freedom;
- the exponentially weighted value: Σ_w ω_w θ̂_w with ω_w ∝ 2^(−age_w/half-life),
  age in windows counted back from the latest;
- a warning when a pooled estimate mixes regimes: two windows whose intervals do not overlap.

Where the estimate is a mean of per-row scores (influence values plus the
estimate), `change_point` locates a single break by least squares over the
rows in time order, with Bai's (1997) interval for the break date: with jump
δ and residual variance σ², k̂ − k ≈ (σ²/δ²)·V, V the argmax of a two-sided
Brownian motion with drift −|s|/2, whose distribution function is known in
closed form. The break is reported only where a single break explains the
drift: after removing the fitted step, the windows must show no change left
(χ² test at the same level); otherwise a warning says the drift is not one break.

Assumptions: rows independent given time (or independent clusters); a window
holds enough rows for a normal approximation. The jump's interval treats the
break date as known (it is estimated faster than the levels, Bai 1997).

References: Bai 1997, "Estimation of a change point in multiple regression
models" (Rev. Econ. Stat. 79); Yao 1987 for the argmax distribution.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import optimize, stats

from .estimate import Estimate
from .inference import contrast, estimate_from_influence, linear_combination


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


def format_time(t: float, is_date: bool) -> str:
    """A time for display: a UTC date and hour for dates (seconds since the epoch), else a number."""
    if is_date:
        import pandas as pd

        return pd.Timestamp(t, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M")
    return f"{t:.4g}"


def window_means(scores: np.ndarray, labels: np.ndarray, time: np.ndarray, *, label: str, estimand: str,
                 method: str, level: float = 0.95, cluster: np.ndarray | None = None, time_is_date: bool = False,
                 rows: np.ndarray | None = None) -> list[Estimate]:
    """One estimate per window: the mean of the window's per-row scores, with its influence values.

    ``rows`` are the row ids of ``scores`` (default ``arange``), kept for pairing.
    """
    n_windows = int(labels.max()) + 1
    ids = np.arange(scores.shape[0]) if rows is None else np.asarray(rows)
    per = []
    for j in range(n_windows):
        take = np.flatnonzero(labels == j)
        theta = float(scores[take].mean())
        t0, t1 = time[take].min(), time[take].max()
        per.append(estimate_from_influence(
            theta, scores[take] - theta, name=f"{label} [window {j + 1}/{n_windows}]", estimand=estimand,
            method=method, level=level, rows=ids[take], cluster=None if cluster is None else cluster[take],
            diagnostics={"from": format_time(t0, time_is_date), "to": format_time(t1, time_is_date),
                         "rows": int(take.size)}))
    return per


def change_tests(per: Sequence[Estimate], label: str, estimand: str, half_life: float,
                 method: str = "dr") -> list[Estimate]:
    """The exponentially weighted estimate and the last-minus-first change, with the χ² test of any change.

    The weighted estimate's diagnostics carry ``chi2``, ``df`` and ``p_change``;
    the change's carry ``chi2_any_change`` and ``p_any_change``.
    """
    n_w = len(per)
    chi2, p = chi2_change(per)
    age = np.arange(n_w)[::-1]
    omega = 0.5 ** (age / half_life)
    omega /= omega.sum()
    diag = {"half_life_windows": half_life, "weights": omega.tolist(), "chi2": chi2, "df": n_w - 1, "p_change": p}
    if all(e.influence is not None for e in per):
        ew = linear_combination(per, omega, name=f"{label} [weighted]", estimand=estimand, method=method,
                                diagnostics=diag)
        diff = contrast(per[-1], per[0], name=f"{label} [last - first window]", estimand=f"change in {estimand}",
                        method=method)
    else:  # refits without influence values: windows are disjoint, so their variances add
        ew = _independent_sum(per, omega, name=f"{label} [weighted]", estimand=estimand, method=method,
                              diagnostics=diag)
        diff = _independent_sum([per[-1], per[0]], np.array([1.0, -1.0]), name=f"{label} [last - first window]",
                                estimand=f"change in {estimand}", method=method, diagnostics={})
    return [ew, diff.with_(diagnostics={**diff.diagnostics, "chi2_any_change": chi2, "p_any_change": p})]


def _independent_sum(per: Sequence[Estimate], weights: np.ndarray, *, name: str, estimand: str, method: str,
                     diagnostics: dict) -> Estimate:
    theta = float(sum(w * e.estimate for w, e in zip(weights, per)))
    se = float(np.sqrt(sum((w * e.se) ** 2 for w, e in zip(weights, per))))
    level = per[0].level
    q = float(stats.norm.ppf(0.5 + level / 2))
    return Estimate(name=name, estimand=estimand, method=method, estimate=theta, se=se, ci_low=theta - q * se,
                    ci_high=theta + q * se, level=level, n=int(sum(e.n for e in per)), diagnostics=diagnostics)


def chi2_change(per: Sequence[Estimate]) -> tuple[float, float]:
    """Wald χ² of equal values across independent windows, and its p-value (W − 1 df); NaN if an se is 0."""
    theta = np.array([e.estimate for e in per])
    se = np.array([e.se for e in per])
    if not np.all(se > 0):
        return float("nan"), float("nan")
    prec = 1.0 / se ** 2
    pooled = float(np.sum(prec * theta) / prec.sum())
    chi2 = float(np.sum(prec * (theta - pooled) ** 2))
    return chi2, float(stats.chi2.sf(chi2, len(per) - 1))


def regime_warning(per: Sequence[Estimate], label: str) -> str | None:
    """A warning when two windows' intervals do not overlap: a pooled estimate then describes neither regime."""
    lo = min(per, key=lambda e: e.ci_high)
    hi = max(per, key=lambda e: e.ci_low)
    if lo.ci_high >= hi.ci_low:
        return None

    def show(e: Estimate) -> str:
        return f"{e.name.rsplit('[', 1)[-1].rstrip(']')}: {e.estimate:.4g} [{e.ci_low:.4g}, {e.ci_high:.4g}]"

    return (f"{label}: the pooled estimate mixes regimes that differ beyond their intervals ({show(lo)}; "
            f"{show(hi)}); read the per-window or weighted estimates")


def argmax_quantile(level: float) -> float:
    """q with P(|V| ≤ q) = level, V = argmax_s W(s) − |s|/2 (two-sided Brownian motion; Bai 1997)."""
    def cdf(x: float) -> float:
        r = np.sqrt(x)
        return float(1 + np.sqrt(x / (2 * np.pi)) * np.exp(-x / 8) - 0.5 * (x + 5) * stats.norm.cdf(-r / 2)
                     + 1.5 * np.exp(x) * stats.norm.cdf(-1.5 * r))

    target = 1 - (1 - level) / 2
    return float(optimize.brentq(lambda x: cdf(x) - target, 1e-9, 500.0))


def change_point(scores: np.ndarray, time: np.ndarray, labels: np.ndarray, *, label: str, estimand: str,
                 method: str, level: float = 0.95, time_is_date: bool = False, min_share: float = 0.05,
                 rows: np.ndarray | None = None) -> tuple[list[Estimate], list[str]]:
    """A single break in the mean of per-row scores: when it happened, and the jump, where one break explains the drift.

    Returns ``(estimates, warnings)``: the estimates are ``"<label> [change point]"``
    (estimand "time of the break"; the estimate is the time of the first row
    after the break, the interval Bai's, on the time scale) and
    ``"<label> [after - before break]"`` (the jump). They are left out, with a
    warning, when the windows still change after removing the step.
    """
    scores = np.asarray(scores, dtype=float)
    n = scores.shape[0]
    order = np.argsort(time, kind="stable")
    y, t = scores[order], time[order]
    m = max(2, int(np.ceil(min_share * n)))
    if n < 2 * m + 1:
        return [], [f"{label}: too few rows to locate a change point"]
    csum, csq = np.cumsum(y), np.cumsum(y * y)
    k = np.arange(m, n - m + 1)  # rows before the break
    left = csq[k - 1] - csum[k - 1] ** 2 / k
    right = (csq[-1] - csq[k - 1]) - (csum[-1] - csum[k - 1]) ** 2 / (n - k)
    sse = left + right
    kh = int(k[np.argmin(sse)])
    before, after = y[:kh], y[kh:]
    delta = float(after.mean() - before.mean())
    sigma2 = float(sse.min() / (n - 2))
    # Does one break explain the drift? Test the windows of the residuals for any change left.
    step = np.where(np.arange(n) < kh, before.mean(), after.mean())
    resid_labels = labels[order]
    per = window_means(y - step, resid_labels, t, label=label, estimand=estimand, method=method, level=level)
    _, p_left = chi2_change(per)
    if not (p_left > 1 - level):
        return [], [f"{label}: the drift is not a single break (change left after the best one: p = {p_left:.2g}); "
                    "read the per-window estimates"]
    half = argmax_quantile(level) * sigma2 / delta ** 2 if delta != 0 else float("inf")
    k_lo = int(max(1, np.floor(kh - half)))
    k_hi = int(min(n - 1, np.ceil(kh + half)))
    ids = np.arange(n) if rows is None else np.asarray(rows)[order]
    diag = {"break_row_in_time_order": kh, "rows_before": kh, "rows_after": n - kh,
            "at": format_time(t[kh], time_is_date), "ci_from": format_time(t[k_lo], time_is_date),
            "ci_to": format_time(t[k_hi], time_is_date), "p_change_left": p_left}
    when = Estimate(name=f"{label} [change point]", estimand="time of the break", method=method,
                    estimate=float(t[kh]), se=float("nan"), ci_low=float(t[k_lo]), ci_high=float(t[k_hi]),
                    level=level, n=n, diagnostics=diag)
    b = estimate_from_influence(float(before.mean()), before - before.mean(), name="before", estimand=estimand,
                                method=method, level=level, rows=ids[:kh])
    a = estimate_from_influence(float(after.mean()), after - after.mean(), name="after", estimand=estimand,
                                method=method, level=level, rows=ids[kh:])
    jump = contrast(a, b, name=f"{label} [after - before break]", estimand=f"jump in {estimand}", method=method)
    jump = jump.with_(diagnostics={"before": b.estimate, "after": a.estimate, "at": diag["at"]})
    return [when, jump], []
