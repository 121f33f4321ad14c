"""evaluation judge out of core: exact methods equal the in-memory ones; the calibration is learnt on a hashed
sample whose folds do not depend on the batches (nor, given a cluster, on how the log is split into files);
memory stays bounded."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmcause.core.surrogate import Calibration, IsotonicCalibrator, calibrated_mean
from llmcause.evaluation.means import judge_means
from llmcause.evaluation.streamed import _FOLD_KEY, judge_means_streamed
from llmcause.io import DataError
from llmcause.scan import Batch, ParquetDataset, hash_rows, row_place


def judged_frame(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    g = rng.choice(["alpha", "beta", "gamma"], n)
    s = rng.normal(3, 1, n) + (g == "beta") * 0.3
    y = 0.1 + 0.2 * s + rng.normal(0, 0.3, n)
    prob = rng.uniform(0.05, 0.3, n)
    lab = rng.random(n) < prob
    return pd.DataFrame({"model": g, "score": s, "human": np.where(lab, y, np.nan), "prompt": rng.integers(0, 300, n),
                         "p": prob})


def write_parts(df, root, cuts):
    root.mkdir(parents=True, exist_ok=True)
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(df)])):
        df.iloc[a:b].to_parquet(root / f"part-{i:03d}.parquet", index=False, row_group_size=97)
    return root


def assert_same(a, b, tol=1e-12):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (x.name, x.method, x.n) == (y.name, y.method, y.n)
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert abs(getattr(x, key) - getattr(y, key)) <= tol * max(1, abs(getattr(y, key))), (x, y, key)
    assert a.warnings == b.warnings


@pytest.mark.parametrize("cluster,label_prob", [(None, None), ("prompt", None), ("prompt", "p")])
def test_exact_methods_equal_in_memory(tmp_path, cluster, label_prob):
    df = judged_frame()
    root = write_parts(df, tmp_path / "log", [700, 701, 2200])
    methods = ["ppi++", "ppi", "labeled", "naive"]
    mem = judge_means(df, judge="score", label="human", group="model", cluster=cluster, label_prob=label_prob,
                      methods=methods)
    got = judge_means_streamed(str(root), judge="score", label="human", group="model", cluster=cluster,
                               label_prob=label_prob, methods=methods, batch_rows=333)
    assert_same(got, mem)
    glob = judge_means_streamed(str(tmp_path / "log" / "part-*.parquet"), judge="score", label="human",
                                group="model", cluster=cluster, label_prob=label_prob, methods=methods,
                                batch_rows=5000)
    assert_same(glob, mem)


@pytest.mark.parametrize("cluster", [None, "prompt"])
def test_calibrated_equals_in_memory_given_the_hashed_folds(tmp_path, cluster):
    df = judged_frame(seed=1)
    root = str(write_parts(df, tmp_path / "a", [1000, 2000]))
    got = judge_means_streamed(root, judge="score", label="human", group="model", cluster=cluster,
                               methods="calibrated", seed=4, batch_rows=256)
    other = judge_means_streamed(root, judge="score", label="human", group="model", cluster=cluster,
                                 methods="calibrated", seed=4, batch_rows=1000)
    assert_same(got, other)  # the batches change nothing
    if cluster:  # nor, with a cluster, the split into files
        resplit = judge_means_streamed(str(write_parts(df, tmp_path / "b", [17, 2999])), judge="score",
                                       label="human", group="model", cluster=cluster, methods="calibrated", seed=4)
        assert_same(got, resplit)
    # In memory, with the calibration fitted on the same folds (hash of the cluster or of the row's place).
    s, y = df["score"].to_numpy(), df["human"].to_numpy()
    R = ~np.isnan(y)
    key = _FOLD_KEY.format(seed=4)
    if cluster:
        h = hash_rows(key, df[cluster].astype(str).astype(object).to_numpy())
    else:
        import pyarrow.parquet as pq

        h = np.concatenate([hash_rows(key, *row_place(Batch(f, 0, {"x": pa.array(np.zeros(n))})))
                            for f in ParquetDataset(root).files
                            for n in [pq.ParquetFile(f).metadata.num_rows]])
    fold = (h % np.uint64(5)).astype(int)
    idx = np.flatnonzero(R)
    full = IsotonicCalibrator().fit(s[idx], y[idx]).predict(s)
    without = np.stack([IsotonicCalibrator().fit(s[idx[fold[idx] != k]], y[idx[fold[idx] != k]]).predict(s)
                        for k in range(5)])
    oof = full.copy()
    oof[idx] = without[fold[idx], idx]
    folds = np.full(s.shape[0], -1)
    folds[idx] = fold[idx]
    cal = Calibration(full, oof, without, folds, R, (float(s[idx].min()), float(s[idx].max())), s)
    cl = None if cluster is None else df[cluster].astype(str).to_numpy()
    for e in got:
        mem = calibrated_mean(y, R, cal, subset=df["model"].to_numpy() == e.name, cluster=cl, name=e.name,
                              estimand="mean human")
        for key_ in ("estimate", "se", "ci_low", "ci_high"):
            assert abs(getattr(e, key_) - getattr(mem, key_)) <= 1e-12 * max(1, abs(getattr(mem, key_)))
        # The Welch df goes as 1/var_cal², var_cal from differences of nearly equal fold estimates: it keeps
        # fewer digits than the estimate (both in memory and streamed).
        assert e.df == pytest.approx(mem.df, rel=1e-9)


def test_bad_values_name_file_column_and_row(tmp_path):
    df = judged_frame(200)
    df.loc[150, "score"] = np.inf
    root = write_parts(df, tmp_path / "bad", [100])
    with pytest.raises(DataError, match=r"part-001\.parquet: column 'score', row 51: value is infinite"):
        judge_means_streamed(str(root), judge="score", label="human", methods="ppi++")
    with pytest.raises(DataError, match="no column 'nope' \\(given to --group\\)"):
        judge_means_streamed(str(root), judge="score", label="human", group="nope", methods="ppi++")
    with pytest.raises(DataError, match="no file matches"):
        judge_means_streamed(str(tmp_path / "none-*.parquet"), judge="score", label="human")


@pytest.mark.parametrize("threads", [1, 2])
def test_memory_stays_bounded_by_the_batch(tmp_path, monkeypatch, threads):
    """Peak Python-side allocations (numpy's are traced) do not grow with the log: a log 10x longer (100
    batches) peaks at about the same memory (fixed clusters and calibration sample), a few times below the
    size of the log itself. Arrow's own decode buffers are not traced; they hold one row group at a time."""
    import tracemalloc

    monkeypatch.setenv("LLMCAUSE_THREADS", str(threads))
    batch, rng = 2_000, np.random.default_rng(2)

    def write(name, n):
        df = pd.DataFrame({"model": rng.choice(["a", "b"], n), "score": rng.normal(3, 1, n),
                           "human": np.where(rng.random(n) < 0.05, rng.normal(0.6, 0.3, n), np.nan),
                           "prompt": rng.integers(0, 500, n)})
        root = tmp_path / name
        root.mkdir()
        for i in range(4):
            df.iloc[i * n // 4:(i + 1) * n // 4].to_parquet(root / f"p{i}.parquet", index=False,
                                                            row_group_size=batch)
        return str(root), int(df.memory_usage(deep=True).sum())

    def peak(root):
        tracemalloc.start()
        table = judge_means_streamed(root, judge="score", label="human", group="model", cluster="prompt",
                                     methods=["calibrated", "ppi++", "naive"], batch_rows=batch, sample_rows=1000)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(table) == 6
        return top

    small, _ = write("small", 20_000)
    big, big_bytes = write("big", 200_000)
    peak(small)  # first imports and caches out of the way
    p_small, p_big = peak(small), peak(big)
    assert p_big < 1.25 * p_small + 200_000, (p_small, p_big)
    # the log is 100 batches; the local engine holds at most threads + 1 of them at once
    assert p_big < big_bytes / 3 * (threads + 1) / 2, (p_big, big_bytes)


def test_binary_judge_and_labels_get_folds_by_row_not_by_value(tmp_path):
    """With 0/1 scores and labels a row's values take four patterns: folds hashed from values put each
    pattern in one fold (a fold then had no labelled rows, or its calibration never saw the labels it
    predicts). Folds by the row's place give the in-memory answer up to the choice of folds."""
    rng = np.random.default_rng(5)
    n = 40_000
    y = (rng.random(n) < 0.7).astype(float)
    score = np.where(rng.random(n) < 0.85, y, 1 - y)
    df = pd.DataFrame({"model": rng.choice(["a", "b"], n), "score": score,
                       "human": np.where(rng.random(n) < 0.1, y, np.nan)})
    root = write_parts(df, tmp_path / "log", [10_000, 20_000, 30_000])
    got = judge_means_streamed(str(root), judge="score", label="human", group="model", methods="calibrated")
    mem = judge_means(df, judge="score", label="human", group="model", methods="calibrated")
    for g, m in zip(got, mem):
        assert abs(g.estimate - m.estimate) < 0.5 * m.se, (g, m)
        assert g.ci_low < 0.7 < g.ci_high
