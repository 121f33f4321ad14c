"""Sandbox reward models for RATE (the `rate.RewardModel` protocol).

- `LengthSandboxReward`: a reward with a *known* effect of length,
      R(y) = content_coef·(distinct content words of y)/10 + length_coef·1{tokens(y) ≥ threshold}
             + noise_sd·u(y),
  where u(y) is a standard-normal draw seeded by a hash of the text (a fixed
  idiosyncrasy of the model on each exact text, mean zero over texts). The
  true effect of the length attribute is ``length_coef``; long answers also
  say more, so the naive difference overstates it.
- `NgramRewardModel`: a reward learnt from pairwise votes: a Bradley–Terry
  logistic model on hashed word uni- and bigram counts (log-scaled), fitted
  on the difference between the two answers of each battle.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import numpy as np

from .features import count_tokens, strip_fenced_code

_WORD = re.compile(r"[^\W\d_]+")
# English function words (articles, pronouns, auxiliaries, prepositions, conjunctions) carry no content.
# The list is fixed by the language, not by any rewriter: a rewriter that adds content words is caught
# by RATE's leak diagnostic, never hidden by the reward.
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from as is are was were be been being it its this
that these those there here which who whom whose what when where why how not no so such than too very can could
will would shall should may might must do does did done have has had having i you he she we they me him her us
them my your his our their into about over under more most also just only any all each some
""".split())


def content_words(text: str) -> set[str]:
    """Distinct lower-case words of the prose that are not function words."""
    prose, _ = strip_fenced_code(text)
    return {w.lower() for w in _WORD.findall(prose) if w.lower() not in STOPWORDS}


def text_normals(texts: Sequence[str], seed: int) -> np.ndarray:
    """A standard-normal value per text, fixed by a keyed hash of the text (same text, same value)."""
    from scipy.special import ndtri

    u = np.empty(len(texts))
    key = str(seed).encode()
    for i, text in enumerate(texts):
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, key=key).digest()
        u[i] = (int.from_bytes(digest, "big") + 0.5) / 2.0**64
    return ndtri(u)


class LengthSandboxReward:
    """A reward model whose effect of length is known exactly (``length_coef``)."""

    def __init__(self, length_coef: float = 0.5, threshold: int = 150, content_coef: float = 1.0,
                 noise_sd: float = 0.3, seed: int = 0, tokenizer: str = "simple"):
        self.length_coef = float(length_coef)
        self.threshold = int(threshold)
        self.content_coef = float(content_coef)
        self.noise_sd = float(noise_sd)
        self.seed = int(seed)
        self.tokenizer = tokenizer

    @property
    def true_effect(self) -> float:
        """The effect of switching the length attribute on, holding content fixed."""
        return self.length_coef

    def score(self, texts: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        texts = [str(t) for t in texts]
        long = np.array([count_tokens(t, self.tokenizer) >= self.threshold for t in texts], dtype=float)
        content = np.array([len(content_words(t)) for t in texts], dtype=float)
        noise = text_normals(texts, self.seed) if self.noise_sd else np.zeros(len(texts))
        return self.content_coef * content / 10.0 + self.length_coef * long + self.noise_sd * noise


class NgramRewardModel:
    """A reward learnt from votes: logistic Bradley–Terry on hashed n-gram counts.

    ``fit(texts_a, texts_b, outcome)`` with outcome P(a wins) (ties ½ enter as
    two half-weighted rows); ``score(texts)`` is the learnt linear reward.
    """

    def __init__(self, n_features: int = 2**16, ngram_range: tuple[int, int] = (1, 2), C: float = 1.0):
        self.n_features = n_features
        self.ngram_range = ngram_range
        self.C = C

    def _vectorizer(self):
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(n_features=self.n_features, ngram_range=self.ngram_range, alternate_sign=False,
                                 norm=None, lowercase=True)

    def _features(self, texts: Sequence[str]):
        X = self._vectorizer().transform([str(t) for t in texts])
        X.data = np.log1p(X.data)
        return X

    def fit(self, texts_a: Sequence[str], texts_b: Sequence[str], outcome: Sequence[float]) -> "NgramRewardModel":
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(outcome, dtype=float)
        D = self._features(texts_a) - self._features(texts_b)
        # A soft outcome p is a row labelled 1 with weight p and a row labelled 0 with weight 1 − p.
        X = sparse.vstack([D, D]).tocsr()
        labels = np.concatenate([np.ones_like(y), np.zeros_like(y)])
        sw = np.concatenate([y, 1 - y])
        keep = sw > 0
        model = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000)
        model.fit(X[keep], labels[keep], sample_weight=sw[keep])
        self.coef_ = model.coef_.ravel()
        self.n_battles_ = int(y.shape[0])
        return self

    def score(self, texts: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ValueError("the n-gram reward model is not fitted; call fit(texts_a, texts_b, outcome) first")
        return np.asarray(self._features(texts) @ self.coef_).ravel()


def length_attribute(threshold: int = 150, tokenizer: str = "simple"):
    """W(text) = 1 when the text has at least ``threshold`` tokens."""
    return lambda text: int(count_tokens(text, tokenizer) >= threshold)
