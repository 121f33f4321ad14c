"""Agents: which step made an agent fail, what a tool is worth, what a new policy would do.

- `Environment`, `Agent`: the plug-in protocol; `resolve_env`, `resolve_agent`: specs
  (``python:module:attr`` or a built-in world name), `register_scheme` for more;
- `read_traces`, `write_traces`: trajectory JSONL with validation;
- `replay_prefix`, `rollout`: deterministic replay, checked against the log;
- `attribute_failures`: the decisive step of failed episodes by counterfactual replay;
- `tool_mediation`: total, natural direct and natural indirect effect of a tool, executed;
- `sequential_ope`: value of a new policy from logged trajectories (IS, PDIS, WPDIS, DR);
- `ToolUseWorld`, `ScriptedToolAgent`, `simulate_tool_use`: a world with known truth.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_WHERE = {"Agent": "protocol", "Environment": "protocol", "register_scheme": "protocol", "resolve_agent": "protocol",
          "resolve_env": "protocol", "Episode": "traces", "Step": "traces", "read_traces": "traces",
          "write_traces": "traces", "replay_prefix": "replay", "rollout": "replay", "run_episode": "replay",
          "NondeterministicEnvironment": "replay", "ToolUseWorld": "simulate", "ScriptedToolAgent": "simulate",
          "simulate_tool_use": "simulate", "attribute_failures": "attribution", "tool_mediation": "mediation",
          "sequential_ope": "ope"}

__all__ = sorted(_WHERE)


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
