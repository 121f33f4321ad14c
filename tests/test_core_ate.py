from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from llmcause.core.ate import aipw, aipw_scores, difference_in_means, ipw, regression_adjustment
from llmcause.core.crossfit import fold_ids, folds_to_splits
from llmcause.core.plr import partially_linear
from llmcause.core.simulate import confounded_world


def _doubleml():
    return pytest.importorskip("doubleml")


@pytest.mark.parametrize("estimand,score", [("ate", "ATE"), ("att", "ATTE")])
def test_aipw_equals_doubleml_irm(estimand, score):
    dml = _doubleml()
    w = confounded_world(2000, seed=3, overlap="moderate")
    folds = fold_ids(2000, 5, seed=1)
    # DoubleML clips both ends; llmcause clips only the upper end for the ATT, so the ATT is compared
    # with a bound below every propensity (the rule itself is tested on the LaLonde data below).
    clip = 0.01 if estimand == "ate" else 1e-6
    ours = aipw(w.outcome, w.treatment, w.X, estimand=estimand, folds=folds, outcome_model=Ridge(),
                propensity_model=LogisticRegression(max_iter=1000), clip=clip)
    assert estimand == "ate" or ours.diagnostics["propensity_min"] > clip
    data = dml.DoubleMLData.from_arrays(w.X, w.outcome, w.treatment)
    config = dml.utils.PSProcessorConfig(clipping_threshold=clip)
    ref = dml.DoubleMLIRM(data, Ridge(), LogisticRegression(max_iter=1000), score=score, draw_sample_splitting=False,
                          ps_processor_config=config)
    ref.set_sample_splitting([folds_to_splits(folds)])
    ref.fit()
    assert ours.estimate == pytest.approx(ref.coef[0], rel=1e-6)
    assert ours.se == pytest.approx(ref.se[0], rel=1e-6)
    np.testing.assert_allclose(ours.influence, ref.psi[:, 0, 0], rtol=1e-6,
                               atol=1e-9)


def test_partially_linear_equals_doubleml_plr():
    dml = _doubleml()
    rng = np.random.default_rng(4)
    X = rng.standard_normal((1500, 4))
    d = X[:, 0] + rng.standard_normal(1500)
    y = 0.7 * d + X[:, 0] - X[:, 1] + rng.standard_normal(1500)
    folds = fold_ids(1500, 5, seed=2)
    ours = partially_linear(y, d, X, folds=folds)
    data = dml.DoubleMLData.from_arrays(X, y, d)
    ref = dml.DoubleMLPLR(data, Ridge(), Ridge(), draw_sample_splitting=False)
    ref.set_sample_splitting([folds_to_splits(folds)])
    ref.fit()
    assert ours.estimate == pytest.approx(ref.coef[0], rel=1e-6)
    assert ours.se == pytest.approx(ref.se[0], rel=1e-6)


def test_known_truth_aipw_covers_and_naive_is_off():
    w = confounded_world(8000, seed=5)
    naive = difference_in_means(w.outcome, w.treatment)
    est = aipw(w.outcome, w.treatment, w.X, seed=0)
    assert est.covers(w.true_ate)
    assert abs(naive.estimate - w.true_ate) > 5 * naive.se
    assert not naive.covers(w.true_ate)
    att = aipw(w.outcome, w.treatment, w.X, estimand="att", seed=0)
    assert att.covers(w.true_att)
    assert att.estimate > est.estimate  # the treated have larger x0, hence larger effects


@pytest.mark.parametrize("method", ["ra", "ipw"])
def test_known_truth_other_methods(method):
    w = confounded_world(8000, seed=6)
    for estimand, truth in (("ate", w.true_ate), ("att", w.true_att)):
        if method == "ra":
            est = regression_adjustment(w.outcome, w.treatment, w.X, estimand=estimand)
        else:
            est = ipw(w.outcome, w.treatment, w.X, estimand=estimand, seed=0)
        assert est.covers(truth), (method, estimand, est)


def test_aipw_coverage_over_300_seeds():
    """The 95% CI of cross-fitted AIPW covers the true ATE in 92–98% of 300 worlds."""
    hits = 0
    for seed in range(300):
        w = confounded_world(400, seed=1000 + seed)
        est = aipw(w.outcome, w.treatment, w.X, seed=seed)
        hits += est.covers(w.true_ate)
    assert 0.92 <= hits / 300 <= 0.98


@pytest.mark.slow
@pytest.mark.parametrize("method", ["aipw-att", "ra", "ra-att", "ipw"])
def test_other_estimators_coverage(method):
    hits = 0
    reps = 400
    for seed in range(reps):
        w = confounded_world(600, seed=5000 + seed)
        if method == "aipw-att":
            est, truth = aipw(w.outcome, w.treatment, w.X, estimand="att", seed=seed), w.true_att
        elif method == "ra":
            est, truth = regression_adjustment(w.outcome, w.treatment, w.X), w.true_ate
        elif method == "ra-att":
            est, truth = regression_adjustment(w.outcome, w.treatment, w.X, estimand="att"), w.true_att
        else:
            est, truth = ipw(w.outcome, w.treatment, w.X, seed=seed), w.true_ate
        hits += est.covers(truth)
    # IPW with the propensity treated as known is conservative for the ATE.
    upper = 0.995 if method == "ipw" else 0.975
    assert 0.925 <= hits / reps <= upper


def test_poor_overlap_is_reported_not_hidden():
    w = confounded_world(3000, seed=7, overlap="poor")
    est = aipw(w.outcome, w.treatment, w.X, seed=0)
    d = est.diagnostics
    assert d["share_clipped"] > 0.01
    assert d["propensity_min"] < 0.01 and d["propensity_max"] > 0.99
    assert any("poor overlap" in msg for msg in est.warnings)
    good = aipw(*_arrays(confounded_world(3000, seed=7)), seed=0)
    assert good.warnings == ()
    assert good.diagnostics["max_abs_smd_before"] > 0.3 > good.diagnostics["max_abs_smd_after"]


def _arrays(w):
    return w.outcome, w.treatment, w.X


@pytest.mark.parametrize("method", ["aipw", "ipw"])
def test_clusters_give_cr1_and_grouped_folds(method, monkeypatch):
    import llmcause.core.ate as ate_module

    w = confounded_world(1500, seed=8)
    clusters = np.random.default_rng(0).permutation(np.repeat(np.arange(300), 5))  # clusters not in row blocks
    made = []

    def spy(*args, **kwargs):
        folds = fold_ids(*args, **kwargs)
        made.append(folds)
        return folds

    monkeypatch.setattr(ate_module, "fold_ids", spy)
    fit = aipw if method == "aipw" else ipw
    est = fit(w.outcome, w.treatment, w.X, cluster=clusters, seed=0)
    assert est.df == 299 and est.diagnostics["n_clusters"] == 300
    assert est.cluster is not None
    assert len(made) == 1
    # every cluster's rows share one fold: no prompt is in both the training and the held-out part
    per_cluster = [np.unique(made[0][clusters == g]).shape[0] for g in range(300)]
    assert max(per_cluster) == 1 and np.unique(made[0]).shape[0] == 5


def test_repeated_splits_use_the_median():
    w = confounded_world(1000, seed=9)
    est = aipw(w.outcome, w.treatment, w.X, n_rep=3, seed=0)
    thetas = est.diagnostics["theta_per_split"]
    assert len(thetas) == 3 and est.estimate == pytest.approx(np.median(thetas))
    assert est.covers(w.true_ate)


def test_aipw_scores_reduce_to_difference_in_means_when_randomised():
    rng = np.random.default_rng(10)
    a = (rng.random(500) < 0.5).astype(float)
    y = rng.standard_normal(500) + a
    zero = np.zeros(500)
    theta, psi = aipw_scores(y, a, zero, zero, np.full(500, a.mean()))
    assert theta == pytest.approx(difference_in_means(y, a).estimate)
    assert psi.mean() == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("bad,match", [
    (dict(a=np.array([0, 1, 2, 1, 0, 1.0])), "0/1"),
    (dict(y=np.array([1, np.nan, 2, 3, 4, 5.0])), "non-finite"),
    (dict(a=np.ones(6)), "at least 2"),
])
def test_bad_arrays_raise(bad, match):
    y = bad.get("y", np.arange(6.0))
    a = bad.get("a", np.array([0, 1, 0, 1, 0, 1.0]))
    with pytest.raises(ValueError, match=match):
        difference_in_means(y, a)


def test_inputs_are_not_mutated():
    w = confounded_world(500, seed=12)
    X, y, a = w.X.copy(), w.outcome.copy(), w.treatment.copy()
    clusters = np.repeat(np.arange(100), 5)
    kept = clusters.copy()
    aipw(w.outcome, w.treatment, w.X, seed=0, cluster=clusters)
    ipw(w.outcome, w.treatment, w.X, seed=0, cluster=clusters)
    regression_adjustment(w.outcome, w.treatment, w.X, estimand="att")
    assert np.array_equal(X, w.X) and np.array_equal(y, w.outcome) and np.array_equal(a, w.treatment)
    assert np.array_equal(kept, clusters)


# --------------------------------------------------------------------------- ATT clipping on real data

LALONDE = Path(__file__).parent / "data" / "lalonde" / "nsw_treated_cps_controls.csv.gz"


def _lalonde_dehejia_wahba():
    """NSW trainees vs CPS controls with the Dehejia-Wahba propensity features (standardised)."""
    d = pd.read_csv(LALONDE)
    feats = d[["age", "educ", "black", "hisp", "marr", "nodegree", "re74", "re75"]].assign(
        age2=d.age**2, educ2=d.educ**2, u74=(d.re74 == 0) * 1.0, u75=(d.re75 == 0) * 1.0,
        re74_2=d.re74**2, re75_2=d.re75**2)
    return d.re78.to_numpy(), d.treat.to_numpy(), StandardScaler().fit_transform(feats.to_numpy(float))


def test_att_keeps_small_propensities_on_lalonde_cps():
    """Most CPS controls have propensity ≈ 0; raising them to 0.01 flips the ATT's sign."""
    y, a, X = _lalonde_dehejia_wahba()
    est = ipw(y, a, X, estimand="att", seed=0)  # default clip 0.01
    d = est.diagnostics
    assert d["propensity_min"] < 1e-4 and d["propensity_max"] < 0.99
    assert d["n_clipped"] == 0 and d["clip_rule"] == "upper end only"  # so this is the unclipped IPW
    assert 1000 < est.estimate < 1700  # about +1300; the experimental benchmark is about +1800
    # What clipping both ends does to the same (full-sample) propensities: the sign flips.
    e = LogisticRegression(max_iter=1000).fit(X, a).predict_proba(X)[:, 1]
    assert ipw(y, a, propensity=e, estimand="att").estimate > 1000
    assert ipw(y, a, propensity=np.clip(e, 0.01, 0.99), estimand="att", clip=0.0).ci_high < 0
    dr = aipw(y, a, X, estimand="att", seed=0, sensitivity_cf=None)
    assert dr.diagnostics["n_clipped"] == 0 and dr.estimate > 0


def test_att_clips_the_upper_end_and_says_how_many():
    rng = np.random.default_rng(3)
    n = 2000
    e = np.concatenate([np.full(20, 0.999), np.full(300, 0.002), rng.uniform(0.1, 0.9, n - 320)])
    a = (rng.random(n) < e).astype(float)
    a[:2] = 0  # two controls with e = 0.999: the rows whose weight the clip bounds
    y = rng.standard_normal(n) + a
    est = ipw(y, a, propensity=e, estimand="att", clip=0.01)
    d = est.diagnostics
    assert d["n_clipped"] == d["n_clipped_high"] == 20 and d["n_clipped_low"] == 0
    assert any("20 of 2000 propensities" in w and "above 0.99" in w for w in est.warnings)
    # By hand: treated mean minus controls weighted by min(e, 0.99)/(1 − min(e, 0.99)).
    ec = np.minimum(e, 0.99)
    w0 = (1 - a) * ec / (1 - ec)
    assert est.estimate == pytest.approx(y[a == 1].mean() - np.sum(w0 * y) / w0.sum(), rel=1e-12)
    ate = ipw(y, a, propensity=e, estimand="ate", clip=0.01)
    assert ate.diagnostics["n_clipped_low"] == 300 and ate.diagnostics["n_clipped_high"] == 20
