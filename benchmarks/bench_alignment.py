"""Style-controlled Bradley–Terry with sandwich CIs vs scikit-learn and vs a bootstrap.

Same data, one process: 1,000,000 simulated battles among 100 models with 4
style features (``--quick``: 100,000 battles among 30 models).

- llmcause: `core.pairwise.fit_bradley_terry` (Newton on the battle design,
  sandwich covariance) plus the estimates table with 95% CIs.
- scikit-learn: one `LogisticRegression(solver="lbfgs")` fit without penalty
  and without intercept on the same prebuilt sparse design (e_a − e_b, z),
  which gives no CIs: at its default tolerance (which stops far from the
  maximum likelihood at this n; the error is printed) and at tol=1e-8.
- bootstrap: 100 scikit-learn refits on resampled battles (multinomial
  counts as sample weights), the way CIs are often made.

All libraries run with one BLAS/OpenMP thread (threadpoolctl), so the
comparison is not distorted by other load on the machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import scipy
import sklearn
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

import llmcause
from llmcause.core.pairwise import bradley_terry_design, fit_bradley_terry


def simulate(n: int, m: int, k: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, m, n)
    b = (a + rng.integers(1, m, n)) % m
    r = rng.normal(0.0, 0.5, m)
    Z = rng.normal(size=(n, k))
    gamma = np.array([0.25, 0.05, 0.03, 0.02])[:k]
    y = (rng.random(n) < expit(r[a] - r[b] + Z @ gamma)).astype(float)
    return a, b, y, Z


def sklearn_fit(X, y, sample_weight=None, tol=1e-4):
    model = LogisticRegression(solver="lbfgs", C=np.inf, fit_intercept=False, max_iter=10_000, tol=tol)
    return model.fit(X, y, sample_weight=sample_weight)


def median_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 battles among 30 models")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--models", type=int, default=None)
    parser.add_argument("--boot", type=int, default=100, help="bootstrap replicates")
    parser.add_argument("--repeats", type=int, default=3, help="single fits are timed this often (median)")
    args = parser.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    m = args.models or (30 if args.quick else 100)
    k = 4
    print(f"llmcause {llmcause.__version__}, numpy {np.__version__}, scipy {scipy.__version__}, "
          f"scikit-learn {sklearn.__version__}, Python {platform.python_version()}")
    print(f"n = {n:,} battles, {m} models, {k} style features; one thread; single fits: median of {args.repeats}")
    a, b, y, Z = simulate(n, m, k)
    names = ["length", "headers", "lists", "bold"]
    with threadpool_limits(limits=1):
        X = bradley_terry_design(a, b, m, Z)
        warm = slice(0, min(n, 20_000))  # first-call costs (imports, allocator) out of the timings
        fit_bradley_terry(a[warm], b[warm], y[warm], features=Z[warm]).estimates()
        sklearn_fit(X[warm], y[warm])

        def ours():
            fit = fit_bradley_terry(a, b, y, features=Z, feature_names=names)
            return fit, fit.estimates()

        t_ours, (fit, table) = median_time(ours, args.repeats)
        print(f"llmcause fit + sandwich CIs: {t_ours:.2f} s ({len(table)} estimates with CIs)")
        free = np.concatenate([fit.strengths[1:] - fit.strengths[0], fit.coefs])

        t_sk, model = median_time(lambda: sklearn_fit(X, y), args.repeats)
        gap = float(np.max(np.abs(model.coef_.ravel() - free)))
        print(f"scikit-learn LogisticRegression(lbfgs), default tol, no CIs: {t_sk:.2f} s "
              f"({int(model.n_iter_[0])} iterations); max |coef - MLE| = {gap:.1e}")
        t_tight, tight = median_time(lambda: sklearn_fit(X, y, tol=1e-8), args.repeats)
        gap_tight = float(np.max(np.abs(tight.coef_.ravel() - free)))
        print(f"scikit-learn LogisticRegression(lbfgs), tol=1e-8, no CIs: {t_tight:.2f} s "
              f"({int(tight.n_iter_[0])} iterations); max |coef - MLE| = {gap_tight:.1e}")

        rng = np.random.default_rng(1)
        boot = np.empty((args.boot, X.shape[1]))
        t0 = time.perf_counter()
        for rep in range(args.boot):
            counts = rng.multinomial(n, np.full(n, 1.0 / n)).astype(float)
            boot[rep] = sklearn_fit(X, y, sample_weight=counts).coef_.ravel()
        t_boot = time.perf_counter() - t0
        se_boot = boot[:, m - 1:].std(axis=0, ddof=1)
        rel = np.max(np.abs(se_boot / fit.coef_se() - 1))
        print(f"{args.boot}-replicate bootstrap with scikit-learn (default tol): {t_boot:.2f} s; "
              f"style-coefficient SEs differ from the sandwich by at most {rel:.1%}")
    print(f"ratio style-controlled BT fit+CIs vs sklearn LogisticRegression fit: {t_ours / t_sk:.3f} (n={n})")
    print(f"ratio style-controlled BT fit+CIs vs sklearn LogisticRegression fit at tol=1e-8: {t_ours / t_tight:.3f} "
          f"(n={n})")
    print(f"ratio style-controlled BT fit+CIs vs {args.boot}-replicate bootstrap: {t_ours / t_boot:.4f} (n={n})")


if __name__ == "__main__":
    main()
