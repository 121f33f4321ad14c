"""TextWorld (a real environment no one here wrote): games made by seed, replay exact, attribution runs."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("textworld")

from llmcause.agents.attribution import attribute_failures  # noqa: E402
from llmcause.agents.protocol import resolve_agent, resolve_env  # noqa: E402
from llmcause.agents.replay import replay_prefix, run_episode  # noqa: E402
from llmcause.agents.textworld_env import NoisyWalkthroughAgent, TextWorldEnv  # noqa: E402


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_textworld_games_replay_exactly_and_failures_are_attributed():
    assert isinstance(resolve_env("textworld"), TextWorldEnv)
    assert isinstance(resolve_agent("textworld"), NoisyWalkthroughAgent)
    env, agent = TextWorldEnv(max_steps=7), NoisyWalkthroughAgent(noise=0.4)
    episodes = [run_episode(env, agent, 3, np.random.default_rng(i), episode_id=str(i)) for i in range(8)]
    assert "guide: " in episodes[0].steps[0].observation
    assert any(e.success for e in episodes)  # following the walkthrough wins the game
    failed = [e for e in episodes if not e.success]
    assert failed
    ep = min(failed, key=lambda e: len(e.steps))
    for k in range(len(ep.steps)):  # the engine is deterministic: every logged observation comes back
        assert replay_prefix(env, ep, k).observation == ep.steps[k].observation
    again = run_episode(env, agent, 3, np.random.default_rng(int(ep.episode_id)))
    assert again.steps == ep.steps
    att = attribute_failures([ep], lambda e: env, lambda e: agent, budget=8 * len(ep.steps), seed=0)
    r = att.episodes[0]
    assert len(r.effects) == len(ep.steps) and all(-1 <= e.ci_low <= e.ci_high <= 1 for e in r.effects)
