"""Models in the loop through the commands: executed swap audit, judge scoring, RATE with model specs.

Chat models are served by the loopback server of `llmcause.runs.loopback`
(nothing beyond 127.0.0.1); sandbox models have known answers.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.runs.loopback import LoopbackServer

pytest.importorskip("openai")

KEY = "sk-wiring-8d2e6a41c0"


@pytest.fixture
def battles_csv(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"prompt": f"Question {i}: how does {{this}} work?", "text_a": "alpha " * int(rng.integers(3, 40)),
             "text_b": "beta " * int(rng.integers(3, 40))} for i in range(60)]
    path = tmp_path / "battles.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys, argv):
    code, out, err = _run(capsys, [*argv, "--json"])
    assert code == 0, err
    return json.loads(out), err


def _by(doc, estimand_start):
    return [e for e in doc["estimates"] if e["estimand"].startswith(estimand_start)]


def test_swap_audit_with_sandbox_judges_finds_the_known_bias(capsys, battles_csv):
    base = ["evaluation", "audit", battles_csv, "--text-a", "text_a", "--text-b", "text_b", "--prompt", "prompt"]
    first, _ = _json(capsys, [*base, "--judge-model", "sandbox:first", "--sample", "40"])
    assert _by(first, "position bias")[0]["estimate"] == 0.5
    assert _by(first, "order consistency")[0]["estimate"] == 0.0
    assert _by(first, "position bias")[0]["n"] == 80
    longer, _ = _json(capsys, [*base, "--judge-model", "sandbox:longer"])
    bias = _by(longer, "position bias")[0]
    assert bias["ci_low"] <= 0.0 <= bias["ci_high"]
    ties = sum(len(a) == len(b) for a, b in pd.read_csv(battles_csv)[["text_a", "text_b"]].to_numpy())
    assert _by(longer, "order consistency")[0]["estimate"] == pytest.approx(1 - ties / 60)


def _position_biased(messages, body):
    """Picks A for three prompts in four (by a hash of the prompt), else the longer answer: a biased judge."""
    text = messages[-1]["content"]
    h = int(hashlib.sha256(text.split("Response A:")[0].encode()).hexdigest(), 16)
    if h % 4:
        return "A"
    a = text.split("Response A:\n")[1].split("\n\nResponse B:")[0]
    b = text.split("Response B:\n")[1]
    return "Verdict: A" if len(a) >= len(b) else "[[B]]"


def test_swap_audit_through_an_endpoint_is_cached_and_keeps_the_key_out(capsys, battles_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", KEY)
    store, report = tmp_path / "runs.db", tmp_path / "audit.html"
    with LoopbackServer(responder=_position_biased) as server:
        argv = ["evaluation", "audit", battles_csv, "--text-a", "text_a", "--text-b", "text_b", "--prompt",
                "prompt", "--judge-model", f"openai:judge-1@{server.base_url}", "--api-key-env", "JUDGE_KEY",
                "--store", store, "--sample", "30", "--report", report]
        doc, err = _json(capsys, argv)
        assert server.requests == 60
        bias = _by(doc, "position bias")[0]
        assert bias["ci_low"] > 0.1  # it picks the first answer most of the time
        calls = bias["diagnostics"]["calls"]
        assert (calls["done"], calls["cached"], calls["calls"], calls["failed"]) == (60, 0, 60, 0)
        again, _ = _json(capsys, argv)
        assert server.requests == 60  # nothing asked twice
        assert _by(again, "position bias")[0]["estimate"] == bias["estimate"]
        assert _by(again, "position bias")[0]["diagnostics"]["calls"]["cached"] == 60
        code, out, err = _run(capsys, argv[:-2])
        assert code == 0 and "60 from the store" in out
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes(), f
    assert KEY not in json.dumps(doc) + err + out


def test_judge_scores_only_the_empty_rows(capsys, tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    n = 120
    quality = rng.integers(1, 10, n)
    df = pd.DataFrame({"response": [f"answer {i} of quality {q} " + "x" * int(q) for i, q in enumerate(quality)],
                       "judge": np.where(np.arange(n) < 40, quality + 0.0, np.nan),
                       "label": np.where(np.arange(n) % 3 == 0, quality / 10, np.nan),
                       "group": np.where(np.arange(n) % 2 == 0, "m1", "m2")})
    data = tmp_path / "rows.csv"
    df.to_csv(data, index=False)

    def scorer(messages, body):
        text = messages[-1]["content"]
        if "quality 9" in text and "single number" not in text:
            return "Hard to say."
        return "Score: " + text.split(" of quality ")[1].split()[0]

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackServer(responder=scorer) as server:
        doc, _ = _json(capsys, ["evaluation", "judge", data, "--judge", "judge", "--label", "label", "--group",
                                "group", "--judge-model", f"openai:scorer@{server.base_url}", "--response",
                                "response", "--method", "ppi++"])
        n9 = int(np.sum(quality[40:] == 9))
        assert server.requests == 80 + n9  # only the empty rows, and each 9 asked once more
    calls = doc["estimates"][0]["diagnostics"]["calls"]
    assert calls["done"] == 80 + n9 and calls["parse_failures"] == 0
    assert sum(e["n"] for e in doc["estimates"] if e["method"] == "ppi++") == n


def test_model_options_bad_input(capsys, battles_csv, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    base = ["evaluation", "audit", battles_csv, "--text-a", "text_a", "--text-b", "text_b"]
    cases = [
        ([*base, "--judge-model", "gpt-4o"], "sandbox:"),
        ([*base, "--judge-model", "sandbox:nope"], "sandbox:first"),
        ([*base, "--judge-model", "openai:gpt-4o-mini"], "OPENAI_API_KEY"),
        ([*base, "--judge-model", "python:no_such_module_x:judge"], "no_such_module_x"),
        ([*base, "--judge-model", "openai:m@http://127.0.0.1:9/v1", "--judge-template", "{response_a} only"],
         "{response_b}"),
        ([*base, "--judge-model", "sandbox:first", "--store", battles_csv], "input file"),
        ([*base, "--judge-model", "sandbox:first", "--store", tmp_path / "missing" / "r.db"], "does not exist"),
        (["evaluation", "audit", battles_csv, "--judge-model", "sandbox:first", "--text-a", "text_a"], "--text-b"),
        ([*base[:-2], "--text-b", "nope", "--judge-model", "sandbox:first"], "nope"),
        (["evaluation", "judge", battles_csv, "--judge", "j", "--label", "l", "--judge-model", "sandbox:first"],
         "--response"),
        (["evaluation", "judge", battles_csv, "--judge", "text_a", "--label", "l", "--judge-model",
          "python:no_such_module_x:f", "--response", "text_b"], "no_such_module_x"),
        (["alignment", "rate", battles_csv, "--text", "text_a", "--rewriter", "openai:gpt-4o"], "OPENAI_API_KEY"),
        (["alignment", "rate", battles_csv, "--text", "text_a", "--reward", "sandbox:nothing"], "sandbox:length"),
        (["alignment", "rate", battles_csv, "--text", "text_a", "--reward", "openai:m@http://127.0.0.1:9/v1",
          "--reward-template", "no placeholder"], "{response}"),
        (["alignment", "rate", battles_csv, "--text", "text_a", "--rewrite-on-template", "nothing"], "{response}"),
    ]
    for argv, needle in cases:
        code, out, err = _run(capsys, argv)
        assert code == 2, (argv, out, err)
        assert out == "" and "Traceback" not in err and needle in err, (argv, err)
        assert len(err.strip().splitlines()) == 1, err
    code, out, err = _run(capsys, ["evaluation", "judge", battles_csv, "--judge", "text_a", "--label", "text_b",
                                   "--judge-model", "sandbox:first", "--response", "text_b"])
    assert code == 2 and err.strip() == "error: --judge-model sandbox:first: no such sandbox model (none here)"
    rows = pd.read_csv(battles_csv).assign(j=["7"] + ["x"] + [None] * 58, l=np.nan)
    bad = tmp_path / "bad.csv"
    rows.to_csv(bad, index=False)
    code, out, err = _run(capsys, ["evaluation", "judge", bad, "--judge", "j", "--label", "l", "--judge-model",
                                   "openai:m@http://127.0.0.1:9/v1", "--response", "text_a"])
    assert code == 2 and "column 'j', row 2" in err and "'x' is not a number" in err, err
    not_a_store = tmp_path / "notes.db"
    not_a_store.write_text("hello")
    code, out, err = _run(capsys, [*base, "--judge-model", "openai:m@http://127.0.0.1:9/v1", "--store",
                                   not_a_store])
    assert code == 2 and "not a run store" in err
    assert not_a_store.read_text() == "hello"


def _rewrite_and_reward(messages, body):
    """A rewriter that really changes the length and a reward of 3 + 2·1{at least 20 words} (true effect 2)."""
    text = messages[-1]["content"]
    response = text.split("Response:\n", 1)[-1]
    words = response.split()
    if text.startswith("Rewrite the response below so that it is longer"):
        return " ".join(words + ["indeed"] * max(0, 25 - len(words)))
    if text.startswith("Rewrite the response below so that it is short"):
        return " ".join(words[:8])
    if "unreadable" in response:
        return "no idea"
    return f"{3 + 2 * (len(words) >= 20)}"


def test_rate_with_a_chat_rewriter_and_reward(capsys, tmp_path, monkeypatch):
    rows = [{"response": " ".join([f"w{i}"] * (30 if i % 2 else 6)) + (" FAULT=503x1" if i == 3 else ""),
             "prompt": f"p{i}"} for i in range(16)]
    rows[4]["response"] = "short but unreadable"
    data = tmp_path / "responses.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackServer(responder=_rewrite_and_reward) as server:
        spec = f"openai:toy@{server.base_url}"
        argv = ["alignment", "rate", data, "--text", "response", "--prompt", "prompt", "--threshold", "20",
                "--rewriter", spec, "--reward", spec, "--store", tmp_path / "runs.db", "--max-retries", "2",
                "--rewrites", tmp_path / "rewrites.csv"]
        doc, err = _json(capsys, argv)
        made = server.requests
        rate = [e for e in doc["estimates"] if e["method"] == "rate" and e["name"] == "length ATE"][0]
        assert rate["estimate"] == pytest.approx(2.0) and rate["n"] == 15
        assert any("1 of 16 responses left out" in w for w in doc["warnings"])
        calls = rate["diagnostics"]["calls"]
        assert calls["failed"] == 0 and set(calls["errors"]) == {"503"}
        assert calls["parse_failures"] == 3  # the original and both of its rewrites
        again, _ = _json(capsys, argv)
        assert server.requests == made and again["estimates"][0]["diagnostics"]["calls"]["calls"] == 0
        assert [e["estimate"] for e in again["estimates"]] == [e["estimate"] for e in doc["estimates"]]
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes()


def test_rate_with_python_models(capsys, tmp_path, monkeypatch):
    (tmp_path / "mymodels_rate.py").write_text(
        "def rewrite(prompt):\n"
        "    body = prompt.split('Response:\\n', 1)[1]\n"
        "    words = body.split()\n"
        "    return ' '.join(words + ['more'] * 25) if 'longer' in prompt else ' '.join(words[:5])\n"
        "class Reward:\n"
        "    def score(self, texts, prompts=None):\n"
        "        return [1.5 * (len(t.split()) >= 20) for t in texts]\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = [{"response": " ".join(["x"] * (30 if i % 2 else 6))} for i in range(10)]
    data = tmp_path / "responses.csv"
    pd.DataFrame(rows).to_csv(data, index=False)
    doc, _ = _json(capsys, ["alignment", "rate", data, "--text", "response", "--threshold", "20", "--rewriter",
                            "python:mymodels_rate:rewrite", "--reward", "python:mymodels_rate:Reward"])
    rate = [e for e in doc["estimates"] if e["method"] == "rate" and e["name"] == "length ATE"][0]
    assert rate["estimate"] == pytest.approx(1.5)
    assert rate["diagnostics"]["calls"]["done"] > 0  # the callable rewriter went through the call layer


def _tool_agent(messages, body):
    """A served agent for the tool-use world: search the target, multiply, answer; reads only the transcript."""
    import re

    text = messages[-1]["content"]
    task = re.search(r"population of (.+?) times (\d+)\?", text)
    results = re.findall(r"search result: (.+?) = (\d+)", text)
    calcs = re.findall(r"Observation: calc: (-?\d+)", text)
    if calcs:
        return f"Final: answer[{calcs[-1]}]"
    if results:
        return f"calc[{results[-1][1]}*{task.group(2)}]"
    return f"I will look it up. search[{task.group(1)}]"


def test_agents_simulate_with_a_served_agent_is_cached(capsys, tmp_path, monkeypatch):
    pytest.importorskip("llmcause.agents")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with LoopbackServer(responder=_tool_agent) as server:
        argv = ["agents", "simulate", "-n", "4", "--env", "tool_use", "--agent", f"openai:agent@{server.base_url}",
                "--out", tmp_path / "traces.jsonl", "--store", tmp_path / "runs.db"]
        doc, _ = _json(capsys, argv)
        made = server.requests
        assert made > 0 and doc["calls"]["done"] == made and doc["calls"]["failed"] == 0
        first = (tmp_path / "traces.jsonl").read_text()
        assert "search[" in first and "answer[" in first
        again, _ = _json(capsys, argv)
        assert server.requests == made and again["calls"]["cached"] == made
        assert (tmp_path / "traces.jsonl").read_text() == first
        assert again["estimates"] == doc["estimates"]
    for f in tmp_path.iterdir():
        assert KEY.encode() not in f.read_bytes()
