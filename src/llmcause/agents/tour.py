"""The agents stage's rows of `llmcause tour`, on the tool-use world (exact truths by the world's recursion)."""

from __future__ import annotations

import numpy as np

from ..tour import TourRow
from .attribution import attribute_failures, score_against_truth
from .mediation import tool_mediation
from .ope import sequential_ope_study
from .simulate import (DECISIVE_THRESHOLD, ScriptedToolAgent, ToolUseWorld, careful_agent, population_success,
                       simulate_tool_use)


def tour_steps(quick: bool = False) -> int:
    """The units of work `tour_rows` reports: replay attribution, mediation, the prompt's off-policy value."""
    return 3


def tour_rows(quick: bool = False, seed: int = 0, progress=None) -> list[TourRow]:
    """Decisive steps found vs the baselines; the search tool's direct and indirect effect; a new prompt's value."""
    advance = progress if progress is not None else (lambda k=1: None)
    agent = ScriptedToolAgent()
    sim = simulate_tool_use(40 if quick else 150, seed=seed)
    att = attribute_failures(sim.episodes, lambda e: ToolUseWorld(), lambda e: agent, threshold=DECISIVE_THRESHOLD,
                             budget=200, seed=seed)
    acc = score_against_truth(att.episodes, sim.decisive)
    replay, last, least = (acc.get("decisive step named", m) for m in
                           ("counterfactual replay", "baseline: last step", "baseline: least likely action"))
    rows = [TourRow(stage="agents", question="Which step made each failed episode fail? (share of known decisive "
                                             "steps named, within 200 replays per episode)",
                    causal=replay.with_(name="decisive steps named"), naive=last,
                    note=f"counterfactual replay vs blaming the last step; blaming the least likely action: "
                         f"{least.estimate:.2f}; {replay.diagnostics['replays_per_episode']:.0f} replays per "
                         "failed episode")]
    advance(1)

    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=300 if quick else 2000)
    med = tool_mediation(ToolUseWorld, agent, seeds, seed=seed)
    p1, p0 = population_success(agent), population_success(agent, mode="off")
    p10 = population_success(agent, replay_off=True)
    got = np.array([any("search result:" in s.observation for s in e.steps) for e in sim.episodes])
    ok = np.array([e.success for e in sim.episodes], float)
    naive_result = float(ok[got].mean() - ok[~got].mean()) if got.any() and (~got).any() else None
    rows.append(TourRow(stage="agents", question="Does the search tool help only through what it returns? "
                                                 "(direct effect of offering it)",
                        causal=med["direct"], truth=p10 - p0,
                        note="the tool on, fed the outputs of the run without it: Y(1, M(0)) executed"))
    rows.append(TourRow(stage="agents", question="... and through what it returns (indirect effect)",
                        causal=med["indirect"], naive=naive_result, truth=p1 - p10,
                        note="executed nested counterfactual vs success with a search result minus without"))
    advance(1)

    logs = simulate_tool_use(300 if quick else 1000, seed=seed + 1, truth=False)
    ope = sequential_ope_study(logs.episodes, careful_agent(), target_name="careful prompt", seed=seed,
                               methods=("dr",))
    rows.append(TourRow(stage="agents", question="Would the careful prompt succeed more often? (its success rate, "
                                                 "from trajectories logged under the old prompt)",
                        causal=ope.get("careful prompt", "dr"), naive=ope.get("careful prompt", "naive (logged mean)"),
                        truth=population_success(careful_agent()),
                        note="doubly robust (fitted Q, per-step weights) vs the logged success rate"))
    advance(1)
    return rows
