"""routing evaluate out of core equals the in-memory cross-fitted estimates given the same (hashed) folds."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmcause.io import DataError
from llmcause.routing.evaluate import evaluate_policies, fit_nuisances
from llmcause.routing.logs import read_log
from llmcause.routing.streamed import _FOLD_KEY, LogColumns, _unit_hash, evaluate_policies_streamed
from llmcause.scan import Batch, labels


def router_log(n=2400, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    domain = rng.choice(["code", "chat", "math"], n)
    p_big = 1 / (1 + np.exp(-(0.8 * x)))
    big = rng.random(n) < p_big
    model = np.where(big, "big", "small")
    prop = np.where(big, p_big, 1 - p_big)
    quality = 0.5 + 0.2 * big + 0.1 * x * big + rng.normal(0, 0.2, n)
    cost = np.where(big, 1.0, 0.1) * rng.uniform(0.8, 1.2, n)
    soft = 1 / (1 + np.exp(-x))
    return pd.DataFrame({"model": model, "q": quality, "p": prop, "cost": cost, "x": x, "domain": domain,
                         "prompt": rng.integers(0, 400, n), "choice": np.where(x > 0.3, "big", "small"),
                         "pi_big": soft, "pi_small": 1 - soft})


def write(df, root, cuts):
    root.mkdir()
    for i, (a, b) in enumerate(zip([0, *cuts], [*cuts, len(df)])):
        df.iloc[a:b].to_parquet(root / f"part-{i}.parquet", index=False, row_group_size=250)
    return str(root)


@pytest.mark.parametrize("cluster,propensity", [(None, "p"), ("prompt", "p"), (None, None)])
def test_streamed_equals_in_memory_with_the_same_folds(tmp_path, cluster, propensity):
    df = router_log()
    path = write(df, tmp_path / "log", [500, 1700])
    policies = ["always:big", "column:choice", "probs:pi_"]
    methods = ["ips", "snips", "dm", "dr", "sndr"]
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=policies, propensity=propensity,
                                     cost="cost", features="x,domain", cluster=cluster, methods=methods, lam=0.2,
                                     compare=True, batch_rows=300)
    cols = LogColumns("model", "q", propensity, "cost", ("x", "domain"), None, cluster, ("choice",))
    batch = Batch("all", None, {c: pa.array(df[c]) for c in df.columns})
    folds = (_unit_hash(cols, batch, _FOLD_KEY.format(seed=0), labels(batch, "model"), df["q"].to_numpy())
             % np.uint64(5)).astype(int)
    log = read_log(df, action="model", reward="q", propensity=propensity, cost="cost", features="x,domain",
                   cluster=cluster)
    mem = evaluate_policies(log, policies, methods=methods, lam=0.2, compare=True,
                            nuisances=fit_nuisances(log, folds=folds))
    assert len(got) == len(mem)
    for g, e in zip(got, mem):
        assert (g.name, g.estimand, g.method, g.n) == (e.name, e.estimand, e.method, e.n)
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert getattr(g, key) == pytest.approx(getattr(e, key), rel=1e-9, abs=1e-12, nan_ok=True), (g, e, key)
    assert got.warnings == mem.warnings


def test_streamed_bad_input(tmp_path):
    df = router_log(300)
    df.loc[250, "p"] = 1.5
    path = write(df, tmp_path / "bad", [200])
    with pytest.raises(DataError, match=r"part-1\.parquet: column 'p', row 51: 1\.5 is not a probability"):
        evaluate_policies_streamed(path, action="model", reward="q", policies=["always:big"], propensity="p",
                                   features="x")
    with pytest.raises(DataError, match="out of core the methods are"):
        evaluate_policies_streamed(path, action="model", reward="q", policies=["always:big"], propensity="p",
                                   features="x", methods=["dros"])


@pytest.mark.parametrize("claimed_rows", [10, 10**12])
def test_sample_is_the_same_with_or_without_the_hash_cut(tmp_path, monkeypatch, claimed_rows):
    """The sampling pass cuts at a hash set from the row count; the sample (and so every estimate) is the
    same as with no cut (a count of 10 rows), and when too few rows fall under the cut (a count of 10¹²)
    the pass runs again without it."""
    from llmcause.scan import ParquetDataset

    df = router_log()
    path = write(df, tmp_path / "log", [500, 1700])
    kw = dict(action="model", reward="q", policies=["always:big", "column:choice"], features="x,domain",
              methods=["dr", "ips"], sample_rows=600, batch_rows=300)
    cut = evaluate_policies_streamed(path, **kw)
    monkeypatch.setattr(ParquetDataset, "count_rows", lambda self: claimed_rows)
    other = evaluate_policies_streamed(path, **kw)
    for a, b in zip(cut, other):
        assert (a.name, a.method, a.estimate, a.se) == (b.name, b.method, b.estimate, b.se)
