"""Worlds with known truth for the pretraining stage.

Designed proxy runs need no simulator: `train_proxy` really trains, so the
designs in `designs` are real interventions. What cannot be run here is a
history of big training runs, so `past_runs` simulates a table of them in
which the mixture is confounded by scale: bigger runs (more parameters, more
tokens) used more of the treatment domain (e.g. code), and scale also lowers
every loss. The true effect of the treatment weight on each held-out loss is
known (a replacement slope: the treatment's weight grows, the other domains
shrink in proportion), so an adjusted estimate can be checked against it
and the naive regression slope shown to be off.

Structural model, for held-out domain d::

    L_d = a_d + 1.8·exp(−0.35·(log_tokens − 17)) + 0.9·exp(−0.3·(log_params − 16))
          + τ_d·w_t − 1.5·r_d + ε,    ε ~ N(0, noise²)

with w_t = 0.05 + 0.3·sigmoid(z_params + 0.5 z_tokens + η), η ~ N(0, 1), and the other
domains' composition r ~ Dirichlet(5) independent of scale (r_d = 0 for the
treatment domain). The loss falls when a run is bigger and when a domain's
own share rises; τ_t < 0 (the domain helps its own loss), and τ_d for the
other domains mixes transfer and dilution, like the measured proxy effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .campaign import LOSS_PREFIX
from .designs import WEIGHT_PREFIX

__all__ = ["PastRunsWorld", "past_runs", "DEFAULT_EFFECTS"]

DEFAULT_DOMAINS = ("code", "techdocs", "legal", "drama", "quotes", "math")
DEFAULT_EFFECTS = {"code": -1.2, "techdocs": -0.2, "legal": 0.15, "drama": 0.3, "quotes": 0.2, "math": 0.25}
BASE_LOSS = {"code": 1.9, "techdocs": 1.7, "legal": 1.3, "drama": 2.2, "quotes": 2.3, "math": 1.1}


@dataclass(frozen=True)
class PastRunsWorld:
    """A table of past runs with its truth: per held-out domain, the effect of the treatment weight."""

    table: pd.DataFrame
    treatment: str
    confounders: list[str]
    true_effects: Mapping[str, float] = field(default_factory=dict)  # "<treatment>:<domain>" -> slope

    @property
    def weight_columns(self) -> list[str]:
        return [c for c in self.table.columns if c.startswith(WEIGHT_PREFIX)]

    @property
    def loss_columns(self) -> list[str]:
        return [c for c in self.table.columns if c.startswith(LOSS_PREFIX)]


def past_runs(n_runs: int = 300, seed: int = 0, *, treatment: str = "code",
              domains: Sequence[str] = DEFAULT_DOMAINS, effects: Mapping[str, float] | None = None,
              noise: float = 0.03) -> PastRunsWorld:
    """Simulate ``n_runs`` past training runs whose mixture is confounded by scale."""
    if treatment not in domains:
        raise ValueError(f"the treatment {treatment!r} is not one of the domains")
    if n_runs < 10:
        raise ValueError("simulate at least 10 runs")
    effects = dict(DEFAULT_EFFECTS if effects is None else effects)
    rng = np.random.default_rng(seed)
    log_params = rng.uniform(np.log(1e6), np.log(1e9), n_runs)
    log_tokens = log_params + np.log(20.0) + rng.normal(0.0, 0.4, n_runs)
    z_p = (log_params - log_params.mean()) / log_params.std()
    z_t = (log_tokens - log_tokens.mean()) / log_tokens.std()
    w_t = 0.05 + 0.3 / (1.0 + np.exp(-(1.0 * z_p + 0.5 * z_t + rng.normal(0.0, 1.0, n_runs))))
    others = [d for d in domains if d != treatment]
    rest = rng.dirichlet(np.full(len(others), 5.0), size=n_runs)
    table = {"run": np.arange(1, n_runs + 1), "log_params": log_params, "log_tokens": log_tokens,
             WEIGHT_PREFIX + treatment: w_t}
    for j, d in enumerate(others):
        table[WEIGHT_PREFIX + d] = (1.0 - w_t) * rest[:, j]
    scale = 1.8 * np.exp(-0.35 * (log_tokens - 17.0)) + 0.9 * np.exp(-0.3 * (log_params - 16.0))
    truth = {}
    for d in domains:
        own = rest[:, others.index(d)] if d in others else 0.0
        tau = float(effects.get(d, 0.0))
        loss = BASE_LOSS.get(d, 2.0) + scale + tau * w_t - 1.5 * own + rng.normal(0.0, noise, n_runs)
        table[LOSS_PREFIX + d] = loss
        truth[f"{treatment}:{d}"] = tau
    truth[f"{treatment}:mean"] = float(np.mean([truth[f"{treatment}:{d}"] for d in domains]))
    return PastRunsWorld(pd.DataFrame(table), treatment, ["log_params", "log_tokens"], truth)
