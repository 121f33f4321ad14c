"""Style and preferences: do annotators prefer the model, or its longer answers?

- `style_control` / `style_control_battles`: style-controlled Bradley–Terry
  strengths beside plain ones, style effects in log-odds per SD, Elo-scale
  leaderboards with ranks with uncertainty.
- `length_effects`: the effect of the length gap on the vote: naive, from the
  style-controlled model, and by partially linear DML with content controls.
- `style_effects_by_group`: style effects per subgroup and tests of difference.
- `length_controlled_winrate` / `lc_winrates`: AlpacaEval-style LC win rates
  with CIs that include the GLM's parameter uncertainty.
- `rate_effects`: RATE rewrite interventions on a reward model (`Rewriter`,
  `RewardModel` protocols; `MarkdownRewriter`, `LengthRewriter`;
  `LengthSandboxReward`, `NgramRewardModel`).
- `prepare_battles`, `read_arena_battles`, `text_features`: data edges.
- `simulate_battles`, `simulate_alpaca`, `simulate_responses`: worlds with known truth.
- `load_arena_battles`: 552 real Arena battles (features and votes; MIT).
"""

from __future__ import annotations

from .arena import read_arena_battles, winner_outcome
from .battles import Battles, prepare_battles
from .datasets import arena_votes_long, load_arena_battles
from .features import battle_style_features, normalized_difference, style_counts, text_features
from .heterogeneity import GroupStyleEffects, style_effects_by_group
from .lc_winrate import lc_winrates, length_controlled_winrate
from .length_effect import bt_marginal_effect, dml_length_effect, length_effects, naive_length_slope
from .rate import RateResult, RewardModel, Rewriter, rate_effects
from .rewards import LengthSandboxReward, NgramRewardModel
from .rewriters import LengthRewriter, MarkdownRewriter
from .simulate import simulate_alpaca, simulate_battles, simulate_responses
from .style import StyleStudy, pair_frequency_weights, style_control, style_control_battles

__all__ = [
    "Battles", "GroupStyleEffects", "LengthRewriter", "LengthSandboxReward", "MarkdownRewriter", "NgramRewardModel",
    "RateResult", "RewardModel", "Rewriter", "StyleStudy", "arena_votes_long", "battle_style_features",
    "bt_marginal_effect", "dml_length_effect", "lc_winrates", "length_controlled_winrate", "length_effects",
    "load_arena_battles", "naive_length_slope", "normalized_difference", "pair_frequency_weights",
    "prepare_battles", "rate_effects", "read_arena_battles", "simulate_alpaca", "simulate_battles",
    "simulate_responses", "style_control", "style_control_battles", "style_counts", "style_effects_by_group",
    "text_features", "winner_outcome",
]
