"""`llmcause evaluation ...` commands: JSON contract, reports, and bad inputs (exit 2, one plain line)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.evaluation import judge_world, load_arena_judges, load_cje_arena


@pytest.fixture(scope="module")
def world_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "world.csv"
    judge_world(400, label_fraction=0.2, seed=1).frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def arena_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "arena.csv"
    load_cje_arena().to_csv(path, index=False)
    return path


def _json(capsys, argv):
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out), err


def _fails(capsys, argv, *needles):
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, (needle, err)
    return err


def test_judge_json_contract(capsys, arena_csv):
    doc, _ = _json(capsys, ["evaluation", "judge", str(arena_csv), "--judge", "judge_score", "--label",
                            "oracle_label", "--group", "policy", "--cluster", "prompt_id", "--calibrate-on", "base",
                            "--json"])
    assert doc["command"] == "evaluation judge"
    calibrated = [e for e in doc["estimates"] if e["method"] == "calibrated"]
    naive = {e["name"]: e for e in doc["estimates"] if e["method"] == "naive"}
    assert [e["name"] for e in calibrated] == ["base", "clone", "parallel_universe_prompt", "unhelpful"]
    assert len(doc["estimates"]) == 8 and set(naive) == {e["name"] for e in calibrated}
    un = calibrated[3]
    assert naive["unhelpful"]["estimate"] > un["ci_high"]  # the judge's own mean sits beside, and is off
    assert un["estimand"] == "mean oracle_label" and un["n"] == 1000 and un["diagnostics"]["n_labeled"] == 50
    assert un["ci_low"] < un["estimate"] < un["ci_high"] < 0.25
    assert any("'unhelpful'" in w and "does not transport" in w for w in doc["warnings"])


def test_judge_compare_and_all_methods(capsys, world_csv):
    doc, _ = _json(capsys, ["evaluation", "judge", str(world_csv), "--judge", "judge_score", "--label", "label",
                            "--group", "model", "--cluster", "prompt_id", "--method", "all", "--compare", "--json"])
    methods = {e["method"] for e in doc["estimates"]}
    assert methods == {"calibrated", "ppi++", "ppi", "labeled", "naive"}
    diffs = [e for e in doc["estimates"] if " - " in e["name"]]
    assert len(diffs) == 6 * 5
    d = [e for e in diffs if e["name"] == "birch - atlas" and e["method"] == "calibrated"][0]
    assert d["estimand"] == "difference in mean label"
    assert "p_holm" in d["diagnostics"] and "ci_low_simultaneous" in d["diagnostics"]
    group = [e for e in doc["estimates"] if e["name"] == "birch" and e["method"] == "calibrated"][0]
    assert {"rank", "rank_low", "rank_high"} <= set(group["diagnostics"])
    d = group["diagnostics"]
    assert d["ci_low_simultaneous"] < group["ci_low"] < group["ci_high"] < d["ci_high_simultaneous"]


def test_judge_report_and_table(capsys, world_csv, tmp_path):
    report = tmp_path / "r.html"
    code = run(["evaluation", "judge", str(world_csv), "--judge", "judge_score", "--label", "label", "--group",
                "model", "--compare", "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "birch - atlas" in out and "calibrated" in out
    html = report.read_text()
    assert "Ranking (calibrated)" in html and "Judge score against label" in html and "<img" in html


def test_judge_label_probabilities(capsys, tmp_path):
    w = judge_world(400, label_fraction=0.2, labeling="unequal", seed=2)
    path = tmp_path / "w.parquet"
    w.frame.to_parquet(path)
    doc, _ = _json(capsys, ["evaluation", "judge", str(path), "--judge", "judge_score", "--label", "label",
                            "--group", "model", "--label-prob", "label_prob", "--method", "ppi++", "--json"])
    assert [e["method"] for e in doc["estimates"]] == ["ppi++"] * 4 + ["naive"] * 4
    assert "labelled subset" in doc["estimates"][0]["diagnostics"]["design"]
    doc, _ = _json(capsys, ["evaluation", "judge", str(path), "--judge", "judge_score", "--label", "label",
                            "--group", "model", "--label-prob", "label_prob", "--method", "ppi++", "--no-naive",
                            "--json"])
    assert {e["method"] for e in doc["estimates"]} == {"ppi++"}


def _write(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture
def small():
    return pd.DataFrame({"model": ["a", "a", "a", "b", "b", "b"], "judge": [0.2, 0.5, 0.9, 0.4, 0.6, 0.8],
                         "label": [0.1, np.nan, 0.8, 0.5, np.nan, 0.6], "p": [0.5] * 6, "prompt": list("xyzxyz")})


def test_bad_inputs_exit_2(capsys, tmp_path, small):
    base = ["evaluation", "judge"]
    opts = ["--judge", "judge", "--label", "label", "--group", "model", "--method", "ppi"]
    path = _write(tmp_path, small.assign(label=np.nan), "nolabels.csv")
    _fails(capsys, [*base, path, *opts], "nolabels.csv", "'label'", "no row is labelled")
    path = _write(tmp_path, small.assign(label=["good", None, "bad", "ok", None, "good"]), "text.csv")
    _fails(capsys, [*base, path, *opts], "text.csv", "'label'", "row 1", "'good' is not a number")
    path = _write(tmp_path, small, "rg.csv")
    _fails(capsys, [*base, path, "--judge", "judge", "--label", "label", "--method", "rg"], "rg.csv", "'judge'",
           "row 1", "not 0 or 1")
    path = _write(tmp_path, pd.concat([small, small.iloc[[0]].assign(model="c")]), "one.csv")
    _fails(capsys, [*base, path, *opts], "one.csv", "'model'", "row 7", "group 'c' has only one row")
    for value, bound in ((0.0, "above 0"), (1.5, "at most 1")):
        p = small.assign(p=[0.5, 0.5, value, 0.5, 0.5, 0.5])
        path = _write(tmp_path, p, "prob.csv")
        _fails(capsys, [*base, path, *opts, "--label-prob", "p"], "prob.csv", "'p'", "row 3", bound)
    path = _write(tmp_path, small.assign(judge=[0.2, np.nan, 0.9, 0.4, 0.6, 0.8]), "nan.csv")
    _fails(capsys, [*base, path, *opts], "nan.csv", "'judge'", "row 2", "missing")
    path = _write(tmp_path, small, "ok.csv")
    _fails(capsys, [*base, path, "--judge", "score", "--label", "label"], "ok.csv", "no column 'score'",
           "--judge")
    _fails(capsys, [*base, path, *opts[:4], "--method", "calibrated"], "labelled rows to learn the calibration")
    _fails(capsys, [*base, str(tmp_path / "absent.csv"), *opts], "absent.csv", "no such file")


def test_bad_input_leaves_no_report(capsys, tmp_path, small):
    report = tmp_path / "out.html"
    path = _write(tmp_path, small.assign(label=np.nan))
    _fails(capsys, ["evaluation", "judge", path, "--judge", "judge", "--label", "label", "--report", str(report)])
    assert not report.exists()
    _fails(capsys, ["evaluation", "judge", path, "--judge", "judge", "--label", "label", "--report",
                    str(tmp_path / "nope" / "r.html")], "does not exist")


def test_battles_command(capsys, tmp_path):
    data = load_arena_judges("gpt-4o-mini")
    keep = np.random.default_rng(1).random(data.shape[0]) < 0.3
    data = data.assign(human=np.where(keep, data.human_winner, None))
    path = _write(tmp_path, data, "battles.csv")
    doc, _ = _json(capsys, ["evaluation", "battles", path, "--judge", "judge_pick", "--human", "human",
                            "--missing-judge", "drop", "--json"])
    names = [e["name"] for e in doc["estimates"]]
    assert "claude-opus-4-20250514 vs gemini-2.5-pro" in names and "gemini-2.5-pro" in names
    assert any("without a judge pick were dropped" in w for w in doc["warnings"])
    methods = [e["method"] for e in doc["estimates"]]
    assert methods.count("ppi++") == methods.count("naive") > 0  # the judge-only answer beside each estimate
    assert len(set(doc["warnings"])) == len(doc["warnings"])
    _fails(capsys, ["evaluation", "battles", path, "--judge", "judge_pick", "--human", "human"], "battles.csv",
           "'judge_pick'", "missing")
    bad = _write(tmp_path, data.assign(judge_pick=data.judge_pick.fillna("A").replace({"B": "maybe"})),
                 "badpick.csv")
    _fails(capsys, ["evaluation", "battles", bad, "--judge", "judge_pick", "--human", "human"], "badpick.csv",
           "'maybe' is not a pick")


def test_audit_command(capsys, tmp_path, world_csv):
    data = load_arena_judges()
    path = _write(tmp_path, data, "arena.csv")
    doc, _ = _json(capsys, ["evaluation", "audit", path, "--pick", "judge_pick", "--human", "human_winner",
                            "--group", "judge", "--pair", "id", "--missing-judge", "drop", "--json"])
    bias = [e for e in doc["estimates"] if e["estimand"].startswith("position bias")]
    assert len(bias) == 2 and all(e["estimate"] > 0 for e in bias)
    doc, _ = _json(capsys, ["evaluation", "audit", str(world_csv), "--judge", "judge_score", "--label", "label",
                            "--covariates", "length,model", "--json"])
    assert any(e["method"] == "calibration curve" for e in doc["estimates"])
    assert any(e["name"] == "length" and e["method"] == "ols" for e in doc["estimates"])
    _fails(capsys, ["evaluation", "audit", str(world_csv), "--judge", "judge_score"], "--pick", "--label")


def test_plan_command_and_active_plan(capsys, tmp_path, world_csv):
    active = tmp_path / "active.csv"
    doc, _ = _json(capsys, ["evaluation", "plan", str(world_csv), "--judge", "judge_score", "--label", "label",
                            "--halfwidth", "0.02", "--cost-label", "1", "--cost-judge", "0.01", "--active",
                            str(active), "--budget", "100", "--json"])
    names = [e["name"] for e in doc["estimates"]]
    assert names == ["labels", "judge calls", "cost", "labels without the judge"]
    labels = doc["estimates"][0]
    assert labels["ci_low"] <= labels["estimate"] <= labels["ci_high"]
    assert labels["estimate"] < doc["estimates"][3]["estimate"]
    plan = pd.read_csv(active)
    assert {"label_prob", "to_label"} <= set(plan.columns)
    assert plan.to_label.sum() > 50 and plan.label_prob.between(0, 1).all()
    assert plan.loc[plan.label.notna(), "to_label"].sum() == 0
    _fails(capsys, ["evaluation", "plan", str(world_csv), "--judge", "judge_score", "--label", "label",
                    "--halfwidth", "0"], "--halfwidth must be positive")
    _fails(capsys, ["evaluation", "plan", str(world_csv), "--judge", "judge_score", "--label", "label",
                    "--halfwidth", "0.02", "--budget", "10"], "--active and --budget go together")


def test_example_command(capsys, tmp_path):
    out = tmp_path / "ex.csv"
    assert run(["evaluation", "example", "cje-arena", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert frame.shape[0] == 4000 and frame.oracle_label.notna().sum() == 480 + 3 * 50
    assert run(["evaluation", "example", "battles", "--out", str(out)]) == 0
    assert "written" not in capsys.readouterr().err
    _fails(capsys, ["evaluation", "example", "world", "--out", str(tmp_path / "x.txt")], ".csv")


def test_judge_title_without_group_reads_naturally(capsys, tmp_path):
    rng = np.random.default_rng(3)
    score = rng.random(40).round(3)
    df = pd.DataFrame({"model": np.tile(["a", "b"], 20), "score": score,
                       "human": np.where(np.arange(40) % 2 == 0, score.round(1), np.nan)})
    path = tmp_path / "judged.csv"
    df.to_csv(path, index=False)
    base = ["evaluation", "judge", str(path), "--judge", "score", "--label", "human", "--method", "labeled"]
    assert run(base) == 0
    out = capsys.readouterr().out
    assert "Mean human from judge 'score'" in out and "per table" not in out
    assert run([*base, "--group", "model"]) == 0
    assert "Mean human per model from judge 'score'" in capsys.readouterr().out
    assert run([*base, "--json"]) == 0
    assert {e["name"] for e in json.loads(capsys.readouterr().out)["estimates"]} == {"all"}  # the JSON name stays
