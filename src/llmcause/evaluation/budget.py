"""Label budget planning and active labelling, from a pilot.

Planning. For the prediction-powered and calibrated estimators the variance
of a group mean is, to first order,
    Var(θ̂) ≈ σ²_f / N + σ²_r / n,
with N judged items, n labels, σ²_f the variance of the (calibrated) judge
score and σ²_r the variance of the labelled residual. Reaching a CI
half-width h at level 1 − α needs Var ≤ V = (h / z)². Minimising the cost
c_Y·n + c_S·N under that constraint gives the square-root rule
n ∝ √(σ²_r / c_Y), N ∝ √(σ²_f / c_S):
    n* = √(σ²_r/c_Y)·T,  N* = √(σ²_f/c_S)·T,  T = (√(σ²_r c_Y) + √(σ²_f c_S)) / V,
(Landesberg 2025, CJE's budget rule), with N* ≥ n* (a label needs a judged
item). With N fixed (the evaluation set is already judged),
n = σ²_r / (V − σ²_f/N). Labels alone would need σ²_Y / V. The variance
components come from the pilot (cross-fitted residuals); a cluster
bootstrap of the pilot gives an interval for the label count.

Active labelling. Sampling probabilities that favour rows where the judge is
least informative, π(x) ∝ √E[(Y − f̂)² | x], mixed with uniform and scaled to
the budget (Zrnic & Candès 2024, "Active statistical inference", arXiv
2403.03208). E[(Y − f̂)² | s] is estimated in quantile bins of the judge score
from the pilot's out-of-fold residuals. The probabilities are recorded so
the final estimate weights each label by 1/π and stays unbiased.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from ..core.estimate import Estimate, EstimateTable
from ..core.inference import critical_value, percentile_bootstrap
from ..core.surrogate import fit_calibration
from ..io import DataError, covariate_matrix, label_column, numeric_column, read_table, require_columns, source_of

PLAN_METHODS = ("calibrated", "ppi")


def plan_labels(data, *, judge: str, label: str, halfwidth: float, level: float = 0.95, cost_label: float = 1.0,
                cost_judge: float = 0.0, n_items: int | None = None, label_prob: str | None = None,
                cluster: str | None = None, covariates: Sequence[str] | None = None, method: str = "calibrated",
                n_folds: int = 5, n_boot: int = 1000, seed: int = 0) -> EstimateTable:
    """How many labels (and judge calls) reach a target CI half-width, from a pilot.

    Returns estimates named ``labels``, ``judge calls``, ``cost`` and
    ``labels without the judge`` (method ``plan``); the label count carries a
    bootstrap interval over the pilot, and diagnostics hold the variance
    components. ``n_items`` fixes the number of judged items; otherwise the
    cheapest split is found (needs ``cost_judge`` > 0).
    """
    if not halfwidth > 0:
        raise DataError("--halfwidth must be positive")
    if cost_label <= 0 or cost_judge < 0:
        raise DataError("--cost-label must be positive and --cost-judge non-negative")
    if method not in PLAN_METHODS:
        raise DataError(f"unknown method {method!r}; use one of {', '.join(PLAN_METHODS)}")
    pilot = _pilot(data, judge=judge, label=label, label_prob=label_prob, cluster=cluster, covariates=covariates,
                   method=method, n_folds=n_folds, seed=seed)
    V = (halfwidth / critical_value(level)) ** 2
    var_f, var_r, var_y = pilot["var_f"], pilot["var_r"], pilot["var_y"]
    n_lab, N_lab, cost, note = _optimum(var_f, var_r, V, cost_label, cost_judge, n_items)
    resid, wts, cl = pilot["resid"], pilot["weights"], pilot["cluster"]

    def boot_labels(W):
        wt = W * wts[None, :]
        m = (wt @ resid) / wt.sum(axis=1)
        vr = (wt @ resid**2) / wt.sum(axis=1) - m**2
        return np.array([_optimum(var_f, v, V, cost_label, cost_judge, n_items)[0] for v in vr])

    _, lo, hi = percentile_bootstrap(boot_labels, resid.shape[0], n_boot=n_boot, level=level, seed=seed, cluster=cl)
    diag = {"var_judge_part": var_f, "var_residual": var_r, "var_label": var_y, "target_variance": V,
            "halfwidth": halfwidth, "cost_label": cost_label, "cost_judge": cost_judge, "pilot_labels": pilot["n"],
            "pilot_rows": pilot["N"], "method": method, "note": note}
    n_classical = var_y / V

    def est(name, estimand, value, low=float("nan"), high=float("nan")):
        return Estimate(name=name, estimand=estimand, method="plan", estimate=float(value), se=float("nan"),
                        ci_low=float(low), ci_high=float(high), level=level, n=pilot["N"], diagnostics=diag)

    out = [est("labels", f"labels needed for a ±{halfwidth:g} interval", np.ceil(n_lab), np.ceil(lo), np.ceil(hi)),
           est("judge calls", "judged items needed", np.ceil(N_lab) if np.isfinite(N_lab) else float("inf")),
           est("cost", "total cost (labels and judge calls)", cost),
           est("labels without the judge", "labels needed by the label mean alone", np.ceil(n_classical))]
    warnings = []
    if not np.isfinite(n_lab):
        warnings.append(note)
    elif n_classical > 0:
        warnings.append(f"the judge saves {1 - n_lab / n_classical:.0%} of the labels the label mean alone "
                        f"would need ({np.ceil(n_lab):.0f} instead of {np.ceil(n_classical):.0f})")
    return EstimateTable(out, warnings)


def _optimum(var_f, var_r, V, c_y, c_s, n_items) -> tuple[float, float, float, str]:
    """(labels, judged items, cost, note) meeting variance V at the lowest cost."""
    if n_items is not None:
        room = V - var_f / n_items
        if room <= 0:
            return (float("inf"), float(n_items), float("inf"),
                    f"even with every one of the {n_items} items labelled the judge part of the variance exceeds "
                    "the target; judge more items or accept a wider interval")
        n = min(var_r / room, float(n_items))
        if var_r / room > n_items:
            return (float("inf"), float(n_items), float("inf"),
                    f"labelling all {n_items} items is not enough for this half-width")
        return n, float(n_items), c_y * n + c_s * n_items, "number of judged items fixed"
    if c_s == 0:
        n = var_r / V
        return n, float("inf"), c_y * n, "judge calls free: as many judged items as possible (N → ∞)"
    T = (np.sqrt(var_r * c_y) + np.sqrt(var_f * c_s)) / V
    n, N = np.sqrt(var_r / c_y) * T, np.sqrt(var_f / c_s) * T
    if N < n:  # every labelled item must be judged: then label the judged items only
        n = N = (var_r + var_f) / V
    return n, N, c_y * n + c_s * N, "square-root allocation n ∝ √(σ²_r/c_label), N ∝ √(σ²_f/c_judge)"


def _pilot(data, *, judge, label, label_prob, cluster, covariates, method, n_folds, seed) -> dict:
    df = read_table(data)
    src = source_of(df)
    cov_names = list(covariates or [])
    cols = {"--judge": judge, "--label": label, "--label-prob": label_prob, "--cluster": cluster}
    cols = {k: v for k, v in cols.items() if v is not None}
    require_columns(df, [*cols.values(), *cov_names], option={v: k for k, v in cols.items()})
    s = numeric_column(df, judge, what="a number (judge scores must be numeric)")
    y = numeric_column(df, label, allow_missing=True, what="a number (labels must be numeric)")
    R = ~np.isnan(y)
    if R.sum() < 2 * n_folds:
        raise DataError(f"{src}: column {label!r} has {int(R.sum())} labelled rows; the pilot needs at least "
                        f"{2 * n_folds}")
    pi = None if label_prob is None else numeric_column(df, label_prob, lower=0.0, lower_open=True, upper=1.0,
                                                       what="a probability")
    cl = None if cluster is None else label_column(df, cluster).astype(str).astype(object)
    X = covariate_matrix(df, cov_names)[0] if cov_names else None
    if method == "calibrated":
        cal = fit_calibration(s, y, R, label_prob=pi, covariates=X, n_folds=n_folds, cluster=cl, seed=seed)
        f_all, f_oof = cal.full, cal.oof
    else:
        f_all, f_oof = s, s
    w = np.ones(int(R.sum())) if pi is None else 1.0 / pi[R]
    resid = y[R] - f_oof[R]
    return {"var_f": float(np.var(f_all)), "var_r": _wvar(resid, w), "var_y": _wvar(y[R], w), "resid": resid,
            "weights": w, "cluster": None if cl is None else cl[R], "n": int(R.sum()), "N": int(s.shape[0]),
            "score": s, "labeled": R, "oof_resid": np.where(R, y - f_oof, np.nan)}


def _wvar(v, w) -> float:
    m = float(np.sum(w * v) / np.sum(w))
    return float(np.sum(w * (v - m) ** 2) / np.sum(w))


# --------------------------------------------------------------------------- active labelling


def residual_scale(score, residual, labeled, *, n_bins: int = 10) -> np.ndarray:
    """u(s) = √E[r² | s] for every row, from the labelled rows' residuals r in quantile bins of the score.

    Small bins are shrunk towards the overall mean square (5 pseudo-rows), so
    one odd label cannot dominate its bin.
    """
    score = np.asarray(score, dtype=float)
    R = np.asarray(labeled, dtype=bool)
    r2 = np.asarray(residual, dtype=float)[R] ** 2
    sl = score[R]
    inner = np.unique(np.quantile(sl, np.linspace(0, 1, n_bins + 1)))[1:-1]
    bins_l = np.searchsorted(inner, sl, side="right")
    nb = inner.size + 1
    counts = np.bincount(bins_l, minlength=nb)
    sums = np.bincount(bins_l, weights=r2, minlength=nb)
    msq = (sums + 5 * float(r2.mean())) / (counts + 5)
    return np.sqrt(msq[np.searchsorted(inner, score, side="right")])


def active_label_probabilities(scale, *, budget: int, candidates, mix: float = 0.2) -> np.ndarray:
    """Labelling probabilities proportional to the residual scale u, scaled to the budget.

    π(u) = min(1, κ·[(1 − mix)·u/ū + mix]), ū the candidates' mean scale and κ
    set (by bisection) so that the candidates' probabilities sum to the
    budget B. Returned for every row: the candidates' probabilities, and for
    the other rows the probability they would have had (needed to compute
    every row's overall labelling probability). ``mix`` > 0 keeps every row
    reachable (π ≥ κ·mix), which the 1/π weights need.
    """
    u = np.asarray(scale, dtype=float)
    cand = np.asarray(candidates, dtype=bool)
    Nc = int(cand.sum())
    if not 0 < mix <= 1:
        raise ValueError("mix must lie in (0, 1]")
    if Nc == 0:
        raise ValueError("there are no unlabelled rows to label")
    if not 0 < budget <= Nc:
        raise ValueError(f"the budget must lie between 1 and the number of unlabelled rows ({Nc})")
    shape = (1 - mix) * u / u[cand].mean() + mix

    def total(kappa: float) -> float:
        return float(np.minimum(1.0, kappa * shape[cand]).sum())

    lo, hi = 0.0, 1.0 / shape[cand].min()  # at hi every candidate has probability 1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if total(mid) < budget else (lo, mid)
    return np.minimum(1.0, hi * shape)


def active_labeling_plan(data, *, judge: str, label: str, budget: int, label_prob: str | None = None,
                         cluster: str | None = None, covariates: Sequence[str] | None = None, mix: float = 0.2,
                         n_folds: int = 5, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """The input table plus ``label_prob`` and ``to_label`` columns for a second, active labelling round.

    Each unlabelled row is drawn with probability π_active (see
    `active_label_probabilities`). ``label_prob`` is every row's overall
    probability of being labelled across both rounds, π₀ + (1 − π₀)·π_active
    (π₀ the pilot's probability: ``label_prob`` if given, else n/N), which is
    what `judge_means` needs once the new labels are in. Also returns a
    summary: the expected variance of the residual term relative to drawing
    the same number of rows uniformly. The caller's table is not modified.
    """
    df = read_table(data)
    pilot = _pilot(df, judge=judge, label=label, label_prob=label_prob, cluster=cluster, covariates=covariates,
                   method="calibrated", n_folds=n_folds, seed=seed)
    R = pilot["labeled"]
    u = residual_scale(pilot["score"], pilot["oof_resid"], R)
    try:
        pi_active = active_label_probabilities(u, budget=budget, candidates=~R, mix=mix)
    except ValueError as exc:
        raise DataError(f"{source_of(df)}: {exc}") from None
    pi0 = (np.full(R.shape[0], R.mean()) if label_prob is None else
           numeric_column(df, label_prob, lower=0.0, lower_open=True, upper=1.0, what="a probability"))
    draw = np.random.default_rng([seed, 0xAC7]).random(R.shape[0]) < pi_active  # a stream of its own
    out = df.copy()
    out.attrs = {}
    out["label_prob"] = np.minimum(1.0, pi0 + (1 - pi0) * pi_active)
    out["to_label"] = (draw & ~R).astype(int)
    cand = ~R
    u2 = u[cand] ** 2
    ratio = float(np.mean(u2 / pi_active[cand]) / np.mean(u2 / (budget / cand.sum())))
    summary = {"budget": int(budget), "drawn": int(out["to_label"].sum()), "candidates": int(cand.sum()),
               "min_prob": float(pi_active[cand].min()), "max_prob": float(pi_active[cand].max()),
               "variance_ratio_vs_uniform": ratio}
    return out, summary
