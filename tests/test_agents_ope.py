"""Sequential off-policy evaluation: unbiased on the tool-use world, DR covers, weights explode on real log-probs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmcause.agents.ope import sequential_ope_study
from llmcause.agents.simulate import ScriptedToolAgent, careful_agent, population_success, simulate_tool_use
from llmcause.cli import run
from llmcause.core.sequential_ope import sequential_ope

DATA = Path(__file__).parent / "data" / "agents"


def test_formulas_on_a_hand_example():
    r = np.array([[0.0, 1.0], [1.0, 0.0]])
    mu = np.array([[0.5, 0.5], [0.25, 1.0]])
    pi = np.array([[1.0, 0.5], [0.5, 1.0]])
    mask = np.array([[True, True], [True, False]])
    q = np.array([[0.2, 0.6], [0.4, 0.0]])
    v = np.array([[0.3, 0.5], [0.7, 0.0]])
    est = {e.method: e.estimate for e in sequential_ope(r, mu, pi, mask, q_logged=q, v_target=v)}
    # weights: trajectory 0: 2, 2; trajectory 1: 2 (ended)
    assert est["is"] == pytest.approx((2 * 1 + 2 * 1) / 2)
    assert est["pdis"] == pytest.approx((2 * 0 + 2 * 1 + 2 * 1) / 2)
    assert est["wpdis"] == pytest.approx((0 + 2) / 4 + (2 + 0) / 4)
    dr0 = 0.3 + 2 * (0 - 0.2) + 2 * 0.5 + 2 * (1 - 0.6)
    dr1 = 0.7 + 2 * (1 - 0.4)
    assert est["dr"] == pytest.approx((dr0 + dr1) / 2)


def test_unbiased_on_the_world_and_dr_covers_the_true_value():
    truth = population_success(careful_agent())  # exact: every seed configuration, the new policy's recursion
    logging_value = population_success(ScriptedToolAgent())
    est = {m: [] for m in ("is", "pdis", "wpdis", "dr")}
    covered = []
    for s in range(8):
        sim = simulate_tool_use(200, seed=500 + s, truth=False)
        table = sequential_ope_study(sim.episodes, careful_agent(), seed=s)
        for e in table:
            if e.method in est:
                est[e.method].append(e.estimate)
        covered.append(table.get("target", "dr").covers(truth))
        naive = table.get("target", "naive (logged mean)")
        assert not naive.covers(truth) or abs(naive.estimate - logging_value) < 0.1
    for m in ("is", "pdis", "wpdis", "dr"):  # WPDIS is only consistent; its small-sample bias is well inside this
        x = np.asarray(est[m])
        assert abs(x.mean() - truth) < 3 * x.std(ddof=1) / np.sqrt(x.size) + 0.005, m
    assert sum(covered) >= 6
    assert np.std(est["dr"]) < np.std(est["is"])


def test_weight_explosion_is_flagged_on_real_arena_log_probabilities():
    df = pd.read_csv(DATA / "cje_arena_logprobs.csv")
    fresh = pd.read_csv(DATA / "cje_arena_fresh_judge_means.csv").set_index("policy")["mean_judge_score"]
    y = df["judge_score"].to_numpy()[:, None]
    ones = np.ones_like(y)
    out = {}
    for policy in ("clone", "parallel_universe_prompt", "unhelpful"):
        lr = (df[policy] - df["base"]).to_numpy()[:, None]
        out[policy] = {e.method: e for e in sequential_ope(y, ones, ones, log_ratio=lr, methods=("is", "wpdis"))}
    assert not out["clone"]["is"].warnings
    for policy in ("parallel_universe_prompt", "unhelpful"):
        e = out[policy]["is"]
        assert e.warnings and "explode" in e.warnings[0] and e.diagnostics["ess"] < 10
    # and the estimates it warns about are far from the policy's own fresh responses
    assert abs(out["unhelpful"]["wpdis"].estimate - fresh["unhelpful"]) > 0.4
    assert abs(out["unhelpful"]["is"].estimate - fresh["unhelpful"]) > 0.2


def test_ope_command(tmp_path, capsys):
    traces = tmp_path / "t.jsonl"
    assert run(["agents", "simulate", "-n", "120", "--seed", "3", "--out", str(traces), "--json"]) == 0
    capsys.readouterr()
    assert run(["agents", "ope", str(traces), "--target", "tool_use_careful", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["command"] == "agents ope" and doc["episodes"] == 120
    assert [e["method"] for e in doc["estimates"]] == ["is", "pdis", "wpdis", "dr", "naive (logged mean)"]
    assert {e["estimand"] for e in doc["estimates"]} == {"value"}
    for argv, msg in [(["--target", "tool_use_careful", "--method", "xx"], "--method"),
                      (["--target", "python:agents_plugins:PeekAgent"], "no distribution"),
                      (["--target", "nope"], "unknown agent spec")]:
        assert run(["agents", "ope", str(traces), *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
