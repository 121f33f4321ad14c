"""Mixing laws: per-domain regressions of held-out loss on the mixture, judged on unseen mixtures.

Laws (one per held-out domain; the ``mean`` target is the average of the
per-domain predictions, since one domain's loss jumps when its weight
reaches 0 and a single law on the average cannot follow that):

- ``loglinear``: L_d = a + Σ_j b_j log(w_j + ε) (ridge); the RegMix linear
  baseline on log weights.
- ``exponential``: the Data Mixing Laws form L_d = c + k·exp(Σ_j t_j w_j)
  (Ye et al. 2025, arXiv 2403.16952), fitted by least squares with a Huber
  loss from several starts.
- ``boosting``: gradient-boosted trees on w and log(w + ε) (the RegMix
  LightGBM regressor, Liu et al. 2025, arXiv 2407.01492).

`heldout_spearman` cross-validates each law over mixtures (all seeds of a
mixture in one fold) and reports Spearman's ρ between predicted and realised
loss on the unseen mixtures, with a Fisher-z interval (Bonett & Wright 2000
variance).
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..core.crossfit import fold_ids
from ..core.estimate import Estimate, EstimateTable
from ..core.inference import critical_value
from .campaign import LOSS_PREFIX, loss_columns
from .designs import WEIGHT_PREFIX, design_domains

__all__ = ["LogLinearLaw", "ExponentialLaw", "BoostedLaw", "LAWS", "make_law", "mixture_table", "MixtureLaws",
           "heldout_spearman", "spearman_estimate"]

LOG_EPS = 1e-3


class LogLinearLaw:
    """L = a + Σ_j b_j log(w_j + ε), by ridge regression."""

    name = "loglinear"

    def __init__(self, penalty: float = 1e-3):
        self.penalty = penalty

    def fit(self, W: np.ndarray, y: np.ndarray) -> "LogLinearLaw":
        from sklearn.linear_model import Ridge

        self.model_ = Ridge(alpha=self.penalty).fit(np.log(W + LOG_EPS), y)
        return self

    def predict(self, W: np.ndarray) -> np.ndarray:
        return self.model_.predict(np.log(np.asarray(W) + LOG_EPS))


class ExponentialLaw:
    """L = c + k·exp(Σ_j t_j w_j), fitted with a Huber loss from several starting points."""

    name = "exponential"

    def __init__(self, n_starts: int = 4, seed: int = 0):
        self.n_starts = n_starts
        self.seed = seed

    def fit(self, W: np.ndarray, y: np.ndarray) -> "ExponentialLaw":
        W, y = np.asarray(W, dtype=float), np.asarray(y, dtype=float)
        spread = float(np.ptp(y)) or 1.0
        c0 = float(y.min()) - 0.05 * spread
        rng = np.random.default_rng(self.seed)

        def residuals(theta):
            return theta[0] + np.exp(np.clip(theta[1] + W @ theta[2:], -50, 50)) - y

        def jacobian(theta):
            e = np.exp(np.clip(theta[1] + W @ theta[2:], -50, 50))
            return np.column_stack([np.ones_like(e), e, W * e[:, None]])

        starts = [np.r_[c0, math.log(spread), np.zeros(W.shape[1])]]
        starts += [np.r_[c0, math.log(spread), rng.normal(0, 3, W.shape[1])] for _ in range(self.n_starts - 1)]
        best = None
        for x0 in starts:
            fit = optimize.least_squares(residuals, x0, jac=jacobian, loss="huber", f_scale=0.1 * spread,
                                         max_nfev=100, x_scale="jac")
            if best is None or fit.cost < best.cost:
                best = fit
        self.params_ = best.x
        return self

    def predict(self, W: np.ndarray) -> np.ndarray:
        c, log_k, t = self.params_[0], self.params_[1], self.params_[2:]
        return c + np.exp(np.clip(log_k + np.asarray(W, dtype=float) @ t, -50, 50))


class BoostedLaw:
    """Gradient-boosted trees on the weights and their logs."""

    name = "boosting"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, W: np.ndarray, y: np.ndarray) -> "BoostedLaw":
        from sklearn.ensemble import GradientBoostingRegressor

        self.model_ = GradientBoostingRegressor(n_estimators=150, learning_rate=0.1, max_depth=3, subsample=0.8,
                                                min_samples_leaf=2, random_state=self.seed)
        self.model_.fit(self._features(W), y)
        return self

    @staticmethod
    def _features(W):
        W = np.asarray(W, dtype=float)
        return np.column_stack([W, np.log(W + LOG_EPS)])

    def predict(self, W: np.ndarray) -> np.ndarray:
        return self.model_.predict(self._features(W))


LAWS = {"loglinear": LogLinearLaw, "exponential": ExponentialLaw, "boosting": BoostedLaw}


def make_law(name: str, seed: int = 0):
    if name not in LAWS:
        raise ValueError(f"unknown mixing law {name!r}; use one of: {', '.join(LAWS)}")
    return LAWS[name]() if name == "loglinear" else LAWS[name](seed=seed)


def mixture_table(results: pd.DataFrame) -> tuple[np.ndarray, dict[str, np.ndarray], list[str], np.ndarray]:
    """Mean loss per distinct mixture (over its seeds): weights (m × k), losses by domain, domains, seeds per mixture."""
    domains = design_domains(results)
    cols = [WEIGHT_PREFIX + d for d in domains]
    losses = loss_columns(results)
    if not losses:
        raise ValueError(f"the results have no loss columns ({LOSS_PREFIX}<domain>)")
    key = results[cols].round(9).apply(tuple, axis=1)
    grouped = results.assign(_mix=key).groupby("_mix", sort=True)
    W = np.array([list(k) for k in grouped.groups.keys()], dtype=float)
    means = grouped[losses].mean()
    Y = {c[len(LOSS_PREFIX):]: means[c].to_numpy(dtype=float) for c in losses}
    return W, Y, domains, grouped.size().to_numpy()


class MixtureLaws:
    """One fitted law per held-out domain; predicts any target (a domain, ``mean``, or a weighting)."""

    def __init__(self, law: str = "boosting", seed: int = 0):
        make_law(law)
        self.law = law
        self.seed = seed

    def fit(self, W: np.ndarray, Y: Mapping[str, np.ndarray]) -> "MixtureLaws":
        self.models_ = {d: make_law(self.law, self.seed).fit(W, y) for d, y in Y.items()}
        return self

    def predict_domains(self, W: np.ndarray) -> dict[str, np.ndarray]:
        return {d: m.predict(W) for d, m in self.models_.items()}

    def predict(self, W: np.ndarray, target: str | Mapping[str, float] = "mean") -> np.ndarray:
        preds = self.predict_domains(W)
        return combine_target(preds, target)


def combine_target(values: Mapping[str, np.ndarray], target: str | Mapping[str, float]) -> np.ndarray:
    """The target from per-domain losses: one domain, ``mean`` (equal weights), or a weighting of domains."""
    if isinstance(target, str):
        if target == "mean":
            return np.mean(np.column_stack(list(values.values())), axis=1)
        if target not in values:
            raise ValueError(f"unknown target {target!r}; use mean or one of: {', '.join(values)}")
        return np.asarray(values[target])
    total = sum(target.values())
    return sum(np.asarray(values[d]) * (w / total) for d, w in target.items())


def spearman_estimate(x: np.ndarray, y: np.ndarray, *, name: str, estimand: str = "Spearman rank correlation",
                      method: str = "fisher-z", level: float = 0.95, diagnostics: dict | None = None) -> Estimate:
    """Spearman's ρ with a Fisher-z interval, SE_z = √((1 + ρ²/2)/(n − 3)) (Bonett & Wright 2000)."""
    n = len(x)
    rho = float(stats.spearmanr(x, y).statistic) if n >= 3 else float("nan")
    warnings = []
    if n < 5 or not math.isfinite(rho):
        warnings.append(f"{name}: {n} points are too few for a rank-correlation interval")
        lo = hi = se = float("nan")
    else:
        se_z = math.sqrt((1 + rho * rho / 2) / (n - 3))
        z = math.atanh(min(max(rho, -0.999999), 0.999999))
        q = critical_value(level)
        lo, hi = math.tanh(z - q * se_z), math.tanh(z + q * se_z)
        se = (1 - rho * rho) * se_z
    return Estimate(name=name, estimand=estimand, method=method, estimate=rho, se=se, ci_low=lo, ci_high=hi,
                    level=level, n=n, diagnostics=dict(diagnostics or {}), warnings=tuple(warnings))


def heldout_spearman(results: pd.DataFrame, laws: Sequence[str] = tuple(LAWS),
                     targets: Sequence[str | Mapping[str, float]] | None = None,
                     n_folds: int = 5, seed: int = 0, level: float = 0.95) -> EstimateTable:
    """Out-of-fold Spearman ρ of each law on unseen mixtures, per target (default: each domain and ``mean``;
    a {domain: weight} target is named ``weighted``)."""
    W, Y, domains, _ = mixture_table(results)
    m = W.shape[0]
    if m < max(n_folds, 6):
        raise ValueError(f"{m} distinct mixtures are too few to judge a mixing law (need at least {max(n_folds, 6)})")
    folds = fold_ids(m, n_folds, seed=seed)
    targets = list(targets) if targets else [*Y, "mean"]
    out = []
    for law in laws:
        oof = {d: np.empty(m) for d in Y}
        for k in range(n_folds):
            train, test = folds != k, folds == k
            fitted = MixtureLaws(law, seed).fit(W[train], {d: y[train] for d, y in Y.items()})
            for d, pred in fitted.predict_domains(W[test]).items():
                oof[d][test] = pred
        for t in targets:
            pred, real = combine_target(oof, t), combine_target(Y, t)
            out.append(spearman_estimate(pred, real, name=f"{law}:{t if isinstance(t, str) else 'weighted'}", estimand="held-out Spearman", method=law,
                                         level=level, diagnostics={"n_mixtures": m, "n_folds": n_folds}))
    return EstimateTable(out)
