"""`llmcause agents ...` from the command line: outputs, the JSON contract, and bad inputs (exit 2)."""

from __future__ import annotations

import json
import pathlib

import pytest

from llmcause.cli import run


@pytest.fixture(autouse=True)
def _plugins(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).parent))


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    folder = tmp_path_factory.mktemp("agents")
    out, truth = folder / "t.jsonl", folder / "truth.jsonl"
    assert run(["agents", "simulate", "--episodes", "16", "--seed", "2", "--out", str(out), "--truth", str(truth),
                "--json"]) == 0
    return out, truth


def _json(capsys, argv):
    code = run(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def test_simulate_writes_traces_and_truth(traces):
    out, truth = traces
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == 16 and all(x["env"] == "tool_use" for x in lines)
    known = [json.loads(x) for x in truth.read_text().splitlines()]
    assert [k["episode_id"] for k in known] == [x["episode_id"] for x in lines]
    for k, x in zip(known, lines):
        assert (k["decisive_step"] is None) == bool(x["success"])


def test_attribute_json_contract(traces, capsys):
    out, truth = traces
    doc = _json(capsys, ["agents", "attribute", str(out), "--truth", str(truth), "--json", "--budget", "120"])
    assert doc["command"] == "agents attribute" and set(doc) == {"command", "estimates", "warnings", "episodes"}
    failed = [json.loads(x) for x in out.read_text().splitlines() if not json.loads(x)["success"]]
    assert [e["episode_id"] for e in doc["episodes"]] == [x["episode_id"] for x in failed]
    for e in doc["episodes"]:
        assert [f["step"] for f in e["effects"]] == list(range(len(e["effects"])))
        assert all(-1 <= f["ci_low"] <= f["estimate"] <= f["ci_high"] <= 1 for f in e["effects"])
        assert e["replays"] <= 120
    methods = {x["method"] for x in doc["estimates"] if x["estimand"] == "accuracy"}
    assert methods == {"counterfactual replay", "baseline: last step", "baseline: least likely action"}


def test_attribute_with_a_user_plugin_and_fixed_replicates(tmp_path, capsys):
    out = tmp_path / "coin.jsonl"
    assert run(["agents", "simulate", "--episodes", "12", "--env", "python:agents_plugins:CoinEnv", "--agent",
                "python:agents_plugins:PeekAgent", "--out", str(out), "--json"]) == 0
    capsys.readouterr()
    doc = _json(capsys, ["agents", "attribute", str(out), "--replicates", "6", "--json"])
    for e in doc["episodes"]:  # guessing without peeking: peeking instead always wins
        assert e["decisive_step"] == 0 and e["effects"][0]["replicates"] == 6


def _bad(tmp_path, capsys, argv):
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    return err


def test_bad_inputs_exit_2_with_one_line(traces, tmp_path, capsys):
    out, truth = traces
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"episode_id": "a", "seed": 1, "steps": [{"observation": "o", "action": "x", "prob": 0}], '
                   '"success": 0}\n')
    assert "line 1" in _bad(tmp_path, capsys, ["agents", "attribute", str(bad)])
    assert "no such file" in _bad(tmp_path, capsys, ["agents", "attribute", str(tmp_path / "none.jsonl")])
    unknown = tmp_path / "u.jsonl"
    unknown.write_text(out.read_text().replace('"env": "tool_use"', '"env": "mystery"'))
    err = _bad(tmp_path, capsys, ["agents", "attribute", str(unknown)])
    assert "unknown env spec 'mystery'" in err and "line 1" in err
    assert "python:module:attr" in _bad(tmp_path, capsys, ["agents", "attribute", str(out), "--env", "python:x"])
    # the log does not come from this environment: replay stops
    assert "deterministic" in _bad(tmp_path, capsys, ["agents", "attribute", str(out), "--env",
                                                     "python:agents_plugins:CoinEnv", "--agent",
                                                     "python:agents_plugins:PeekAgent"])
    before = out.read_text()
    assert "input file" in _bad(tmp_path, capsys, ["agents", "simulate", "-n", "3", "--out", str(out), "--truth",
                                                  str(out)])
    assert out.read_text() == before
    assert "--truth" in _bad(tmp_path, capsys, ["agents", "simulate", "-n", "3", "--out", str(tmp_path / "c.jsonl"),
                                               "--env", "python:agents_plugins:CoinEnv", "--agent",
                                               "python:agents_plugins:PeekAgent", "--truth",
                                               str(tmp_path / "t.jsonl")])
    assert not (tmp_path / "c.jsonl").exists()
    bad_truth = tmp_path / "bt.jsonl"
    bad_truth.write_text('{"episode_id": "e0"}\n')
    assert "decisive_step" in _bad(tmp_path, capsys, ["agents", "attribute", str(out), "--truth", str(bad_truth)])
    bad_truth.write_text('{"episode_id": "e0", "decisive_step": 1}\n[1, 2]\n{oops\n')
    assert "line 2 is not a JSON object" in _bad(tmp_path, capsys, ["agents", "attribute", str(out), "--truth",
                                                                  str(bad_truth)])
