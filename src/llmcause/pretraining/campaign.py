"""Run a design through `llmcause.runs`, and read results back as a table.

`read_design` checks a design table (a file or DataFrame) with messages that
name the file, column and row. `run_design` executes it resumably in a run
store. `results_table` / `load_results` return one row per run: the design
columns plus ``bpb:<domain>`` (held-out bits per byte of each domain).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..io import DataError, numeric_column, read_table, require_columns, source_of
from ..runs import CampaignSummary, RunStore, run_campaign
from .corpus import load_corpus
from .designs import WEIGHT_PREFIX, design_domains
from .proxy import WEIGHT_TOLERANCE, ProxyConfig, proxy_run, run_params

__all__ = ["read_design", "run_design", "results_table", "load_results", "LOSS_PREFIX", "loss_columns",
           "drop_failed_runs", "runs_left_out", "left_out_warnings"]

LOSS_PREFIX = "bpb:"
REQUIRED = ("seed", "budget", "order")
LABELS = ("run", "kind", "arm", "varied", "contrast", "mixture", "seed", "budget", "order", "block", "alpha")


def loss_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if str(c).startswith(LOSS_PREFIX)]


def read_design(source: Any) -> pd.DataFrame:
    """A checked copy of a design: known domains, weights ≥ 0 summing to 1, positive budget, order 1–7."""
    df = read_table(source)
    src = source_of(df)
    require_columns(df, REQUIRED)
    domains = design_domains(df)
    if not domains:
        raise DataError(f"{src}: no weight columns; name them {WEIGHT_PREFIX}<domain>, e.g. {WEIGHT_PREFIX}code")
    corpus = load_corpus()
    for d in domains:
        if d not in corpus.names:
            raise DataError(f"{src}: column {WEIGHT_PREFIX + d!r}: unknown domain {d!r}; the corpus has: "
                            f"{', '.join(corpus.names)}")
    W = np.column_stack([numeric_column(df, WEIGHT_PREFIX + d, lower=0.0) for d in domains])
    totals = W.sum(axis=1)
    bad = np.flatnonzero(np.abs(totals - 1.0) > WEIGHT_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{src}: row {i + 1}: the weights ({', '.join(WEIGHT_PREFIX + d for d in domains)}) sum to "
                        f"{totals[i]:.6g}, not 1")
    for col, lo, hi in (("seed", 0, 2**63 - 1), ("budget", 1, 10**10), ("order", 1, 7)):
        values = numeric_column(df, col, lower=lo, upper=hi)
        frac = np.flatnonzero(values != np.round(values))
        if frac.size:
            i = int(frac[0])
            raise DataError(f"{src}: column {col!r}, row {i + 1}: {values[i]:g} is not a whole number")
        df[col] = values.astype(np.int64)
    if "block" in df.columns:
        df["block"] = numeric_column(df, "block", lower=16).astype(np.int64)
    else:
        df["block"] = ProxyConfig().block
    if "run" not in df.columns:
        df.insert(0, "run", np.arange(1, len(df) + 1))
    if "kind" not in df.columns:
        df["kind"] = "custom"
    for col in ("arm", "varied", "contrast"):
        if col not in df.columns:
            df[col] = ""
        df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    if "arm" in df.columns and (df["arm"] == "").all():
        df["arm"] = [f"mixture {i + 1}" for i in range(len(df))]
    if "mixture" not in df.columns:
        df["mixture"] = pd.factorize(pd.Series([tuple(np.round(r, 9)) for r in W]))[0] + 1
    return df


def _params(design: pd.DataFrame) -> list[dict]:
    domains = design_domains(design)
    out = []
    for row in design.itertuples(index=False):
        rec = dict(zip(design.columns, row))
        weights = {d: float(rec[WEIGHT_PREFIX + d]) for d in domains}
        config = ProxyConfig(int(rec["order"]), int(rec["budget"]), int(rec["block"]))
        out.append(run_params(weights, int(rec["seed"]), config))
    return out


def _labels(design: pd.DataFrame) -> list[dict]:
    keep = [c for c in design.columns if c in LABELS or str(c).startswith(WEIGHT_PREFIX)]
    records = design[keep].to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()} for r in records]


def run_design(design: pd.DataFrame, store: RunStore | None = None, *, executor: Any = "serial",
               workers: int | None = None, campaign: str = "design", progress: bool | None = None
               ) -> tuple[CampaignSummary, pd.DataFrame]:
    """Execute every run of the design not yet in ``store``; return the summary and the results table."""
    design = read_design(design)
    store = store if store is not None else RunStore(":memory:")
    params = _params(design)
    summary = run_campaign(proxy_run, params, store=store, executor=executor, workers=workers, campaign=campaign,
                           labels=_labels(design), progress=progress, description="proxy runs")
    return summary, results_table(design, store, summary.keys)


def results_table(design: pd.DataFrame, store: RunStore, keys) -> pd.DataFrame:
    """The design with one ``bpb:<domain>`` column per held-out domain (NaN where a run has no result)."""
    out = design.copy()
    corpus = load_corpus()
    values = {d: [] for d in corpus.names}
    for key in keys:
        row = store.get(key)
        bpb = row["result"]["bpb"] if row and row["status"] == "done" else {}
        for d in corpus.names:
            values[d].append(bpb.get(d, np.nan))
    for d in corpus.names:
        out[LOSS_PREFIX + d] = values[d]
    return out


FAILED_RUNS_ATTR = "llmcause_runs_left_out"


def runs_left_out(frame: pd.DataFrame) -> dict[str, int]:
    """Runs of the campaigns behind ``frame`` that have no result: ``{"failed": n, "not_run": m}``."""
    return dict(frame.attrs.get(FAILED_RUNS_ATTR, {"failed": 0, "not_run": 0}))


def left_out_warnings(frame: pd.DataFrame) -> list[str]:
    """One warning line saying how many registered runs an analysis of ``frame`` leaves out, and why."""
    gone = runs_left_out(frame)
    parts = []
    if gone.get("failed"):
        parts.append(f"{gone['failed']} failed")
    if gone.get("not_run"):
        parts.append(f"{gone['not_run']} never finished")
    if not parts:
        return []
    total = gone.get("failed", 0) + gone.get("not_run", 0)
    return [f"{total} registered proxy run{'s' if total != 1 else ''} ({' and '.join(parts)}) have no result and "
            "are left out of this analysis; rerun the campaign with the same store to complete them"]


def load_results(store: RunStore, campaign: str | None = None) -> pd.DataFrame:
    """Every finished proxy run registered in the store's campaigns (or one campaign), as a results table.

    Runs that failed or never finished have no losses and are left out; their
    counts are in ``runs_left_out(frame)`` (and ``left_out_warnings``) so that
    no analysis drops them without saying so.
    """
    rows = []
    corpus = load_corpus()
    failed = not_run = 0
    for task in store.tasks(campaign):
        if task["status"] != "done" or not isinstance(task["result"], dict) or "bpb" not in task["result"]:
            if task["status"] == "failed":
                failed += 1
            else:
                not_run += 1
            continue
        rec = {"campaign": task["campaign"], **task["labels"]}
        rec.update({LOSS_PREFIX + d: task["result"]["bpb"].get(d, np.nan) for d in corpus.names})
        rows.append(rec)
    if not rows:
        empty = pd.DataFrame()
        empty.attrs[FAILED_RUNS_ATTR] = {"failed": failed, "not_run": not_run}
        return empty
    frame = pd.DataFrame(rows)
    rank = {d: i for i, d in enumerate(corpus.names)}
    w_cols = sorted((c for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)),
                    key=lambda c: rank.get(c[len(WEIGHT_PREFIX):], len(rank)))
    frame[w_cols] = frame[w_cols].fillna(0.0)
    labels = [c for c in ("campaign", *LABELS) if c in frame.columns]
    other = [c for c in frame.columns if c not in labels and c not in w_cols and not str(c).startswith(LOSS_PREFIX)]
    frame = frame[[*labels, *other, *w_cols, *(LOSS_PREFIX + d for d in corpus.names)]].copy()
    frame.attrs[FAILED_RUNS_ATTR] = {"failed": failed, "not_run": not_run}
    return frame


def drop_failed_runs(results: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows with no loss at all (runs that failed) removed, and how many there were.

    A results table written by ``run_design`` keeps a failed run's row with
    empty losses; analyses need the rows that have them. A row with some losses
    but not all is not a failed run and is left for the checks to refuse.
    """
    cols = loss_columns(results)
    if not cols:
        return results, 0
    empty = results[cols].isna().all(axis=1).to_numpy()
    if not empty.any():
        return results, 0
    kept = results.loc[~empty].copy()
    kept.attrs = dict(results.attrs)
    gone = runs_left_out(results)
    gone["failed"] = gone.get("failed", 0) + int(empty.sum())
    kept.attrs[FAILED_RUNS_ATTR] = gone
    return kept, int(empty.sum())
