"""`llmcause alignment style | lc-winrate | rate` from the command line, good and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.alignment.simulate import simulate_battles
from llmcause.cli import run

BATTLE_COLS = ["--model-a", "model_a", "--model-b", "model_b", "--winner", "winner"]
TEXT_COLS = ["--text-a", "text_a", "--text-b", "text_b"]


@pytest.fixture(scope="module")
def world():
    return simulate_battles(400, 4, seed=11)


@pytest.fixture()
def battles_csv(world, tmp_path):
    path = tmp_path / "battles.csv"
    world.battles.to_csv(path, index=False)
    return path


def _json(capsys):
    out = capsys.readouterr().out
    return json.loads(out)


def _error(capsys):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert captured.out == ""
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_style_json_on_the_shipped_arena_slice(capsys):
    code = run(["alignment", "style", "example:arena", *BATTLE_COLS, "--features", "length,headers,lists,bold",
                "--controls", "distinct_words,numbers,is_code", "--json"])
    assert code == 0
    doc = _json(capsys)
    assert doc["command"] == "alignment style"
    est = doc["estimates"]
    models = {"claude-opus-4-20250514", "gemini-2.5-pro", "qwen3-235b-a22b-no-thinking"}
    for method in ("bt", "style-controlled"):
        got = {e["name"] for e in est if e["estimand"] == "strength" and e["method"] == method}
        assert got == models
    effects = {e["name"]: e for e in est if e["estimand"] == "style effect"}
    assert list(effects) == ["length", "headers", "lists", "bold"]
    assert effects["length"]["ci_low"] > 0  # on these 552 votes the longer answer is preferred
    methods = {e["method"] for e in est if e["estimand"].startswith("effect of length")}
    assert methods == {"naive", "style-controlled ame", "dml-plr"}
    strengths = [e["estimate"] for e in est if e["estimand"] == "strength" and e["method"] == "bt"]
    assert abs(sum(strengths)) < 1e-9  # log-odds, centred


def test_style_from_texts_matches_arena_format_reader(world, battles_csv, tmp_path, capsys):
    """The same battles as plain text columns and as Arena conversations give the same answer."""
    code = run(["alignment", "style", str(battles_csv), *BATTLE_COLS, *TEXT_COLS, "--tokenizer", "simple",
                "--no-length-effect", "--json"])
    assert code == 0
    plain = _json(capsys)["estimates"]

    def conv(text):
        return [{"role": "user", "content": [{"type": "text", "text": "a question"}]},
                {"role": "assistant", "content": [{"type": "text", "text": text}]}]

    arena = world.battles[["model_a", "model_b", "winner"]].copy()
    arena["conversation_a"] = [conv(t) for t in world.battles["text_a"]]
    arena["conversation_b"] = [conv(t) for t in world.battles["text_b"]]
    path = tmp_path / "arena.jsonl"
    arena.to_json(path, orient="records", lines=True)
    code = run(["alignment", "style", str(path), "--arena", "--tokenizer", "simple", "--no-length-effect", "--json"])
    assert code == 0
    via_arena = _json(capsys)["estimates"]
    assert [e["name"] for e in plain] == [e["name"] for e in via_arena]
    np.testing.assert_allclose([e["estimate"] for e in plain], [e["estimate"] for e in via_arena], atol=1e-12)


def test_style_by_group_and_report(battles_csv, tmp_path, capsys):
    report = tmp_path / "style.html"
    code = run(["alignment", "style", str(battles_csv), *BATTLE_COLS, *TEXT_COLS, "--tokenizer", "simple",
                "--by", "topic", "--cluster", "prompt_id", "--no-length-effect", "--report", str(report)])
    assert code == 0
    out = capsys.readouterr().out
    assert "Elo scale" in out and "joint test" in out and "report written" in out
    html = report.read_text()
    assert "Leaderboard (Elo scale)" in html and "style effects equal across topic" in html


def test_style_by_group_json(battles_csv, capsys):
    code = run(["alignment", "style", str(battles_csv), *BATTLE_COLS, *TEXT_COLS, "--tokenizer", "simple",
                "--by", "topic", "--reference", "chat", "--no-length-effect", "--json"])
    assert code == 0
    est = _json(capsys)["estimates"]
    diffs = [e for e in est if e["estimand"] == "difference in style effect"]
    assert [d["name"] for d in diffs][0] == "length [code] - length [chat]"
    assert all("p_holm" in d["diagnostics"] for d in diffs)
    joint = [e for e in est if e["method"] == "wald"][0]
    assert joint["diagnostics"]["df"] == 4 and joint["se"] is None


@pytest.mark.parametrize("change, expected", [
    (lambda df: df.assign(winner=df["winner"].where(df.index != 2, "left")),
     r"column 'winner', row 3: unknown winner value 'left'"),
    (lambda df: df.assign(model_b=df["model_b"].where(df.index != 4, df["model_a"])),
     r"row 5: model 'model-0\d' battles itself"),
    (lambda df: df.assign(text_a=df["text_a"].where(df.index != 6, None)),
     r"column 'text_a', row 7: the text is missing"),
    (lambda df: pd.concat([df, df.iloc[[0]].assign(model_b="lonely-model")], ignore_index=True),
     r"model 'lonely-model' has only 1 battle\(s\) \(row 401\)"),
    (lambda df: df.drop(columns=["winner"]), r"no column 'winner' \(given to --winner\)"),
])
def test_style_bad_inputs_exit_2_without_output(world, tmp_path, capsys, change, expected):
    path = tmp_path / "bad.csv"
    change(world.battles.copy()).to_csv(path, index=False)
    report = tmp_path / "never.html"
    code = run(["alignment", "style", str(path), *BATTLE_COLS, *TEXT_COLS, "--report", str(report)])
    assert code == 2
    err = _error(capsys)
    assert str(path) in err
    import re

    assert re.search(expected, err), err
    assert not report.exists()


def test_usage_errors_exit_2(battles_csv, capsys):
    assert run(["alignment", "style", str(battles_csv), *BATTLE_COLS, "--text-a", "text_a"]) == 2
    assert "--text-b" in _error(capsys)
    assert run(["alignment", "style", "example:nothing", *BATTLE_COLS, *TEXT_COLS]) == 2
    assert "no such example" in _error(capsys)
    assert run(["alignment", "style", str(battles_csv), "--winner", "winner", *TEXT_COLS]) == 2
    assert "--model-a" in _error(capsys)
    assert run(["alignment", "style", str(battles_csv), *BATTLE_COLS, "--features", "verbosity"]) == 2
    assert "'verbosity_a'" in _error(capsys)
    assert run(["alignment", "lc-winrate", str(battles_csv), *BATTLE_COLS, *TEXT_COLS, "--baseline", "nobody"]) == 2
    assert "baseline 'nobody'" in _error(capsys)
    assert run(["alignment", "rate", "example:responses", "--text", "response", "--reward", "ngram"]) == 2
    assert "--train" in _error(capsys)


def test_lc_winrate_json(capsys):
    code = run(["alignment", "lc-winrate", "example:alpaca", *BATTLE_COLS, "--baseline", "baseline",
                "--length-a", "length_a", "--length-b", "length_b", "--instruction", "instruction",
                "--difficulty", "difficulty", "--json"])
    assert code == 0
    est = _json(capsys)["estimates"]
    lc = [e for e in est if e["method"] == "length-controlled glm"]
    assert {e["name"] for e in lc} == {"average", "concise-strong", "verbose-weak"}
    assert all(e["se"] > e["diagnostics"]["alpacaeval_se"] for e in lc)
    assert all(e["diagnostics"]["difficulty_used"] for e in lc)


def test_lc_winrate_on_arena_texts_counts_characters(battles_csv, capsys):
    code = run(["alignment", "lc-winrate", str(battles_csv), *BATTLE_COLS, *TEXT_COLS, "--baseline", "model-01",
                "--json"])
    assert code == 0
    doc = _json(capsys)
    assert {e["name"] for e in doc["estimates"]} == {"model-02", "model-03", "model-04"}
    assert any("left out" in w for w in doc["warnings"])


def test_rate_json_and_rewrites_file(tmp_path, capsys):
    rewrites = tmp_path / "rewrites.csv"
    code = run(["alignment", "rate", "example:responses", "--text", "response", "--prompt", "prompt",
                "--cluster", "prompt_id", "--rewrites", str(rewrites), "--json"])
    assert code == 0
    est = _json(capsys)["estimates"]
    rate_ate = [e for e in est if e["name"] == "length ATE" and e["method"] == "rate"][0]
    assert rate_ate["diagnostics"]["true_effect"] == 0.5
    assert rate_ate["ci_low"] <= 0.5 <= rate_ate["ci_high"]
    frame = pd.read_csv(rewrites)
    assert frame.shape[0] == 400 and {"rewrite", "rewrite_of_rewrite"} <= set(frame.columns)


def test_rate_with_a_learnt_ngram_reward(battles_csv, tmp_path, capsys):
    responses = tmp_path / "responses.csv"
    pd.read_csv(battles_csv)[["text_a"]].rename(columns={"text_a": "response"}).head(80).to_csv(responses,
                                                                                               index=False)
    code = run(["alignment", "rate", str(responses), "--text", "response", "--attribute", "markdown",
                "--reward", "ngram", "--train", str(battles_csv), "--json"])
    assert code == 0
    methods = {e["method"] for e in _json(capsys)["estimates"]}
    assert methods == {"naive", "single rewrite", "rate", "rewrite audit"}


def test_tour_rows_cover_the_truth():
    from llmcause.alignment.tour import tour_rows

    from scipy.stats import binom

    steps = []
    rows = tour_rows(quick=True, seed=0, progress=steps.append)
    from llmcause.alignment.tour import tour_steps

    assert len(steps) == tour_steps(quick=True)  # the tour's bar reaches its total
    assert len(rows) == 7 and all(r.stage == "alignment" and r.truth is not None for r in rows)
    fair = [r for r in rows if not r.broken_assumption]
    # 95% intervals: at seed 0, no more misses than a 99% binomial bound allows (1 of 6). Each
    # estimator's coverage over many seeds is tested in its own module.
    assert sum(not r.covered for r in fair) <= binom.ppf(0.99, len(fair), 0.05)
    (leaky,) = [r for r in rows if r.broken_assumption]
    assert not leaky.covered and leaky.causal.estimate > leaky.truth and "other" in leaky.note
    off = [r for r in fair if r.naive is not None and r.naive_value is not None]
    assert sum(abs(r.naive_value - r.truth) > abs(r.causal.estimate - r.truth) for r in off) >= 4
