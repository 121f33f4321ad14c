"""Terminal output: $COLUMNS honoured when piped, nothing cut at 100 columns, --quiet prints only estimates."""

import io

import numpy as np
import pytest

from llmcause.clikit import output_width, stdout_console
from llmcause.cli import run
from llmcause.core.estimate import Estimate, EstimateTable

LONG = ["gemini-2.5-pro-preview-05-06", "always:gpt-4-1106-preview", "claude-3-5-sonnet-20241022-with-tools"]


def _table():
    rows = []
    for i, name in enumerate(LONG):
        for method in ("style-controlled Bradley-Terry", "naive"):
            rows.append(Estimate(name=name, estimand="probability of beating the baseline model", method=method,
                                 estimate=0.123456 + i, se=0.0101, ci_low=0.10345 + i, ci_high=0.14345 + i, n=12345))
    return EstimateTable(rows)


def _render(monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    console = stdout_console()
    console.file = io.StringIO()
    console.print(_table().rich_table(title="a title"))
    return console.file.getvalue()


@pytest.mark.parametrize("columns", [100, 80])
def test_names_estimates_and_intervals_are_never_cut(monkeypatch, columns):
    out = _render(monkeypatch, columns)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in out
    first_column = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert first_column == "".join(name for name in LONG for _ in range(2))  # wrapped in its cell, not cut
    for i, name in enumerate(LONG):
        assert f"{0.1235 + i:.4f}" in out and f"[{0.103 + i:.3f}, {0.143 + i:.3f}]" in out  # on one line, whole


def test_columns_is_honoured_when_piped(monkeypatch):
    monkeypatch.setenv("COLUMNS", "90")
    assert output_width() == 90
    monkeypatch.delenv("COLUMNS")
    assert output_width() == 120  # pytest's stdout is not a terminal


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_only_the_estimates(capsys, world_csv, tmp_path, where):
    argv = ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2,x3,x4", "--method", "ra",
            "--report", tmp_path / "r.html"]
    argv = ["--quiet", *argv] if where == "before" else [*argv, "-q"]
    code, out, err = _run(capsys, argv)
    assert code == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert [(f[0], f[2]) for f in lines] == [("ATE", "ra"), ("naive", "naive")]
    est, lo, hi = (float(x) for x in lines[0][3:])
    assert lo < est < hi and lo < 1.0 < hi  # the world's true ATE
    assert err == "" and (tmp_path / "r.html").exists()  # the report is still written, silently


def test_quiet_does_not_stick_to_the_next_command(capsys, world_csv):
    _run(capsys, ["-q", "ate", world_csv, "-t", "treated", "-y", "outcome", "--method", "dim"])
    code, out, _ = _run(capsys, ["ate", world_csv, "-t", "treated", "-y", "outcome", "--method", "dim"])
    assert code == 0 and "┃" in out and not np.isnan(len(out))


def test_counting_fits_changes_no_number_and_counts_every_fold_fit():
    from llmcause.core.ate import aipw, default_outcome_model, default_propensity_model
    from llmcause.core.simulate import confounded_world
    from llmcause.progress import counting_fits

    df = confounded_world(600, seed=1).to_frame()
    X = df[[c for c in df.columns if c.startswith("x")]].to_numpy()
    y, a = df["outcome"].to_numpy(), df["treated"].to_numpy()
    steps = []
    bare = aipw(y, a, X, n_folds=3)
    counted = aipw(y, a, X, n_folds=3, outcome_model=counting_fits(default_outcome_model(), steps.append),
                   propensity_model=counting_fits(default_propensity_model(), steps.append))
    assert (counted.estimate, counted.se) == (bare.estimate, bare.se) and len(steps) == 9
    assert counted.diagnostics["outcome_model"] == bare.diagnostics["outcome_model"] == "StandardScaler+Ridge"


@pytest.mark.parametrize("columns", [100, 60])
def test_wide_number_tables_drop_secondary_columns_before_cutting(monkeypatch, columns):
    # rich measures a number column as narrow as its longest word, so "[24.2, 58.3]" looked as if it could
    # wrap: a table of many number columns was cut at the edge instead of losing its secondary columns
    from rich.table import Table

    monkeypatch.setenv("COLUMNS", str(columns))
    console = stdout_console()
    console.file = io.StringIO()
    t = Table(title="win rates")
    for col in ("model", "n", "LC win rate", "CI", "AlpacaEval SE", "our SE", "raw win rate", "CI "):
        t.add_column(col, justify="left" if col == "model" else "right")
    t.add_row("claude-2.1", "150", "41.3", "[24.2, 58.3]", "0.00", "8.62", "13.3", "[8.5, 18.0]")
    console.print(t)
    out = console.file.getvalue()
    assert max(len(line) for line in out.splitlines()) <= columns
    assert "…" not in out
    for whole in ("claude-2.1", "41.3", "[24.2, 58.3]", "13.3", "[8.5, 18.0]"):
        assert whole in out
    assert ("our SE" in out) == (columns >= 100)
