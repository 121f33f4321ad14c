"""`llmcause ate`: the JSON contract, the naive estimate beside, reports, and bad input → exit 2."""

import json

import numpy as np
import pandas as pd
import pytest

from llmcause import __version__
from llmcause.cli import run

COVS = "x0,x1,x2,x3,x4"


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = _run(capsys, ["--version"])
    assert code == 0 and out.strip() == f"llmcause {__version__}"


def test_json_follows_the_contract(capsys, world_csv):
    code, out, err = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", COVS, "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc) == {"command", "estimates", "warnings"} and doc["command"] == "ate"
    keys = ["name", "estimand", "method", "estimate", "se", "ci_low", "ci_high", "level", "n", "diagnostics"]
    assert [list(e) for e in doc["estimates"]] == [keys, keys]
    causal, naive = doc["estimates"]
    assert causal["method"] == "aipw" and causal["estimand"] == "ATE"
    assert naive["name"] == "naive" and naive["method"] == "naive"
    assert causal["ci_low"] <= 1.0 <= causal["ci_high"]  # the world's true ATE
    assert naive["ci_low"] > 1.0  # confounding pushes the naive difference up
    assert causal["diagnostics"]["share_clipped"] < 0.01


@pytest.mark.parametrize("method", ["ipw", "ra", "dim"])
def test_other_methods(capsys, world_csv, method):
    code, out, err = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", COVS, "--json",
                                   "--method", method, "--estimand", "att" if method != "dim" else "ate"])
    assert code == 0, err
    doc = json.loads(out)
    methods = [e["method"] for e in doc["estimates"]]
    assert methods == (["naive"] if method == "dim" else [method, "naive"])


def test_cluster_and_text_covariate(capsys, world_csv):
    code, out, err = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2,domain",
                                   "--cluster", "prompt", "--json", "--learner", "boosting"])
    assert code == 0, err
    est = json.loads(out)["estimates"][0]
    assert est["diagnostics"]["n_clusters"] == 400
    assert "domain=code" in est["diagnostics"]["smd_after"]


def test_same_seed_same_bytes(capsys, world_csv):
    argv = ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", COVS, "--json", "--seed", "3"]
    first = _run(capsys, argv)[1]
    assert _run(capsys, argv)[1] == first


def test_table_output_and_report(capsys, world_csv, tmp_path):
    report = tmp_path / "r.html"
    code, out, err = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", COVS,
                                   "--report", report])
    assert code == 0, err
    assert "aipw" in out and "naive" in out and "report written" in out
    html = report.read_text()
    assert "<img" in html and "data:image/png;base64," in html and "http" not in html.split("<body>")[1]


def test_poor_overlap_warns(capsys, tmp_path):
    from llmcause.core.simulate import confounded_world

    path = tmp_path / "poor.csv"
    confounded_world(2000, seed=1, overlap="poor").to_frame().to_csv(path, index=False)
    code, out, err = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "-x", COVS, "--json"])
    assert code == 0
    assert any("poor overlap" in w for w in json.loads(out)["warnings"])


def _bad(tmp_path, frame, name="bad.csv"):
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("mutate,argv_extra,match", [
    (lambda d: d, ["-y", "nope"], "no column 'nope'"),
    (lambda d: d.assign(treated=d.treated.where(d.index != 4, 2)), [], r"column 'treated', row 5: 2 is not binary"),
    (lambda d: d.assign(outcome=d.outcome.where(d.index != 6)), [], r"column 'outcome', row 7: value is missing"),
    (lambda d: d.assign(treated=1), [], "column 'treated' is constant"),
    (lambda d: d.assign(x1=d.x1.astype(object).where(d.index != 2, "oops")), [], "row 3: 'oops' is not a number"),
    (lambda d: d.assign(x0=d.x0.where(d.index != 9)), [], r"column 'x0', row 10: value is missing"),
    (lambda d: d.iloc[:8].assign(treated=[1, 0, 0, 0, 0, 0, 0, 1]), [], "only 2 treated rows"),
    (lambda d: d, ["--cluster", "nope"], "no column 'nope'"),
    (lambda d: d, ["-x", "x0,,x1"], "empty name"),
])
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, world_frame, mutate, argv_extra, match):
    path = _bad(tmp_path, mutate(world_frame.copy()))
    argv = ["ate", path, "-t", "treated", "-y", "outcome", "-x", COVS, "--json", *argv_extra]
    code, out, err = _run(capsys, argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert match in err
    if "no column" not in match and "empty name" not in match:
        assert "bad.csv" in err


@pytest.mark.parametrize("content,name,match", [
    ("", "empty.csv", "the file is empty"),
    (None, "absent.csv", "no such file"),
    ("\x00\x01\x02garbage", "data.parquet", "could not read as PARQUET"),
])
def test_unreadable_or_empty_file(capsys, tmp_path, content, name, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    code, out, err = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "-x", COVS])
    assert code == 2 and match in err and name in err and err.count("\n") == 1


def test_usage_errors_exit_2(capsys, world_csv):
    code, _, err = _run(capsys, ["ate", world_csv, "-t", "treated"])
    assert code == 2 and err.startswith("error: ") and "--outcome" in err
    code, _, err = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", COVS, "--method", "magic"])
    assert code == 2 and "magic" in err
    code, _, err = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "--method", "aipw"])
    assert code == 2 and "needs --covariates" in err
    code, _, err = _run(capsys, ["nonsense"])
    assert code == 2


def test_bad_input_leaves_no_report_and_keeps_an_old_one(capsys, tmp_path, world_frame):
    path = _bad(tmp_path, world_frame.assign(treated=1))
    report = tmp_path / "r.html"
    report.write_text("previous report")
    code, _, _ = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "-x", COVS, "--report", report])
    assert code == 2
    assert report.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "r.html"]
    code, _, err = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "-x", COVS, "--report",
                                 tmp_path / "missing" / "r.html"])
    assert code == 2 and "does not exist" in err


def test_caller_file_is_untouched(capsys, world_csv):
    before = world_csv.read_bytes()
    _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", COVS, "--json"])
    assert world_csv.read_bytes() == before


def test_readme_example_recovers_the_stated_truth(capsys):
    """examples/tool_use.csv (true ATE +0.08) is what its script writes, and AIPW recovers the truth."""
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "examples"))
    try:
        import make_tool_use
    finally:
        sys.path.pop(0)
    shipped = pd.read_csv(root / "examples" / "tool_use.csv")
    pd.testing.assert_frame_equal(shipped, make_tool_use.make(), check_exact=False, atol=1e-9)
    code, out, err = _run(capsys, ["ate", root / "examples" / "tool_use.csv", "--treatment", "tool_on", "--outcome",
                                   "score", "--covariates", "difficulty,prompt_tokens,domain", "--json"])
    assert code == 0, err
    causal, naive = json.loads(out)["estimates"]
    assert causal["ci_low"] <= make_tool_use.TRUE_ATE <= causal["ci_high"]
    assert naive["ci_low"] > 2 * make_tool_use.TRUE_ATE
