"""core.surrogate: agreement with ppi_py, influence-value bookkeeping, calibration, Rogan–Gladen."""

from __future__ import annotations

import numpy as np
import pytest

ppi_py = pytest.importorskip("ppi_py")

from llmcause.core.inference import contrast, influence_se  # noqa: E402
from llmcause.core.surrogate import (IsotonicCalibrator, calibrated_mean, fit_calibration, ppi_lambda,  # noqa: E402
                                     ppi_logistic, ppi_mean, ppi_mean_ipw, rogan_gladen_mean)


def _mean_data(seed=0, n=300, N=4000, offset=0.3):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    f = 0.7 * y + 0.5 * rng.normal(size=n) + offset
    fu = 0.86 * rng.normal(size=N) + offset
    return y, f, fu


@pytest.mark.parametrize("lam", [None, 1])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ppi_mean_matches_ppi_py(lam, seed):
    y, f, fu = _mean_data(seed)
    est = ppi_mean(y, f, fu, lam=lam, level=0.9)  # ppi_py's default alpha = 0.1
    point = float(np.squeeze(ppi_py.ppi_mean_pointestimate(y, f, fu, lam=lam)))
    lo, hi = (float(np.squeeze(v)) for v in ppi_py.ppi_mean_ci(y, f, fu, lam=lam))
    assert est.estimate == pytest.approx(point, abs=1e-8)
    assert est.ci_low == pytest.approx(lo, abs=1e-8)
    assert est.ci_high == pytest.approx(hi, abs=1e-8)
    assert est.method == ("ppi++" if lam is None else "ppi")
    # The 95% interval is the same estimate and SE with another quantile.
    lo95, hi95 = (float(np.squeeze(v)) for v in ppi_py.ppi_mean_ci(y, f, fu, lam=lam, alpha=0.05))
    est95 = ppi_mean(y, f, fu, lam=lam)
    assert (est95.ci_low, est95.ci_high) == pytest.approx((lo95, hi95), abs=1e-8)


@pytest.mark.parametrize("lam", [None, 1])
def test_ppi_mean_with_weights_matches_ppi_py(lam):
    y, f, fu = _mean_data(3)
    rng = np.random.default_rng(9)
    w, wu = rng.uniform(0.5, 2, y.size), rng.uniform(0.5, 2, fu.size)
    est = ppi_mean(y, f, fu, lam=lam, w=w, w_unlabeled=wu, level=0.9)
    point = float(np.squeeze(ppi_py.ppi_mean_pointestimate(y, f, fu, lam=lam, w=w, w_unlabeled=wu)))
    lo, hi = (float(np.squeeze(v)) for v in ppi_py.ppi_mean_ci(y, f, fu, lam=lam, w=w, w_unlabeled=wu))
    assert (est.estimate, est.ci_low, est.ci_high) == pytest.approx((point, lo, hi), abs=1e-8)


def test_ppi_lambda_is_clipped_like_ppi_py():
    # A prediction anti-correlated with the label: unclipped λ < 0, clipped to 0 (the classical mean).
    rng = np.random.default_rng(4)
    y = rng.normal(size=200)
    f = -y + 0.1 * rng.normal(size=200)
    fu = rng.normal(size=2000)
    assert ppi_lambda(y, f, fu, clip=False) < 0
    assert ppi_lambda(y, f, fu) == 0.0
    est = ppi_mean(y, f, fu)
    assert est.estimate == pytest.approx(y.mean(), abs=1e-12)
    assert est.estimate == pytest.approx(float(np.squeeze(ppi_py.ppi_mean_pointestimate(y, f, fu))), abs=1e-8)


def test_ppi_influence_values_reproduce_the_two_sample_variance():
    y, f, fu = _mean_data(5)
    est = ppi_mean(y, f, fu)
    lam = est.diagnostics["lambda"]
    closed = np.sqrt(np.var(y - lam * f) / y.size + lam**2 * np.var(fu) / fu.size)
    assert est.se == pytest.approx(closed, rel=1e-12)
    assert influence_se(est.influence)[0] == pytest.approx(closed, rel=1e-12)
    assert np.mean(est.influence) == pytest.approx(0.0, abs=1e-12)
    fast = ppi_mean(y, f, fu, keep_influence=False)
    assert (fast.estimate, fast.se) == pytest.approx((est.estimate, est.se), rel=1e-12)
    assert fast.influence is None


def test_ppi_mean_ipw_equals_the_nested_form_with_uniform_labelling():
    rng = np.random.default_rng(6)
    N = 3000
    f = rng.uniform(size=N)
    y = np.clip(f + 0.2 * rng.normal(size=N) - 0.1, 0, 1)
    R = rng.random(N) < 0.1
    ylab = np.where(R, y, np.nan)
    est = ppi_mean_ipw(ylab, f, R, lam=1.0)
    assert est.estimate == pytest.approx(f.mean() + np.mean(y[R] - f[R]), abs=1e-12)
    tuned = ppi_mean_ipw(ylab, f, R)
    lam = tuned.diagnostics["lambda"]
    assert 0 <= lam <= 1
    # λ minimises the estimated variance: moving it either way cannot lower the SE.
    for other in (max(lam - 0.1, 0), min(lam + 0.1, 1)):
        assert ppi_mean_ipw(ylab, f, R, lam=other).se >= tuned.se - 1e-12
    # Known probabilities equal to n/N give the same estimate.
    same = ppi_mean_ipw(ylab, f, R, lam=1.0, label_prob=np.full(N, R.mean()))
    assert same.estimate == pytest.approx(est.estimate, abs=1e-12)


def test_ppi_mean_ipw_stays_unbiased_under_unequal_labelling():
    # Labels drawn far more often where the judge is high; the label mean is biased, PPI with 1/π is not.
    rng = np.random.default_rng(7)
    N, reps = 2000, 300
    errs_ppi, errs_naive = [], []
    for _ in range(reps):
        f = rng.uniform(size=N)
        y = (rng.random(N) < 0.2 + 0.6 * f).astype(float)
        pi = 0.02 + 0.3 * f
        R = rng.random(N) < pi
        truth = np.mean(0.2 + 0.6 * f)
        errs_ppi.append(ppi_mean_ipw(np.where(R, y, np.nan), f, R, label_prob=pi).estimate - truth)
        errs_naive.append(y[R].mean() - truth)
    assert abs(np.mean(errs_ppi)) < 3 * np.std(errs_ppi) / np.sqrt(reps)
    assert np.mean(errs_naive) > 0.05


@pytest.mark.filterwarnings("ignore::FutureWarning")  # ppi_py passes penalty=None to scikit-learn
@pytest.mark.parametrize("lam", [1.0, 0.4])
def test_ppi_logistic_matches_ppi_py_point_estimate(lam):
    X, y, yh, XU, yhu = _logistic_data(0)
    fit = ppi_logistic(X, y, yh, XU, yhu, lam=lam)
    ref = ppi_py.ppi_logistic_pointestimate(X, y, yh, XU, yhu, lam=lam)
    assert np.max(np.abs(fit.coef - ref)) < 1e-6  # ppi_py's L-BFGS-B stops at ftol 1e-15
    assert fit.lam == lam


def test_ppi_logistic_lambda_matches_ppi_py_recipe():
    from ppi_py.ppi import _calc_lam_glm, _logistic_get_stats

    from llmcause.core.surrogate import _ppi_logistic_lambda

    X, y, yh, XU, yhu = _logistic_data(1)
    beta = ppi_logistic(X, y, yh, XU, yhu, lam=1.0).coef
    stats = _logistic_get_stats.py_func(beta, X, y, yh, XU, yhu)  # the pure-Python body of ppi_py's function
    ref = _calc_lam_glm(*stats, clip=True)
    import scipy.sparse as sp

    mine = _ppi_logistic_lambda(beta, sp.csr_matrix(X), y, yh, sp.csr_matrix(XU), yhu, True)
    assert mine == pytest.approx(float(ref), abs=1e-10)


def test_ppi_logistic_standard_errors_close_to_ppi_py():
    # Same sandwich up to two conventions: ppi_py pools the Hessian over L ∪ U and uses ddof 1; we use the
    # objective's exact Hessian λH_U + (1−λ)H_L and ddof 0. At λ = 1 they differ by well under 1%.
    X, y, yh, XU, yhu = _logistic_data(2)
    fit = ppi_logistic(X, y, yh, XU, yhu, lam=1.0)
    from ppi_py.ppi import _logistic_get_stats

    grads, grads_hat, grads_hat_u, inv_h = _logistic_get_stats.py_func(fit.coef, X, y, yh, XU, yhu)
    n, N = y.size, yhu.size
    var_u = np.cov(grads_hat_u.T)
    var = np.cov(grads.T - grads_hat.T)
    ref_se = np.sqrt(np.diag(inv_h @ (n / N * var_u + var) @ inv_h) / n)
    assert np.allclose(np.sqrt(np.diag(fit.cov)), ref_se, rtol=0.01)


def _logistic_data(seed, n=300, N=3000):
    rng = np.random.default_rng(seed)
    b = np.array([0.2, 1.0, -0.5])
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    XU = np.column_stack([np.ones(N), rng.normal(size=(N, 2))])
    p, pu = 1 / (1 + np.exp(-X @ b)), 1 / (1 + np.exp(-XU @ b))
    y = (rng.random(n) < p).astype(float)
    yh = np.clip(p + 0.15 * rng.normal(size=n), 0, 1)
    yhu = np.clip(pu + 0.15 * rng.normal(size=N), 0, 1)
    return X, y, yh, XU, yhu


def test_isotonic_calibrator_keeps_the_weighted_mean_and_matches_sklearn():
    from sklearn.isotonic import IsotonicRegression

    rng = np.random.default_rng(8)
    s = np.round(rng.uniform(size=400), 2)
    y = np.clip(s**2 + 0.2 * rng.normal(size=400), 0, 1)
    w = rng.uniform(0.5, 3, 400)
    cal = IsotonicCalibrator().fit(s, y, sample_weight=w)
    pred = cal.predict(s)
    assert np.sum(w * pred) == pytest.approx(np.sum(w * y), rel=1e-12)
    ref = IsotonicRegression(out_of_bounds="clip").fit(s, y, sample_weight=w)
    grid = np.linspace(-0.1, 1.1, 50)
    assert np.allclose(cal.predict(grid), ref.predict(grid), atol=1e-12)


def test_calibrated_mean_influence_and_calibration_term():
    rng = np.random.default_rng(10)
    N = 2000
    s = np.round(rng.uniform(size=N), 2)
    y = np.clip(0.2 + 0.6 * s**2 + 0.15 * rng.normal(size=N), 0, 1)
    R = rng.random(N) < 0.15
    ylab = np.where(R, y, np.nan)
    cal = fit_calibration(s, ylab, R, seed=3)
    est = calibrated_mean(ylab, R, cal)
    plain = calibrated_mean(ylab, R, cal, jackknife=False)
    assert est.estimate == plain.estimate
    # The pseudo-rows add exactly the jackknife variance.
    assert est.se**2 == pytest.approx(plain.se**2 + est.diagnostics["calibration_se"] ** 2, rel=1e-10)
    # θ̂ = mean of the calibrated scores + the mean out-of-fold labelled residual.
    assert est.estimate == pytest.approx(cal.full.mean() + np.mean(y[R] - cal.oof[R]), abs=1e-12)
    # The residual uses calibrators that never saw the row.
    for k in range(cal.n_folds):
        rows = np.flatnonzero(cal.folds == k)
        assert np.allclose(cal.oof[rows], cal.without_fold[k, rows])
    assert set(est.rows[est.rows < 0]) == {-1, -2, -3, -4, -5}


def test_calibrated_contrast_pairs_the_shared_calibration_term():
    rng = np.random.default_rng(11)
    N = 3000
    g = rng.integers(0, 2, N)
    s = np.round(rng.uniform(size=N), 2)
    y = np.clip(0.1 + 0.7 * s + 0.05 * g + 0.1 * rng.normal(size=N), 0, 1)
    R = rng.random(N) < 0.2
    ylab = np.where(R, y, np.nan)
    cal = fit_calibration(s, ylab, R, seed=0)
    a = calibrated_mean(ylab, R, cal, subset=g == 0, name="A")
    b = calibrated_mean(ylab, R, cal, subset=g == 1, name="B")
    d = contrast(b, a)
    assert d.name == "B - A"
    assert d.estimate == pytest.approx(b.estimate - a.estimate)
    # Only the calibration pseudo-rows are shared; the rest is independent.
    assert d.diagnostics["paired_units"] == cal.n_folds
    jack_a = a.influence[a.rows < 0] / a.influence.size
    jack_b = b.influence[b.rows < 0] / b.influence.size
    own_a = np.sum((a.influence[a.rows >= 0] / a.influence.size) ** 2)
    own_b = np.sum((b.influence[b.rows >= 0] / b.influence.size) ** 2)
    assert d.se**2 == pytest.approx(own_a + own_b + np.sum((jack_b - jack_a) ** 2), rel=1e-10)


def test_borrowed_calibration_carries_its_whole_uncertainty():
    # A group without labels rests on a calibration learnt elsewhere: the jackknife term is first order. Over
    # replications its standard error must match the spread of the estimates, and the jackknife must carry most.
    est_values, ses, cal_ses, dfs = [], [], [], []
    for seed in range(80):
        rng = np.random.default_rng(seed)
        N = 2000
        g = np.arange(N) % 2
        s = np.round(rng.uniform(size=N), 2)
        y = np.clip(0.1 + 0.7 * s + 0.1 * rng.normal(size=N), 0, 1)
        R = (g == 0) & (rng.random(N) < 0.15)
        ylab = np.where(R, y, np.nan)
        cal = fit_calibration(s, ylab, R, seed=seed)
        est = calibrated_mean(ylab, R, cal, subset=g == 1)
        assert est.diagnostics["borrowed_calibration"] is True
        est_values.append(est.estimate)
        ses.append(est.se)
        cal_ses.append(est.diagnostics["calibration_se"])
        dfs.append(est.df)
    rms_se = np.sqrt(np.mean(np.square(ses)))
    assert 0.75 < rms_se / np.std(est_values) < 1.3
    assert np.sqrt(np.mean(np.square(cal_ses))) > 0.6 * rms_se
    # Welch–Satterthwaite: few degrees of freedom when the 5-fold jackknife dominates.
    assert np.median(dfs) < 30


def test_rogan_gladen_matches_the_delta_method_formula():
    rng = np.random.default_rng(13)
    n_test, m = 5000, 600
    theta, q1, q0 = 0.2, 0.85, 0.8
    y_test = rng.random(n_test) < theta
    judge_test = np.where(y_test, rng.random(n_test) < q1, rng.random(n_test) > q0)
    y_cal = rng.random(m) < 0.5
    judge_cal = np.where(y_cal, rng.random(m) < q1, rng.random(m) > q0)
    judge = np.concatenate([judge_test, judge_cal]).astype(float)
    y = np.concatenate([np.zeros(n_test), y_cal]).astype(float)
    labeled = np.concatenate([np.zeros(n_test, bool), np.ones(m, bool)])
    subset = ~labeled
    est = rogan_gladen_mean(judge, y, labeled, subset=subset)
    p = judge_test.mean()
    sens = judge_cal[y_cal].mean()
    spec = 1 - judge_cal[~y_cal].mean()
    J = sens + spec - 1
    th = (p + spec - 1) / J
    assert est.estimate == pytest.approx(th, abs=1e-12)
    m1, m0 = y_cal.sum(), (~y_cal).sum()
    var = (p * (1 - p) / n_test + (1 - th) ** 2 * spec * (1 - spec) / m0 + th**2 * sens * (1 - sens) / m1) / J**2
    assert est.se == pytest.approx(np.sqrt(var), rel=1e-10)
    assert est.covers(theta)
    naive = judge_test.mean()
    assert abs(naive - theta) > 4 * est.se and not est.covers(naive)


def test_surrogate_rejects_bad_inputs():
    with pytest.raises(ValueError, match="two labelled"):
        ppi_mean([1.0], [1.0], [0.5, 0.4])
    with pytest.raises(ValueError, match="probabilit"):
        ppi_mean_ipw([1.0, 0.0, np.nan], [0.2, 0.3, 0.4], [True, True, False], label_prob=[0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="binary"):
        rogan_gladen_mean([0.2, 1.0], [1.0, 0.0], [True, True])
    with pytest.raises(ValueError, match="at least 10"):
        fit_calibration(np.arange(20.0), np.where(np.arange(20) < 5, 1.0, np.nan), np.arange(20) < 5)


def test_ppi_plus_plus_warns_with_few_labels_only():
    from llmcause.core.surrogate import FEW_LABELS, ppi_mean

    rng = np.random.default_rng(3)
    f_u = rng.normal(size=2000)
    for n, expect in ((FEW_LABELS - 40, True), (FEW_LABELS + 50, False)):
        f = rng.normal(size=n)
        y = f + rng.normal(size=n)
        tuned = ppi_mean(y, f, f_u, name="m")
        assert bool(tuned.warnings) == expect and (not expect or "under-cover" in tuned.warnings[0])
        assert not ppi_mean(y, f, f_u, lam=1.0, name="m").warnings  # plain PPI tunes nothing
