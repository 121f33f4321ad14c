import json

from llmcause.cli import run
from llmcause.tour import engine_rows, tour_estimates


def test_engine_row_covers_truth_and_naive_is_off():
    (row,) = engine_rows(quick=True, seed=0)
    assert row.covered
    assert abs(row.naive_value - row.truth) > 5 * row.naive.se


def test_tour_json_rows_carry_truth_and_coverage(capsys):
    code = run(["tour", "--quick", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["command"] == "tour" and doc["estimates"]
    stages = {e["diagnostics"]["stage"] for e in doc["estimates"]}
    assert "engine" in stages
    with_truth = 0
    for est in doc["estimates"]:
        d = est["diagnostics"]
        assert "question" in d
        if "truth" in d and est["ci_low"] is not None:
            with_truth += 1
            # Rows with a known truth must cover it: a tour row that misses is a failing estimator or world.
            assert est["ci_low"] <= d["truth"] <= est["ci_high"], (est["name"], est["method"], d["truth"])
            assert d["covered"] is True
    assert with_truth >= 3


def test_tour_table_and_report(capsys, tmp_path):
    report = tmp_path / "tour.html"
    code = run(["tour", "--quick", "--report", str(report)])
    out, _ = capsys.readouterr()
    assert code == 0 and "llmcause tour" in out and "engine" in out
    assert "covered" in report.read_text()


def test_tour_estimates_keep_stage_warnings():
    rows = engine_rows(quick=True, seed=0)
    table = tour_estimates(rows)
    assert len(table) == 1 and table[0].diagnostics["truth"] == 1.0
