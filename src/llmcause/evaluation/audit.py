"""Judge bias audits: position bias, agreement with the labels, and biases at a fixed label.

Position bias (randomised order). When the order in which two answers are
shown to the judge is random (or each pair is judged in both orders), the
true quality of the first answer has the same distribution as the second's,
so without a position effect the judge picks the first answer half the
time. Estimand: the first-pick rate E[F] (F = 1 when the judge picks the
answer shown first, ½ for a tie) and the position bias E[F] − ½; with human
votes on the same battles, the paired difference of the judge's and the
humans' first-pick rates. Order consistency: among pairs judged in both
orders, the share where the judge picks the same model both times. Errors
are clustered by pair when a pair column is given. References: Zheng et al.
2023, "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena" (arXiv
2306.05685); Wang et al. 2023, "Large language models are not fair
evaluators" (arXiv 2305.17926).

Agreement with the labels. Binary judge and labels: sensitivity
P(judge = 1 | label = 1), specificity P(judge = 0 | label = 0) and accuracy,
the quantities the Rogan–Gladen correction rests on (per group they check
its assumption that error rates do not depend on the group). Otherwise a
calibration curve: the mean label within bins of the judge score. All are
Hájek means over the labelled rows, weighted by 1/π when labels were drawn
with known probabilities.

Bias at a fixed label. With covariates (length, the answering model, ...),
the least-squares regression of the judge score on the label and the
covariates over the labelled rows: a covariate's coefficient is how much the
judge's score moves with it when the label is held fixed (linearly), i.e. a
length or self-preference bias. Sandwich (cluster-robust) errors.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import contrast, estimate_from_influence
from ..io import DataError, covariate_matrix, label_column, numeric_column, read_table, require_columns, source_of
from .battles import parse_picks


# --------------------------------------------------------------------------- position bias


def position_bias(data, *, model_a: str = "model_a", model_b: str = "model_b", pick: str = "judge",
                  human: str | None = None, pair: str | None = None, group: str | None = None,
                  missing_judge: str = "error", level: float = 0.95) -> EstimateTable:
    """First-pick rate, position bias, paired comparison with humans and order consistency.

    ``model_a`` is the answer shown first. ``group`` (e.g. the judge's name)
    gives one set of estimates per group; ``pair`` identifies the same
    comparison judged more than once (e.g. in both orders).
    """
    df = read_table(data)
    src = source_of(df)
    cols = {"--model-a": model_a, "--model-b": model_b, "--pick": pick, "--human": human, "--pair": pair,
            "--group": group}
    cols = {k: v for k, v in cols.items() if v is not None}
    require_columns(df, list(cols.values()), option={v: k for k, v in cols.items()})
    if len(set(cols.values())) < len(cols):
        raise DataError("--model-a, --model-b, --pick, --human, --pair and --group must name different columns")
    a = label_column(df, model_a)
    b = label_column(df, model_b)
    F = parse_picks(df[pick].to_numpy(dtype=object), a, b, column=pick, source=src,
                    allow_missing=missing_judge == "drop")
    H = (None if human is None else
         parse_picks(df[human].to_numpy(dtype=object), a, b, column=human, source=src, allow_missing=True))
    pairs = None if pair is None else label_column(df, pair).astype(str).astype(object)
    groups = label_column(df, group) if group else np.full(df.shape[0], "judge", dtype=object)
    out, warnings = [], []
    dropped = int(np.isnan(F).sum())
    if dropped:
        warnings.append(f"{dropped} rows without a judge pick were left out")
    for g in pd.unique(groups):
        sel = np.flatnonzero((groups == g) & ~np.isnan(F))
        if sel.size < 2:
            raise DataError(f"{src}: group {str(g)!r} has fewer than two judged battles")
        cl = None if pairs is None else pairs[sel]
        f = F[sel]
        rate = estimate_from_influence(float(f.mean()), f - f.mean(), name=str(g),
                                       estimand="rate of picking the answer shown first", method="randomized order",
                                       level=level, rows=sel, cluster=cl, diagnostics={"n_battles": int(sel.size)})
        bias = rate.with_(estimand="position bias (first-pick rate - 0.5)", estimate=rate.estimate - 0.5,
                          ci_low=rate.ci_low - 0.5, ci_high=rate.ci_high - 0.5)
        out += [rate, bias]
        if bias.ci_low > 0 or bias.ci_high < 0:
            warnings.append(f"{g}: the judge picks the answer shown first {rate.estimate:.1%} of the time "
                            f"(CI {rate.ci_low:.1%} to {rate.ci_high:.1%}); randomise or swap the order and "
                            "average both verdicts")
        if H is not None:
            voted = sel[~np.isnan(H[sel])]
            if voted.size >= 2:
                cl_v = None if pairs is None else pairs[voted]
                h = H[voted]
                human_rate = estimate_from_influence(float(h.mean()), h - h.mean(), name=str(g),
                                                     estimand="human rate of preferring the first answer",
                                                     method="human votes", level=level, rows=voted, cluster=cl_v)
                fv = F[voted]
                judge_rate = estimate_from_influence(float(fv.mean()), fv - fv.mean(), name=str(g), estimand="",
                                                     method="", level=level, rows=voted, cluster=cl_v)
                diff = contrast(judge_rate, human_rate, name=str(g),
                                estimand="judge minus human first-pick rate (same battles)", method="paired")
                out += [human_rate, diff.with_(diagnostics={**diff.diagnostics, "n_battles": int(voted.size)})]
        if pairs is not None:
            cons = _order_consistency(a[sel], b[sel], F[sel], pairs[sel], str(g), level)
            if cons is not None:
                out.append(cons)
    return EstimateTable(out, warnings)


def _order_consistency(a, b, f, pairs, name: str, level: float) -> Estimate | None:
    """Share of pairs judged in both orders where the judge's verdict is the same.

    A verdict is the winning model, or a tie: a judge that says "tie" in both
    orders is consistent (a tie names no position, so it cannot be an order
    effect), while a tie in one order and a win in the other is not.
    """
    tie = ("tie",)  # a tuple never equals a model name, which is a string
    winner = np.empty(f.shape[0], dtype=object)
    for i, (fi, ai, bi) in enumerate(zip(f, a, b)):
        winner[i] = ai if fi == 1 else bi if fi == 0 else tie
    frame = pd.DataFrame({"pair": pairs, "first": a, "second": b, "winner": winner})
    frame["key"] = [tuple(sorted((x, y))) for x, y in zip(frame["first"], frame["second"])]
    consistent = []
    for _, rows in frame.groupby("pair", sort=True):
        orders = rows.drop_duplicates("first")
        if orders.shape[0] < 2 or orders["key"].nunique() != 1:
            continue
        w = orders["winner"].tolist()[:2]
        consistent.append(1.0 if w[0] == w[1] else 0.0)
    if len(consistent) < 2:
        return None
    c = np.asarray(consistent)
    return estimate_from_influence(float(c.mean()), c - c.mean(), name=name,
                                   estimand="order consistency (same winner in both orders)",
                                   method="both orders", level=level,
                                   diagnostics={"n_pairs_both_orders": int(c.size)})


# --------------------------------------------------------------------------- agreement with labels


def judge_agreement(data, *, judge: str, label: str, label_prob: str | None = None, cluster: str | None = None,
                    group: str | None = None, covariates: Sequence[str] | None = None, n_bins: int = 10,
                    level: float = 0.95) -> EstimateTable:
    """How the judge relates to the labels: error rates or a calibration curve, and biases at a fixed label."""
    df = read_table(data)
    src = source_of(df)
    cov_names = list(covariates or [])
    cols = {"--judge": judge, "--label": label, "--label-prob": label_prob, "--cluster": cluster, "--group": group}
    cols = {k: v for k, v in cols.items() if v is not None}
    require_columns(df, [*cols.values(), *cov_names], option={v: k for k, v in cols.items()})
    if len(set(cols.values())) < len(cols):
        raise DataError("--judge, --label, --label-prob, --cluster and --group must name different columns")
    s = numeric_column(df, judge, what="a number (judge scores must be numeric)")
    y = numeric_column(df, label, allow_missing=True, what="a number (labels must be numeric)")
    lab = np.flatnonzero(~np.isnan(y))
    if lab.size < 2:
        raise DataError(f"{src}: column {label!r} has {lab.size} labelled rows; an audit needs at least two")
    pi = None if label_prob is None else numeric_column(df, label_prob, lower=0.0, lower_open=True, upper=1.0,
                                                       what="a probability")
    w = np.ones(df.shape[0]) if pi is None else 1.0 / pi
    clusters = None if cluster is None else label_column(df, cluster).astype(str).astype(object)
    groups = label_column(df, group) if group else np.full(df.shape[0], "all", dtype=object)
    binary = np.all(np.isin(s[lab], (0.0, 1.0))) and np.all(np.isin(y[lab], (0.0, 1.0)))
    out: list[Estimate] = []
    for g in pd.unique(groups):
        rows = lab[groups[lab] == g]
        if rows.size < 2:
            continue
        if binary:
            out += _error_rates(s, y, w, rows, clusters, str(g), level)
        else:
            out.append(_hajek(y[rows] - s[rows], w[rows], rows, clusters, str(g),
                              "mean label minus judge score", "labeled", level))
    if not binary:
        out += _calibration_curve(s, y, w, lab, clusters, n_bins, level)
    if cov_names:
        X, names = covariate_matrix(df, cov_names)
        out += _bias_regression(s, y, X, names, w, lab, clusters, level)
    return EstimateTable(out)


def _hajek(v, w, rows, clusters, name, estimand, method, level, diagnostics=None) -> Estimate:
    wn = w / w.mean()
    m = float(np.sum(wn * v) / np.sum(wn))
    return estimate_from_influence(m, wn * (v - m), name=name, estimand=estimand, method=method, level=level,
                                   rows=rows, cluster=None if clusters is None else clusters[rows],
                                   diagnostics={"n_labeled": int(rows.size), **(diagnostics or {})})


def _error_rates(s, y, w, rows, clusters, name, level) -> list[Estimate]:
    out = []
    pos, neg = rows[y[rows] == 1], rows[y[rows] == 0]
    if pos.size >= 2:
        out.append(_hajek(s[pos], w[pos], pos, clusters, name, "sensitivity: P(judge 1 | label 1)", "labeled", level))
    if neg.size >= 2:
        out.append(_hajek(1 - s[neg], w[neg], neg, clusters, name, "specificity: P(judge 0 | label 0)", "labeled",
                          level))
    out.append(_hajek((s[rows] == y[rows]).astype(float), w[rows], rows, clusters, name,
                      "accuracy: P(judge = label)", "labeled", level))
    return out


def _calibration_curve(s, y, w, lab, clusters, n_bins, level) -> list[Estimate]:
    """Mean label within quantile bins of the judge score (bins merge where scores tie)."""
    sl = s[lab]
    uniq = np.unique(sl)
    if uniq.size <= n_bins:
        edges = np.concatenate([uniq, [np.inf]])
    else:
        edges = np.unique(np.quantile(sl, np.linspace(0, 1, n_bins + 1)[:-1], method="lower"))
        edges = np.concatenate([edges, [np.inf]])
    which = np.searchsorted(edges, sl, side="right") - 1
    out = []
    for k in range(edges.size - 1):
        rows = lab[which == k]
        if rows.size < 2:
            continue
        lo, hi = float(s[rows].min()), float(s[rows].max())
        label_txt = f"judge {lo:g}" if lo == hi else f"judge {lo:g} to {hi:g}"
        out.append(_hajek(y[rows], w[rows], rows, clusters, label_txt, "mean label at this judge score",
                          "calibration curve", level,
                          {"mean_judge": float(np.average(s[rows], weights=w[rows])), "judge_low": lo,
                           "judge_high": hi}))
    return out


def _bias_regression(s, y, X, names, w, lab, clusters, level) -> list[Estimate]:
    """OLS of the judge score on [1, label, covariates] over labelled rows, sandwich influence values."""
    D = np.column_stack([np.ones(lab.size), y[lab], X[lab]])
    wl = w[lab] / w[lab].mean()
    A = D.T @ (D * wl[:, None])
    if np.linalg.matrix_rank(A) < D.shape[1]:
        raise DataError("the covariates are collinear with the label (or with each other) on the labelled rows")
    beta = np.linalg.solve(A, D.T @ (wl * s[lab]))
    resid = s[lab] - D @ beta
    psi = lab.size * (D * (wl * resid)[:, None]) @ np.linalg.inv(A)
    out = []
    for j, name in enumerate(names):
        out.append(estimate_from_influence(float(beta[2 + j]), psi[:, 2 + j], name=name,
                                           estimand="judge score shift per unit, label held fixed", method="ols",
                                           level=level, rows=lab,
                                           cluster=None if clusters is None else clusters[lab],
                                           diagnostics={"label_slope": float(beta[1]), "n_labeled": int(lab.size)}))
    return out
