"""Agents: counterfactual-replay attribution finds the world's known decisive steps."""

from __future__ import annotations

import numpy as np

from llmcause.agents.attribution import attribute_failures
from llmcause.agents.simulate import DECISIVE_THRESHOLD, ScriptedToolAgent, ToolUseWorld, simulate_tool_use


def test_known_decisive_steps_are_found_including_ones_that_are_not_the_last():
    sim = simulate_tool_use(60, seed=11)
    att = attribute_failures(sim.episodes, lambda e: ToolUseWorld(), lambda e: ScriptedToolAgent(),
                             threshold=DECISIVE_THRESHOLD, budget=200, seed=1)
    truth = sim.decisive
    found = np.array([r.decisive_step == truth[r.episode_id] for r in att.episodes])
    not_last = [r for r in att.episodes if truth[r.episode_id] is not None
                and truth[r.episode_id] != r.last_step]
    assert len(att.episodes) >= 20 and len(not_last) >= 10
    assert found.mean() >= 0.85
    assert np.mean([r.decisive_step == truth[r.episode_id] for r in not_last]) >= 0.85
    # the two baselines on the same episodes
    assert np.mean([r.last_step == truth[r.episode_id] for r in att.episodes]) < 0.5
    assert max(r.replays for r in att.episodes) <= 200
    # the truth is in most per-step intervals (exact effects from the world's own recursion)
    inside = [e.ci_low - 1e-9 <= sim.effects[r.episode_id][k] <= e.ci_high + 1e-9
              for r in att.episodes for k, e in enumerate(r.effects) if e.n >= 8]
    assert np.mean(inside) > 0.85


def test_attribution_is_reproducible_and_the_fixed_budget_splits_evenly():
    sim = simulate_tool_use(12, seed=4, truth=False)
    run = lambda **kw: attribute_failures(sim.episodes, lambda e: ToolUseWorld(), lambda e: ScriptedToolAgent(),
                                          seed=3, **kw)
    a, b = run(), run()
    assert [r.to_json() for r in a.episodes] == [r.to_json() for r in b.episodes]
    fixed = run(adaptive=False, budget=60)
    for r in fixed.episodes:
        assert len({e.n for e in r.effects}) == 1 and r.replays <= 60


def test_a_small_budget_is_respected_on_long_episodes():
    sim = simulate_tool_use(30, seed=8, truth=False)
    long = [e for e in sim.episodes if not e.success and len(e.steps) >= 5]
    att = attribute_failures(long, lambda e: ToolUseWorld(), lambda e: ScriptedToolAgent(), budget=8)
    for r, ep in zip(att.episodes, long):
        assert r.replays == 2 * len(ep.steps)  # one pair per step: below that no step would be measured
