"""Trimmed coverage study, run in every CI pass: a few hundred seeds of the fastest estimators.

Each test counts how often the 95% interval covers the known truth over R independent worlds and
accepts 0.95 ± 3 binomial standard errors (R = 400: 0.917 to 0.983), so a real loss of coverage
(or intervals far too wide) fails while seed noise does not. The long studies stay under `-m slow`.
"""

from __future__ import annotations

import numpy as np
import pytest

from llmcause.core.ate import difference_in_means, ipw, regression_adjustment
from llmcause.core.simulate import confounded_world

LEVEL = 0.95
REPS = 400


def binomial_band(reps: int = REPS, level: float = LEVEL, k: float = 3.0) -> tuple[float, float]:
    half = k * np.sqrt(level * (1 - level) / reps)
    return level - half, level + half


def _assert_nominal(hits: int, reps: int = REPS):
    lo, hi = binomial_band(reps)
    assert lo <= hits / reps <= hi, f"coverage {hits}/{reps} = {hits / reps:.3f} outside [{lo:.3f}, {hi:.3f}]"


@pytest.mark.parametrize("estimand", ["ate", "att"])
def test_regression_adjustment_coverage(estimand):
    hits = 0
    for seed in range(REPS):
        w = confounded_world(300, seed=20_000 + seed)
        est = regression_adjustment(w.outcome, w.treatment, w.X, estimand=estimand)
        hits += est.covers(w.true_ate if estimand == "ate" else w.true_att)
    _assert_nominal(hits)


def test_ipw_att_with_known_propensities_coverage():
    """Hájek IPW for the ATT with the true propensities (clipped above only)."""
    hits = 0
    for seed in range(REPS):
        w = confounded_world(600, seed=30_000 + seed)
        est = ipw(w.outcome, w.treatment, propensity=w.propensity, estimand="att")
        hits += est.covers(w.true_att)
    _assert_nominal(hits)


def test_clustered_difference_in_means_coverage_with_t():
    """A randomised treatment by cluster, 12 clusters: CR1 with t₁₁ quantiles keeps the level."""
    hits = 0
    rng = np.random.default_rng(4)
    clusters = np.repeat(np.arange(12), 20)
    for _ in range(REPS):
        treated_clusters = rng.permutation(np.repeat([0.0, 1.0], 6))
        a = treated_clusters[clusters]
        y = 0.5 * a + rng.standard_normal(12)[clusters] + rng.standard_normal(240)
        hits += difference_in_means(y, a, cluster=clusters).covers(0.5)
    _assert_nominal(hits)
