import numpy as np
import pytest

from llmcause.core.inference import contrast
from llmcause.core.pairwise import (bradley_terry_design, elo_scale, fit_bradley_terry, rank_with_uncertainty,
                                    weighted_logistic_fit)


def _battles(n=3000, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    m = 5
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    r = np.array([0.0, 0.5, -0.3, 1.0, 0.2])
    z = rng.standard_normal((n, 2))
    gamma = np.array([0.4, -0.2])
    p = 1 / (1 + np.exp(-(r[a] - r[b] + z @ gamma)))
    y = (rng.random(n) < p).astype(float)
    if ties:
        y[rng.random(n) < 0.1] = 0.5
    return a, b, y, z, r, gamma, m


def test_contextual_bt_equals_statsmodels_logit_hc0():
    sm = pytest.importorskip("statsmodels.api")
    a, b, y, z, *_ , m = _battles()
    fit = fit_bradley_terry(a, b, y, features=z, feature_names=["length", "markdown"])
    X = bradley_terry_design(a, b, m, z).toarray()
    ref = sm.Logit(y, X).fit(disp=0, cov_type="HC0", tol=1e-12)
    np.testing.assert_allclose(fit.coefs, ref.params[-2:], rtol=1e-6)
    np.testing.assert_allclose(fit.coef_se(), ref.bse[-2:], rtol=1e-6)
    cov = ref.cov_params()
    for i, j in [(1, 3), (2, 4), (0, 3)]:  # competitor 0 is the reference column
        d, se = fit.contrast(i, j)
        ri = ref.params[i - 1] if i else 0.0
        rj = ref.params[j - 1] if j else 0.0
        vi = cov[i - 1, i - 1] if i else 0.0
        vj = cov[j - 1, j - 1] if j else 0.0
        cij = cov[i - 1, j - 1] if i and j else 0.0
        assert d == pytest.approx(ri - rj, rel=1e-6)
        assert se == pytest.approx(np.sqrt(vi + vj - 2 * cij), rel=1e-6)


def test_cluster_robust_equals_statsmodels_with_cr1():
    sm = pytest.importorskip("statsmodels.api")
    a, b, y, z, *_, m = _battles(seed=1)
    g = np.random.default_rng(1).integers(0, 200, y.shape[0])
    fit = fit_bradley_terry(a, b, y, features=z, cluster=g)
    X = bradley_terry_design(a, b, m, z).toarray()
    ref = sm.Logit(y, X).fit(disp=0, cov_type="cluster", cov_kwds={"groups": g, "use_correction": False})
    np.testing.assert_allclose(fit.coef_se(), ref.bse[-2:] * np.sqrt(200 / 199), rtol=1e-6)
    assert fit.df == 199


def test_influence_values_reproduce_the_sandwich_contrast():
    a, b, y, z, *_ = _battles(seed=2, ties=True)
    fit = fit_bradley_terry(a, b, y, features=z)
    table = fit.estimates()
    d = contrast(table["3"], table["1"])
    assert (d.estimate, d.se) == pytest.approx(fit.contrast(3, 1), rel=1e-9)


def test_known_truth_strengths_and_style():
    """A joint Wald test of all identified parameters at their true values does not reject."""
    from scipy import stats

    a, b, y, z, r, gamma, m = _battles(n=20000, seed=3)
    fit = fit_bradley_terry(a, b, y, features=z)
    # Identified parameters: r_j − r_0 (j ≥ 1) and γ, with covariance from the influence values.
    T = np.zeros((m - 1 + 2, m + 2))
    T[: m - 1, 0] = -1
    T[: m - 1, 1:m] = np.eye(m - 1)
    T[m - 1:, m:] = np.eye(2)
    est = T @ np.concatenate([fit.strengths, fit.coefs])
    truth = np.concatenate([r[1:] - r[0], gamma])
    psi = fit.influence @ T.T
    cov = psi.T @ psi / psi.shape[0] ** 2
    stat = (est - truth) @ np.linalg.solve(cov, est - truth)
    assert stats.chi2.sf(stat, df=truth.shape[0]) > 0.001
    naive = fit_bradley_terry(a, b, y)
    assert naive.method == "bt" and fit.method == "style-controlled"


def test_ranks_with_uncertainty_and_elo():
    assert list(rank_with_uncertainty(np.array([2.0, 0.0, -0.5]), np.array([3.0, 1.0, 0.5]))) == [1, 2, 2]
    assert elo_scale(0.0) == 1000.0
    assert elo_scale(np.log(10)) == pytest.approx(1400.0)


def test_penalty_shrinks_only_the_style_coefficients():
    a, b, y, z, *_ = _battles(seed=4)
    free = fit_bradley_terry(a, b, y, features=z)
    ridge = fit_bradley_terry(a, b, y, features=z, penalty=500.0)
    assert np.all(np.abs(ridge.coefs) < np.abs(free.coefs))
    assert ridge.influence.shape == (y.shape[0], 5 + 2)


def test_weighted_logistic_fit_allows_negative_weights():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((2000, 3))
    y = (rng.random(2000) < 1 / (1 + np.exp(-X @ [1.0, -0.5, 0.2]))).astype(float)
    w = np.ones(2000)
    w[:100] = -0.2
    fit = weighted_logistic_fit(X, y, w)
    assert fit.converged
    grad = np.asarray(fit.scores.sum(axis=0)).ravel()
    assert np.max(np.abs(grad)) < 1e-8


@pytest.mark.parametrize("a,b,y,match", [
    (["x", "y"], ["x", "z"], [1, 0], "against itself"),
    (["x", "z"], ["y", "w"], [1, 0], "do not connect"),
    (["x", "x", "y"], ["y", "y", "x"], [1, 2, 0], r"\[0, 1\]"),
])
def test_bad_battles_raise(a, b, y, match):
    with pytest.raises(ValueError, match=match):
        fit_bradley_terry(a, b, y)


def test_a_model_that_always_wins_is_reported():
    a = ["x"] * 20 + ["y"] * 20
    b = ["y"] * 20 + ["z"] * 20
    y = [1.0] * 20 + list(np.random.default_rng(0).integers(0, 2, 20).astype(float))
    with pytest.raises(ValueError, match="'x' won 20 of 20"):
        fit_bradley_terry(a, b, y)
