"""The position-swap audit, executed: ask a judge about each battle in both orders.

For a sample of battles (prompt, answer x, answer y), the judge is asked
twice: once with x shown first, once with y shown first. With the order
randomised by design (each battle appears once in each order), the answer
shown first is as good as the second on average, so an order-blind judge
picks the first-shown answer half the time. Estimands, with CIs clustered
by battle: the first-pick rate and the position bias (rate − ½), and the
order consistency (the share of battles whose winner is the same answer in
both orders). A verdict the judge did not give (reply not parsed, call
failed) leaves that ask out, and is counted.

Reference: Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench and
Chatbot Arena" (arXiv 2306.05685), the swap test of §3.3; Wang et al. 2023,
"Large language models are not fair evaluators" (arXiv 2305.17926).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.estimate import EstimateTable
from ..io import DataError, read_table, require_columns, source_of
from .audit import position_bias


@dataclass
class SwapAudit:
    table: EstimateTable
    verdicts: pd.DataFrame  # one row per battle: both verdicts


def _texts(df: pd.DataFrame, column: str, option: str, rows: np.ndarray, src: str) -> list[str]:
    out = []
    for i in rows:
        v = df[column].iloc[i]
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            raise DataError(f"{src}: column {column!r} ({option}), row {i + 1}: the text is missing")
        out.append(str(v))
    return out


def swap_audit(data, judge, *, text_a: str, text_b: str, prompt: str | None = None, sample: int | None = 200,
               seed: int = 0, level: float = 0.95, name: str = "judge") -> SwapAudit:
    """Ask ``judge`` (``compare(prompts, a, b)``) about each sampled battle in both orders; estimate its bias."""
    df = read_table(data)
    src = source_of(df)
    cols = {"--text-a": text_a, "--text-b": text_b, "--prompt": prompt}
    cols = {k: v for k, v in cols.items() if v is not None}
    require_columns(df, list(cols.values()), option={v: k for k, v in cols.items()})
    n = df.shape[0]
    if n < 2:
        raise DataError(f"{src}: the swap audit needs at least two battles")
    rows = np.arange(n)
    if sample is not None and sample < n:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
    xs = _texts(df, text_a, "--text-a", rows, src)
    ys = _texts(df, text_b, "--text-b", rows, src)
    ps = _texts(df, prompt, "--prompt", rows, src) if prompt else [""] * rows.size
    first = list(judge.compare(ps, xs, ys))
    second = list(judge.compare(ps, ys, xs))
    if len(first) != rows.size or len(second) != rows.size:
        raise ValueError("the judge returned a different number of verdicts than battles")
    ids = [str(i + 1) for i in rows]
    frame = pd.DataFrame({
        "first": [f"{i}:x" for i in ids] + [f"{i}:y" for i in ids],
        "second": [f"{i}:y" for i in ids] + [f"{i}:x" for i in ids],
        "pick": [_pick(v) for v in first] + [_pick(v) for v in second],
        "battle": ids + ids,
        "judge": name,
    })
    table = position_bias(read_table(frame, name=f"{src} (swap audit)"), model_a="first", model_b="second",
                          pick="pick", pair="battle", group="judge", missing_judge="drop", level=level)
    missing = sum(v is None for v in first + second)
    table = EstimateTable([e.with_(diagnostics={**e.diagnostics, "battles_sampled": int(rows.size),
                                                "verdicts_missing": missing}) for e in table], table.warnings)
    verdicts = pd.DataFrame({"row": rows + 1, "x_first": first, "y_first": second})
    return SwapAudit(table, verdicts)


def _pick(v) -> str | None:
    return None if v is None else {"A": "A", "B": "B"}.get(v, "tie")
