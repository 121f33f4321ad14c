"""Refutation tests that refit the whole estimator (nuisance models included) on altered data.

A refuter changes the data in a way whose effect on the answer is known,
reruns the full estimation (cross-fitting folds, propensity and outcome
models, all of it: reusing the original propensities would make a placebo
look like an effect), and checks the known answer:

- placebo treatment: the treatment permuted (within clusters when given) so
  it can affect nothing; passes when the interval contains 0;
- random common cause: an independent random covariate added; passes when
  the new estimate lies inside the original interval;
- data subset: a random share of the rows (of the clusters) refitted; passes
  when its interval contains the original estimate;
- dummy outcome: the outcome replaced by one built from the covariates
  alone (a linear fit on the controls plus permuted residuals), which the
  treatment cannot affect; passes when the interval contains 0.

A refuter that passes does not prove the design right; one that fails
shows a defect (leakage, a model that finds structure in noise, fragility).

References. Sharma & Kiciman (2020), DoWhy (arXiv 2011.04216), section 4;
Athey & Imbens (2017), "The state of applied econometrics", on placebo tests.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .estimate import Estimate

Fit = Callable[..., Estimate]  # fit(y, a, X, cluster, seed) -> Estimate (the full estimator)

REFUTERS = ("placebo treatment", "random common cause", "data subset", "dummy outcome")


def permute_within(a: np.ndarray, cluster: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """A permutation of ``a`` that moves values only within each cluster (all rows when None)."""
    out = np.array(a, copy=True)
    if cluster is None:
        return out[rng.permutation(out.shape[0])]
    labels = np.unique(np.asarray(cluster), return_inverse=True)[1]
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    for block in np.split(order, bounds):
        out[block] = out[block][rng.permutation(block.size)]
    return out


def subset_rows(n: int, share: float, cluster: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a random ``share`` of the rows, or of all rows of that share of the clusters."""
    if cluster is None:
        return np.sort(rng.choice(n, size=max(2, int(round(share * n))), replace=False))
    labels, codes = np.unique(np.asarray(cluster), return_inverse=True)
    keep = rng.choice(labels.size, size=max(2, int(round(share * labels.size))), replace=False)
    return np.flatnonzero(np.isin(codes, keep))


def dummy_outcome(y: np.ndarray, a: np.ndarray, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An outcome with the covariates' pull but no treatment effect: OLS on controls plus permuted residuals."""
    Z = np.column_stack([np.ones(y.shape[0]), X])
    c = a == 0
    beta = np.linalg.lstsq(Z[c], y[c], rcond=None)[0]
    fitted = Z @ beta
    resid = (y - fitted)[c]
    return fitted + rng.choice(resid, size=y.shape[0], replace=True)


def refute(fit: Fit, y, a, X, original: Estimate, *, cluster=None, seed: int = 0, subset_share: float = 0.8,
           refuters=REFUTERS) -> list[Estimate]:
    """Run each refuter by refitting ``fit``; returns one `Estimate` per refuter.

    Each result is named ``refute: <refuter>``; its diagnostics hold
    ``passes`` (bool), ``expected`` (what a sound analysis gives) and ``check``
    (the rule in words).
    """
    y = np.asarray(y, dtype=float)
    a = np.asarray(a, dtype=float)
    X = np.asarray(X, dtype=float)
    cluster = None if cluster is None else np.asarray(cluster)
    out = []
    for i, name in enumerate(refuters):
        rng = np.random.default_rng([seed, i])
        if name == "placebo treatment":
            est = fit(y, permute_within(a, cluster, rng), X, cluster, seed)
            passes, expected, check = est.covers(0.0), 0.0, "interval contains 0"
        elif name == "random common cause":
            est = fit(y, a, np.column_stack([X, rng.standard_normal(y.shape[0])]), cluster, seed)
            passes = bool(original.ci_low <= est.estimate <= original.ci_high)
            expected, check = original.estimate, "estimate inside the original interval"
        elif name == "data subset":
            rows = subset_rows(y.shape[0], subset_share, cluster, rng)
            est = fit(y[rows], a[rows], X[rows], None if cluster is None else cluster[rows], seed)
            passes, expected = est.covers(original.estimate), original.estimate
            check = f"interval of a {subset_share:.0%} subset contains the original estimate"
        elif name == "dummy outcome":
            est = fit(dummy_outcome(y, a, X, rng), a, X, cluster, seed)
            passes, expected, check = est.covers(0.0), 0.0, "interval contains 0"
        else:
            raise ValueError(f"unknown refuter {name!r}; use {REFUTERS}")
        diag = {"passes": bool(passes), "expected": float(expected), "check": check}
        out.append(est.with_(name=f"refute: {name}", diagnostics=diag, warnings=(), influence=None, rows=None,
                             cluster=None))
    return out
