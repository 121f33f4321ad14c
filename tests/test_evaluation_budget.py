"""Label budget planning and active labelling."""

from __future__ import annotations

import numpy as np
import pytest

from llmcause.core.inference import critical_value
from llmcause.evaluation import active_labeling_plan, judge_means, judge_world, plan_labels
from llmcause.evaluation.budget import _optimum, active_label_probabilities

SOLO = {"solo": (0.5, 0.2, False)}


def test_square_root_allocation_is_the_cheapest_split():
    var_f, var_r, V, c_y, c_s = 0.02, 0.04, 1e-4, 1.0, 0.01
    n, N, cost, _ = _optimum(var_f, var_r, V, c_y, c_s, None)
    assert var_f / N + var_r / n == pytest.approx(V)
    assert n / N == pytest.approx(np.sqrt(var_r / c_y) / np.sqrt(var_f / c_s))
    for scale in (0.8, 0.9, 1.1, 1.25):  # other splits on the same variance cost more
        n2 = n * scale
        N2 = var_f / (V - var_r / n2)
        if N2 > 0:
            assert c_y * n2 + c_s * N2 > cost
    n_fixed, N_fixed, _, _ = _optimum(var_f, var_r, V, c_y, c_s, 5000)
    assert N_fixed == 5000 and var_f / 5000 + var_r / n_fixed == pytest.approx(V)
    assert np.isinf(_optimum(var_f, var_r, V, c_y, c_s, 100)[0])  # the judge part alone is too wide


def test_plan_from_a_pilot_reaches_its_target():
    pilot = judge_world(3000, SOLO, label_fraction=0.05, seed=1).frame
    h = 0.015
    table = plan_labels(pilot, judge="judge_score", label="label", halfwidth=h, n_items=3000, n_boot=300)
    n_plan = table["labels"].estimate
    assert table["labels"].ci_low <= n_plan <= table["labels"].ci_high
    assert n_plan < table["labels without the judge"].estimate
    # Label that many rows of a fresh world with the same judge: the interval is about ±h.
    fresh = judge_world(3000, SOLO, label_fraction=min(1.0, n_plan / 3000), seed=2).frame
    est = judge_means(fresh, judge="judge_score", label="label")[0]
    half = est.ci_high - est.estimate
    assert 0.75 * h < half < 1.3 * h
    assert critical_value(0.95) == pytest.approx(1.959964, abs=1e-6)


def test_active_probabilities_sum_to_the_budget_and_favour_uncertain_rows():
    u = np.linspace(0.1, 1.0, 1000)
    cand = np.ones(1000, dtype=bool)
    cand[:100] = False
    pi = active_label_probabilities(u, budget=150, candidates=cand, mix=0.2)
    assert pi[cand].sum() == pytest.approx(150, rel=1e-9)
    assert np.all(np.diff(pi) >= 0) and pi.max() <= 1
    assert pi[cand].min() >= 0.2 * 150 / 900 * 0.99
    with pytest.raises(ValueError, match="budget"):
        active_label_probabilities(u, budget=2000, candidates=cand)


def test_active_labelling_round_stays_unbiased():
    # Pilot with uniform labels, then an active round; the recorded probabilities make the final estimate
    # unbiased. Replicated to check the bias and the coverage, not a single lucky draw.
    errors, covered = [], 0
    reps = 40
    for r in range(reps):
        world = judge_world(1500, SOLO, label_fraction=1.0, seed=100 + r)
        truth = world.truth["solo"]
        full = world.frame
        rng = np.random.default_rng(r)
        pilot = full.assign(label=full.label.where(rng.random(full.shape[0]) < 0.05))
        plan, summary = active_labeling_plan(pilot, judge="judge_score", label="label", budget=150, seed=r)
        assert summary["drawn"] > 100
        final = plan.assign(label=full.label.where(pilot.label.notna() | (plan.to_label == 1)))
        est = judge_means(final, judge="judge_score", label="label", label_prob="label_prob", seed=r)[0]
        errors.append(est.estimate - truth)
        covered += est.covers(truth)
    errors = np.asarray(errors)
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(reps)
    assert covered / reps >= 0.85
