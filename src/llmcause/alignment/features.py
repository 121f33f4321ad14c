"""Style and content features of response texts, and their battle-level differences.

Per response we count (LMArena's style-control convention): its length in
tokens, and, after removing fenced code blocks, its markdown headers, list
items and bold spans; also its fenced code blocks and links. For a battle,
each feature becomes the normalised difference (a − b)/(a + b + 1), z-scored
over the battles, so a fitted coefficient is a change in log-odds per
standard deviation of the style gap (comparable with LMArena's numbers).

Content features (distinct words, numbers) are "local text
features": they proxy what an answer says rather than how it is dressed, and
serve as controls when estimating the effect of length.

Reference: LMArena, "Does style matter? Disentangling style and substance in
Chatbot Arena" (2024); Chiang et al. 2024 (arXiv 2403.04132).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

STYLE_FEATURES = ("length", "headers", "lists", "bold", "code_blocks", "links")
LMARENA_FEATURES = ("length", "headers", "lists", "bold")
CONTENT_FEATURES = ("distinct_words", "numbers")

_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
_HEADER = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+\S", re.M)
_LIST_ITEM = re.compile(r"^[ \t]*(?:[-*+]|\d{1,3}[.)])[ \t]+\S", re.M)
_BOLD = re.compile(r"\*\*(?=\S)[^\n]*?\S\*\*|__(?=\S)[^\n]*?\S__")
_MD_LINK = re.compile(r"\[[^\]\n]+\]\([^)\s]+(?:\s+\"[^\"]*\")?\)")
_URL = re.compile(r"https?://[^\s)>\]]+")
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")
_WORD = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


# --------------------------------------------------------------------------- tokenizers


def simple_tokens(text: str) -> list[str]:
    """Words (runs of letters/digits), single punctuation marks, and single CJK characters."""
    return _TOKEN.findall(text)


@lru_cache(maxsize=4)
def _tiktoken_encoding(name: str):
    import tiktoken

    return tiktoken.get_encoding(name)


def resolve_tokenizer(tokenizer: str = "auto") -> str:
    """The tokenizer that will be used: ``simple``, or ``tiktoken`` when installed and loadable.

    ``auto`` uses tiktoken's cl100k_base encoding (LMArena's choice) only when
    the package is installed and its encoding file is available offline;
    otherwise the simple tokenizer. Asking for ``tiktoken`` explicitly when it
    is unavailable is an error.
    """
    if tokenizer == "simple":
        return "simple"
    if tokenizer not in ("auto", "tiktoken"):
        raise ValueError(f"unknown tokenizer {tokenizer!r}; use auto, simple or tiktoken")
    try:
        _tiktoken_encoding("cl100k_base")
        return "tiktoken"
    except Exception as exc:  # not installed, or the encoding cannot be fetched offline
        if tokenizer == "tiktoken":
            raise ValueError(f"the tiktoken tokenizer is not available ({type(exc).__name__}); "
                             "use --tokenizer simple") from None
        return "simple"


def count_tokens(text: str, tokenizer: str = "simple") -> int:
    """Number of tokens of ``text`` (``tokenizer``: simple or tiktoken)."""
    if tokenizer == "tiktoken":
        return len(_tiktoken_encoding("cl100k_base").encode(text, disallowed_special=()))
    return len(simple_tokens(text))


# --------------------------------------------------------------------------- per-response counts


def strip_fenced_code(text: str) -> tuple[str, int]:
    """The text without fenced code blocks, and the number of blocks removed."""
    blocks = _FENCE.findall(text)
    return _FENCE.sub("\n", text), len(blocks)


def style_counts(text: str, tokenizer: str = "simple") -> dict[str, int]:
    """Style counts of one response: length (tokens, code included), and markdown outside code."""
    return _style_counts(text, *strip_fenced_code(text), tokenizer)


def _style_counts(text: str, prose: str, n_code: int, tokenizer: str) -> dict[str, int]:
    n_md_links = len(_MD_LINK.findall(prose))
    bare = len(_URL.findall(_MD_LINK.sub(" ", prose)))
    return {
        "length": count_tokens(text, tokenizer),
        "headers": len(_HEADER.findall(prose)),
        "lists": len(_LIST_ITEM.findall(prose)),
        "bold": len(_BOLD.findall(prose)),
        "code_blocks": n_code,
        "links": n_md_links + bare,
    }


def content_counts(text: str) -> dict[str, int]:
    """Content proxies of one response: distinct words (lower-cased) and numbers, outside code.

    Distinct words measure how much an answer says; repeating or restating
    adds tokens but no distinct words. (Sentence counts are deliberately not
    used: they measure length, not content.)
    """
    return _content_counts(strip_fenced_code(text)[0])


def _content_counts(prose: str) -> dict[str, int]:
    words = {w.lower() for w in _WORD.findall(prose)}
    return {"distinct_words": len(words), "numbers": len(_NUMBER.findall(prose))}


def text_features(texts: Iterable[str], tokenizer: str = "simple") -> pd.DataFrame:
    """One row per text: the style counts and the content counts."""
    rows = []
    for t in texts:
        prose, n_code = strip_fenced_code(t)
        rows.append({**_style_counts(t, prose, n_code, tokenizer), **_content_counts(prose)})
    cols = [*STYLE_FEATURES, *CONTENT_FEATURES]
    return pd.DataFrame(rows, columns=cols).astype("int64") if rows else pd.DataFrame(columns=cols)


# --------------------------------------------------------------------------- battle features


def normalized_difference(count_a, count_b) -> np.ndarray:
    """(a − b)/(a + b + 1): the LMArena/FastChat style gap (bounded in (−1, 1), zero when equal)."""
    a = np.asarray(count_a, dtype=float)
    b = np.asarray(count_b, dtype=float)
    if np.any(a < 0) or np.any(b < 0):
        raise ValueError("style counts must be non-negative")
    return (a - b) / (a + b + 1.0)


@dataclass
class BattleFeatures:
    """z-scored battle-level style features and the scaling used (to apply to new battles)."""

    values: np.ndarray  # (n, k)
    names: list[str]
    mean: np.ndarray
    sd: np.ndarray
    dropped: list[str] = field(default_factory=list)  # constant features (no variation to learn from)

    def transform(self, raw_gaps: np.ndarray) -> np.ndarray:
        """Apply the same centring and scaling to raw gaps of new battles."""
        return (np.asarray(raw_gaps, dtype=float) - self.mean) / self.sd


def standardize_gaps(raw: np.ndarray, names: Sequence[str]) -> BattleFeatures:
    """z-score each column over the battles (population SD, as LMArena); drop constant columns."""
    raw = np.asarray(raw, dtype=float)
    if raw.ndim == 1:
        raw = raw[:, None]
    mean = raw.mean(axis=0)
    sd = raw.std(axis=0)
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
    dropped = [n for n, k in zip(names, keep) if not k]
    names = [n for n, k in zip(names, keep) if k]
    values = (raw[:, keep] - mean[keep]) / sd[keep]
    return BattleFeatures(values=values, names=list(names), mean=mean[keep], sd=sd[keep], dropped=dropped)


def battle_style_features(counts_a: pd.DataFrame, counts_b: pd.DataFrame,
                          features: Sequence[str] = LMARENA_FEATURES, standardize: bool = True) -> BattleFeatures:
    """Battle features (a − b)/(a + b + 1) for each named count column, z-scored over battles."""
    raw = np.column_stack([normalized_difference(counts_a[f], counts_b[f]) for f in features])
    if not standardize:
        return BattleFeatures(values=raw, names=list(features), mean=np.zeros(raw.shape[1]),
                              sd=np.ones(raw.shape[1]))
    return standardize_gaps(raw, features)
