"""Has a policy's value changed over time? Estimates per time window, an exponentially
weighted estimate, tests of change and a change point (`core.drift` does the arithmetic).

Within a window, the DR value of the policy is the mean of the per-row DR
scores of that window's rows. The nuisances are cross-fitted on the whole log
from the features; they follow a drift only through them, so to let them
model time directly give the time column in ``--features`` as well as in
``--time``. Without it, a drift in how good each model is at a given prompt
shows up in the DR scores' residuals, which stay unbiased when the logged
propensities are right.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.drift import change_point, change_tests, regime_warning, window_labels, window_means
from ..core.estimate import Estimate, EstimateTable
from .evaluate import Nuisances, fit_nuisances, policy_scores
from .logs import RoutingLog
from .policies import parse_policy, policy_matrix

__all__ = ["drift_study", "policy_scores", "window_labels"]


def drift_study(log: RoutingLog, policies: Sequence[str], *, n_windows: int = 4, half_life: float = 1.0,
                estimands: Sequence[str] = ("quality",), lam: float | None = None, level: float = 0.95,
                n_folds: int = 5, seed: int = 0, learner: str = "linear",
                nuisances: Nuisances | None = None, change_points: bool = True) -> EstimateTable:
    """Per-window DR values, the exponentially weighted value, change tests and a change point for each policy.

    Estimates are named ``"<policy> [window j/W]"``, ``"<policy> [weighted]"``,
    ``"<policy> [last - first window]"``; the weighted estimate's diagnostics
    carry the χ² test of no change (``chi2``, ``df``, ``p_change``). Where that
    test rejects at ``level`` and one break explains the drift, ``"<policy>
    [change point]"`` and ``"<policy> [after - before break]"`` follow; a
    warning says when the windows' intervals do not overlap (the pooled value
    mixes regimes).
    """
    if log.time is None:
        raise ValueError("drift needs a time column (--time)")
    labels = window_labels(log.time, n_windows)
    nuis = nuisances or fit_nuisances(log, n_folds=n_folds, seed=seed, learner=learner)
    out: list[Estimate] = []
    warnings: list[str] = []
    for spec_text in policies:
        spec = parse_policy(spec_text)
        pi = policy_matrix(spec, log)
        scores = policy_scores(log, nuis, spec_text, lam)
        for estimand in estimands:
            if estimand not in scores:
                continue
            per = window_means(scores[estimand], labels, log.time, label=spec.label, estimand=estimand,
                               method="dr", level=level, cluster=log.cluster, time_is_date=log.time_is_date)
            for j in range(n_windows):
                matched = float(np.sum(pi[labels == j, log.action[labels == j]]))
                if matched < 50:
                    warnings.append(f"{spec.label}, window {j + 1}: only {matched:.3g} logged rows agree with the "
                                    "policy; that window's interval may under-cover")
            out += per
            tests = change_tests(per, spec.label, estimand, half_life)
            out += tests
            mixed = regime_warning(per, f"{spec.label} ({estimand})")
            if mixed:
                warnings.append(mixed)
            if change_points and tests[0].diagnostics["p_change"] < 1 - level:
                found, notes = change_point(scores[estimand], log.time, labels, label=spec.label,
                                            estimand=estimand, method="dr", level=level,
                                            time_is_date=log.time_is_date)
                out += found
                warnings += notes
    return EstimateTable(out, warnings)
