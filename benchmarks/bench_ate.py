"""Cross-fitted AIPW: llmcause vs DoubleML's IRM on the same data, learners and folds, in one process.

n = 100,000 rows, 20 covariates, LogisticRegression + Ridge, 5 folds (the
world of REFERENCES §1.1: logistic propensity, τ(x) = 1 + 0.5·x₀, true ATE 1).
Both fit the same 15 nuisance models; the ratio measures everything else.
Also times the bare nuisance fits (the floor). `--quick` uses n = 20,000.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression, Ridge

from llmcause import __version__
from llmcause.core.ate import aipw
from llmcause.core.crossfit import crossfit_predict, crossfit_proba, fold_ids, folds_to_splits


def make_data(n: int, p: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p))
    logit = X[:, :5] @ np.array([1.2, -0.8, 0.6, 0.5, -0.4])
    e = 1 / (1 + np.exp(-logit))
    a = (rng.random(n) < e).astype(float)
    y = X[:, :6] @ np.array([1.0, 0.5, -0.5, 0.3, 0.2, 0.1]) + a * (1 + 0.5 * X[:, 0]) + rng.standard_normal(n)
    return X, a, y


def time_it(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    n = args.n or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (1 if args.quick else 3)
    X, a, y = make_data(n)
    folds = fold_ids(n, 5, seed=0)
    learners = dict(outcome_model=Ridge(alpha=1.0), propensity_model=LogisticRegression(max_iter=1000))

    def ours():
        return aipw(y, a, X, folds=folds, **learners)

    def floor():
        crossfit_predict(Ridge(alpha=1.0), X, y, folds, train_mask=a == 1)
        crossfit_predict(Ridge(alpha=1.0), X, y, folds, train_mask=a == 0)
        crossfit_proba(LogisticRegression(max_iter=1000), X, a, folds, classes=np.array([0.0, 1.0]))

    try:
        import doubleml as dml
    except ImportError:
        dml = None

    def theirs():
        data = dml.DoubleMLData.from_arrays(X, y, a)
        model = dml.DoubleMLIRM(data, Ridge(alpha=1.0), LogisticRegression(max_iter=1000), n_folds=5,
                                draw_sample_splitting=False)
        model.set_sample_splitting([folds_to_splits(folds)])
        model.fit()
        return model

    print(f"llmcause {__version__}, scikit-learn {sklearn.__version__}, numpy {np.__version__}; "
          f"n={n}, p={X.shape[1]}, 5 folds, median of {repeats}")
    t_floor, _ = time_it(floor, repeats)
    t_ours, est = time_it(ours, repeats)
    print(f"bare nuisance fits: {t_floor:.3f} s")
    print(f"llmcause aipw:      {t_ours:.3f} s  ATE {est.estimate:.4f} [{est.ci_low:.4f}, {est.ci_high:.4f}]")
    if dml is None:
        print("doubleml is not installed (pip install doubleml): no comparison")
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_dml, model = time_it(theirs, repeats)
    lo, hi = model.confint().iloc[0]
    print(f"doubleml {dml.__version__} IRM:  {t_dml:.3f} s  ATE {model.coef[0]:.4f} [{lo:.4f}, {hi:.4f}]")
    print(f"ratio aipw overhead vs bare fits: {t_ours / t_floor:.2f} (n={n})")
    print(f"ratio doubleml vs bare fits: {t_dml / t_floor:.2f} (n={n})")
    print(f"ratio aipw vs doubleml: {t_ours / t_dml:.2f} (n={n})")


if __name__ == "__main__":
    main()
