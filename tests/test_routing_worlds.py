"""Known truth: the RouteLLM world (real outcomes of both models) and the synthetic K-model world."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmcause.routing.benefit import benefit_study
from llmcause.routing.drift import drift_study, window_labels
from llmcause.routing.evaluate import evaluate_policies
from llmcause.routing.learn import study_router
from llmcause.routing.logs import read_log
from llmcause.routing.router import decide, lambda_for_budget, load_router
from llmcause.routing.simulate import routellm_hashed_prompts, routellm_world, synthetic_world, window_truth


def _log(world, **kw):
    c = world.columns
    return read_log(world.frame, action=c["action"], reward=c["reward"], propensity=c["propensity"],
                    features=world.features, text=world.text, **kw)


@pytest.fixture(scope="module")
def routellm():
    world = routellm_world(4000, seed=3)
    return world, _log(world, costs=world.prices)


@pytest.fixture(scope="module")
def synthetic():
    world = synthetic_world(6000, seed=4)
    return world, _log(world, cost="cost", time="time")


def test_routellm_world_is_real_and_confounded(routellm):
    world, _ = routellm
    assert world.info["pool_size"] == 15361
    # the shipped outcomes reproduce the published accuracies (REFERENCES §4.4)
    assert world.always("gpt-4-1106")[0] == pytest.approx((0.857 * 1319 + 0.806 * 14042) / 15361, abs=1e-3)
    assert world.always("mixtral-8x7b")[0] == pytest.approx((0.638 * 1319 + 0.681 * 14042) / 15361, abs=1e-3)
    # hard-looking prompts went to GPT-4, so its logged accuracy understates it (and Mixtral's overstates it)
    assert world.naive_always("gpt-4-1106") < world.always("gpt-4-1106")[0] - 0.05
    assert world.naive_always("mixtral-8x7b") > world.always("mixtral-8x7b")[0] + 0.03


def test_routellm_truth_inside_dr_interval_naive_off(routellm):
    world, log = routellm
    table = evaluate_policies(log, ["always:gpt-4-1106", "always:mixtral-8x7b"], methods=("dr", "snips", "el"),
                              estimands=("quality",))
    for model in world.models:
        truth = world.always(model)[0]
        dr = table.get(f"always:{model}", "dr")
        naive = table.get(f"always:{model}", "naive")
        assert dr.covers(truth), (model, dr.estimate, truth)
        el = table.get(f"always:{model}", "ips-el")
        assert el.ci_low < el.estimate < el.ci_high and abs(el.estimate - truth) < 3 * dr.se
        assert table.get(f"always:{model}", "snips").covers(truth)
        assert not naive.covers(truth)
        assert abs(naive.estimate - truth) > 3 * dr.se


def test_synthetic_world_truth_for_every_model_quality_and_cost(synthetic):
    world, log = synthetic
    table = evaluate_policies(log, [f"always:{m}" for m in world.models], methods=("dr", "sndr"))
    for model in world.models:
        q, c = world.always(model)
        est = [e for e in table if e.name == f"always:{model}" and e.method == "dr"]
        by = {e.estimand: e for e in est}
        assert by["quality"].covers(q), (model, by["quality"].estimate, q)
        assert by["cost"].covers(c), (model, by["cost"].estimate, c)
    naive_large = [e for e in table if e.name == "always:large" and e.method == "naive" and e.estimand == "quality"][0]
    assert not naive_large.covers(world.always("large")[0])


def test_learnt_router_out_of_fold_value_covers_its_truth(routellm, tmp_path):
    world, log = routellm
    study = study_router(log, [0.5], n_folds=3, seed=1)
    q = [e for e in study.table if e.name == "router @ budget 0.5" and e.estimand == "quality"
         and e.method == "dr"][0]
    c = [e for e in study.table if e.name == "router @ budget 0.5" and e.estimand == "cost"][0]
    gain = study.table["router - random @ budget 0.5"]
    router = study.router
    pop = router.pipeline.transform(world.population, hashed=routellm_hashed_prompts())
    codes = router.choose_features(pop)
    big = router.models.index("gpt-4-1106")
    true_quality = float(np.where(codes == big, world.quality[:, 1], world.quality[:, 0]).mean())
    true_cost = float(np.where(codes == big, 1.0, 0.1).mean())
    assert q.covers(true_quality), (q.estimate, q.ci_low, q.ci_high, true_quality)
    assert abs(true_cost - 0.5) < 0.05 and abs(c.estimate - 0.5) < 0.03  # the budget is met
    assert gain.ci_low > 0  # better than random routing at the same cost
    # the saved router is JSON numbers only and makes the same decisions after a round trip
    path = tmp_path / "router.json"
    router.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == "llmcause-router/1" and doc["budget"] == 0.5
    again = load_router(path)
    np.testing.assert_array_equal(again.choose(log.frame), router.choose(log.frame))


def test_budget_rule_meets_the_budget_and_refuses_impossible_ones():
    rng = np.random.default_rng(0)
    benefit = np.column_stack([np.zeros(500), rng.normal(0.1, 0.1, 500), rng.normal(0.2, 0.1, 500)])
    cost = np.tile([0.1, 0.4, 1.0], (500, 1))
    for budget in (0.15, 0.3, 0.6):
        lam = lambda_for_budget(benefit, cost, budget)
        chosen = decide(benefit, cost, lam)
        assert cost[np.arange(500), chosen].mean() <= budget + 1e-9
        assert cost[np.arange(500), chosen].mean() > budget - 0.02
    with pytest.raises(ValueError, match="cheapest"):
        lambda_for_budget(benefit, cost, 0.05)
    assert lambda_for_budget(benefit, cost, 5.0) == 0.0


def test_frontier_area_and_random_baseline(synthetic):
    world, log = synthetic
    study = study_router(log, [0.2, 0.5, 0.9], n_folds=3, seed=2)
    area = study.table["router frontier area"]
    rand = study.table["random frontier area"]
    gain = study.table["router - random frontier area"]
    assert gain.estimate == pytest.approx(area.estimate - rand.estimate)
    assert gain.ci_low > 0
    quality = [e.estimate for e in study.table if e.name.startswith("router @ budget") and e.estimand == "quality"
               and e.method == "dr"]
    assert quality[0] < quality[-1]


def test_dr_learner_benefit_and_calibration(synthetic):
    world, log = synthetic
    fit = benefit_study(log, baseline="small", n_bins=4, seed=5)
    truth = world.always("large")[0] - world.always("small")[0]
    ate = [e for e in fit.table if e.name == "large - small" and e.estimand == "quality benefit"][0]
    slope = [e for e in fit.table if e.name == "large - small" and e.estimand == "calibration slope"][0]
    assert ate.covers(truth)
    assert slope.ci_low > 0.3 and slope.covers(1.0)  # real signal, and calibrated
    assert set(fit.calibration["model"]) == {"medium", "large"}
    assert fit.calibration["covers prediction"].mean() >= 0.75


def test_drift_detected_where_it_happens_and_not_where_it_does_not(synthetic):
    world, log = synthetic
    table = drift_study(log, ["always:medium"], n_windows=4, seed=0)
    per = [e for e in table if "[window" in e.name]
    labels = window_labels(log.time, 4)
    edges = np.r_[0.0, [log.time[labels == j].max() for j in range(3)], 1.0]
    truths = window_truth(world, "medium", edges)
    assert sum(e.covers(t) for e, t in zip(per, truths)) >= 3
    change = table["always:medium [last - first window]"]
    assert change.ci_high < 0 and change.covers(truths[-1] - truths[0])
    assert table["always:medium [weighted]"].diagnostics["p_change"] < 0.001
    still = synthetic_world(6000, seed=5, drift=0.0)
    flat = drift_study(_log(still, cost="cost", time="time"), ["always:medium"], n_windows=4, seed=0)
    assert flat["always:medium [weighted]"].diagnostics["p_change"] > 0.01


def test_estimated_propensities_warn_and_still_cover(synthetic):
    """Without logged propensities they are cross-fitted from the features (the old router used only those)."""
    world, _ = synthetic
    c = world.columns
    log = read_log(world.frame, action=c["action"], reward=c["reward"], cost="cost", features=world.features)
    assert log.propensity is None
    table = evaluate_policies(log, ["always:large", "always:small"], methods=("dr",), estimands=("quality",))
    assert any("propensities were not logged" in w for w in table.warnings)
    for model in ("large", "small"):
        est = table.get(f"always:{model}", "dr")
        assert est.diagnostics["propensity"] == "estimated"
        assert est.covers(world.always(model)[0])


def _dr_coverage(seeds, n):
    hits = total = 0
    for seed in seeds:
        world = synthetic_world(n, seed=seed, drift=0.0, population=100_000)
        log = _log(world)
        table = evaluate_policies(log, ["always:large", "always:small"], methods=("dr",), estimands=("quality",),
                                  seed=seed, naive=False)
        for model in ("large", "small"):
            hits += table.get(f"always:{model}", "dr").covers(world.always(model)[0])
            total += 1
    return hits / total


def test_dr_interval_coverage_on_the_synthetic_world_small():
    assert _dr_coverage(range(100, 130), 1000) >= 0.88


@pytest.mark.slow
def test_dr_interval_coverage_on_the_synthetic_world():
    assert 0.93 <= _dr_coverage(range(1000, 1500), 2000) <= 0.97


def test_floored_estimated_propensities_are_counted_and_warned():
    """A logger that almost never sends easy prompts to the large model: estimated propensities hit the floor."""
    world = synthetic_world(3000, seed=1, drift=0.0, overlap=0.0, confounding=4.0, population=100_000)
    c = world.columns
    log = read_log(world.frame, action=c["action"], reward=c["reward"], features=world.features)
    table = evaluate_policies(log, ["always:large"], methods=("ips", "dr", "el"), estimands=("quality",))
    truth = world.always("large")[0]
    floor = [w for w in table.warnings if w.startswith("estimated propensities:")]
    assert len(floor) == 1 and "IPS, SNIPS and ips-el" in floor[0] and "dr, sndr and dm" in floor[0]
    ips, dr = table.get("always:large", "ips"), table.get("always:large", "dr")
    d = ips.diagnostics
    assert d["rows_floored"] > 0.3 * log.n and d["rows_floored_per_model"]["large"] > 0.2 * log.n
    assert f"{d['rows_floored']} of {log.n} rows" in floor[0]
    assert not ips.covers(truth) and ips.ci_high < truth  # the floor caps the weights of the easy prompts
    assert dr.covers(truth)
    logged = evaluate_policies(_log(world), ["always:large"], methods=("dr",), estimands=("quality",))
    assert not any(w.startswith("estimated propensities:") for w in logged.warnings)
    assert "rows_floored" not in logged[0].diagnostics
