"""llmcause.runs: run identity, the SQLite store, executors, campaigns, kill-and-resume, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from llmcause.runs import (ProcessExecutor, RunStore, SerialExecutor, StoreError, canonical_json, make_executor,
                           run_campaign, run_key)

def square(params: dict) -> dict:
    return {"value": params["x"] ** 2, "label": params.get("label", "")}


def sometimes_fails(params: dict) -> dict:
    if params["x"] == 3 and not os.environ.get("LLMCAUSE_TEST_FIXED"):
        raise RuntimeError("x = 3 is not allowed")
    return {"value": params["x"]}


# --------------------------------------------------------------------------- identity


def test_run_key_is_a_content_hash():
    a = run_key("f@1", {"w": {"a": 0.1, "b": 0.9}, "seed": 1})
    assert a == run_key("f@1", {"seed": 1, "w": {"b": 0.9, "a": 0.1}})  # key order does not matter
    assert a == run_key("f@1", {"seed": 1, "w": {"b": 0.9 + 1e-16, "a": 0.1}})  # a CSV round trip keeps it
    assert a != run_key("f@1", {"seed": 2, "w": {"a": 0.1, "b": 0.9}})
    assert a != run_key("f@2", {"seed": 1, "w": {"a": 0.1, "b": 0.9}})  # a new function version is a new run
    assert canonical_json({"b": (1, 2.0), "a": None}) == '{"a":null,"b":[1,2.0]}'
    with pytest.raises(ValueError, match="finite"):
        run_key("f", {"x": float("nan")})
    with pytest.raises(TypeError):
        run_key("f", {"x": object()})


# --------------------------------------------------------------------------- store


def test_store_is_wal_and_never_overwrites_a_result(tmp_path):
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        assert store.record("k1", "f", "{}", result={"v": 1}, seconds=0.1)
        assert not store.record("k1", "f", "{}", result={"v": 2})
        assert store.get("k1")["result"] == {"v": 1}
        store.record("k2", "f", "{}", error="boom")
        assert store.counts() == {"done": 1, "failed": 1}
        store.record("k2", "f", "{}", result={"v": 3})
        assert store.get("k2")["status"] == "done" and store.get("k2")["attempts"] == 2
        store.register("c", ["k1", "k2", "k3"], [{"arm": "a"}, {"arm": "b"}, {"arm": "c"}])
        tasks = store.tasks("c")
        assert [t["labels"]["arm"] for t in tasks] == ["a", "b", "c"]
        assert tasks[2]["status"] is None  # registered, not run yet
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


@pytest.mark.parametrize("content", [b"this is not a database at all" * 10, b"SQLite format 3\x00" + b"\x07" * 4000])
def test_corrupted_store_file_is_refused(tmp_path, content):
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="bad.db"):
        RunStore(path)


def test_another_sqlite_database_is_not_a_store(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(path)
    with pytest.raises(StoreError, match="no such run store"):
        RunStore(tmp_path / "missing.db", create=False)


# --------------------------------------------------------------------------- campaigns and executors


def test_campaign_skips_stored_runs_and_runs_duplicates_once(tmp_path):
    store = RunStore(tmp_path / "runs.db")
    params = [{"x": i} for i in range(5)] + [{"x": 0}]
    first = run_campaign(square, params, store=store, campaign="c1", labels=[{"i": i} for i in range(6)])
    assert (first.tasks, first.runs, first.executed, first.skipped, first.failed) == (6, 5, 5, 0, 0)
    second = run_campaign(square, params + [{"x": 9}], store=store)
    assert (second.executed, second.skipped) == (1, 5)
    assert [t["result"]["value"] for t in store.tasks("c1")] == [0, 1, 4, 9, 16, 0]


def test_failures_are_recorded_and_retried(tmp_path, monkeypatch):
    store = RunStore(tmp_path / "runs.db")
    params = [{"x": i} for i in range(5)]
    summary = run_campaign(sometimes_fails, params, store=store)
    assert (summary.executed, summary.failed) == (4, 1)
    assert "x = 3 is not allowed" in next(iter(summary.errors.values()))
    monkeypatch.setenv("LLMCAUSE_TEST_FIXED", "1")
    again = run_campaign(sometimes_fails, params, store=store)
    assert (again.executed, again.skipped, again.failed) == (1, 4, 0)


def test_process_pool_gives_the_serial_results():
    params = [{"x": i, "label": f"run {i}"} for i in range(8)]
    serial = {o.key: o.result for o in SerialExecutor().run(square, [(str(i), p) for i, p in enumerate(params)])}
    pooled = {o.key: o.result for o in ProcessExecutor(2).run(square, [(str(i), p) for i, p in enumerate(params)])}
    assert serial == pooled
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("dask")


def test_ray_executor_runs_when_ray_is_installed(ray_cluster):
    from llmcause.pretraining.proxy import ProxyConfig, proxy_run, run_params

    items = [(str(s), run_params({"code": 0.5, "math": 0.5}, s, ProxyConfig(order=2, budget=20_000)))
             for s in range(3)]
    serial = {o.key: o.result for o in SerialExecutor().run(proxy_run, items)}
    on_ray = {o.key: o.result for o in make_executor("ray", 2).run(proxy_run, items)}
    assert on_ray == serial


def test_ray_executor_says_how_to_install_ray_when_absent():
    try:
        import ray  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match=r"llmcause\[ray\]"):
            make_executor("ray")
    else:
        pytest.skip("ray is installed")


# --------------------------------------------------------------------------- concurrency and crashes

def _writer(path: str, me: int) -> None:
    store = RunStore(path)
    for i in range(60):
        key = f"shared-{i}" if i % 3 == 0 else f"w{me}-{i}"
        store.record(key, "f", "{}", result={"writer": me, "i": i}, worker=str(me))
    store.register(f"writer {me}", [f"w{me}-{i}" for i in range(60) if i % 3], [{}] * 40)
    store.close()


def test_store_survives_concurrent_writers(tmp_path):
    path = str(tmp_path / "runs.db")
    RunStore(path).close()
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert all(p.exitcode == 0 for p in procs)
    store = RunStore(path)
    assert store.counts()["done"] == 4 * 40 + 20  # every private key, and each shared key once
    assert sorted(store.campaigns()) == [f"writer {w}" for w in range(4)]
    shared = store.get("shared-0")
    assert shared["attempts"] == 1 and shared["result"]["writer"] in range(4)


def _design(tmp_path: Path, n_seeds: int) -> Path:
    from llmcause.pretraining.corpus import load_corpus
    from llmcause.pretraining.designs import one_at_a_time
    from llmcause.pretraining.proxy import ProxyConfig

    design = one_at_a_time(load_corpus().names, seeds=n_seeds, config=ProxyConfig(order=4, budget=200_000))
    path = tmp_path / "design.csv"
    design.to_csv(path, index=False)
    return path


def _campaign_in_own_session(argv: list[str]) -> None:
    """A campaign in a separate process (its own session, so its pool workers can be killed with it)."""
    os.setsid()
    sys.stdout = sys.stderr = open(os.devnull, "w")
    from llmcause.cli import run

    os._exit(run(argv))


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_killed_campaign_resumes_without_recomputing_or_losing_runs(tmp_path, executor):
    from llmcause.cli import run

    design = _design(tmp_path, n_seeds=3)  # 13 arms x 3 seeds = 39 runs
    store_path = tmp_path / "runs.db"
    argv = ["pretraining", "run", str(design), "--store", str(store_path), "--executor", executor, "--workers", "2"]
    proc = multiprocessing.get_context("fork").Process(target=_campaign_in_own_session, args=(argv,))
    proc.start()
    done_before = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.is_alive():
            if store_path.exists():
                try:
                    with RunStore(store_path, create=False) as peek:
                        done_before = peek.counts()["done"]
                except StoreError:
                    done_before = 0
                if done_before >= 3:
                    break
            time.sleep(0.05)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the campaign and its workers, mid-way
        except ProcessLookupError:
            pass
        proc.join()
    assert proc.exitcode == -signal.SIGKILL, "the campaign finished before it could be killed"
    with RunStore(store_path, create=False) as store:
        before = {r["key"]: r["finished_at"] for r in store.runs()}
    assert 3 <= len(before) < 39
    code = run(["pretraining", "run", str(design), "--store", str(store_path), "--json"])
    assert code == 0
    with RunStore(store_path, create=False) as store:
        after = {r["key"]: r["finished_at"] for r in store.runs()}
        assert len(store.tasks()) == 39 and all(t["status"] == "done" for t in store.tasks())
    assert len(after) == 39  # nothing lost
    assert all(after[k] == t for k, t in before.items())  # nothing finished was recomputed
    assert len(before) <= len(after)


def test_resume_reports_executed_and_skipped(tmp_path, capsys):
    from llmcause.cli import run

    design = tmp_path / "small.csv"
    design.write_text("seed,budget,order,w:code,w:math\n0,20000,2,0.5,0.5\n1,20000,2,0.5,0.5\n0,20000,2,1.0,0\n")
    store = tmp_path / "runs.db"
    assert run(["pretraining", "run", str(design), "--store", str(store), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["executed"], first["skipped"]) == (3, 0)
    design.write_text(design.read_text() + "2,20000,2,0.5,0.5\n")
    assert run(["pretraining", "run", str(design), "--store", str(store), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["executed"], second["skipped"]) == (1, 3)
