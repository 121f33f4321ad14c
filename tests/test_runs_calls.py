"""The call layer against a real chat-completions server on loopback, with faults injected on request."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openai")

from llmcause.runs import CallOptions, RunStore, load_model, parse_choice, parse_number, parse_spec  # noqa: E402
from llmcause.runs.calls import _Bucket  # noqa: E402
from llmcause.runs.loopback import LoopbackServer, request_identity  # noqa: E402
from llmcause.runs.models import ModelSpecError, fill_template  # noqa: E402

KEY = "sk-loopback-3f9c1e7d5b"
FAST = dict(backoff=0.01, backoff_max=0.05)
FAULTS = ["", "FAULT=429x2", "FAULT=500x1", "FAULT=503x3", "FAULT=slowx1", "FAULT=malformedx2", "FAULT=resetx1"]


def _prompts(n: int) -> list[str]:
    return [f"question {i} {FAULTS[i % len(FAULTS)]}".strip() for i in range(n)]


def _model(server, store, monkeypatch, **opts):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    options = CallOptions(**{"timeout": 20.0, "max_retries": 4, "concurrency": 8, **FAST, **opts})
    return load_model(f"openai:toy@{server.base_url}", store=store, options=options,
                      params={"temperature": 0.0, "seed": 1})


def _idents(prompts, params=None):
    params = params or {"temperature": 0.0, "seed": 1}
    return [request_identity({"model": "toy", "messages": [{"role": "user", "content": p}], **params})
            for p in prompts]


@pytest.mark.parametrize("concurrency", [1, 8])  # 1: the synchronous path; 8: the asyncio one
def test_campaign_under_faults_stores_each_result_once_and_a_rerun_makes_no_calls(tmp_path, monkeypatch,
                                                                                   concurrency):
    prompts = _prompts(28)
    # The timeout is generous (a busy machine must not turn ordinary answers into timeouts); "slow" exceeds it.
    with LoopbackServer(retry_after=0.2, slow_seconds=4.0) as server:
        store = RunStore(tmp_path / "calls.db")
        model = _model(server, store, monkeypatch, concurrency=concurrency, timeout=2.0, max_retries=6)
        texts = model.generate(prompts)
        assert texts == [f"echo: {p}" for p in prompts]
        s = model.stats.to_dict()
        assert (s["done"], s["cached"], s["failed"]) == (28, 0, 0)
        assert set(s["errors"]) == {"429", "500", "503", "timeout", "malformed", "connection"}
        # Every attempt the server saw was counted (an attempt can also time out before it arrives).
        assert s["calls"] >= server.requests
        assert s["retries"] == s["calls"] - 28
        assert all(server.answered[i] >= 1 for i in _idents(prompts))
        # Each result is stored once, at its first success.
        rows = store.runs()
        assert len(rows) == 28 and all(r["attempts"] == 1 for r in rows)
        before = server.requests
        again = _model(server, store, monkeypatch, concurrency=concurrency)
        assert again.generate(prompts) == texts
        assert server.requests == before
        assert again.stats.to_dict()["calls"] == 0 and again.stats.cached == 28
        store.close()


def test_retry_after_is_honoured(tmp_path, monkeypatch):
    with LoopbackServer(retry_after=0.4) as server:
        model = _model(server, None, monkeypatch)
        assert model.generate(["FAULT=429x1 wait"]) == ["echo: FAULT=429x1 wait"]
        (first, t0, fault), (_, t1, none) = server.log
        assert fault == "429" and none is None
        assert t1 - t0 >= 0.4  # the backoff alone would be at most 0.05 s


def test_failures_are_recorded_without_the_key_and_retried_next_run(tmp_path, monkeypatch):
    with LoopbackServer() as server:
        store = RunStore(tmp_path / "calls.db")
        model = _model(server, store, monkeypatch, max_retries=2)
        out = model.generate(["FAULT=500x5 never", "FAULT=400x1 refused", "FAULT=401x1 who", "fine"])
        assert out == [None, None, None, "echo: fine"]
        s = model.stats.to_dict()
        assert s["failed"] == 3 and s["errors"] == {"500": 3, "400": 1, "401": 1}
        # 500 is retried (3 calls); 400 and 401 are not.
        assert s["calls"] == 3 + 1 + 1 + 1
        assert all(KEY in a for a in server.authorization)  # the key did travel to the server ...
        failed = store.runs(status="failed")
        assert len(failed) == 3 and all(KEY not in str(r) for r in failed)  # ... but is nowhere in the store
        store.close()
        for f in tmp_path.iterdir():
            assert KEY.encode() not in f.read_bytes()
        # The next run asks the failed ones again (the 400 and 401 now succeed), not the stored one.
        store = RunStore(tmp_path / "calls.db")
        again = _model(server, store, monkeypatch, max_retries=2)
        assert again.generate(["FAULT=400x1 refused", "FAULT=401x1 who", "fine"]) == [
            "echo: FAULT=400x1 refused", "echo: FAULT=401x1 who", "echo: fine"]
        assert again.stats.cached == 1 and again.stats.done == 2
        store.close()


def test_killed_campaign_resumes_with_nothing_lost(tmp_path, monkeypatch):
    prompts = [f"item {i}" for i in range(60)]
    with LoopbackServer(latency=0.05) as server:
        script = tmp_path / "campaign.py"
        script.write_text(textwrap.dedent(f"""
            from llmcause.runs import CallOptions, RunStore, load_model
            store = RunStore({str(tmp_path / 'calls.db')!r})
            model = load_model("openai:toy@{server.base_url}", store=store,
                               options=CallOptions(concurrency=2, timeout=5), params={{"temperature": 0.0, "seed": 1}})
            model.generate({prompts!r})
        """))
        env = {**os.environ, "OPENAI_API_KEY": KEY}
        proc = subprocess.Popen([sys.executable, str(script)], env=env)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(server.answered.values()) < 15:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        store = RunStore(tmp_path / "calls.db")
        stored_before = set(r["key"] for r in store.runs())
        assert 10 <= len(stored_before) < 60
        model = _model(server, store, monkeypatch)
        texts = model.generate(prompts)
        assert texts == [f"echo: {p}" for p in prompts]
        assert model.stats.cached == len(stored_before)
        answered_twice = sum(server.answered[i] > 1 for i in _idents(prompts))
        assert answered_twice <= 2  # at most the calls in flight when the process was killed
        assert len(store.runs()) == 60
        store.close()


def test_unparsable_replies_are_asked_again_once_then_missing(monkeypatch):
    def responder(messages, body):
        text = messages[-1]["content"]
        if "stubborn" in text:
            return "I would rather not say."
        if "shy" in text:
            return "A single number and nothing else: 7" if "single number" in text else "Quite good, I think."
        return "Score: 8/10"

    with LoopbackServer(responder=responder) as server:
        model = _model(server, None, monkeypatch)
        scores = model.score(["p1", "p2", "p3"], ["plain", "shy one", "stubborn one"])
        assert scores[0] == 8 and scores[1] == 7 and np.isnan(scores[2])
        assert model.parse_retries == 2 and model.parse_failures == 1


def test_parsers_and_templates():
    assert parse_number("Score: 7.5 out of 10") == 7.5
    assert parse_number("-3") == -3 and parse_number("none") is None and parse_number(None) is None
    assert parse_choice("[[B]]") == "B" and parse_choice("[[C]]") == "tie"
    assert parse_choice("Answer: A") == "A" and parse_choice("It's a tie.") == "tie"
    assert parse_choice("Neither") is None
    text = fill_template("Q: {prompt}\nR: {response}", prompt="use {response} literally", response="x {prompt}")
    assert text == "Q: use {response} literally\nR: x {prompt}"


def test_specs_and_python_models(tmp_path, monkeypatch):
    assert parse_spec("openai:gpt-4o-mini@http://127.0.0.1:8000/v1").base_url == "http://127.0.0.1:8000/v1"
    assert parse_spec("openai:org/model").base_url is None
    for bad in ("gpt-4o", "mystery:x", "python:nomodule", "openai:@http://h/v1"):
        with pytest.raises(ModelSpecError):
            parse_spec(bad)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelSpecError, match="OPENAI_API_KEY"):
        load_model("openai:gpt-4o-mini")
    with pytest.raises(ModelSpecError, match="MY_KEY"):
        load_model("openai:toy@http://127.0.0.1:9/v1", api_key_env="MY_KEY")
    with pytest.raises(ModelSpecError, match="sandbox:one"):
        load_model("sandbox:two", sandbox={"one": lambda: None})
    (tmp_path / "mymodels.py").write_text("def shout(prompt):\n    return prompt.upper()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    store = RunStore(tmp_path / "calls.db")
    model = load_model("python:mymodels:shout", store=store)
    assert model.generate(["hi", "there", "hi"]) == ["HI", "THERE", "HI"]
    assert model.stats.done == 2  # the repeated prompt is asked once
    assert load_model("python:mymodels:shout", store=store).generate(["there"]) == ["THERE"]
    store.close()


def test_token_bucket_waits_once_drained():
    bucket = _Bucket(60.0)  # one a second
    bucket.take(1)
    assert bucket.wait_for(1) > 0.5
    bucket.level = 1
    assert bucket.wait_for(1) == 0


def test_requests_per_minute_limit_spaces_the_calls(monkeypatch):
    with LoopbackServer() as server:
        model = _model(server, None, monkeypatch, rpm=240.0)  # 4 a second, bursts of 4
        start = time.monotonic()
        model.generate([f"q{i}" for i in range(6)])
        last = max(t for _, t, _ in server.log)
    assert server.requests == 6
    assert last - start >= 0.5  # the 5th and 6th wait 0.25 s each for the bucket to refill
