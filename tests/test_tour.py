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
    from scipy.stats import binom

    fair, broken = [], []
    for est in doc["estimates"]:
        d = est["diagnostics"]
        assert "question" in d
        if "truth" in d:
            (broken if d.get("broken_assumption") else fair).append(d["covered"])
    # Rows whose assumptions hold cover their truth as 95% intervals should: at seed 0, no more misses
    # than a 99% binomial bound allows. Rows that break an assumption on purpose show the failure.
    assert len(fair) >= 10
    assert sum(not c for c in fair) <= binom.ppf(0.99, len(fair), 0.05), fair
    assert broken and not any(broken)


def test_tour_table_and_report(capsys, tmp_path):
    report = tmp_path / "tour.html"
    code = run(["tour", "--quick", "--report", str(report)])
    out, _ = capsys.readouterr()
    assert code == 0 and "llmcause tour" in out and "engine" in out
    assert "covered" in report.read_text()
    lines = [line for line in out.splitlines() if line.strip()]
    assert out.count("┏") == 1 and lines[-1] == f"report written to {report}"  # one table, then the path


def test_tour_estimates_keep_stage_warnings():
    rows = engine_rows(quick=True, seed=0)
    table = tour_estimates(rows)
    assert len(table) == 1 and table[0].diagnostics["truth"] == 1.0
