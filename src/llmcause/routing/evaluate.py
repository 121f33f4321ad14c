"""What would another router have achieved? Off-policy values of routing policies from a log.

Estimands, for a target policy π over the log's models (Dudík, Langford & Li 2011):

- quality  V_Y(π) = E[Σₐ π(a|X) E[Y | X, A=a]];
- cost     V_C(π) = E[Σₐ π(a|X) E[C | X, A=a]];
- utility  V_U(π) = V_Y(π) − λ·V_C(π).

Assumptions: the logged propensities are right (or, when not logged, the
router chose from the given features only: ignorability now rests on them);
every model the target uses was logged with positive probability wherever the
target uses it; no interference between prompts.

Nuisances are cross-fitted (folds keep a prompt's rows together): outcome
models per model for quality and, with a cost column, for cost; a price table
gives costs exactly. Intervals are Wald intervals from influence values;
beside them an empirical-likelihood interval for IPS (Karampatziakis, Langford
& Mineiro 2020) that keeps coverage when few logged rows agree with the
policy, and the naive answer: the mean logged outcome where the logged model
is the one the policy picks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.crossfit import fold_ids
from ..core.estimate import Estimate, EstimateTable
from ..core.inference import contrast, estimate_from_influence
from ..core.ope import METHODS, MIN_CONTRIBUTIONS, el_ips_value, ope_estimates
from .logs import RoutingLog
from .nuisance import PROPENSITY_CLIP, crossfit_outcomes, crossfit_propensities_raw, floor_propensities
from .policies import check_support, parse_policy, policy_matrix

ESTIMANDS = ("quality", "cost", "utility")
ALL_METHODS = (*METHODS, "el")


@dataclass
class Nuisances:
    """Cross-fitted pieces shared by every policy evaluated on one log."""

    folds: np.ndarray
    propensity: np.ndarray  # of the logged action
    propensity_logged: bool
    q_quality: np.ndarray  # (n, K)
    q_cost: np.ndarray | None  # (n, K)
    propensity_matrix: np.ndarray | None = None  # (n, K) when estimated
    floored: np.ndarray | None = None  # (n, K) entries raised to the floor, when estimated

    def floor_report(self, models: Sequence[str]) -> tuple[dict, str | None]:
        """How many rows had an estimated propensity raised to the floor, and a warning when any did."""
        if self.floored is None:
            return {}, None
        return floor_report(int(np.any(self.floored, axis=1).sum()), self.floored.sum(axis=0),
                            self.floored.shape[0], models)


def floor_report(rows: int, per_model: Sequence[int], n: int, models: Sequence[str]) -> tuple[dict, str | None]:
    """Diagnostics and warning of the propensity floor from counts: ``rows`` of the ``n`` rows had some
    model's estimated propensity raised to the floor, ``per_model[j]`` of them model j's (counts add up over
    parts of a log, so the out-of-core path reports the same)."""
    per = {str(m): int(c) for m, c in zip(models, per_model)}
    diag = {"propensity_floor": PROPENSITY_CLIP, "rows_floored": int(rows), "share_rows_floored": rows / n,
            "rows_floored_per_model": per}
    if rows == 0:
        return diag, None
    worst = max(per, key=per.get)
    return diag, (f"estimated propensities: {rows} of {n} rows ({rows / n:.1%}) had a model's probability "
                  f"below {PROPENSITY_CLIP:g} and raised to it (most: {worst}, {per[worst]} rows); the old "
                  "router almost never chose those models there, so IPS, SNIPS and ips-el (weights 1/p) are "
                  "biased for policies that send those prompts there; dr, sndr and dm rest on the outcome "
                  "model for them, so trust them only as far as it extrapolates, and log propensities")


def fit_nuisances(log: RoutingLog, *, n_folds: int = 5, seed: int = 0, learner: str = "linear",
                  folds: np.ndarray | None = None) -> Nuisances:
    """Cross-fit the outcome models (and the propensity model when propensities were not logged)."""
    if folds is None:
        folds = fold_ids(log.n, n_folds, groups=log.cluster, seed=seed)
    q_quality = crossfit_outcomes(log.X, log.action, log.reward, log.k, folds, learner=learner)
    if log.prices is not None:
        q_cost = log.price_matrix()
    elif log.cost is not None:
        q_cost = crossfit_outcomes(log.X, log.action, log.cost, log.k, folds, learner=learner)
    else:
        q_cost = None
    if log.propensity is not None:
        return Nuisances(folds, log.propensity, True, q_quality, q_cost)
    probs, floored = floor_propensities(crossfit_propensities_raw(log.X, log.action, log.k, folds))
    return Nuisances(folds, probs[np.arange(log.n), log.action], False, q_quality, q_cost, probs, floored)


def outcome_table(log: RoutingLog, nuis: Nuisances, lam: float | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """estimand → (logged outcome u, q̂ matrix) for quality, cost (if known) and utility (if λ given)."""
    out = {"quality": (log.reward, nuis.q_quality)}
    cost = log.logged_cost()
    if cost is not None:
        out["cost"] = (cost, nuis.q_cost)
    if lam is not None:
        if cost is None:
            raise ValueError("--lambda needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
        out["utility"] = (log.reward - lam * cost, nuis.q_quality - lam * nuis.q_cost)
    return out


def naive_value(u: np.ndarray, action: np.ndarray, pi: np.ndarray, *, name: str, estimand: str,
                level: float = 0.95, cluster=None) -> Estimate:
    """Mean logged outcome over rows where the logged model is the policy's (weighted by π(Aᵢ|Xᵢ))."""
    agree = pi[np.arange(pi.shape[0]), action]
    total = agree.sum()
    if total <= 0:
        nan = float("nan")
        return Estimate(name=name, estimand=estimand, method="naive", estimate=nan, se=nan, ci_low=nan,
                        ci_high=nan, level=level, n=int(u.shape[0]), diagnostics={"matched_rows": 0.0})
    theta = float(np.dot(agree, u) / total)
    psi = agree * (u - theta) / agree.mean()
    if np.max(np.abs(psi)) <= 1e-12 * max(1.0, abs(theta)):
        psi = np.zeros_like(psi)  # a constant outcome: rounding noise, not sampling error
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method="naive", level=level,
                                   cluster=cluster, diagnostics={"matched_rows": float(total)})


def evaluate_policies(log: RoutingLog, policies: Sequence[str], *, methods: Sequence[str] = ("dr", "el"),
                      lam: float | None = None, level: float = 0.95, n_folds: int = 5, seed: int = 0,
                      learner: str = "linear", nuisances: Nuisances | None = None, compare: bool = False,
                      estimands: Sequence[str] | None = None, naive: bool = True,
                      reward_range: tuple[float, float] = (0.0, 1.0)) -> EstimateTable:
    """Quality, cost and utility of each policy by the chosen OPE methods, with the naive answer beside.

    Parameters
    ----------
    log : a `RoutingLog` from `read_log`.
    policies : policy specs (``always:M``, ``column:C``, ``probs:P``, ``file:R.json``).
    methods : any of ``ips, snips, dm, dr, sndr, switch-dr, dros, el`` (``el``: IPS with an
        empirical-likelihood interval).
    lam : λ of the utility Y − λ·cost (no utility rows when None).
    compare : add contrasts of every policy against the first (paired on the log's rows).

    reward_range : (lo, hi), the bounds the quality reward cannot leave (default 0 to 1);
        the empirical-likelihood interval needs them. Its cost and utility rows
        need known costs too, so they appear only with a price table.

    With ``log.cluster`` (prompt ids) the Wald intervals are cluster-robust and
    the empirical likelihood is over clusters (`core.ope.el_ips_value`).

    Returns
    -------
    An `EstimateTable`; each estimate is named by its policy spec, its estimand is
    ``quality``, ``cost`` or ``utility``, and its method names the estimator (``naive`` for the naive answer).
    """
    methods = list(dict.fromkeys(methods))
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        raise ValueError(f"unknown method(s) {bad}; use {', '.join(ALL_METHODS)} or all")
    if not policies:
        raise ValueError("give at least one --policy")
    specs = [parse_policy(p) for p in policies]
    pis = {}
    for spec in specs:
        pi = policy_matrix(spec, log)
        check_support(pi, log, spec.label)
        pis[spec.label] = pi
    if "el" in methods:
        bad_row = check_reward_range(log, reward_range)
        if bad_row is not None:
            raise ValueError(f"reward {log.reward[bad_row]:g} in row {bad_row + 1} lies outside the reward range "
                             f"{reward_range[0]:g} to {reward_range[1]:g} that the empirical-likelihood interval "
                             "assumes")
    nuis = nuisances or fit_nuisances(log, n_folds=n_folds, seed=seed, learner=learner)
    table = outcome_table(log, nuis, lam)
    wanted = [e for e in (estimands or ESTIMANDS) if e in table]
    warnings = []
    if not nuis.propensity_logged:
        warnings.append("propensities were not logged: they were estimated from the features by a cross-fitted "
                        "logistic model, so every estimate also assumes the old router chose from these features only")
    floor_diag, floor_warning = nuis.floor_report(log.models)
    if floor_warning:
        warnings.append(floor_warning)
    cost_note = ("costs come from the price table, so each policy's cost is known given the prompts"
                 if log.prices is not None else None)
    estimates: list[Estimate] = []
    ope_methods = [m for m in methods if m != "el"]
    for label, pi in pis.items():
        for estimand in wanted:
            u, q = table[estimand]
            exact = estimand == "cost" and log.prices is not None  # known given the prompts: no rows needed
            rows = ope_estimates(u, log.action, nuis.propensity, pi, q, methods=ope_methods, name=label,
                                 estimand=estimand, level=level, cluster=log.cluster, action_names=log.models,
                                 check=False, min_contributions=0 if exact else MIN_CONTRIBUTIONS
                                 ) if ope_methods else []
            bounds = el_bounds(estimand, reward_range, log, lam)
            if "el" in methods and bounds is not None:
                rows.append(el_ips_value(u, log.action, nuis.propensity, pi, level=level, r_min=bounds[0],
                                         r_max=bounds[1], name=label, estimand=estimand, action_names=log.models,
                                         cluster=log.cluster))
            for est in rows:
                diag = {**est.diagnostics, "propensity": "logged" if nuis.propensity_logged else "estimated",
                        **floor_diag}
                if cost_note and estimand == "cost":
                    diag["note"] = cost_note
                estimates.append(est.with_(diagnostics=diag))
            if naive:
                estimates.append(naive_value(u, log.action, pi, name=label, estimand=estimand, level=level,
                                             cluster=log.cluster))
    if compare and len(pis) > 1:
        # Contrasts come from influence values, so from a method whose Wald interval is its whole uncertainty.
        plain = [m for m in ope_methods if m in ("dr", "sndr", "snips", "ips")]
        estimates += policy_contrasts(estimates, [s.label for s in specs], plain[:1] or ["dr"])
    return EstimateTable(estimates, warnings)


def el_bounds(estimand: str, reward_range: tuple[float, float], log: RoutingLog,
              lam: float | None) -> tuple[float, float] | None:
    """Bounds of the outcome for the EL interval, or None when they are not known (no EL row then).

    Quality: ``reward_range``. Utility: Y − λ·cost over the price table's range. Cost: none is needed
    with a price table (the cost of a policy is known), and a logged cost column has no stated bounds.
    """
    lo, hi = reward_range
    if estimand == "quality":
        return float(lo), float(hi)
    if estimand == "utility" and log.prices is not None and lam is not None:
        prices = log.price_matrix()
        return float(lo - lam * prices.max()), float(hi - lam * prices.min())
    return None


def check_reward_range(log: RoutingLog, reward_range: tuple[float, float]) -> int | None:
    """Index of the first row whose reward lies outside ``reward_range``, or None."""
    lo, hi = reward_range
    bad = np.flatnonzero((log.reward < lo) | (log.reward > hi))
    return int(bad[0]) if bad.size else None


def policy_contrasts(estimates: Sequence[Estimate], labels: Sequence[str], methods: Sequence[str]) -> list[Estimate]:
    """Every policy minus the first, per estimand and method, paired on the log's rows."""
    out = []
    for method in methods:
        by = {(e.name, e.estimand): e for e in estimates if e.method == method and e.influence is not None}
        for estimand in ESTIMANDS:
            base = by.get((labels[0], estimand))
            if base is None:
                continue
            for label in labels[1:]:
                other = by.get((label, estimand))
                if other is not None:
                    c = contrast(other, base, estimand=estimand, method=method)
                    out.append(c.with_(warnings=()))
    return out


def policy_scores(log: RoutingLog, nuis: Nuisances, policy: str, lam: float | None) -> dict[str, np.ndarray]:
    """estimand → per-row DR scores of one policy (their mean is its DR value)."""
    table = outcome_table(log, nuis, lam)
    pi = policy_matrix(parse_policy(policy), log)
    rows_all = np.arange(log.n)
    w = pi[rows_all, log.action] / nuis.propensity
    return {e: np.einsum("ij,ij->i", pi, q) + w * (u - q[rows_all, log.action]) for e, (u, q) in table.items()}
