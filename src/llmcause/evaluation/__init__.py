"""Evaluation with biased LLM judges: what the judge's scores really say on the human scale.

Judge scores on every row, human (or oracle) labels on a subset: per-group
means of the label (`judge_means`: calibrated AIPW, PPI, PPI++, Rogan–Gladen),
comparisons paired by prompt and rankings with simultaneous intervals
(`compare_groups`, `rank_groups`), prediction-powered battles (`battle_study`),
judge bias audits (`position_bias`, `judge_agreement`), label budgets and
active labelling (`plan_labels`, `active_labeling_plan`), worlds with known
truth (`judge_world`, `battle_world`) and shipped real data
(`load_cje_arena`, `load_arena_judges`).
"""

from .audit import judge_agreement, position_bias
from .battles import battle_study
from .budget import active_labeling_plan, plan_labels
from .compare import compare_groups, rank_groups
from .datasets import load_arena_judges, load_cje_arena
from .means import METHODS, judge_means
from .simulate import battle_world, judge_world

__all__ = [
    "METHODS", "active_labeling_plan", "battle_study", "battle_world", "compare_groups", "judge_agreement",
    "judge_means", "judge_world", "load_arena_judges", "load_cje_arena", "plan_labels", "position_bias",
    "rank_groups",
]
