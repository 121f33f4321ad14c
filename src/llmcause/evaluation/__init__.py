"""Evaluation with biased LLM judges: what the judge's scores really say on the human scale.

Judge scores on every row, human (or oracle) labels on a subset: per-group
means of the label (`judge_means`: calibrated AIPW, PPI, PPI++, Rogan–Gladen),
comparisons paired by prompt and rankings with simultaneous intervals
(`compare_groups`, `rank_groups`), prediction-powered battles (`battle_study`),
judge bias audits (`position_bias`, `judge_agreement`; `swap_audit` asks a
judge model about battles in both orders, `score_missing` fills empty judge
scores from a judge model), label budgets and
active labelling (`plan_labels`, `active_labeling_plan`), worlds with known
truth (`judge_world`, `battle_world`) and shipped real data
(`load_cje_arena`, `load_arena_judges`).

Names are imported on first use, so `llmcause` starts fast.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "METHODS": "means", "judge_means": "means",
    "compare_groups": "compare", "rank_groups": "compare",
    "battle_study": "battles",
    "judge_agreement": "audit", "position_bias": "audit",
    "swap_audit": "swap", "score_missing": "scoring",
    "active_labeling_plan": "budget", "plan_labels": "budget",
    "load_arena_judges": "datasets", "load_cje_arena": "datasets",
    "battle_world": "simulate", "judge_world": "simulate",
}

__all__ = sorted(_EXPORTS)


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
