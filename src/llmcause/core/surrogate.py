"""Means of an expensive outcome from a cheap surrogate on every row and the outcome on a subset.

Notation. A prediction (surrogate) f exists on every row; the outcome Y on a
labelled subset L. Estimand: θ = E[Y] over the target rows. Every estimator
returns an `Estimate` built from influence values (θ̂ − θ ≈ mean ψ), so
contrasts, cluster-robust errors and simultaneous intervals come from
`core.inference`.

Estimators.
- `ppi_mean`: prediction-powered inference with two independent samples
  (labelled and unlabelled), θ̂_λ = λ·mean_U(f) + mean_L(Y − λf); λ = 1 is PPI,
  λ = None the power-tuned PPI++ λ with exactly ppi_py's recipe.
- `ppi_mean_ipw`: the missing-data form over all rows, for labels drawn with
  known (possibly unequal) probabilities π: θ̂ = λ·mean(f) + Hájek mean of
  R(Y − λf)/π, λ chosen to minimise the estimated variance.
- `fit_calibration` + `calibrated_mean`: calibrated AIPW. A cross-fitted
  isotonic calibration f̂ of Y on the surrogate (optionally on a linear index
  of surrogate and covariates) is applied to every row, plus the labelled
  residual weighted by 1/π; the variance adds the calibration's own
  uncertainty by a delete-one-fold jackknife.
- `rogan_gladen_mean`: binary surrogate and binary outcome; sensitivity and
  specificity from the labelled rows, delta-method influence values.
- `ppi_logistic`: prediction-powered logistic regression (PPI++ for the
  logistic loss), e.g. Bradley–Terry with judge picks everywhere and human
  votes on a subset.

Assumptions. Labels missing at random given what the labelling probability
depends on (uniform when none is given), with every π > 0; for calibration,
E[Y | surrogate] must be the same in the rows that train the calibrator and
the rows it is applied to, except where the group's own labels correct it
(the residual term).

References. Angelopoulos, Bates, Fannjiang, Jordan & Zrnic 2023, "Prediction-
powered inference" (Science); Angelopoulos, Duchi & Zrnic 2023, "PPI++"
(arXiv 2311.01453), reference code ppi_py; Zrnic & Candès 2024, "Active
statistical inference" (arXiv 2403.03208); Landesberg 2025, "Causal Judge
Evaluation" (arXiv 2512.11150); Rogan & Gladen 1978 (Am. J. Epidemiol.).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from sklearn.isotonic import isotonic_regression

from .crossfit import fold_ids
from .estimate import Estimate
from .inference import estimate_from_influence, influence_se, wald_interval

CALIBRATION_ROW_BASE = -1  # pseudo-rows carrying the calibration term get ids −1, −2, ..., −K
CALIBRATION_CLUSTER = "\x00calibration fold {k}"


# --------------------------------------------------------------------------- PPI (two samples)


def ppi_lambda(y, yhat, yhat_unlabeled, *, w=None, w_unlabeled=None, clip: bool = True) -> float:
    """The power-tuning λ of PPI++ for a mean, exactly as ppi_py computes it.

    λ = Cov_L(g, ĝ) / ((1 + n/N)·Var_{L∪U}(ĝ)), with g = w(Y − θ₁) and
    ĝ = w(f − θ₁) at the PPI (λ = 1) estimate θ₁; the covariance has divisor n,
    the pooled variance divisor n + N − 1. Clipped to [0, 1] when ``clip``
    (ppi_py clips in its point estimate and interval, not in its p-value).
    """
    y, yhat, fu, w, wu = _two_sample_arrays(y, yhat, yhat_unlabeled, w, w_unlabeled)
    if w is None and wu is None:
        return _lambda_from_sums(y, yhat, *_sum_and_sumsq(fu), fu.shape[0], clip)
    n, N = y.shape[0], fu.shape[0]
    w = np.ones(n) if w is None else w
    wu = np.ones(N) if wu is None else wu
    theta1 = float(np.mean(wu * fu) + np.mean(w * (y - yhat)))
    g, gh, ghu = w * (y - theta1), w * (yhat - theta1), wu * (fu - theta1)
    cov = float(np.mean((g - g.mean()) * (gh - gh.mean())))
    var_pooled = float(np.var(np.concatenate([gh, ghu]), ddof=1))
    lam = cov / ((1.0 + n / N) * var_pooled) if var_pooled > 0 else 0.0
    return float(np.clip(lam, 0.0, 1.0)) if clip else float(lam)


def _lambda_from_sums(y, yhat, s_u: float, ss_u: float, N: int, clip: bool) -> float:
    """Unweighted PPI++ λ from the unlabelled sum and sum of squares: the centring point θ₁ cancels."""
    n = y.shape[0]
    cov = float(np.mean((y - y.mean()) * (yhat - yhat.mean())))
    s_all, ss_all = s_u + float(yhat.sum()), ss_u + float(yhat @ yhat)
    var_pooled = (ss_all - s_all * s_all / (n + N)) / (n + N - 1)
    lam = cov / ((1.0 + n / N) * var_pooled) if var_pooled > 0 else 0.0
    return float(np.clip(lam, 0.0, 1.0)) if clip else float(lam)


def ppi_mean(y, yhat, yhat_unlabeled, *, lam: float | None = None, w=None, w_unlabeled=None, clip: bool = True,
             level: float = 0.95, name: str = "mean", estimand: str = "mean", method: str | None = None,
             rows_labeled=None, rows_unlabeled=None, cluster_labeled=None, cluster_unlabeled=None,
             keep_influence: bool = True, diagnostics: dict | None = None) -> Estimate:
    """Prediction-powered mean from a labelled sample (Y, f) and an independent unlabelled sample (f).

    Estimand: θ = E[Y]. Estimator: θ̂ = λ·mean_U(w_U f) + mean_L(w(Y − λf)),
    with λ = 1 (PPI), a given λ, or (``lam=None``) the PPI++ λ of `ppi_lambda`.
    Weights follow ppi_py: each set's weights are rescaled to mean 1.

    Influence values live on the n + N rows (labelled block first): a labelled
    row carries (n+N)/n·(w(Y − λf) − mean), an unlabelled row (n+N)/N·(λw_U f −
    mean), so Var = Var_L(w(Y − λf))/n + λ²Var_U(w_U f)/N with divisor n and N,
    which is ppi_py's `ppi_mean_ci` interval exactly (its default level is
    0.90; ours is ``level``). Give ``rows_*`` (distinct ids) and ``cluster_*``
    to pair with other estimates or to make the errors cluster-robust.

    Assumptions: L and U are independent draws from the target population and
    f was not fitted on L. ``keep_influence=False`` skips building ψ (for very
    large N) and gives the same standard error from running sums.
    """
    y, yhat, fu, w, wu = _two_sample_arrays(y, yhat, yhat_unlabeled, w, w_unlabeled)
    n, N = y.shape[0], fu.shape[0]
    tuned = lam is None
    clustered = cluster_labeled is not None or cluster_unlabeled is not None
    fast = not keep_influence and wu is None and not clustered
    if fast:  # two reductions over the unlabelled scores in all, no copies
        s_u, ss_u = _sum_and_sumsq(fu)
        if not np.isfinite(ss_u):
            raise ValueError("the unlabelled predictions must be finite")
    if not tuned:
        lam = float(lam)
    elif w is None and wu is None:
        lam = _lambda_from_sums(y, yhat, s_u, ss_u, N, clip) if fast else ppi_lambda(y, yhat, fu, clip=clip)
    else:
        lam = ppi_lambda(y, yhat, fu, w=w, w_unlabeled=wu, clip=clip)
    method = method or ("ppi++" if tuned else ("ppi" if lam == 1.0 else f"ppi(lambda={lam:g})"))
    wl = np.ones(n) if w is None else w
    rect = wl * (y - lam * yhat)
    rect_mean = float(rect.mean())
    diag = {"lambda": lam, "n_labeled": n, "n_unlabeled": N, **(diagnostics or {})}
    warns = _few_labels_warning(name, n) if tuned else ()
    if fast:
        imputed_mean = lam * s_u / N
        var_u = lam * lam * max(ss_u / N - (s_u / N) ** 2, 0.0)
        theta = imputed_mean + rect_mean
        se = float(np.sqrt(var_u / N + float(np.mean((rect - rect_mean) ** 2)) / n))
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        half = float(ndtri((1.0 + level) / 2.0)) * se  # scipy's norm.ppf, without its per-call overhead
        lo, hi = theta - half, theta + half
        return Estimate(name=name, estimand=estimand, method=method, estimate=theta, se=se, ci_low=lo, ci_high=hi,
                        level=level, n=n + N, diagnostics=diag, warnings=warns)
    imputed = lam * (fu if wu is None else wu * fu)
    imputed_mean = float(imputed.mean())
    if not np.isfinite(imputed_mean) or not np.all(np.isfinite(fu)):
        raise ValueError("the unlabelled predictions must be finite")
    theta = imputed_mean + rect_mean
    M = n + N
    psi = np.concatenate([(M / n) * (rect - rect_mean), (M / N) * (imputed - imputed_mean)])
    rows = np.concatenate([_ids(rows_labeled, n, 0), _ids(rows_unlabeled, N, n)])
    cluster = None
    if clustered:
        if cluster_labeled is None or cluster_unlabeled is None:
            raise ValueError("give cluster labels for both the labelled and the unlabelled rows")
        cluster = np.concatenate([_labels(cluster_labeled, n), _labels(cluster_unlabeled, N)])
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method=method, level=level,
                                   cluster=cluster, rows=rows, diagnostics=diag, keep_influence=keep_influence,
                                   warnings=warns)


FEW_LABELS = 100  # labelled rows below which PPI++'s tuned lambda makes its interval under-cover


def _few_labels_warning(name: str, n: int) -> tuple[str, ...]:
    """PPI++ learns lambda from the same labels its interval uses; with few labels that costs coverage
    (COVERAGE.md: 0.915 +- 0.014 at 60 labels per model, 0.938 at 400)."""
    if n >= FEW_LABELS:
        return ()
    return (f"{name}: ppi++ with {n} labels (fewer than {FEW_LABELS}): lambda is tuned on the same labels and the "
            "interval can under-cover (0.915 at 60 labels in COVERAGE.md); read ppi or calibrated beside it",)


# --------------------------------------------------------------------------- PPI with known labelling probabilities


def ppi_mean_ipw(y, f, labeled, *, label_prob=None, lam: float | None = None, clip: bool = True,
                 level: float = 0.95, name: str = "mean", estimand: str = "mean", method: str | None = None,
                 rows=None, cluster=None, diagnostics: dict | None = None) -> Estimate:
    """Prediction-powered mean when the labelled rows are a subset of the scored rows.

    Estimand θ = E[Y] over all rows. Row i is labelled (Rᵢ = 1) with known
    probability πᵢ > 0 (``label_prob``; default n/N for every row). With
    cᵢ = Rᵢ/πᵢ normalised to mean 1 (Hájek weights w̃ᵢ):

        θ̂_λ = λ·mean(f) + Σ w̃ᵢRᵢ(Yᵢ − λfᵢ) / Σ w̃ᵢRᵢ,
        ψᵢ = λ(fᵢ − f̄) + w̃ᵢ(Yᵢ − λfᵢ − Δ̂),

    unbiased for any fixed λ under labels missing at random given π. With
    ``lam=None`` λ minimises Σψᵢ² (a closed form, since ψ is linear in λ),
    clipped to [0, 1]: the PPI++ idea for this design, as in active
    statistical inference (Zrnic & Candès 2024).
    """
    y, f, R, c = _missing_data_arrays(y, f, labeled, label_prob)
    N = f.shape[0]
    yl = np.where(R, y, 0.0)
    f_bar = float(f.mean())
    y_w = float(np.sum(c * yl) / N)
    f_w = float(np.sum(c * f * R) / N)
    a = c * (yl - y_w)  # ψ = a + λ·b
    b = (f - f_bar) - c * R * (f - f_w)
    tuned = lam is None
    if tuned:
        bb = float(b @ b)
        lam = -float(a @ b) / bb if bb > 0 else 0.0
        if clip:
            lam = float(np.clip(lam, 0.0, 1.0))
    lam = float(lam)
    theta = lam * f_bar + y_w - lam * f_w
    psi = a + lam * b
    method = method or ("ppi++" if tuned else ("ppi" if lam == 1.0 else f"ppi(lambda={lam:g})"))
    diag = {"lambda": lam, "n_labeled": int(R.sum()), "n_unlabeled": int(N - R.sum()),
            "design": "labelled subset of scored rows, inverse-probability weighted", **(diagnostics or {})}
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method=method, level=level,
                                   cluster=None if cluster is None else _labels(cluster, N),
                                   rows=_ids(rows, N, 0), diagnostics=diag)


# --------------------------------------------------------------------------- calibration


class IsotonicCalibrator:
    """Monotone calibration of an outcome on a surrogate score, optionally on a linear index.

    Without covariates: weighted isotonic regression (PAV) of y on the score,
    ties pooled, linear interpolation between the fitted knots and flat
    extrapolation outside them (as scikit-learn's IsotonicRegression). With
    covariates X: first a weighted least-squares index z = [1, s, X]β, then the
    isotonic regression of y on z. PAV keeps the weighted mean of y on the
    rows it was fitted on, which is why the AIPW residual is non-zero only out
    of fold.
    """

    def __init__(self, ridge: float = 1e-8):
        self.ridge = ridge

    def fit(self, score, y, X=None, sample_weight=None) -> "IsotonicCalibrator":
        score = np.asarray(score, dtype=float)
        y = np.asarray(y, dtype=float)
        w = np.ones_like(y) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.beta_ = None
        z = score
        if X is not None and np.asarray(X).shape[1] > 0:
            D = self._design(score, X)
            sw = np.sqrt(w)[:, None]
            A = D * sw
            gram = A.T @ A + self.ridge * np.eye(D.shape[1]) * max(1.0, float(np.trace(A.T @ A)) / D.shape[1])
            self.beta_ = np.linalg.solve(gram, A.T @ (y * sw[:, 0]))
            z = D @ self.beta_
        knots, inverse = np.unique(z, return_inverse=True)
        wsum = np.bincount(inverse, weights=w, minlength=knots.shape[0])
        ymean = np.bincount(inverse, weights=w * y, minlength=knots.shape[0]) / wsum
        self.knots_ = knots
        self.values_ = isotonic_regression(ymean, sample_weight=wsum, increasing=True)
        return self

    def predict(self, score, X=None) -> np.ndarray:
        score = np.asarray(score, dtype=float)
        z = score if self.beta_ is None else self._design(score, X) @ self.beta_
        if self.knots_.shape[0] == 1:
            return np.full(z.shape[0], float(self.values_[0]))
        return np.interp(z, self.knots_, self.values_)

    @staticmethod
    def _design(score, X) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return np.column_stack([np.ones(score.shape[0]), score, X])


@dataclass
class Calibration:
    """A cross-fitted calibration of Y on the surrogate, evaluated on every row.

    full : f̂(·) fitted on all training rows, for every row.
    oof : the out-of-fold prediction f̂^{(−k(i))} for training rows; ``full``
        for every other row (they were never fitted on).
    without_fold : (K, n) predictions of the calibrators fitted without fold k.
    folds : fold of each training row, −1 for rows outside the training set.
    train : which rows trained the calibrator.
    score_range : (min, max) of the surrogate over the training rows.
    score : the surrogate on every row (for range checks).
    """

    full: np.ndarray
    oof: np.ndarray
    without_fold: np.ndarray
    folds: np.ndarray
    train: np.ndarray
    score_range: tuple[float, float]
    score: np.ndarray

    @property
    def n_folds(self) -> int:
        return int(self.without_fold.shape[0])


def fit_calibration(score, y, labeled, *, label_prob=None, covariates=None, train=None, n_folds: int = 5,
                    cluster=None, seed: int | np.random.Generator = 0) -> Calibration:
    """Fit the isotonic calibration f̂ of Y on the score, with K-fold cross-fitting.

    Training rows are the labelled rows (restricted to ``train`` when given),
    weighted by 1/π so that f̂ targets E[Y | score] in the whole population.
    Folds keep ``cluster`` groups (prompts) together. K + 1 fits: one on all
    training rows, one without each fold.
    """
    score, y, R = _scored_rows(score, y, labeled)
    n = score.shape[0]
    tr = R if train is None else (R & _mask(train, n))
    if not np.all(np.isfinite(y[R])):
        raise ValueError("labelled rows must have a finite outcome")
    idx = np.flatnonzero(tr)
    if idx.shape[0] < 2 * n_folds:
        raise ValueError(f"calibration needs at least {2 * n_folds} labelled training rows for {n_folds} folds; "
                         f"got {idx.shape[0]}")
    pi = None if label_prob is None else _probabilities(label_prob, n)
    w = np.ones(idx.shape[0]) if pi is None else 1.0 / pi[idx]
    X = None if covariates is None else np.asarray(covariates, dtype=float).reshape(n, -1)
    Xtr = None if X is None else X[idx]
    groups = None if cluster is None else np.asarray(cluster)[idx]
    folds_tr = fold_ids(idx.shape[0], n_folds, groups=groups, seed=seed)
    full = IsotonicCalibrator().fit(score[idx], y[idx], Xtr, w).predict(score, X)
    without = np.empty((n_folds, n))
    for k in range(n_folds):
        keep = folds_tr != k
        model = IsotonicCalibrator().fit(score[idx[keep]], y[idx[keep]], None if Xtr is None else Xtr[keep], w[keep])
        without[k] = model.predict(score, X)
    folds = np.full(n, -1, dtype=np.int64)
    folds[idx] = folds_tr
    oof = full.copy()
    oof[idx] = without[folds_tr, idx]
    return Calibration(full=full, oof=oof, without_fold=without, folds=folds, train=tr,
                       score_range=(float(score[idx].min()), float(score[idx].max())), score=score)


def calibrated_mean(y, labeled, calibration: Calibration, *, label_prob=None, subset=None, cluster=None,
                    level: float = 0.95, name: str = "mean", estimand: str = "mean", method: str = "calibrated",
                    jackknife: bool = True, diagnostics: dict | None = None) -> Estimate:
    """Calibrated AIPW mean of Y over the rows in ``subset`` (default: all rows).

    Estimand: θ = E[Y] over the subset's population. With the calibration f̂
    applied to every row of the subset and Hájek weights w̃ᵢ ∝ Rᵢ/πᵢ over the
    subset's labelled rows,

        θ̂ = mean_S f̂(sᵢ) + Σ w̃ᵢ(Yᵢ − f̂^{(−k(i))}(sᵢ)) / Σ w̃ᵢ,
        ψᵢ = f̂(sᵢ) − mean_S f̂ + w̃ᵢ(eᵢ − Δ̂) (w̃ normalised to mean 1 over the subset).

    Calibration uncertainty: θ̂^{(−k)} is the same AIPW estimate with the
    calibrator fitted without fold k; Var_cal = (K−1)/K·Σ_k(θ̂^{(−k)} − θ̄)² is
    added through K pseudo-rows of ψ (row ids −1..−K, cluster labels
    "calibration fold k"), shared by every subset that uses this calibration,
    so contrasts between subsets pair it. When the subset has labels of its
    own the term is second order (the AIPW estimate is first-order
    insensitive to the calibrator); without labels it is the whole
    calibration variance of a borrowed calibration.

    The subset's mean residual Δ̂ (labels against the out-of-fold calibration)
    is its transport check: diagnostics ``mean_residual``,
    ``mean_residual_se`` and ``mean_residual_p``.
    """
    y = np.asarray(y, dtype=float)
    n = y.shape[0]
    R = _mask(labeled, n)
    S = np.ones(n, dtype=bool) if subset is None else _mask(subset, n)
    pos = np.flatnonzero(S)
    if pos.shape[0] == 0:
        raise ValueError("the subset has no rows")
    cal = calibration
    Rs = R[pos]
    pi = None if label_prob is None else _probabilities(label_prob, n)[pos]
    c = _hajek_weights(Rs, pi)  # mean 1 over the subset's rows, 0 where unlabelled
    full = cal.full[pos]
    m_full = float(full.mean())
    n_lab = int(Rs.sum())
    diag = {"n_labeled": n_lab, "n_unlabeled": int(pos.shape[0] - n_lab), "n_folds": cal.n_folds,
            "n_calibration_rows": int(cal.train.sum())}
    lo_s, hi_s = cal.score_range
    if n_lab:
        e = np.where(Rs, y[pos] - cal.oof[pos], 0.0)
        delta = float(np.sum(c * e) / np.sum(c))
        psi = (full - m_full) + c * (e - delta) * Rs
        theta = m_full + delta
        res_psi = (c * (e - delta))[Rs] * (n_lab / pos.shape[0])  # the Hájek IF over the labelled rows
        res_cluster = None if cluster is None else _labels(cluster, n)[pos][Rs]
        res = estimate_from_influence(delta, res_psi, name="", estimand="", method="", level=level,
                                      cluster=res_cluster if res_cluster is not None and
                                      np.unique(res_cluster).shape[0] > 1 else None)
        diag.update(mean_residual=delta, mean_residual_se=res.se, mean_residual_p=res.pvalue,
                    mean_residual_ci=[res.ci_low, res.ci_high])
    else:
        psi = full - m_full
        theta = m_full
        diag["borrowed_calibration"] = True
    K = cal.n_folds
    rows = pos.astype(np.int64)
    clus = None if cluster is None else _labels(cluster, n)[pos]
    if clus is not None:
        diag["n_clusters"] = int(np.unique(clus).shape[0])  # real clusters, not the calibration pseudo-clusters
    se_if, df_if = influence_se(psi, clus)
    var_cal = 0.0
    if jackknife:
        wf = cal.without_fold[:, pos]
        jack = wf.mean(axis=1)
        if n_lab:
            ek = np.where(Rs[None, :], y[pos][None, :] - wf, 0.0)
            jack = jack + (ek @ c) / np.sum(c)
        var_cal = (K - 1) / K * float(np.sum((jack - jack.mean()) ** 2))
        M = pos.shape[0] + K
        psi = np.concatenate([psi * (M / pos.shape[0]), M * np.sqrt((K - 1) / K) * (jack - jack.mean())])
        rows = np.concatenate([rows, CALIBRATION_ROW_BASE - np.arange(K)])
        if clus is not None:
            clus = np.concatenate([clus, np.array([CALIBRATION_CLUSTER.format(k=k + 1) for k in range(K)],
                                                  dtype=object)])
        diag["calibration_se"] = float(np.sqrt(var_cal))
    score_sub = cal.score[pos]
    diag["share_outside_labeled_range"] = float(np.mean((score_sub < lo_s) | (score_sub > hi_s)))
    diag["labeled_score_range"] = [lo_s, hi_s]
    diag.update(diagnostics or {})
    est = estimate_from_influence(theta, psi, name=name, estimand=estimand, method=method, level=level,
                                  cluster=clus, rows=rows, n=int(pos.shape[0]), diagnostics=diag)
    if var_cal > 0:
        # Welch–Satterthwaite degrees of freedom: the jackknife term has only K − 1 of its own, which
        # matters when it dominates (a borrowed calibration).
        v_if = se_if**2
        df = (v_if + var_cal) ** 2 / ((v_if**2 / df_if if df_if else 0.0) + var_cal**2 / (K - 1))
        lo, hi = wald_interval(theta, est.se, level, df)
        est = est.with_(df=float(df), ci_low=lo, ci_high=hi,
                        diagnostics={**est.diagnostics, "df": float(df), "influence_se": se_if})
    return est


# --------------------------------------------------------------------------- Rogan–Gladen


def rogan_gladen_mean(judge, y, labeled, *, subset=None, label_prob=None, cluster=None, level: float = 0.95,
                      name: str = "mean", estimand: str = "mean", method: str = "rg",
                      diagnostics: dict | None = None) -> Estimate:
    """Prevalence of a binary outcome from a binary surrogate, corrected for its errors.

    Estimand θ = P(Y = 1) over the subset. With sensitivity q₁ = P(Ŷ=1 | Y=1)
    and specificity q₀ = P(Ŷ=0 | Y=0) estimated on the labelled rows (all of
    them, weighted by 1/π), and p̂ the surrogate-positive rate of the subset:
    θ̂ = (p̂ + q̂₀ − 1)/(q̂₀ + q̂₁ − 1), clipped to [0, 1].

    Influence values (delta method) live on the union of the subset's rows and
    the labelled rows: (1/J)(Ŷᵢ − p̂)/N_S for subset rows, −(θ̂/J)·w̃ᵢ(Ŷᵢ − q̂₁)/m₁
    for labelled positives and ((1 − θ̂)/J)·w̃ᵢ((1 − Ŷᵢ) − q̂₀)/m₀ for labelled
    negatives, J = q̂₀ + q̂₁ − 1 (each scaled by the number of rows in ψ).

    Assumptions: the surrogate's error rates given the true class are the same
    in the labelled rows and the subset (prevalence may differ); J well above 0.
    """
    judge = np.asarray(judge, dtype=float)
    n = judge.shape[0]
    y = np.asarray(y, dtype=float)
    R = _mask(labeled, n)
    S = np.ones(n, dtype=bool) if subset is None else _mask(subset, n)
    if not np.all(np.isin(judge, (0.0, 1.0))):
        raise ValueError("Rogan–Gladen needs a binary (0/1) surrogate")
    if not np.all(np.isin(y[R], (0.0, 1.0))):
        raise ValueError("Rogan–Gladen needs binary (0/1) labels")
    pi = None if label_prob is None else _probabilities(label_prob, n)
    wl = np.ones(n) if pi is None else 1.0 / pi
    pos1 = R & (np.where(R, y, 0.0) == 1)
    pos0 = R & (np.where(R, y, 1.0) == 0)
    m1, m0 = int(pos1.sum()), int(pos0.sum())
    if m1 == 0 or m0 == 0:
        raise ValueError(f"Rogan–Gladen needs labelled rows of both classes (got {m1} positive, {m0} negative)")
    q1 = float(np.sum(wl[pos1] * judge[pos1]) / np.sum(wl[pos1]))
    q0 = float(np.sum(wl[pos0] * (1 - judge[pos0])) / np.sum(wl[pos0]))
    J = q0 + q1 - 1.0
    if J <= 0.05:
        raise ValueError(f"the surrogate is barely better than chance (sensitivity {q1:.3f} + specificity "
                         f"{q0:.3f} - 1 = {J:.3f}); the Rogan–Gladen correction is not identified")
    NS = int(S.sum())
    p = float(judge[S].mean())
    raw = (p + q0 - 1.0) / J
    theta = float(np.clip(raw, 0.0, 1.0))
    union = S | R
    rows = np.flatnonzero(union)
    M = rows.shape[0]
    contrib = np.zeros(n)
    contrib[S] += (judge[S] - p) / (J * NS)
    w1 = wl[pos1] / wl[pos1].mean()
    w0 = wl[pos0] / wl[pos0].mean()
    contrib[pos1] += -(raw / J) * w1 * (judge[pos1] - q1) / m1
    contrib[pos0] += ((1 - raw) / J) * w0 * ((1 - judge[pos0]) - q0) / m0
    psi = M * contrib[rows]
    diag = {"sensitivity": q1, "specificity": q0, "youden_j": J, "judge_positive_rate": p,
            "n_labeled": int(R.sum()), "n_labeled_positive": m1, "n_labeled_negative": m0,
            "clipped": bool(raw != theta), "unclipped_estimate": raw, **(diagnostics or {})}
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method=method, level=level,
                                   cluster=None if cluster is None else _labels(cluster, n)[rows],
                                   rows=rows, n=NS, diagnostics=diag)


# --------------------------------------------------------------------------- PPI for the logistic loss


@dataclass
class PPILogisticFit:
    """Prediction-powered logistic regression: coefficients, covariance and influence values.

    ``influence`` has one row per unit in ``rows`` (labelled rows first, then
    unlabelled), shape (n + N, p), with θ̂ − θ ≈ mean over rows.
    """

    coef: np.ndarray
    cov: np.ndarray
    influence: np.ndarray
    rows: np.ndarray
    lam: float
    hessian: np.ndarray
    n_labeled: int
    n_unlabeled: int


def ppi_logistic(X, y, yhat, X_unlabeled, yhat_unlabeled, *, lam: float | None = None, clip: bool = True,
                 rows_labeled=None, rows_unlabeled=None) -> PPILogisticFit:
    """PPI++ for logistic regression without intercept (the design carries what is needed).

    Estimand: β minimising E[ℓ(β; x, Y)], ℓ the logistic loss. Estimator:
    β̂ = argmin λ·mean_U ℓ(β; x, f) − λ·mean_L ℓ(β; x, f) + mean_L ℓ(β; x, Y),
    solved by weighted Newton (`core.pairwise.weighted_logistic_fit`) on the
    stacked rows with weights λ/N, −λ/n and 1/n. λ: ppi_py's recipe (fit at
    λ = 1; λ = tr(H⁻¹(C + Cᵀ)H⁻¹)/(2(1 + n/N)·tr(H⁻¹V̂H⁻¹)) with H pooled over
    L ∪ U, C the labelled cross-covariance of gradients, V̂ the pooled
    covariance of prediction gradients), clipped to [0, 1].
    Covariance: sandwich with the objective's exact Hessian Ĥ = λH_U + (1−λ)H_L,
    Σ = Ĥ⁻¹(Var_L(s_Y − λs_f)/n + λ²Var_U(s_f)/N)Ĥ⁻¹ (divisors n, N); influence
    values centred within each sample.
    Reference: Angelopoulos, Duchi & Zrnic 2023 (PPI++); Boyeau et al. 2024,
    "AutoEval done right" (arXiv 2403.07008) for Bradley–Terry.
    """
    import scipy.sparse as sp
    from scipy.special import expit

    from .pairwise import weighted_logistic_fit

    XL = sp.csr_matrix(X) if not sp.issparse(X) else X.tocsr()
    XU = sp.csr_matrix(X_unlabeled) if not sp.issparse(X_unlabeled) else X_unlabeled.tocsr()
    y = np.asarray(y, dtype=float)
    yhat = np.asarray(yhat, dtype=float)
    yhu = np.asarray(yhat_unlabeled, dtype=float)
    n, N = y.shape[0], yhu.shape[0]
    if XL.shape[0] != n or yhat.shape[0] != n or XU.shape[0] != N:
        raise ValueError("X, y and yhat (and X_unlabeled, yhat_unlabeled) must have matching rows")
    if n < 2 or N < 1:
        raise ValueError("need at least two labelled rows and one unlabelled row")
    stacked = sp.vstack([XU, XL, XL], format="csr")
    target = np.concatenate([yhu, yhat, y])

    def fit(lam_value, init=None):
        weights = np.concatenate([np.full(N, lam_value / N), np.full(n, -lam_value / n), np.full(n, 1.0 / n)])
        res = weighted_logistic_fit(stacked, target, weights, coef_init=init)
        if not res.converged:
            raise ValueError("the prediction-powered logistic fit did not converge")
        return res

    tuned = lam is None
    first = fit(1.0 if tuned else float(lam))
    beta = first.coef
    if tuned:
        lam = _ppi_logistic_lambda(beta, XL, y, yhat, XU, yhu, clip)
        beta = fit(lam, beta).coef
    lam = float(lam)
    pL, pU = expit(XL @ beta), expit(XU @ beta)
    H = (lam * _gram(XU, pU * (1 - pU)) / N + (1 - lam) * _gram(XL, pL * (1 - pL)) / n)
    H_inv = np.linalg.inv(H)
    sL = _dense(XL.multiply(((y - pL) - lam * (yhat - pL))[:, None]))
    sU = _dense(XU.multiply((lam * (yhu - pU))[:, None]))
    sL -= sL.mean(axis=0)
    sU -= sU.mean(axis=0)
    M = n + N
    influence = np.vstack([(M / n) * sL @ H_inv, (M / N) * sU @ H_inv])
    cov = influence.T @ influence / M**2
    rows = np.concatenate([_ids(rows_labeled, n, 0), _ids(rows_unlabeled, N, n)])
    return PPILogisticFit(coef=beta, cov=cov, influence=influence, rows=rows, lam=lam, hessian=H,
                          n_labeled=n, n_unlabeled=N)


def _ppi_logistic_lambda(beta, XL, y, yhat, XU, yhu, clip: bool) -> float:
    from scipy.special import expit

    n, N = y.shape[0], yhu.shape[0]
    pL, pU = expit(XL @ beta), expit(XU @ beta)
    H = (_gram(XU, pU * (1 - pU)) + _gram(XL, pL * (1 - pL))) / (n + N)
    Hi = np.linalg.inv(H)
    g = _dense(XL.multiply((pL - y)[:, None]))
    gh = _dense(XL.multiply((pL - yhat)[:, None]))
    ghu = _dense(XU.multiply((pU - yhu)[:, None]))
    gc, ghc = g - g.mean(axis=0), gh - gh.mean(axis=0)
    C = (gc.T @ ghc + ghc.T @ gc) / n
    V = np.atleast_2d(np.cov(np.vstack([gh, ghu]).T))
    num = np.trace(Hi @ C @ Hi)
    den = 2 * (1 + n / N) * np.trace(Hi @ V @ Hi)
    lam = float(num / den) if den > 0 else 0.0
    return float(np.clip(lam, 0.0, 1.0)) if clip else lam


# --------------------------------------------------------------------------- helpers

def _sum_and_sumsq(x: np.ndarray) -> tuple[float, float]:
    """(Σx, Σx²): two reductions and no temporary array (the dot product runs in BLAS)."""
    x = np.ascontiguousarray(x, dtype=float)
    return float(x.sum()), float(x @ x)


def _two_sample_arrays(y, yhat, yhat_unlabeled, w, w_unlabeled):
    y = np.asarray(y, dtype=float).ravel()
    yhat = np.asarray(yhat, dtype=float).ravel()
    fu = np.asarray(yhat_unlabeled, dtype=float).ravel()
    n, N = y.shape[0], fu.shape[0]
    if yhat.shape[0] != n:
        raise ValueError("y and yhat must have the same length")
    if n < 2:
        raise ValueError(f"need at least two labelled rows; got {n}")
    if N < 1:
        raise ValueError("need at least one unlabelled row")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(yhat))):
        raise ValueError("labels and predictions must be finite")
    if w is not None:
        w = np.asarray(w, dtype=float).ravel()
        w = w / w.sum() * n
    if w_unlabeled is not None:
        w_unlabeled = np.asarray(w_unlabeled, dtype=float).ravel()
        w_unlabeled = w_unlabeled / w_unlabeled.sum() * N
    return y, yhat, fu, w, w_unlabeled


def _scored_rows(score, y, labeled) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surrogate scores (finite on every row), labels (NaN where unlabelled) and the labelled mask."""
    score = np.asarray(score, dtype=float)
    n = score.shape[0]
    y = np.asarray(y, dtype=float)
    if y.shape[0] != n:
        raise ValueError("y must have one entry per row (NaN where unlabelled)")
    if not np.all(np.isfinite(score)):
        raise ValueError("the surrogate score must be finite on every row")
    return score, y, _mask(labeled, n)


def _missing_data_arrays(y, f, labeled, label_prob):
    f, y, R = _scored_rows(f, y, labeled)
    N = f.shape[0]
    if R.sum() < 2:
        raise ValueError(f"need at least two labelled rows; got {int(R.sum())}")
    if not np.all(np.isfinite(y[R])):
        raise ValueError("labelled rows must have a finite outcome")
    pi = None if label_prob is None else _probabilities(label_prob, N)
    return y, f, R, _hajek_weights(R, pi)


def _hajek_weights(R: np.ndarray, pi: np.ndarray | None) -> np.ndarray:
    """Rᵢ/πᵢ normalised to mean 1 over all rows (πᵢ = n/N when not given)."""
    c = R.astype(float) if pi is None else np.where(R, 1.0 / pi, 0.0)
    total = c.sum()
    return c * (R.shape[0] / total) if total > 0 else c


def _probabilities(p, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if p.shape[0] != n:
        raise ValueError("label_prob must have one entry per row")
    if not np.all(np.isfinite(p)) or np.any(p <= 0) or np.any(p > 1):
        raise ValueError("labelling probabilities must lie in (0, 1]")
    return p


def _mask(m, n: int) -> np.ndarray:
    m = np.asarray(m)
    if m.shape[0] != n:
        raise ValueError("masks must have one entry per row")
    return m.astype(bool)


def _ids(rows, n: int, start: int) -> np.ndarray:
    if rows is None:
        return np.arange(start, start + n)
    rows = np.asarray(rows)
    if rows.shape[0] != n:
        raise ValueError("one row id per row")
    return rows


def _labels(cluster, n: int) -> np.ndarray:
    cluster = np.asarray(cluster)
    if cluster.shape[0] != n:
        raise ValueError("cluster must have one label per row")
    return cluster.astype(str).astype(object)


def _gram(X, v: np.ndarray) -> np.ndarray:
    import scipy.sparse as sp

    if sp.issparse(X):
        return np.asarray((X.T @ X.multiply(v[:, None])).todense())
    return X.T @ (X * v[:, None])


def _dense(A) -> np.ndarray:
    import scipy.sparse as sp

    return np.asarray(A.todense()) if sp.issparse(A) else np.asarray(A)
