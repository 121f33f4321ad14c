"""Logs in object storage: an s3:// directory, file or glob is read through pyarrow.fs and gives the numbers of
the same files on disk (the same file names, hence the same folds and samples). A local S3 server (moto)
stands in for the cloud; the Ray engine's workers read the objects themselves."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.evaluation.streamed import judge_means_streamed
from llmcause.io import DataError
from llmcause.routing.streamed import evaluate_policies_streamed
from llmcause.scan import ParquetDataset, is_dataset_path, is_uri

from test_routing_streamed import router_log

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on localhost with a bucket holding a router log in three files (an empty one among
    them) and a text file beside them, and the same log on disk; yields (uri of the log's folder with its
    credentials, local folder, the URI's options)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = f"endpoint_override={host}:{port}&scheme=http&region=us-east-1"
    store = pafs.S3FileSystem(access_key="k", secret_key="s", endpoint_override=f"{host}:{port}", scheme="http",
                              region="us-east-1", allow_bucket_creation=True)
    store.create_dir("logs-bucket")
    df = router_log(1800, seed=11)
    local = tmp_path_factory.mktemp("disk") / "router"
    local.mkdir()
    for i, (a, b) in enumerate([(0, 700), (700, 700), (700, 1800)]):
        table = pa.Table.from_pandas(df.iloc[a:b], preserve_index=False)
        pq.write_table(table, local / f"part-{i}.parquet", row_group_size=250)
        pq.write_table(table, f"logs-bucket/router/part-{i}.parquet", row_group_size=250, filesystem=store)
    with store.open_output_stream("logs-bucket/router/notes.txt") as f:
        f.write(b"not a log")
    yield "s3://k:s@logs-bucket/router", str(local), options
    server.stop()


def _numbers(table):
    """Every number of every row (NaN as text, so that two withheld intervals compare equal)."""
    return [tuple("nan" if isinstance(v, float) and np.isnan(v) else v
                  for v in (e.name, e.estimand, e.method, e.n, e.estimate, e.se, e.ci_low, e.ci_high))
            for e in table]


KW = dict(action="model", reward="q", policies=["always:big", "column:choice"], propensity="p", cost="cost",
          features="x,domain", methods=["ips", "dr", "switch-dr"], batch_rows=200)


def test_uris_are_datasets():
    assert is_uri("s3://bucket/logs/") and is_uri("gs://b/x.parquet") and not is_uri("C://logs")
    assert not is_uri("logs/part-0.parquet") and is_dataset_path("s3://bucket/logs/x.parquet")


def test_s3_folder_file_and_glob_equal_the_files_on_disk(s3):
    uri, local, options = s3
    on_disk = _numbers(evaluate_policies_streamed(f"{local}/*.parquet", **KW))
    # the folder: its .parquet files only (the notes beside them are skipped)
    assert _numbers(evaluate_policies_streamed(f"{uri}/?{options}", **KW)) == on_disk
    assert _numbers(evaluate_policies_streamed(f"{uri}/part-*.parquet?{options}", **KW)) == on_disk
    one = ParquetDataset(f"{uri}/part-2.parquet?{options}")
    assert one.files == ["logs-bucket/router/part-2.parquet"] and one.count_rows() == 1100
    judged = judge_means_streamed(f"{uri}/?{options}", judge="q", label="x", group="model",
                                  methods=["ppi++", "naive"], batch_rows=300)
    assert _numbers(judged) == _numbers(judge_means_streamed(local, judge="q", label="x", group="model",
                                                             methods=["ppi++", "naive"], batch_rows=300))


def test_s3_bad_addresses_are_named(s3):
    uri, _, options = s3
    with pytest.raises(DataError, match="no such file or directory"):
        ParquetDataset(f"{uri}/missing.parquet?{options}")
    with pytest.raises(DataError, match="no file matches this pattern"):
        ParquetDataset(f"{uri}/nothing-*.parquet?{options}")
    with pytest.raises(DataError, match="no .parquet files there"):
        ParquetDataset(f"s3://k:s@logs-bucket/elsewhere/?{options}")
    with pytest.raises(DataError, match="only Parquet files"):
        ParquetDataset(f"{uri}/*.txt?{options}")
    with pytest.raises(DataError, match="could not open"):
        ParquetDataset("nosuchscheme://bucket/logs/")


def test_credentials_in_a_uri_are_never_shown(s3, tmp_path, capsys):
    """Messages and reports show the address with its user:secret part and secret options hidden."""
    from llmcause.cli import run
    from llmcause.scan import redact_uri

    uri, _, options = s3
    assert redact_uri("s3://AKIA:zz@b/x?region=r&secret_key=zz&session_token=t") == \
        "s3://***@b/x?region=r&secret_key=***&session_token=***"
    with pytest.raises(DataError) as err:
        ParquetDataset(f"{uri}/missing.parquet?{options}")
    assert "k:s@" not in str(err.value) and "s3://***@logs-bucket/router/missing.parquet" in str(err.value)
    report = tmp_path / "r.html"
    assert run(["routing", "evaluate", f"{uri}/?{options}", "--action", "model", "--reward", "q", "--propensity",
                "p", "--features", "x", "--policy", "always:big", "--method", "dr", "--report", str(report)]) == 0
    capsys.readouterr()
    page = report.read_text()
    assert "k:s@" not in page and "s3://***@logs-bucket/router/" in page


def test_s3_on_the_command_line(s3, capsys):
    from llmcause.cli import run

    uri, local, options = s3
    argv = ["routing", "evaluate", "--action", "model", "--reward", "q", "--propensity", "p", "--features",
            "x,domain", "--policy", "always:big", "--method", "dr", "--json"]
    assert run([*argv[:2], f"{uri}/?{options}", *argv[2:]]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert run([*argv[:2], local, *argv[2:]]) == 0
    here = json.loads(capsys.readouterr().out)
    assert remote["estimates"] == here["estimates"]


def test_s3_judge_and_style_commands(s3, capsys):
    from llmcause.cli import run

    uri, local, options = s3
    argv = ["evaluation", "judge", None, "--judge", "q", "--label", "x", "--group", "model", "--method", "ppi++",
            "--json"]
    outs = []
    for where in (f"{uri}/?{options}", local):
        argv[2] = where
        assert run(argv) == 0
        outs.append(json.loads(capsys.readouterr().out)["estimates"])
    assert outs[0] == outs[1]
    assert run(["alignment", "style", f"{uri}/?{options}", "--model-a", "model", "--model-b", "choice",
                "--winner", "domain", "--features", "x"]) == 2  # read from S3, then refused as data: exit 2
    assert "winner" in capsys.readouterr().err


def test_ray_workers_read_the_objects(s3, ray_cluster):
    uri, local, options = s3
    kw = dict(KW, methods=["dr"])
    assert _numbers(evaluate_policies_streamed(f"{uri}/?{options}", engine="ray", **kw)) == \
        _numbers(evaluate_policies_streamed(local, **kw))
