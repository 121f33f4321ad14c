"""The Ray engine and executor on a local 2-CPU cluster: same numbers as the local engine; runs survive a
killed worker and a killed driver, none lost or duplicated."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from llmcause.evaluation.streamed import judge_means_streamed
from llmcause.runs import RayExecutor, RunStore, run_campaign


def _same(a, b):
    assert [(e.name, e.method, e.n) for e in a] == [(e.name, e.method, e.n) for e in b]
    for x, y in zip(a, b):
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert getattr(x, key) == pytest.approx(getattr(y, key), rel=1e-12, abs=1e-15)


def test_ray_data_equals_local_engine(ray_cluster, tmp_path):
    rng = np.random.default_rng(4)
    n = 6000
    df = pd.DataFrame({"model": rng.choice(["a", "b"], n), "score": rng.normal(3, 1, n),
                       "prompt": rng.integers(0, 700, n)})
    df["human"] = np.where(rng.random(n) < 0.1, 0.2 * df["score"] + rng.normal(0, 0.3, n), np.nan)
    for i in range(3):
        df.iloc[i * 2000:(i + 1) * 2000].to_parquet(tmp_path / f"p{i}.parquet", index=False, row_group_size=700)
    kw = dict(judge="score", label="human", group="model", cluster="prompt", methods=["calibrated", "ppi++", "naive"],
              batch_rows=900)
    _same(judge_means_streamed(str(tmp_path), engine="ray", **kw), judge_means_streamed(str(tmp_path), **kw))


def _batch_digest(batch):
    """What a partition function sees of its batch: where it comes from, its size and its values."""
    from llmcause.scan import labels, numeric

    codes, keys = labels(batch, "model")
    return (batch.file, batch.start, batch.n, str(batch.columns["score"].type), keys.tolist(), codes.tolist(),
            numeric(batch, "score").tolist())


def _write_row_groups(root, sizes_per_file, seed=0, integer_files=()):
    """One Parquet file per entry of ``sizes_per_file``, written as row groups of those sizes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    for i, sizes in enumerate(sizes_per_file):
        n = sum(sizes)
        score = rng.integers(-5, 5, n) if i in integer_files else rng.normal(size=n)
        frame = pd.DataFrame({"model": rng.choice(["a", "b", "c"], n), "score": score})
        with pq.ParquetWriter(root / f"f{i}.parquet", pa.Table.from_pandas(frame, preserve_index=False).schema) as w:
            start = 0
            for size in sizes:
                w.write_table(pa.Table.from_pandas(frame.iloc[start:start + size], preserve_index=False))
                start += size
    return root


def test_units_cover_every_row_group_once_in_order(tmp_path):
    from llmcause.scan import ParquetDataset, _row_groups, _units

    _write_row_groups(tmp_path, [[300, 300, 50], [10], [700, 5, 5, 400]])
    total, groups = _row_groups(ParquetDataset(tmp_path))
    assert total == 1770 and [g[3] for g in groups] == [300, 300, 50, 10, 700, 5, 5, 400]
    assert [g[2] for g in groups] == [0, 300, 600, 0, 0, 700, 705, 710]  # first row of each group in its file
    rows = {(g[0], g[1]): g[3] for g in groups}
    for target in (1, 350, 600, 1000, 10_000):
        units = _units(groups, target)
        pieces = [(path, i) for unit in units for path, ids, _, _ in unit for i in ids]
        assert pieces == [(g[0], g[1]) for g in groups]  # all, once, in order
        for unit in units:
            size = sum(rows[(path, i)] for path, ids, _, _ in unit for i in ids)
            assert size <= target or sum(len(ids) for _, ids, _, _ in unit) == 1  # only a lone group is larger
            assert len({piece[0] for piece in unit}) == len(unit)  # one piece per file: runs merged
            for path, ids, start, part in unit:
                assert part is None and list(ids) == list(range(ids[0], ids[0] + len(ids)))
                assert start == next(g[2] for g in groups if (g[0], g[1]) == (path, ids[0]))
    # with the batch size, a row group larger than a unit is cut into runs of its batches: every batch of
    # every row group once, in order
    for target, batch in ((350, 100), (200, 100), (600, 250), (1, 50), (10_000, 100)):
        covered = []
        for unit in _units(groups, target, batch):
            for path, ids, start, part in unit:
                for i in ids:
                    n_batches = -(-rows[(path, i)] // batch)
                    first, count = part if part is not None else (0, None)
                    assert part is None or len(ids) == 1 and len(unit) == 1  # a cut group is a unit alone
                    covered += [(path, i, b) for b in range(first, n_batches if count is None else first + count)]
        assert covered == [(g[0], g[1], b) for g in groups for b in range(-(-g[3] // batch))]


def test_ray_tasks_see_the_local_engines_batches(ray_cluster, tmp_path):
    from llmcause.scan import ParquetDataset, run_partitions

    # one large file of many row groups (cut into several tasks) and two small ones, the last with integer
    # scores (each file is read with its own types, on both engines)
    _write_row_groups(tmp_path, [[400] * 9 + [123], [77], [250, 250]], seed=5, integer_files=(2,))
    ds = ParquetDataset(tmp_path)
    seen = {}
    for engine in ("local", "ray"):
        seen[engine] = []
        run_partitions(ds, ["model", "score"], _batch_digest, seen[engine].append, engine=engine, batch_rows=300,
                       dictionary=["model"])
    assert len(seen["local"]) == 22 and seen["ray"] == seen["local"]
    assert {d[3] for d in seen["ray"]} == {"double", "int64"}
    # one big row group (cut into runs of its batches, one task each) beside a small file
    for f in tmp_path.glob("*.parquet"):
        f.unlink()
    _write_row_groups(tmp_path, [[5000], [77]], seed=7)
    for engine in ("local", "ray"):
        seen[engine] = []
        run_partitions(ParquetDataset(tmp_path), ["model", "score"], _batch_digest, seen[engine].append,
                       engine=engine, batch_rows=300, dictionary=["model"])
    assert len(seen["local"]) == 18 and seen["ray"] == seen["local"]


def test_ray_names_the_file_and_row_of_a_bad_value(ray_cluster, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from llmcause.io import DataError

    _write_row_groups(tmp_path, [[500, 500], [400] * 5], seed=6)
    frame = pd.read_parquet(tmp_path / "f1.parquet")
    frame["human"] = np.where(np.arange(2000) % 10 == 0, 0.5, np.nan)
    frame.loc[1234, "model"] = None
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "f1.parquet", row_group_size=400)
    frame0 = pd.read_parquet(tmp_path / "f0.parquet").assign(human=0.1)
    frame0.to_parquet(tmp_path / "f0.parquet", index=False, row_group_size=500)
    kw = dict(judge="score", label="human", group="model", methods=["ppi++"], batch_rows=300)
    messages = []
    for engine in ("local", "ray"):
        with pytest.raises(DataError) as err:
            judge_means_streamed(str(tmp_path), engine=engine, **kw)
        messages.append(str(err.value))
    assert messages[1] == messages[0]
    assert "f1.parquet" in messages[0] and "'model'" in messages[0] and "row 1235" in messages[0]


def test_ray_dr_equals_local_engine(ray_cluster, tmp_path):
    from llmcause.routing.streamed import evaluate_policies_streamed

    rng = np.random.default_rng(8)
    for i, n in enumerate((7000, 7000, 6000)):
        x = rng.normal(size=n)
        p_big = 1 / (1 + np.exp(-0.8 * x))
        big = rng.random(n) < p_big
        pd.DataFrame({"model": np.where(big, "big", "small"), "x": x, "p": np.where(big, p_big, 1 - p_big),
                      "quality": 0.5 + 0.2 * big + 0.1 * x * big + rng.normal(0, 0.2, n),
                      "choice": np.where(x > 0.3, "big", "small")}).to_parquet(tmp_path / f"r{i}.parquet", index=False,
                                                                                row_group_size=2500)
    # a sample smaller than the log: the sampling pass keeps the rows under a hash cut, on every task
    kw = dict(action="model", reward="quality", propensity="p", features="x", methods=["dr"], batch_rows=1000,
              policies=["always:big", "column:choice"], sample_rows=5000)
    _same(evaluate_policies_streamed(str(tmp_path), engine="ray", **kw), evaluate_policies_streamed(str(tmp_path), **kw))


def die_once(params: dict) -> dict:
    """Kill this worker process the first time it runs for a marker; answer on the retry."""
    marker = params["marker"]
    if params["die"] and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return {"value": params["i"] ** 2}


def slow_square(params: dict) -> dict:
    time.sleep(params["sleep"])
    return {"value": params["i"] ** 2}


def _rows(path):
    try:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT key, status, result, attempts FROM runs").fetchall()
    except sqlite3.OperationalError:  # the driver has created the file but not yet its tables
        return []


def test_executor_survives_a_killed_worker(ray_cluster, tmp_path):
    params = [{"i": i, "die": i in (1, 4), "marker": str(tmp_path / f"m{i}")} for i in range(6)]
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        summary = run_campaign(die_once, params, store=store, executor=RayExecutor(max_retries=2))
    assert (summary.executed, summary.failed, summary.skipped) == (6, 0, 0)
    assert os.path.exists(tmp_path / "m1") and os.path.exists(tmp_path / "m4")  # the workers really died
    rows = _rows(path)
    assert len(rows) == 6 and len({r[0] for r in rows}) == 6
    assert all(r[1] == "done" and r[3] == 1 for r in rows)  # stored once: attempts counts records


def test_killed_driver_resumes_without_loss_or_duplicates(ray_cluster, tmp_path):
    path = tmp_path / "runs.sqlite"
    address = ray_cluster.get_runtime_context().gcs_address
    params = [{"i": i, "sleep": 0.4} for i in range(8)]
    script = (
        "import ray, sys\n"
        f"sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_ray import slow_square\n"
        "from llmcause.runs import RayExecutor, RunStore, run_campaign\n"
        f"ray.init(address={address!r}, log_to_driver=False, logging_level='ERROR')\n"
        f"run_campaign(slow_square, {params!r}, store=RunStore({str(path)!r}), executor=RayExecutor())\n"
    )
    driver = subprocess.Popen([sys.executable, "-c", script], env=os.environ.copy())
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        if path.exists() and sum(r[1] == "done" for r in _rows(path)) >= 2:
            break
        time.sleep(0.2)
    if driver.poll() is None:
        os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    before = {r[0] for r in _rows(path) if r[1] == "done"}
    assert 2 <= len(before) < 8 or driver.returncode == 0
    with RunStore(path) as store:
        summary = run_campaign(slow_square, params, store=store, executor=RayExecutor())
    assert summary.skipped == len(before) and summary.executed == 8 - len(before) and summary.failed == 0
    rows = _rows(path)
    assert len(rows) == 8 and all(r[1] == "done" and r[3] == 1 for r in rows)


def test_ray_style_equals_local_engine(ray_cluster, tmp_path):
    from llmcause.alignment.simulate import simulate_battles
    from llmcause.alignment.streamed import style_control_streamed

    frame = simulate_battles(900, 4, seed=6).battles
    for i in range(3):
        frame.iloc[i * 300:(i + 1) * 300].to_parquet(tmp_path / f"b{i}.parquet", index=False, row_group_size=120)
    kw = dict(model_a="model_a", model_b="model_b", winner="winner", text_a="text_a", text_b="text_b",
              cluster="prompt_id", weights="inverse-pair", tokenizer="simple", batch_rows=150)
    ray_fit = style_control_streamed(str(tmp_path), engine="ray", **kw).study.estimates()
    _same(ray_fit, style_control_streamed(str(tmp_path), **kw).study.estimates())
