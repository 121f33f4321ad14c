"""The Kneser–Ney proxy: normalisation, agreement with a plain-Python reference, learning."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from llmcause.pretraining.ngram import KneserNeyLM, QuerySet


def _reference_model(segments: list[bytes], order: int):
    """Interpolated Kneser–Ney written out with dicts, one probability at a time (slow, obvious)."""
    grams = [defaultdict(int) for _ in range(order + 1)]  # grams[k][tuple] = raw count
    for seg in segments:
        for k in range(1, order + 1):
            for i in range(len(seg) - k + 1):
                grams[k][tuple(seg[i:i + k])] += 1
    values = [None] * (order + 1)
    values[order] = dict(grams[order])
    for k in range(1, order):
        cont = defaultdict(int)
        for g in grams[k + 1]:
            cont[g[1:]] += 1  # distinct left extensions
        values[k] = dict(cont)
    discounts, totals, types = [None] * (order + 1), [None] * (order + 1), [None] * (order + 1)
    for k in range(1, order + 1):
        vals = list(values[k].values())
        n1, n2 = vals.count(1), vals.count(2)
        d = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
        discounts[k] = min(max(d, 0.1), 0.9)
        tot, typ = defaultdict(int), defaultdict(int)
        for g, v in values[k].items():
            tot[g[:-1]] += v
            typ[g[:-1]] += 1
        totals[k], types[k] = tot, typ

    def prob(context: tuple, w: int) -> float:
        p = 1 / 256
        for k in range(1, order + 1):
            if len(context) < k - 1:
                continue  # the context is padded: no n-gram of this order has it
            h = context[len(context) - (k - 1):] if k > 1 else ()
            total = totals[k].get(h, 0)
            if total == 0:
                continue
            c = values[k].get(h + (w,), 0)
            d = discounts[k]
            p = (max(c - d, 0) + d * types[k][h] * p) / total
        return p

    return prob


def _random_text(rng, n, alphabet=b"abcde fg\n"):
    words = [bytes(rng.choice(list(alphabet), size=rng.integers(1, 6))) for _ in range(40)]
    return b" ".join(words[i] for i in rng.integers(0, len(words), size=n))


@pytest.mark.parametrize("order", [1, 2, 3, 5, 7])
def test_sums_to_one_over_bytes_for_every_context(order):
    rng = np.random.default_rng(order)
    segments = [_random_text(rng, 300), _random_text(rng, 200), bytes(rng.integers(0, 256, 500, dtype=np.uint8))]
    model = KneserNeyLM(order).fit(segments)
    text = b"".join(segments)
    contexts = {None, b"", bytes([255] * 6), b"\x00\x01\x02\x03\x04\x05"}  # unseen, padded, rare bytes
    for i in range(0, len(text) - order, 7):  # seen contexts of every length
        for length in range(0, order):
            contexts.add(text[i:i + length])
    contexts = sorted(contexts, key=lambda c: (c is None, c or b""))
    queries = QuerySet.all_next_bytes(contexts, order)
    probs = model.probabilities(queries).reshape(len(contexts), 256)
    assert np.all(probs > 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [1, 3, 4, 6])
def test_agrees_with_plain_python_reference(order):
    rng = np.random.default_rng(10 + order)
    segments = [_random_text(rng, 120), _random_text(rng, 80, alphabet=b"xyz ab"), b"abcabcabd" * 5]
    model = KneserNeyLM(order).fit(segments)
    reference = _reference_model(segments, order)
    held = _random_text(rng, 60) + b"zzq"
    queries = QuerySet.from_texts([held], order)
    ours = model.probabilities(queries)
    theirs = np.array([reference(tuple(held[max(0, i - order + 1):i]), held[i]) for i in range(len(held))])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    bpb = model.bits_per_byte(queries)["0"]
    assert bpb == pytest.approx(-np.mean(np.log2(theirs)), rel=1e-12)


def test_no_ngram_crosses_a_segment_boundary():
    joined = KneserNeyLM(3).fit([b"abcabc"])
    split = KneserNeyLM(3).fit([b"abc", b"abc"])
    q = QuerySet.all_next_bytes([b"bc"], 3)
    # "bca" occurs in the joined text only; split segments never saw "c" followed by "a"
    assert joined.probabilities(q)[ord("a")] > split.probabilities(q)[ord("a")]


def test_more_data_and_higher_order_lower_the_loss_on_structured_text():
    rng = np.random.default_rng(3)
    train = _random_text(rng, 4000)
    held = _random_text(rng, 800)
    losses = {}
    for order in (1, 2, 4):
        for n in (2000, 16000):
            q = QuerySet.from_texts([held], order)
            losses[order, n] = KneserNeyLM(order).fit(train[:n]).bits_per_byte(q)["0"]
    assert losses[4, 16000] < losses[2, 16000] < losses[1, 16000]
    assert losses[4, 16000] < losses[4, 2000]
    assert losses[1, 2000] < 8.0  # better than the uniform 8 bits per byte


def test_fixed_discount_and_bad_arguments():
    model = KneserNeyLM(3, discount=0.5).fit(b"hello world, hello there")
    assert all(t.discount == 0.5 for t in model.tables_)
    with pytest.raises(ValueError, match="order"):
        KneserNeyLM(8)
    with pytest.raises(ValueError, match="order"):
        KneserNeyLM(0)
    with pytest.raises(ValueError, match="discount"):
        KneserNeyLM(3, discount=1.5)
    with pytest.raises(ValueError, match="order 3"):
        model.probabilities(QuerySet.from_texts([b"abc"], 4))


def test_empty_training_text_is_uniform():
    model = KneserNeyLM(4).fit([b""])
    dist = model.next_byte_distribution(b"abc")
    np.testing.assert_allclose(dist, 1 / 256)
    assert math.isclose(model.bits_per_byte(QuerySet.from_texts([b"xyz"], 4))["0"], 8.0)
