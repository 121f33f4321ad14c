"""Cross-fitting: fold assignment that keeps clusters together, out-of-fold predictions.

A nuisance model must never predict the rows it was fitted on: the
estimate would be biased (the obp quickstart once did exactly this,
st-tech/zr-obp#53). Rows of one cluster (e.g. one prompt) stay in one fold,
as in scikit-learn's GroupKFold, but fold assignment is random and seeded.

Reference: Chernozhukov et al. 2018, "Double/debiased machine learning"
(Econometrics Journal), section 3 (cross-fitting, repeated splits).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone


def fold_ids(n: int, n_folds: int = 5, *, groups: np.ndarray | None = None,
             seed: int | np.random.Generator = 0) -> np.ndarray:
    """Random fold labels 0..K−1 for n rows, with every group inside one fold.

    Without groups the folds differ in size by at most one row. With groups,
    the groups are shuffled and cut into K runs of about n/K rows, so fold
    sizes differ by at most the largest group.
    """
    if n_folds < 2:
        raise ValueError("n_folds must be at least 2")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if groups is None:
        if n < n_folds:
            raise ValueError(f"{n} rows cannot be split into {n_folds} folds")
        folds = np.empty(n, dtype=np.int64)
        folds[rng.permutation(n)] = np.arange(n) % n_folds
        return folds
    groups = np.asarray(groups)
    if groups.shape[0] != n:
        raise ValueError("groups must have one label per row")
    uniq, codes = np.unique(groups, return_inverse=True)
    n_groups = uniq.shape[0]
    if n_groups < n_folds:
        raise ValueError(f"{n_groups} clusters cannot be split into {n_folds} folds")
    sizes = np.bincount(codes, minlength=n_groups)
    order = rng.permutation(n_groups)
    start = np.cumsum(sizes[order]) - sizes[order]  # rows placed before each group
    fold_of_ordered = np.minimum((start * n_folds) // n, n_folds - 1)
    # Guarantee no empty fold when a few huge groups dominate: fall back to round robin.
    if np.unique(fold_of_ordered).shape[0] < n_folds:
        fold_of_ordered = np.arange(n_groups) % n_folds
    group_fold = np.empty(n_groups, dtype=np.int64)
    group_fold[order] = fold_of_ordered
    return group_fold[codes.ravel()]


def repeated_fold_ids(n: int, n_folds: int = 5, n_rep: int = 1, *, groups: np.ndarray | None = None,
                      seed: int | np.random.Generator = 0) -> np.ndarray:
    """``n_rep`` independent fold assignments, shape (n_rep, n)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return np.stack([fold_ids(n, n_folds, groups=groups, seed=rng) for _ in range(n_rep)])


def folds_to_splits(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_index, test_index) pairs, the form scikit-learn and DoubleML take."""
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]


def crossfit_predict(estimator: Any, X: np.ndarray, y: np.ndarray, folds: np.ndarray, *,
                     train_mask: np.ndarray | None = None, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold ``predict`` for every row.

    For each fold k a clone of ``estimator`` is fitted on the rows outside k
    (restricted to ``train_mask``, e.g. the treated rows for E[Y | A=1, X])
    and predicts the rows in k.
    """
    X, y, folds = _check(X, y, folds)
    out = np.empty(X.shape[0])
    for k, train, test in _fold_rows(folds, train_mask):
        model = _fit(clone(estimator), X[train], y[train], None if sample_weight is None else sample_weight[train])
        out[test] = np.asarray(model.predict(X[test]), dtype=float).ravel()
    return out


def crossfit_proba(estimator: Any, X: np.ndarray, y: np.ndarray, folds: np.ndarray, *,
                   classes: np.ndarray | None = None, train_mask: np.ndarray | None = None,
                   sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Out-of-fold class probabilities, shape (n, n_classes), columns in ``classes`` order.

    ``classes`` defaults to the sorted distinct values of y. A class absent
    from some training fold gets probability 0 there (the caller's overlap
    diagnostics then show it), rather than a silently misaligned column.
    """
    X, y, folds = _check(X, y, folds)
    classes = np.unique(y) if classes is None else np.asarray(classes)
    out = np.zeros((X.shape[0], classes.shape[0]))
    for k, train, test in _fold_rows(folds, train_mask):
        model = _fit(clone(estimator), X[train], y[train], None if sample_weight is None else sample_weight[train])
        proba = np.asarray(model.predict_proba(X[test]), dtype=float)
        col = np.searchsorted(classes, model.classes_)
        if np.any(col >= classes.shape[0]) or np.any(classes[np.minimum(col, classes.shape[0] - 1)] != model.classes_):
            raise ValueError("the classifier learnt a class that is not in `classes`")
        out[np.ix_(test, col)] = proba
    return out


def median_aggregate(thetas: np.ndarray, ses: np.ndarray) -> tuple[float, float]:
    """Aggregate repeated cross-fitting: θ̃ = median θ_r, SE = √median(se_r² + (θ_r − θ̃)²).

    The SE term adds the spread between splits to each split's own variance
    (Chernozhukov et al. 2018, Definition 3.3).
    """
    thetas = np.asarray(thetas, dtype=float)
    ses = np.asarray(ses, dtype=float)
    theta = float(np.median(thetas))
    se = float(np.sqrt(np.median(ses**2 + (thetas - theta) ** 2)))
    return theta, se


def _check(X, y, folds):
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y)
    folds = np.asarray(folds)
    if not (X.shape[0] == y.shape[0] == folds.shape[0]):
        raise ValueError("X, y and folds must have the same number of rows")
    return X, y, folds


def _fold_rows(folds: np.ndarray, train_mask: np.ndarray | None):
    for k in np.unique(folds):
        train = folds != k
        if train_mask is not None:
            train = train & np.asarray(train_mask, dtype=bool)
        test = np.flatnonzero(folds == k)
        if not train.any():
            raise ValueError(f"fold {k}: no training rows (after masking)")
        yield k, np.flatnonzero(train), test


def _fit(model, X, y, sample_weight):
    if sample_weight is None:
        return model.fit(X, y)
    return model.fit(X, y, sample_weight=sample_weight)


def model_name(model: Any) -> str:
    """A fitted-model's name for diagnostics: a pipeline names its steps ("StandardScaler+Ridge")."""
    steps = getattr(model, "steps", None)
    if steps:
        return "+".join(type(step).__name__ for _, step in steps)
    return type(model).__name__
