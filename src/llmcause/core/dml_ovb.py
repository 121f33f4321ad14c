"""The sensemakr workflow for double machine learning: the partially linear model's effect,
its robustness values and bounds for confounders as strong as observed covariates.

Estimand and model. θ in Y = θD + g(X) + ε (`core.plr`). A hidden confounder
U is described by cf_y (the share of the residual outcome variation it would
explain), cf_d (the relative gain in the Riesz representer's variation) and
ρ; the bias bound is |ρ|·√(cf_y·cf_d/(1 − cf_d))·S (`core.sensitivity`).

Benchmarking. Refit the model without covariate (group) X_j on the same
folds (the "short" model) and measure what X_j adds: with R²_y = 1 − σ²/Var(Y)
and R²_α = ν²_short/ν²_long, cf_y = (R²_y,long − R²_y,short)/(1 − R²_y,long),
cf_d = (1 − R²_α)/R²_α, and ρ = Δθ/√((σ²_short − σ²_long)(ν²_long − ν²_short))
clipped to [−1, 1] (Chernozhukov, Cinelli, Newey, Sharma & Syrgkanis 2022,
section 6; DoubleML's `sensitivity_benchmark`). A confounder k times as
strong has gains k·cf_y and k·cf_d with the same ρ.

Partial R². 1 − E[(Ỹ − θṼ)²]/E[Ỹ²]: the share of the outcome's residual
variation that the treatment explains, the nonparametric analogue of the
OLS t²/(t² + dof).

Reference. arXiv 2112.13398. Reference implementation: DoubleML `DoubleMLPLR`
`sensitivity_analysis` and `sensitivity_benchmark`, reproduced on identical folds.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from sklearn.linear_model import Ridge

from .crossfit import crossfit_predict, fold_ids
from .plr import partially_linear_scores
from .sensitivity import ovb_bounds, plr_riesz_terms, robustness_values


def plr_fit(y, d, X, folds, outcome_model: Any = None, treatment_model: Any = None) -> dict:
    """Cross-fitted PLR on given folds: θ̂, influence values and the σ², ν² terms."""
    l_model = outcome_model if outcome_model is not None else Ridge(alpha=1.0)
    m_model = treatment_model if treatment_model is not None else Ridge(alpha=1.0)
    X = X if X.shape[1] else np.zeros((y.shape[0], 1))
    y_res = y - crossfit_predict(l_model, X, y, folds)
    d_res = d - crossfit_predict(m_model, X, d, folds)
    theta, psi, share = partially_linear_scores(y, d, y - y_res, d - d_res)
    s2, nu2 = plr_riesz_terms(y_res, d_res, theta)
    return {"theta": theta, "psi": psi, "sigma2_terms": s2, "nu2_terms": nu2, "sigma2": float(np.mean(s2)),
            "nu2": float(np.mean(nu2)), "y_res": y_res, "residual_share": share}


def gain_statistics(long: dict, short: dict, var_y: float) -> dict:
    """cf_y, cf_d, ρ and Δθ = θ_short − θ_long of an omitted covariate (DoubleML's `gain_statistics`)."""
    r2y_long = 1.0 - long["sigma2"] / var_y
    r2y_short = 1.0 - short["sigma2"] / var_y
    r2_riesz = short["nu2"] / long["nu2"]
    cf_y = float(np.clip((r2y_long - r2y_short) / (1.0 - r2y_long), 0.0, 1.0))
    cf_d = float(np.clip((1.0 - r2_riesz) / r2_riesz, 0.0, 1.0))
    delta = short["theta"] - long["theta"]
    var_g = short["sigma2"] - long["sigma2"]
    var_riesz = long["nu2"] - short["nu2"]
    denom = np.sqrt(var_g * var_riesz) if var_g > 0 and var_riesz > 0 else 0.0
    rho = float(np.sign(delta) * np.clip(abs(delta) / denom, 0.0, 1.0)) if denom > 0 else float(np.sign(delta))
    return {"cf_y": cf_y, "cf_d": cf_d, "rho": rho, "delta_theta": float(delta)}


def dml_sensitivity(y, d, X, *, benchmarks: Mapping[str, Sequence[int]] | None = None,
                    kd: Sequence[float] = (1, 2, 3), q: float = 1.0, alpha: float = 0.05, folds=None,
                    n_folds: int = 5, seed: int = 0, outcome_model: Any = None, treatment_model: Any = None,
                    cluster=None) -> dict:
    """Robustness values and benchmark bounds for the cross-fitted PLR effect of ``d``.

    RV is the strength cf_y = cf_d (ρ = 1) that moves the bound to (1 − q)θ̂;
    RV_α the strength at which the (1 − α) confidence bound reaches it. Each
    benchmark bound is the end of the identified set nearer zero, with its
    (1 − α) interval (one-sided α/2 on each side, as in the sensemakr output).
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(d, dtype=float)
    X = np.asarray(X, dtype=float)
    n = y.shape[0]
    folds = np.asarray(folds) if folds is not None else fold_ids(n, n_folds, groups=cluster, seed=seed)
    long = plr_fit(y, d, X, folds, outcome_model, treatment_model)
    theta, psi = long["theta"], long["psi"]
    level = 1.0 - alpha / 2.0
    rv, rv_alpha = robustness_values(theta, psi, long["sigma2_terms"], long["nu2_terms"], null=(1.0 - q) * theta,
                                     level=level, cluster=cluster)
    y_res = long["y_res"]
    out = {"estimate": theta, "psi": psi, "partial_r2": float(1.0 - long["sigma2"] / np.mean(y_res * y_res)),
           "rv": rv, "rv_alpha": rv_alpha, "q": q, "alpha": alpha, "sigma2": long["sigma2"], "nu2": long["nu2"],
           "residual_share": long["residual_share"], "bounds": [], "folds": folds}
    var_y = float(np.var(y))
    for name, cols in (benchmarks or {}).items():
        keep = np.setdiff1d(np.arange(X.shape[1]), np.asarray(cols, dtype=int))
        short = plr_fit(y, d, X[:, keep], folds, outcome_model, treatment_model)
        gain = gain_statistics(long, short, var_y)
        for k in kd:
            cf_y, cf_d = k * gain["cf_y"], k * gain["cf_d"]
            if cf_y >= 1 or cf_d >= 1:
                raise ValueError(f"a confounder {k:g} times as strong as {name} would explain all of the outcome or "
                                 "treatment; use a smaller multiple")
            b = ovb_bounds(theta, psi, long["sigma2_terms"], long["nu2_terms"], cf_y=cf_y, cf_d=cf_d,
                           rho=gain["rho"], level=level, cluster=cluster)
            toward_zero = "lower" if theta >= 0 else "upper"
            value = b[f"theta_{toward_zero}"]
            se = b[f"se_{toward_zero}"]
            crit = (b["theta_lower"] - b["ci_lower"]) / b["se_lower"] if b["se_lower"] > 0 else 0.0
            out["bounds"].append({"benchmark": name, "k": float(k), **{f"benchmark_{key}": v for key, v in gain.items()},
                                  **b, "estimate": value, "se": se, "ci_low": value - crit * se,
                                  "ci_high": value + crit * se})
    return out
