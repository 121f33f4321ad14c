"""The effect of the length gap on the vote, three ways, on one scale (probability that a wins).

1. Naive: the least-squares slope of the vote on the z-scored length gap,
   the raw association (content and model identity included).
2. Style-controlled Bradley–Terry, as an average marginal effect:
   mean over battles of pᵢ(1 − pᵢ)·γ_length, with a delta-method influence
   function (parametric: logit additivity, linear in the style gaps).
3. Partially linear DML: vote = θ·length gap + g(X) + ε, with g learnt by
   cross-fitted flexible regression on X = the other style gaps, the model
   identities (+1 for side a, −1 for side b) and local content features
   (distinct words, numbers, sentences of each side). θ is the effect of one
   SD of length gap on P(a wins) with content held fixed.

Estimand and assumptions (DML). Y = θD + g(X) + ε with E[ε | D, X] = 0: no
unmeasured confounding of the length gap given X (the content features must
capture what longer answers say), a constant effect, and residual variation
of D given X (reported: a small share means weak identification). When the
true vote model is logistic, θ is a variance-weighted average derivative,
equal to the average derivative E[∂P/∂D] when D's residual is Gaussian and
independent of X.

References. Robinson 1988; Chernozhukov et al. 2018 (Double/debiased ML);
LMArena, "Does style matter?" (2024).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from ..core.pairwise import PairwiseFit
from ..core.plr import partially_linear
from .battles import Battles

ESTIMAND = "effect of length on P(a wins)"


def model_identity_columns(model_a, model_b, models) -> np.ndarray:
    """(n, M) matrix: +1 in the column of model a, −1 in the column of model b."""
    index = {m: j for j, m in enumerate(models)}
    n = len(model_a)
    out = np.zeros((n, len(models)))
    rows = np.arange(n)
    out[rows, [index[m] for m in model_a]] += 1.0
    out[rows, [index[m] for m in model_b]] -= 1.0
    return out


def naive_length_slope(y, d, *, cluster=None, rows=None, level: float = 0.95, name: str = "length") -> Estimate:
    """OLS slope of the vote on the length gap (with intercept), with its influence values."""
    y = np.asarray(y, dtype=float)
    d = np.asarray(d, dtype=float)
    dc = d - d.mean()
    vd = float(np.mean(dc * dc))
    if vd <= 0:
        raise ValueError("the length gap does not vary")
    slope = float(np.mean(dc * (y - y.mean())) / vd)
    resid = y - y.mean() - slope * dc
    psi = dc * resid / vd
    return estimate_from_influence(slope, psi, name=name, estimand=ESTIMAND, method="naive", level=level,
                                   cluster=cluster, rows=rows, diagnostics={"model": "least squares, vote on gap"})


def bt_marginal_effect(fit: PairwiseFit, model_a, model_b, features: np.ndarray, feature: str = "length", *,
                       level: float = 0.95, rows=None) -> Estimate:
    """Average marginal effect mean pᵢ(1 − pᵢ)γ_f of a style-controlled fit, with a delta-method IF."""
    if fit.influence is None:
        raise ValueError("the fit kept no influence values (too many battles); refit with keep_influence=True")
    k = fit.feature_names.index(feature)
    m = len(fit.competitors)
    index = {c: j for j, c in enumerate(fit.competitors)}
    ia = np.array([index[v] for v in model_a])
    ib = np.array([index[v] for v in model_b])
    Z = np.asarray(features, dtype=float)
    eta = fit.strengths[ia] - fit.strengths[ib] + Z @ fit.coefs
    p = 1.0 / (1.0 + np.exp(-eta))
    slope = p * (1 - p)
    gamma = fit.coefs[k]
    theta = float(np.mean(slope) * gamma)
    # Gradient of mean pᵢ(1−pᵢ)γ with respect to (centred strengths, γ).
    curv = slope * (1 - 2 * p) * gamma
    n = p.shape[0]
    grad = np.zeros(m + Z.shape[1])
    grad[:m] = (np.bincount(ia, weights=curv, minlength=m) - np.bincount(ib, weights=curv, minlength=m)) / n
    grad[m:] = curv @ Z / n
    grad[m + k] += float(np.mean(slope))
    psi = slope * gamma - theta + fit.influence @ grad
    return estimate_from_influence(theta, psi, name=feature, estimand=ESTIMAND, method="style-controlled ame",
                                   level=level, cluster=fit.cluster, rows=rows,
                                   diagnostics={"log_odds_per_sd": float(gamma),
                                                "mean_slope_p(1-p)": float(np.mean(slope))})


def default_learner(kind: str = "boosting", seed: int = 0) -> Any:
    """Nuisance regressor: histogram gradient boosting (default) or ridge."""
    if kind == "linear":
        from sklearn.linear_model import RidgeCV

        return RidgeCV(alphas=np.logspace(-3, 3, 13))
    if kind == "boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=150, learning_rate=0.05, max_leaf_nodes=15,
                                             min_samples_leaf=20, l2_regularization=1.0, random_state=seed)
    raise ValueError(f"unknown learner {kind!r}; use boosting or linear")


def _single_thread(active: bool):
    from contextlib import nullcontext

    if not active:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="openmp")


def dml_length_effect(battles: Battles, feature: str = "length", *, learner: str | Any = "boosting",
                      n_folds: int = 5, seed: int = 0, level: float = 0.95,
                      progress: Callable[[int], None] | None = None) -> Estimate:
    """Cross-fitted partially linear effect of the ``feature`` gap on the vote, with content controls.

    ``progress(1)`` is called after each of the ``2 * n_folds`` nuisance fits (outcome and gap, per fold).
    """
    names = battles.style.names
    if feature not in names:
        raise ValueError(f"no style feature {feature!r} (features: {', '.join(names)})")
    k = names.index(feature)
    d = battles.style.values[:, k]
    others = np.delete(battles.style.values, k, axis=1)
    models = sorted(set(battles.model_a) | set(battles.model_b))
    blocks = [others, model_identity_columns(battles.model_a, battles.model_b, models)]
    control_names = [n for n in names if n != feature] + [f"model {m}" for m in models]
    if battles.controls is not None:
        blocks.append(battles.controls)
        control_names += battles.control_names
    X = np.column_stack(blocks)
    builtin = isinstance(learner, str)
    model = default_learner(learner, seed) if builtin else learner
    if progress is not None:
        from ..progress import counting_fits

        model = counting_fits(model, progress)
    # The built-in learners fit small nuisance models: one OpenMP thread each avoids the heavy slowdown
    # of oversubscribed cores and gives the same result.
    with _single_thread(builtin):
        est = partially_linear(battles.outcome, d, X, outcome_model=model, treatment_model=model,
                               n_folds=n_folds, cluster=battles.cluster, seed=seed, level=level, name=feature,
                               estimand=ESTIMAND)
    diag = {**est.diagnostics, "controls": control_names, "n_content_controls": len(battles.control_names)}
    warnings = list(est.warnings)
    if battles.controls is None:
        warnings.append("the length effect adjusts for the other style gaps and the models only; give texts "
                        "(or --controls) so content can be held fixed")
    return est.with_(diagnostics=diag, rows=battles.rows, warnings=tuple(warnings))


def length_effects(battles: Battles, fit: PairwiseFit | None = None, feature: str = "length", *,
                   learner: str | Any = "boosting", n_folds: int = 5, seed: int = 0,
                   level: float = 0.95, progress: Callable[[int], None] | None = None) -> EstimateTable:
    """Naive slope, style-controlled BT marginal effect (when ``fit`` is given) and the DML effect."""
    names = battles.style.names
    if feature not in names:
        raise ValueError(f"no style feature {feature!r} (features: {', '.join(names)})")
    d = battles.style.values[:, names.index(feature)]
    out = [naive_length_slope(battles.outcome, d, cluster=battles.cluster, rows=battles.rows, level=level,
                              name=feature)]
    if fit is not None and fit.influence is not None:
        out.append(bt_marginal_effect(fit, battles.model_a, battles.model_b, battles.style.values, feature,
                                      level=level, rows=battles.rows))
    out.append(dml_length_effect(battles, feature, learner=learner, n_folds=n_folds, seed=seed, level=level,
                                 progress=progress))
    return EstimateTable(out)
