"""Learn a budgeted router from a log and evaluate it honestly: out of fold.

For each outer fold k, everything the router is made of (nuisance models,
the DR-learner benefits, the cost models, λ for the budget) is fitted on the
other folds only, and the router decides for fold k. The decisions are then
valued with AIPW arm scores whose nuisances were also fitted without fold k
(Athey & Wager 2021, cross-fitted policy evaluation). In-sample values of a
learnt policy are optimistic; these are not. The estimand is the value of
the routing procedure trained on (K−1)/K of the log; the router saved to JSON
is refitted on the whole log.

The quality–cost frontier repeats this over a grid of budgets; the area
under it (normalised by the budget range) and the gain over random routing
at equal cost (mixing the cheapest and the most expensive model) come with
intervals from the same influence values, paired on the log's rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.crossfit import fold_ids
from ..core.estimate import Estimate, EstimateTable
from ..core.inference import contrast, estimate_from_influence, linear_combination
from .evaluate import Nuisances, fit_nuisances, naive_value
from .logs import RoutingLog
from .router import Router, arm_scores, decide, fit_router, lambda_for_budget

INNER_FOLDS = 3


@dataclass
class RouterStudy:
    """A router fitted on the whole log, and the out-of-fold estimates about it."""

    router: Router
    table: EstimateTable
    budgets: list[float]
    shares: list[dict[str, float]]


def _scores(log: RoutingLog, nuis: Nuisances) -> tuple[np.ndarray, np.ndarray | None]:
    gq = arm_scores(log.reward, log.action, nuis.propensity, nuis.q_quality)
    if log.prices is not None:
        return gq, log.price_matrix()
    if log.cost is not None:
        return gq, arm_scores(log.cost, log.action, nuis.propensity, nuis.q_cost)
    return gq, None


def oof_decisions(log: RoutingLog, budgets: Sequence[float], folds: np.ndarray, *, baseline: str | None = None,
                  learner: str = "linear", seed: int = 0,
                  progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Model codes chosen for each row by routers fitted without the row's fold: (len(budgets), n).

    ``progress(1)`` is called as each outer fold's router is fitted and has decided.
    """
    out = np.full((len(budgets), log.n), -1, dtype=np.int64)
    for k in np.unique(folds):
        train = np.flatnonzero(folds != k)
        test = folds == k
        sub = log.subset(train)
        inner = fit_nuisances(sub, n_folds=INNER_FOLDS, seed=seed + 1 + int(k), learner=learner)
        gq, gc = _scores(sub, inner)
        router = fit_router(sub, gq, None if log.prices is not None else gc, baseline=baseline)
        b_tr, c_tr = router.benefits(sub.X), router.costs(sub.X)
        b_te, c_te = router.benefits(log.X[test]), router.costs(log.X[test])
        for j, budget in enumerate(budgets):
            lam = lambda_for_budget(b_tr, c_tr, budget)
            out[j, test] = decide(b_te, c_te, lam)
        if progress is not None:
            progress(1)
    return out


def policy_value_from_scores(scores: np.ndarray, choice_probs: np.ndarray, *, name: str, estimand: str,
                             level: float, cluster=None, diagnostics: dict | None = None) -> Estimate:
    """DR value mean_i Σₐ πᵢₐΓᵢₐ with its influence values."""
    phi = np.einsum("ij,ij->i", choice_probs, scores)
    theta = float(phi.mean())
    psi = phi - theta
    if np.max(np.abs(psi)) <= 1e-12 * max(1.0, abs(theta)):
        psi = np.zeros_like(psi)  # known prices: the cost is exact given the prompts
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method="dr", level=level,
                                   cluster=cluster, diagnostics=diagnostics)


def _one_hot(codes: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((codes.shape[0], k))
    out[np.arange(codes.shape[0]), codes] = 1.0
    return out


def study_router(log: RoutingLog, budgets: Sequence[float], *, baseline: str | None = None, n_folds: int = 5,
                 seed: int = 0, learner: str = "linear", level: float = 0.95, final_budget: float | None = None,
                 naive: bool = True, progress: Callable[[int], None] | None = None) -> RouterStudy:
    """Learn routers for each budget out of fold and value them; refit one router on the whole log.

    Returns the router for ``final_budget`` (default: the first budget), and a
    table with, per budget, the out-of-fold quality and cost (method ``dr``),
    random routing at the same budget, the gain over it, and the always-one-model
    policies; with several budgets also the area under the quality–budget curve.
    ``progress(1)`` is called after each of `study_steps(n_folds)` units of work: the cross-fitted
    nuisances, each outer fold's router, and the router refitted on the whole log.
    """
    advance = progress if progress is not None else (lambda k=1: None)
    if not log.has_cost:
        raise ValueError("routing under a budget needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    budgets = [float(b) for b in budgets]
    folds = fold_ids(log.n, n_folds, groups=log.cluster, seed=seed)
    nuis = fit_nuisances(log, folds=folds, learner=learner)
    advance(1)
    gq, gc = _scores(log, nuis)
    k = log.k
    always = {}
    for j, m in enumerate(log.models):
        probs = _one_hot(np.full(log.n, j), k)
        q = policy_value_from_scores(gq, probs, name=f"always:{m}", estimand="quality", level=level,
                                     cluster=log.cluster)
        c = policy_value_from_scores(gc, probs, name=f"always:{m}", estimand="cost", level=level,
                                     cluster=log.cluster)
        always[m] = (q, c)
    lo_m = min(log.models, key=lambda m: always[m][1].estimate)
    hi_m = max(log.models, key=lambda m: always[m][1].estimate)
    decisions = oof_decisions(log, budgets, folds, baseline=baseline, learner=learner, seed=seed, progress=advance)
    estimates: list[Estimate] = []
    warnings: list[str] = []
    shares, router_quality = [], []
    for j, budget in enumerate(budgets):
        probs = _one_hot(decisions[j], k)
        share = {m: float(probs[:, i].mean()) for i, m in enumerate(log.models)}
        shares.append(share)
        label = f"router @ budget {budget:g}"
        diag = {"budget": budget, "share": share, "out_of_fold": True, "n_folds": n_folds}
        q = policy_value_from_scores(gq, probs, name=label, estimand="quality", level=level, cluster=log.cluster,
                                     diagnostics=diag)
        c = policy_value_from_scores(gc, probs, name=label, estimand="cost", level=level, cluster=log.cluster,
                                     diagnostics=diag)
        router_quality.append(q)
        c_lo, c_hi = always[lo_m][1].estimate, always[hi_m][1].estimate
        p = float(np.clip((budget - c_lo) / (c_hi - c_lo), 0.0, 1.0)) if c_hi > c_lo else 0.0
        rand = linear_combination([always[lo_m][0], always[hi_m][0]], [1 - p, p],
                                  name=f"random @ budget {budget:g}", estimand="quality", method="dr",
                                  diagnostics={"budget": budget, f"share {hi_m}": p})
        gain = contrast(q, rand, name=f"router - random @ budget {budget:g}", estimand="quality gain", method="dr")
        estimates += [q, c, rand, gain]
        if naive:
            estimates.append(naive_value(log.reward, log.action, probs, name=label, estimand="quality",
                                         level=level, cluster=log.cluster))
        if c.ci_low > budget + 1e-9 * max(1.0, abs(budget)):
            warnings.append(f"the out-of-fold router for budget {budget:g} spends {c.estimate:.4g} on average, "
                            f"significantly above the budget: its cost model is off")
    for m in log.models:
        estimates += list(always[m])
    if len(budgets) > 1:
        estimates += _areas(router_quality, budgets, always[lo_m][0], always[hi_m][0], always[lo_m][1].estimate,
                            always[hi_m][1].estimate)
    final = budgets[0] if final_budget is None else float(final_budget)
    router = fit_router(log, gq, None if log.prices is not None else gc, baseline=baseline)
    router.lam = lambda_for_budget(router.benefits(log.X), router.costs(log.X), final)
    router.budget = final
    router.info = {"n_rows": log.n, "source": log.source, "learner": learner, "n_folds": n_folds, "seed": seed}
    advance(1)
    return RouterStudy(router=router, table=EstimateTable(estimates, warnings), budgets=budgets, shares=shares)


def study_steps(n_folds: int) -> int:
    """The units of work `study_router` reports: the nuisances, one router per outer fold, the final router."""
    return n_folds + 2


def _areas(quality: list[Estimate], budgets: list[float], low: Estimate, high: Estimate, c_lo: float,
           c_hi: float) -> list[Estimate]:
    """Area under quality(budget), normalised by the budget range, for the router and for random routing."""
    b = np.asarray(budgets)
    order = np.argsort(b)
    b, quality = b[order], [quality[i] for i in order]
    span = b[-1] - b[0]
    if span <= 0:
        return []
    weights = np.zeros(b.shape[0])
    widths = np.diff(b)
    weights[:-1] += widths / 2
    weights[1:] += widths / 2
    weights /= span
    auc = linear_combination(quality, weights, name="router frontier area", estimand="mean quality over budgets",
                             method="dr", diagnostics={"budget_min": float(b[0]), "budget_max": float(b[-1])})
    p = np.clip((b - c_lo) / (c_hi - c_lo), 0, 1) if c_hi > c_lo else np.zeros_like(b)
    wp = float(np.dot(weights, p))
    rand = linear_combination([low, high], [1 - wp, wp], name="random frontier area",
                              estimand="mean quality over budgets", method="dr")
    gain = contrast(auc, rand, name="router - random frontier area", estimand="mean quality gain over budgets",
                    method="dr")
    return [auc, rand, gain]


def default_budgets(log: RoutingLog, n: int = 9) -> list[float]:
    """n budgets from the cheapest model's cost to the most expensive's, by the price table or the logged costs."""
    if log.prices is not None:
        prices = [log.prices[m] for m in log.models]
        lo, hi = min(prices), max(prices)
    else:
        cost = log.logged_cost()
        means = [float(cost[log.action == j].mean()) for j in range(log.k)]
        lo, hi = min(means), max(means)
    return [float(x) for x in np.linspace(lo, hi, n)]


def frontier_figure(study: RouterStudy):
    """Quality against cost of the out-of-fold routers, the single models and random routing."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    tab = study.table
    qs = [e for e in tab if e.name.startswith("router @ budget") and e.estimand == "quality" and e.method == "dr"]
    cs = [e for e in tab if e.name.startswith("router @ budget") and e.estimand == "cost"]
    x = [c.estimate for c in cs]
    y = [q.estimate for q in qs]
    yerr = np.array([[q.estimate - q.ci_low for q in qs], [q.ci_high - q.estimate for q in qs]])
    order = np.argsort(x)
    ax.errorbar(np.asarray(x)[order], np.asarray(y)[order], yerr=yerr[:, order], fmt="o-", color="C0", capsize=3,
                label="learnt router (out of fold)")
    singles = [(e.name, e) for e in tab if e.name.startswith("always:") and e.estimand == "quality"]
    single_cost = {e.name: e.estimate for e in tab if e.name.startswith("always:") and e.estimand == "cost"}
    for name, e in singles:
        ax.errorbar([single_cost[name]], [e.estimate], yerr=[[e.estimate - e.ci_low], [e.ci_high - e.estimate]],
                    fmt="s", color="C3", capsize=3)
        ax.annotate(name.split(":", 1)[1], (single_cost[name], e.estimate), textcoords="offset points",
                    xytext=(5, -12), fontsize=8)
    if len(singles) >= 2:
        pts = sorted((single_cost[n], e.estimate) for n, e in singles)
        ax.plot([pts[0][0], pts[-1][0]], [pts[0][1], pts[-1][1]], "--", color="0.5", label="random routing")
    ax.set_xlabel("average cost per prompt")
    ax.set_ylabel("quality")
    ax.set_title("Quality–cost frontier (95% intervals)")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
