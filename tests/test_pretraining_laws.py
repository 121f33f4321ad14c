"""Mixing laws, held-out Spearman, recommendation within the support, verification, rank agreement."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from llmcause.pretraining.designs import dirichlet_swarm
from llmcause.pretraining.laws import (BoostedLaw, ExponentialLaw, LogLinearLaw, heldout_spearman,
                                       spearman_estimate)
from llmcause.pretraining.proxy import ProxyConfig
from llmcause.pretraining.recommend import in_support, recommend_mixture, support_radius, verify_recommendation
from llmcause.pretraining.scale import rank_agreement

DOMAINS = ["code", "legal", "math"]


def _weights(n, seed=0, alpha=1.0):
    return np.random.default_rng(seed).dirichlet(np.full(3, alpha), size=n)


def test_exponential_law_recovers_its_own_form():
    W = _weights(60)
    y = 1.5 + 0.8 * np.exp(W @ np.array([-3.0, 0.5, 1.0]))
    law = ExponentialLaw(seed=1).fit(W, y)
    W_new = _weights(40, seed=9)
    truth = 1.5 + 0.8 * np.exp(W_new @ np.array([-3.0, 0.5, 1.0]))
    np.testing.assert_allclose(law.predict(W_new), truth, rtol=1e-5)


def test_loglinear_law_recovers_its_own_form():
    W = _weights(50)
    y = 2.0 - 0.3 * np.log(W[:, 0] + 1e-3) + 0.1 * np.log(W[:, 2] + 1e-3)
    law = LogLinearLaw(penalty=1e-10).fit(W, y)
    np.testing.assert_allclose(law.model_.coef_, [-0.3, 0.0, 0.1], atol=1e-6)


def test_boosting_ranks_a_smooth_surface():
    W = _weights(80)
    y = np.sin(3 * W[:, 0]) + W[:, 1] ** 2
    law = BoostedLaw().fit(W, y)
    W_new = _weights(40, seed=5)
    rho = stats.spearmanr(law.predict(W_new), np.sin(3 * W_new[:, 0]) + W_new[:, 1] ** 2).statistic
    assert rho > 0.9


def test_spearman_estimate_matches_scipy_and_its_interval_covers():
    rng = np.random.default_rng(1)
    x = rng.normal(size=50)
    y = x + rng.normal(size=50)
    est = spearman_estimate(x, y, name="a")
    assert est.estimate == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)
    assert est.ci_low < est.estimate < est.ci_high <= 1
    hits = []
    truth = 6 / np.pi * np.arcsin(1 / (2 * np.sqrt(2)))  # population Spearman ρ of a normal pair with r = 1/√2
    for s in range(300):
        r = np.random.default_rng(100 + s)
        u = r.normal(size=40)
        hits.append(spearman_estimate(u, u + r.normal(size=40), name="b").covers(truth))
    assert 0.9 <= np.mean(hits) <= 0.99


def _synthetic_swarm(n=40, seed=0, noise=0.01):
    """A results table whose true mean loss is smallest near the legal corner, outside the swarm's support."""
    design = dirichlet_swarm(DOMAINS, n, seeds=1, config=ProxyConfig(order=3, budget=50_000), design_seed=seed)
    design = design[design[[f"w:{d}" for d in DOMAINS]].max(axis=1) < 0.7].copy()  # the swarm avoids corners
    rng = np.random.default_rng(seed)
    W = design[[f"w:{d}" for d in DOMAINS]].to_numpy()
    for j, d in enumerate(DOMAINS):
        design[f"bpb:{d}"] = 2.0 - 0.8 * W[:, j] - 0.6 * W[:, 1] + rng.normal(0, noise, len(design))
    return design


def test_heldout_spearman_judges_each_law():
    table = heldout_spearman(_synthetic_swarm(60), laws=["loglinear", "exponential"])
    assert {e.name for e in table} >= {"loglinear:mean", "exponential:code"}
    assert table.get("exponential:mean").estimate > 0.8
    with pytest.raises(ValueError, match="too few"):
        heldout_spearman(_synthetic_swarm(60).head(4))


def test_recommendation_stays_in_the_support_and_warns_about_extrapolation():
    swarm = _synthetic_swarm(60)
    rec = recommend_mixture(swarm, law="loglinear", judge=False, n_candidates=4000)
    W = swarm[[f"w:{d}" for d in DOMAINS]].to_numpy()
    assert in_support(rec.weights[None, :], W, support_radius(W))[0]
    assert not rec.unconstrained_in_support
    assert rec.unconstrained_weights[1] > W[:, 1].max()  # the law's minimum is past the legal-heaviest mix
    assert any("extrapolation" in w for w in rec.warnings)
    assert rec.weights[1] > 1 / 3  # within the support, it still leans the right way
    assert rec.predicted <= rec.uniform_predicted


def test_verification_trains_the_recommendation_against_uniform():
    design = dirichlet_swarm(DOMAINS, 12, seeds=1, config=ProxyConfig(order=2, budget=30_000), design_seed=3)
    from llmcause.pretraining.campaign import run_design

    _, swarm = run_design(design, progress=False)
    rec = recommend_mixture(swarm, law="loglinear", judge=False, n_candidates=2000)
    table = verify_recommendation(rec, seeds=3, progress=False)
    assert {"recommended", "uniform", "recommended - uniform"} <= set(table.names)
    diff = table.get("recommended - uniform")
    rec_mean, uni_mean = table.get("recommended").estimate, table.get("uniform").estimate
    assert diff.estimate == pytest.approx(rec_mean - uni_mean, rel=1e-9)
    assert diff.n == 3 and np.isfinite(diff.se) and diff.diagnostics["predicted"] == pytest.approx(
        rec.predicted - rec.uniform_predicted)


def test_rank_agreement_across_scale_with_real_runs():
    mixtures = dirichlet_swarm(DOMAINS, 9, seeds=1, design_seed=4)
    table = rank_agreement(mixtures, ProxyConfig(order=2, budget=30_000), ProxyConfig(order=3, budget=90_000),
                           progress=False)
    mean = table.get("proxy vs target:mean")
    assert mean.n == 10 and -1 <= mean.ci_low <= mean.estimate <= mean.ci_high <= 1
    assert mean.estimate > 0.5  # bigger models rank these mixtures much like the small ones
    assert isinstance(table.to_frame(), pd.DataFrame)
