"""The shipped corpus and the common-random-numbers mixture sampler."""

from __future__ import annotations

import hashlib
import lzma
from importlib import resources

import pytest

from llmcause.pretraining.corpus import allocate_bytes, load_corpus, mixture_blocks
from llmcause.pretraining.mathtext import math_text


def test_manifest_describes_six_domains_with_sources_and_licences():
    corpus = load_corpus()
    manifest = corpus.manifest
    assert list(corpus.names) == ["code", "techdocs", "legal", "drama", "quotes", "math"]
    data = resources.files("llmcause.pretraining") / "data"
    total_compressed = 0
    for dom in manifest["domains"]:
        body = lzma.decompress((data / dom["file"]).read_bytes())
        total_compressed += len((data / dom["file"]).read_bytes())
        assert len(body) == dom["bytes"] == 1_100_000
        assert hashlib.sha256(body).hexdigest() == dom["sha256"]
        assert corpus.heldout[dom["name"]] == body[-100_000:]
        assert corpus.train[dom["name"]].tobytes() == body[:-100_000]
        for src in dom["sources"]:
            assert src["licence"]
            if src["registry"] != "none":
                assert len(src["sha256"]) == 64 and src["version"] and src["package"]
                assert (data / "LICENSES" / src["licence_file"]).is_file()
    assert total_compressed < 3_000_000  # the shipped corpus stays small


def test_math_domain_is_reproduced_by_its_generator():
    corpus = load_corpus()
    dom = next(d for d in corpus.manifest["domains"] if d["name"] == "math")
    seed = int(dom["sources"][0]["version"].split()[-1])
    assert hashlib.sha256(math_text(seed, dom["bytes"])).hexdigest() == dom["sha256"]
    assert math_text(seed, 500) == math_text(seed, 500)
    assert math_text(seed, 500) != math_text(seed + 1, 500)


def test_allocation_sums_to_the_budget_exactly():
    for budget in (1, 7, 999_983, 1_000_000):
        parts = allocate_bytes({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, budget)
        assert sum(parts.values()) == budget
        assert max(parts.values()) - min(parts.values()) <= 1


def _domain_bytes(corpus, blocks, weights, budget, domain):
    """The bytes of one domain in a mixture's blocks (blocks come domain by domain, in the weights' order)."""
    sizes = allocate_bytes(weights, budget)
    start = 0
    out = b""
    for d, n in sizes.items():
        taken = b""
        while len(taken) < n:
            taken += blocks[start].tobytes()
            start += 1
        if d == domain:
            out = taken
    return out


def test_common_random_numbers_share_blocks_between_arms():
    corpus = load_corpus()
    budget = 300_000
    uniform = {d: 1 / 6 for d in corpus.names}
    more_code = {**{d: 0.1 for d in corpus.names}, "code": 0.5}
    a = mixture_blocks(corpus, uniform, budget, seed=4)
    b = mixture_blocks(corpus, more_code, budget, seed=4)
    code_a = _domain_bytes(corpus, a, uniform, budget, "code")
    code_b = _domain_bytes(corpus, b, more_code, budget, "code")
    assert code_b[:len(code_a)] == code_a  # the smaller draw is a prefix of the larger one
    math_a = _domain_bytes(corpus, a, uniform, budget, "math")
    math_b = _domain_bytes(corpus, b, more_code, budget, "math")
    assert math_a[:len(math_b)] == math_b
    c = mixture_blocks(corpus, uniform, budget, seed=5)
    assert _domain_bytes(corpus, c, uniform, budget, "code") != code_a
    # changing another domain's weight leaves a domain's draw untouched
    other = {**uniform, "math": 0.0, "legal": 2 / 6}
    d = mixture_blocks(corpus, other, budget, seed=4)
    assert _domain_bytes(corpus, d, other, budget, "code") == code_a


def test_a_budget_larger_than_the_pool_reuses_blocks():
    corpus = load_corpus()
    blocks = mixture_blocks(corpus, {"legal": 1.0}, 1_500_000, seed=0)
    assert sum(len(b) for b in blocks) == 1_500_000
    with pytest.raises(ValueError, match="unknown domain"):
        mixture_blocks(corpus, {"wiki": 1.0}, 1000, seed=0)
    with pytest.raises(ValueError, match="budget"):
        mixture_blocks(corpus, {"legal": 1.0}, -1, seed=0)


def test_train_proxy_is_deterministic_and_learns_its_domain():
    from llmcause.pretraining.proxy import ProxyConfig, train_proxy

    cfg = ProxyConfig(order=3, budget=60_000)
    a = train_proxy({"code": 0.5, "math": 0.5}, 0, cfg)
    assert a == train_proxy({"math": 0.5, "code": 0.5}, 0, cfg)
    b = train_proxy({"code": 0.5, "math": 0.5}, 1, cfg)
    assert a != b
    assert a["code"] < a["drama"] and a["math"] < a["quotes"]
    assert set(a) == set(load_corpus().names) and all(0 < v < 9 for v in a.values())
    with pytest.raises(ValueError, match="sum to"):
        train_proxy({"code": 0.5, "math": 0.4}, 0, cfg)
    with pytest.raises(ValueError, match="budget"):
        ProxyConfig(order=3, budget=-5)
