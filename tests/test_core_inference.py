import numpy as np
import pytest
from scipy import stats

from llmcause.core.inference import (contrast, estimate_from_influence, holm, influence_se, linear_combination,
                                     multiplier_bootstrap, multiplier_weights, pairwise_contrasts,
                                     percentile_bootstrap, simultaneous_intervals, wald_interval)


def _mean_estimate(y, name="m", **kw):
    y = np.asarray(y, float)
    return estimate_from_influence(y.mean(), y - y.mean(), name=name, estimand="mean", method="sample mean", **kw)


def test_iid_se_is_ddof0_standard_error():
    y = np.random.default_rng(1).standard_normal(500)
    se, df = influence_se(y - y.mean())
    assert se == pytest.approx(y.std(ddof=0) / np.sqrt(500), rel=1e-12)
    assert df is None


def test_cluster_se_equals_statsmodels_cr1():
    sm = pytest.importorskip("statsmodels.api")
    rng = np.random.default_rng(2)
    g = rng.integers(0, 40, 600)
    y = rng.standard_normal(600) + rng.standard_normal(40)[g]
    est = _mean_estimate(y, cluster=g)
    fit = sm.OLS(y, np.ones(600)).fit(cov_type="cluster", cov_kwds={"groups": g})
    # With one parameter statsmodels' small-sample factor is G/(G-1)·(n-1)/(n-1) = CR1.
    assert est.se == pytest.approx(fit.bse[0], rel=1e-10)
    assert est.df == 39
    lo, hi = wald_interval(est.estimate, est.se, 0.95, 39)
    assert (est.ci_low, est.ci_high) == pytest.approx((lo, hi))
    assert hi - lo > 2 * stats.norm.ppf(0.975) * est.se  # t quantile is wider than z


def test_paired_contrast_on_shared_rows():
    rng = np.random.default_rng(3)
    base = rng.standard_normal(1000)
    ya, yb = base + 0.1 * rng.standard_normal(1000), base + 0.2 + 0.1 * rng.standard_normal(1000)
    diff = contrast(_mean_estimate(yb, "B"), _mean_estimate(ya, "A"))
    d = yb - ya
    assert diff.name == "B - A"
    assert diff.estimate == pytest.approx(d.mean())
    assert diff.se == pytest.approx(d.std(ddof=0) / np.sqrt(1000), rel=1e-10)
    assert diff.diagnostics["paired_units"] == 1000


def test_independent_contrast_adds_variances():
    rng = np.random.default_rng(4)
    ya, yb = rng.standard_normal(300), rng.standard_normal(500) + 1
    a = _mean_estimate(ya, "A", rows=np.arange(300))
    b = _mean_estimate(yb, "B", rows=np.arange(300, 800))
    diff = contrast(b, a)
    assert diff.se == pytest.approx(np.hypot(a.se, b.se), rel=1e-10)
    assert diff.diagnostics["paired_units"] == 0


def test_clustered_contrast_pairs_by_cluster_label():
    rng = np.random.default_rng(5)
    prompts = np.repeat(np.arange(200), 2)
    effect = rng.standard_normal(200)[prompts]
    ya, yb = effect + rng.standard_normal(400), effect + 0.5 + rng.standard_normal(400)
    a = _mean_estimate(ya, "A", cluster=prompts)
    b = _mean_estimate(yb, "B", cluster=prompts)
    diff = contrast(b, a)
    sums = np.bincount(prompts, weights=(yb - yb.mean()) - (ya - ya.mean()))
    expected = np.sqrt(200 / 199 * np.sum(sums**2)) / 400
    assert diff.se == pytest.approx(expected, rel=1e-10)
    assert diff.se < np.hypot(a.se, b.se)  # pairing removes the shared prompt effect
    with pytest.raises(ValueError, match="clustered and unclustered"):
        contrast(b, _mean_estimate(ya, "A"))


def test_linear_combination_weights():
    rng = np.random.default_rng(6)
    ys = [rng.standard_normal(200) + k for k in range(3)]
    ests = [_mean_estimate(y, f"m{k}") for k, y in enumerate(ys)]
    comb = linear_combination(ests, [0.5, 0.25, 0.25], name="mix")
    z = 0.5 * ys[0] + 0.25 * ys[1] + 0.25 * ys[2]
    assert comb.estimate == pytest.approx(z.mean())
    assert comb.se == pytest.approx(z.std() / np.sqrt(200), rel=1e-10)
    assert len(pairwise_contrasts(ests)) == 3


def test_holm_matches_statsmodels():
    smm = pytest.importorskip("statsmodels.stats.multitest")
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5, 0.2])
    ours = holm(p)
    ref = smm.multipletests(p, method="holm")[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("kind", ["normal", "bayes", "wild"])
def test_multiplier_weights_have_mean_zero_variance_one(kind):
    xi = multiplier_weights(np.random.default_rng(0), (400_000,), kind)
    assert abs(xi.mean()) < 0.01 and abs(xi.var() - 1) < 0.02


def test_simultaneous_critical_value_for_independent_estimates():
    rng = np.random.default_rng(7)
    m, n = 8, 100
    ests = [_mean_estimate(rng.standard_normal(n), f"m{j}", rows=np.arange(j * n, (j + 1) * n)) for j in range(m)]
    table = simultaneous_intervals(ests, level=0.95, n_boot=20_000, seed=1)
    c = table[0].diagnostics["critical_value"]
    exact = stats.norm.ppf((1 + 0.95 ** (1 / m)) / 2)  # Šidák: max of m independent |Z|
    assert c == pytest.approx(exact, abs=0.05)
    assert all(t.ci_high - t.ci_low == pytest.approx(2 * c * t.se) for t in table)
    again = simultaneous_intervals(ests, level=0.95, n_boot=20_000, seed=1)
    assert again[0].diagnostics["critical_value"] == c  # seeded: same bytes


def test_simultaneous_intervals_joint_coverage():
    rng = np.random.default_rng(8)
    m, n, reps, hits = 6, 200, 200, 0
    cov = 0.5 * np.ones((m, m)) + 0.5 * np.eye(m)  # correlated estimates
    chol = np.linalg.cholesky(cov)
    for r in range(reps):
        Y = rng.standard_normal((n, m)) @ chol.T
        ests = [_mean_estimate(Y[:, j], f"m{j}") for j in range(m)]
        table = simultaneous_intervals(ests, n_boot=2000, seed=r)
        hits += all(t.covers(0.0) for t in table)
    assert 0.91 <= hits / reps <= 0.99


@pytest.mark.parametrize("kind", ["normal", "bayes", "wild"])
def test_multiplier_bootstrap_keeps_the_dependence(kind):
    rng = np.random.default_rng(9)
    base = rng.standard_normal(500)
    a = base + 0.5 * rng.standard_normal(500)
    ests = [_mean_estimate(a, "a"), _mean_estimate(base, "b")]
    draws = multiplier_bootstrap(ests, n_boot=5000, seed=0, kind=kind)
    assert draws.shape == (5000, 2)
    assert np.std(draws, axis=0) == pytest.approx([1, 1], abs=0.05)
    expected = np.corrcoef(a, base)[0, 1]
    assert np.corrcoef(draws.T)[0, 1] == pytest.approx(expected, abs=0.03)


def test_percentile_bootstrap_of_a_mean():
    rng = np.random.default_rng(10)
    x = rng.exponential(size=2000)
    draws, lo, hi = percentile_bootstrap(lambda W: W @ x / W.sum(axis=1), x.shape[0], n_boot=3000, seed=3)
    assert draws.shape == (3000,)
    se = x.std() / np.sqrt(x.shape[0])
    assert np.std(draws) == pytest.approx(se, rel=0.1)
    assert lo < x.mean() < hi
    _, lo2, hi2 = percentile_bootstrap(lambda W: W @ x / W.sum(axis=1), x.shape[0], n_boot=3000, seed=3)
    assert (lo, hi) == (lo2, hi2)


def test_cluster_percentile_bootstrap_is_wider_with_cluster_effects():
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(100), 10)
    x = rng.standard_normal(100)[g] + 0.3 * rng.standard_normal(1000)
    stat = lambda W: W @ x / W.sum(axis=1)  # noqa: E731
    iid, _, _ = percentile_bootstrap(stat, 1000, n_boot=2000, seed=0)
    clu, _, _ = percentile_bootstrap(stat, 1000, n_boot=2000, seed=0, cluster=g)
    assert np.std(clu) > 2 * np.std(iid)


def test_bad_level_is_rejected():
    with pytest.raises(ValueError, match="level"):
        wald_interval(0.0, 1.0, level=1.5)


def _six_cluster_means(rng, m, rho=0.0):
    """m estimates, each the mean of one column over 6 clusters of 5 rows (CR1 SEs, t with 5 df)."""
    clusters = np.repeat(np.arange(6), 5)
    cov = rho * np.ones((m, m)) + (1 - rho) * np.eye(m)
    effects = rng.standard_normal((6, m)) @ np.linalg.cholesky(cov).T
    Y = effects[clusters] + 0.3 * rng.standard_normal((30, m))
    return [_mean_estimate(Y[:, j], f"m{j}", cluster=clusters) for j in range(m)]


@pytest.mark.parametrize("rho", [0.0, 0.9, 0.999])
def test_simultaneous_never_narrower_than_pointwise_with_six_clusters(rho):
    ests = _six_cluster_means(np.random.default_rng(11), 4, rho)
    assert all(e.df == 5 for e in ests)
    table = simultaneous_intervals(ests, level=0.95, n_boot=20_000, seed=0)
    for e, s in zip(ests, table):
        assert s.ci_high - s.ci_low >= e.ci_high - e.ci_low - 1e-12
        assert s.diagnostics["critical_value"] >= stats.t.ppf(0.975, 5)


def test_simultaneous_t_critical_value_for_independent_cluster_estimates():
    """Four estimates on disjoint sets of 6 clusters: Šidák's rule with t₅ marginals."""
    rng = np.random.default_rng(14)
    ests = [_mean_estimate(rng.standard_normal(30), f"m{j}", cluster=np.repeat(np.arange(6), 5) + 10 * j)
            for j in range(4)]
    table = simultaneous_intervals(ests, level=0.95, n_boot=40_000, seed=0)
    exact = stats.t.ppf((1 + 0.95 ** (1 / 4)) / 2, 5)
    assert table[0].diagnostics["critical_value"] == pytest.approx(exact, abs=0.08)
    assert table[0].diagnostics["joint_normal_critical_value"] == pytest.approx(
        stats.norm.ppf((1 + 0.95 ** (1 / 4)) / 2), abs=0.03)


def test_simultaneous_joint_coverage_with_six_clusters():
    """Four independent cluster means over 6 clusters: joint 95% coverage within binomial error."""
    rng = np.random.default_rng(12)
    reps, hits = 400, 0
    for r in range(reps):
        table = simultaneous_intervals(_six_cluster_means(rng, 4), n_boot=2000, seed=r)
        hits += all(t.covers(0.0) for t in table)
    # 95% ± 3 binomial SEs (SE ≈ 0.011 at 400 replications); the normal critical value gave 0.795.
    assert 0.917 <= hits / reps <= 0.983


def test_contrast_keeps_the_df_of_its_estimates():
    rng = np.random.default_rng(13)
    a = _mean_estimate(rng.standard_normal(300), "A", rows=np.arange(300)).with_(df=4.0)
    b = _mean_estimate(rng.standard_normal(300), "B", rows=np.arange(300, 600)).with_(df=9.0)
    diff = contrast(b, a)
    va, vb = a.se**2, b.se**2
    assert diff.df == pytest.approx((va + vb) ** 2 / (va**2 / 4 + vb**2 / 9), rel=1e-12)  # Welch–Satterthwaite
    lo, hi = wald_interval(diff.estimate, diff.se, 0.95, diff.df)
    assert (diff.ci_low, diff.ci_high) == pytest.approx((lo, hi), rel=1e-12)
    shared = _mean_estimate(rng.standard_normal(300), "C", rows=np.arange(300)).with_(df=12.0)
    assert contrast(shared, a).df == 4.0  # shared rows: the smaller df
    plain = _mean_estimate(rng.standard_normal(300), "D", rows=np.arange(600, 900))
    assert contrast(plain, _mean_estimate(rng.standard_normal(300), "E")).df is None
