"""Known truth and coverage on the simulated arena: style control, the length effect, heterogeneity."""

from __future__ import annotations

import numpy as np
import pytest

from llmcause.alignment.battles import prepare_battles
from llmcause.alignment.heterogeneity import style_effects_by_group
from llmcause.alignment.length_effect import length_effects
from llmcause.alignment.simulate import simulate_battles
from llmcause.alignment.style import pair_frequency_weights, style_control, style_control_battles


def _prepare(world, **kw):
    return prepare_battles(world.battles, model_a="model_a", model_b="model_b", winner="winner", text_a="text_a",
                           text_b="text_b", tokenizer="simple", **kw)


def _most_distorted_pair(world, study):
    """The pair of models whose plain-BT contrast is furthest from the truth."""
    names = [str(c) for c in study.plain.competitors]
    best, pair = -1.0, None
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            err = abs(study.plain.contrast(a, b)[0] - world.true_contrast(a, b))
            if err > best:
                best, pair = err, (a, b)
    return pair


def test_style_control_recovers_truth_and_plain_bt_does_not():
    world = simulate_battles(3000, 8, seed=3)
    battles = _prepare(world, cluster="prompt_id")
    study = style_control_battles(battles)
    truth = world.style_coefs["human"]
    q = 2.58  # five intervals checked as a family (Bonferroni, 0.05/5 each)
    for e in study.style_effects():
        assert abs(e.estimate - truth[e.name]) <= q * e.se, (e.name, e.estimate, e.se, truth[e.name])
    a, b = _most_distorted_pair(world, study)
    true = world.true_contrast(a, b)
    plain, plain_se = study.plain.contrast(a, b)
    ctrl, ctrl_se = study.controlled.contrast(a, b)
    assert abs(ctrl - true) <= q * ctrl_se
    assert abs(plain - true) > q * plain_se  # the naive contrast is off
    # JSON-facing estimates: one per model per method, plus the style effects.
    table = study.estimates()
    assert len([e for e in table if e.estimand == "strength" and e.method == "bt"]) == 8
    assert len([e for e in table if e.estimand == "strength" and e.method == "style-controlled"]) == 8
    assert [e.name for e in table if e.estimand == "style effect"] == ["length", "headers", "lists", "bold"]
    board = study.leaderboard()
    assert set(board.columns) >= {"elo_bt", "elo_style", "rank_bt", "rank_style", "rank_shift"}
    assert abs(board["elo_style"].mean() - 1000.0) < 1e-9


def test_style_coefficient_and_contrast_coverage_small():
    hits_len, hits_con, n_seeds = 0, 0, 16
    for seed in range(n_seeds):
        world = simulate_battles(400, 4, seed=100 + seed)
        study = style_control_battles(_prepare(world))
        e = study.style_effects()["length"]
        hits_len += e.covers(world.style_coefs["human"]["length"])
        d, se = study.controlled.contrast("model-01", "model-02")
        hits_con += abs(d - world.true_contrast("model-01", "model-02")) <= 1.96 * se
    assert hits_len >= 13 and hits_con >= 13  # 95% nominal: fewer than 13/16 has probability 0.7%


@pytest.mark.slow
def test_style_coverage_many_seeds():
    hits, n_seeds = np.zeros(5), 200
    for seed in range(n_seeds):
        world = simulate_battles(800, 5, seed=1000 + seed)
        study = style_control_battles(_prepare(world))
        for j, e in enumerate(study.style_effects()):
            hits[j] += e.covers(world.style_coefs["human"][e.name])
        d, se = study.controlled.contrast("model-01", "model-03")
        hits[4] += abs(d - world.true_contrast("model-01", "model-03")) <= 1.96 * se
    print("coverage (length, headers, lists, bold, contrast):", hits / n_seeds)
    assert np.all(np.abs(hits / n_seeds - 0.95) < 0.045), hits / n_seeds


def test_length_effect_dml_covers_truth_while_naive_and_bt_overstate():
    world = simulate_battles(3000, 8, seed=1, content_effect=1.0)
    battles = _prepare(world)
    study = style_control_battles(battles)
    table = length_effects(battles, study.controlled, seed=0)
    truth = world.length_ade["all"]
    naive = table.get("length", "naive")
    bt = table.get("length", "style-controlled ame")
    dml = table.get("length", "dml-plr")
    assert dml.covers(truth), (dml.estimate, dml.ci_low, dml.ci_high, truth)
    assert naive.ci_low > truth and bt.ci_low > truth
    assert dml.diagnostics["treatment_residual_share"] > 0.05
    assert dml.rows is not None and dml.influence.shape[0] == battles.n


def test_bt_marginal_effect_without_confounding_covers_truth():
    world = simulate_battles(3000, 6, seed=8, content_effect=0.0)
    battles = _prepare(world)
    study = style_control_battles(battles)
    bt = length_effects(battles, study.controlled, learner="linear").get("length", "style-controlled ame")
    assert bt.covers(world.length_ade["all"])


@pytest.mark.slow
def test_length_effect_coverage_many_seeds():
    hits, n_seeds = 0, 60
    for seed in range(n_seeds):
        world = simulate_battles(2000, 6, seed=500 + seed, content_effect=1.0)
        battles = _prepare(world)
        est = length_effects(battles, None, seed=seed).get("length", "dml-plr")
        hits += est.covers(world.length_ade["all"])
    print("DML length-effect coverage:", hits / n_seeds)
    assert abs(hits / n_seeds - 0.95) < 0.07, hits / n_seeds  # 60 seeds: binomial SE about 0.028


def test_heterogeneity_human_vs_llm_judge():
    world = simulate_battles(4000, 6, seed=5, judge_share=0.5)
    battles = _prepare(world)
    groups = world.battles["annotator"].to_numpy()
    het = style_effects_by_group(battles, groups, reference="human", by="annotator")
    assert het.groups == ["human", "llm-judge"]
    # Eight intervals at once: check them as a family (Bonferroni, 0.05/8 per interval: 2.73 SE).
    for g in het.groups:
        for f, value in world.style_coefs[g].items():
            e = het.effects[f"{f} [{g}]"]
            assert abs(e.estimate - value) <= 2.73 * e.se, (f, g, e.estimate, e.se, value)
    diff = het.differences.get("length [llm-judge] - length [human]")
    true_diff = world.style_coefs["llm-judge"]["length"] - world.style_coefs["human"]["length"]
    assert diff.covers(true_diff)
    # Disjoint battles are independent: the variances add.
    a, b = het.effects["length [llm-judge]"], het.effects["length [human]"]
    assert abs(diff.se - np.hypot(a.se, b.se)) < 1e-10
    assert het.joint.diagnostics["pvalue"] < 0.01
    assert het.joint.diagnostics["df"] == 4


def test_heterogeneity_pairs_votes_on_the_same_battles():
    world = simulate_battles(1500, 5, seed=9)
    df = world.battles
    twice = df.assign(annotator="first")
    again = df.assign(annotator="second")
    import pandas as pd

    both = pd.concat([twice, again], ignore_index=True)
    battles = prepare_battles(both, model_a="model_a", model_b="model_b", winner="winner", text_a="text_a",
                              text_b="text_b", tokenizer="simple", cluster="battle_id")
    het = style_effects_by_group(battles, both["annotator"].to_numpy(), reference="first")
    diff = het.differences.get("length [second] - length [first]")
    # Identical votes on the same battles: a paired contrast is exactly zero with zero SE.
    assert abs(diff.estimate) < 1e-10 and diff.se < 1e-8


def test_inverse_pair_weights():
    a = np.array(["x", "x", "x", "y", "x"])
    b = np.array(["y", "y", "z", "z", "y"])
    w = pair_frequency_weights(a, b)
    assert abs(w.mean() - 1) < 1e-12
    pair_totals = {p: w[[i for i in range(5) if frozenset((a[i], b[i])) == p]].sum()
                   for p in {frozenset(t) for t in zip(a, b)}}
    assert np.allclose(list(pair_totals.values()), list(pair_totals.values())[0])
    world = simulate_battles(600, 4, seed=2)
    battles = _prepare(world)
    study = style_control(battles.model_a, battles.model_b, battles.outcome, battles.style.values,
                          battles.style.names, weights="inverse-pair")
    assert study.weights == "inverse-pair"
    with pytest.raises(ValueError):
        style_control(battles.model_a, battles.model_b, battles.outcome, battles.style.values, weights="odd")
