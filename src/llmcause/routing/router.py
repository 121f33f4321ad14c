"""Budgeted routers: send a prompt to a bigger model when its benefit pays for its cost.

The per-prompt benefit of model a over the baseline, τₐ(x) = E[Y(a) − Y(base) | X = x],
is learnt by the DR-learner (Kennedy 2023): AIPW pseudo-outcomes
Γᵢᵃ = q̂(Xᵢ, a) + 1{Aᵢ = a}(Yᵢ − q̂(Xᵢ, a))/pᵢ with cross-fitted q̂, then a ridge
regression of Γᵃ − Γᵇᵃˢᵉ on the features. Expected costs ĉₐ(x) come from the price
table or, from a cost column, by the same regression of the cost scores.

Rule (a Lagrangian knapsack; Athey & Wager 2021; Sverdrup et al., maq):
π_λ(x) = argmaxₐ τ̂ₐ(x) − λ·ĉₐ(x), with the smallest λ ≥ 0 whose average
predicted cost on the training rows is within the budget. With two models
this is "route to the large model when τ̂(x) ≥ λ·Δc(x)".

A router is numbers only (feature pipeline, coefficients, λ) and is saved as
JSON, never pickled, so ``file:ROUTER.json`` policies can be evaluated on new logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..io import DataError, write_text_atomic
from .features import FeaturePipeline
from .logs import RoutingLog

FORMAT = "llmcause-router/1"
ALPHAS = np.logspace(-2, 4, 13)


def arm_scores(u: np.ndarray, action: np.ndarray, propensity: np.ndarray, q: np.ndarray) -> np.ndarray:
    """AIPW scores Γᵢᵃ = q̂ᵢₐ + 1{Aᵢ=a}(uᵢ − q̂ᵢₐ)/pᵢ, an (n, K) matrix; mean over rows of Σₐ πᵢₐΓᵢₐ is the DR value."""
    n = u.shape[0]
    out = np.array(q, dtype=float, copy=True)
    rows = np.arange(n)
    out[rows, action] += (u - q[rows, action]) / propensity
    return out


@dataclass
class LinearScore:
    """intercept + coef·((x − mean)/scale): a ridge fit kept as plain numbers."""

    intercept: float
    coef: list[float]

    def predict(self, Z: np.ndarray) -> np.ndarray:
        return self.intercept + Z @ np.asarray(self.coef, dtype=float) if len(self.coef) else \
            np.full(Z.shape[0], self.intercept)


def fit_linear_score(Z: np.ndarray, target: np.ndarray) -> LinearScore:
    """Ridge regression with the penalty chosen by efficient leave-one-out CV (RidgeCV)."""
    if Z.shape[1] == 0:
        return LinearScore(float(target.mean()), [])
    from sklearn.linear_model import RidgeCV

    fit = RidgeCV(alphas=ALPHAS).fit(Z, target)
    return LinearScore(float(fit.intercept_), [float(c) for c in np.ravel(fit.coef_)])


@dataclass
class Router:
    """A learnt budgeted router (see the module docstring)."""

    models: list[str]
    baseline: str
    pipeline: FeaturePipeline
    x_mean: list[float]
    x_scale: list[float]
    benefit: dict[str, LinearScore]
    cost: dict[str, LinearScore]
    lam: float = 0.0
    budget: float | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def standardise(self, X: np.ndarray) -> np.ndarray:
        return (X - np.asarray(self.x_mean)) / np.asarray(self.x_scale)

    def benefits(self, X: np.ndarray) -> np.ndarray:
        """τ̂ₐ(x) per model (0 for the baseline), shape (n, K)."""
        Z = self.standardise(X)
        return np.column_stack([np.zeros(X.shape[0]) if m == self.baseline else self.benefit[m].predict(Z)
                                for m in self.models])

    def costs(self, X: np.ndarray) -> np.ndarray:
        Z = self.standardise(X)
        return np.column_stack([self.cost[m].predict(Z) for m in self.models])

    def choose_features(self, X: np.ndarray, lam: float | None = None) -> np.ndarray:
        lam = self.lam if lam is None else lam
        return decide(self.benefits(X), self.costs(X), lam)

    def choose(self, frame) -> np.ndarray:
        """The model code (index into ``models``) chosen for each row of a table with the feature columns."""
        return self.choose_features(self.pipeline.transform(frame))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "models": self.models, "baseline": self.baseline, "lambda": self.lam,
                "budget": self.budget, "features": self.pipeline.to_dict(), "x_mean": self.x_mean,
                "x_scale": self.x_scale,
                "benefit": {m: {"intercept": s.intercept, "coef": s.coef} for m, s in self.benefit.items()},
                "cost": {m: {"intercept": s.intercept, "coef": s.coef} for m, s in self.cost.items()},
                "info": self.info}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Router":
        if d.get("format") != FORMAT:
            raise ValueError(f"not a router file (format {d.get('format')!r}, expected {FORMAT!r})")
        return cls(models=list(d["models"]), baseline=str(d["baseline"]),
                   pipeline=FeaturePipeline.from_dict(d["features"]), x_mean=list(d["x_mean"]),
                   x_scale=list(d["x_scale"]),
                   benefit={m: LinearScore(float(s["intercept"]), list(s["coef"])) for m, s in d["benefit"].items()},
                   cost={m: LinearScore(float(s["intercept"]), list(s["coef"])) for m, s in d["cost"].items()},
                   lam=float(d["lambda"]), budget=d.get("budget"), info=dict(d.get("info", {})))

    def save(self, path) -> None:
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")


def load_router(path) -> Router:
    """Read a router saved by `Router.save`; DataError when the file is missing or not a router."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: no such router file")
    try:
        return Router.from_dict(json.loads(p.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a router saved by llmcause ({exc})") from None


def decide(benefit: np.ndarray, cost: np.ndarray, lam: float) -> np.ndarray:
    """argmaxₐ τ̂ₐ − λ·ĉₐ per row; ties go to the cheaper model."""
    score = benefit - lam * cost
    # break exact ties towards lower cost by a tiny cost-ordered nudge
    order = np.argsort(np.argsort(cost.mean(axis=0)))
    return np.argmax(score - 1e-12 * order, axis=1)


def lambda_for_budget(benefit: np.ndarray, cost: np.ndarray, budget: float) -> float:
    """Smallest λ ≥ 0 with mean predicted cost of the chosen models ≤ budget (bisection)."""
    rows = np.arange(benefit.shape[0])

    def spend(lam):
        return float(cost[rows, decide(benefit, cost, lam)].mean())

    cheapest = float(cost.min(axis=1).mean())
    if budget < cheapest - 1e-12:
        raise ValueError(f"budget {budget:g} is below the average cost of always using the cheapest model "
                         f"({cheapest:.4g})")
    if spend(0.0) <= budget:
        return 0.0
    hi = 1.0
    while spend(hi) > budget and hi < 1e12:
        hi *= 4.0
    lo = 0.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if spend(mid) > budget:
            lo = mid
        else:
            hi = mid
    return hi


def fit_router(log: RoutingLog, quality_scores: np.ndarray, cost_scores: np.ndarray | None, *,
               baseline: str | None = None, budget: float | None = None, lam: float | None = None,
               rows: np.ndarray | None = None) -> Router:
    """Fit the DR-learner benefits and costs on ``rows`` (default all) and set λ for the budget.

    ``quality_scores`` and ``cost_scores`` are AIPW arm scores (`arm_scores`); with
    a price table pass ``cost_scores=None`` and costs are the prices.
    """
    rows = np.arange(log.n) if rows is None else rows
    base = baseline or cheapest_model(log, cost_scores)
    if base not in log.models:
        raise DataError(f"--baseline {base!r} is not one of the log's models ({', '.join(log.models)})")
    X = log.X[rows]
    mean = X.mean(axis=0) if X.shape[1] else np.zeros(0)
    sd = X.std(axis=0) if X.shape[1] else np.zeros(0)
    scale = np.where(sd > 0, sd, 1.0)
    Z = (X - mean) / scale
    b = log.models.index(base)
    benefit = {m: fit_linear_score(Z, quality_scores[rows, j] - quality_scores[rows, b])
               for j, m in enumerate(log.models) if m != base}
    if log.prices is not None:
        cost = {m: LinearScore(float(log.prices[m]), []) for m in log.models}
    else:
        if cost_scores is None:
            raise DataError("a budgeted router needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
        cost = {m: fit_linear_score(Z, cost_scores[rows, j]) for j, m in enumerate(log.models)}
    router = Router(models=list(log.models), baseline=base, pipeline=log.pipeline, x_mean=mean.tolist(),
                    x_scale=scale.tolist(), benefit=benefit, cost=cost)
    if lam is not None:
        router.lam = float(lam)
    elif budget is not None:
        router.lam = lambda_for_budget(router.benefits(X), router.costs(X), budget)
        router.budget = float(budget)
    return router


def cheapest_model(log: RoutingLog, cost_scores: np.ndarray | None) -> str:
    if log.prices is not None:
        return min(log.models, key=lambda m: (log.prices[m], m))
    if cost_scores is not None:
        return log.models[int(np.argmin(cost_scores.mean(axis=0)))]
    return log.models[0]
