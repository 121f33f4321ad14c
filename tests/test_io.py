import json

import numpy as np
import pandas as pd
import pytest

from llmcause.io import (DataError, binary_column, check_output_path, covariate_matrix, label_column, numeric_column,
                         parse_list, read_table, require_columns, source_of, write_text_atomic)


@pytest.fixture
def frame():
    return pd.DataFrame({"t": [0, 1, 1, 0], "y": [1.0, 2.0, 3.5, 0.5], "g": ["a", "b", "a", "c"]})


@pytest.mark.parametrize("ext", [".csv", ".tsv", ".jsonl", ".json", ".parquet", ".csv.gz", ".jsonl.gz"])
def test_every_format_reads_the_same_table(tmp_path, frame, ext):
    path = tmp_path / f"data{ext}"
    if ext.startswith(".csv"):
        frame.to_csv(path, index=False)
    elif ext == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif ext.startswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True)
    elif ext == ".json":
        path.write_text(json.dumps(frame.to_dict(orient="records")))
    else:
        frame.to_parquet(path)
    df = read_table(path)
    pd.testing.assert_frame_equal(df.reset_index(drop=True), frame, check_dtype=False)
    assert source_of(df) == str(path)


def test_json_of_columns(tmp_path, frame):
    path = tmp_path / "cols.json"
    path.write_text(json.dumps(frame.to_dict(orient="list")))
    assert read_table(path).shape == (4, 3)


def test_dataframe_input_is_copied(frame):
    df = read_table(frame, name="frame")
    df["new"] = 1
    assert "new" not in frame.columns and source_of(df) == "frame"


@pytest.mark.parametrize("content,name,match", [
    (None, "missing.csv", "no such file"),
    ("", "empty.csv", "the file is empty"),
    ("a,b\n", "header.csv", "no data rows"),
    ("a,b\n1,2\n", "data.xlsx", "unknown file type '.xlsx'"),
    ('{"a": 1}\n{"a": \n', "bad.jsonl", "line 2 is not valid JSON"),
    ("[1, 2]", "bad.json", "record 1 is not a JSON object"),
    ("a,b\n1,2\n3,4,5,6\n", "ragged.csv", "could not read as CSV"),
    ("not parquet", "x.parquet", "could not read as PARQUET"),
])
def test_unreadable_files_raise_data_error(tmp_path, content, name, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=match) as info:
        read_table(path)
    assert name in str(info.value)


def test_binary_file_as_csv(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match="blob.csv"):
        read_table(path)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_table(tmp_path)


def test_column_checks_name_file_column_and_row(frame):
    df = read_table(frame.assign(y=["1", "2", "oops", "4"]), name="votes.csv")
    with pytest.raises(DataError, match=r"votes.csv: column 'y', row 3: 'oops' is not a number"):
        numeric_column(df, "y")
    df = read_table(frame.assign(y=[1.0, np.nan, 2, 3]), name="votes.csv")
    with pytest.raises(DataError, match=r"column 'y', row 2: value is missing"):
        numeric_column(df, "y")
    assert np.isnan(numeric_column(df, "y", allow_missing=True)[1])
    with pytest.raises(DataError, match=r"row 1: 1 is out of range \(must be above 1\)"):
        numeric_column(read_table(frame, name="f"), "y", lower=1.0, lower_open=True)
    with pytest.raises(DataError, match=r"no column 'z'"):
        require_columns(df, ["y", "z"])


def test_binary_column_accepts_common_codings(frame):
    df = read_table(pd.DataFrame({"a": ["yes", "no", "TRUE", "0"], "b": [True, False, True, True],
                                  "c": [0, 1, 2, 1]}), name="f.csv")
    assert list(binary_column(df, "a")) == [1, 0, 1, 0]
    assert list(binary_column(df, "b")) == [1, 0, 1, 1]
    with pytest.raises(DataError, match=r"column 'c', row 3: 2 is not binary"):
        binary_column(df, "c")


def test_covariates_one_hot_text_columns(frame):
    df = read_table(frame, name="f.csv")
    X, names = covariate_matrix(df, ["y", "g"])
    assert names == ["y", "g=b", "g=c"]
    assert X.shape == (4, 3) and list(X[:, 1]) == [0, 1, 0, 0]
    with pytest.raises(DataError, match=r"column 'g', row 2: value is missing"):
        covariate_matrix(read_table(frame.assign(g=["a", None, "a", "b"]), name="f.csv"), ["g"])


def test_labels_and_lists(frame):
    df = read_table(frame, name="f.csv")
    assert list(label_column(df, "g")) == ["a", "b", "a", "c"]
    assert parse_list("a, b,c") == ["a", "b", "c"]
    with pytest.raises(DataError, match="empty name"):
        parse_list("a,,b", "--covariates")


def test_atomic_write_and_output_checks(tmp_path):
    target = tmp_path / "out.html"
    write_text_atomic(target, "hello")
    assert target.read_text() == "hello" and list(tmp_path.iterdir()) == [target]
    with pytest.raises(DataError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "r.html", "--report")
    with pytest.raises(DataError, match="is a directory"):
        check_output_path(tmp_path, "--report")
