"""From a table of battles to checked arrays: models, votes, style features, content controls.

This is the DataFrame edge of the stage: every problem with the user's
table is raised here as a `DataError` naming the file, column and row, before
any fitting starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ..io import DataError, covariate_matrix, label_column, numeric_column, require_columns, source_of
from .arena import texts_of_column, winner_outcome
from .features import (CONTENT_FEATURES, LMARENA_FEATURES, STYLE_FEATURES, BattleFeatures, normalized_difference,
                       resolve_tokenizer, standardize_gaps, text_features)


@dataclass
class Battles:
    """Checked battles: labels, outcome P(a wins), z-scored style features, content controls."""

    model_a: np.ndarray
    model_b: np.ndarray
    outcome: np.ndarray
    style: BattleFeatures
    rows: np.ndarray  # 0-based positions in the input table (ties may have been dropped)
    source: str = "data"
    cluster: np.ndarray | None = None
    controls: np.ndarray | None = None  # content controls for the length effect (n, q)
    control_names: list[str] = field(default_factory=list)
    counts_a: pd.DataFrame | None = None  # per-side counts (text mode)
    counts_b: pd.DataFrame | None = None
    tokenizer: str | None = None
    n_ties: int = 0  # ties kept as half a win
    ties_dropped: int = 0

    @property
    def n(self) -> int:
        return int(self.outcome.shape[0])

    def subset(self, mask: np.ndarray) -> "Battles":
        """The battles where ``mask`` holds, keeping the full-sample feature scaling."""
        idx = np.flatnonzero(mask)
        style = BattleFeatures(values=self.style.values[idx], names=self.style.names, mean=self.style.mean,
                               sd=self.style.sd, dropped=self.style.dropped)
        pick = (lambda a: None if a is None else a[idx])
        return Battles(model_a=self.model_a[idx], model_b=self.model_b[idx], outcome=self.outcome[idx], style=style,
                       rows=self.rows[idx], source=self.source, cluster=pick(self.cluster),
                       controls=pick(self.controls), control_names=self.control_names,
                       counts_a=None if self.counts_a is None else self.counts_a.iloc[idx].reset_index(drop=True),
                       counts_b=None if self.counts_b is None else self.counts_b.iloc[idx].reset_index(drop=True),
                       tokenizer=self.tokenizer, n_ties=int(np.sum(self.outcome[idx] == 0.5)))


def prepare_battles(
    df: pd.DataFrame,
    *,
    model_a: str,
    model_b: str,
    winner: str,
    text_a: str | None = None,
    text_b: str | None = None,
    features: Sequence[str] | None = None,
    style_features: Sequence[str] = LMARENA_FEATURES,
    controls: Sequence[str] = (),
    cluster: str | None = None,
    ties: str = "half",
    tokenizer: str = "auto",
    min_battles: int = 2,
) -> Battles:
    """Check a battle table and build the arrays the estimators need.

    Style comes either from texts (``text_a``/``text_b``: strings or Arena
    conversations; ``style_features`` picks which counts become features) or
    from ``features``: for each name F, columns ``F_a`` and ``F_b`` holding
    per-side counts (turned into (a − b)/(a + b + 1)), or one column ``F``
    holding a battle-level gap. Either way each feature is z-scored over the
    battles. ``controls`` name extra content controls for the length effect
    (per-side pairs ``F_a``/``F_b`` or plain columns, text one-hot encoded).
    """
    src = source_of(df)
    check_style_inputs(text_a, text_b, features, ties, style_features)
    names = {"--model-a": model_a, "--model-b": model_b, "--winner": winner}
    if text_a is not None:
        names.update({"--text-a": text_a, "--text-b": text_b})
    if cluster:
        names["--cluster"] = cluster
    require_columns(df, list(names.values()), option={v: k for k, v in names.items()})
    if len({model_a, model_b, winner}) < 3:
        raise DataError("--model-a, --model-b and --winner must name different columns")
    a = label_column(df, model_a)
    b = label_column(df, model_b)
    same = np.flatnonzero(a == b)
    if same.size:
        i = int(same[0])
        raise DataError(f"{src}: row {i + 1}: model {a[i]!r} battles itself (columns {model_a!r} and {model_b!r}); "
                        "a battle needs two different models")
    y = winner_outcome(df, winner, ties=ties)
    clusters = label_column(df, cluster) if cluster else None

    counts_a = counts_b = None
    used_tokenizer = None
    if text_a is not None:
        used_tokenizer = resolve_tokenizer(tokenizer)
        counts_a = text_features(texts_of_column(df, text_a), used_tokenizer)
        counts_b = text_features(texts_of_column(df, text_b), used_tokenizer)
        raw = np.column_stack([normalized_difference(counts_a[f], counts_b[f]) for f in style_features])
        feature_names = list(style_features)
        content = [normalized_difference(counts_a[f], counts_b[f]) for f in CONTENT_FEATURES]
        content += [np.log1p(counts_a[f].to_numpy(float)) for f in CONTENT_FEATURES]
        content += [np.log1p(counts_b[f].to_numpy(float)) for f in CONTENT_FEATURES]
        control_cols = content
        control_names = ([f"{f} gap" for f in CONTENT_FEATURES] + [f"log {f} (a)" for f in CONTENT_FEATURES]
                         + [f"log {f} (b)" for f in CONTENT_FEATURES])
    else:
        raw_cols = [_feature_gap(df, f, "--features") for f in features]
        raw = np.column_stack(raw_cols)
        feature_names = list(features)
        control_cols, control_names = [], []
    for c in controls:
        cols, labels = _control_columns(df, c)
        control_cols.extend(cols)
        control_names.extend(labels)

    keep = ~np.isnan(y)
    n_ties = int(np.sum(y == 0.5))
    ties_dropped = int(np.sum(~keep))
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise DataError(f"{src}: column {winner!r}: no decisive battles left after dropping ties")
    a, b, y, raw = a[keep], b[keep], y[keep], raw[keep]
    _check_battle_counts(a, b, rows, src, model_a, model_b, min_battles)
    style = standardize_gaps(raw, feature_names)
    control_matrix = np.column_stack(control_cols)[keep] if control_cols else None
    return Battles(
        model_a=a, model_b=b, outcome=y, style=style, rows=rows, source=src,
        cluster=None if clusters is None else clusters[keep], controls=control_matrix, control_names=control_names,
        counts_a=None if counts_a is None else counts_a[keep].reset_index(drop=True),
        counts_b=None if counts_b is None else counts_b[keep].reset_index(drop=True),
        tokenizer=used_tokenizer, n_ties=n_ties, ties_dropped=ties_dropped,
    )


def _feature_gap(df: pd.DataFrame, name: str, option: str) -> np.ndarray:
    src = source_of(df)
    col_a, col_b = f"{name}_a", f"{name}_b"
    if col_a in df.columns and col_b in df.columns:
        ca = numeric_column(df, col_a, lower=0, what="a count")
        cb = numeric_column(df, col_b, lower=0, what="a count")
        return normalized_difference(ca, cb)
    if name in df.columns:
        return numeric_column(df, name)
    raise DataError(f"{src}: {option} {name!r}: no columns {col_a!r} and {col_b!r} (per-side counts) "
                    f"and no column {name!r} (a battle-level gap)")


def _control_columns(df: pd.DataFrame, name: str) -> tuple[list[np.ndarray], list[str]]:
    col_a, col_b = f"{name}_a", f"{name}_b"
    if col_a in df.columns and col_b in df.columns and name not in df.columns:
        ca = numeric_column(df, col_a, lower=0, what="a count")
        cb = numeric_column(df, col_b, lower=0, what="a count")
        return [normalized_difference(ca, cb), np.log1p(ca), np.log1p(cb)], \
            [f"{name} gap", f"log {name} (a)", f"log {name} (b)"]
    if name not in df.columns:
        raise DataError(f"{source_of(df)}: --controls {name!r}: no column {name!r} (nor {col_a!r} and {col_b!r})")
    matrix, labels = covariate_matrix(df, [name])
    return [matrix[:, j] for j in range(matrix.shape[1])], labels


def _check_battle_counts(a, b, rows, src, col_a, col_b, min_battles) -> None:
    labels, counts = np.unique(np.concatenate([a, b]), return_counts=True)
    if labels.shape[0] < 2:
        raise DataError(f"{src}: only one model ({labels[0]!r}) in columns {col_a!r} and {col_b!r}")
    few = np.flatnonzero(counts < min_battles)
    if few.size:
        model = labels[few[0]]
        hits = np.flatnonzero((a == model) | (b == model))
        where = ", ".join(str(int(rows[i]) + 1) for i in hits[:3])
        raise DataError(f"{src}: model {model!r} has only {int(counts[few[0]])} battle(s) (row {where}); a strength "
                        f"needs at least {min_battles}: drop the model or collect more battles")


def check_style_inputs(text_a, text_b, features, ties, style_features=()) -> None:
    """Texts for both sides or precomputed features (not both, not neither), known style features for texts,
    and a known tie rule."""
    if (text_a is None) != (text_b is None):
        raise DataError("give both --text-a and --text-b, or neither")
    if text_a is not None and features:
        raise DataError("give either --text-a/--text-b or --features, not both")
    if text_a is None and not features:
        raise DataError("give the response texts (--text-a, --text-b) or precomputed --features")
    if ties not in ("half", "drop"):
        raise ValueError(f"ties must be 'half' or 'drop', got {ties!r}")
    if text_a is not None:
        unknown = [f for f in style_features if f not in STYLE_FEATURES]
        if unknown:
            raise DataError(f"unknown style feature {unknown[0]!r}; choose from {', '.join(STYLE_FEATURES)}")
