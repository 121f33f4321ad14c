"""A router's value on the traffic you will serve: off-policy values transported to a target population.

Estimand: V_T(π) = E_T[Σₐ π(a|X) E[Y | X, A=a]], the value of policy π over
the target prompts (next month's traffic), which share the covariates with
the log but were not routed or scored. The per-row DR scores φᵢ of π (the
log's cross-fitted nuisances) have E[φ | X] = the policy's value at X; they
are transported by `core.transport` (a DR estimator with a cross-fitted
outcome model and a cross-fitted source-vs-target density ratio), as in Kato,
Uehara & Yasui 2020 for off-policy evaluation under covariate shift.

Assumptions: those of the log's DR values, plus covariate shift only (how
good each model is at a prompt with covariates X does not change between the
log and the target) and overlap of X between them.
"""

from __future__ import annotations

from typing import Sequence

from ..core.estimate import Estimate, EstimateTable
from ..core.transport import fit_covariate_shift, transported_mean
from ..io import DataError, read_table, shared_covariates, source_of
from .evaluate import Nuisances, policy_scores
from .logs import RoutingLog
from .policies import parse_policy


def transport_policies(log: RoutingLog, target, policies: Sequence[str], *, covariates: Sequence[str],
                       nuisances: Nuisances, estimands: Sequence[str] = ("quality",), lam: float | None = None,
                       n_folds: int = 5, seed: int = 0, level: float = 0.95) -> EstimateTable:
    """Each policy's DR value per estimand transported to the ``target`` rows (method ``dr+transport``)."""
    tgt = read_table(target)
    Xs, Xt, _ = shared_covariates(log.frame, tgt, covariates)
    try:
        shift = fit_covariate_shift(Xs, Xt, n_folds=n_folds, seed=seed)
    except ValueError as exc:
        raise DataError(f"{source_of(tgt)}: {exc}") from None
    out: list[Estimate] = []
    warnings: list[str] = []
    for policy in policies:
        label = parse_policy(policy).label
        scores = policy_scores(log, nuisances, policy, lam)
        for estimand in estimands:
            if estimand not in scores:
                continue
            est = transported_mean(scores[estimand], shift, name=label, estimand=f"{estimand} on the target",
                                   method="dr+transport", level=level, cluster=log.cluster)
            out.append(est)
            warnings.extend(est.warnings)
    return EstimateTable(out, list(dict.fromkeys(warnings)))
