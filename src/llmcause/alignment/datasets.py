"""Shipped data and built-in examples.

`load_arena_battles()` returns the shipped slice of real Chatbot Arena
battles (Claude Opus 4 against Gemini 2.5 Pro and against Qwen3-235B; 552
decisive human votes, plus the picks of two LLM judges on the same
battles). The slice holds per-side style and content counts computed from
the full response texts by `features.text_features` (simple tokenizer), not
the texts themselves. Licence (MIT) and attribution: ``data/LICENSE`` and
``data/README.md`` next to the file.

Command-line inputs may name a built-in example instead of a file:
``example:arena`` (the slice, human votes), ``example:arena-judges`` (one
row per battle and annotator: human, gpt-4o-mini, gpt-5.2),
``example:world`` (a simulated arena with texts, human and LLM-judge
votes), ``example:alpaca`` (a simulated AlpacaEval-style table) and
``example:responses`` (simulated responses for rewrite experiments).
"""

from __future__ import annotations

import glob
import json
import os
from importlib import resources

import pandas as pd

from .features import CONTENT_FEATURES, STYLE_FEATURES, text_features

ARENA_FILE = "arena_battles.csv.gz"
JUDGES = ("gpt-4o-mini", "gpt-5.2")
EXAMPLES = ("arena", "arena-judges", "world", "alpaca", "responses")


def arena_battles_path() -> str:
    """Path of the shipped Arena slice (CSV, gzip)."""
    return str(resources.files("llmcause.alignment").joinpath("data", ARENA_FILE))


def load_arena_battles() -> pd.DataFrame:
    """The shipped slice: one row per battle, human vote in ``winner``, judge picks in ``judge_<name>``."""
    return pd.read_csv(arena_battles_path())


def arena_votes_long(battles: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (battle, annotator): the human vote and each LLM judge's pick (missing picks dropped).

    Columns added: ``annotator`` (human, gpt-4o-mini, gpt-5.2) and
    ``annotator_type`` (human, llm-judge); ``winner`` holds that annotator's vote.
    Cluster by ``id`` so that votes on the same battle are treated as paired.
    """
    df = load_arena_battles() if battles is None else battles.copy()
    judge_cols = [f"judge_{j}" for j in JUDGES]
    base = df.drop(columns=[c for c in judge_cols if c in df.columns])
    parts = [base.assign(annotator="human", annotator_type="human")]
    for j, col in zip(JUDGES, judge_cols):
        if col in df.columns:
            votes = df[col]
            part = base.assign(winner=votes, annotator=j, annotator_type="llm-judge")
            parts.append(part[votes.notna().to_numpy()])
    return pd.concat(parts, ignore_index=True)


def example_table(name: str, seed: int = 0) -> pd.DataFrame:
    """A built-in example table by name (see the module docstring)."""
    from .simulate import simulate_alpaca, simulate_battles, simulate_responses

    if name == "arena":
        df = load_arena_battles()
    elif name == "arena-judges":
        df = arena_votes_long()
    elif name == "world":
        df = simulate_battles(2000, 8, seed=seed, judge_share=0.4, content_effect=0.8).battles
    elif name == "alpaca":
        df = simulate_alpaca(600, seed=seed).table
    elif name == "responses":
        df = simulate_responses(400, seed=seed).responses
    else:
        raise KeyError(name)
    df.attrs["llmcause_source"] = f"example:{name}"
    return df


# --------------------------------------------------------------------------- building the slice


def build_arena_slice(folder: str) -> pd.DataFrame:
    """Derive the shipped slice from the public files (``arena_subsets/*.parquet``, ``judge_results/*.json``).

    Counts come from the full conversations: assistant turns summed (the
    LMArena convention), markdown counted outside fenced code, the simple
    tokenizer for length; ``chars`` is the length in characters.
    """
    from .arena import read_arena_battles, user_text
    from .features import count_tokens

    frames = [read_arena_battles(p) for p in sorted(glob.glob(os.path.join(folder, "arena_subsets", "*.parquet")))]
    df = pd.concat(frames, ignore_index=True)
    counts = {side: text_features(df[f"text_{side}"], "simple") for side in ("a", "b")}
    out = pd.DataFrame({
        "id": df["id"].astype(str), "model_a": df["model_a"], "model_b": df["model_b"], "winner": df["winner"],
        "language": df["language"], "is_code": df["is_code"].astype(bool), "n_turns": df["n_turns"],
        "prompt_tokens": [count_tokens(user_text(c), "simple") for c in df["conversation_a"]],
    })
    for f in [*STYLE_FEATURES, *CONTENT_FEATURES]:
        for side in ("a", "b"):
            out[f"{f}_{side}"] = counts[side][f].to_numpy()
    for side in ("a", "b"):
        out[f"chars_{side}"] = df[f"text_{side}"].str.len().to_numpy()
    for judge in JUDGES:
        picks = {}
        for path in sorted(glob.glob(os.path.join(folder, "judge_results", f"*_{judge}.json"))):
            with open(path, encoding="utf-8") as fh:
                for rec in json.load(fh):
                    pick = rec.get("judge_pick")
                    picks[str(rec["id"])] = {"A": "model_a", "B": "model_b"}.get(pick, None)
        out[f"judge_{judge}"] = [picks.get(i) for i in out["id"]]
    return out.sort_values("id", kind="stable").reset_index(drop=True)


def write_arena_slice(folder: str, path: str) -> pd.DataFrame:
    """Build the slice and write it as gzip CSV (fixed mtime, so the bytes are reproducible)."""
    import gzip

    out = build_arena_slice(folder)
    text = out.to_csv(index=False, lineterminator="\n")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
        gz.write(text.encode("utf-8"))
    return out

