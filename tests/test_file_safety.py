"""A user's files are never touched: outputs that are inputs are refused, stores that are read stay byte for byte."""

from __future__ import annotations

import os
import sqlite3

import numpy as np
import pytest

from llmcause.cli import run
from llmcause.io import DataError, check_outputs, write_text_atomic
from llmcause.routing.simulate import synthetic_world
from llmcause.runs import RunStore, StoreError


def _code_err(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def small_csv(tmp_path, world_frame):
    path = tmp_path / "s.csv"
    world_frame.head(300).to_csv(path, index=False)
    return path


def test_ate_report_over_its_input_is_refused(capsys, small_csv):
    before = small_csv.read_bytes()
    code, out, err = _code_err(capsys, ["ate", small_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1",
                                        "--report", small_csv])
    assert code == 2
    assert "--report" in err and "input" in err and "Traceback" not in err
    assert small_csv.read_bytes() == before


def test_output_through_a_link_to_the_input_is_refused(capsys, small_csv, tmp_path):
    link = tmp_path / "link.html"
    os.symlink(small_csv, link)
    before = small_csv.read_bytes()
    code, _, err = _code_err(capsys, ["ate", small_csv, "-t", "treated", "-y", "outcome", "--method", "dim",
                                      "--report", link])
    assert code == 2 and "input" in err
    assert small_csv.read_bytes() == before


def test_routing_learn_out_over_the_log_is_refused(capsys, tmp_path):
    log = tmp_path / "log.csv"
    synthetic_world(300, seed=1).frame.to_csv(log, index=False)
    before = log.read_bytes()
    code, _, err = _code_err(capsys, ["routing", "learn", log, "-a", "model", "-y", "quality", "-x", "difficulty",
                                      "--costs", "small=0.1,medium=0.35,large=1", "--budget", "0.5", "--out", log])
    assert code == 2 and "--out" in err and "input" in err
    assert log.read_bytes() == before


def test_two_outputs_may_not_be_one_file(tmp_path):
    with pytest.raises(DataError, match="--active"):
        check_outputs({"--report": tmp_path / "a.csv", "--active": tmp_path / "a.csv"})


def test_atomic_write_leaves_nothing_when_it_fails(tmp_path):
    target = tmp_path / "report.html"
    with pytest.raises(UnicodeEncodeError):
        write_text_atomic(target, "ok \udc80 not encodable")
    assert list(tmp_path.iterdir()) == []


def _sqlite(path, statements=()):
    conn = sqlite3.connect(path)
    for stmt in statements:
        conn.execute(stmt)
    conn.commit()
    conn.close()
    return path.read_bytes()


@pytest.mark.parametrize("command", ["effects", "recommend"])
@pytest.mark.parametrize("kind", ["empty file", "empty database", "unrelated database"])
def test_a_store_that_is_only_read_is_never_modified(capsys, tmp_path, command, kind):
    db = tmp_path / "mine.db"
    if kind == "empty file":
        db.write_bytes(b"")
        before = b""
    elif kind == "empty database":
        before = _sqlite(db, ["PRAGMA user_version = 7"])
    else:
        before = _sqlite(db, ["CREATE TABLE people (name TEXT, age INT)", "INSERT INTO people VALUES ('ann', 3)"])
    code, _, err = _code_err(capsys, ["pretraining", command, db])
    assert code == 2, err
    assert "not a run store" in err and str(db) in err and "Traceback" not in err
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.db"]


def test_read_only_store_reads_a_real_store(tmp_path):
    path = tmp_path / "runs.db"
    with RunStore(path) as store:
        store.record("k1", "f", "{}", result={"x": 1.0})
    before = path.read_bytes()
    with RunStore(path, create=False, read_only=True) as store:
        assert store.done_keys() == {"k1"}
        with pytest.raises(StoreError):
            store.record("k2", "f", "{}", result={"x": 2.0})
    assert path.read_bytes() == before


def test_run_store_refuses_an_unrelated_database_before_changing_it(tmp_path):
    db = tmp_path / "other.db"
    before = _sqlite(db, ["CREATE TABLE t (a INT)"])
    with pytest.raises(StoreError, match="not a run store"):
        RunStore(db)
    assert db.read_bytes() == before
    assert np.all([p.name == "other.db" for p in tmp_path.iterdir()])


def test_a_report_over_the_target_table_is_refused(tmp_path, capsys):
    from llmcause.evaluation.simulate import prompt_mix_world

    world = prompt_mix_world(200, 200, shift=0.5, label_fraction=0.3, seed=0)
    data, target = tmp_path / "judged.csv", tmp_path / "target.csv"
    world.frame.to_csv(data, index=False)
    world.target.to_csv(target, index=False)
    before = target.read_bytes()
    code = run(["evaluation", "judge", str(data), "--judge", "judge_score", "--label", "label", "--group", "model",
                "--covariates", "difficulty,topic", "--target", str(target), "--report", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and "--report" in err and "Traceback" not in err
    assert target.read_bytes() == before
