"""E-values: how strong an unmeasured confounder would have to be to explain an effect away.

Definition. For an observed risk ratio RR > 1, the E-value is the minimum
strength of association, on the risk-ratio scale, that an unmeasured
confounder would need with both the treatment and the outcome (conditional
on the measured covariates) to move RR to 1:

    E = RR + √(RR · (RR − 1))      (RR < 1: use 1/RR).

For a confidence interval, the E-value of the limit nearer 1 (1 when the
interval contains 1). Odds ratios are converted first: for a rare outcome
(below about 15%) RR ≈ OR; for a common one RR ≈ √OR.

Assumptions. No further bias than the single confounder described; binary
outcome. The bound is sharp without assumptions on the confounder's
distribution.

Reference. VanderWeele, T. J. & Ding, P. (2017), "Sensitivity analysis in
observational research: introducing the E-value", Annals of Internal
Medicine 167(4), 268-274, Table 2. Ding & VanderWeele (2016), Epidemiology.
"""

from __future__ import annotations

import numpy as np

from .inference import influence_se, wald_interval

RARE_OUTCOME = 0.15


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio (a point estimate or the CI limit nearer 1)."""
    if not np.isfinite(rr) or rr <= 0:
        return float("nan")
    r = rr if rr >= 1 else 1.0 / rr
    return float(r + np.sqrt(r * (r - 1.0)))


def evalue_ci(rr: float, low: float, high: float) -> float:
    """E-value of the interval's limit nearer 1; 1 when the interval contains 1."""
    if low <= 1.0 <= high:
        return 1.0
    return evalue_rr(low if rr > 1 else high)


def or_to_rr(odds_ratio: float, rare: bool) -> float:
    """The risk ratio an odds ratio stands for: OR itself for a rare outcome, √OR for a common one."""
    return float(odds_ratio if rare else np.sqrt(odds_ratio))


def evalue_or(odds_ratio: float, low: float | None = None, high: float | None = None, *,
              rare: bool) -> dict:
    """E-values of an odds ratio and its interval (converted to the risk-ratio scale)."""
    rr = or_to_rr(odds_ratio, rare)
    out = {"rr_approx": rr, "evalue": evalue_rr(rr)}
    if low is not None and high is not None:
        out["evalue_ci"] = evalue_ci(rr, or_to_rr(low, rare), or_to_rr(high, rare))
    return out


def binary_outcome_evalues(p1: float, p0: float, psi1: np.ndarray, psi0: np.ndarray, *, level: float = 0.95,
                           cluster=None) -> dict:
    """Risk and odds ratios of two (adjusted) risks with their intervals and E-values.

    ``psi1``/``psi0`` are the influence values of the estimated risks p̂₁ =
    E[Y(1)] and p̂₀ = E[Y(0)] (or the treated's versions, for the ATT); the
    intervals are Wald intervals on the log scale by the delta method.
    """
    if not (0 < p0 < 1 and 0 < p1 < 1):
        return {}
    psi_log_rr = psi1 / p1 - psi0 / p0
    psi_log_or = psi1 / (p1 * (1 - p1)) - psi0 / (p0 * (1 - p0))
    out = {"risk_treated": float(p1), "risk_control": float(p0)}
    rare = max(p0, p1) < RARE_OUTCOME
    for label, log_value, psi in (("rr", np.log(p1 / p0), psi_log_rr),
                                  ("or", np.log(p1 * (1 - p0) / (p0 * (1 - p1))), psi_log_or)):
        se, df = influence_se(psi, cluster)
        lo, hi = wald_interval(float(log_value), se, level, df)
        value, low, high = float(np.exp(log_value)), float(np.exp(lo)), float(np.exp(hi))
        out[label] = value
        out[f"{label}_ci"] = [low, high]
        if label == "rr":
            out["evalue_rr"] = evalue_rr(value)
            out["evalue_rr_ci"] = evalue_ci(value, low, high)
        else:
            conv = evalue_or(value, low, high, rare=rare)
            out["evalue_or"] = conv["evalue"]
            out["evalue_or_ci"] = conv["evalue_ci"]
            out["outcome_rare"] = bool(rare)
    return out
