"""The real data shipped with llmcause.evaluation (see data/README.md for sources and licences)."""

from __future__ import annotations

from importlib.resources import files

import pandas as pd

_DATA = files("llmcause.evaluation") / "data"


def load_cje_arena() -> pd.DataFrame:
    """cje-arena: 4 policies × 1,000 Arena prompts, judge scores, oracle labels on a subset.

    Columns: policy, prompt_id, judge_score, oracle_label (NaN when
    unlabelled), label_source (``fresh draw`` for base's 480 labels, ``probe``
    for the 50 probe labels of each other policy), response_chars. MIT licence
    (cimo-labs/cje).
    """
    with (_DATA / "cje_arena.csv.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip", keep_default_na=True)
    df["label_source"] = df["label_source"].fillna("")
    return df


def load_arena_judges(judge: str | None = None, *, drop_missing: bool = False) -> pd.DataFrame:
    """arena-judges: real Arena battles of claude-opus-4 with two LLM judges' picks and the human vote.

    Columns: judge, id, model_a, model_b, human_winner, judge_pick (``A`` =
    model_a, shown first; ``B``; NaN where the judge gave no pick). ``judge``
    keeps one judge (gpt-4o-mini or gpt-5.2); ``drop_missing`` drops the
    battles without a pick. MIT licence (yiqunchen/debias-llm-as-a-judge).
    """
    with (_DATA / "arena_judges.csv.gz").open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip")
    if judge is not None:
        if judge not in set(df["judge"]):
            raise ValueError(f"unknown judge {judge!r}; judges: {sorted(set(df['judge']))}")
        df = df[df["judge"] == judge].reset_index(drop=True)
    if drop_missing:
        df = df[df["judge_pick"].notna()].reset_index(drop=True)
    return df
