"""The proxy training run: train a Kneser–Ney byte model on a mixture, score every held-out domain.

`train_proxy(weights, seed, config)` is the experiment: draw ``budget`` bytes
from the corpus with the mixture ``weights`` (blocks drawn with common
random numbers per (seed, domain)), fit an interpolated Kneser–Ney model of
order ``config.order``, and return held-out bits per byte for every domain.
`proxy_run(params)` is the same as a pure function of JSON parameters for
`llmcause.runs`; `run_params` builds those parameters, including the corpus
fingerprint, so that a run's key changes whenever the corpus does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Mapping

import numpy as np

from .corpus import DEFAULT_BLOCK, Corpus, load_corpus, mixture_blocks
from .ngram import MAX_ORDER, KneserNeyLM, QuerySet

__all__ = ["ProxyConfig", "train_proxy", "proxy_run", "run_params", "check_weights", "WEIGHT_TOLERANCE"]

WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class ProxyConfig:
    """How a proxy run trains: n-gram order, training bytes, block size, discount (None: estimated)."""

    order: int = 5
    budget: int = 1_000_000
    block: int = DEFAULT_BLOCK
    discount: float | None = None

    def __post_init__(self):
        if not isinstance(self.order, (int, np.integer)) or not 1 <= self.order <= MAX_ORDER:
            raise ValueError(f"order must be an integer from 1 to {MAX_ORDER}, got {self.order!r}")
        if not isinstance(self.budget, (int, np.integer)) or self.budget < 1:
            raise ValueError(f"budget must be a positive number of bytes, got {self.budget!r}")
        if not isinstance(self.block, (int, np.integer)) or self.block < 16:
            raise ValueError(f"block must be at least 16 bytes, got {self.block!r}")
        if self.discount is not None and not 0.0 < self.discount < 1.0:
            raise ValueError("discount must be in (0, 1)")

    def scaled(self, factor: float) -> "ProxyConfig":
        """The same configuration with the budget multiplied by ``factor`` (augmentation arms)."""
        return ProxyConfig(self.order, max(1, int(round(self.budget * factor))), self.block, self.discount)


def check_weights(weights: Mapping[str, float], corpus: Corpus | None = None) -> dict[str, float]:
    """Validated mixture weights: known domains, non-negative, summing to 1; zero weights dropped."""
    corpus = corpus or load_corpus()
    corpus.check_domains(list(weights))
    out = {}
    for d, w in weights.items():
        w = float(w)
        if not math.isfinite(w) or w < 0:
            raise ValueError(f"weight of {d!r} must be a non-negative number, got {w!r}")
        if w > 0:
            out[d] = w
    total = sum(out.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"the weights sum to {total:.6g}, not 1")
    return {d: out[d] for d in sorted(out)}


@lru_cache(maxsize=8)
def _heldout_queries(fingerprint: str, order: int) -> QuerySet:
    corpus = load_corpus()
    return QuerySet.from_texts(dict(corpus.heldout), order)


def train_proxy(weights: Mapping[str, float], seed: int, config: ProxyConfig = ProxyConfig()) -> dict[str, float]:
    """Held-out bits per byte of every domain after training on the mixture (one seed).

    Parameters
    ----------
    weights : domain → weight (non-negative, summing to 1; missing domains weigh 0).
    seed : selects the training blocks (one random stream per (seed, domain)).
    config : order, byte budget, block size and discount.
    """
    corpus = load_corpus()
    weights = check_weights(weights, corpus)
    blocks = mixture_blocks(corpus, weights, config.budget, int(seed), config.block)
    model = KneserNeyLM(config.order, config.discount).fit(blocks)
    return model.bits_per_byte(_heldout_queries(corpus.fingerprint, config.order))


def run_params(weights: Mapping[str, float], seed: int, config: ProxyConfig) -> dict:
    """JSON parameters of one proxy run; everything that determines its result, including the corpus."""
    corpus = load_corpus()
    return {"weights": check_weights(weights, corpus), "seed": int(seed), **asdict(config),
            "corpus": corpus.fingerprint}


def proxy_run(params: dict) -> dict:
    """The pure run function for `llmcause.runs`: parameters from `run_params` → ``{"bpb": {domain: value}}``."""
    corpus = load_corpus()
    if params.get("corpus") != corpus.fingerprint:
        raise ValueError("these run parameters were made for a different corpus")
    config = ProxyConfig(int(params["order"]), int(params["budget"]), int(params["block"]), params.get("discount"))
    return {"bpb": train_proxy(params["weights"], int(params["seed"]), config)}


proxy_run.run_version = "1"
