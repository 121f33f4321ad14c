"""If the logged propensities were wrong, how far could a router's value move?

For each target policy π, the self-normalised (SNIPS) quality value
Σ wᵢyᵢ/Σ wᵢ with wᵢ = π(aᵢ|xᵢ)/μᵢ is bounded over every set of true logging
probabilities whose odds differ from the logged μᵢ by a factor up to Γ (the
marginal sensitivity model, `core.msm`). The conclusion checked is the
comparison with the logging router's own mean quality (on-policy, so free of
this error); the breaking Γ is where the bound first reaches it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.estimate import Estimate
from ..core.msm import breaking_gamma, gamma_curve, msm_hajek_bounds
from .logs import RoutingLog
from .policies import parse_policy, policy_matrix


@dataclass
class PolicyBounds:
    label: str
    nominal: float
    lower: float
    upper: float
    logging_value: float
    breaking_gamma: float
    gammas: np.ndarray
    curve_lower: np.ndarray
    curve_upper: np.ndarray


def msm_policy_bounds(log: RoutingLog, policies: Sequence[str], propensity: np.ndarray, gamma: float,
                      *, quality: np.ndarray | None = None) -> list[PolicyBounds]:
    """MSM bounds on each policy's quality at ``gamma``, with the curve over Γ and the breaking Γ."""
    u = log.reward if quality is None else quality
    logging_value = float(np.mean(u))
    out = []
    for spec in (parse_policy(p) for p in policies):
        pi = policy_matrix(spec, log)
        agree = pi[np.arange(pi.shape[0]), log.action]
        nominal = msm_hajek_bounds(u, propensity, 1.0, scale=agree)[0]
        lo, hi = msm_hajek_bounds(u, propensity, gamma, scale=agree)
        flip = breaking_gamma(u, propensity, logging_value, scale=agree, gamma_max=50.0)
        top = max(3.0, 1.5 * gamma, min(1.3 * flip, 10.0) if np.isfinite(flip) else 3.0)
        grid = np.exp(np.linspace(0.0, np.log(top), 40))
        c_lo, c_hi = gamma_curve(u, propensity, grid, scale=agree)
        out.append(PolicyBounds(spec.label, nominal, lo, hi, logging_value, flip, grid, c_lo, c_hi))
    return out


def bound_estimates(bounds: Sequence[PolicyBounds], gamma: float, level: float, n: int) -> list[Estimate]:
    """Two rows per policy (lower and upper quality bound at Γ), with the breaking Γ in the diagnostics."""
    nan = float("nan")
    rows = []
    for b in bounds:
        diag = {"gamma": gamma, "snips_value": b.nominal, "logging_value": b.logging_value,
                "breaking_gamma": b.breaking_gamma if np.isfinite(b.breaking_gamma) else None}
        for side, value in (("lower", b.lower), ("upper", b.upper)):
            rows.append(Estimate(b.label, f"quality {side} bound (Γ={gamma:g})", "msm", value, nan, nan, nan,
                                 level, n, diag))
    return rows


def bound_notes(bounds: Sequence[PolicyBounds], gamma: float) -> list[str]:
    notes = []
    for b in bounds:
        side = "above" if b.nominal > b.logging_value else "below"
        flip = (f"flips at Γ = {b.breaking_gamma:.3g}" if np.isfinite(b.breaking_gamma)
                else "holds for every Γ up to 50")
        notes.append(f"{b.label}: if the logged propensities were off by up to {gamma:g}x in odds, its quality lies in "
                     f"[{b.lower:.4g}, {b.upper:.4g}] (SNIPS {b.nominal:.4g}); the conclusion that it is {side} the "
                     f"logging router's {b.logging_value:.4g} {flip}")
    return notes


def bound_sections(bounds: Sequence[PolicyBounds]):
    from ..report import ReportSection
    from ..report.trust_plots import bound_against_gamma

    out = []
    for b in bounds:
        fig = bound_against_gamma(b.gammas, b.curve_lower, b.curve_upper, reference=b.logging_value,
                                  reference_label="logging router's mean quality",
                                  flip=b.breaking_gamma if np.isfinite(b.breaking_gamma) else None,
                                  ylabel="quality", title=f"{b.label}: quality bounds against Γ")
        out.append(ReportSection(f"Sensitivity to the logged propensities: {b.label}", figure=fig,
                                 text="The band holds the policy's SNIPS quality for every set of true logging "
                                      "probabilities whose odds differ from the logged ones by a factor up to Γ "
                                      "(marginal sensitivity model, Tan 2006); the red line marks the Γ at which "
                                      "the comparison with the logging router flips."))
    return out
