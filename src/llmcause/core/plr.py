"""The partially linear model by double machine learning: the effect of a continuous
(or binary) treatment D on Y, adjusting for X nonparametrically.

Model. Y = θD + g(X) + ε, D = m(X) + v, E[ε | D, X] = 0.
Estimand. θ, the constant effect of one unit of D (for a mixture weight, a
length difference, ...).
Estimator. Residualise with cross-fitting: Ỹ = Y − ℓ̂(X) with ℓ = E[Y | X],
Ṽ = D − m̂(X); θ̂ = ΣṼỸ / ΣṼ². Influence ψᵢ = (Ỹᵢ − θ̂Ṽᵢ)Ṽᵢ / mean(Ṽ²).
Assumptions. No unmeasured confounding of D given X; the effect is linear
and constant; D keeps residual variation given X.
References. Robinson 1988 (Econometrica); Chernozhukov et al. 2018
(Econometrics J.). Reference implementation: DoubleML `DoubleMLPLR`
(score "partialling out"), reproduced exactly given the same learners and folds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import Ridge

from .crossfit import crossfit_predict, fold_ids, model_name
from .estimate import Estimate
from .inference import estimate_from_influence
from .sensitivity import plr_riesz_terms, sensitivity_summary

WEAK_RESIDUAL_SHARE = 0.05


def partially_linear_scores(y, d, y_hat, d_hat) -> tuple[float, np.ndarray, float]:
    """θ̂, influence values and the residual share Var(Ṽ)/Var(D) from given nuisance predictions."""
    y_res = np.asarray(y, dtype=float) - y_hat
    d = np.asarray(d, dtype=float)
    v = d - d_hat
    vv = float(np.mean(v * v))
    if vv <= 0:
        raise ValueError("the treatment has no variation left after adjusting for the covariates")
    theta = float(np.mean(v * y_res) / vv)
    psi = (y_res - theta * v) * v / vv
    share = vv / float(np.var(d)) if np.var(d) > 0 else 0.0
    return theta, psi, share


def partially_linear(y, d, X, *, outcome_model: Any = None, treatment_model: Any = None, n_folds: int = 5,
                     folds=None, cluster=None, seed: int | np.random.Generator = 0, level: float = 0.95,
                     name: str = "effect", estimand: str = "partially linear effect",
                     sensitivity_cf: float | None = 0.03) -> Estimate:
    """Cross-fitted partially linear (DML) effect of ``d`` on ``y`` given ``X``.

    Nuisance learners default to ridge regression. The diagnostics report
    the share of the treatment's variance left after adjusting for X; when it
    is small the effect is weakly identified and a warning says so.
    """
    y = np.asarray(y, dtype=float).ravel()
    d = np.asarray(d, dtype=float).ravel()
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n = y.shape[0]
    if not (d.shape[0] == n == X.shape[0]):
        raise ValueError("y, d and X must have the same number of rows")
    for label, arr in (("outcome", y), ("treatment", d), ("covariates", X)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{label} has missing or non-finite values")
    if folds is None:
        folds = fold_ids(n, n_folds, groups=cluster, seed=seed)
    folds = np.asarray(folds)
    l_model = outcome_model if outcome_model is not None else Ridge(alpha=1.0)
    m_model = treatment_model if treatment_model is not None else Ridge(alpha=1.0)
    y_hat = crossfit_predict(l_model, X, y, folds)
    d_hat = crossfit_predict(m_model, X, d, folds)
    theta, psi, share = partially_linear_scores(y, d, y_hat, d_hat)
    warnings = []
    if share < WEAK_RESIDUAL_SHARE:
        warnings.append(f"weak identification: only {share:.1%} of the treatment's variance is left after "
                        "adjusting for the covariates")
    diag = {"treatment_residual_share": share, "n_folds": int(np.unique(folds).shape[0]),
            "outcome_model": model_name(l_model), "treatment_model": model_name(m_model)}
    if sensitivity_cf is not None:
        terms = plr_riesz_terms(y - y_hat, d - d_hat, theta)
        diag["sensitivity"] = sensitivity_summary(theta, psi, *terms, cf=sensitivity_cf, level=level, cluster=cluster)
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method="dml-plr", level=level,
                                   cluster=cluster, diagnostics=diag, warnings=warnings)
