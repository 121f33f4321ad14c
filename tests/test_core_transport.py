"""core.transport: same sample gives the plain mean, known truth, coverage under good and thin overlap."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest

from llmcause.core.inference import contrast
from llmcause.core.transport import _Logistic, fit_covariate_shift, transported_mean


@lru_cache(maxsize=8)
def _truth(delta: float) -> float:
    z = np.random.default_rng(123).standard_normal(2_000_000)
    return float(np.tanh(z + delta).mean())


def _draw(rng, ns, nt, delta):
    """Source X ~ N(0, I); target's first covariate shifted by delta; Y = tanh(X0) + X1/2 + noise.

    The linear outcome model is wrong (tanh), the logistic density ratio is right: DR rests on the weights.
    """
    xs = rng.standard_normal((ns, 2))
    xt = rng.standard_normal((nt, 2))
    xt[:, 0] += delta
    ys = np.tanh(xs[:, 0]) + 0.5 * xs[:, 1] + rng.standard_normal(ns)
    return xs, xt, ys


def test_same_sample_gives_the_plain_mean_exactly():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.standard_normal(500), rng.integers(0, 3, 500)])
    y = X[:, 0] ** 2 + rng.standard_normal(500)
    shift = fit_covariate_shift(X, X.copy(), seed=3)
    est = transported_mean(y, shift, name="m", estimand="mean", method="dr")
    assert np.allclose(shift.weights, 1.0, atol=1e-9)
    assert est.estimate == pytest.approx(y.mean(), abs=1e-10)
    assert not est.warnings and shift.share_outside == 0.0


def test_logistic_fit_agrees_with_scikit_learn():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    X = rng.standard_normal((800, 3))
    y = (rng.random(800) < 1 / (1 + np.exp(-X[:, 0] + 0.5 * X[:, 2]))).astype(float)
    ours = _Logistic(penalty=1.0).fit(X, y)
    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=10_000).fit(Z, y)
    assert np.allclose(ours.coef_, np.r_[ref.intercept_, ref.coef_.ravel()], atol=1e-6)


def test_known_truth_doubly_robust_and_target_rows_pair():
    rng = np.random.default_rng(2)
    xs, xt, ys = _draw(rng, 4000, 3000, 0.8)
    shift = fit_covariate_shift(xs, xt, seed=0)
    est = transported_mean(ys, shift, name="m", estimand="mean", method="dr")
    truth = _truth(0.8)
    assert est.covers(truth) and not est.covers(ys.mean())  # the source mean is off, the transported one is not
    assert est.n == 7000 and est.diagnostics["n_target"] == 3000
    # two outcomes on the same source and target rows: the contrast pairs both blocks
    other = transported_mean(ys + 0.25, shift, name="m2", estimand="mean", method="dr")
    diff = contrast(other, est)
    assert diff.estimate == pytest.approx(0.25, abs=1e-9) and diff.se < 1e-9


def _coverage(delta, seeds, ns=600, nt=400):
    hits, warned = 0, 0
    for seed in seeds:
        xs, xt, ys = _draw(np.random.default_rng(seed), ns, nt, delta)
        est = transported_mean(ys, fit_covariate_shift(xs, xt, seed=seed), name="m", estimand="mean", method="dr")
        hits += est.covers(_truth(delta))
        warned += bool(est.warnings)
    return hits / len(seeds), warned / len(seeds)


def test_coverage_under_good_overlap_small():
    cov, warned = _coverage(0.5, range(200))
    assert cov >= 0.90 and warned <= 0.02  # 200 seeds: 0.95 ± 0.03 at 2 sd


def test_thin_overlap_is_flagged():
    cov, warned = _coverage(2.5, range(40))
    assert warned == 1.0


@pytest.mark.slow
def test_coverage_under_good_overlap():
    cov, _ = _coverage(0.5, range(1000, 3000))
    assert 0.93 <= cov <= 0.97


@pytest.mark.slow
def test_coverage_under_moderate_and_thin_overlap_is_reported_honestly():
    cov, warned = _coverage(1.5, range(1000, 1500))
    assert cov >= 0.85 and warned >= 0.5
