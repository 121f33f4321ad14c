"""Commands on Parquet datasets out of core: same JSON as in memory; bad input exits 2 with one plain line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.evaluation import judge_world


@pytest.fixture(scope="module")
def judge_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale") / "judged"
    root.mkdir()
    frame = judge_world(300, label_fraction=0.2, seed=3).frame
    cuts = [0, 350, 351, 900, frame.shape[0]]
    for i in range(4):
        frame.iloc[cuts[i]:cuts[i + 1]].to_parquet(root / f"part-{i}.parquet", index=False)
    return root, frame


def _run(capsys, argv):
    code = run(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_judge_dataset_json_matches_in_memory(judge_dir, capsys, tmp_path):
    root, frame = judge_dir
    cols = ["--judge", "judge_score", "--label", "label", "--group", "model", "--cluster", "prompt_id", "--method", "ppi++", "--json",
            "--compare"]
    code, out, err = _run(capsys, ["evaluation", "judge", str(root), *cols])
    assert code == 0, err
    streamed = json.loads(out)
    single = tmp_path / "all.csv"
    frame.to_csv(single, index=False)
    code, out, err = _run(capsys, ["evaluation", "judge", str(single), *cols])
    mem = json.loads(out)
    assert [e["name"] for e in streamed["estimates"]] == [e["name"] for e in mem["estimates"]]
    for s, m in zip(streamed["estimates"], mem["estimates"]):
        assert set(s) == set(m)
        assert s["estimate"] == pytest.approx(m["estimate"], rel=1e-10)
        assert s["se"] == pytest.approx(m["se"], rel=1e-10)
        assert s["ci_low"] == pytest.approx(m["ci_low"], rel=1e-10)


@pytest.mark.parametrize("argv,needles", [
    (["--judge", "nope", "--label", "label"], ["no column 'nope'", "--judge"]),
    (["--judge", "judge_score", "--label", "label", "--covariates", "x"], ["in memory only"]),
    (["--judge", "judge_score", "--label", "label", "--method", "rg"], ["in memory only"]),
    (["--judge", "judge_score", "--label", "label", "--address", "x:1"], ["--address needs --engine ray"]),
])
def test_judge_dataset_bad_input(judge_dir, capsys, argv, needles):
    root, _ = judge_dir
    code, out, err = _run(capsys, ["evaluation", "judge", str(root), *argv])
    assert code == 2 and out == "" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    for n in needles:
        assert n in err


def test_dataset_paths_that_are_not_there(capsys, tmp_path):
    code, _, err = _run(capsys, ["evaluation", "judge", str(tmp_path / "x-*.parquet"), "--judge", "a", "--label", "b"])
    assert code == 2 and "no file matches" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _run(capsys, ["routing", "evaluate", str(tmp_path / "empty"), "-a", "m", "-y", "q", "-p",
                                 "always:x", "--propensity", "p"])
    assert code == 2 and "holds no .parquet files" in err
    (tmp_path / "t.csv").write_text("a,b\n1,2\n")
    code, _, err = _run(capsys, ["evaluation", "judge", str(tmp_path / "*.csv"), "--judge", "a", "--label", "b"])
    assert code == 2 and "only Parquet files" in err


def test_routing_dataset_runs_and_refuses_in_memory_only_options(capsys, tmp_path):
    rng = np.random.default_rng(0)
    n = 900
    x = rng.normal(size=n)
    big = rng.random(n) < 0.5
    df = pd.DataFrame({"model": np.where(big, "big", "small"), "q": 0.5 + 0.2 * big + rng.normal(0, .1, n),
                       "p": 0.5, "x": x, "t": np.arange(n)})
    root = tmp_path / "log"
    root.mkdir()
    df.iloc[:400].to_parquet(root / "a.parquet", index=False)
    df.iloc[400:].to_parquet(root / "b.parquet", index=False)
    base = ["routing", "evaluate", str(root), "-a", "model", "-y", "q", "--propensity", "p", "-x", "x",
            "-p", "always:big", "-p", "always:small"]
    code, out, err = _run(capsys, [*base, "--json", "--compare"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["command"] == "routing evaluate"
    names = [(e["name"], e["method"]) for e in doc["estimates"]]
    assert ("always:big", "dr") in names and ("always:small - always:big", "dr") in names
    assert any("el left out" in w for w in doc["warnings"])
    code, out, err = _run(capsys, [*base, "--time", "t"])
    assert code == 2 and "in memory only" in err and out == ""
    code, out, err = _run(capsys, [*base, "--method", "dros"])
    assert code == 2 and "out of core the methods are" in err


def test_a_file_that_lacks_a_column_is_named(tmp_path, capsys):
    root = tmp_path / "log"
    root.mkdir()
    pd.DataFrame({"model": ["a", "b"] * 50, "score": np.linspace(0, 1, 100), "human": [0.5] * 100}).to_parquet(
        root / "p0.parquet", index=False)
    pd.DataFrame({"model": ["a", "b"] * 50, "human": [0.5] * 100}).to_parquet(root / "p1.parquet", index=False)
    code = run(["evaluation", "judge", str(root), "--judge", "score", "--label", "human", "--group", "model"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {root / 'p1.parquet'}: no column 'score' (the dataset's other files "
                                        "have it)"]
