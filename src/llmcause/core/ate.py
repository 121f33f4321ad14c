"""Average treatment effects of a binary treatment: difference in means, regression
adjustment, IPW and cross-fitted AIPW (DML), for the ATE and the ATT.

Estimands. ATE θ = E[Y(1) − Y(0)]; ATT θ = E[Y(1) − Y(0) | A = 1].

Assumptions (all but `difference_in_means`). Consistency and no interference;
conditional ignorability Y(a) ⟂ A | X; overlap ε ≤ e(x) ≤ 1 − ε. AIPW is
consistent if either the outcome model or the propensity model is right, and
√n-normal when the product of their errors is o(n^-1/2) (cross-fitting lets
flexible learners be used).

Every function returns an `Estimate` carrying per-row influence values, so
contrasts and cluster-robust errors come from `core.inference`.

References. Robins, Rotnitzky & Zhao 1994 (JASA); Hirano, Imbens & Ridder 2003
(Econometrica); Chernozhukov et al. 2018, "Double/debiased machine learning"
(Econometrics J., arXiv 1608.00060). Reference implementation: DoubleML
`DoubleMLIRM` (scores "ATE", "ATTE"), which `aipw` reproduces exactly given the
same learners and folds.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from .crossfit import crossfit_predict, crossfit_proba, fold_ids, median_aggregate, model_name
from .diagnostics import clip_propensity, overlap_report
from .estimate import Estimate
from .evalue import binary_outcome_evalues
from .inference import estimate_from_influence, wald_interval
from .sensitivity import ate_riesz_terms, sensitivity_summary

ESTIMANDS = ("ate", "att")


def default_outcome_model() -> Pipeline:
    """Standardised covariates, then ridge regression (alpha=1): fast and stable; pass your own learner for
    nonlinear outcomes. Scaling keeps the penalty the same for covariates in dollars and in years."""
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


def default_propensity_model() -> Pipeline:
    """Standardised covariates, then logistic regression (lbfgs, C=1); scaled, lbfgs converges on covariates in
    very different units (earnings in dollars beside indicators)."""
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))


# --------------------------------------------------------------------------- naive


def difference_in_means(y, a, *, cluster=None, level: float = 0.95, name: str = "naive") -> Estimate:
    """mean(Y | A=1) − mean(Y | A=0): the causal effect only if A was randomised.

    Influence ψᵢ = Aᵢ(Yᵢ − ȳ₁)/p̂ − (1 − Aᵢ)(Yᵢ − ȳ₀)/(1 − p̂), so Var = s₁²/n₁ + s₀²/n₀ (ddof 0).
    """
    y, a = _check_y_a(y, a)
    p = a.mean()
    m1, m0 = y[a == 1].mean(), y[a == 0].mean()
    psi = a * (y - m1) / p - (1 - a) * (y - m0) / (1 - p)
    return estimate_from_influence(m1 - m0, psi, name=name, estimand="difference in means", method="naive",
                                   level=level, cluster=cluster,
                                   diagnostics={"mean_treated": float(m1), "mean_control": float(m0),
                                                "n_treated": int(a.sum()), "n_control": int((1 - a).sum())})


# --------------------------------------------------------------------------- regression adjustment


def regression_adjustment(y, a, X, *, estimand: str = "ate", cluster=None, level: float = 0.95,
                          name: str | None = None) -> Estimate:
    """Regression adjustment with a separate OLS fit per arm (Imbens 2004; Lin 2013).

    ATE: θ̂ = x̄ᵀ(β̂₁ − β̂₀). ATT: θ̂ = mean over treated of Yᵢ − x̃ᵢᵀβ̂₀.
    The influence values include the sampling of the covariates and of both
    coefficient vectors: for arm a, ψᵢᵃ = (x̃ᵢ − x̄)ᵀβₐ + x̄ᵀMₐ⁻¹1{Aᵢ=a}x̃ᵢεᵢₐ with
    Mₐ = n⁻¹Σ1{A=a}x̃x̃ᵀ. Valid when E[Y | A=a, X] is linear in X.
    """
    _check_estimand(estimand)
    y, a = _check_y_a(y, a)
    X = _check_X(X, y.shape[0])
    n = y.shape[0]
    Xt = np.column_stack([np.ones(n), X])
    fits = {}
    for arm in (0, 1):
        rows = a == arm
        if rows.sum() < Xt.shape[1]:
            raise ValueError(f"arm {arm} has {int(rows.sum())} rows, fewer than the {Xt.shape[1]} regression parameters")
        beta = np.linalg.lstsq(Xt[rows], y[rows], rcond=None)[0]
        resid = np.where(rows, y - Xt @ beta, 0.0)
        M = (Xt[rows].T @ Xt[rows]) / n
        fits[arm] = (beta, resid, M)
    beta0, resid0, M0 = fits[0]
    if estimand == "ate":
        beta1, resid1, M1 = fits[1]
        xbar = Xt.mean(axis=0)
        theta = float(xbar @ (beta1 - beta0))
        corr1 = (Xt * resid1[:, None]) @ np.linalg.solve(M1, xbar)
        corr0 = (Xt * resid0[:, None]) @ np.linalg.solve(M0, xbar)
        psi = (Xt - xbar) @ (beta1 - beta0) + corr1 - corr0
    else:
        p = a.mean()
        gap = np.where(a == 1, y - Xt @ beta0, 0.0)
        theta = float(gap.sum() / a.sum())
        xbar1 = Xt[a == 1].mean(axis=0)
        corr0 = (Xt * resid0[:, None]) @ np.linalg.solve(M0, xbar1)
        psi = (gap - a * theta) / p - corr0
    return estimate_from_influence(theta, psi, name=name or estimand.upper(), estimand=estimand.upper(),
                                   method="ra", level=level, cluster=cluster,
                                   diagnostics={"outcome_model": "OLS per arm"})


# --------------------------------------------------------------------------- IPW


def ipw(y, a, X=None, *, propensity=None, estimand: str = "ate", propensity_model: Any = None,
        n_folds: int = 5, folds=None, cluster=None, clip: float = 0.01, seed: int | np.random.Generator = 0,
        level: float = 0.95, covariate_names: Sequence[str] | None = None, name: str | None = None) -> Estimate:
    """Normalised (Hájek) inverse-propensity weighting.

    ATE: θ̂ = Σ(AᵢYᵢ/êᵢ)/Σ(Aᵢ/êᵢ) − Σ((1−Aᵢ)Yᵢ/(1−êᵢ))/Σ((1−Aᵢ)/(1−êᵢ)).
    ATT: the treated mean minus the control mean weighted by ê/(1−ê).
    Propensities are given (``propensity``) or cross-fitted from X, then
    clipped by `clip_propensity`: to [clip, 1 − clip] for the ATE, only above
    at 1 − clip for the ATT (a small ê merely gives a control little weight).
    The count clipped is in the diagnostics and a warning. The influence
    values treat ê as known; for the ATE that is conservative when ê
    is estimated (Hirano, Imbens & Ridder 2003).
    """
    _check_estimand(estimand)
    y, a = _check_y_a(y, a)
    n = y.shape[0]
    if propensity is None:
        if X is None:
            raise ValueError("give either propensity or covariates X")
        X = _check_X(X, n)
        folds = _folds(n, n_folds, folds, cluster, seed)
        model = propensity_model if propensity_model is not None else default_propensity_model()
        e_raw = crossfit_proba(model, X, a, folds, classes=np.array([0, 1]))[:, 1]
    else:
        e_raw = np.asarray(propensity, dtype=float)
        if e_raw.shape[0] != n or not np.all((e_raw > 0) & (e_raw < 1)):
            raise ValueError("propensity must be one value in (0, 1) per row")
        X = None if X is None else _check_X(X, n)
    e = clip_propensity(e_raw, clip, estimand)
    w1 = a / e
    if estimand == "ate":
        w0 = (1 - a) / (1 - e)
        m1 = np.sum(w1 * y) / np.sum(w1)
        m0 = np.sum(w0 * y) / np.sum(w0)
        psi = w1 * (y - m1) / w1.mean() - w0 * (y - m0) / w0.mean()
    else:
        p = a.mean()
        w0 = (1 - a) * e / (1 - e)
        m1 = y[a == 1].mean()
        m0 = np.sum(w0 * y) / np.sum(w0)
        psi = a * (y - m1) / p - w0 * (y - m0) / w0.mean()
    diag, warns = overlap_report(e_raw, a, clip=clip, estimand=estimand, X=X, names=covariate_names)
    return estimate_from_influence(m1 - m0, psi, name=name or estimand.upper(), estimand=estimand.upper(),
                                   method="ipw", level=level, cluster=cluster, diagnostics=diag, warnings=warns)


# --------------------------------------------------------------------------- AIPW / DML


def aipw_scores(y, a, mu0, mu1, e, estimand: str = "ate") -> tuple[float, np.ndarray]:
    """θ̂ and influence values of AIPW from given nuisance predictions (pure numpy).

    ATE: φᵢ = μ̂₁ − μ̂₀ + Aᵢ(Yᵢ − μ̂₁)/êᵢ − (1−Aᵢ)(Yᵢ − μ̂₀)/(1−êᵢ); θ̂ = mean φ; ψ = φ − θ̂.
    ATT: sᵢ = Aᵢ(Yᵢ − μ̂₀) − (1−Aᵢ)êᵢ(Yᵢ − μ̂₀)/(1−êᵢ); θ̂ = Σs/ΣA; ψ = (s − Aθ̂)/p̂.
    ``e`` must already be clipped away from 0 and 1.
    """
    y = np.asarray(y, dtype=float)
    a = np.asarray(a, dtype=float)
    if estimand == "ate":
        phi = mu1 - mu0 + a * (y - mu1) / e - (1 - a) * (y - mu0) / (1 - e)
        theta = float(phi.mean())
        return theta, phi - theta
    if estimand == "att":
        p = a.mean()
        s = a * (y - mu0) - (1 - a) * e * (y - mu0) / (1 - e)
        theta = float(s.sum() / a.sum())
        return theta, (s - a * theta) / p
    raise ValueError(f"unknown estimand {estimand!r}; use one of {ESTIMANDS}")


def aipw(y, a, X, *, estimand: str = "ate", outcome_model: Any = None, propensity_model: Any = None,
         n_folds: int = 5, folds=None, n_rep: int = 1, cluster=None, clip: float = 0.01,
         seed: int | np.random.Generator = 0, level: float = 0.95,
         covariate_names: Sequence[str] | None = None, name: str | None = None,
         sensitivity_cf: float | None = 0.03) -> Estimate:
    """Cross-fitted augmented IPW (DML for the interactive regression model).

    The outcome model is fitted separately on each arm's training rows, the
    propensity model on all training rows; each predicts only its held-out
    fold (folds keep ``cluster`` groups together). Propensities are clipped
    to [clip, 1 − clip] for the ATE (DoubleML's default 0.01) and only at
    1 − clip for the ATT (`clip_propensity`; DoubleML clips both ends, so the
    two agree for the ATT only when no propensity lies below ``clip``); the
    number clipped, ESS per arm and covariate balance are reported in the
    diagnostics, with warnings when anything was clipped or overlap is poor.

    With ``n_rep > 1`` the fit is repeated on independent splits: the point
    estimate and SE are aggregated by the median rule (`median_aggregate`);
    the stored influence values are the average over splits.

    Returns an `Estimate` named ``name`` (default ``"ATE"``/``"ATT"``) whose
    diagnostics also hold the estimated mean potential outcomes and, unless
    ``sensitivity_cf`` is None, ``sensitivity``: omitted-variable-bias bounds
    for a confounder of strength cf_y = cf_d = ``sensitivity_cf`` and the
    robustness values RV and RVa (`core.sensitivity`; from the first split).
    For a 0/1 outcome the diagnostics also hold ``evalue``: the adjusted
    risk and odds ratios with intervals and their E-values (`core.evalue`).
    """
    _check_estimand(estimand)
    y, a = _check_y_a(y, a)
    n = y.shape[0]
    X = _check_X(X, n)
    if n_rep < 1:
        raise ValueError("n_rep must be at least 1")
    out_model = outcome_model if outcome_model is not None else default_outcome_model()
    ps_model = propensity_model if propensity_model is not None else default_propensity_model()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    thetas, ses, psis, first = [], [], [], None
    for r in range(n_rep):
        f = folds if (folds is not None and r == 0) else fold_ids(n, n_folds, groups=cluster, seed=rng)
        f = np.asarray(f)
        if f.shape[0] != n:
            raise ValueError("folds must have one label per row")
        mu1 = crossfit_predict(out_model, X, y, f, train_mask=a == 1)
        mu0 = crossfit_predict(out_model, X, y, f, train_mask=a == 0)
        e_raw = crossfit_proba(ps_model, X, a, f, classes=np.array([0, 1]))[:, 1]
        e = clip_propensity(e_raw, clip, estimand)
        theta, psi = aipw_scores(y, a, mu0, mu1, e, estimand)
        est = estimate_from_influence(theta, psi, name="", estimand="", method="", cluster=cluster)
        thetas.append(theta)
        ses.append(est.se)
        psis.append(psi)
        if first is None:
            first = (mu0, mu1, e_raw, e)
    mu0, mu1, e_raw, e = first
    diag, warns = overlap_report(e_raw, a, clip=clip, estimand=estimand, X=X, names=covariate_names)
    diag.update(_potential_outcome_means(y, a, mu0, mu1, e, estimand))
    diag.update({"n_folds": int(np.unique(folds).shape[0]) if folds is not None else n_folds, "n_rep": n_rep,
                 "outcome_model": model_name(out_model), "propensity_model": model_name(ps_model)})
    if np.all((y == 0) | (y == 1)):
        diag["evalue"] = binary_outcome_evalues(*_risk_influence(y, a, mu0, mu1, e, estimand), level=level,
                                                cluster=cluster)
    if sensitivity_cf is not None:
        terms = ate_riesz_terms(y, a, mu0, mu1, e, estimand)
        diag["sensitivity"] = sensitivity_summary(thetas[0], psis[0], *terms, cf=sensitivity_cf, level=level,
                                                  cluster=cluster)
    label = estimand.upper()
    est = estimate_from_influence(float(np.mean(thetas)), np.mean(psis, axis=0),
                                  name=name or label, estimand=label, method="aipw", level=level,
                                  cluster=cluster, diagnostics=diag, warnings=warns)
    if n_rep > 1:
        theta, se = median_aggregate(np.array(thetas), np.array(ses))
        lo, hi = wald_interval(theta, se, level, est.df)
        est = est.with_(estimate=theta, se=se, ci_low=lo, ci_high=hi,
                        diagnostics={**est.diagnostics, "theta_per_split": [float(t) for t in thetas]})
    return est


def _potential_outcome_means(y, a, mu0, mu1, e, estimand: str) -> dict:
    """AIPW estimates of E[Y(1)] and E[Y(0)] (ATE) or of the treated's E[Y(0) | A=1] (ATT)."""
    if estimand == "ate":
        phi1 = mu1 + a * (y - mu1) / e
        phi0 = mu0 + (1 - a) * (y - mu0) / (1 - e)
        return {"mean_outcome_treated": float(phi1.mean()), "mean_outcome_control": float(phi0.mean())}
    p = a.mean()
    y1 = float(y[a == 1].mean())
    s0 = a * mu0 + (1 - a) * e * (y - mu0) / (1 - e)
    return {"mean_outcome_treated": y1, "mean_outcome_control": float(s0.sum() / (p * y.shape[0]))}


def _risk_influence(y, a, mu0, mu1, e, estimand: str):
    """(p̂₁, p̂₀, ψ₁, ψ₀): AIPW risks under treatment and control (of everyone, or of the treated) with influence values."""
    if estimand == "ate":
        phi1 = mu1 + a * (y - mu1) / e
        phi0 = mu0 + (1 - a) * (y - mu0) / (1 - e)
        p1, p0 = float(phi1.mean()), float(phi0.mean())
        return p1, p0, phi1 - p1, phi0 - p0
    p = a.mean()
    p1 = float(y[a == 1].mean())
    s0 = a * mu0 + (1 - a) * e * (y - mu0) / (1 - e)
    p0 = float(s0.sum() / a.sum())
    return p1, p0, a * (y - p1) / p, (s0 - a * p0) / p


# --------------------------------------------------------------------------- checks


def _check_estimand(estimand: str) -> None:
    if estimand not in ESTIMANDS:
        raise ValueError(f"unknown estimand {estimand!r}; use one of {ESTIMANDS}")


def _check_y_a(y, a) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    a = np.asarray(a, dtype=float).ravel()
    if y.shape[0] != a.shape[0]:
        raise ValueError("outcome and treatment have different lengths")
    if not np.all(np.isfinite(y)):
        raise ValueError("outcome has missing or non-finite values")
    if not np.all((a == 0) | (a == 1)):
        raise ValueError("treatment must be coded 0/1")
    n1 = int(a.sum())
    if n1 < 2 or y.shape[0] - n1 < 2:
        raise ValueError(f"need at least 2 treated and 2 control rows (got {n1} and {y.shape[0] - n1})")
    return y, a


def _check_X(X, n: int) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.shape[0] != n:
        raise ValueError("covariates and outcome have different numbers of rows")
    if not np.all(np.isfinite(X)):
        raise ValueError("covariates have missing or non-finite values")
    return X


def _folds(n, n_folds, folds, cluster, seed):
    if folds is not None:
        folds = np.asarray(folds)
        if folds.shape[0] != n:
            raise ValueError("folds must have one label per row")
        return folds
    return fold_ids(n, n_folds, groups=cluster, seed=seed)
