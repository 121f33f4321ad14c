"""Types are never guessed; repeated header names, huge values and repeated (group, prompt) rows are caught."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.io import DataError, covariate_kind, covariate_matrix, mark_categorical, numeric_column, read_table


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_a_stray_text_value_in_a_numeric_covariate_is_an_error():
    df = read_table(pd.DataFrame({"age": ["31", "40", "unknown", "25"], "city": ["a", "b", "a", "c"]}), name="f.csv")
    with pytest.raises(DataError, match=r"f.csv: column 'age', row 3: 'unknown' is not a number.*--categorical"):
        covariate_matrix(df, ["age"])
    assert covariate_kind(df, "city") == "categorical"  # text only: categories, as documented
    X, names = covariate_matrix(mark_categorical(df, ["age"]), ["age", "city"])
    assert names == ["age=31", "age=40", "age=unknown", "city=b", "city=c"] and X.shape == (4, 5)


def test_a_stray_number_in_a_text_covariate_is_an_error():
    df = read_table(pd.DataFrame({"domain": ["code", "chat", "7", "chat"]}), name="f.csv")
    with pytest.raises(DataError, match=r"column 'domain', row 3: '7' is a number, but the column's other values"):
        covariate_matrix(df, ["domain"])


def test_numbers_listed_as_categorical_are_one_hot():
    df = read_table(pd.DataFrame({"zip": [10, 20, 10, 30]}), name="f.csv")
    assert covariate_matrix(df, ["zip"])[1] == ["zip"]
    assert covariate_matrix(df, ["zip"], categorical=["zip"])[1] == ["zip=20", "zip=30"]


@pytest.fixture
def stray_csv(tmp_path, world_frame):
    frame = world_frame.head(400).copy()
    frame["x2"] = frame["x2"].round(3).astype(object)
    frame.loc[17, "x2"] = "unknown"
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    return path


def test_ate_refuses_a_stray_text_value_and_accepts_categorical(capsys, stray_csv):
    code, out, err = _run(capsys, ["ate", stray_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2"])
    assert code == 2 and out == ""
    assert f"{stray_csv}: column 'x2', row 18: 'unknown' is not a number" in err
    code, _, err = _run(capsys, ["ate", stray_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1,domain",
                                 "--categorical", "x2"])
    assert code == 2 and "--categorical 'x2'" in err
    code, out, err = _run(capsys, ["ate", stray_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1,domain",
                                   "--categorical", "domain", "--json"])
    assert code == 0, err


def test_routing_features_refuse_a_stray_text_value(capsys, tmp_path):
    from llmcause.routing.simulate import synthetic_world

    frame = synthetic_world(400, seed=3).frame
    frame["difficulty"] = frame["difficulty"].astype(object)
    frame.loc[5, "difficulty"] = "unknown"
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    argv = ["routing", "evaluate", path, "-a", "model", "-y", "quality", "--propensity", "propensity", "-x",
            "difficulty", "--policy", "always:large", "--method", "ips"]
    code, _, err = _run(capsys, argv)
    assert code == 2 and "column 'difficulty', row 6: 'unknown' is not a number" in err
    code, _, err = _run(capsys, [*argv, "--categorical", "difficulty"])
    assert code == 2 and "too many" in err  # 400 distinct values: refused as categories, not silently encoded


def test_repeated_csv_header_is_an_error(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("model,score,score\na,1,2\nb,3,4\n")
    with pytest.raises(DataError, match=r"scores.csv: column 'score' appears twice in the header \(columns 2 and 3\)"):
        read_table(path)
    tsv = tmp_path / "scores.tsv"
    tsv.write_text("model\tscore\tmodel\na\t1\tb\n")
    with pytest.raises(DataError, match="'model' appears twice"):
        read_table(tsv)


def test_repeated_jsonl_key_and_dataframe_columns_are_errors(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1, "b": 2}\n{"a": 1, "a": 3}\n')
    with pytest.raises(DataError, match=r"rows.jsonl: line 2: key 'a' appears twice"):
        read_table(path)
    frame = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(DataError, match="'a' appears twice"):
        read_table(frame, name="f")


def test_repeated_header_through_the_command_line(capsys, tmp_path):
    path = tmp_path / "units.csv"
    path.write_text("treated,outcome,outcome\n1,2,3\n0,1,2\n")
    code, _, err = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "--method", "dim"])
    assert code == 2 and "'outcome' appears twice" in err


@pytest.mark.parametrize("value, message", [("1e308", "too large to compute with"), ("1e309", "infinite"),
                                            ("-1e200", "too large to compute with")])
def test_huge_outcomes_are_named_by_column_and_row(capsys, tmp_path, world_frame, value, message):
    frame = world_frame.head(300).copy()
    frame["outcome"] = frame["outcome"].astype(object)
    frame.loc[9, "outcome"] = value
    path = tmp_path / "units.csv"
    frame.to_csv(path, index=False)
    code, out, err = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "-x", "x0,x1"])
    assert code == 2 and out == ""
    assert f"column 'outcome', row 10" in err and message in err
    assert err.count("\n") == 1 and "RuntimeWarning" not in err


def test_large_but_usable_values_pass():
    df = read_table(pd.DataFrame({"y": [1e120, -3.0]}), name="f")
    assert numeric_column(df, "y")[0] == 1e120


def test_repeated_policy_prompt_rows_under_compare_are_warned(capsys, tmp_path):
    from llmcause.evaluation.simulate import judge_world

    frame = judge_world(200, seed=1).frame
    doubled = pd.concat([frame, frame[frame["prompt_id"].isin(frame["prompt_id"].unique()[:30])]], ignore_index=True)
    path = tmp_path / "judged.csv"
    doubled.to_csv(path, index=False)
    argv = ["evaluation", "judge", path, "--judge", "judge_score", "--label", "label", "--group", "model",
            "--cluster", "prompt_id", "--method", "ppi++", "--compare", "--json"]
    code, out, err = _run(capsys, argv)
    assert code == 0, err
    warnings = json.loads(out)["warnings"]
    models = frame["model"].nunique()
    repeated = [w for w in warnings if "repeat a (model, prompt_id) pair" in w]
    assert len(repeated) == 1 and repeated[0].startswith(f"{30 * models} rows")
    frame.to_csv(path, index=False)
    code, out, err = _run(capsys, argv)
    assert code == 0 and not any("repeat a" in w for w in json.loads(out)["warnings"])
    assert np.isfinite(json.loads(out)["estimates"][0]["estimate"])
