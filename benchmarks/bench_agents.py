"""Agents: replay speed of the tool-use world, and what attribution costs and finds against the baselines.

Same failed episodes, one process:

- replays per second: paired counterfactual replays (prefix replayed and checked, rest rolled out);
- accuracy (share of the world's known decisive steps named) and cost (replays per failed episode) of
  counterfactual replay, adaptive, against the two usual baselines (blame the last step; blame the least
  likely action) and against a fixed budget (R replicate pairs at every step);
- the adaptive scheme against the smallest fixed budget that reaches its accuracy: the ratio of replays.

Usage: python benchmarks/bench_agents.py [--quick] [--episodes N] [--seed S]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def main() -> None:
    from llmcause import __version__
    from llmcause.agents.attribution import attribute_failures
    from llmcause.agents.simulate import DECISIVE_THRESHOLD, ScriptedToolAgent, ToolUseWorld, simulate_tool_use

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--episodes", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n = args.episodes or (80 if args.quick else 400)
    print(f"llmcause {__version__}, numpy {np.__version__}, Python {platform.python_version()}")
    sim = simulate_tool_use(n, seed=args.seed)
    failed = [e for e in sim.episodes if not e.success]
    print(f"tool-use world: {n} episodes, {len(failed)} failed, mean length "
          f"{np.mean([len(e.steps) for e in failed]):.1f} steps")
    agent = ScriptedToolAgent()

    def run(**kw):
        t = time.perf_counter()
        att = attribute_failures(sim.episodes, lambda e: ToolUseWorld(), lambda e: agent,
                                 threshold=DECISIVE_THRESHOLD, seed=args.seed, **kw)
        dt = time.perf_counter() - t
        hit = np.mean([r.decisive_step == sim.decisive[r.episode_id] for r in att.episodes])
        replays = np.mean([r.replays for r in att.episodes])
        return att, float(hit), float(replays), dt

    att, acc, cost, dt = run(budget=200)
    total = sum(r.replays for r in att.episodes)
    last = np.mean([r.last_step == sim.decisive[r.episode_id] for r in att.episodes])
    least = np.mean([r.lowest_prob_step == sim.decisive[r.episode_id] for r in att.episodes])
    print(f"replays per second: {total / dt:,.0f} ({total} replays in {dt:.1f} s)")
    print(f"adaptive (budget 200): {acc:.1%} of decisive steps named at {cost:.0f} replays per failed episode")
    print(f"baseline last step: {last:.1%}; baseline least likely action: {least:.1%} (no replays)")
    fixed = []
    for r in (4, 8, 16, 24, 32, 48):
        _, facc, fcost, _ = run(adaptive=False, replicates=r, budget=10**9)
        fixed.append((r, facc, fcost))
        print(f"fixed {r:>2} pairs per step: {facc:.1%} at {fcost:.0f} replays per failed episode")
        if facc >= acc:
            break
    match = next(((r, a, c) for r, a, c in fixed if a >= acc), None)
    if match is not None:
        print(f"ratio adaptive vs fixed replays at equal accuracy: {cost / match[2]:.2f} (n={len(failed)})")
    else:
        print(f"no fixed budget up to {fixed[-1][0]} pairs per step reaches {acc:.1%}; "
              f"ratio adaptive vs fixed replays (largest fixed): {cost / fixed[-1][2]:.2f} (n={len(failed)})")
    print(f"ratio attribution accuracy replay vs last-step baseline: {acc / max(last, 1e-9):.2f} (n={len(failed)})")


if __name__ == "__main__":
    main()
