"""Model strengths and style effects over time: the style-controlled Bradley–Terry fit per time window.

Battles are cut into consecutive windows of equal numbers of battles (by
time); each window gets its own style-controlled fit (`style.style_control`),
so the windows' estimates are independent. Per model and per style feature,
`core.drift` adds the exponentially weighted estimate, the last-minus-first
change and the χ² test of any change, and warns when the windows' intervals
part (a pooled leaderboard then mixes regimes). Strengths are centred within
each window, so a model's strength over time is relative to that window's
field. No change point here: a window's strength is a refit, not a mean of
per-battle scores.
"""

from __future__ import annotations

import numpy as np

from ..core.drift import change_tests, format_time, regime_warning, window_labels
from ..core.estimate import Estimate, EstimateTable
from .battles import Battles
from .style import style_control


def style_over_time(battles: Battles, time: np.ndarray, *, time_is_date: bool = False, n_windows: int = 4,
                    half_life: float = 1.0, weights: str | None = None, penalty: float = 0.0,
                    level: float = 0.95) -> EstimateTable:
    """Per-window style-controlled strengths and style effects, with change tests (``time``: one per battle).

    Estimates are named ``"<model or feature> [window j/W]"``, ``"... [weighted]"`` and
    ``"... [last - first window]"`` (method ``style-controlled``).
    """
    time = np.asarray(time, dtype=float)
    if time.shape[0] != battles.n:
        raise ValueError("one time per battle is needed")
    labels = window_labels(time, n_windows)
    series: dict[tuple[str, str], list[Estimate]] = {}
    for j in range(n_windows):
        take = labels == j
        sub = battles.subset(take)
        try:
            study = style_control(sub.model_a, sub.model_b, sub.outcome, sub.style.values, sub.style.names,
                                  cluster=sub.cluster, weights=weights, penalty=penalty, level=level, rows=sub.rows)
        except ValueError as exc:
            raise ValueError(f"--time window {j + 1}/{n_windows} ({sub.n} battles): {exc}") from None
        span = {"from": format_time(time[take].min(), time_is_date), "to": format_time(time[take].max(), time_is_date),
                "battles": int(take.sum())}
        for e in [*study.strengths(), *study.style_effects()]:
            series.setdefault((e.name, e.estimand), []).append(
                e.with_(name=f"{e.name} [window {j + 1}/{n_windows}]", diagnostics={**e.diagnostics, **span}))
    out: list[Estimate] = []
    warnings: list[str] = []
    for (name, estimand), per in series.items():
        out += per
        if len(per) < n_windows:
            warnings.append(f"{name}: absent from some time windows, so no test of change")
            continue
        out += change_tests(per, name, estimand, half_life, method="style-controlled")
        mixed = regime_warning(per, f"{name} ({estimand})")
        if mixed:
            warnings.append(mixed)
    return EstimateTable(out, warnings)
