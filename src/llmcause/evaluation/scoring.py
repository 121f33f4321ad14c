"""Fill the empty judge scores of a table by asking a judge model (``evaluation judge --judge-model``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import DataError, require_columns, show_value, source_of


def score_missing(df: pd.DataFrame, model, *, judge: str, response: str, prompt: str | None = None
                  ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """A copy of ``df`` whose empty ``judge`` cells hold ``model.score(prompts, responses)``, notes and warnings.

    Rows the model could not score (no answer, or no number in its reply)
    are left out, with a note: the estimate then assumes they are missing at
    random. Cells that already hold a score are never re-asked.
    """
    src = source_of(df)
    cols = {"--judge": judge, "--response": response, "--prompt": prompt}
    cols = {k: v for k, v in cols.items() if v is not None}
    if judge not in df.columns:
        df = df.copy()
        df[judge] = np.nan
    require_columns(df, list(cols.values()), option={v: k for k, v in cols.items()})
    out = df.copy()
    raw = out[judge]
    scores = pd.to_numeric(raw, errors="coerce")
    bad = raw.notna() & (raw.astype(str).str.strip() != "") & scores.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{src}: column {judge!r}, row {i + 1}: {show_value(raw.iloc[i])} is not a number")
    todo = np.flatnonzero(scores.isna().to_numpy())
    notes: list[str] = []
    warnings: list[str] = []
    if todo.size:
        texts = out[response].iloc[todo]
        if texts.isna().any():
            i = int(todo[np.flatnonzero(texts.isna().to_numpy())[0]])
            raise DataError(f"{src}: column {response!r}, row {i + 1}: no response text to score")
        prompts = None if prompt is None else [str(p) for p in out[prompt].iloc[todo].fillna("")]
        new = np.asarray(model.score(prompts, [str(t) for t in texts]), dtype=float)
        if new.shape[0] != todo.size:
            raise ValueError("the judge model returned a different number of scores than rows")
        scores.iloc[todo] = new
        notes.append(f"{todo.size} empty judge scores asked of the judge model")
    out[judge] = scores
    missing = int(scores.isna().sum())
    if missing:
        out = out[scores.notna().to_numpy()].reset_index(drop=True)
        out.attrs.update(df.attrs)
        warnings.append(f"{missing} rows the judge model could not score were left out (assumed missing at random)")
    return out, notes, warnings
