"""The mean human (or oracle) score of each group, from judge scores everywhere and labels on a subset.

Estimand. For each group g (a model, a policy, a prompt set), θ_g = E[Y | g]:
the mean of the label over the group's rows, as if every row had been
labelled. The judge score S exists on every row; the label Y on a subset.

Methods (`core.surrogate` does the estimation).
- ``calibrated`` (default): a cross-fitted isotonic calibration of Y on S
  (optionally on an index of S and covariates), learnt on the labelled rows
  of the calibration groups, applied to every row of the group, plus the
  group's own mean labelled residual (AIPW); the variance adds the
  calibration's own uncertainty.
- ``ppi++`` / ``ppi``: prediction-powered means with the judge score as the
  prediction (power-tuned λ, or λ = 1); labelled and unlabelled rows of the
  group are the two samples, exactly as ppi_py.
- ``rg``: Rogan–Gladen for a binary judge and a binary label.
- ``labeled``: the mean of the group's labels; ``naive``: the judge mean.
Labels drawn with known unequal probabilities (``label_prob``) are weighted
by 1/π in every residual correction, so active or stratified labelling stays
unbiased. Standard errors are cluster-robust when a cluster column (prompt
id) is given, and contrasts then pair groups on shared prompts.

Assumptions. Labels missing at random given the labelling probability; for
``calibrated``, E[Y | S] learnt on the calibration groups transports to a
group, except where the group's own labels correct it (checked and warned
about, see `trust`).

References. Angelopoulos et al. 2023 (PPI, Science); Angelopoulos, Duchi &
Zrnic 2023 (PPI++); Landesberg 2025, "Causal Judge Evaluation" (arXiv
2512.11150); Rogan & Gladen 1978.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from ..core.surrogate import calibrated_mean, fit_calibration, ppi_mean, ppi_mean_ipw, rogan_gladen_mean
from ..io import DataError, covariate_matrix, label_column, numeric_column, read_table, require_columns, source_of
from . import trust

METHODS = ("calibrated", "ppi++", "ppi", "rg", "labeled", "naive")
DEFAULT_GROUP = "all"


def judge_means(data, *, judge: str, label: str, group: str | None = None, cluster: str | None = None,
                label_prob: str | None = None, covariates: Sequence[str] | None = None,
                methods: Sequence[str] | str = ("calibrated",), calibrate_on: Sequence[str] | None = None,
                n_folds: int = 5, level: float = 0.95, seed: int = 0) -> EstimateTable:
    """One estimate of the mean label per group and method, with trust warnings.

    Parameters
    ----------
    data : DataFrame or path (CSV, JSONL, Parquet, ...); never modified.
    judge : column of judge scores (numeric, on every row).
    label : column of labels (numeric; empty cells mean "not labelled").
    group : optional column naming the group of each row (model, policy).
    cluster : optional cluster column (prompt id): cluster-robust errors,
        calibration folds keep clusters together, contrasts pair by cluster.
    label_prob : optional column of known labelling probabilities in (0, 1].
    covariates : optional columns the calibration may use beside the judge
        score (``calibrated`` only; text columns are one-hot encoded).
    methods : any of `METHODS`, or ``"all"``.
    calibrate_on : groups whose labels train the calibration (default: all);
        the other groups' labels are used only for their own correction and
        the transport check.

    Returns an `EstimateTable` named by group (``name``) and method
    (``method``); warnings name the group they concern.
    """
    every = isinstance(methods, str) and methods == "all"
    methods = _methods(methods)
    inputs = _read_inputs(data, judge=judge, label=label, group=group, cluster=cluster, label_prob=label_prob,
                          covariates=covariates, methods=[m for m in methods if not (every and m == "rg")])
    notes = []
    if every and not _binary_inputs(inputs):
        methods = [m for m in methods if m != "rg"]
        notes.append("rg left out: it needs a binary (0/1) judge and binary labels")
    table = _estimate(inputs, methods=methods, calibrate_on=calibrate_on, n_folds=n_folds, level=level, seed=seed)
    return EstimateTable(list(table), [*table.warnings, *notes])


def _binary_inputs(inp: "JudgeInputs") -> bool:
    return bool(np.all(np.isin(inp.score, (0.0, 1.0))) and np.all(np.isin(inp.y[inp.labeled], (0.0, 1.0))))


class JudgeInputs:
    """Validated arrays for `judge_means` (one entry per row of the table)."""

    def __init__(self, df: pd.DataFrame, score, y, groups, cluster, prob, X, label: str, group_col: str | None):
        self.df, self.score, self.y, self.groups = df, score, y, groups
        self.cluster, self.prob, self.X, self.label, self.group_col = cluster, prob, X, label, group_col
        self.labeled = ~np.isnan(y)
        self.group_names = list(pd.unique(groups))
        self.source = source_of(df)


def _read_inputs(data, *, judge, label, group, cluster, label_prob, covariates, methods) -> JudgeInputs:
    df = read_table(data)
    src = source_of(df)
    cov_names = list(covariates or [])
    named = {"--judge": judge, "--label": label, "--group": group, "--cluster": cluster, "--label-prob": label_prob}
    named = {k: v for k, v in named.items() if v is not None}
    require_columns(df, [*named.values(), *cov_names], option={v: k for k, v in named.items()})
    used = list(named.values())
    if len(set(used)) < len(used):
        raise DataError("--judge, --label, --group, --cluster and --label-prob must name different columns")
    if judge in cov_names or label in cov_names:
        raise DataError("--covariates must not include the judge or the label column")
    score = numeric_column(df, judge, what="a number (judge scores must be numeric)")
    y = numeric_column(df, label, allow_missing=True, what="a number (labels must be numeric, like the judge "
                                                         "scores; leave the cell empty when unlabelled)")
    labeled = ~np.isnan(y)
    if not labeled.any():
        raise DataError(f"{src}: column {label!r} has no values: no row is labelled, and labels are what anchors "
                        "the judge to the human scale")
    if "rg" in methods:
        _require_binary(df, judge, score, None, "--method rg needs a binary judge")
        _require_binary(df, label, y, labeled, "--method rg needs binary labels")
    groups = (label_column(df, group) if group else np.full(df.shape[0], DEFAULT_GROUP, dtype=object))
    if group:
        names, counts = np.unique(groups.astype(str), return_counts=True)
        small = names[counts < 2]
        if small.size:
            row = int(np.flatnonzero(groups.astype(str) == small[0])[0]) + 1
            raise DataError(f"{src}: column {group!r}, row {row}: group {str(small[0])!r} has only one row; a mean "
                            "and its interval need at least two rows per group")
    clusters = None if cluster is None else label_column(df, cluster).astype(str).astype(object)
    prob = None
    if label_prob is not None:
        prob = numeric_column(df, label_prob, lower=0.0, lower_open=True, upper=1.0,
                              what="a probability")
    X = None
    if cov_names:
        X, _ = covariate_matrix(df, cov_names)
    return JudgeInputs(df, score, y, groups, clusters, prob, X, label, group)


def _require_binary(df, col, values, mask, why: str) -> None:
    vals = values if mask is None else np.where(mask, values, 0.0)
    bad = np.flatnonzero(~np.isin(vals, (0.0, 1.0)))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{source_of(df)}: column {col!r}, row {i + 1}: {values[i]:g} is not 0 or 1 ({why})")


def _estimate(inp: JudgeInputs, *, methods, calibrate_on, n_folds, level, seed) -> EstimateTable:
    src = inp.source
    estimand = f"mean {inp.label}"
    calibration = None
    cal_groups: list[str] = list(inp.group_names)
    train = None
    if calibrate_on is not None:
        unknown = [g for g in calibrate_on if g not in set(map(str, inp.group_names))]
        if unknown:
            raise DataError(f"{src}: --calibrate-on names group {unknown[0]!r}, which is not in column "
                            f"{inp.group_col!r}")
        cal_groups = list(calibrate_on)
        train = np.isin(inp.groups.astype(str), cal_groups)
        if not (train & inp.labeled).any():
            raise DataError(f"{src}: the calibration groups {cal_groups} have no labelled rows")
    if "calibrated" in methods:
        n_train = int((inp.labeled if train is None else inp.labeled & train).sum())
        if n_train < 2 * n_folds:
            raise DataError(f"{src}: only {n_train} labelled rows to learn the calibration from; --method calibrated "
                            f"with {n_folds} folds needs at least {2 * n_folds} (lower --folds or use ppi++)")
        if inp.cluster is not None:
            n_cl = np.unique(inp.cluster[inp.labeled if train is None else inp.labeled & train]).shape[0]
            if n_cl < n_folds:
                raise DataError(f"{src}: the labelled rows span only {n_cl} clusters, fewer than --folds {n_folds}")
        calibration = fit_calibration(inp.score, inp.y, inp.labeled, label_prob=inp.prob, covariates=inp.X,
                                      train=train, n_folds=n_folds, cluster=inp.cluster, seed=seed)
    out: list[Estimate] = []
    warnings: list[str] = []
    for method in methods:
        for g in inp.group_names:
            subset = inp.groups == g
            est, warns = _one(inp, method, g, subset, calibration, cal_groups, train, estimand, level)
            warnings.extend(warns)
            if est is not None:
                out.append(est)
    if not out:
        raise DataError(f"{src}: no estimate could be made: " + "; ".join(warnings))
    return EstimateTable(out, warnings)


def _one(inp: JudgeInputs, method: str, g, subset, calibration, cal_groups, train, estimand, level):
    name = str(g)
    pos = np.flatnonzero(subset)
    lab = subset & inp.labeled
    n_lab = int(lab.sum())
    cl = inp.cluster
    common = dict(name=name, estimand=estimand, level=level)
    if method == "naive":
        s = inp.score[pos]
        est = estimate_from_influence(float(s.mean()), s - s.mean(), method="naive", rows=pos,
                                      cluster=None if cl is None else cl[pos],
                                      diagnostics={"note": "mean judge score: on the judge's scale, not the label's"},
                                      **common)
        return est, []
    if method == "labeled":
        if n_lab < 2:
            return None, [f"group {name!r}: {n_lab} labelled rows, so no labeled estimate"]
        lpos = np.flatnonzero(lab)
        y = inp.y[lpos]
        w = np.ones(lpos.shape[0]) if inp.prob is None else 1.0 / inp.prob[lpos]
        w = w / w.mean()
        m = float(np.sum(w * y) / np.sum(w))
        est = estimate_from_influence(m, w * (y - m), method="labeled", rows=lpos,
                                      cluster=None if cl is None else cl[lpos], n=int(pos.shape[0]),
                                      diagnostics={"n_labeled": n_lab}, **common)
        return est, trust.label_count_warnings(est)
    if method in ("ppi", "ppi++"):
        lam = 1.0 if method == "ppi" else None
        if n_lab < 2:
            return None, [f"group {name!r}: {method} needs labelled rows of the group itself; it has {n_lab}"]
        if inp.prob is not None:
            est = ppi_mean_ipw(inp.y[pos], inp.score[pos], inp.labeled[pos], label_prob=inp.prob[pos], lam=lam,
                               rows=pos, cluster=None if cl is None else cl[pos], method=method, **common)
            return est, trust.label_count_warnings(est)
        unl = subset & ~inp.labeled
        lpos, upos = np.flatnonzero(lab), np.flatnonzero(unl)
        if upos.size == 0:
            y = inp.y[lpos]
            est = estimate_from_influence(float(y.mean()), y - y.mean(), method=method, rows=lpos,
                                          cluster=None if cl is None else cl[lpos],
                                          diagnostics={"n_labeled": n_lab, "lambda": 0.0,
                                                       "note": "every row is labelled: the labelled mean"}, **common)
            return est, []
        est = ppi_mean(inp.y[lpos], inp.score[lpos], inp.score[upos], lam=lam, method=method,
                       rows_labeled=lpos, rows_unlabeled=upos,
                       cluster_labeled=None if cl is None else cl[lpos],
                       cluster_unlabeled=None if cl is None else cl[upos], **common)
        return est, trust.label_count_warnings(est)
    if method == "calibrated":
        others = [c for c in cal_groups if str(c) != name]
        est = calibrated_mean(inp.y, inp.labeled, calibration, label_prob=inp.prob, subset=subset, cluster=cl,
                              method="calibrated", **common)
        warns = trust.calibration_warnings(est, others if others else cal_groups)
        return est.with_(warnings=tuple(warns)), warns
    if method == "rg":
        train_lab = inp.labeled if train is None else inp.labeled & train
        est = rogan_gladen_mean(inp.score, np.where(inp.labeled, inp.y, 0.0), train_lab, subset=subset,
                                label_prob=inp.prob, cluster=cl, method="rg", **common)
        warns = trust.rogan_gladen_warnings(est)
        return est.with_(warnings=tuple(warns)), warns
    raise ValueError(f"unknown method {method!r}")


def _methods(methods) -> list[str]:
    if isinstance(methods, str):
        methods = list(METHODS) if methods == "all" else [methods]
    methods = list(dict.fromkeys(methods))
    for m in methods:
        if m not in METHODS:
            raise DataError(f"unknown method {m!r}; use one of {', '.join(METHODS)} or all")
    return methods
