"""routing evaluate out of core equals the in-memory cross-fitted estimates given the same (hashed) folds."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmcause.io import DataError
from llmcause.routing.evaluate import evaluate_policies, fit_nuisances
from llmcause.routing.logs import read_log
from llmcause.routing.streamed import _FOLD_KEY, evaluate_policies_streamed
from llmcause.scan import Batch, ParquetDataset, hash_rows, row_place


def router_log(n=2400, seed=0, slope=0.8):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    domain = rng.choice(["code", "chat", "math"], n)
    p_big = 1 / (1 + np.exp(-(slope * x)))
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


def place_hashes(path, key):
    """The hash of every row's place (file, row number), file by file in the dataset's order."""
    import pyarrow.parquet as pq

    out = []
    for f in ParquetDataset(path).files:
        n = pq.ParquetFile(f).metadata.num_rows
        out.append(hash_rows(key, *row_place(Batch(f, 0, {"x": pa.array(np.zeros(n))}))))
    return np.concatenate(out)


def in_memory(df, policies, methods, *, path, reward="q", propensity="p", cost="cost", cluster=None, lam=0.2,
              compare=True, features="x,domain"):
    """`evaluate_policies` with the folds the streamed path hashes (the cluster's, else the row's place)."""
    key = _FOLD_KEY.format(seed=0)
    h = (hash_rows(key, df[cluster].astype(str).astype(object).to_numpy()) if cluster else place_hashes(path, key))
    folds = (h % np.uint64(5)).astype(int)
    log = read_log(df, action="model", reward=reward, propensity=propensity, cost=cost, features=features,
                   cluster=cluster)
    return evaluate_policies(log, policies, methods=methods, lam=lam, compare=compare,
                             nuisances=fit_nuisances(log, folds=folds))


def assert_same(got, mem):
    """Same rows, numbers to 1e-12, warnings and diagnostics; out of core an effective count that a bound
    settled is reported as that bound, which must not exceed the exact count."""
    assert len(got) == len(mem)
    for g, e in zip(got, mem):
        assert (g.name, g.estimand, g.method, g.n) == (e.name, e.estimand, e.method, e.n)
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert getattr(g, key) == pytest.approx(getattr(e, key), rel=1e-12, abs=1e-12, nan_ok=True), (g, e, key)
        assert g.warnings == e.warnings, (g, e)
        gd, ed = dict(g.diagnostics), dict(e.diagnostics)
        if "effective_contributions_at_least" in gd:
            assert gd["effective_contributions_at_least"] <= ed.pop("effective_contributions") * (1 + 1e-12)
            gd = {k: v for k, v in gd.items() if k != "effective_contributions_at_least"}
        assert list(gd) == list(ed), (g, set(gd) ^ set(ed))  # the same keys in the same order (JSON output)
        for k, v in ed.items():
            if isinstance(v, float):
                assert gd[k] == pytest.approx(v, rel=1e-12, abs=1e-12, nan_ok=True), (g, k)
            else:
                assert gd[k] == pytest.approx(v, rel=1e-12, abs=1e-12) if isinstance(v, dict) else gd[k] == v, (g, k)
    assert got.warnings == mem.warnings


@pytest.mark.parametrize("cluster,propensity", [(None, "p"), ("prompt", "p"), (None, None)])
def test_streamed_equals_in_memory_with_the_same_folds(tmp_path, cluster, propensity):
    """Every method, Switch-DR's tuned τ included, over parts with an empty one; clusters span parts."""
    df = router_log()
    path = write(df, tmp_path / "log", [500, 500, 1700])
    policies = ["always:big", "column:choice", "probs:pi_"]
    methods = ["ips", "snips", "dm", "dr", "sndr", "switch-dr"]
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=policies, propensity=propensity,
                                     cost="cost", features="x,domain", cluster=cluster, methods=methods, lam=0.2,
                                     compare=True, batch_rows=300)
    mem = in_memory(df, policies, methods, path=path, propensity=propensity, cluster=cluster)
    assert_same(got, mem)
    taus = {g.diagnostics["tau"] for g in got if g.method == "switch-dr"}
    assert any(np.isfinite(t) for t in taus)  # the tuned thresholds switch some rows to DM


@pytest.mark.parametrize("cluster", [None, "prompt"])
@pytest.mark.parametrize("tau", [0.0, 1.3, float("inf")])
def test_switch_dr_with_a_fixed_threshold_equals_in_memory(tmp_path, monkeypatch, cluster, tau):
    import functools

    import llmcause.routing.evaluate as ev
    from llmcause.core.ope import ope_estimates

    df = router_log(1500, seed=3)
    path = write(df, tmp_path / "log", [700, 700])
    policies = ["always:big", "probs:pi_"]
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=policies, propensity="p",
                                     features="x,domain", cluster=cluster, methods=["switch-dr", "dr"], tau=tau,
                                     cost=None, batch_rows=400)
    monkeypatch.setattr(ev, "ope_estimates", functools.partial(ope_estimates, tau=tau))
    mem = in_memory(df, policies, ["switch-dr", "dr"], path=path, cost=None, cluster=cluster, lam=None, compare=False)
    assert_same(got, mem)
    assert all(g.diagnostics["tau"] == tau for g in got if g.method == "switch-dr")


def rare_model_log(n, n_rare, binary=False, seed=5):
    """A log where the old router chose model "rare" ``n_rare`` times (logged propensity n_rare/n) and "big" or
    "small" the rest (each half of what is left); a sparse outcome (a purchase, a click) or its size."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    rare = np.zeros(n, dtype=bool)
    rare[rng.choice(n, n_rare, replace=False)] = True
    big = ~rare & (rng.random(n) < 0.5)
    share = n_rare / n
    hit = rng.random(n) < 0.1 + 0.2 * big
    return pd.DataFrame({"model": np.where(rare, "rare", np.where(big, "big", "small")),
                         "q": hit.astype(float) if binary else hit * rng.exponential(1.0 + x * x, n),
                         "p": np.where(rare, share, (1 - share) / 2), "x": x, "domain": rng.choice(["a", "b"], n),
                         "prompt": rng.integers(0, 500, n)})


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("cluster", [None, "prompt"])
def test_withheld_intervals_and_overlap_warnings_as_in_memory(tmp_path, cluster, binary):
    """A model the old router chose 15 times, a sparse outcome: intervals for the policy that always takes it
    are withheld (too few contributions, or with 0/1 rewards too few weighted events), with the same notes and thin-overlap
    and heavy-weight warnings as in memory; a policy with good overlap keeps its intervals."""
    df = rare_model_log(2000, 15, binary=binary)
    path = write(df, tmp_path / "log", [900, 900])
    policies = ["always:rare", "always:big"]
    methods = ["ips", "dr", "sndr", "switch-dr"]
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=policies, propensity="p",
                                     features="x,domain", cluster=cluster, methods=methods, batch_rows=500)
    mem = in_memory(df, policies, methods, path=path, cost=None, cluster=cluster, lam=None, compare=False)
    assert_same(got, mem)
    rare_rows = [g for g in got if g.name == "always:rare" and g.method != "naive"]
    assert rare_rows and all(np.isnan(g.ci_low) and "intervals withheld" in g.warnings[-1] for g in rare_rows)
    assert all(any("thin overlap" in w for w in g.warnings) for g in rare_rows)
    assert all(np.isfinite(g.ci_low) for g in got if g.name == "always:big" and g.method != "naive")


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
    df.loc[250, "p"] = 0.5
    good = write(df, tmp_path / "good", [200])
    for tau in (-1.0, float("nan"), "often"):
        with pytest.raises(DataError, match="tau: give a threshold of at least 0"):
            evaluate_policies_streamed(good, action="model", reward="q", policies=["always:big"], propensity="p",
                                       features="x", methods=["switch-dr"], tau=tau)


def test_switch_dr_refuses_too_many_distinct_weights(tmp_path, monkeypatch, capsys):
    """τ is chosen from exact quantiles kept value by value; past the cap the command says so (exit 2)."""
    import llmcause.routing.streamed as st
    from llmcause.cli import run

    df = router_log(600)
    path = write(df, tmp_path / "log", [300])
    monkeypatch.setattr(st, "MAX_WEIGHT_VALUES", 50)
    code = run(["routing", "evaluate", path, "-a", "model", "-y", "q", "--propensity", "p", "-x", "x",
                "-p", "probs:pi_", "--method", "switch-dr"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "policy probs:pi_" in err and "more than 50 distinct values" in err and "fixed tau" in err
    df["p"] = 0.5  # one logging probability: the weights take the values 0 and 2 only
    path = write(df, tmp_path / "even", [300])
    code = run(["routing", "evaluate", path, "-a", "model", "-y", "q", "--propensity", "p", "-x", "x",
                "-p", "always:big", "--method", "switch-dr,dr", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err


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


@pytest.mark.parametrize("cluster", [None, "prompt"])
def test_propensity_floor_reported_as_in_memory(tmp_path, cluster):
    """A router that almost never sent low-x prompts to the big model: without --propensity the estimated
    propensities of some rows fall below the floor, and out of core reports the same floored rows (in total and
    per model), the same diagnostics on every estimate and the same warning as in memory."""
    df = router_log(slope=3.0)
    path = write(df, tmp_path / "log", [800, 800, 1900])
    policies = ["always:big", "column:choice", "probs:pi_"]
    methods = ["ips", "snips", "dm", "dr", "sndr", "switch-dr"]
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=policies, cost="cost",
                                     features="x,domain", cluster=cluster, methods=methods, lam=0.2, compare=True,
                                     batch_rows=300)
    mem = in_memory(df, policies, methods, path=path, propensity=None, cluster=cluster)
    assert_same(got, mem)
    floored = [g.diagnostics for g in got if g.method not in ("naive",) and "rows_floored" in g.diagnostics]
    assert len(floored) == len(policies) * 3 * len(methods)  # every OPE row, each estimand
    assert floored[0]["rows_floored"] > 100 and sum(floored[0]["rows_floored_per_model"].values()) >= 200
    assert sum("raised to it" in w for w in got.warnings) == 1


@pytest.mark.parametrize("case,passes", [("dr, clusters", 2), ("switch-dr tuned", 3), ("withheld, no clusters", 3),
                                         ("sample again", 3)])
def test_progress_counts_every_pass_made(tmp_path, monkeypatch, case, passes):
    """The rows read, batch by batch, reach the announced total, which is announced before they pass it and
    counts the passes made: sample and score; a tuned Switch-DR scores once more; so does an exact count of
    effective contributions (a rare model without clusters); so does a sample pass run again without its cut."""
    from llmcause.scan import ParquetDataset

    df = router_log(1200, seed=4)
    kw = dict(action="model", reward="q", policies=["always:big", "column:choice"], propensity="p",
              features="x,domain", methods=["dr"], batch_rows=200)
    if case == "dr, clusters":
        kw["cluster"] = "prompt"
    elif case == "switch-dr tuned":
        kw["methods"] = ["dr", "switch-dr"]
    elif case == "withheld, no clusters":
        rare = np.zeros(len(df), dtype=bool)
        rare[::100] = True
        df.loc[rare, "model"], df.loc[rare, "p"] = "rare", 0.01
        kw["policies"] = ["always:rare"]
    else:
        kw["sample_rows"] = 300
        monkeypatch.setattr(ParquetDataset, "count_rows", lambda self: 10**12)
    path = write(df, tmp_path / "log", [500])
    totals, read = [], [0]

    def advance(k):
        read[0] += k
        assert totals and read[0] <= totals[-1]  # never past the total announced so far

    got = evaluate_policies_streamed(path, progress=advance, progress_total=totals.append, **kw)
    n = ParquetDataset(path).count_rows() if case != "sample again" else 10**12
    assert totals[-1] == passes * n and read[0] == passes * len(df)
    assert len(totals) == (1 if case in ("dr, clusters", "switch-dr tuned") else 2)  # grown only when it had to
    if case == "withheld, no clusters":
        assert any("effective_contributions" in g.diagnostics for g in got)


def test_binary_rewards_get_folds_by_row_not_by_value(tmp_path):
    """With 0/1 rewards a row's (model, reward) takes four values: folds hashed from them left each fold's
    outcome model without the outcomes it predicts, and DR out of core fell ten standard errors from the
    truth. Folds by the row's place give the in-memory answer up to the choice of folds."""
    rng = np.random.default_rng(3)
    n = 12_000
    x = rng.normal(size=n)
    p_big = 1 / (1 + np.exp(-x))
    big = rng.random(n) < p_big
    success = {True: 1 / (1 + np.exp(-(1.0 + x))), False: 1 / (1 + np.exp(-(-0.3 + x)))}
    q = (rng.random(n) < np.where(big, success[True], success[False])).astype(float)
    df = pd.DataFrame({"model": np.where(big, "big", "small"), "q": q, "p": np.where(big, p_big, 1 - p_big),
                       "x": x})
    truth = {"always:big": float(success[True].mean()), "always:small": float(success[False].mean())}
    path = write(df, tmp_path / "log", [4000, 8000])
    got = evaluate_policies_streamed(path, action="model", reward="q", policies=list(truth), propensity="p",
                                     features="x", methods=["dr", "switch-dr"], compare=False)
    log = read_log(df, action="model", reward="q", propensity="p", features="x")
    mem = evaluate_policies(log, list(truth), methods=["dr", "switch-dr"], compare=False)
    assert len(got) == len(mem)
    for g, m in zip(got, mem):
        assert (g.name, g.estimand, g.method) == (m.name, m.estimand, m.method)
        assert abs(g.estimate - m.estimate) < 0.5 * m.se, (g, m)
        if g.method != "naive":
            assert abs(g.estimate - truth[g.name]) < 4 * g.se, (g, truth[g.name])
