"""Tool mediation, executed: total = direct + indirect, and the intervals cover the world's exact truth."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from llmcause.agents.mediation import tool_mediation
from llmcause.agents.simulate import ScriptedToolAgent, ToolUseWorld, population_success
from llmcause.cli import run


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent))


def test_mediation_covers_the_exact_truth_and_adds_up():
    agent = ScriptedToolAgent()
    p1, p0 = population_success(agent, mode="on"), population_success(agent, mode="off")
    p10 = population_success(agent, replay_off=True)
    truth = {"total": p1 - p0, "direct": p10 - p0, "indirect": p1 - p10}
    assert truth["indirect"] > 0.1 and abs(truth["direct"]) < 0.05  # the tool helps through what it returns
    seeds = np.random.default_rng(4).integers(0, 2**31 - 1, size=500)
    table = tool_mediation(ToolUseWorld, agent, seeds, replicates=2, seed=4)
    est = {e.name: e for e in table}
    assert est["total"].estimate == pytest.approx(est["direct"].estimate + est["indirect"].estimate)
    for name, value in truth.items():
        assert est[name].covers(value), (name, est[name], value)
    assert est["total"].diagnostics["n_clusters"] == 500


def test_mediate_command_and_bad_inputs(capsys):
    assert run(["agents", "mediate", "--world", "tool_use", "-n", "60", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [e["name"] for e in doc["estimates"]] == ["total", "direct", "indirect"] and doc["episodes"] == 60
    for argv, msg in [(["--env", "python:agents_plugins:CoinEnv", "--agent", "python:agents_plugins:PeekAgent"],
                       "set_tool"),
                      (["--tool", "calc"], "only the search tool"),
                      (["--world", "tool_use", "--env", "tool_use"], "not both")]:
        assert run(["agents", "mediate", "-n", "5", *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1 and "Traceback" not in err
