"""`judge_means` over a Parquet log larger than memory, locally or on a Ray cluster.

The same estimands and methods as `means.judge_means`, computed as
partition → combine → finish (`core.partitioned`):

- ``naive``, ``labeled``, ``ppi`` and ``ppi++`` are exact: one pass, and the
  result equals the in-memory estimate on the whole table (to rounding).
- ``calibrated`` needs the calibration, which is learnt on a seeded sample of
  at most ``sample_rows`` labelled rows (all of them when there are fewer,
  which is the usual case: labels are scarce). Sample membership and the
  calibration folds come from a salted hash of the cluster (or, without one, of
  the row's place: file and row number, `scan.row_place`; never its values, which
  0/1 scores and labels would give four patterns), so neither depends on the
  batches or the engine (nor, with a cluster, on how the log is split into files). A second pass applies the calibrators to every row.

``rg`` and ``--covariates`` are in-memory only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core import partitioned as P
from ..core.estimate import Estimate, EstimateTable
from ..core.surrogate import IsotonicCalibrator
from ..io import DataError
from ..scan import (DEFAULT_BATCH_ROWS, Batch, ParquetDataset, hash_rows, labels, numeric, reused_heap, row_place,
                    run_partitions)
from . import trust
from .means import DEFAULT_GROUP, METHODS, _methods

DEFAULT_SAMPLE_ROWS = 200_000
_FOLD_KEY, _SAMPLE_KEY = "llmcause folds {seed}", "llmcause sample {seed}"


@dataclass(frozen=True)
class JudgeColumns:
    judge: str
    label: str
    group: str | None
    cluster: str | None
    label_prob: str | None

    @property
    def names(self) -> list[str]:
        return [c for c in (self.judge, self.label, self.group, self.cluster, self.label_prob) if c is not None]


@dataclass(frozen=True)
class CalibrationPlan:
    """What every partition needs to apply a calibration learnt on a sample."""

    full: IsotonicCalibrator
    without: tuple
    seed: int
    threshold: int  # sampled rows: labelled training rows whose sample hash is at most this
    train_groups: tuple | None
    score_range: tuple[float, float]
    n_rows: int


@dataclass
class _Rows:
    score: np.ndarray
    y: np.ndarray
    labeled: np.ndarray
    groups: tuple  # (codes, keys), as `scan.labels`
    cluster: tuple | None
    prob: np.ndarray | None
    place: tuple | None = None  # (file, row number) when no cluster: see `scan.row_place`


def _read_batch(cols: JudgeColumns, batch: Batch) -> _Rows:
    score = numeric(batch, cols.judge, what="a number (judge scores must be numeric)")
    y = numeric(batch, cols.label, allow_missing=True, what="a number (labels must be numeric)")
    groups = (labels(batch, cols.group) if cols.group else
              (np.zeros(batch.n, dtype=np.int64), np.array([DEFAULT_GROUP], dtype=object)))
    cluster = labels(batch, cols.cluster) if cols.cluster else None
    prob = None
    if cols.label_prob:
        prob = numeric(batch, cols.label_prob, lower=0.0, lower_open=True, upper=1.0, what="a probability")
    return _Rows(score, y, ~np.isnan(y), groups, cluster, prob, None if cluster is not None else row_place(batch))


def _unit_hash(rows: _Rows, key: str) -> np.ndarray:
    """Folds and samples by the cluster, else by the row's place in the log (never by its values)."""
    if rows.cluster is not None:
        return hash_rows(key, rows.cluster)
    return hash_rows(key, *rows.place)


def _blocks(methods: Sequence[str], prob: bool):
    """How to read each estimator's components off the stacked moments of `judge_partition`."""
    if not prob:
        # [R, RY, Rf, U, Uf, 1]: naive = [1, Rf + Uf]; labeled = [R, R, RY, 1]; ppi = the block itself
        naive = np.zeros((6, 2))
        naive[5, 0], naive[2, 1], naive[4, 1] = 1.0, 1.0, 1.0
        labeled = np.zeros((6, 4))
        labeled[0, 0], labeled[0, 1], labeled[1, 2], labeled[5, 3] = 1.0, 1.0, 1.0, 1.0
        return {"naive": lambda m: m.transform(naive), "labeled": lambda m: m.transform(labeled),
                "ppi": lambda m: m}
    out, start = {}, 0
    wanted = (("naive", 2, "naive" in methods),
              ("labeled", 4, any(m in methods for m in ("labeled", "ppi", "ppi++"))),
              ("ppi", 6, any(m in methods for m in ("ppi", "ppi++"))))
    for name, size, want in wanted:
        if want:
            cols = np.arange(start, start + size)
            out[name] = functools.partial(_select, cols=cols)
            start += size
    return out


def _select(m, cols):
    return m.select(cols)


def judge_partition(cols: JudgeColumns, methods: tuple, n_folds: int, plan: CalibrationPlan | None,
                    sample: tuple | None, batch: Batch) -> tuple:
    """One batch: its groups in order of appearance, its moments per group and (when ``sample`` = (seed,
    training groups, size)) its candidate calibration rows."""
    rows = _read_batch(cols, batch)
    prob = rows.prob is not None
    blocks = []
    ppi_like = prob or "ppi" in methods or "ppi++" in methods or "labeled" in methods
    fast = rows.cluster is None and "calibrated" not in methods
    if not prob and (ppi_like or "naive" in methods):
        # one block [R, RY, Rf, U, Uf, 1] serves naive, labeled, ppi and ppi++ (see `_blocks`)
        blocks.append(None if fast else P.ppi_components(rows.y, rows.score, rows.labeled, rows=True))
    else:
        if "naive" in methods:
            blocks.append(P.mean_components(rows.score, rows=True))
        if "labeled" in methods or "ppi" in methods or "ppi++" in methods:
            blocks.append(P.weighted_mean_components(rows.y, rows.labeled, 1.0 / rows.prob, rows=True))
        if "ppi" in methods or "ppi++" in methods:
            blocks.append(P.ppi_ipw_components(rows.y, rows.score, rows.labeled, rows.prob, rows=True))
    if "calibrated" in methods:
        full, oof, wf = _calibrated_predictions(plan, rows, n_folds)
        blocks.append(P.calibrated_components(rows.y, rows.labeled, full, oof, wf, rows.score, plan.score_range,
                                              rows.prob, rows=True))
    present = np.bincount(rows.groups[0], minlength=rows.groups[1].shape[0]) > 0
    order = rows.groups[1][present].tolist()
    if blocks and blocks[0] is None:
        # only the [R, RY, Rf, U, Uf, 1] block: its sums by bincounts, without forming it
        moments = P.ppi_group_moments(rows.y, rows.score, rows.labeled, rows.groups)
        candidates = None if sample is None else _sample_rows(rows, *sample, n_folds)
        return order, moments, candidates
    moments = P.partition_moments(blocks[0] if len(blocks) == 1 else np.vstack(blocks), rows.groups, rows.cluster, rows=True) if blocks else {}
    candidates = None if sample is None else _sample_rows(rows, *sample, n_folds)
    return order, moments, candidates


def _calibrated_predictions(plan: CalibrationPlan, rows: _Rows, n_folds: int):
    full = plan.full.predict(rows.score)
    wf = np.column_stack([m.predict(rows.score) for m in plan.without])
    sampled = _training_rows(rows, plan.train_groups) & (_unit_hash(rows, _SAMPLE_KEY.format(seed=plan.seed))
                                                         <= np.uint64(plan.threshold))
    oof = full.copy()
    if sampled.any():
        fold = (_unit_hash(rows, _FOLD_KEY.format(seed=plan.seed)) % np.uint64(n_folds)).astype(np.int64)
        idx = np.flatnonzero(sampled)
        oof[idx] = wf[idx, fold[idx]]
    return full, oof, wf


def _training_rows(rows: _Rows, train_groups) -> np.ndarray:
    keep = rows.labeled
    if train_groups is not None:
        keep = keep & np.isin(rows.groups[1], list(train_groups))[rows.groups[0]]
    return keep


def _take(labels: tuple, idx: np.ndarray) -> tuple:
    return labels[0][idx], labels[1]


def _sample_rows(rows: _Rows, seed: int, train_groups, sample_rows: int, n_folds: int) -> dict | None:
    """The labelled training rows of one batch with the smallest sample hashes (at most ``sample_rows``)."""
    keep = np.flatnonzero(_training_rows(rows, train_groups))
    if keep.size == 0:
        return None
    sub = _Rows(rows.score[keep], rows.y[keep], rows.labeled[keep], _take(rows.groups, keep),
                None if rows.cluster is None else _take(rows.cluster, keep),
                None if rows.prob is None else rows.prob[keep],
                None if rows.place is None else (_take(rows.place[0], keep), rows.place[1][keep]))
    h = _unit_hash(sub, _SAMPLE_KEY.format(seed=seed))
    fold = (_unit_hash(sub, _FOLD_KEY.format(seed=seed)) % np.uint64(n_folds)).astype(np.int64)
    part = {"hash": h, "score": sub.score, "y": sub.y, "w": np.ones(keep.size) if sub.prob is None else 1 / sub.prob,
            "fold": fold, "cluster": None if sub.cluster is None else sub.cluster[1][sub.cluster[0]]}
    return _bottom(part, sample_rows)


def _bottom(part: dict, k: int) -> dict:
    """Keep the rows whose hash is among the k smallest (all rows tied with the k-th are kept)."""
    if part["hash"].shape[0] <= k:
        return part
    cut = np.partition(part["hash"], k - 1)[k - 1]
    keep = part["hash"] <= cut
    return {key: (None if v is None else v[keep]) for key, v in part.items()}


def _merge_samples(parts: list, k: int) -> dict | None:
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    merged = {key: (None if parts[0][key] is None else np.concatenate([p[key] for p in parts])) for key in parts[0]}
    return _bottom(merged, k)


@reused_heap()  # one scope over all the passes and the fits between them
def judge_means_streamed(path, *, judge: str, label: str, group: str | None = None, cluster: str | None = None,
                         label_prob: str | None = None, methods: Sequence[str] | str = ("calibrated",),
                         calibrate_on: Sequence[str] | None = None, n_folds: int = 5, level: float = 0.95,
                         seed: int = 0, engine: str = "local", address: str | None = None,
                         sample_rows: int = DEFAULT_SAMPLE_ROWS, batch_rows: int = DEFAULT_BATCH_ROWS,
                         progress=None) -> EstimateTable:
    """`means.judge_means` on a Parquet file, directory or glob, scanned out of core (``engine`` local or ray)."""
    every = isinstance(methods, str) and methods == "all"
    methods = tuple(_methods(methods))
    notes = []
    if "rg" in methods:
        if not every:
            raise DataError("--method rg is available in memory only (read a single file without --engine)")
        methods = tuple(m for m in methods if m != "rg")
        notes.append("rg left out: out of core it is not available")
    ds = path if isinstance(path, ParquetDataset) else ParquetDataset(path)
    cols = JudgeColumns(judge, label, group, cluster, label_prob)
    named = {"--judge": judge, "--label": label, "--group": group, "--cluster": cluster, "--label-prob": label_prob}
    named = {k: v for k, v in named.items() if v is not None}
    ds.require(list(named.values()), option={v: k for k, v in named.items()})
    if len(set(named.values())) < len(named):
        raise DataError("--judge, --label, --group, --cluster and --label-prob must name different columns")
    run = functools.partial(run_partitions, ds, cols.names, engine=engine, address=address, batch_rows=batch_rows,
                            dictionary=[c for c in (group, cluster) if c])
    train_groups = None if calibrate_on is None else tuple(map(str, calibrate_on))
    exact = tuple(m for m in methods if m != "calibrated")
    sample = (seed, train_groups, sample_rows) if "calibrated" in methods else None
    first = _Collector(sample_rows)
    run(functools.partial(judge_partition, cols, exact, n_folds, None, sample), first.add, progress=progress)
    if not first.order:
        raise DataError(f"{ds.label}: the dataset has no rows")
    plan = calibrated = None
    if sample is not None:
        plan = _fit_calibration(ds.label, first.sample, train_groups, n_folds, seed)
        second = _Collector(sample_rows)
        run(functools.partial(judge_partition, cols, ("calibrated",), n_folds, plan, None), second.add,
            progress=progress)
        calibrated = second.moments.result()
    return _finish(ds.label, cols, methods, list(first.order), first.moments.result(), calibrated, plan, calibrate_on,
                   n_folds, level, notes)


class _Collector:
    """Merges partition results as they arrive: group order, moments, and the running calibration sample."""

    def __init__(self, sample_rows: int):
        self.order: dict = {}
        self.moments = P.MomentsAccumulator()
        self.sample = None
        self.sample_rows = sample_rows

    def add(self, part) -> None:
        order, grouped, candidates = part
        self.order.update(dict.fromkeys(order))
        self.moments.add(grouped)
        if candidates is not None:
            self.sample = _merge_samples([self.sample, candidates], self.sample_rows)


def _fit_calibration(src, sample, train_groups, n_folds, seed) -> CalibrationPlan:
    if sample is None:
        what = f"the calibration groups {list(train_groups)}" if train_groups else "the dataset"
        raise DataError(f"{src}: {what} have no labelled rows")
    n = sample["y"].shape[0]
    if n < 2 * n_folds:
        raise DataError(f"{src}: only {n} labelled rows to learn the calibration from; --method calibrated "
                        f"with {n_folds} folds needs at least {2 * n_folds} (lower --folds or use ppi++)")
    if sample["cluster"] is not None and np.unique(sample["cluster"]).shape[0] < n_folds:
        raise DataError(f"{src}: the labelled rows span only {np.unique(sample['cluster']).shape[0]} clusters, "
                        f"fewer than --folds {n_folds}")
    s, y, w, fold = sample["score"], sample["y"], sample["w"], sample["fold"]
    empty = [k for k in range(n_folds) if not np.any(fold == k)]
    if empty:
        raise DataError(f"{src}: calibration fold {empty[0] + 1} of {n_folds} got no labelled rows "
                        "(too few labelled rows or clusters; lower --folds)")
    full = IsotonicCalibrator().fit(s, y, None, w)
    without = tuple(IsotonicCalibrator().fit(s[fold != k], y[fold != k], None, w[fold != k]) for k in range(n_folds))
    return CalibrationPlan(full=full, without=without, seed=seed, threshold=int(sample["hash"].max()),
                           train_groups=train_groups, score_range=(float(s.min()), float(s.max())), n_rows=n)


def _finish(src, cols, methods, order, moments, calibrated, plan, calibrate_on, n_folds, level,
            notes) -> EstimateTable:
    prob = cols.label_prob is not None
    blocks = _blocks([m for m in methods if m != "calibrated"], prob)
    for g in order:
        count = (moments.get(g) or calibrated.get(g)).count
        if count < 2:
            raise DataError(f"{src}: column {cols.group!r}: group {g!r} has only one row; a mean and its interval "
                            "need at least two rows per group")
    if calibrate_on is not None:
        unknown = [g for g in calibrate_on if g not in set(order)]
        if unknown:
            raise DataError(f"{src}: --calibrate-on names group {unknown[0]!r}, which is not in column {cols.group!r}")
    cal_groups = list(calibrate_on) if calibrate_on is not None else list(order)
    estimand = f"mean {cols.label}"
    out: list[Estimate] = []
    warnings: list[str] = []
    for method in methods:
        for g in order:
            m = calibrated[g] if method == "calibrated" else moments[g]
            est, warns = _one(method, g, m, blocks, prob, plan, cal_groups, estimand, level, n_folds)
            warnings.extend(warns)
            if est is not None:
                out.append(est)
    if not out:
        raise DataError(f"{src}: no estimate could be made: " + "; ".join(warnings))
    return EstimateTable(out, [*warnings, *notes])


def _one(method, g, m, blocks, prob, plan, cal_groups, estimand, level, n_folds):
    name = str(g)
    common = dict(name=name, estimand=estimand, level=level)
    if method == "naive":
        return P.finish_mean(blocks["naive"](m), method="naive",
                             diagnostics={"note": "mean judge score: on the judge's scale, not the label's"},
                             **common), []
    if method == "calibrated":
        others = [c for c in cal_groups if str(c) != name]
        est = P.finish_calibrated(m, n_folds=n_folds, n_calibration_rows=plan.n_rows,
                                  score_range=plan.score_range, method="calibrated", **common)
        warns = trust.calibration_warnings(est, others if others else cal_groups)
        return est.with_(warnings=tuple(warns)), warns
    lab = blocks["labeled"](m)
    n_lab = int(lab.total[0])
    if method == "labeled":
        if n_lab < 2:
            return None, [f"group {name!r}: {n_lab} labelled rows, so no labeled estimate"]
        est = P.finish_weighted_mean(lab, method="labeled", diagnostics={"n_labeled": n_lab}, **common)
        return est, trust.label_count_warnings(est)
    if method in ("ppi", "ppi++"):
        lam = 1.0 if method == "ppi" else None
        if n_lab < 2:
            return None, [f"group {name!r}: {method} needs labelled rows of the group itself; it has {n_lab}"]
        pm = blocks["ppi"](m)
        if prob:
            est = P.finish_ppi_ipw(pm, lam=lam, method=method, **common)
            return est, trust.label_count_warnings(est)
        if n_lab == m.count:  # every row labelled: the labelled mean, as in memory
            est = P.finish_weighted_mean(lab, method=method, diagnostics={
                "n_labeled": n_lab, "lambda": 0.0, "note": "every row is labelled: the labelled mean"}, **common)
            return est, []
        est = P.finish_ppi(pm, lam=lam, method=method, **common)
        return est, trust.label_count_warnings(est)
    raise ValueError(f"unknown method {method!r}")


__all__ = ["DEFAULT_SAMPLE_ROWS", "METHODS", "judge_means_streamed", "judge_partition"]
