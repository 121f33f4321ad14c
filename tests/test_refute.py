"""Refuters refit everything: placebo rejects at the nominal rate on a null world, stale propensities would not,
and `ate --refute` adds a row per refuter."""

import json

import numpy as np
import pytest

from llmcause.cli import run
from llmcause.core.ate import aipw, default_propensity_model, ipw
from llmcause.core.crossfit import crossfit_proba, fold_ids
from llmcause.core.refute import permute_within, refute, subset_rows
from llmcause.core.simulate import confounded_world


def _null_world(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    a = rng.binomial(1, 1 / (1 + np.exp(-(X[:, 0] - 0.5 * X[:, 1]))))
    y = X @ np.array([1.0, 0.5, -0.5]) + rng.standard_normal(n)  # no effect of a
    return X, a.astype(float), y


def _aipw_fit(y, a, X, cluster, seed):
    return aipw(y, a, X, cluster=cluster, seed=seed, sensitivity_cf=None)


def test_permute_within_keeps_each_cluster_multiset():
    rng = np.random.default_rng(0)
    a = rng.binomial(1, 0.4, size=300)
    cl = rng.integers(0, 20, size=300)
    b = permute_within(a, cl, rng)
    for c in range(20):
        assert sorted(a[cl == c]) == sorted(b[cl == c])
    assert not np.array_equal(a, b)
    rows = subset_rows(300, 0.5, cl, rng)
    kept = np.unique(cl[rows])
    assert kept.size == 10 and np.all(np.isin(np.flatnonzero(np.isin(cl, kept)), rows))


def _placebo_rejections(n_worlds, n, start):
    rejections = 0
    for s in range(n_worlds):
        X, a, y = _null_world(n, start + s)
        est = _aipw_fit(y, a, X, None, s)
        r = refute(_aipw_fit, y, a, X, est, seed=s, refuters=("placebo treatment",))[0]
        rejections += not r.diagnostics["passes"]
    return rejections / n_worlds


def test_placebo_rejects_at_the_nominal_rate_small():
    rate = _placebo_rejections(40, 300, 1000)
    assert rate <= 0.15  # 95% level: P(7 or more of 40 | 0.05) < 0.5%


@pytest.mark.slow
def test_placebo_rejects_at_the_nominal_rate_large():
    rate = _placebo_rejections(400, 500, 5000)
    assert 0.025 <= rate <= 0.08  # ±2.5 MC standard errors around 0.05


def test_stale_propensities_report_a_fake_placebo_effect():
    w = confounded_world(4000, seed=4, overlap="moderate")
    est = ipw(w.outcome, w.treatment, w.X, seed=0)
    fresh = refute(lambda y, a, X, c, s: ipw(y, a, X, seed=s), w.outcome, w.treatment, w.X, est,
                   refuters=("placebo treatment",))[0]
    assert fresh.diagnostics["passes"]
    # the original fit's propensities, reused for the placebo: what a refuter must not do
    e = crossfit_proba(default_propensity_model(), w.X, w.treatment, fold_ids(4000, 5, seed=0),
                       classes=np.array([0, 1]))[:, 1]
    stale = refute(lambda y, a, X, c, s: ipw(y, a, propensity=np.clip(e, 0.01, 0.99)), w.outcome, w.treatment, w.X,
                   est, refuters=("placebo treatment",))[0]
    assert not stale.diagnostics["passes"] and abs(stale.estimate) > 3 * fresh.se


def test_real_effect_passes_every_refuter():
    w = confounded_world(1500, seed=6)
    est = _aipw_fit(w.outcome, w.treatment, w.X, None, 0)
    results = refute(_aipw_fit, w.outcome, w.treatment, w.X, est, seed=1)
    assert [r.name for r in results] == ["refute: placebo treatment", "refute: random common cause",
                                         "refute: data subset", "refute: dummy outcome"]
    # each zero-effect refuter fails by chance 5% of the time at 95%, so check them at 3 SE (0.3%)
    placebo, common, subset, dummy = results
    assert abs(placebo.estimate) < 3 * placebo.se and abs(dummy.estimate) < 3 * dummy.se
    assert common.diagnostics["passes"] and subset.diagnostics["passes"]
    assert subset.n == 1200


def test_ate_refute_rows(capsys, world_csv):
    code = run(["ate", str(world_csv), "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2,x3,x4", "--cluster",
                "prompt", "--refute", "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = json.loads(out.out)["estimates"]
    refuted = [r for r in rows if r["name"].startswith("refute: ")]
    assert len(refuted) == 4 and all(isinstance(r["diagnostics"]["passes"], bool) for r in refuted)
    code = run(["ate", str(world_csv), "-t", "treated", "-y", "outcome", "--method", "dim", "--refute"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "refute: placebo treatment: passes" in out.out or "refute: placebo treatment: FAILS" in out.out
