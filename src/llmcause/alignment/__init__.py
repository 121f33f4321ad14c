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

from .._lazy import lazy_exports

_WHERE = {"read_arena_battles": "arena", "winner_outcome": "arena", "Battles": "battles",
          "prepare_battles": "battles", "arena_votes_long": "datasets", "load_arena_battles": "datasets",
          "battle_style_features": "features", "normalized_difference": "features", "style_counts": "features",
          "text_features": "features", "GroupStyleEffects": "heterogeneity",
          "style_effects_by_group": "heterogeneity", "lc_winrates": "lc_winrate",
          "length_controlled_winrate": "lc_winrate", "bt_marginal_effect": "length_effect",
          "dml_length_effect": "length_effect", "length_effects": "length_effect",
          "naive_length_slope": "length_effect", "RateResult": "rate", "RewardModel": "rate", "Rewriter": "rate",
          "rate_effects": "rate", "LengthSandboxReward": "rewards", "NgramRewardModel": "rewards",
          "LengthRewriter": "rewriters", "MarkdownRewriter": "rewriters", "simulate_alpaca": "simulate",
          "simulate_battles": "simulate", "simulate_responses": "simulate", "StyleStudy": "style",
          "pair_frequency_weights": "style", "style_control": "style", "style_control_battles": "style"}

__all__ = [
    "Battles", "GroupStyleEffects", "LengthRewriter", "LengthSandboxReward", "MarkdownRewriter", "NgramRewardModel",
    "RateResult", "RewardModel", "Rewriter", "StyleStudy", "arena_votes_long", "battle_style_features",
    "bt_marginal_effect", "dml_length_effect", "lc_winrates", "length_controlled_winrate", "length_effects",
    "load_arena_battles", "naive_length_slope", "normalized_difference", "pair_frequency_weights",
    "prepare_battles", "rate_effects", "read_arena_battles", "simulate_alpaca", "simulate_battles",
    "simulate_responses", "style_control", "style_control_battles", "style_counts", "style_effects_by_group",
    "text_features", "winner_outcome",
]


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
