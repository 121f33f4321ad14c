"""The local engine's threads, its heap scope and the scoring pass's fast paths: the same numbers as one thread
and as scikit-learn, bad values named by file and row, bucket sums that do not depend on the batches."""

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmcause.evaluation.streamed import judge_means_streamed
from llmcause.io import DataError
from llmcause.routing import streamed as rs
from llmcause.routing.streamed import evaluate_policies_streamed
from llmcause.scan import Batch, ParquetDataset, local_threads, reused_heap, run_partitions

from test_routing_streamed import assert_same, in_memory, rare_model_log, router_log, write


def _numbers(table):
    """Every number of every row (NaN as text, so that two withheld intervals compare equal)."""
    return [tuple("nan" if isinstance(v, float) and np.isnan(v) else v
                  for v in (e.name, e.estimand, e.method, e.estimate, e.se, e.ci_low, e.ci_high)) for e in table]


@pytest.mark.parametrize("threads", ["2", "3"])
def test_threads_give_the_numbers_of_one_thread(tmp_path, monkeypatch, threads):
    """Results are merged in batch order whatever the threads: equal to the last bit."""
    df = router_log(3000, seed=7)
    path = write(df, tmp_path / "log", [900, 900, 2100])
    kw = dict(action="model", reward="q", policies=["always:big", "column:choice", "probs:pi_"], propensity="p",
              cost="cost", features="x,domain", methods=["ips", "snips", "dr", "switch-dr"], lam=0.2,
              compare=True, batch_rows=170)
    monkeypatch.setenv("LLMCAUSE_THREADS", "1")
    one = evaluate_policies_streamed(path, **kw)
    judged = df.assign(human=np.where(np.arange(len(df)) % 7 == 0, df["q"] + 0.1, np.nan))
    jpath = write(judged, tmp_path / "judged", [1000])
    jkw = dict(judge="q", label="human", group="model", methods=["ppi++", "calibrated", "naive"], batch_rows=130)
    j_one = judge_means_streamed(jpath, **jkw)
    monkeypatch.setenv("LLMCAUSE_THREADS", threads)
    assert local_threads() == int(threads)
    assert _numbers(evaluate_policies_streamed(path, **kw)) == _numbers(one)
    assert _numbers(judge_means_streamed(jpath, **jkw)) == _numbers(j_one)


def test_threads_report_the_first_bad_row_in_file_order(tmp_path, monkeypatch):
    df = router_log(2000, seed=2)
    df.loc[1500, "q"] = np.nan
    df.loc[1900, "q"] = np.nan
    path = write(df, tmp_path / "log", [1000])
    monkeypatch.setenv("LLMCAUSE_THREADS", "3")
    with pytest.raises(DataError, match=r"part-1\.parquet: column 'q', row 501: value is missing"):
        evaluate_policies_streamed(path, action="model", reward="q", policies=["always:big"], propensity="p",
                                   features="x", batch_rows=100)
    # the later batch fails first (the earlier one is slow); the error raised is still the earlier batch's
    import time

    def fn(batch):
        if batch.file.endswith("part-0.parquet") and batch.start == 350:
            time.sleep(0.3)
            raise DataError("first")
        if batch.file.endswith("part-0.parquet") and batch.start == 450:
            raise DataError("second")
        return batch.n

    with pytest.raises(DataError, match="first"):
        run_partitions(ParquetDataset(path), ["q"], fn, lambda r: None, batch_rows=100)


def test_a_missing_feature_outside_the_sample_is_named_by_file_and_row(tmp_path):
    """Bad feature values are found where the file and row are known, whether the row was sampled or not."""
    df = router_log(1200, seed=3).astype({"domain": object})
    for row in range(1100, 1200):  # some of them sampled
        df.loc[row, "domain"] = None
        path = write(df, tmp_path / f"log{row}", [600])
        with pytest.raises(DataError, match=rf"part-1\.parquet: column 'domain', row {row - 599}: value is missing"):
            evaluate_policies_streamed(path, action="model", reward="q", policies=["always:big"], propensity="p",
                                       features="x,domain", sample_rows=100, batch_rows=128)
        df.loc[row, "domain"] = "chat"
        df.loc[row, "x"] = 1e200
        path = write(df, tmp_path / f"log{row}x", [600])
        with pytest.raises(DataError, match=rf"part-1\.parquet: column 'x', row {row - 599}: 1e\+200 is too large"):
            evaluate_policies_streamed(path, action="model", reward="q", policies=["always:big"], propensity="p",
                                       features="x,domain", sample_rows=100, batch_rows=128)
        df.loc[row, "x"] = 0.0


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_bad_thread_count_is_refused(monkeypatch, value):
    monkeypatch.setenv("LLMCAUSE_THREADS", value)
    with pytest.raises(DataError, match="LLMCAUSE_THREADS"):
        local_threads()


def test_bad_thread_count_on_the_command_line(tmp_path, monkeypatch, capsys):
    from llmcause.cli import run

    path = write(router_log(400), tmp_path / "log", [200])
    monkeypatch.setenv("LLMCAUSE_THREADS", "zero")
    code = run(["routing", "evaluate", path, "--action", "model", "--reward", "q", "--propensity", "p",
                "--features", "x", "--policy", "always:big", "--json"])
    assert code == 2
    err = capsys.readouterr().err
    assert "LLMCAUSE_THREADS='zero'" in err and "Traceback" not in err


def test_heap_scope_nests_and_survives_errors(tmp_path, monkeypatch):
    import llmcause.scan as scan

    monkeypatch.setenv("LLMCAUSE_THREADS", "2")
    path = write(router_log(600), tmp_path / "log", [300])
    ds = ParquetDataset(path)

    def boom(batch):
        raise DataError("stop")

    with reused_heap():
        with pytest.raises(DataError, match="stop"):
            run_partitions(ds, ["x"], boom, lambda r: None, batch_rows=50)
        assert scan._heap_depth[0] == 1
        seen = []
        run_partitions(ds, ["x"], lambda b: b.n, seen.append, batch_rows=50)
        assert sum(seen) == 600
    assert scan._heap_depth[0] == 0


def test_bucket_sums_do_not_depend_on_the_batches():
    """Runs of `block` rows are numbered from the file's first row, so any batch boundaries (inside a run or
    not) give the same bucket sums, to rounding."""
    rng = np.random.default_rng(0)
    n, block = 1000, 7
    zt = rng.normal(size=(3, n))
    whole = rs._bucket_sums(Batch("dir/f.parquet", 0, {"x": pa.array(np.zeros(n))}), zt, block, "k")
    for cuts in ([0, 500, 1000], [0, 1, 2, 9, 10, 500, 999, 1000], sorted({0, 1000, *rng.integers(1, n, 30)})):
        total = sum(rs._bucket_sums(Batch("dir/f.parquet", a, {"x": pa.array(np.zeros(b - a))}), zt[:, a:b],
                                    block, "k") for a, b in zip(cuts[:-1], cuts[1:]))
        np.testing.assert_allclose(total, whole, rtol=1e-12, atol=1e-12)
    assert whole[:, 0].sum() == n  # the counts
    # runs, not rows: a run's rows share a bucket
    single = rs._bucket_sums(Batch("dir/f.parquet", 0, {"x": pa.array(np.zeros(n))}), zt, 1, "k")
    assert np.count_nonzero(whole[:, 0]) <= -(-n // block) < np.count_nonzero(single[:, 0])


@pytest.mark.parametrize("cluster", [None, "prompt"])
def test_runs_of_rows_in_buckets_keep_the_in_memory_answers(tmp_path, monkeypatch, cluster):
    """With fewer buckets the rows are summed in runs of several (as on a large log): the bound on effective
    contributions it gives settles the common policy's intervals, never exceeds the exact count, and leaves
    the rare policy to the exact count; every number stays the in-memory one."""
    monkeypatch.setattr(rs, "N_BUCKETS", 128)  # 6000 rows: runs of 6000 // (16 · 128) = 2 rows
    df = rare_model_log(6000, 40)
    path = write(df, tmp_path / "log", [2500, 2500])
    policies, methods = ["always:rare", "always:big"], ["ips", "dr", "sndr"]
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=policies, propensity="p",
                                     features="x,domain", cluster=cluster, methods=methods, batch_rows=333)
    mem = in_memory(df, policies, methods, path=path, cost=None, cluster=cluster, lam=None, compare=False)
    assert_same(got, mem)  # a bound, where reported, is at most the exact count
    bounded = {(g.name, g.method) for g in got if "effective_contributions_at_least" in g.diagnostics}
    if cluster is None:
        assert ("always:big", "dr") in bounded and not any(name == "always:rare" for name, _ in bounded)
    else:
        assert not bounded  # cluster sums give the exact count


def test_linear_models_predict_as_scikit_learn_to_the_bit():
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    for p in (1, 4):
        X = rng.normal(size=(800, p)) * np.arange(1, p + 1) + 2.0
        Xt = rng.normal(size=(3001, p))
        y = X @ rng.normal(size=p) + rng.normal(size=800)
        ridge = make_pipeline(StandardScaler(), Ridge()).fit(X, y)
        assert np.array_equal(rs._Linear.of(ridge).predict(Xt), ridge.predict(Xt))
        for classes in ((y > 0).astype(int), np.digitize(y, [-1.0, 0.0, 1.0])):
            logit = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X, classes)
            assert np.array_equal(rs._Linear.of(logit).predict_proba(Xt), logit.predict_proba(Xt))
    from sklearn.ensemble import HistGradientBoostingRegressor

    assert rs._Linear.of(HistGradientBoostingRegressor()) is None
    assert rs._Linear.of(make_pipeline(Ridge())) is None


def test_kept_heap_spares_the_page_faults_of_freed_arrays():
    """Inside `reused_heap`, arrays freed by one batch serve the next instead of going back to the system and
    faulting in again (glibc only; a fresh process, so that no earlier scan has set its thresholds)."""
    import subprocess
    import sys

    from llmcause import scan

    if scan._glibc() is None:
        pytest.skip("not glibc: reused_heap does nothing here")
    script = """
import resource, numpy as np
from llmcause.scan import reused_heap
def batches():
    for _ in range(15):
        arrays = [np.ones(3_500_000) for _ in range(4)]  # 4 x 28 MB made and freed, as a batch's temporaries
        del arrays
def faults(f):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    f()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
outside = faults(batches)
with reused_heap():
    inside = faults(batches)
after = faults(batches)
print(outside, inside, after)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    outside, inside, after = map(int, out.stdout.split())
    assert inside * 5 < outside, (outside, inside)  # each round faulted 112 MB in again outside
    assert after <= outside * 1.2, (outside, after)  # leaving the scope does not make later work fault more
