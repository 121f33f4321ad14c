import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsRegressor

from llmcause.core.crossfit import (crossfit_predict, crossfit_proba, fold_ids, folds_to_splits, median_aggregate,
                                    repeated_fold_ids)


def test_folds_are_balanced_and_seeded():
    f = fold_ids(103, 5, seed=1)
    counts = np.bincount(f)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 103
    assert np.array_equal(f, fold_ids(103, 5, seed=1))
    assert not np.array_equal(f, fold_ids(103, 5, seed=2))


def test_groups_stay_in_one_fold():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 60, 1000)
    f = fold_ids(1000, 5, groups=groups, seed=3)
    for g in np.unique(groups):
        assert np.unique(f[groups == g]).shape[0] == 1
    counts = np.bincount(f, minlength=5)
    assert counts.min() > 0 and counts.max() - counts.min() <= 2 * np.bincount(groups).max()


def test_too_few_groups_is_an_error():
    with pytest.raises(ValueError, match="clusters"):
        fold_ids(10, 5, groups=np.array([0, 1] * 5))


def test_out_of_fold_predictions_never_see_their_own_row():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 2))
    y = rng.standard_normal(200)  # unique values
    f = fold_ids(200, 5, seed=0)
    pred = crossfit_predict(KNeighborsRegressor(n_neighbors=1), X, y, f)
    assert not np.any(np.isclose(pred, y))  # 1-NN in-sample would return y exactly
    for train, test in folds_to_splits(f):
        assert np.intersect1d(train, test).size == 0


def test_train_mask_restricts_training_rows():
    X = np.arange(100, dtype=float)[:, None]
    y = np.where(np.arange(100) % 2 == 0, 5.0, -5.0)
    f = fold_ids(100, 4, seed=0)
    pred = crossfit_predict(KNeighborsRegressor(n_neighbors=3), X, y, f, train_mask=y > 0)
    assert np.allclose(pred, 5.0)


def test_proba_columns_follow_classes():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 2))
    y = np.where(X[:, 0] > 0, "b", "a")
    f = fold_ids(300, 3, seed=0)
    p = crossfit_proba(LogisticRegression(), X, y, f, classes=np.array(["a", "b"]))
    assert p.shape == (300, 2) and np.allclose(p.sum(axis=1), 1)
    assert np.mean((p[:, 1] > 0.5) == (y == "b")) > 0.9


def test_repeated_splits_and_median_rule():
    r = repeated_fold_ids(50, 5, 3, seed=0)
    assert r.shape == (3, 50) and not np.array_equal(r[0], r[1])
    theta, se = median_aggregate(np.array([1.0, 2.0, 4.0]), np.array([0.1, 0.1, 0.1]))
    assert theta == 2.0
    assert se == pytest.approx(np.sqrt(np.median([0.01 + 1, 0.01, 0.01 + 4])))
