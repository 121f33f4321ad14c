"""A byte-level interpolated Kneser–Ney n-gram language model in vectorised numpy.

Model (Kneser & Ney 1995; Chen & Goodman 1999, interpolated form)::

    P_k(w | h) = max(c_k(hw) − D_k, 0) / c_k(h·) + D_k · N1+(h·) / c_k(h·) · P_{k−1}(w | h⁻)

where h⁻ drops the oldest byte of the context h, c_K are raw counts at the
highest order K, c_k (k < K) are continuation counts N1+(·hw) (the number of
distinct bytes seen before hw), c_k(h·) = Σ_w c_k(hw), N1+(h·) is the number
of distinct w with c_k(hw) > 0, and P_0 is uniform over the 256 bytes. A
context never seen passes all its mass to the next lower order. The discount
D_k = n1 / (n1 + 2 n2) is estimated per order from the counts of counts of the
values c_k that the order uses, clipped to [0.1, 0.9].

Implementation. Bytes are 9-bit symbols packed into int64 codes (first byte
most significant), so orders up to 7 fit. Value 256 separates training
blocks (no n-gram crosses a block boundary) and value 257 pads the start of
an evaluated text (a context no training n-gram has). One sort of the
highest-order codes gives every order's sorted n-grams as prefixes; the
continuation counts need one smaller sort per order. Queries are looked up
by binary search on their unique codes.

The predictive distribution sums to 1 over the 256 bytes for every context
(tested), because each order's table is normalised over exactly the values
it stores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

__all__ = ["KneserNeyLM", "QuerySet", "MAX_ORDER"]

BITS = 9
SEPARATOR = 256
PAD = 257
MAX_ORDER = 7
_SYMBOL_MASK = (1 << BITS) - 1


def _low_mask(k: int) -> np.int64:
    return np.int64((1 << (BITS * k)) - 1)


def _flag_mask(k: int) -> np.int64:
    """Bit 8 of each of k symbols: set in a code iff the code holds a separator or pad."""
    return np.int64(sum(256 << (BITS * j) for j in range(k)))


def _window_codes(symbols: np.ndarray, order: int) -> np.ndarray:
    """Code of every window symbols[s : s+order], first symbol most significant."""
    n = symbols.shape[0] - order + 1
    codes = symbols[:n].astype(np.int64)
    for j in range(1, order):
        codes <<= BITS
        codes |= symbols[j:j + n]
    return codes


def _runs(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique values of a sorted array and the length of each run."""
    if sorted_values.shape[0] == 0:
        return sorted_values, np.zeros(0, dtype=np.int64)
    change = np.flatnonzero(sorted_values[1:] != sorted_values[:-1]) + 1
    starts = np.concatenate(([0], change))
    lengths = np.diff(np.concatenate((starts, [sorted_values.shape[0]])))
    return sorted_values[starts], lengths


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[key == query], 0 where the query is absent (keys sorted and unique)."""
    if keys.shape[0] == 0:
        return np.zeros(queries.shape[0], dtype=values.dtype)
    idx = np.searchsorted(keys, queries)
    np.minimum(idx, keys.shape[0] - 1, out=idx)
    found = keys[idx] == queries
    return np.where(found, values[idx], 0)


@dataclass
class _OrderTable:
    keys: np.ndarray       # sorted unique k-gram codes
    values: np.ndarray     # raw (top order) or continuation counts
    contexts: np.ndarray   # sorted unique (k−1)-gram context codes
    totals: np.ndarray     # c_k(h·)
    types: np.ndarray      # N1+(h·)
    discount: float


def _order_table(keys: np.ndarray, values: np.ndarray, fixed_discount: float | None) -> _OrderTable:
    contexts_all = keys >> BITS  # sorted, because keys are
    contexts, lengths = _runs(contexts_all)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])) if lengths.size else lengths
    totals = np.add.reduceat(values, starts) if lengths.size else values
    if fixed_discount is None:
        n1 = int(np.count_nonzero(values == 1))
        n2 = int(np.count_nonzero(values == 2))
        d = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
        discount = float(min(max(d, 0.1), 0.9))
    else:
        discount = float(fixed_discount)
    return _OrderTable(keys, values, contexts, totals.astype(np.float64), lengths.astype(np.float64), discount)


class QuerySet:
    """Positions to score: for each, the byte and its preceding context, grouped by segment.

    Built once for a fixed text (e.g. the held-out sets) and reused across
    models of the same order: per order it stores the unique n-gram and
    context codes and the map back to positions.
    """

    def __init__(self, codes: np.ndarray, order: int, segments: np.ndarray, names: Sequence[str]):
        self.order = order
        self.segments = segments          # segment index of each position
        self.names = list(names)
        self.n = int(codes.shape[0])
        self._grams: list[tuple[np.ndarray, np.ndarray]] = []
        self._contexts: list[tuple[np.ndarray, np.ndarray]] = []
        for k in range(1, order + 1):
            gram = codes & _low_mask(k)
            self._grams.append(np.unique(gram, return_inverse=True))
            self._contexts.append(np.unique(gram >> BITS, return_inverse=True))

    @classmethod
    def from_texts(cls, texts: Sequence[bytes] | dict[str, bytes], order: int) -> "QuerySet":
        """Every byte of each text, with the preceding bytes of the same text as context."""
        _check_order(order)
        if isinstance(texts, dict):
            names, bodies = list(texts), list(texts.values())
        else:
            names, bodies = [str(i) for i in range(len(texts))], list(texts)
        parts, segs = [], []
        for i, body in enumerate(bodies):
            arr = np.frombuffer(bytes(body), dtype=np.uint8).astype(np.int64)
            padded = np.concatenate((np.full(order - 1, PAD, dtype=np.int64), arr))
            parts.append(_window_codes(padded, order))
            segs.append(np.full(arr.shape[0], i, dtype=np.int64))
        codes = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return cls(codes, order, np.concatenate(segs) if segs else codes, names)

    @classmethod
    def all_next_bytes(cls, contexts: Sequence[bytes | None], order: int) -> "QuerySet":
        """For each context, the 256 possible next bytes (segment i = context i).

        A context shorter than ``order − 1`` bytes (or None) is padded on the
        left as at the start of a text.
        """
        _check_order(order)
        rows = []
        for ctx in contexts:
            ctx = b"" if ctx is None else bytes(ctx)[-(order - 1):] if order > 1 else b""
            syms = [PAD] * (order - 1 - len(ctx)) + list(ctx)
            head = 0
            for s in syms:
                head = (head << BITS) | s
            rows.append((np.int64(head) << BITS) | np.arange(256, dtype=np.int64))
        codes = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        segs = np.repeat(np.arange(len(rows)), 256)
        return cls(codes, order, segs, [str(i) for i in range(len(rows))])


class KneserNeyLM:
    """Interpolated Kneser–Ney byte language model of a given order (1–7).

    Parameters
    ----------
    order : n-gram order K (context of K − 1 bytes).
    discount : a fixed discount for every order; None estimates D_k per order.

    Attributes after ``fit``: ``tables_`` (one per order), ``n_train_``.
    """

    def __init__(self, order: int = 5, discount: float | None = None):
        _check_order(order)
        if discount is not None and not 0.0 < discount < 1.0:
            raise ValueError("discount must be in (0, 1)")
        self.order = order
        self.discount = discount

    def fit(self, segments: Iterable[bytes | np.ndarray] | bytes) -> "KneserNeyLM":
        """Count n-grams in the segments (no n-gram crosses from one segment to the next)."""
        if isinstance(segments, (bytes, bytearray, memoryview, np.ndarray)):
            segments = [segments]
        K = self.order
        pieces = []
        for seg in segments:
            arr = np.frombuffer(bytes(seg), dtype=np.uint8) if not isinstance(seg, np.ndarray) else seg
            pieces.append(arr.astype(np.int64, copy=False))
            pieces.append(np.array([SEPARATOR], dtype=np.int64))
        pieces.append(np.full(max(K - 1, 0), SEPARATOR, dtype=np.int64))
        symbols = np.concatenate(pieces)
        self.n_train_ = int(symbols.shape[0] - len(pieces) - max(K - 1, 0) + 1)
        codes = np.sort(_window_codes(symbols, K))
        uniques: list[np.ndarray] = []
        counts: list[np.ndarray] = []
        for k in range(1, K + 1):
            prefix = codes >> (BITS * (K - k)) if k < K else codes
            prefix = prefix[(prefix & _flag_mask(k)) == 0]
            keys, lengths = _runs(prefix)
            uniques.append(keys)
            counts.append(lengths)
        tables = []
        for k in range(1, K + 1):
            if k == K:
                keys, values = uniques[k - 1], counts[k - 1]
            else:
                suffixes = np.sort(uniques[k] & _low_mask(k))
                keys, values = _runs(suffixes)
            tables.append(_order_table(keys, values.astype(np.int64), self.discount))
        self.tables_ = tables
        return self

    def probabilities(self, queries: QuerySet) -> np.ndarray:
        """P(byte | context) for every query position."""
        if queries.order != self.order:
            raise ValueError(f"the query set was built for order {queries.order}, the model has order {self.order}")
        p = np.full(queries.n, 1.0 / 256.0)
        for k, table in enumerate(self.tables_, start=1):
            gram_u, gram_inv = queries._grams[k - 1]
            ctx_u, ctx_inv = queries._contexts[k - 1]
            count = _lookup(table.keys, table.values, gram_u).astype(np.float64)[gram_inv]
            total = _lookup(table.contexts, table.totals, ctx_u)[ctx_inv]
            types = _lookup(table.contexts, table.types, ctx_u)[ctx_inv]
            d = table.discount
            seen = total > 0
            safe = np.where(seen, total, 1.0)
            mixed = (np.maximum(count - d, 0.0) + d * types * p) / safe
            p = np.where(seen, mixed, p)
        return p

    def bits_per_byte(self, queries: QuerySet) -> dict[str, float]:
        """Mean −log2 P per segment of the query set (bits per byte), by segment name."""
        bits = -np.log2(self.probabilities(queries))
        n_seg = len(queries.names)
        sums = np.bincount(queries.segments, weights=bits, minlength=n_seg)
        sizes = np.bincount(queries.segments, minlength=n_seg)
        return {name: float(sums[i] / sizes[i]) if sizes[i] else float("nan")
                for i, name in enumerate(queries.names)}

    def next_byte_distribution(self, context: bytes | None) -> np.ndarray:
        """The 256 probabilities of the next byte after ``context``."""
        return self.probabilities(QuerySet.all_next_bytes([context], self.order))


def _check_order(order: int) -> None:
    if not isinstance(order, (int, np.integer)) or not 1 <= int(order) <= MAX_ORDER:
        raise ValueError(f"order must be an integer from 1 to {MAX_ORDER}, got {order!r}")
