"""`llmcause routing ...` from the command line: outputs, the JSON contract, and bad inputs (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.routing.simulate import synthetic_world

PRICES = "small=0.1,medium=0.35,large=1"


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    world = synthetic_world(1500, seed=2)
    frame = world.frame.copy()
    frame["cheap_router"] = np.where(frame["difficulty"] > 1.0, "large", "small")
    frame["pi_small"], frame["pi_medium"], frame["pi_large"] = 0.5, 0.3, 0.2
    path = tmp_path_factory.mktemp("routing") / "log.csv"
    frame.to_csv(path, index=False)
    return path


BASE = ["--action", "model", "--reward", "quality", "--propensity", "propensity", "--features",
        "difficulty,length,topic"]


def _json(capsys, argv):
    code = run(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_evaluate_json_contract(log_csv, capsys):
    doc = _json(capsys, ["routing", "evaluate", str(log_csv), *BASE, "--costs", PRICES, "--policy", "always:large",
                         "--policy", "column:cheap_router", "--policy", "probs:pi_", "--lambda", "0.2", "--json"])
    assert doc["command"] == "routing evaluate"
    names = {e["name"] for e in doc["estimates"]}
    assert names == {"always:large", "column:cheap_router", "probs:pi_"}
    assert {e["estimand"] for e in doc["estimates"]} == {"quality", "cost", "utility"}
    assert {e["method"] for e in doc["estimates"]} == {"dr", "ips-el", "naive"}
    dr = [e for e in doc["estimates"] if e["name"] == "always:large" and e["method"] == "dr"]
    by = {e["estimand"]: e for e in dr}
    assert by["utility"]["estimate"] == pytest.approx(by["quality"]["estimate"] - 0.2 * by["cost"]["estimate"])
    assert by["quality"]["diagnostics"]["matched"]["large"] > 50
    for e in doc["estimates"]:
        assert set(e) == {"name", "estimand", "method", "estimate", "se", "ci_low", "ci_high", "level", "n",
                          "diagnostics"}


def test_evaluate_all_methods_time_windows_compare_and_report(log_csv, capsys, tmp_path):
    report = tmp_path / "r.html"
    doc = _json(capsys, ["routing", "evaluate", str(log_csv), *BASE, "--cost", "cost", "--policy", "always:large",
                         "--policy", "always:small", "--method", "all", "--time", "time", "--windows", "3",
                         "--compare", "--report", str(report), "--json"])
    methods = {e["method"] for e in doc["estimates"]}
    assert {"ips", "snips", "dm", "dr", "sndr", "switch-dr", "dros", "ips-el", "naive"} <= methods
    names = {e["name"] for e in doc["estimates"]}
    assert "always:small - always:large" in names
    assert "always:large [window 3/3]" in names and "always:large [last - first window]" in names
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_learn_then_evaluate_the_saved_router(log_csv, capsys, tmp_path):
    router = tmp_path / "router.json"
    doc = _json(capsys, ["routing", "learn", str(log_csv), *BASE, "--costs", PRICES, "--budget", "0.4", "--out",
                         str(router), "--folds", "3", "--json"])
    q = [e for e in doc["estimates"] if e["name"] == "router @ budget 0.4" and e["estimand"] == "quality"
         and e["method"] == "dr"][0]
    assert q["diagnostics"]["out_of_fold"] is True
    saved = json.loads(router.read_text())
    assert saved["budget"] == 0.4 and set(saved["models"]) == {"small", "medium", "large"}
    doc = _json(capsys, ["routing", "evaluate", str(log_csv), *BASE, "--costs", PRICES, "--policy",
                         f"file:{router}", "--method", "dr", "--json"])
    cost = [e for e in doc["estimates"] if e["estimand"] == "cost" and e["method"] == "dr"][0]
    assert cost["estimate"] == pytest.approx(0.4, abs=0.02)


def test_frontier_and_benefit_and_simulate(log_csv, capsys, tmp_path):
    report = tmp_path / "f.html"
    doc = _json(capsys, ["routing", "frontier", str(log_csv), *BASE, "--costs", PRICES, "--budgets", "0.2,0.5,0.8",
                         "--folds", "3", "--report", str(report), "--json"])
    assert "router frontier area" in {e["name"] for e in doc["estimates"]}
    assert "Quality-cost frontier" in report.read_text()
    doc = _json(capsys, ["routing", "benefit", str(log_csv), *BASE, "--baseline", "small", "--json"])
    assert {e["estimand"] for e in doc["estimates"]} >= {"quality benefit", "calibration slope"}
    out = tmp_path / "sim.csv"
    doc = _json(capsys, ["routing", "simulate", "synthetic", "--out", str(out), "--n", "300", "--json"])
    assert pd.read_csv(out).shape[0] == 300 and {e["method"] for e in doc["estimates"]} == {"truth"}


def test_table_output_shows_warnings_for_thin_overlap(tmp_path, capsys):
    rng = np.random.default_rng(0)
    n = 400
    big = rng.random(n) < 0.02
    frame = pd.DataFrame({"model": np.where(big, "large", "small"), "p": np.where(big, 0.02, 0.98),
                          "y": rng.integers(0, 2, n), "x": rng.standard_normal(n)})
    path = tmp_path / "thin.csv"
    frame.to_csv(path, index=False)
    code = run(["routing", "evaluate", str(path), "--action", "model", "--reward", "y", "--propensity", "p",
                "--features", "x", "--policy", "always:large"])
    out = capsys.readouterr()
    assert code == 0
    assert "ips-el" in out.out and "thin overlap" in out.err


def _bad(tmp_path, capsys, frame, extra, report=True):
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    html = tmp_path / "out.html"
    argv = ["routing", "evaluate", str(path), *extra] + (["--report", str(html)] if report else [])
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not html.exists()
    return err


@pytest.fixture()
def small_frame():
    return pd.DataFrame({"model": ["small", "large", "small", "large", "small", "small"],
                         "p": [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], "y": [1, 0, 1, 1, 0, 1],
                         "x": [0.1, 0.4, -0.3, 1.2, 0.0, 0.7], "pick": ["small"] * 6})


ARGS = ["--action", "model", "--reward", "y", "--propensity", "p", "--features", "x"]


def test_bad_propensity_zero(tmp_path, capsys, small_frame):
    small_frame.loc[2, "p"] = 0.0
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--policy", "always:large"])
    assert "bad.csv" in err and "'p'" in err and "row 3" in err


def test_bad_propensity_above_one(tmp_path, capsys, small_frame):
    small_frame.loc[4, "p"] = 1.3
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--policy", "always:large"])
    assert "'p'" in err and "row 5" in err and "at most 1" in err


def test_policy_uses_a_model_never_logged(tmp_path, capsys, small_frame):
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--costs", "small=0.1,large=1,xl=5", "--policy", "always:xl"])
    assert "'xl'" in err and "never appears" in err


def test_policy_names_an_unknown_model(tmp_path, capsys, small_frame):
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--policy", "always:gpt-9"])
    assert "unknown model 'gpt-9'" in err and "large, small" in err


def test_column_policy_with_an_unknown_model_names_the_row(tmp_path, capsys, small_frame):
    small_frame.loc[3, "pick"] = "medium"
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--policy", "column:pick"])
    assert "'pick'" in err and "row 4" in err and "'medium'" in err


def test_costs_missing_for_a_model(tmp_path, capsys, small_frame):
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--costs", "small=0.1", "--policy", "always:large"])
    assert "no price for model 'large'" in err and "row 2" in err and "'model'" in err


def test_probs_that_do_not_sum_to_one(tmp_path, capsys, small_frame):
    small_frame["q_small"] = 0.6
    small_frame["q_large"] = 0.4
    small_frame.loc[5, "q_large"] = 0.7
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, "--policy", "probs:q_"])
    assert "row 6" in err and "sum to" in err


@pytest.mark.parametrize("extra,needle", [
    (["--policy", "always:large", "--method", "magic"], "--method 'magic'"),
    (["--policy", "sometimes:large"], "always:MODEL"),
    (["--policy", "always:large", "--lambda", "0.5"], "--lambda needs costs"),
    (["--policy", "file:/nonexistent/router.json"], "no such router file"),
    (["--policy", "always:large", "--costs", "small=abc,large=1"], "not a number"),
])
def test_bad_options(tmp_path, capsys, small_frame, extra, needle):
    err = _bad(tmp_path, capsys, small_frame, [*ARGS, *extra])
    assert needle in err


def test_missing_column_and_learn_with_impossible_budget(tmp_path, capsys, small_frame):
    err = _bad(tmp_path, capsys, small_frame, ["--action", "model", "--reward", "score", "--propensity", "p",
                                               "--policy", "always:large"])
    assert "no column 'score'" in err and "--reward" in err
    path = tmp_path / "bad.csv"
    router = tmp_path / "router.json"
    code = run(["routing", "learn", str(path), *ARGS, "--costs", "small=0.1,large=1", "--budget", "0.01", "--out",
                str(router), "--folds", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "cheapest" in err and not router.exists()


def test_tour_rows():
    from llmcause.routing.tour import tour_rows

    steps = []
    rows = tour_rows(quick=True, seed=0, progress=steps.append)
    from llmcause.routing.tour import tour_steps

    assert len(steps) == tour_steps(quick=True)  # the tour's bar reaches its total
    assert len(rows) == 2 and all(r.stage == "routing" for r in rows)
    always, router = rows
    assert always.covered and abs(always.naive_value - always.truth) > 0.05
    assert router.causal.covers(router.truth)
    assert router.naive_value > router.truth  # valued on its own training rows, a router looks better than it is


def test_same_seed_same_output_and_input_untouched(log_csv, capsys):
    from llmcause.routing.evaluate import evaluate_policies
    from llmcause.routing.logs import read_log

    argv = ["routing", "evaluate", str(log_csv), *BASE, "--costs", PRICES, "--policy", "always:medium", "--method",
            "all", "--seed", "7", "--json"]
    first = _json(capsys, argv)
    assert _json(capsys, argv) == first
    frame = pd.read_csv(log_csv)
    before = frame.copy()
    log = read_log(frame, action="model", reward="quality", propensity="propensity", costs=PRICES,
                   features=["difficulty", "topic"])
    evaluate_policies(log, ["column:cheap_router"])
    pd.testing.assert_frame_equal(frame, before)


def test_reward_range_bounds_the_el_interval_and_is_checked(tmp_path, capsys, small_frame):
    frame = small_frame.assign(score=[0.2, 3.5, 1.0, 4.0, 0.5, 2.0])
    argv = ["--action", "model", "--reward", "score", "--propensity", "p", "--features", "x",
            "--policy", "always:large", "--method", "dr,el"]
    err = _bad(tmp_path, capsys, frame, argv)
    assert "column 'score', row 2" in err and "--reward-range 0,1" in err
    err = _bad(tmp_path, capsys, frame, argv + ["--reward-range", "0"])
    assert "--reward-range '0'" in err
    err = _bad(tmp_path, capsys, frame, argv + ["--reward-range", "5,1"])
    assert "LO < HI" in err
    path = tmp_path / "ok.csv"
    frame.to_csv(path, index=False)
    doc = _json(capsys, ["routing", "evaluate", str(path), *argv, "--reward-range", "0,5", "--json"])
    el = [e for e in doc["estimates"] if e["method"] == "ips-el"][0]
    assert (el["diagnostics"]["r_min"], el["diagnostics"]["r_max"]) == (0.0, 5.0)
    assert 0.0 <= el["ci_low"] <= el["ci_high"] <= 5.0


def test_el_interval_uses_clusters(tmp_path, capsys):
    rng = np.random.default_rng(7)
    prompts = np.repeat(np.arange(120), 5)
    base = rng.random(120)[prompts]
    big = rng.random(600) < 0.4
    frame = pd.DataFrame({"prompt": prompts, "model": np.where(big, "large", "small"), "p": np.where(big, 0.4, 0.6),
                          "y": (rng.random(600) < base).astype(int), "x": base + 0.1 * rng.standard_normal(600)})
    path = tmp_path / "c.csv"
    frame.to_csv(path, index=False)
    argv = ["routing", "evaluate", str(path), *ARGS, "--policy", "always:large", "--method", "el", "--json"]
    plain = [e for e in _json(capsys, argv)["estimates"] if e["method"] == "ips-el"][0]
    clus = [e for e in _json(capsys, argv + ["--cluster", "prompt"])["estimates"] if e["method"] == "ips-el"][0]
    assert clus["diagnostics"]["n_clusters"] == 120 and "n_clusters" not in plain["diagnostics"]
    assert clus["ci_high"] - clus["ci_low"] > 1.2 * (plain["ci_high"] - plain["ci_low"])


def test_time_may_also_be_a_feature_of_the_nuisances(log_csv, capsys):
    """--time t with t among --features: the outcome and propensity models see time (they follow the drift)."""
    from llmcause.routing.logs import read_log

    log = read_log(pd.read_csv(log_csv), action="model", reward="quality", features=["difficulty", "time"],
                   time="time")
    assert log.X.shape[1] == 2
    assert np.corrcoef(log.X[:, 1], log.time)[0, 1] > 0.999
    doc = _json(capsys, ["routing", "evaluate", str(log_csv), "--action", "model", "--reward", "quality",
                         "--propensity", "propensity", "--features", "difficulty,length,topic,time",
                         "--policy", "always:medium", "--time", "time", "--windows", "3", "--json"])
    assert "always:medium [window 3/3]" in {e["name"] for e in doc["estimates"]}


def test_a_date_time_column_cannot_be_a_feature(tmp_path, capsys):
    frame = synthetic_world(300, seed=1).frame
    frame["when"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(frame["time"] * 30, unit="D")
    path = tmp_path / "dated.csv"
    frame.to_csv(path, index=False)
    code = run(["routing", "evaluate", str(path), "--action", "model", "--reward", "quality", "--propensity",
                "propensity", "--features", "difficulty,when", "--time", "when", "--policy", "always:small"])
    err = capsys.readouterr().err
    assert code == 2 and "'when'" in err and "numeric" in err and "Traceback" not in err
