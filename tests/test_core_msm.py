"""Marginal sensitivity model bounds: the exact sorted solution equals a direct linear programme, the bounds nest
in Γ, the sharp bounds lie inside, and the breaking Γ is where the bound crosses."""

import numpy as np
import pytest
from scipy.optimize import linprog

from llmcause.core.msm import breaking_gamma, extreme_weighted_mean, msm_ate_bounds, msm_hajek_bounds, \
    msm_sharp_bounds, msm_weight_box


def _lp_extreme(y, lo, hi, upper):
    """Charnes-Cooper: v = t·w, max/min Σvᵢyᵢ s.t. Σv = 1, lo·t ≤ v ≤ hi·t, t ≥ 0."""
    n = y.size
    c = np.concatenate([-y if upper else y, [0.0]])
    A_eq = np.concatenate([np.ones(n), [0.0]])[None, :]
    A_ub = np.vstack([np.hstack([np.eye(n), -hi[:, None]]), np.hstack([-np.eye(n), lo[:, None]])])
    res = linprog(c, A_ub=A_ub, b_ub=np.zeros(2 * n), A_eq=A_eq, b_eq=[1.0],
                  bounds=[(0, None)] * (n + 1), method="highs")
    assert res.status == 0
    return float(-res.fun if upper else res.fun)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("gamma", [1.0, 1.3, 2.0, 5.0])
def test_sorted_solution_equals_linear_programme(seed, gamma):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 25))
    y = rng.normal(size=n) if seed % 2 else rng.binomial(1, 0.4, size=n).astype(float)
    e = rng.uniform(0.05, 0.95, size=n)
    scale = rng.uniform(0.0, 1.0, size=n) if seed % 3 == 0 else None
    lo, hi = msm_weight_box(e, gamma, scale)
    keep = hi > 0
    for upper in (False, True):
        assert extreme_weighted_mean(y, lo, hi, upper) == pytest.approx(
            _lp_extreme(y[keep], lo[keep], hi[keep], upper), abs=1e-8)


def test_gamma_one_is_the_hajek_estimate_and_bounds_nest():
    rng = np.random.default_rng(1)
    y, e = rng.normal(size=200), rng.uniform(0.1, 0.9, size=200)
    hajek = np.sum(y / e) / np.sum(1 / e)
    lo, hi = msm_hajek_bounds(y, e, 1.0)
    assert lo == pytest.approx(hajek) and hi == pytest.approx(hajek)
    prev = (lo, hi)
    for g in (1.2, 1.5, 2, 4):
        b = msm_hajek_bounds(y, e, g)
        assert b[0] <= prev[0] + 1e-12 and b[1] >= prev[1] - 1e-12
        prev = b


def test_ate_bounds_cover_the_truth_under_a_hidden_confounder():
    # Propensity depends on an unobserved u; the nominal (x-only) propensity is off by a bounded odds ratio.
    rng = np.random.default_rng(3)
    n = 20000
    x, u = rng.normal(size=n), rng.binomial(1, 0.5, size=n)
    logit_x = 0.5 * x
    gamma_true = 2.0
    e_true = 1 / (1 + np.exp(-(logit_x + np.log(gamma_true) * (u - 0.5))))
    a = rng.binomial(1, e_true)
    y = 1.0 * a + x + 1.5 * u + rng.normal(size=n)
    e_nominal = 1 / (1 + np.exp(-logit_x))  # odds ratio to the truth within [1/√2·..., ] ⊂ [1/Γ, Γ]
    naive_lo, naive_hi = msm_ate_bounds(y, a, e_nominal, 1.0)
    assert naive_lo > 1.2  # hidden u biases the nominal IPW estimate upwards
    lo, hi = msm_ate_bounds(y, a, e_nominal, gamma_true)
    assert lo < 1.0 < hi


def test_sharp_bounds_lie_inside_and_match_at_gamma_one():
    rng = np.random.default_rng(4)
    n = 4000
    x = rng.binomial(1, 0.5, size=n)  # discrete x: conditional quantiles are exact within cells
    y = x + rng.normal(size=n)
    e = np.where(x == 1, 0.3, 0.6)
    gamma = 2.0
    tau = gamma / (1 + gamma)
    q_hi = np.array([np.quantile(y[x == v], tau) for v in (0, 1)])[x]
    q_lo = np.array([np.quantile(y[x == v], 1 - tau) for v in (0, 1)])[x]
    s_lo, s_hi = msm_sharp_bounds(y, e, gamma, q_lo, q_hi)
    h_lo, h_hi = msm_hajek_bounds(y, e, gamma)
    assert h_lo <= s_lo < s_hi <= h_hi
    one = msm_sharp_bounds(y, e, 1.0, q_lo, q_hi)
    assert one[0] == pytest.approx(np.sum(y / e) / np.sum(1 / e)) and one[1] == pytest.approx(one[0])


def test_breaking_gamma_is_where_the_bound_crosses():
    rng = np.random.default_rng(5)
    y, e = rng.normal(0.3, 1, size=500), rng.uniform(0.2, 0.8, size=500)
    g = breaking_gamma(y, e, 0.0)
    assert 1 < g < 100
    assert msm_hajek_bounds(y, e, g * 1.001)[0] <= 0.0 < msm_hajek_bounds(y, e, g * 0.999)[0]
    g_up = breaking_gamma(y, e, 0.8)  # the estimate is below 0.8: the upper bound must rise to it
    assert msm_hajek_bounds(y, e, g_up * 1.001)[1] >= 0.8 > msm_hajek_bounds(y, e, g_up * 0.999)[1]
    nominal = msm_hajek_bounds(y, e, 1.0)[0]
    assert breaking_gamma(y, e, nominal) == 1.0  # on the threshold: no conclusion to flip
    assert breaking_gamma(y, e, -50.0) == float("inf")  # below every outcome: never reached


def test_bad_gamma():
    with pytest.raises(ValueError, match="at least 1"):
        msm_weight_box([0.5], 0.5)
