"""Designs of proxy-run interventions on the data mixture. The uniform mix is always an arm.

A design is a DataFrame with one row per run: ``run`` (1-based id),
``kind``, ``arm``, ``varied`` (the domain an arm removes, one-at-a-time
designs only), ``contrast`` (``replacement`` or ``augmentation``, ditto),
``mixture`` (id of the mixture, shared by its seeds), ``seed``, ``budget``,
``order``, ``block``, and one weight column ``w:<domain>`` per domain.

- `dirichlet_swarm`: RegMix-style random mixtures, w ~ Dir(α·p̃) with α drawn
  from 15 log-spaced values in [0.1, 5] and p̃ ∝ p^0.5 (Liu et al. 2025,
  arXiv 2407.01492); weights below 2e-4 are set to 0.
- `one_at_a_time`: a base mix (default uniform) and, for each domain j,
  the base without j at the same budget (replacement: the others fill in
  proportionally) and the base without j at budget·(1 − w_j) (augmentation:
  the others keep their bytes). Effects of adding j are base − arm.
- `inclusion_design`: datamodels-style random subsets (Ilyas et al. 2022):
  each domain is in with probability 1/2, the included ones weigh equally,
  the budget is fixed.
Each mixture is run with every seed, so arms are paired by seed.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .corpus import load_corpus
from .proxy import ProxyConfig

__all__ = ["dirichlet_swarm", "one_at_a_time", "inclusion_design", "weight_columns", "design_domains",
           "make_design", "WEIGHT_PREFIX", "DESIGN_KINDS"]

WEIGHT_PREFIX = "w:"
DESIGN_KINDS = ("dirichlet", "one-at-a-time", "inclusion")
ZERO_BELOW = 2e-4


def weight_columns(domains: Sequence[str]) -> list[str]:
    return [f"{WEIGHT_PREFIX}{d}" for d in domains]


def design_domains(frame: pd.DataFrame) -> list[str]:
    """Domains of a design or results table: its ``w:<domain>`` columns."""
    return [c[len(WEIGHT_PREFIX):] for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)]


def _check(domains: Sequence[str], seeds: Sequence[int] | int) -> tuple[list[str], list[int]]:
    domains = list(domains)
    if len(domains) < 2:
        raise ValueError("a mixture design needs at least two domains")
    if len(set(domains)) != len(domains):
        raise ValueError("a domain is listed twice")
    load_corpus().check_domains(domains)
    seed_list = list(range(int(seeds))) if isinstance(seeds, (int, np.integer)) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("a design needs at least one seed")
    return domains, seed_list


def _frame(kind: str, mixtures: list[dict], domains: list[str], seeds: list[int], config: ProxyConfig) -> pd.DataFrame:
    rows = []
    for m_id, mix in enumerate(mixtures, start=1):
        for seed in seeds:
            w = np.asarray(mix["weights"], dtype=float)
            row = {"kind": kind, "arm": mix["arm"], "varied": mix.get("varied", ""),
                   "contrast": mix.get("contrast", ""), "mixture": m_id, "seed": seed,
                   "budget": int(mix.get("budget", config.budget)), "order": config.order, "block": config.block}
            if "alpha" in mix:
                row["alpha"] = mix["alpha"]
            row.update({c: float(v) for c, v in zip(weight_columns(domains), w)})
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame.insert(0, "run", np.arange(1, len(frame) + 1))
    return frame


def _uniform(domains: Sequence[str]) -> np.ndarray:
    return np.full(len(domains), 1.0 / len(domains))


def dirichlet_swarm(domains: Sequence[str], n_mixtures: int, seeds: Sequence[int] | int = 1,
                    config: ProxyConfig = ProxyConfig(), prior: Mapping[str, float] | None = None,
                    design_seed: int = 0) -> pd.DataFrame:
    """A RegMix swarm of ``n_mixtures`` random mixtures plus the uniform mix, each run with every seed.

    ``prior`` gives the domains' natural token shares p (default equal); draws
    with any w_j > 15·p_j are rejected, as in RegMix.
    """
    domains, seeds = _check(domains, seeds)
    if n_mixtures < 1:
        raise ValueError("a swarm needs at least one mixture")
    p = np.array([float(prior[d]) for d in domains]) if prior else _uniform(domains)
    if np.any(p <= 0):
        raise ValueError("prior shares must be positive")
    p = p / p.sum()
    base = np.sqrt(p) / np.sqrt(p).sum()
    alphas = np.logspace(np.log10(0.1), np.log10(5.0), 15)
    rng = np.random.default_rng(design_seed)
    mixtures = [{"arm": "uniform", "weights": _uniform(domains)}]
    while len(mixtures) < n_mixtures + 1:
        alpha = float(alphas[rng.integers(len(alphas))])
        w = rng.dirichlet(alpha * base * len(domains))
        w[w < ZERO_BELOW] = 0.0
        if w.sum() <= 0 or np.any(w > 15 * p):
            continue
        w = w / w.sum()
        mixtures.append({"arm": f"swarm-{len(mixtures)}", "weights": w, "alpha": alpha})
    mixtures[0]["alpha"] = float("nan")
    return _frame("dirichlet", mixtures, domains, seeds, config)


def one_at_a_time(domains: Sequence[str], seeds: Sequence[int] | int = 3, config: ProxyConfig = ProxyConfig(),
                  base: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Base mix, and for each domain the base without it (replacement and augmentation arms)."""
    domains, seeds = _check(domains, seeds)
    b = np.array([float(base.get(d, 0.0)) for d in domains]) if base else _uniform(domains)
    if np.any(b < 0) or abs(b.sum() - 1) > 1e-6:
        raise ValueError("the base weights must be non-negative and sum to 1")
    if set(base or {}) - set(domains):
        raise ValueError("the base names a domain that is not in the design")
    is_uniform = np.allclose(b, _uniform(domains))
    mixtures = [{"arm": "uniform" if is_uniform else "base", "weights": b}]
    if not is_uniform:
        mixtures.append({"arm": "uniform", "weights": _uniform(domains)})
    for j, d in enumerate(domains):
        if b[j] <= 0 or b[j] >= 1:
            continue  # nothing to remove, or nothing left without it
        rest = b.copy()
        rest[j] = 0.0
        rest = rest / rest.sum()
        kept = int(round(config.budget * (1.0 - b[j])))
        mixtures.append({"arm": f"without {d}", "weights": rest, "varied": d, "contrast": "replacement"})
        mixtures.append({"arm": f"without {d}, fewer bytes", "weights": rest, "varied": d,
                         "contrast": "augmentation", "budget": max(kept, 1)})
    return _frame("one-at-a-time", mixtures, domains, seeds, config)


def inclusion_design(domains: Sequence[str], n_subsets: int, seeds: Sequence[int] | int = 1,
                     config: ProxyConfig = ProxyConfig(), design_seed: int = 0) -> pd.DataFrame:
    """``n_subsets`` random domain subsets (each domain in with probability 1/2) plus the uniform mix."""
    domains, seeds = _check(domains, seeds)
    if n_subsets < 1:
        raise ValueError("an inclusion design needs at least one subset")
    rng = np.random.default_rng(design_seed)
    mixtures = [{"arm": "uniform", "weights": _uniform(domains)}]
    while len(mixtures) < n_subsets + 1:
        mask = rng.random(len(domains)) < 0.5
        if not mask.any():
            continue
        w = mask / mask.sum()
        label = "+".join(d for d, m in zip(domains, mask) if m)
        mixtures.append({"arm": f"subset {label}", "weights": w})
    return _frame("inclusion", mixtures, domains, seeds, config)


def make_design(kind: str, domains: Sequence[str], *, runs: int = 32, seeds: int = 3,
                config: ProxyConfig = ProxyConfig(), design_seed: int = 0,
                base: Mapping[str, float] | None = None) -> pd.DataFrame:
    """A design by kind name (``dirichlet``, ``one-at-a-time``, ``inclusion``)."""
    if kind == "dirichlet":
        return dirichlet_swarm(domains, runs, seeds, config, design_seed=design_seed)
    if kind == "one-at-a-time":
        return one_at_a_time(domains, seeds, config, base=base)
    if kind == "inclusion":
        return inclusion_design(domains, runs, seeds, config, design_seed=design_seed)
    raise ValueError(f"unknown design kind {kind!r}; use one of: {', '.join(DESIGN_KINDS)}")


