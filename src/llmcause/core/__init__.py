"""The causal engine: estimators that return influence values, and inference from them.

It knows no LLM words and imports nothing from the stage packages.
"""

from .._lazy import lazy_exports

_WHERE = {"aipw": "ate", "aipw_scores": "ate", "difference_in_means": "ate", "ipw": "ate",
          "regression_adjustment": "ate", "crossfit_predict": "crossfit", "crossfit_proba": "crossfit",
          "fold_ids": "crossfit", "repeated_fold_ids": "crossfit", "Estimate": "estimate",
          "EstimateTable": "estimate", "contrast": "inference", "estimate_from_influence": "inference",
          "holm": "inference", "influence_se": "inference", "linear_combination": "inference",
          "multiplier_bootstrap": "inference", "pairwise_contrasts": "inference",
          "percentile_bootstrap": "inference", "simultaneous_intervals": "inference", "wald_interval": "inference",
          "fit_bradley_terry": "pairwise", "partially_linear": "plr"}

__all__ = [
    "Estimate", "EstimateTable", "aipw", "aipw_scores", "contrast", "crossfit_predict", "crossfit_proba",
    "difference_in_means", "estimate_from_influence", "fit_bradley_terry", "fold_ids", "holm", "influence_se",
    "ipw", "linear_combination", "multiplier_bootstrap", "pairwise_contrasts", "partially_linear",
    "percentile_bootstrap", "regression_adjustment", "repeated_fold_ids", "simultaneous_intervals",
    "wald_interval",
]


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
