"""`llmcause pretraining ...` end to end, and bad inputs (exit 2, one plain message, no half-written output)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from llmcause.cli import run


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def swarm_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("swarm")
    design, store = folder / "swarm.csv", folder / "runs.db"
    assert run(["pretraining", "design", "--kind", "dirichlet", "--domains", "code,legal,math", "--runs", "15",
                "--seeds", "1", "--order", "2", "--budget", "30000", "--out", str(design)]) == 0
    assert run(["pretraining", "run", str(design), "--store", str(store)]) == 0
    return folder, design, store


def test_design_run_effects_one_at_a_time(tmp_path, capsys):
    design, store, results = tmp_path / "oat.csv", tmp_path / "runs.db", tmp_path / "results.csv"
    assert run(["pretraining", "design", "--kind", "one-at-a-time", "--domains", "code,math", "--seeds", "2",
                "--order", "3", "--budget", "40000", "--out", str(design), "--json"]) == 0
    doc = _json(capsys)
    assert doc["runs"] == 5 * 2 and doc["mixtures"] == 5
    assert run(["pretraining", "run", str(design), "--store", str(store), "--out", str(results), "--json"]) == 0
    doc = _json(capsys)
    assert (doc["executed"], doc["skipped"], doc["failed"]) == (10, 0, 0)
    assert run(["pretraining", "effects", str(store), "--json"]) == 0
    doc = _json(capsys)
    names = {(e["name"], e["estimand"]) for e in doc["estimates"]}
    assert ("code:code", "replacement") in names and ("math:legal", "augmentation") in names
    own = next(e for e in doc["estimates"] if e["name"] == "math:math" and e["estimand"] == "replacement")
    assert own["estimate"] < 0 and own["diagnostics"]["n_seeds"] == 2
    assert run(["pretraining", "effects", str(store), "--on", "code,mean", "--json"]) == 0
    subset = _json(capsys)
    assert {e["name"] for e in subset["estimates"]} == {"code:code", "code:mean", "math:code", "math:mean"}
    _bad(capsys, ["pretraining", "effects", str(store), "--on", "poetry"], "--on", "'poetry'")
    # the results file gives the same effects
    assert run(["pretraining", "effects", str(results), "--json"]) == 0
    again = _json(capsys)
    assert [e["estimate"] for e in again["estimates"]] == pytest.approx([e["estimate"] for e in doc["estimates"]])


def test_recommend_with_verification(swarm_store, capsys, tmp_path):
    folder, _, store = swarm_store
    report = tmp_path / "rec.html"
    assert run(["pretraining", "recommend", str(store), "--law", "loglinear", "--verify", "--seeds", "2",
                "--candidates", "2000", "--json", "--report", str(report)]) == 0
    doc = _json(capsys)
    names = [e["name"] for e in doc["estimates"]]
    assert "loglinear:mean" in names and "recommended - uniform" in names
    rec = next(e for e in doc["estimates"] if e["name"] == "recommended")
    assert sum(rec["diagnostics"]["weights"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "Mixtures (weights)" in report.read_text()
    # verification runs were stored, so a second verification executes nothing new
    from llmcause.runs import RunStore

    with RunStore(store, create=False) as s:
        assert "verification" in s.campaigns()
        n_runs = s.counts()["done"]
    assert run(["pretraining", "recommend", str(store), "--law", "loglinear", "--verify", "--seeds", "2",
                "--candidates", "2000", "--json"]) == 0
    capsys.readouterr()
    with RunStore(store, create=False) as s:
        assert s.counts()["done"] == n_runs


def test_recommend_without_verification_says_so(swarm_store, capsys, tmp_path):
    _, _, store = swarm_store
    report = tmp_path / "rec.html"
    assert run(["pretraining", "recommend", str(store), "--law", "loglinear", "--candidates", "1000",
                "--report", str(report)]) == 0
    captured = capsys.readouterr()
    assert "mixture weights" in captured.out and "not verified" in captured.err
    lines = [line for line in captured.out.splitlines() if line.strip()]
    assert lines[-1] == f"report written to {report}" and lines[0].strip() != lines[-1]  # the tables, then the path


def test_observational_effects_from_a_table_of_past_runs(tmp_path, capsys):
    from llmcause.pretraining.simulate import past_runs

    world = past_runs(400, seed=11)
    path = tmp_path / "past.csv"
    world.table.to_csv(path, index=False)
    assert run(["pretraining", "effects", str(path), "--confounders", "log_params,log_tokens", "--treatment",
                "w:code", "--losses", "bpb:math", "--json"]) == 0
    doc = _json(capsys)
    dml = next(e for e in doc["estimates"] if e["method"] == "dml-plr")
    naive = next(e for e in doc["estimates"] if e["method"] == "naive")
    assert dml["name"] == "code:math" and dml["ci_low"] <= world.true_effects["code:math"] <= dml["ci_high"]
    assert naive["estimate"] < 0 < world.true_effects["code:math"]
    assert any("assume" in w for w in doc["warnings"])


def test_scale_reports_rank_agreement(tmp_path, capsys):
    design = tmp_path / "mixtures.csv"
    assert run(["pretraining", "design", "--domains", "code,legal,math", "--runs", "7", "--seeds", "1",
                "--out", str(design)]) == 0
    capsys.readouterr()
    assert run(["pretraining", "scale", str(design), "--proxy-order", "1", "--proxy-budget", "20000",
                "--target-order", "2", "--target-budget", "40000", "--json"]) == 0
    doc = _json(capsys)
    mean = next(e for e in doc["estimates"] if e["name"] == "proxy vs target:mean")
    assert mean["n"] == 8 and mean["ci_low"] <= mean["estimate"] <= mean["ci_high"]


# --------------------------------------------------------------------------- bad inputs


def _bad(capsys, argv, *needles):
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def _design_file(tmp_path, rows):
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_weights_that_do_not_sum_to_one(tmp_path, capsys):
    design = _design_file(tmp_path, [{"seed": 0, "budget": 1000, "order": 2, "w:code": 0.5, "w:math": 0.5},
                                     {"seed": 0, "budget": 1000, "order": 2, "w:code": 0.5, "w:math": 0.4}])
    store = tmp_path / "runs.db"
    _bad(capsys, ["pretraining", "run", str(design), "--store", str(store)], "bad.csv", "row 2", "sum to 0.9")
    assert not store.exists()  # no half-made store


def test_unknown_domain(tmp_path, capsys):
    out = tmp_path / "d.csv"
    _bad(capsys, ["pretraining", "design", "--domains", "code,wikipedia", "--out", str(out)], "--domains",
         "'wikipedia'")
    assert not out.exists()
    design = _design_file(tmp_path, [{"seed": 0, "budget": 1000, "order": 2, "w:code": 0.5, "w:wiki": 0.5}])
    _bad(capsys, ["pretraining", "run", str(design), "--store", str(tmp_path / "r.db")], "bad.csv", "'w:wiki'",
         "unknown domain")


def test_negative_budget(tmp_path, capsys):
    out = tmp_path / "d.csv"
    _bad(capsys, ["pretraining", "design", "--budget", "-5", "--out", str(out)], "--budget", "-5")
    assert not out.exists()
    design = _design_file(tmp_path, [{"seed": 0, "budget": -100, "order": 2, "w:code": 1.0}])
    _bad(capsys, ["pretraining", "run", str(design), "--store", str(tmp_path / "r.db")], "bad.csv",
         "'budget'", "row 1")


def test_corrupted_store(tmp_path, capsys):
    store = tmp_path / "runs.db"
    store.write_bytes(b"SQLite format 3\x00" + b"garbage" * 500)
    design = _design_file(tmp_path, [{"seed": 0, "budget": 1000, "order": 2, "w:code": 1.0}])
    out = tmp_path / "results.csv"
    _bad(capsys, ["pretraining", "run", str(design), "--store", str(store), "--out", str(out)], "runs.db")
    assert not out.exists()
    _bad(capsys, ["pretraining", "effects", str(store)], "runs.db")
    _bad(capsys, ["pretraining", "recommend", str(store)], "runs.db")
    text = tmp_path / "notes.db"
    text.write_text("just some notes\n")
    _bad(capsys, ["pretraining", "effects", str(text)], "notes.db", "not an SQLite database")


def test_other_bad_inputs(tmp_path, capsys, swarm_store):
    _, design, store = swarm_store
    _bad(capsys, ["pretraining", "effects", str(tmp_path / "missing.db")], "missing.db", "no such file")
    _bad(capsys, ["pretraining", "recommend", str(store), "--target", "poetry"], "--target", "'poetry'")
    _bad(capsys, ["pretraining", "effects", str(store), "--campaign", "nope"], "no campaign 'nope'")
    _bad(capsys, ["pretraining", "design", "--kind", "dirichlet", "--seeds", "0", "--out", str(tmp_path / "x.csv")],
         "--seeds")
    _bad(capsys, ["pretraining", "design", "--order", "9", "--out", str(tmp_path / "x.csv")], "--order")
    _bad(capsys, ["pretraining", "design", "--kind", "one-at-a-time", "--domains", "code,math", "--base",
                  "code=0.7,math=0.7", "--out", str(tmp_path / "x.csv")], "--base", "sum to 1.4")
    design_bad = _design_file(tmp_path, [{"seed": 0, "budget": 1000, "w:code": 1.0}])
    _bad(capsys, ["pretraining", "run", str(design_bad), "--store", str(tmp_path / "r.db")], "no column 'order'")
    try:
        import ray  # noqa: F401
    except ImportError:
        _bad(capsys, ["pretraining", "run", str(design), "--store", str(store), "--executor", "ray"],
             "--executor ray", "llmcause[ray]")


def test_failed_runs_are_counted_not_silently_dropped(tmp_path, capsys, monkeypatch):
    import functools

    from llmcause.pretraining import campaign as campaign_module
    from llmcause.pretraining.proxy import proxy_run

    design, store, results = tmp_path / "oat.csv", tmp_path / "runs.db", tmp_path / "results.csv"
    assert run(["pretraining", "design", "--kind", "one-at-a-time", "--domains", "code,math", "--seeds", "3",
                "--order", "2", "--budget", "20000", "--out", str(design)]) == 0
    capsys.readouterr()

    @functools.wraps(proxy_run)  # same identity as the real run function, so a rerun completes the campaign
    def flaky(params):
        if int(params["seed"]) == 2 and params["weights"].get("code", 0) == 0:
            raise RuntimeError("worker lost")
        return proxy_run(params)

    monkeypatch.setattr(campaign_module, "proxy_run", flaky)
    assert run(["pretraining", "run", str(design), "--store", str(store), "--out", str(results), "--json"]) == 1
    failed = _json(capsys)["failed"]
    assert failed >= 1
    for source in (store, results):
        assert run(["pretraining", "effects", str(source), "--json"]) == 0
        doc = _json(capsys)
        said = [w for w in doc["warnings"] if "left out of this analysis" in w]
        assert said and said[0].startswith(f"{failed} registered proxy run"), doc["warnings"]
    # completing the campaign removes the warning
    monkeypatch.setattr(campaign_module, "proxy_run", proxy_run)
    assert run(["pretraining", "run", str(design), "--store", str(store), "--json"]) == 0
    assert _json(capsys)["executed"] == failed
    assert run(["pretraining", "effects", str(store), "--json"]) == 0
    assert not [w for w in _json(capsys)["warnings"] if "left out" in w]


def test_failed_verification_runs_leave_their_seed_out(swarm_store, capsys, monkeypatch):
    import functools

    from llmcause.pretraining import campaign as campaign_module
    from llmcause.pretraining.proxy import proxy_run
    from llmcause.pretraining.recommend import VERIFY_SEED_OFFSET

    _, _, store = swarm_store
    copy = store.parent / "verify-copy.db"
    copy.write_bytes(store.read_bytes())

    @functools.wraps(proxy_run)
    def flaky(params):
        if int(params["seed"]) == VERIFY_SEED_OFFSET + 1:
            raise RuntimeError("worker lost")
        return proxy_run(params)

    monkeypatch.setattr(campaign_module, "proxy_run", flaky)
    assert run(["pretraining", "recommend", str(copy), "--law", "loglinear", "--verify", "--seeds", "3",
                "--candidates", "500", "--json"]) == 0
    doc = _json(capsys)
    said = [w for w in doc["warnings"] if "verification runs failed" in w]
    assert said and "1 of 3 seeds are left out" in said[0]
    rec = next(e for e in doc["estimates"] if e["name"] == "recommended - uniform")
    assert rec["n"] == 2
