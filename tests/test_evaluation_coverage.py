"""Coverage of the 95% intervals of `calibrated` and `ppi++` over many simulated replications.

The world is `simulate.judge_world`'s judge for one model (miscalibrated, noisy, length-biased), drawn for
all replications at once. The suite runs 200 replications; with true coverage 0.95 the number covered is
Binomial(200, 0.95), whose central 99.8% range is 181–198, so the suite accepts 0.905–0.99. The slow run
uses 1,000 replications and the 93–97% window (about ±3 standard errors).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit

from llmcause.core.surrogate import calibrated_mean, fit_calibration, ppi_mean
from llmcause.evaluation.simulate import JUDGE_BIAS, true_mean_quality

ABILITY, VERBOSITY = 0.6, 0.3


def _draw(n_reps: int, n_rows: int, label_fraction: float, seed: int):
    rng = np.random.default_rng(seed)
    shape = (n_reps, n_rows)
    quality = expit(ABILITY - rng.standard_normal(shape) + 0.5 * rng.standard_normal(shape))
    log_len = VERBOSITY + 0.4 * rng.standard_normal(shape) + 0.3 * rng.standard_normal(shape)
    label = rng.beta(8 * quality, 8 * (1 - quality))
    eta = (JUDGE_BIAS["offset"] + JUDGE_BIAS["slope"] * logit(quality) + JUDGE_BIAS["length"] * log_len
           + JUDGE_BIAS["noise"] * rng.standard_normal(shape))
    score = np.round(expit(eta), 2)
    labelled = rng.random(shape) < label_fraction
    return score, np.where(labelled, label, np.nan), labelled


def _coverage(n_reps: int, n_rows: int = 1000, label_fraction: float = 0.2, seed: int = 0):
    truth = true_mean_quality(ABILITY)
    score, y, R = _draw(n_reps, n_rows, label_fraction, seed)
    covered = {"calibrated": 0, "ppi++": 0}
    for r in range(n_reps):
        cal = fit_calibration(score[r], y[r], R[r], seed=r)
        covered["calibrated"] += calibrated_mean(y[r], R[r], cal).covers(truth)
        covered["ppi++"] += ppi_mean(y[r][R[r]], score[r][R[r]], score[r][~R[r]]).covers(truth)
    return {k: v / n_reps for k, v in covered.items()}, truth, score, y, R


def test_coverage_200_replications():
    cov, truth, score, y, R = _coverage(200)
    assert 0.905 <= cov["calibrated"] <= 0.99, cov
    assert 0.905 <= cov["ppi++"] <= 0.99, cov
    # The naive interval on the raw judge mean covers the truth essentially never.
    naive_se = score.std(axis=1) / np.sqrt(score.shape[1])
    naive_cover = np.mean(np.abs(score.mean(axis=1) - truth) <= 1.96 * naive_se)
    assert naive_cover < 0.05


@pytest.mark.slow
def test_coverage_1000_replications():
    cov, *_ = _coverage(1000, seed=1)
    assert 0.93 <= cov["calibrated"] <= 0.97, cov
    assert 0.93 <= cov["ppi++"] <= 0.97, cov


@pytest.mark.slow
def test_coverage_1000_replications_few_labels():
    # About 100 labels: λ̂ is estimated on the same labels, the known small-sample weak spot of PPI++.
    cov, *_ = _coverage(1000, n_rows=1000, label_fraction=0.1, seed=2)
    assert 0.93 <= cov["calibrated"] <= 0.97, cov
    assert 0.92 <= cov["ppi++"] <= 0.97, cov
