"""Agents: specs, the trajectory reader, and replay that is exact or stops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmcause.agents.protocol import register_scheme, resolve_agent, resolve_env
from llmcause.agents.replay import NondeterministicEnvironment, replay_prefix, run_episode
from llmcause.agents.simulate import ScriptedToolAgent, ToolUseWorld, simulate_tool_use
from llmcause.agents.traces import read_traces, write_traces
from llmcause.io import DataError


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    import pathlib
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent))


def test_specs_resolve_builtin_python_and_registered_schemes():
    assert isinstance(resolve_env("tool_use"), ToolUseWorld)
    assert isinstance(resolve_agent("tool_use"), ScriptedToolAgent)
    assert resolve_env("python:agents_plugins:CoinEnv").reset(3) == "guess the coin"
    register_scheme("fixed", lambda rest, kind: __import__("agents_plugins").PeekAgent())
    assert hasattr(resolve_agent("fixed:anything"), "act")
    for spec, msg in [("nope", "unknown env spec"), ("python:agents_plugins", "python:module:attr"),
                      ("python:no_such_module_xyz:A", "cannot import"), ("python:agents_plugins:Missing", "no attribute"),
                      ("ftp:x", "scheme 'ftp'"), ("python:agents_plugins:NotAnAgent", "no reset")]:
        with pytest.raises(DataError, match=msg):
            resolve_env(spec)
    with pytest.raises(DataError, match="no act"):
        resolve_agent("python:agents_plugins:NotAnAgent")


def test_replay_is_exact_and_reproduces_the_log(tmp_path):
    sim = simulate_tool_use(20, seed=3, truth=False)
    path = tmp_path / "t.jsonl"
    write_traces(path, sim.episodes)
    traces = read_traces(path)
    env, agent = ToolUseWorld(), ScriptedToolAgent()
    for ep in traces:
        logged = next(e for e in sim.episodes if e.episode_id == ep.episode_id)
        assert ep.steps == logged.steps and ep.total_return == logged.total_return
        for k in range(len(ep.steps)):
            prefix = replay_prefix(env, ep, k)
            assert prefix.observation == ep.steps[k].observation
        # the same seed and agent stream give the same trajectory, twice
        a = run_episode(env, agent, ep.seed, np.random.default_rng(7))
        b = run_episode(env, agent, ep.seed, np.random.default_rng(7))
        assert a.steps == b.steps and a.total_return == b.total_return
    # rolling out from a prefix with the logged actions forced reproduces the logged outcome
    ep = traces.episodes[0]
    prefix = replay_prefix(env, ep, 0)
    assert prefix.reward == 0


def test_nondeterministic_environment_is_caught():
    from agents_plugins import PeekAgent, ShakyEnv

    env = ShakyEnv()
    episodes = []
    for i in range(8):
        ep = run_episode(env, PeekAgent(), seed=i, rng=np.random.default_rng(i), episode_id=str(i))
        episodes.append(ep)
    ep = next(e for e in episodes if len(e.steps) == 2)
    with pytest.raises(NondeterministicEnvironment, match="deterministic"):
        for _ in range(30):  # the re-tossed coin differs from the log within a few replays
            replay_prefix(env, ep, 1)


def _write(tmp_path, docs):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join((d if isinstance(d, str) else json.dumps(d)) + "\n" for d in docs))
    return path


GOOD = {"episode_id": "a", "seed": 1, "steps": [{"observation": "o", "action": "x", "prob": 0.5}], "success": 0}


@pytest.mark.parametrize("doc,msg", [
    ("{not json", "line 2: not valid JSON"),
    ({**GOOD, "steps": [{"observation": "o", "action": "x", "prob": 0.0}]}, r"steps\[0\]: field 'prob' is 0.0"),
    ({**GOOD, "steps": [{"observation": "o", "action": "x", "prob": 1.5}]}, "must lie in"),
    ({**GOOD, "steps": [{"observation": "o", "action": "x"}]}, "missing field 'prob'"),
    ({**GOOD, "steps": [{"observation": "o", "action": "x", "prob": 0.5, "step": 1}]}, "steps out of order"),
    ({k: v for k, v in GOOD.items() if k != "success"}, "no outcome"),
    ({**GOOD, "seed": -1}, "field 'seed'"),
    ({**GOOD, "steps": []}, "non-empty list"),
    ({**GOOD, "success": 2}, "field 'success'"),
    ({**GOOD, "success": 1, "return": 0}, "disagrees"),
])
def test_bad_traces_name_file_line_and_field(tmp_path, doc, msg):
    path = _write(tmp_path, [GOOD | {"episode_id": "first"}, doc])
    with pytest.raises(DataError, match=msg) as info:
        read_traces(path)
    assert str(path) in str(info.value) and "line 2" in str(info.value)


def test_repeated_episode_id_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="repeats line 1"):
        read_traces(_write(tmp_path, [GOOD, GOOD]))
    with pytest.raises(DataError, match="no episodes"):
        read_traces(_write(tmp_path, []))
