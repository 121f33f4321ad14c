"""Reading Chatbot Arena's public battle files and normalising votes.

Arena's releases store each side of a battle as a conversation: a list of
turns ``{"role": "user" | "assistant", "content": ...}`` where content is a
string (2023 release) or a list of parts ``{"type": "text", "text": ...}``
(2025 releases). The winner is ``model_a``, ``model_b``, ``tie`` or
``tie (bothbad)`` / ``both_bad``. The Kaggle release instead holds JSON
lists of strings (``prompt``, ``response_a``, ``response_b``) and 0/1
columns ``winner_model_a``, ``winner_model_b``, ``winner_tie``. All of them
are read here into one shape: model_a, model_b, winner (model_a, model_b or
tie), text_a, text_b (assistant turns joined), prompt, n_turns, plus the
file's other columns.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from ..io import DataError, read_table, require_columns, show_value, source_of

WIN_A = ("model_a", "a")
WIN_B = ("model_b", "b")
TIES = ("tie", "tie (bothbad)", "both_bad", "bothbad", "tie_bothbad")
TURN_SEPARATOR = "\n\n"


class ConversationError(ValueError):
    """A value that is neither a text nor a conversation."""


def _parts_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple, np.ndarray)):
        return "".join(_parts_text(p) for p in content)
    raise ConversationError(f"turn content of type {type(content).__name__}")


def _as_turns(value: Any) -> list | None:
    """A conversation as a list (decoding JSON text), or None when the value is plain text."""
    if isinstance(value, np.ndarray):
        return list(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        s = value.lstrip()
        if s.startswith("[") and s.rstrip().endswith("]"):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                return None
            if isinstance(decoded, list) and all(isinstance(t, (dict, str)) or t is None for t in decoded):
                return decoded
        return None
    raise ConversationError(f"a value of type {type(value).__name__}")


def _turns_of(value: Any, role: str) -> list[str]:
    turns = _as_turns(value)
    if turns is None:
        return [value] if role == "assistant" else []
    out = []
    for t in turns:
        if t is None:  # Kaggle: a missing response in a list of strings
            if role == "assistant":
                out.append("")
        elif isinstance(t, str):  # a list of responses (Kaggle) holds one side's turns only
            out.append(t)
        elif isinstance(t, dict):
            if str(t.get("role", "")).lower() in (role, "gpt" if role == "assistant" else "human"):
                out.append(_parts_text(t.get("content", t.get("value"))))
        else:
            raise ConversationError(f"a turn of type {type(t).__name__}")
    return out


def assistant_text(value: Any) -> str:
    """The assistant's text: a plain string as is, or a conversation's assistant turns joined."""
    return TURN_SEPARATOR.join(_turns_of(value, "assistant"))


def user_text(value: Any) -> str:
    """The user's turns of a conversation, joined (empty for plain text)."""
    return TURN_SEPARATOR.join(_turns_of(value, "user"))


def assistant_turn_count(value: Any) -> int:
    return len(_turns_of(value, "assistant"))


def texts_of_column(df: pd.DataFrame, col: str) -> list[str]:
    """Assistant texts of a column of strings or conversations; missing or malformed cells are errors."""
    require_columns(df, [col])
    src = source_of(df)
    out = []
    for i, value in enumerate(df[col].tolist()):
        out.append(text_of_cell(value, f"{src}: column {col!r}, row {i + 1}"))
    return out


def text_of_cell(value, where: str) -> str:
    """The assistant text of one cell (a string or a conversation); ``where`` names the cell in an error."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        raise DataError(f"{where}: the text is missing")
    try:
        return assistant_text(value)
    except ConversationError as exc:
        raise DataError(f"{where}: expected a text or a conversation (a list of turns), got {exc}") from None


def winner_outcome(df: pd.DataFrame, col: str, *, ties: str = "half") -> np.ndarray:
    """The vote as P(a wins): model_a → 1, model_b → 0, tie → ½ (``ties='drop'``: NaN).

    Accepted labels (case-insensitive): model_a, a; model_b, b; tie, tie (bothbad),
    both_bad. A numeric column is read as the probability that a wins, in [0, 1].
    """
    require_columns(df, [col])
    src = source_of(df)
    raw = df[col]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        raise DataError(f"{src}: column {col!r}, row {int(missing[0]) + 1}: the winner is missing")
    if pd.api.types.is_bool_dtype(raw):
        raise DataError(f"{src}: column {col!r} is true/false; the winner must be model_a, model_b or tie "
                        "(or the probability that model_a wins)")
    if pd.api.types.is_numeric_dtype(raw):
        y = raw.to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(y) | (y < 0) | (y > 1))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{src}: column {col!r}, row {i + 1}: {show_value(raw.iloc[i])} is not a probability that "
                            "model_a wins (must be in [0, 1])")
        return y
    text = raw.astype(str).str.strip().str.lower().to_numpy()
    y = np.full(text.shape[0], np.nan)
    y[np.isin(text, WIN_A)] = 1.0
    y[np.isin(text, WIN_B)] = 0.0
    is_tie = np.isin(text, TIES)
    y[is_tie] = 0.5 if ties == "half" else np.nan
    bad = np.flatnonzero(np.isnan(y) & ~is_tie)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{src}: column {col!r}, row {i + 1}: unknown winner value {show_value(raw.iloc[i])} "
                        "(use model_a, model_b or tie)")
    return y


def is_arena_file(df: pd.DataFrame) -> bool:
    """True when the columns are those of an Arena battle release (judged by structure, not by values)."""
    cols = set(df.columns)
    sides = {"conversation_a", "conversation_b"} <= cols or {"response_a", "response_b"} <= cols
    votes = "winner" in cols or {"winner_model_a", "winner_model_b", "winner_tie"} <= cols
    return sides and votes and {"model_a", "model_b"} <= cols


def read_arena_battles(source, *, name: str | None = None, missing: str = "drop") -> pd.DataFrame:
    """Read an Arena battle file (any release) into model_a, model_b, winner, text_a, text_b, prompt, n_turns.

    Other columns (id, language, is_code, judge, ...) are kept. The input
    DataFrame is not modified. An empty answer (a turn with no text) is an
    answer of length 0. A battle whose conversation is missing altogether is
    left out with one warning counting such battles, kept in
    ``out.attrs["warnings"]`` (``missing="error"``: a `DataError` naming the
    first such row).
    """
    if missing not in ("drop", "error"):
        raise ValueError("missing must be 'drop' or 'error'")
    df = read_table(source, name=name)
    src = source_of(df)
    warnings = []
    if missing == "drop":
        sides = [c for c in ("conversation_a", "conversation_b", "response_a", "response_b") if c in df.columns]
        absent = df[sides].isna().any(axis=1).to_numpy() if sides else np.zeros(len(df), dtype=bool)
        if absent.any():
            rows = np.flatnonzero(absent) + 1
            shown = ", ".join(str(r) for r in rows[:5]) + (", ..." if rows.size > 5 else "")
            warnings.append(f"{src}: {rows.size} of {len(df)} battles have no answer text on one side (rows "
                            f"{shown}) and were left out (--missing-text error to stop instead)")
            kept = df.loc[~absent].reset_index(drop=True)
            kept.attrs.update(df.attrs)
            df = kept
    out = df.copy()
    if {"conversation_a", "conversation_b"} <= set(df.columns):
        side_a, side_b, prompt_col = "conversation_a", "conversation_b", "conversation_a"
    elif {"response_a", "response_b"} <= set(df.columns):
        side_a, side_b, prompt_col = "response_a", "response_b", "prompt" if "prompt" in df.columns else None
    else:
        raise DataError(f"{src}: not an Arena battle file: expected columns conversation_a and conversation_b "
                        "(or response_a and response_b)")
    require_columns(df, ["model_a", "model_b"])
    if "winner" not in df.columns:
        kaggle = ["winner_model_a", "winner_model_b", "winner_tie"]
        if not set(kaggle) <= set(df.columns):
            raise DataError(f"{src}: no column 'winner' (nor winner_model_a, winner_model_b, winner_tie)")
        flags = df[kaggle].to_numpy(dtype=float)
        bad = np.flatnonzero(flags.sum(axis=1) != 1)
        if bad.size:
            raise DataError(f"{src}: row {int(bad[0]) + 1}: exactly one of winner_model_a, winner_model_b and "
                            "winner_tie must be 1")
        out["winner"] = np.array(["model_a", "model_b", "tie"])[flags.argmax(axis=1)]
    out["text_a"] = texts_of_column(df, side_a)
    out["text_b"] = texts_of_column(df, side_b)
    if prompt_col is not None:
        prompts = []
        for i, value in enumerate(df[prompt_col].tolist()):
            try:
                turns = _as_turns(value)
            except ConversationError:
                turns = None
            if turns is not None and turns and all(isinstance(t, str) or t is None for t in turns):
                prompts.append(TURN_SEPARATOR.join(t or "" for t in turns))  # Kaggle: a list of prompts
            else:
                prompts.append(user_text(value) if value is not None else "")
        out["prompt"] = prompts
    out["n_turns"] = [max(1, assistant_turn_count(v)) for v in df[side_a].tolist()]
    out.attrs.update(df.attrs)
    out.attrs["warnings"] = warnings
    return out
