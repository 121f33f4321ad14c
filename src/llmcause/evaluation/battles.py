"""Arena-style battles judged by an LLM everywhere and by humans on a subset.

Data. One row per battle: the two competitors (``model_a`` is the answer
shown first), the judge's pick and, on some rows, the human vote. Picks are
read as 1 (model_a wins), 0 (model_b wins) or ½ (tie): ``model_a``/``a``/
``A``/``1``/``first`` or the winner's name, and so on (`parse_picks`).

Estimands.
- Per pair {x, y}: the human win rate of x over y, P(human prefers x),
  estimated by prediction-powered inference with the judge's pick as the
  prediction (PPI++ by default; both samples are the battles of that pair).
- The human Bradley–Terry strengths r (centred log-odds), P(x beats y) =
  σ(r_x − r_y), by PPI++ for the logistic loss (Boyeau et al. 2024, "AutoEval
  done right", arXiv 2403.07008): judge picks on every battle, rectified by
  the human votes. Ranks come with uncertainty from the intervals.

Assumptions. Human votes are a random subset of the battles (missing at
random); ties count ½; the Bradley–Terry model for the strengths.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from ..core.pairwise import bradley_terry_design, elo_scale, fit_bradley_terry, rank_with_uncertainty
from ..core.surrogate import ppi_logistic, ppi_mean
from ..io import DataError, label_column, read_table, require_columns, source_of

BATTLE_METHODS = ("ppi++", "ppi", "labeled", "naive")
_FIRST = {"model_a", "a", "1", "1.0", "first", "left", "true"}
_SECOND = {"model_b", "b", "0", "0.0", "second", "right", "false"}
_TIE = {"tie", "draw", "0.5", "tie (bothbad)", "both_bad", "bothbad", "both_good", "tie(bothbad)"}


def parse_picks(values, model_a, model_b, *, column: str, source: str, allow_missing: bool) -> np.ndarray:
    """Picks as 1 (model_a won), 0 (model_b won), ½ (tie) or NaN (missing, when allowed)."""
    raw = pd.Series(values, dtype=object)
    out = np.full(raw.shape[0], np.nan)
    for i, v in enumerate(raw):
        if v is None or (isinstance(v, float) and np.isnan(v)) or (isinstance(v, str) and v.strip() == ""):
            if not allow_missing:
                raise DataError(f"{source}: column {column!r}, row {i + 1}: the pick is missing (drop the row, or "
                                "use --missing-judge drop)")
            continue
        text = str(v).strip()
        low = text.lower()
        if text == str(model_a[i]):
            out[i] = 1.0
        elif text == str(model_b[i]):
            out[i] = 0.0
        elif low in _FIRST:
            out[i] = 1.0
        elif low in _SECOND:
            out[i] = 0.0
        elif low in _TIE:
            out[i] = 0.5
        else:
            raise DataError(f"{source}: column {column!r}, row {i + 1}: {v!r} is not a pick (use model_a/model_b, "
                            "A/B, 1/0, tie, or a competitor's name)")
    return out


class Battles:
    """Validated battle arrays: competitors, judge outcome (for model_a) and human outcome (NaN if none)."""

    def __init__(self, data, *, model_a: str, model_b: str, judge: str, human: str | None,
                 cluster: str | None = None, missing_judge: str = "error"):
        df = read_table(data)
        src = source_of(df)
        cols = {"--model-a": model_a, "--model-b": model_b, "--judge": judge, "--human": human, "--cluster": cluster}
        cols = {k: v for k, v in cols.items() if v is not None}
        require_columns(df, list(cols.values()), option={v: k for k, v in cols.items()})
        if len(set(cols.values())) < len(cols):
            raise DataError("--model-a, --model-b, --judge, --human and --cluster must name different columns")
        if missing_judge not in ("error", "drop"):
            raise DataError("--missing-judge must be error or drop")
        a = label_column(df, model_a)
        b = label_column(df, model_b)
        same = np.flatnonzero(a == b)
        if same.size:
            raise DataError(f"{src}: row {int(same[0]) + 1}: {a[same[0]]!r} battles itself")
        f = parse_picks(df[judge].to_numpy(dtype=object), a, b, column=judge, source=src,
                        allow_missing=missing_judge == "drop")
        h = (np.full(df.shape[0], np.nan) if human is None else
             parse_picks(df[human].to_numpy(dtype=object), a, b, column=human, source=src, allow_missing=True))
        keep = ~np.isnan(f)
        self.n_dropped = int((~keep).sum())
        self.rows = np.flatnonzero(keep)  # positions in the input table
        self.a, self.b, self.judge, self.human = a[keep], b[keep], f[keep], h[keep]
        self.cluster = None if cluster is None else label_column(df, cluster)[keep].astype(str).astype(object)
        self.source = src
        if self.rows.size == 0:
            raise DataError(f"{src}: no battle has a judge pick")


def win_rates(battles: Battles, *, method: str = "ppi++", level: float = 0.95) -> EstimateTable:
    """Per pair {x, y} (x < y by name): the human win rate of x over y."""
    _check_method(method)
    lo = np.where(battles.a < battles.b, battles.a, battles.b)
    hi = np.where(battles.a < battles.b, battles.b, battles.a)
    flip = battles.a != lo
    f = np.where(flip, 1 - battles.judge, battles.judge)
    h = np.where(flip, 1 - battles.human, battles.human)
    out, warnings = [], []
    pairs = sorted(set(zip(lo, hi)))
    for x, y in pairs:
        sel = (lo == x) & (hi == y)
        pos = np.flatnonzero(sel)
        lab = pos[~np.isnan(h[pos])]
        unl = pos[np.isnan(h[pos])]
        name = f"{x} vs {y}"
        common = dict(name=name, estimand="human win rate of the first-named over the second", level=level)
        rows, cl = battles.rows, battles.cluster
        if method == "naive":
            v = f[pos]
            out.append(estimate_from_influence(float(v.mean()), v - v.mean(), method="naive", rows=rows[pos],
                                               cluster=None if cl is None else cl[pos],
                                               diagnostics={"n_battles": int(pos.size),
                                                            "note": "the judge's win rate"}, **common))
            continue
        if lab.size < 2:
            warnings.append(f"pair {name!r}: {lab.size} human votes; no {method} win rate")
            continue
        if method == "labeled" or unl.size == 0:
            v = h[lab]
            out.append(estimate_from_influence(float(v.mean()), v - v.mean(), method=method, rows=rows[lab],
                                               cluster=None if cl is None else cl[lab], n=int(pos.size),
                                               diagnostics={"n_labeled": int(lab.size)}, **common))
            continue
        est = ppi_mean(h[lab], f[lab], f[unl], lam=1.0 if method == "ppi" else None, method=method,
                       rows_labeled=rows[lab], rows_unlabeled=rows[unl],
                       cluster_labeled=None if cl is None else cl[lab],
                       cluster_unlabeled=None if cl is None else cl[unl],
                       diagnostics={"judge_human_agreement": float(np.mean(f[lab] == h[lab]))}, **common)
        out.append(est)
    return EstimateTable(out, warnings)


def strengths(battles: Battles, *, method: str = "ppi++", level: float = 0.95) -> EstimateTable:
    """Human Bradley–Terry strengths (centred log-odds), prediction-powered, with ranks."""
    _check_method(method)
    comps = sorted(set(battles.a) | set(battles.b))
    index = {c: i for i, c in enumerate(comps)}
    ia = np.array([index[v] for v in battles.a])
    ib = np.array([index[v] for v in battles.b])
    voted = ~np.isnan(battles.human)
    m = len(comps)
    estimand = "human strength (log-odds, centred)"
    every_vote = method in ("ppi", "ppi++") and voted.all()
    if method in ("naive", "labeled") or every_vote:  # with a vote on every battle PPI is the human fit
        sel = np.ones(ia.shape[0], dtype=bool) if method == "naive" else voted
        y = battles.judge if method == "naive" else battles.human
        if sel.sum() < 2:
            raise DataError(f"{battles.source}: fewer than two battles have a human vote")
        fit = fit_bradley_terry(battles.a[sel], battles.b[sel], y[sel], competitors=comps,
                                cluster=None if battles.cluster is None else battles.cluster[sel], method=method)
        table = fit.estimates(level=level, estimand=estimand)
        # Row ids are the input positions, so these pair with other estimates on the same battles.
        ests = [e.with_(rows=battles.rows[sel] if e.cluster is None else None) for e in table]
        if every_vote:
            ests = [e.with_(diagnostics={**e.diagnostics, "note": "every battle has a human vote: the human fit"})
                    for e in ests]
        return EstimateTable(ests)
    if voted.sum() < 2 or (~voted).sum() < 1:
        raise DataError(f"{battles.source}: {method} strengths need at least two battles with a human vote and one "
                        f"without; got {int(voted.sum())} and {int((~voted).sum())}")
    X = bradley_terry_design(ia, ib, m, np.zeros((ia.shape[0], 0)))
    L, U = np.flatnonzero(voted), np.flatnonzero(~voted)
    fit = ppi_logistic(X[L], battles.human[L], battles.judge[L], X[U], battles.judge[U],
                       lam=1.0 if method == "ppi" else None, rows_labeled=battles.rows[L],
                       rows_unlabeled=battles.rows[U])
    centre = np.zeros((m, m - 1))
    centre[1:, :] = np.eye(m - 1)
    centre -= centre.mean(axis=0)
    r = centre @ fit.coef
    psi = fit.influence @ centre.T
    cl = None
    if battles.cluster is not None:
        order = np.concatenate([L, U])
        cl = battles.cluster[order]
    ests = [estimate_from_influence(float(r[j]), psi[:, j], name=str(c), estimand=estimand, method=method,
                                    level=level, rows=fit.rows, cluster=cl,
                                    diagnostics={"lambda": fit.lam, "n_labeled": fit.n_labeled,
                                                 "n_unlabeled": fit.n_unlabeled, "elo": float(elo_scale(r[j]))})
            for j, c in enumerate(comps)]
    return EstimateTable(_with_ranks(ests, level))


def battle_study(data, *, model_a: str = "model_a", model_b: str = "model_b", judge: str = "judge",
                 human: str | None = "human", cluster: str | None = None, method: str = "ppi++",
                 missing_judge: str = "error", level: float = 0.95) -> EstimateTable:
    """Win rates per pair and Bradley–Terry strengths, from judge picks plus human votes on a subset."""
    battles = Battles(data, model_a=model_a, model_b=model_b, judge=judge, human=human, cluster=cluster,
                      missing_judge=missing_judge)
    notes = []
    if battles.n_dropped:
        notes.append(f"{battles.n_dropped} battles without a judge pick were dropped")
    if human is None and method != "naive":
        raise DataError(f"--method {method} needs --human (the human votes on a subset of the battles)")
    rates = win_rates(battles, method=method, level=level)
    table = rates
    if len(set(battles.a) | set(battles.b)) >= 2:
        table = rates + strengths(battles, method=method, level=level)
    return EstimateTable(list(table), [*notes, *table.warnings])


def _with_ranks(ests: list[Estimate], level: float) -> list[Estimate]:
    lo = np.array([e.ci_low for e in ests])
    hi = np.array([e.ci_high for e in ests])
    ranks = rank_with_uncertainty(lo, hi)
    return [e.with_(diagnostics={**e.diagnostics, "rank": int(k)}) for e, k in zip(ests, ranks)]


def _check_method(method: str) -> None:
    if method not in BATTLE_METHODS:
        raise DataError(f"unknown method {method!r}; use one of {', '.join(BATTLE_METHODS)}")


__all__ = ["Battles", "battle_study", "parse_picks", "strengths", "win_rates"]
