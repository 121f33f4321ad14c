"""The shipped multi-domain byte corpus, and training mixtures drawn from it with common random numbers.

The corpus (built by ``scripts/build_corpus.py`` from pinned registry
packages; see ``data/manifest.json`` and ``data/LICENSES``) has six domains
of 1.1 MB: code (CPython standard library), techdocs (pydoc topics and the
Debian policy manuals), legal (SPDX licence texts), drama (Shakespeare's
plays), quotes (fortunes) and math (generated exercises). The last 100 KB of
each domain are held out for evaluation; training blocks come from the rest.

Common random numbers. A training mixture takes n_d = w_d · budget bytes of
domain d as blocks drawn from one random stream per (seed, domain): a random
phase, then a random permutation of the domain's blocks (repeated when the
pool is exhausted). Arm A and arm B of the same seed therefore share the
first min(n_d^A, n_d^B) bytes of every domain's draw, and two arms that
differ only in one domain's weight differ only in that domain's blocks.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import zlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Mapping, Sequence

import numpy as np

__all__ = ["Corpus", "load_corpus", "allocate_bytes", "mixture_blocks", "DEFAULT_BLOCK"]

DEFAULT_BLOCK = 4096


@dataclass(frozen=True, eq=False)
class Corpus:
    """Domains as training pools and held-out texts (bytes), with the manifest they came from."""

    names: tuple[str, ...]
    train: Mapping[str, np.ndarray]      # uint8 arrays
    heldout: Mapping[str, bytes]
    manifest: Mapping
    fingerprint: str                     # sha256 of the canonical manifest: part of every run's identity

    def check_domains(self, domains: Sequence[str]) -> None:
        unknown = [d for d in domains if d not in self.names]
        if unknown:
            raise ValueError(f"unknown domain {unknown[0]!r}; the corpus has: {', '.join(self.names)}")


@lru_cache(maxsize=2)
def load_corpus(heldout_bytes: int | None = None) -> Corpus:
    """The shipped corpus (cached per process). Checks each domain's sha256 against the manifest."""
    data = resources.files("llmcause.pretraining") / "data"
    manifest = json.loads((data / "manifest.json").read_text(encoding="utf-8"))
    held = int(manifest["heldout_bytes"] if heldout_bytes is None else heldout_bytes)
    names, train, heldout = [], {}, {}
    for dom in manifest["domains"]:
        body = lzma.decompress((data / dom["file"]).read_bytes())
        if hashlib.sha256(body).hexdigest() != dom["sha256"]:
            raise RuntimeError(f"corpus file {dom['file']} does not match its manifest (reinstall llmcause)")
        names.append(dom["name"])
        train[dom["name"]] = np.frombuffer(body[:-held], dtype=np.uint8)
        heldout[dom["name"]] = body[-held:]
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    fingerprint = hashlib.sha256(f"{canonical}|heldout={held}".encode()).hexdigest()
    return Corpus(tuple(names), train, heldout, manifest, fingerprint)


def allocate_bytes(weights: Mapping[str, float], budget: int) -> dict[str, int]:
    """Split ``budget`` bytes by ``weights`` (largest remainder), so the parts sum to the budget exactly."""
    names = list(weights)
    w = np.array([float(weights[d]) for d in names])
    raw = w / w.sum() * budget
    base = np.floor(raw).astype(np.int64)
    rest = int(budget - base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:rest]] += 1
    return {d: int(b) for d, b in zip(names, base)}


def domain_stream(seed: int, domain: str) -> np.random.Generator:
    """The random stream for one (seed, domain): independent of the other domains and of the weights."""
    return np.random.default_rng([int(seed), zlib.crc32(domain.encode("utf-8"))])


def mixture_blocks(corpus: Corpus, weights: Mapping[str, float], budget: int, seed: int,
                   block: int = DEFAULT_BLOCK) -> list[np.ndarray]:
    """Training blocks (uint8 arrays) for a mixture: n_d bytes of each domain, drawn with common random numbers."""
    if budget < 0:
        raise ValueError("budget must be non-negative")
    if block < 16:
        raise ValueError("block must be at least 16 bytes")
    corpus.check_domains(list(weights))
    out: list[np.ndarray] = []
    for domain, n_bytes in allocate_bytes(weights, budget).items():
        if n_bytes == 0:
            continue
        pool = corpus.train[domain]
        n_blocks = pool.shape[0] // block
        rng = domain_stream(seed, domain)
        phase = int(rng.integers(block))
        need = -(-n_bytes // block)
        order: list[int] = []
        while len(order) < need:
            order.extend(rng.permutation(n_blocks).tolist())
        for i, b in enumerate(order[:need]):
            length = block if i < need - 1 else n_bytes - block * (need - 1)
            start = (phase + b * block) % pool.shape[0]
            if start + length <= pool.shape[0]:
                out.append(pool[start:start + length])
            else:
                out.append(np.take(pool, np.arange(start, start + length), mode="wrap"))
    return out
