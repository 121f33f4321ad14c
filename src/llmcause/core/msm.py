"""Bounds on inverse-propensity-weighted values under the marginal sensitivity model.

Model (Tan 2006). The propensity used for weighting, e(x) (for off-policy
evaluation the logging probability μ(a|x) of the logged action), may differ
from the true one e*(x, u), which may depend on unobserved u, by an odds
ratio of at most Γ ≥ 1:  1/Γ ≤ [e*/(1 − e*)] / [e/(1 − e)] ≤ Γ. Then the true
inverse propensity lies in

    1/e* ∈ [1 + (1/e − 1)/Γ,  1 + (1/e − 1)·Γ].

Estimands. A weighted mean Σ wᵢ yᵢ / Σ wᵢ over the rows that carry weight
(E[Y(1)] by Hájek IPW; a target policy's value by SNIPS, wᵢ = π(aᵢ|xᵢ)/μᵢ).

Bounds. ``msm_hajek_bounds``: the extreme weighted means over all weights
in the box (the linear-fractional programme of Zhao, Small & Bhattacharya
2019, solved exactly: the maximum puts the upper weight on the largest
outcomes and the lower weight on the rest, at a threshold found in one
sorted pass). They are valid, not sharp. ``msm_sharp_bounds``: the sharp
bounds of Dorn & Guo (2023), which put the upper weight on outcomes above
the conditional τ = Γ/(1 + Γ) quantile of Y given x (below the 1 − τ
quantile for the lower bound); the caller supplies those quantiles
(estimated, e.g. by quantile regression, among the weighted rows).

Assumptions. Γ bounds the error of every propensity; overlap; for the
sharp bounds, a correct conditional quantile.

References. Tan, Z. (2006), JASA 101, 1619-1637; Zhao, Q., Small, D. &
Bhattacharya, B. (2019), JRSS-B 81, 735-761; Dorn, J. & Guo, K. (2023),
"Sharp sensitivity analysis for inverse propensity weighting via quantile
balancing", JASA 118, 2645-2657.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def msm_weight_box(propensity, gamma: float, scale=None) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper inverse-propensity weights under Γ (times ``scale``, e.g. π(aᵢ|xᵢ))."""
    if not gamma >= 1:
        raise ValueError("gamma must be at least 1")
    e = np.asarray(propensity, dtype=float)
    if not np.all((e > 0) & (e <= 1)):
        raise ValueError("propensities must lie in (0, 1]")
    odds = 1.0 / e - 1.0
    lo, hi = 1.0 + odds / gamma, 1.0 + odds * gamma
    if scale is not None:
        s = np.asarray(scale, dtype=float)
        lo, hi = lo * s, hi * s
    return lo, hi


def extreme_weighted_mean(y, w_lo, w_hi, upper: bool = True) -> float:
    """max (or min) of Σwᵢyᵢ/Σwᵢ over w_lo ≤ w ≤ w_hi, exactly, in O(n log n).

    The optimum of a linear-fractional programme over a box is at a vertex
    with weights w_hi on the k largest outcomes and w_lo on the rest (for the
    minimum: on the k smallest); every k is tried with cumulative sums.
    """
    y = np.asarray(y, dtype=float)
    w_lo = np.asarray(w_lo, dtype=float)
    w_hi = np.asarray(w_hi, dtype=float)
    keep = w_hi > 0
    y, w_lo, w_hi = y[keep], w_lo[keep], w_hi[keep]
    if y.size == 0:
        return float("nan")
    order = np.argsort(-y if upper else y, kind="stable")
    y, w_lo, w_hi = y[order], w_lo[order], w_hi[order]
    # k rows (in this order) at w_hi, the rest at w_lo, for k = 0..n
    num = np.concatenate([[0.0], np.cumsum(w_hi * y)]) + np.concatenate([np.cumsum((w_lo * y)[::-1])[::-1], [0.0]])
    den = np.concatenate([[0.0], np.cumsum(w_hi)]) + np.concatenate([np.cumsum(w_lo[::-1])[::-1], [0.0]])
    ok = den > 0
    values = num[ok] / den[ok]
    return float(values.max() if upper else values.min())


def msm_hajek_bounds(y, propensity, gamma: float, scale=None) -> tuple[float, float]:
    """(lower, upper) of the Hájek-weighted mean of ``y`` when each propensity is off by up to Γ in odds.

    ``y`` and ``propensity`` are for the rows that carry weight (e.g. the
    treated rows for E[Y(1)], with e(x) their propensity; or every logged row,
    with μ(aᵢ|xᵢ) and ``scale`` = π(aᵢ|xᵢ) for a target policy's value).
    At Γ = 1 both equal the nominal Hájek estimate.
    """
    lo, hi = msm_weight_box(propensity, gamma, scale)
    return extreme_weighted_mean(y, lo, hi, upper=False), extreme_weighted_mean(y, lo, hi, upper=True)


def msm_ate_bounds(y, a, propensity, gamma: float) -> tuple[float, float]:
    """Bounds on the Hájek IPW ATE: E[Y(1)] and E[Y(0)] bounded separately (1 − e for the controls)."""
    y = np.asarray(y, dtype=float)
    a = np.asarray(a, dtype=float)
    e = np.asarray(propensity, dtype=float)
    t, c = a == 1, a == 0
    lo1, hi1 = msm_hajek_bounds(y[t], e[t], gamma)
    lo0, hi0 = msm_hajek_bounds(y[c], 1.0 - e[c], gamma)
    return lo1 - hi0, hi1 - lo0


def msm_sharp_bounds(y, propensity, gamma: float, q_low, q_high, scale=None) -> tuple[float, float]:
    """Sharp bounds (Dorn & Guo 2023) of E[w* y]/E[w*] for the weighted rows, given conditional quantiles.

    ``q_high`` is each row's conditional τ-quantile of Y given x (τ = Γ/(1+Γ)),
    ``q_low`` its (1 − τ)-quantile. The upper bound weights rows with
    y ≥ q_high at the upper end of the box, the rest at the lower end; the
    lower bound mirrors it. With correct quantiles these weights balance,
    so the bounds are sharp; they lie inside `msm_hajek_bounds`.
    """
    y = np.asarray(y, dtype=float)
    lo, hi = msm_weight_box(propensity, gamma, scale)
    w_up = np.where(y >= np.asarray(q_high, dtype=float), hi, lo)
    w_dn = np.where(y <= np.asarray(q_low, dtype=float), hi, lo)
    return float(np.sum(w_dn * y) / np.sum(w_dn)), float(np.sum(w_up * y) / np.sum(w_up))


def gamma_curve(y, propensity, gammas: Sequence[float], scale=None) -> tuple[np.ndarray, np.ndarray]:
    """Hájek MSM bounds at each Γ of ``gammas`` (for plots)."""
    out = np.array([msm_hajek_bounds(y, propensity, g, scale) for g in gammas])
    return out[:, 0], out[:, 1]


def breaking_gamma(y, propensity, threshold: float, *, scale=None, gamma_max: float = 100.0,
                   tol: float = 1e-4) -> float:
    """The smallest Γ at which the bounds reach ``threshold`` (the conclusion "value vs threshold" flips).

    The conclusion is the side of ``threshold`` the nominal (Γ = 1) estimate
    lies on. Returns 1.0 when the estimate equals the threshold, and inf when
    even ``gamma_max`` does not reach it. The bounds
    widen monotonically in Γ, so bisection on log Γ finds it.
    """
    lo, hi = msm_hajek_bounds(y, propensity, 1.0, scale)
    above = lo > threshold
    if not above and not hi < threshold:
        return 1.0

    def reached(g: float) -> bool:
        b_lo, b_hi = msm_hajek_bounds(y, propensity, g, scale)
        return b_lo <= threshold if above else b_hi >= threshold

    if not reached(gamma_max):
        return float("inf")
    a, b = 0.0, float(np.log(gamma_max))
    while b - a > tol:
        m = (a + b) / 2
        a, b = (a, m) if reached(float(np.exp(m))) else (m, b)
    return float(np.exp(b))
