"""Cross-fitted nuisance models for routing: outcome per model q̂(x, a) and logging propensities.

Every prediction comes from a model fitted without the row's fold (folds keep
a prompt's rows together). An outcome model for model a is fitted on the
training rows that were sent to a; when a fold's training part has fewer
than `MIN_ROWS` such rows, the prediction falls back to their mean (or to
the mean of all training rows when there are none), because a regression
on a handful of rows is worse than a mean.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MIN_ROWS = 10
PROPENSITY_CLIP = 0.01


def is_binary(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


def default_outcome_model(y: np.ndarray, learner: str = "linear") -> Any:
    """Linear: for 0/1 outcomes a logistic regression on standardised features (a probabilistic
    classifier: with rare successes, such as a 0.4% click rate, a linear probability model clipped
    to [0, 1] put q̂ far above the truth), otherwise ridge regression on standardised features.
    Boosting: histogram gradient boosting (classifier for 0/1 outcomes)."""
    if learner == "boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        return (HistGradientBoostingClassifier(max_iter=100, random_state=0) if is_binary(y)
                else HistGradientBoostingRegressor(max_iter=100, random_state=0))
    if learner != "linear":
        raise ValueError(f"unknown learner {learner!r}; use linear or boosting")
    if is_binary(y):
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    return make_pipeline(StandardScaler(), Ridge(alpha=1.0))


def _predict(model, X: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)[:, 1]
    return np.asarray(model.predict(X), dtype=float)


def fit_predict_outcome(model: Any, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray) -> np.ndarray:
    """Fit on the training rows and predict the test rows, with the small-sample fallbacks."""
    if y_train.shape[0] < MIN_ROWS or X_train.shape[1] == 0:
        return np.full(X_test.shape[0], float(y_train.mean()) if y_train.size else np.nan)
    if is_binary(y_train) and np.unique(y_train).shape[0] < 2:
        return np.full(X_test.shape[0], float(y_train[0]))
    pred = _predict(clone(model).fit(X_train, y_train), X_test)
    return np.clip(pred, 0.0, 1.0) if is_binary(y_train) else pred


def crossfit_outcomes(X: np.ndarray, action: np.ndarray, y: np.ndarray, n_models: int, folds: np.ndarray,
                      model: Any = None, learner: str = "linear") -> np.ndarray:
    """Out-of-fold q̂(Xᵢ, a) for every row and model: an (n, K) matrix."""
    model = default_outcome_model(y, learner) if model is None else model
    out = np.empty((X.shape[0], n_models))
    for k in np.unique(folds):
        test = folds == k
        train = ~test
        pooled = float(y[train].mean())
        for a in range(n_models):
            rows = train & (action == a)
            pred = fit_predict_outcome(model, X[rows], y[rows], X[test])
            out[test, a] = np.where(np.isnan(pred), pooled, pred)
    return out


def crossfit_propensities(X: np.ndarray, action: np.ndarray, n_models: int, folds: np.ndarray,
                          model: Any = None, clip: float = PROPENSITY_CLIP) -> np.ndarray:
    """Out-of-fold logging probabilities π̂_b(a | Xᵢ), (n, K), floored at ``clip`` and renormalised."""
    return floor_propensities(crossfit_propensities_raw(X, action, n_models, folds, model), clip)[0]


def crossfit_propensities_raw(X: np.ndarray, action: np.ndarray, n_models: int, folds: np.ndarray,
                              model: Any = None) -> np.ndarray:
    """Out-of-fold logging probabilities π̂_b(a | Xᵢ), (n, K), as the classifier gives them."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)) if model is None else model
    out = np.empty((X.shape[0], n_models))
    for k in np.unique(folds):
        test = folds == k
        train = ~test
        present = np.unique(action[train])
        if present.shape[0] < 2 or X.shape[1] == 0:
            share = np.bincount(action[train], minlength=n_models) / train.sum()
            out[test] = share
            continue
        fitted = clone(model).fit(X[train], action[train])
        probs = np.zeros((int(test.sum()), n_models))
        probs[:, np.asarray(fitted.classes_, dtype=int)] = fitted.predict_proba(X[test])
        out[test] = probs
    return out


def floor_propensities(raw: np.ndarray, clip: float = PROPENSITY_CLIP) -> tuple[np.ndarray, np.ndarray]:
    """Raise every probability below ``clip`` to it and renormalise each row.

    Returns (probabilities, floored): ``floored`` is the (n, K) mask of the
    entries that were raised. A floored entry means the logger almost never
    chose that model for such a prompt: its weight 1/π̂ is capped, so weighting
    estimators are biased wherever a policy sends those prompts.
    """
    floored = raw < clip
    out = np.maximum(raw, clip)
    return out / out.sum(axis=1, keepdims=True), floored
