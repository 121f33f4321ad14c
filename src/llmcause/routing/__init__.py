"""Routing under a cost budget, learnt and evaluated from logged data.

The question: a router sent each prompt to one of several models; the log
holds the prompt, the model chosen (and how likely that choice was), the
quality of the answer and its cost. What would another router have achieved,
which prompts gain from a bigger model, and which router is best for a budget?

- `read_log`: validated logs (features from columns and prompt text, no network);
- `evaluate_policies`: quality, cost and utility of routing policies, off-policy (`core.ope`);
- `benefit_study`: the DR-learner for per-prompt benefit, with a calibration check;
- `study_router`: budgeted routers learnt and valued out of fold, the quality-cost frontier;
- `drift_study`: values per time window, exponentially weighted, and change tests;
- `routellm_world`, `synthetic_world`: logs with known truth.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {"benefit_study": "benefit", "drift_study": "drift", "evaluate_policies": "evaluate",
          "fit_nuisances": "evaluate", "study_router": "learn", "RoutingLog": "logs", "read_log": "logs",
          "parse_policy": "policies", "policy_matrix": "policies", "Router": "router", "load_router": "router",
          "routellm_world": "simulate", "synthetic_world": "simulate"}

__all__ = sorted(_WHERE)


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
