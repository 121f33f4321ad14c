"""Context features for routing: numeric and categorical columns, and prompt text, all local.

Text becomes hashed word 1–2-grams (no vocabulary to store, nothing fetched)
compressed by a truncated SVD, plus a few length statistics that track how
hard a prompt is. A fitted `FeaturePipeline` is plain numbers and names, so
it is saved inside a router's JSON and rebuilds the same features on a new log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..io import DataError, covariate_kind, numeric_column, require_columns, source_of

HASH_FEATURES = 2 ** 11
SVD_ROWS = 3000
TEXT_STATS = ("log_chars", "log_words", "digit_share", "log_lines")


def _vectorizer():
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=HASH_FEATURES, ngram_range=(1, 2), alternate_sign=False, norm="l2")


def hash_texts(texts: Sequence[str]):
    """Sparse hashed 1–2-gram counts (l2-normalised rows); pass the result as ``hashed=`` to reuse it."""
    return _vectorizer().transform(texts)


def text_statistics(texts: Sequence[str]) -> np.ndarray:
    """log(1+chars), log(1+words), share of digits, log(1+lines) per text."""
    s = pd.Series(list(texts), dtype=object).fillna("").astype(str)
    chars = s.str.len().to_numpy(dtype=float)
    words = s.str.split().str.len().fillna(0).to_numpy(dtype=float)
    digits = s.str.count(r"\d").to_numpy(dtype=float)
    lines = s.str.count("\n").to_numpy(dtype=float) + 1.0
    return np.column_stack([np.log1p(chars), np.log1p(words), digits / np.maximum(chars, 1.0), np.log1p(lines)])


@dataclass
class FeaturePipeline:
    """Numeric columns (standardised), categorical columns (one-hot, levels kept) and one text column.

    Fit with `fit(df)`; `transform(df)` gives the same columns on any table
    with those columns (unseen categories get all-zero indicators).
    """

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    text: str | None = None
    n_components: int = 16
    seed: int = 0
    means_: list[float] = field(default_factory=list)
    scales_: list[float] = field(default_factory=list)
    levels_: dict[str, list[str]] = field(default_factory=dict)
    components_: list[list[float]] | None = None
    names_: list[str] = field(default_factory=list)

    @classmethod
    def for_columns(cls, df: pd.DataFrame, columns: Sequence[str], text: str | None = None,
                    n_components: int = 16, seed: int = 0) -> "FeaturePipeline":
        """Split ``columns`` into numeric and categorical by the rule of `io.covariate_kind` (never guessed)."""
        require_columns(df, [*columns, *([text] if text else [])])
        numeric, categorical = [], []
        for col in columns:
            raw = df[col]
            missing = np.flatnonzero(raw.isna().to_numpy())
            if missing.size:
                raise DataError(f"{source_of(df)}: column {col!r}, row {int(missing[0]) + 1}: value is missing")
            (numeric if covariate_kind(df, col) == "numeric" else categorical).append(col)
        return cls(numeric=numeric, categorical=categorical, text=text, n_components=n_components, seed=seed)

    def fit(self, df: pd.DataFrame, hashed=None) -> "FeaturePipeline":
        num = self._numeric(df)
        self.means_ = num.mean(axis=0).tolist() if num.size else []
        sd = num.std(axis=0) if num.size else np.array([])
        self.scales_ = np.where(sd > 0, sd, 1.0).tolist()
        self.levels_ = {c: sorted(df[c].astype(str).unique().tolist()) for c in self.categorical}
        for c, levels in self.levels_.items():
            if len(levels) > 200:
                raise DataError(f"{source_of(df)}: column {c!r} has {len(levels)} distinct text values, too many "
                                "to one-hot encode (use --text for free text)")
        if self.text is not None:
            from sklearn.decomposition import TruncatedSVD

            if hashed is None:
                hashed = hash_texts(self._texts(df))
            if hashed.shape[0] > SVD_ROWS:  # the basis is stable long before every row is used
                rows = np.random.default_rng(self.seed).choice(hashed.shape[0], SVD_ROWS, replace=False)
                hashed = hashed[np.sort(rows)]
            k = int(max(1, min(self.n_components, hashed.shape[0] - 1, HASH_FEATURES - 1)))
            svd = TruncatedSVD(n_components=k, random_state=self.seed).fit(hashed)
            self.components_ = np.round(svd.components_, 7).tolist()
        self.names_ = self._names()
        return self

    def transform(self, df: pd.DataFrame, hashed=None) -> np.ndarray:
        blocks = []
        if self.numeric:
            blocks.append((self._numeric(df) - np.asarray(self.means_)) / np.asarray(self.scales_))
        for c in self.categorical:
            require_columns(df, [c])
            values = df[c].astype(str).to_numpy()
            blocks.append(np.column_stack([(values == lv).astype(float) for lv in self.levels_[c][1:]])
                          if len(self.levels_[c]) > 1 else np.zeros((df.shape[0], 0)))
        if self.text is not None:
            texts = self._texts(df)
            hashed = hash_texts(texts) if hashed is None else hashed
            blocks.append(np.asarray(hashed @ np.asarray(self.components_).T))
            blocks.append(text_statistics(texts))
        if not blocks:
            return np.zeros((df.shape[0], 0))
        return np.hstack(blocks)

    def fit_transform(self, df: pd.DataFrame) -> np.ndarray:
        hashed = hash_texts(self._texts(df)) if self.text is not None else None
        return self.fit(df, hashed).transform(df, hashed)

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": self.numeric, "categorical": self.categorical, "text": self.text,
                "n_components": self.n_components, "seed": self.seed, "means": self.means_, "scales": self.scales_,
                "levels": self.levels_, "components": self.components_, "hash_features": HASH_FEATURES}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeaturePipeline":
        if d.get("text") is not None and int(d.get("hash_features", HASH_FEATURES)) != HASH_FEATURES:
            raise ValueError("the router's text features were hashed differently; relearn it with this version")
        out = cls(numeric=list(d["numeric"]), categorical=list(d["categorical"]), text=d.get("text"),
                  n_components=int(d["n_components"]), seed=int(d["seed"]))
        out.means_, out.scales_ = list(d["means"]), list(d["scales"])
        out.levels_ = {k: list(v) for k, v in d["levels"].items()}
        out.components_ = d.get("components")
        out.names_ = out._names()
        return out

    # ------------------------------------------------------------------ helpers

    def _numeric(self, df: pd.DataFrame) -> np.ndarray:
        if not self.numeric:
            return np.zeros((df.shape[0], 0))
        return np.column_stack([numeric_column(df, c) for c in self.numeric])

    def _texts(self, df: pd.DataFrame) -> list[str]:
        require_columns(df, [self.text])
        raw = df[self.text]
        missing = np.flatnonzero(raw.isna().to_numpy())
        if missing.size:
            raise DataError(f"{source_of(df)}: column {self.text!r}, row {int(missing[0]) + 1}: text is missing")
        return raw.astype(str).tolist()

    def _names(self) -> list[str]:
        names = list(self.numeric)
        for c in self.categorical:
            names += [f"{c}={lv}" for lv in self.levels_.get(c, [])[1:]]
        if self.text is not None:
            names += [f"{self.text}:svd{j}" for j in range(len(self.components_ or []))]
            names += [f"{self.text}:{s}" for s in TEXT_STATS]
        return names
