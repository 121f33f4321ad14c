"""Sensitivity to unmeasured confounding: omitted-variable-bias bounds for DML estimators.

For an estimand that is a linear functional of the regression (the ATE, ATT
and partially linear effect all are), the bias from omitting a confounder U
is bounded by (Chernozhukov, Cinelli, Newey, Sharma & Syrgkanis 2022):

    |θ_short − θ_long| ≤ |ρ| · √(cf_y · cf_d / (1 − cf_d)) · S,   S² = σ²ν²,

where σ² = E[(Y − g(W))²] is the residual outcome variance, ν² = E[α²] the
variance of the Riesz representer α (for the ATE, α = A/e − (1−A)/(1−e)),
cf_y the share of residual outcome variation U would explain, cf_d the
relative gain in the Riesz representer's variation U would bring, and ρ ∈
[−1, 1] the correlation of the two gaps (adversarial at |ρ| = 1).

The robustness value RV is the common strength cf_y = cf_d at which the
bound reaches the null (0 by default); RVa is the strength at which the
confidence bound reaches it. Both are shares: "a confounder explaining RV of
the residual variation of both the outcome and the treatment would explain
the effect away".

Reference: arXiv 2112.13398 ("Long story short: omitted variable bias in
causal machine learning"). Reference implementation: DoubleML
`sensitivity_analysis(cf_y, cf_d, rho)`, which `ovb_bounds` reproduces.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .inference import influence_se


def ate_riesz_terms(y, a, mu0, mu1, e, estimand: str = "ate") -> tuple[np.ndarray, np.ndarray]:
    """Per-row terms whose means estimate σ² and ν² for the AIPW ATE or ATT.

    σ²: (Y − μ̂_A(X))². ν²: 2·m(W; α) − α², with α the Riesz representer
    (ATE: A/e − (1−A)/(1−e); ATT: A/p − (1−A)e/(p(1−e))).
    """
    y = np.asarray(y, dtype=float)
    a = np.asarray(a, dtype=float)
    sigma2_terms = (y - a * mu1 - (1 - a) * mu0) ** 2
    if estimand == "ate":
        m_alpha = 1.0 / e + 1.0 / (1.0 - e)
        rr = a / e - (1 - a) / (1 - e)
    elif estimand == "att":
        p = a.mean()
        m_alpha = a / (p * p * (1.0 - e))
        rr = a / p - (1 - a) * e / (p * (1 - e))
    else:
        raise ValueError(f"unknown estimand {estimand!r}")
    return sigma2_terms, 2.0 * m_alpha - rr * rr


def plr_riesz_terms(y_res, d_res, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """σ² and ν² terms for the partially linear model: (Ỹ − θṼ)², and 2/E[Ṽ²] − (Ṽ/E[Ṽ²])²."""
    vv = float(np.mean(d_res * d_res))
    rr = d_res / vv
    return (y_res - theta * d_res) ** 2, 2.0 / vv - rr * rr


def ovb_bounds(theta: float, psi: np.ndarray, sigma2_terms: np.ndarray, nu2_terms: np.ndarray, *,
               cf_y: float, cf_d: float, rho: float = 1.0, level: float = 0.95, cluster=None) -> dict:
    """Bounds on θ under confounding of strength (cf_y, cf_d, ρ), with confidence bounds.

    Returns ``theta_lower``, ``theta_upper`` (the bias bounds), ``se_lower``,
    ``se_upper`` and ``ci_lower``, ``ci_upper``: each end moved outwards by
    the one-sided ``level`` quantile of its own standard error, as DoubleML does.
    """
    _check_strengths(cf_y, cf_d, rho)
    strength = abs(rho) * np.sqrt(cf_y * cf_d / (1.0 - cf_d))
    s, psi_s = _max_bias(sigma2_terms, nu2_terms)
    lower, upper = theta - strength * s, theta + strength * s
    se_l, df = influence_se(psi - strength * psi_s, cluster)
    se_u, _ = influence_se(psi + strength * psi_s, cluster)
    q = float(stats.norm.ppf(level) if df is None else stats.t.ppf(level, df))
    return {"cf_y": float(cf_y), "cf_d": float(cf_d), "rho": float(rho), "theta_lower": float(lower),
            "theta_upper": float(upper), "se_lower": float(se_l), "se_upper": float(se_u),
            "ci_lower": float(lower - q * se_l), "ci_upper": float(upper + q * se_u), "max_bias": float(s)}


def robustness_values(theta: float, psi: np.ndarray, sigma2_terms: np.ndarray, nu2_terms: np.ndarray, *,
                      null: float = 0.0, rho: float = 1.0, level: float = 0.95, cluster=None) -> tuple[float, float]:
    """(RV, RVa): the confounding strength cf_y = cf_d that moves the bound, or the confidence bound, to ``null``.

    RV has the closed form c = (−a² + √(a⁴ + 4a²))/2 with a = |θ − null|/(|ρ|S).
    RVa is found by bisection; it is 0 when the interval already contains ``null``.
    """
    s, _ = _max_bias(sigma2_terms, nu2_terms)
    if not np.isfinite(s) or s <= 0 or rho == 0:
        return float("nan"), float("nan")
    a = abs(theta - null) / (abs(rho) * s)
    rv = (-a * a + np.sqrt(a**4 + 4 * a * a)) / 2.0
    side = "ci_lower" if theta > null else "ci_upper"

    def gap(c: float) -> float:
        b = ovb_bounds(theta, psi, sigma2_terms, nu2_terms, cf_y=c, cf_d=c, rho=rho, level=level, cluster=cluster)
        return (b[side] - null) * (1 if theta > null else -1)

    if gap(0.0) <= 0:
        return float(rv), 0.0
    lo, hi = 0.0, 1.0 - 1e-9
    if gap(hi) > 0:
        return float(rv), 1.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gap(mid) > 0 else (lo, mid)
    return float(rv), float((lo + hi) / 2)


def sensitivity_summary(theta: float, psi: np.ndarray, sigma2_terms: np.ndarray, nu2_terms: np.ndarray, *,
                        cf: float = 0.03, rho: float = 1.0, level: float = 0.95, cluster=None) -> dict:
    """Bounds at the scenario cf_y = cf_d = ``cf`` plus the robustness values against 0 (JSON-ready)."""
    out = ovb_bounds(theta, psi, sigma2_terms, nu2_terms, cf_y=cf, cf_d=cf, rho=rho, level=level, cluster=cluster)
    out["rv"], out["rva"] = robustness_values(theta, psi, sigma2_terms, nu2_terms, rho=rho, level=level,
                                              cluster=cluster)
    return out


def _max_bias(sigma2_terms, nu2_terms) -> tuple[float, np.ndarray]:
    sigma2 = float(np.mean(sigma2_terms))
    nu2 = float(np.mean(nu2_terms))
    if sigma2 <= 0 or nu2 <= 0:
        return float("nan"), np.full(np.shape(sigma2_terms), np.nan)
    s = np.sqrt(sigma2 * nu2)
    psi_s = (sigma2 * (nu2_terms - nu2) + nu2 * (sigma2_terms - sigma2)) / (2.0 * s)
    return float(s), psi_s


def _check_strengths(cf_y: float, cf_d: float, rho: float) -> None:
    if not 0 <= cf_y < 1 or not 0 <= cf_d < 1:
        raise ValueError("cf_y and cf_d must lie in [0, 1)")
    if not -1 <= rho <= 1:
        raise ValueError("rho must lie in [-1, 1]")
