import numpy as np
import pytest

from llmcause.core.diagnostics import balancing_weights, clip_propensity, kish_ess, overlap_report, standardized_mean_differences


def _smd_by_definition(X, t, w):
    m1 = np.average(X[t], axis=0, weights=w[t])
    m0 = np.average(X[~t], axis=0, weights=w[~t])
    return (m1 - m0) / np.sqrt((X[t].var(axis=0, ddof=1) + X[~t].var(axis=0, ddof=1)) / 2)


def test_smd_matches_its_definition():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1000, 3)) * [1, 5, 0.1] + [0, 3, 100]
    t = rng.random(1000) < 0.3
    w = rng.exponential(size=1000)
    np.testing.assert_allclose(standardized_mean_differences(X, t, w), _smd_by_definition(X, t, w), atol=1e-9)
    np.testing.assert_allclose(standardized_mean_differences(X, t), _smd_by_definition(X, t, np.ones(1000)),
                               atol=1e-9)


def test_constant_covariate_has_zero_smd():
    X = np.column_stack([np.ones(100), np.arange(100.0)])
    t = np.arange(100) % 2 == 0
    assert standardized_mean_differences(X, t)[0] == 0.0


def test_kish_ess():
    assert kish_ess(np.ones(50)) == pytest.approx(50)
    assert kish_ess(np.array([1.0, 0, 0, 0])) == pytest.approx(1)


def test_weights_for_each_estimand():
    e = np.array([0.2, 0.6, 0.8, 0.25])
    t = np.array([1, 0, 0, 1])
    assert list(balancing_weights(e, t, "ate")) == pytest.approx([5, 2.5, 5, 4])
    # ATT: treated rows weigh 1, controls e/(1 − e) (0.6 → 1.5, 0.8 → 4).
    assert list(balancing_weights(e, t, "att")) == pytest.approx([1, 1.5, 4, 1])


def test_overlap_report_counts_clipping_and_warns():
    rng = np.random.default_rng(1)
    e = np.concatenate([np.full(50, 0.001), rng.uniform(0.2, 0.8, 950)])
    t = rng.random(1000) < e
    diag, warnings = overlap_report(e, t, clip=0.01)
    assert diag["share_clipped"] == pytest.approx(0.05)
    assert diag["propensity_min"] == pytest.approx(0.001)
    assert diag["n_clipped"] == diag["n_clipped_low"] == 50
    assert any("50 of 1000 propensities (5.0%) lay outside [0.01, 0.99]" in w for w in warnings)


def test_att_clips_only_the_upper_end():
    e = np.array([0.001, 0.5, 0.995, 0.2])
    np.testing.assert_allclose(clip_propensity(e, 0.01, "att"), [0.001, 0.5, 0.99, 0.2])
    np.testing.assert_allclose(clip_propensity(e, 0.01, "ate"), [0.01, 0.5, 0.99, 0.2])
    diag, warnings = overlap_report(e, np.array([0, 0, 0, 1]), clip=0.01, estimand="att")
    assert (diag["n_clipped"], diag["n_clipped_low"], diag["n_clipped_high"]) == (1, 0, 1)
    assert diag["clip_rule"] == "upper end only"
    assert len(warnings) >= 1 and "1 of 4 propensities (25.0%) lay above 0.99" in warnings[0]
