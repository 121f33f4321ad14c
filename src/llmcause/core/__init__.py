"""The causal engine: estimators that return influence values, and inference from them.

It knows no LLM words and imports nothing from the stage packages.
"""

from .ate import aipw, aipw_scores, difference_in_means, ipw, regression_adjustment
from .crossfit import crossfit_predict, crossfit_proba, fold_ids, repeated_fold_ids
from .estimate import Estimate, EstimateTable
from .inference import (contrast, estimate_from_influence, holm, influence_se, linear_combination,
                        multiplier_bootstrap, pairwise_contrasts, percentile_bootstrap, simultaneous_intervals,
                        wald_interval)
from .pairwise import fit_bradley_terry
from .plr import partially_linear

__all__ = [
    "Estimate", "EstimateTable", "aipw", "aipw_scores", "contrast", "crossfit_predict", "crossfit_proba",
    "difference_in_means", "estimate_from_influence", "fit_bradley_terry", "fold_ids", "holm", "influence_se",
    "ipw", "linear_combination", "multiplier_bootstrap", "pairwise_contrasts", "partially_linear",
    "percentile_bootstrap", "regression_adjustment", "repeated_fold_ids", "simultaneous_intervals",
    "wald_interval",
]
