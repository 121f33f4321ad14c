"""Omitted-variable-bias bounds (Chernozhukov et al. 2022) against DoubleML and by their defining equations.

DoubleML 0.11 combines `scaled_psi = psi / mean(psi_deriv)` (the negative of the
influence function when the score's derivative is −1) with the bias term, so
its standard errors for the lower and upper bound come out swapped; the point
bounds and the robustness value RV agree exactly and are what we compare.
"""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from llmcause.core.ate import aipw, default_outcome_model, default_propensity_model
from llmcause.core.crossfit import fold_ids, folds_to_splits
from llmcause.core.inference import influence_se
from llmcause.core.plr import partially_linear
from llmcause.core.sensitivity import ovb_bounds, robustness_values
from llmcause.core.simulate import confounded_world


@pytest.mark.parametrize("estimand,score", [("ate", "ATE"), ("att", "ATTE")])
def test_aipw_bounds_and_rv_equal_doubleml(estimand, score):
    dml = pytest.importorskip("doubleml")
    w = confounded_world(2000, seed=3, overlap="moderate")
    folds = fold_ids(2000, 5, seed=1)
    # DoubleML clips both ends, llmcause only the upper one for the ATT: compare the ATT with a bound
    # below every propensity.
    clip = 0.01 if estimand == "ate" else 1e-6
    ours = aipw(w.outcome, w.treatment, w.X, folds=folds, estimand=estimand, sensitivity_cf=0.05, clip=clip).diagnostics
    assert estimand == "ate" or ours["propensity_min"] > clip
    # the same learners on both sides: llmcause's defaults (standardised ridge and logistic regression)
    ref = dml.DoubleMLIRM(dml.DoubleMLData.from_arrays(w.X, w.outcome, w.treatment), default_outcome_model(),
                          default_propensity_model(), score=score, draw_sample_splitting=False,
                          ps_processor_config=dml.utils.PSProcessorConfig(clipping_threshold=clip))
    ref.set_sample_splitting([folds_to_splits(folds)])
    ref.fit()
    ref.sensitivity_analysis(cf_y=0.05, cf_d=0.05, rho=1.0)
    p = ref.sensitivity_params
    s = ours["sensitivity"]
    assert s["theta_lower"] == pytest.approx(p["theta"]["lower"][0], rel=1e-6)
    assert s["theta_upper"] == pytest.approx(p["theta"]["upper"][0], rel=1e-6)
    assert s["rv"] == pytest.approx(p["rv"][0], abs=1e-4)  # DoubleML solves numerically (bounded Brent)


def test_plr_bounds_equal_doubleml():
    dml = pytest.importorskip("doubleml")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1500, 4))
    d = X[:, 0] + rng.standard_normal(1500)
    y = 0.2 * d + X[:, 0] - X[:, 1] + rng.standard_normal(1500)
    folds = fold_ids(1500, 5, seed=2)
    s = partially_linear(y, d, X, folds=folds).diagnostics["sensitivity"]
    ref = dml.DoubleMLPLR(dml.DoubleMLData.from_arrays(X, y, d), Ridge(), Ridge(), draw_sample_splitting=False)
    ref.set_sample_splitting([folds_to_splits(folds)])
    ref.fit()
    ref.sensitivity_analysis()
    p = ref.sensitivity_params
    assert s["theta_lower"] == pytest.approx(p["theta"]["lower"][0], rel=1e-6)
    assert s["theta_upper"] == pytest.approx(p["theta"]["upper"][0], rel=1e-6)
    assert s["rv"] == pytest.approx(p["rv"][0], abs=1e-4)


def _terms(seed=0, n=2000, effect=0.3):
    rng = np.random.default_rng(seed)
    psi = rng.standard_normal(n)
    sigma2_terms = rng.exponential(size=n)
    nu2_terms = 4 + rng.standard_normal(n)
    return effect, psi - psi.mean(), sigma2_terms, nu2_terms


def test_robustness_values_solve_their_equations():
    theta, psi, s2, n2 = _terms()
    rv, rva = robustness_values(theta, psi, s2, n2)
    at_rv = ovb_bounds(theta, psi, s2, n2, cf_y=rv, cf_d=rv)
    assert at_rv["theta_lower"] == pytest.approx(0.0, abs=1e-10)
    at_rva = ovb_bounds(theta, psi, s2, n2, cf_y=rva, cf_d=rva)
    assert at_rva["ci_lower"] == pytest.approx(0.0, abs=1e-8)
    assert 0 < rva < rv < 1


def test_bound_standard_errors_come_from_their_influence_values():
    theta, psi, s2, n2 = _terms(seed=1)
    b = ovb_bounds(theta, psi, s2, n2, cf_y=0.04, cf_d=0.04)
    sigma2, nu2 = s2.mean(), n2.mean()
    S = np.sqrt(sigma2 * nu2)
    psi_S = (sigma2 * (n2 - nu2) + nu2 * (s2 - sigma2)) / (2 * S)
    c = np.sqrt(0.04 * 0.04 / 0.96)
    assert b["theta_lower"] == pytest.approx(theta - c * S)
    assert b["se_lower"] == pytest.approx(influence_se(psi - c * psi_S)[0])
    assert b["se_upper"] == pytest.approx(influence_se(psi + c * psi_S)[0])


def test_stronger_confounding_widens_the_bounds_and_null_effects_are_fragile():
    theta, psi, s2, n2 = _terms(seed=2)
    weak = ovb_bounds(theta, psi, s2, n2, cf_y=0.01, cf_d=0.01)
    strong = ovb_bounds(theta, psi, s2, n2, cf_y=0.1, cf_d=0.1)
    assert strong["theta_lower"] < weak["theta_lower"] < theta < weak["theta_upper"] < strong["theta_upper"]
    rv_small, rva_small = robustness_values(0.001, psi, s2, n2)
    assert rv_small < 0.01 and rva_small == 0.0  # the interval already contains 0
    with pytest.raises(ValueError, match="cf_y"):
        ovb_bounds(theta, psi, s2, n2, cf_y=1.0, cf_d=0.1)


def test_bounds_cover_the_truth_when_a_confounder_is_omitted():
    """Omitting a confounder: the short estimate is biased, and the bounds at moderate strength contain the truth."""
    rng = np.random.default_rng(5)
    n = 20000
    X = rng.standard_normal((n, 3))
    u = rng.standard_normal(n)
    e = 1 / (1 + np.exp(-(0.5 * X[:, 0] + 0.4 * u)))
    a = (rng.random(n) < e).astype(float)
    y = X[:, 0] + 0.4 * u + 1.0 * a + rng.standard_normal(n)
    short = aipw(y, a, X, seed=0, sensitivity_cf=0.05)
    assert not short.covers(1.0)  # U biases the estimate that ignores it
    s = short.diagnostics["sensitivity"]
    assert s["ci_lower"] <= 1.0 <= s["ci_upper"]
