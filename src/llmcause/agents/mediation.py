"""What a tool is worth, directly and through what it returns: mediation by executed counterfactuals.

Treatment A: the tool is offered (1) or not (0). Mediator M: the tool's
outputs in the episode. Outcome Y: success (positive return). For each
environment seed and replicate, three runs share the agent's random stream
(common random numbers):

- Y(0): the tool off; its outputs M(0) are recorded ("not available" for
  every call, in a world where an absent tool answers that);
- Y(1): the tool on;
- Y(1, M(0)): the tool on, but each call returns what it returned in the
  Y(0) run (calls beyond those get the "not available" answer): the nested
  counterfactual, executed rather than modelled.

Total effect E[Y(1) − Y(0)] = natural direct effect E[Y(1, M(0)) − Y(0)] +
natural indirect effect E[Y(1) − Y(1, M(0))] (Pearl 2001). Because the
nested counterfactual is run, no sequential-ignorability assumption is
needed; what is assumed is that the environment can replay a tool's outputs
(`set_tool(tool, mode, outputs)` and `tool_outputs(tool)`) and is otherwise
deterministic given the seed. Intervals: t intervals with seeds as clusters.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ..core.estimate import EstimateTable
from ..core.inference import estimate_from_influence
from ..io import DataError
from .replay import rollout


def check_tool_env(env: Any, tool: str) -> None:
    missing = [m for m in ("set_tool", "tool_outputs") if not callable(getattr(env, m, None))]
    if missing:
        raise DataError(f"the environment {type(env).__name__} has no {' or '.join(missing)} method: mediation needs "
                        "set_tool(tool, mode, outputs) with modes on, off and replay, and tool_outputs(tool)")
    try:
        env.set_tool(tool, "on")
    except ValueError as exc:
        raise DataError(f"--tool {tool!r}: {exc}") from None


def tool_mediation(env_factory: Callable[[], Any], agent: Any, seeds: Sequence[int], *, tool: str = "search",
                   replicates: int = 1, level: float = 0.95, seed: int = 0,
                   advance: Callable[[int], None] = lambda k: None) -> EstimateTable:
    """Total, natural direct and natural indirect effect of offering ``tool`` on success (see module docstring)."""
    env = env_factory()
    check_tool_env(env, tool)
    rows = []
    for i, s in enumerate(seeds):
        for r in range(replicates):
            rng = lambda: np.random.default_rng([seed, i, r])  # the same agent stream in all three runs
            env.set_tool(tool, "off")
            y0 = _run(env, agent, int(s), rng())
            m0 = env.tool_outputs(tool)
            env.set_tool(tool, "on")
            y1 = _run(env, agent, int(s), rng())
            env.set_tool(tool, "replay", m0)
            y10 = _run(env, agent, int(s), rng())
            rows.append((i, y0, y1, y10))
            advance(3)
    env.set_tool(tool, "on")
    a = np.asarray(rows, float)
    cluster, y0, y1, y10 = a[:, 0], a[:, 1], a[:, 2], a[:, 3]
    out = []
    for name, d in (("total", y1 - y0), ("direct", y10 - y0), ("indirect", y1 - y10)):
        theta = float(d.mean())
        out.append(estimate_from_influence(theta, d - theta, name=name, estimand=f"effect of offering {tool} on "
                                           "success", method="executed counterfactuals", level=level,
                                           cluster=cluster if replicates > 1 else None, keep_influence=False,
                                           diagnostics={"seeds": len(seeds), "replicates": replicates,
                                                        "p_tool_on": float(y1.mean()),
                                                        "p_tool_off": float(y0.mean()),
                                                        "p_on_with_off_outputs": float(y10.mean())}))
    return EstimateTable(out)


def _run(env, agent, seed: int, rng) -> float:
    obs = env.reset(seed)
    reward, _ = rollout(env, agent, obs, [], rng)
    return float(reward > 0)
