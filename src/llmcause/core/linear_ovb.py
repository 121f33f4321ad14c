"""Omitted-variable bias for linear regression in the partial-R² parameterisation.

Model. The long regression Y = τD + Xβ + γZ + ε would identify the effect τ,
but the confounder Z is unobserved, so OLS fits the short regression
Y = τ_s D + Xβ_s + ε_s. With R²_{D~Z|X} (the share of the treatment's residual
variance Z explains) and R²_{Y~Z|D,X} (the share of the outcome's residual
variance it explains), Cinelli & Hazlett (2020) show

    |τ_s − τ| = se(τ_s) · √dof · √(R²_{Y~Z|D,X} · R²_{D~Z|X} / (1 − R²_{D~Z|X})),
    se(τ) = se(τ_s) · √((1 − R²_{Y~Z|D,X}) / (1 − R²_{D~Z|X})) · √(dof / (dof − 1)).

Summaries. The partial R² of the treatment with the outcome, t²/(t² + dof)
(the share of outcome variation a confounder must explain to bring the
estimate to zero if it explained all of the treatment); the robustness value
RV_q, the common strength R²_{D~Z|X} = R²_{Y~Z|D,X} that moves the estimate by
100q% of itself; RV_{q,α}, the strength at which the (1 − α) interval first
includes that value. Benchmarking: a confounder k_D (k_Y) times as strong as
an observed covariate (group) X_j, measured by its partial R² with the
treatment (with the outcome), has the strengths of `benchmark_strengths`.

Assumptions. Homoskedastic linear model (classical OLS standard errors), a
single unobserved confounder (or a linear combination), and for benchmarks
that Z is orthogonal to the observed covariates.

Reference. Cinelli, C. & Hazlett, C. (2020), "Making sense of sensitivity:
extending omitted variable bias", JRSS-B 82(1), 39-67, equations (4), (11),
(18), (19) and Theorem 4. Reference implementation: R/Python `sensemakr`.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy import stats


def partial_r2_from_rss(rss_without: float, rss_with: float) -> float:
    """Partial R² of a regressor (group): the share of the remaining residual variation it explains."""
    if rss_without <= 0:
        return 0.0
    return float(max(0.0, (rss_without - rss_with) / rss_without))


def residualise(X: np.ndarray, *columns: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Residuals of each column on X (one least-squares factorisation for all) and X's rank."""
    coef, _, rank, _ = np.linalg.lstsq(X, np.column_stack(columns), rcond=None)
    resid = np.column_stack(columns) - X @ coef
    return [resid[:, j] for j in range(resid.shape[1])], int(rank)


def fwl_fit(y_res: np.ndarray, d_res: np.ndarray) -> tuple[float, float, float]:
    """τ̂ = ⟨d̃, ỹ⟩/⟨d̃, d̃⟩ from residualised columns, the RSS of the long fit and ⟨d̃, d̃⟩."""
    ss_d = float(d_res @ d_res)
    tau = float(d_res @ y_res) / ss_d if ss_d > 0 else 0.0
    resid = y_res - tau * d_res
    return tau, float(resid @ resid), ss_d


def treatment_fit(y, d, X) -> dict:
    """OLS of ``y`` on ``d`` and ``X`` (``X`` must contain the intercept): τ̂, its classical SE, t and dof.

    Uses the Frisch-Waugh-Lovell form: τ̂ = ⟨d̃, ỹ⟩/⟨d̃, d̃⟩ with d̃, ỹ residualised on X.
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(d, dtype=float)
    X = np.asarray(X, dtype=float)
    (y_res, d_res), rank_x = residualise(X, y, d)
    tau, rss, ss_d = fwl_fit(y_res, d_res)
    if ss_d <= 1e-12 * max(1.0, float(d @ d)):
        raise ValueError("the treatment is a linear combination of the covariates (no variation left)")
    dof = y.shape[0] - rank_x - 1
    if dof < 2:
        raise ValueError(f"only {dof} residual degrees of freedom; need more rows than regressors")
    se = float(np.sqrt(rss / dof / ss_d))
    return {"estimate": tau, "se": se, "t": tau / se if se > 0 else float("inf"), "dof": int(dof), "rss": rss,
            "rss_d": ss_d}


def partial_r2_of_t(t: float, dof: int) -> float:
    """R²_{Y~D|X} = t² / (t² + dof)."""
    return float(t * t / (t * t + dof))


def robustness_value(t: float, dof: int, *, q: float = 1.0, alpha: float | None = None) -> float:
    """RV_q (``alpha`` None) or RV_{q,α}: Cinelli & Hazlett (2020), equations (18)-(19) and their footnote.

    With f_q = q|t|/√dof and f* = |t_{α/2, dof−1}|/√(dof−1): RV_q = ½(√(f⁴ + 4f²) − f²) at f = f_q;
    RV_{q,α} uses f = f_q − f* (0 when negative), and (f_q² − f*²)/(1 + f_q²) when f_q > 1/f*
    (the bound on R²_{Y~Z|D,X} ≤ 1 binds).
    """
    fq = q * abs(t) / np.sqrt(dof)
    if alpha is None:
        return float(0.5 * (np.sqrt(fq**4 + 4 * fq**2) - fq**2))
    f_crit = abs(stats.t.ppf(alpha / 2, dof - 1)) / np.sqrt(dof - 1)
    f = fq - f_crit
    if f <= 0:
        return 0.0
    if fq > 1 / f_crit:
        return float((fq**2 - f_crit**2) / (1 + fq**2))
    return float(0.5 * (np.sqrt(f**4 + 4 * f**2) - f**2))


def bias(se: float, dof: int, r2dz_x, r2yz_dx):
    """|τ_s − τ| for confounding of strengths (R²_{D~Z|X}, R²_{Y~Z|D,X}); arrays broadcast."""
    r2dz_x = np.asarray(r2dz_x, dtype=float)
    r2yz_dx = np.asarray(r2yz_dx, dtype=float)
    return se * np.sqrt(dof) * np.sqrt(r2yz_dx * r2dz_x / (1.0 - r2dz_x))


def adjusted_estimate(estimate: float, se: float, dof: int, r2dz_x, r2yz_dx, *, reduce: bool = True):
    """The estimate moved towards zero (``reduce``) or away from it by the bias."""
    b = bias(se, dof, r2dz_x, r2yz_dx)
    sign = np.sign(estimate) if estimate != 0 else 1.0
    return sign * (abs(estimate) - b) if reduce else sign * (abs(estimate) + b)


def adjusted_se(se: float, dof: int, r2dz_x, r2yz_dx):
    """SE of the long regression's τ̂ (one more regressor: dof − 1)."""
    r2dz_x = np.asarray(r2dz_x, dtype=float)
    r2yz_dx = np.asarray(r2yz_dx, dtype=float)
    return se * np.sqrt((1.0 - r2yz_dx) / (1.0 - r2dz_x)) * np.sqrt(dof / (dof - 1))


def benchmark_strengths(r2dxj_x: float, r2yxj_dx: float, kd: float, ky: float | None = None) -> tuple[float, float]:
    """(R²_{D~Z|X}, R²_{Y~Z|D,X}) of a confounder kd (ky) times as strong as a benchmark covariate.

    r2dxj_x: partial R² of X_j with the treatment given the other covariates;
    r2yxj_dx: partial R² of X_j with the outcome given the treatment and the
    other covariates (Cinelli & Hazlett 2020, Theorem 4). Raises ValueError
    when kd is impossibly large for this benchmark. R²_{Y~Z|D,X} is not capped
    at 1 here (the caller decides what to do with an impossible strength).
    """
    ky = kd if ky is None else ky
    if r2dxj_x >= 1 or r2yxj_dx >= 1:
        raise ValueError("a benchmark covariate explains all of the treatment or outcome")
    r2dz_x = kd * r2dxj_x / (1.0 - r2dxj_x)
    r2zxj_xd = kd * r2dxj_x**2 / ((1.0 - kd * r2dxj_x) * (1.0 - r2dxj_x))
    if r2dz_x >= 1 or not 0 <= r2zxj_xd < 1:
        raise ValueError(f"a confounder {kd:g} times as strong as this benchmark would explain all of the treatment; "
                         "use a smaller multiple")
    r2yz_dx = ((np.sqrt(ky) + np.sqrt(r2zxj_xd)) / np.sqrt(1.0 - r2zxj_xd)) ** 2 * r2yxj_dx / (1.0 - r2yxj_dx)
    return float(r2dz_x), float(r2yz_dx)


def linear_sensitivity(y, d, X, *, benchmarks: Mapping[str, Sequence[int]] | None = None,
                       kd: Sequence[float] = (1, 2, 3), q: float = 1.0, alpha: float = 0.05) -> dict:
    """The sensemakr analysis of the OLS coefficient of ``d`` (``X`` includes the intercept).

    ``benchmarks`` maps a name to the column indices of ``X`` it covers (one
    covariate, or every dummy of a categorical). Returns a dict with the fit
    (estimate, se, t, dof), ``partial_r2``, ``rv``, ``rv_alpha`` and
    ``bounds``: one dict per benchmark and multiple with the strengths, the
    adjusted estimate, SE and (1 − α) interval (t with dof − 1).
    """
    y = np.asarray(y, dtype=float)
    d = np.asarray(d, dtype=float)
    X = np.asarray(X, dtype=float)
    fit = treatment_fit(y, d, X)
    est, se, dof = fit["estimate"], fit["se"], fit["dof"]
    out = {**fit, "partial_r2": partial_r2_of_t(fit["t"], dof), "rv": robustness_value(fit["t"], dof, q=q),
           "rv_alpha": robustness_value(fit["t"], dof, q=q, alpha=alpha), "q": q, "alpha": alpha, "bounds": []}
    crit = float(stats.t.ppf(1 - alpha / 2, dof - 1))
    for name, cols in (benchmarks or {}).items():
        keep = np.setdiff1d(np.arange(X.shape[1]), np.asarray(cols, dtype=int))
        (y_short, d_short), _ = residualise(X[:, keep], y, d)
        _, rss_y_short, rss_d_short = fwl_fit(y_short, d_short)
        r2dxj_x = partial_r2_from_rss(rss_d_short, fit["rss_d"])
        r2yxj_dx = partial_r2_from_rss(rss_y_short, fit["rss"])
        for k in kd:
            r2dz, r2yz = benchmark_strengths(r2dxj_x, r2yxj_dx, k)
            capped = r2yz > 1.0
            r2yz = min(r2yz, 1.0)  # as sensemakr: the confounder explains all the outcome's residual variance
            adj = float(adjusted_estimate(est, se, dof, r2dz, r2yz))
            adj_se = float(adjusted_se(se, dof, r2dz, r2yz))
            out["bounds"].append({"benchmark": name, "k": float(k), "r2dxj_x": r2dxj_x, "r2yxj_dx": r2yxj_dx,
                                  "r2dz_x": r2dz, "r2yz_dx": r2yz, "estimate": adj, "se": adj_se,
                                  "ci_low": adj - crit * adj_se, "ci_high": adj + crit * adj_se,
                                  "r2yz_dx_capped": bool(capped)})
    return out


def adjusted_estimate_grid(estimate: float, se: float, dof: int, lim: float = 0.4, size: int = 101):
    """Adjusted estimates over a grid of the two partial R² in [0, lim) (for the contour plot)."""
    r2d = np.linspace(0.0, lim, size)
    r2y = np.linspace(0.0, lim, size)
    D, Yg = np.meshgrid(r2d, r2y)
    return r2d, r2y, adjusted_estimate(estimate, se, dof, D, Yg)
