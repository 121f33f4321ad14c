"""The contextual Bradley–Terry fit and its sandwich covariance against independent implementations.

Reference 1: statsmodels `Logit` on the same dense design (competitor 0
dropped, then the style features), robust covariance HC0 and cluster
(without statsmodels' small-sample factor, times our CR1 G/(G−1)).
Compared on contrasts r_a − r_b, which are anchor-free.
Reference 2: `weighted_logistic_fit` on `bradley_terry_design` with the
textbook sandwich H⁻¹(Σsᵢsᵢᵀ)H⁻¹, i.e. the generic path that
`fit_bradley_terry`'s bincount assembly replaces.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.special import expit

from llmcause.core.pairwise import bradley_terry_design, fit_bradley_terry, weighted_logistic_fit

sm = pytest.importorskip("statsmodels.api")


def _battles(n=1500, m=6, k=3, seed=0, ties=0.1):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    r = rng.normal(0.0, 0.6, m)
    Z = rng.normal(size=(n, k))
    gamma = np.linspace(0.4, -0.2, k)
    y = (rng.random(n) < expit(r[a] - r[b] + Z @ gamma)).astype(float)
    y[rng.random(n) < ties] = 0.5
    labels = np.array([f"model-{i}" for i in range(m)])
    return labels[a], labels[b], y, Z, a, b


def _centring(m, k):
    """Map from (β₁..β_{m−1}, γ) to (centred strengths, γ)."""
    L = np.zeros((m + k, m - 1 + k))
    L[1:m, : m - 1] = np.eye(m - 1)
    L[:m] -= L[:m].mean(axis=0)
    L[m:, m - 1:] = np.eye(k)
    return L


def _contrast_matrix(m):
    rows = []
    for i in range(m):
        for j in range(i + 1, m):
            c = np.zeros(m)
            c[i], c[j] = 1.0, -1.0
            rows.append(c)
    return np.array(rows)


@pytest.mark.parametrize("clustered", [False, True])
def test_contextual_bt_matches_statsmodels_logit(clustered):
    a_lab, b_lab, y, Z, a, b = _battles()
    m, k = 6, Z.shape[1]
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 300, y.shape[0]) if clustered else None
    ours = fit_bradley_terry(a_lab, b_lab, y, features=Z, feature_names=["length", "headers", "bold"],
                             cluster=groups)
    X = bradley_terry_design(a, b, m, Z).toarray()
    if clustered:
        ref = sm.Logit(y, X).fit(disp=0, tol=1e-12, maxiter=200, method="newton", cov_type="cluster",
                                 cov_kwds={"groups": groups, "use_correction": False})
        g = np.unique(groups).shape[0]
        ref_cov = ref.cov_params() * g / (g - 1)
    else:
        ref = sm.Logit(y, X).fit(disp=0, tol=1e-12, maxiter=200, method="newton", cov_type="HC0")
        ref_cov = ref.cov_params()
    L = _centring(m, k)
    ref_theta = L @ ref.params
    ref_full_cov = L @ ref_cov @ L.T
    C = _contrast_matrix(m)
    # Contrasts r_a − r_b and their covariance.
    np.testing.assert_allclose(C @ ours.strengths, C @ ref_theta[:m], rtol=0, atol=1e-6)
    np.testing.assert_allclose(C @ ours.strengths_cov @ C.T, C @ ref_full_cov[:m, :m] @ C.T, rtol=1e-6, atol=1e-10)
    # Style coefficients and their covariance.
    np.testing.assert_allclose(ours.coefs, ref.params[m - 1:], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.coefs_cov, ref_cov[m - 1:, m - 1:], rtol=1e-6, atol=1e-12)
    # One contrast through the public helper.
    diff, se = ours.contrast("model-3", "model-1")
    ref_se = np.sqrt(ref_cov[2, 2] + ref_cov[0, 0] - 2 * ref_cov[0, 2])
    assert abs(diff - (ref.params[2] - ref.params[0])) < 1e-6
    assert abs(se / ref_se - 1) < 1e-6


def test_plain_bt_matches_statsmodels_logit():
    a_lab, b_lab, y, _, a, b = _battles(seed=3, ties=0.0)
    ours = fit_bradley_terry(a_lab, b_lab, y)
    X = bradley_terry_design(a, b, 6, np.zeros((y.shape[0], 0))).toarray()
    ref = sm.Logit(y, X).fit(disp=0, tol=1e-12, maxiter=200, method="newton", cov_type="HC0")
    L = _centring(6, 0)
    C = _contrast_matrix(6)
    np.testing.assert_allclose(C @ ours.strengths, C @ (L @ ref.params), atol=1e-6)
    np.testing.assert_allclose(C @ ours.strengths_cov @ C.T, C @ (L @ ref.cov_params() @ L.T) @ C.T, rtol=1e-6)


def _generic_sandwich(ia, ib, y, Z, w, pen_value, cluster):
    """The textbook computation on an explicit sparse design."""
    m = int(max(ia.max(), ib.max())) + 1
    k = Z.shape[1]
    X = bradley_terry_design(ia, ib, m, Z)
    pen = np.concatenate([np.zeros(m - 1), np.full(k, pen_value)])
    fit = weighted_logistic_fit(X, y, w, pen)
    S = fit.scores.toarray() if sp.issparse(fit.scores) else np.asarray(fit.scores)
    if cluster is not None:
        _, codes = np.unique(cluster, return_inverse=True)
        G = codes.max() + 1
        S = np.vstack([S[codes == g].sum(axis=0) for g in range(G)]) * np.sqrt(G / (G - 1))
    h_inv = np.linalg.inv(fit.hessian)
    L = _centring(m, k)
    influence = None
    if cluster is None:
        influence = y.shape[0] * S @ (L @ h_inv).T
    return L @ fit.coef, L @ h_inv @ (S.T @ S) @ h_inv @ L.T, influence


@pytest.mark.parametrize("weighted,penalty,clustered", [(False, 0.0, False), (True, 0.0, True), (True, 1.0, False),
                                                        (False, 0.5, True)])
def test_fast_assembly_equals_generic_design(weighted, penalty, clustered):
    a_lab, b_lab, y, Z, a, b = _battles(n=800, m=5, k=2, seed=7)
    rng = np.random.default_rng(2)
    w = rng.uniform(0.3, 2.0, y.shape[0]) if weighted else np.ones(y.shape[0])
    groups = rng.integers(0, 150, y.shape[0]) if clustered else None
    ours = fit_bradley_terry(a, b, y, features=Z, weights=w if weighted else None, penalty=penalty, cluster=groups)
    theta, cov, influence = _generic_sandwich(a, b, y, Z, w, penalty, groups)
    got_theta = np.concatenate([ours.strengths, ours.coefs])
    np.testing.assert_allclose(got_theta, theta, rtol=0, atol=1e-10)
    got_cov = np.zeros_like(cov)
    got_cov[:5, :5] = ours.strengths_cov
    got_cov[5:, 5:] = ours.coefs_cov
    np.testing.assert_allclose(got_cov[:5, :5], cov[:5, :5], rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(got_cov[5:, 5:], cov[5:, 5:], rtol=1e-9, atol=1e-14)
    if influence is not None:
        np.testing.assert_allclose(ours.influence, influence, rtol=0, atol=1e-9)


def test_influence_values_reproduce_the_sandwich():
    a_lab, b_lab, y, Z, *_ = _battles(n=600, seed=11)
    fit = fit_bradley_terry(a_lab, b_lab, y, features=Z)
    psi = fit.influence
    n = y.shape[0]
    assert np.max(np.abs(psi.mean(axis=0))) < 1e-8
    full = psi.T @ psi / n**2
    np.testing.assert_allclose(full[:6, :6], fit.strengths_cov, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(full[6:, 6:], fit.coefs_cov, rtol=1e-10, atol=1e-14)


def test_integer_and_string_labels_give_the_same_fit():
    a_lab, b_lab, y, Z, a, b = _battles(n=500, seed=5)
    by_name = fit_bradley_terry(a_lab, b_lab, y, features=Z)
    by_code = fit_bradley_terry(a, b, y, features=Z)
    np.testing.assert_allclose(by_name.strengths, by_code.strengths, atol=1e-13)
    assert [str(c) for c in by_code.competitors] == [str(i) for i in range(6)]
