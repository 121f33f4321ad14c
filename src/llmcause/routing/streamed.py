"""`evaluate_policies` over a Parquet router log larger than memory, locally or on a Ray cluster.

What is exact and what is sampled:

- the feature pipeline, the outcome models q̂ (per model, per cross-fitting
  fold) and, when propensities were not logged, the propensity models are
  fitted on a seeded sample of at most ``sample_rows`` rows (one pass: the
  rows with the smallest salted hashes; only rows under a hash cut set from
  the log's row count leave Arrow, and the pass is repeated without the cut in
  the rare case that fewer than ``sample_rows`` rows fall under it);
- every row of the log is then scored by the fold models of its own fold
  (fold = salted hash of the cluster, or of the row's place, file and row number,
  modulo K, so it does not depend on the batches or the engine; never of the
  row's values, which 0/1 rewards would reduce to four folds' worth), and IPS, SNIPS, DM, DR, SNDR and
  Switch-DR are sums over all rows (`core.partitioned`): exact given those
  nuisances. With a sample that holds the whole log this is the in-memory
  cross-fitted estimator with the same folds (`core.ope.ope_estimates`: the
  same estimates, standard errors, intervals and diagnostics, to rounding).

Switch-DR (Wang, Agarwal & Dudík 2017): with a fixed τ the dropped term
1{w > τ}w(U − q̂ₐ) is one more summed component. With τ ``"auto"`` the scoring
pass keeps, per policy, the sums over the rows of each distinct positive weight
(`core.partitioned.WeightValueSums`); the candidates are the exact quantiles of
the weights (`quantiles_of_counts`, numpy's to the bit) and the criterion
mean(ψ²)/n + B̂² is read off cumulative sums, as in `core.ope._tune`. Exact
quantiles cannot be had in bounded memory in general: past `MAX_WEIGHT_VALUES`
distinct weights per policy (estimated or finely varying propensities on a
large log) the tuned τ is refused with a message; a fixed τ always works. A
tuned τ is then summed per cluster in one more scoring pass.

The interval policy is `core.ope`'s: bias-aware intervals for Switch-DR,
intervals withheld when too few events (0/1 outcomes: weighted events from
Σw, Σw², Σw·U, Σw²·U) or too few effective contributions (Σ|ψ|)²/Σψ² carry
them, thin-overlap and heavy-weight warnings. Σ|ψ| is exact from cluster sums;
without clusters it is not a sum of fixed components, so sums over 1024 hashed
buckets bound it from below (triangle inequality; a bucket holds runs of up to
64 consecutive rows of a file, single rows on a small log): a bound of at least
50 settles the interval (reported as ``effective_contributions_at_least``),
and any estimate it does not settle is counted exactly in one more scoring
pass with its influence coefficients fixed.

Estimated propensities are floored as in memory (`routing.nuisance.floor_propensities`)
and the floored rows are counted in the scoring pass (counts add up over
batches), so the ``rows_floored`` diagnostics and the floor warning are the
in-memory ones.

Passes over the log: the sample (twice in the rare case above), one scoring
pass, and one more for a tuned Switch-DR or an exact count of effective
contributions; ``progress(rows)`` is called per batch read and
``progress_total(rows)`` with the rows all passes will read, each time that
number grows (before the pass that grows it).

DRos and the empirical-likelihood interval (``el``) stay in memory; so does
``--time``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import pandas as pd

from ..core import partitioned as P
from ..core.estimate import Estimate, EstimateTable
from ..core.ope import (MATCHED_ALARM, MIN_CONTRIBUTIONS, USED_SHARE, effective_contributions,
                        heavy_weight_warnings, thin_overlap_warnings, withhold_interval)
from ..io import MAX_ABS_VALUE, DataError, parse_list
from ..scan import (DEFAULT_BATCH_ROWS, Batch, ParquetDataset, hash_rows, label_codes, labels, numeric, present_labels,
                    reused_heap, row_place, run_partitions)
from .logs import RoutingLog, parse_prices, read_log
from .evaluate import floor_report
from .nuisance import MIN_ROWS, default_outcome_model, floor_propensities, is_binary
from .policies import parse_policy, policy_matrix

STREAMED_METHODS = ("ips", "snips", "dm", "dr", "sndr", "switch-dr")
N_BUCKETS = 1024  # hash buckets of rows whose sums bound the effective contributions from below
MAX_WEIGHT_VALUES = 200_000  # distinct importance weights per policy kept to choose Switch-DR's τ exactly
DEFAULT_SAMPLE_ROWS = 200_000
_FOLD_KEY, _SAMPLE_KEY = "llmcause routing folds {seed}", "llmcause routing sample {seed}"
_BUCKET_KEY = "llmcause routing buckets {seed}"


@dataclass(frozen=True)
class LogColumns:
    action: str
    reward: str
    propensity: str | None
    cost: str | None
    features: tuple
    text: str | None
    cluster: str | None
    policy_columns: tuple

    @property
    def names(self) -> list[str]:
        cols = [self.action, self.reward, self.propensity, self.cost, *self.features, self.text, self.cluster,
                *self.policy_columns]
        return list(dict.fromkeys(c for c in cols if c is not None))

    @property
    def fit_names(self) -> list[str]:
        """The columns the nuisances are fitted on (all but the policies' own columns): the sample pass's."""
        cols = [self.action, self.reward, self.propensity, self.cost, *self.features, self.text, self.cluster]
        return list(dict.fromkeys(c for c in cols if c is not None))


class _Constant:
    def __init__(self, value: float):
        self.value = value

    def predict(self, X):
        return np.full(X.shape[0], self.value)


class _Linear:
    """A fitted ``make_pipeline(StandardScaler(), Ridge() | LogisticRegression())`` predicting with scikit-learn's
    own arithmetic (the same subtraction, division, product with ``coef_.T``, intercept and link) but without
    its per-call input validation, which cost more than the arithmetic on a batch's fold (the scoring pass
    calls a model per fold and per model on every batch). `of` gives None for any other model."""

    def __init__(self, mean, scale, coef_t, intercept, link: str):
        self.mean, self.scale, self.coef_t, self.intercept, self.link = mean, scale, coef_t, intercept, link

    @classmethod
    def of(cls, model) -> "_Linear | None":
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        if not isinstance(model, Pipeline) or len(model.steps) != 2:
            return None
        scaler, last = model.steps[0][1], model.steps[1][1]
        if type(scaler) is not StandardScaler or type(last) not in (Ridge, LogisticRegression):
            return None
        mean = scaler.mean_ if scaler.with_mean else None
        scale = scaler.scale_ if scaler.with_std else None
        if type(last) is Ridge:
            if np.ndim(last.coef_) != 1:
                return None
            return cls(mean, scale, last.coef_.T, last.intercept_, "identity")
        link = "expit" if len(last.classes_) <= 2 else "softmax"
        return cls(mean, scale, last.coef_.T, last.intercept_, link)

    def _decision(self, X):
        Z = np.array(X, dtype=float)  # scikit-learn transforms a copy in place
        if self.mean is not None:
            Z -= self.mean
        if self.scale is not None:
            Z /= self.scale
        scores = Z @ self.coef_t + self.intercept
        return scores.reshape(-1) if scores.ndim == 2 and scores.shape[1] == 1 else scores

    def predict(self, X):
        return self._decision(X)

    def predict_proba(self, X):
        from scipy.special import expit
        from sklearn.utils.extmath import softmax

        d = self._decision(X)
        if self.link == "expit":
            prob = expit(d)
            return np.column_stack([1 - prob, prob])
        return softmax(d, copy=False)


class _Fitted:
    def __init__(self, model, binary: bool):
        self.model, self.binary = model, binary
        self.fast = _Linear.of(model)

    def predict(self, X):
        m = self.fast if self.fast is not None and isinstance(X, np.ndarray) else self.model
        pred = (m.predict_proba(X)[:, 1] if hasattr(self.model, "predict_proba")
                else np.asarray(m.predict(X), dtype=float))
        return np.clip(pred, 0.0, 1.0) if self.binary else pred


def _fit_outcome(template, X, y, pooled: float):
    """As `routing.nuisance.fit_predict_outcome`, but keeping the model (same fallbacks)."""
    from sklearn.base import clone

    if y.shape[0] < MIN_ROWS or X.shape[1] == 0:
        return _Constant(float(y.mean()) if y.size else pooled)
    if is_binary(y) and np.unique(y).shape[0] < 2:
        return _Constant(float(y[0]))
    return _Fitted(clone(template).fit(X, y), is_binary(y))


class _Propensity:
    """A fold's logging-propensity model (as `routing.nuisance.crossfit_propensities_raw`: unfloored)."""

    def __init__(self, X, action, k: int):
        from sklearn.base import clone
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.k = k
        present = np.unique(action)
        self.share = None
        if present.shape[0] < 2 or X.shape[1] == 0:
            self.share = np.bincount(action, minlength=k) / action.shape[0]
            return
        template = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        self.model = clone(template).fit(X, action)
        self.fast = _Linear.of(self.model)

    def predict(self, X):
        if self.share is not None:
            out = np.tile(self.share, (X.shape[0], 1))
        else:
            m = self.fast if self.fast is not None and isinstance(X, np.ndarray) else self.model
            out = np.zeros((X.shape[0], self.k))
            out[:, np.asarray(self.model.classes_, dtype=int)] = m.predict_proba(X)
        return out


@dataclass
class RoutingPlan:
    """Everything a partition needs: models, pipeline, fold models, policies."""

    cols: LogColumns
    models: list
    prices: dict | None
    pipeline: object
    n_folds: int
    seed: int
    q_quality: list  # [fold][model] predictor
    q_cost: list | None
    propensity: list | None  # [fold] model when not logged
    policies: tuple
    lam: float | None
    source: str
    taus: tuple = ()  # ((policy label, estimand), τ): Switch-DR thresholds whose dropped terms d_τ are summed
    tables: bool = False  # sums per distinct weight (`P.WeightValueSums`), to choose τ
    buckets: bool = False  # sums per hash bucket of rows: a lower bound on Σ|ψᵢ| without clusters
    block: int = 1  # rows per run that falls into one bucket (`_bucket_sums`)
    abs_coef: np.ndarray | None = None  # (D, E): Σᵢ|cₑᵀzᵢ| for each column c of it (exact contributions)


def _plain(arr):
    """A label column read as an Arrow dictionary, decoded (pandas and the pipeline see plain values)."""
    import pyarrow.types as pt

    return arr.dictionary_decode() if pt.is_dictionary(arr.type) else arr


def _frame(batch: Batch, names: Sequence[str]) -> pd.DataFrame:
    import pyarrow as pa

    if not names:
        return pd.DataFrame(index=pd.RangeIndex(batch.n))
    return pa.table({c: _plain(batch.columns[c]) for c in names}).to_pandas()


def _unit_hash(cols: LogColumns, batch: Batch, key: str, rows: np.ndarray | None = None) -> np.ndarray:
    """Folds and samples by the cluster, else by the row's place in the log (never by its values); only for
    ``rows`` when given."""
    if cols.cluster is not None:
        codes, keys = labels(batch, cols.cluster)
        return hash_rows(key, (codes if rows is None else codes[rows], keys))
    (codes, keys), number = row_place(batch)
    return hash_rows(key, (codes, keys) if rows is None else (codes[rows], keys), number if rows is None
                     else number[rows])


def sample_partition(cols: LogColumns, seed: int, k: int, threshold: int, batch: Batch):
    """Models seen in this batch, its rows with the k smallest sample hashes at most ``threshold`` (as a
    DataFrame), how many of its rows have a hash at most ``threshold``, and how many rows it has."""
    models = present_labels(batch, cols.action)
    numeric(batch, cols.reward)  # checked here, where file and row are known
    if cols.propensity is not None:  # checked here, where file and row are known, before the sample is read
        numeric(batch, cols.propensity, lower=0.0, lower_open=True, upper=1.0, what="a probability")
    if cols.cost is not None:
        numeric(batch, cols.cost, lower=0.0, what="a cost")
    for c in (*cols.features, *([cols.text] if cols.text else [])):  # Arrow knows its nulls: no pass
        if batch.columns[c].null_count:
            i = int(np.flatnonzero(np.asarray(batch.columns[c].is_null().to_numpy(zero_copy_only=False)))[0])
            raise DataError(f"{batch.file}: column {c!r}{batch.row(i)}: value is missing")
    h = _unit_hash(cols, batch, _SAMPLE_KEY.format(seed=seed))
    under = np.flatnonzero(h <= np.uint64(threshold))  # a cut that the whole log's k-th hash lies below
    hu = h[under]
    keep = under[hu <= np.partition(hu, k - 1)[k - 1]] if hu.shape[0] > k else under
    import pyarrow as pa

    picked = pa.array(keep)
    for c in cols.features:  # the kept rows' numbers, named here by file and row (the rest: the scoring pass)
        arr = batch.columns[c]
        if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
            v = np.asarray(arr.take(picked).to_numpy(zero_copy_only=False), dtype=float)
            if not np.all(np.abs(v) <= MAX_ABS_VALUE):  # NaN, infinite or huge: the batch's first such row
                _feature_numbers(batch, c)
    frame = pa.table({c: _plain(batch.columns[c].take(picked)) for c in cols.fit_names}).to_pandas()  # kept rows
    frame["\x00hash"] = h[keep]
    frame["\x00fold"] = _unit_hash(cols, batch, _FOLD_KEY.format(seed=seed), keep)  # the place is not in the frame
    return models, frame, int(under.shape[0]), batch.n


def _bottom(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    if frame.shape[0] <= k:
        return frame
    cut = np.partition(frame["\x00hash"].to_numpy(), k - 1)[k - 1]
    return frame[frame["\x00hash"] <= cut]


def routing_partition(plan: RoutingPlan, batch: Batch):
    """One batch: per (policy, estimand) the OPE components and the naive weighted mean, stacked."""
    cols = plan.cols
    codes, keys = label_codes(batch, cols.action)
    index = {m: j for j, m in enumerate(plan.models)}
    remap = np.array([index.get(k, -1) for k in keys.tolist()], dtype=np.int64)
    a = remap[codes]
    if np.any(remap < 0) and np.any(a < 0):
        i = int(np.flatnonzero(a < 0)[0])
        raise DataError(f"{batch.file}: column {cols.action!r}{batch.row(i)}: model {keys[codes[i]]!r} is not in the "
                        f"sample the nuisances were fitted on ({', '.join(plan.models)}); raise --sample-rows")
    y = numeric(batch, cols.reward)
    X = _features(plan.pipeline, batch)
    unit = _unit_hash(cols, batch, _FOLD_KEY.format(seed=plan.seed))
    fold = (unit % np.uint64(plan.n_folds)).astype(np.int64)
    n, K = y.shape[0], len(plan.models)
    # rows sorted by fold once (a radix sort of small ints): each fold's models then predict a contiguous slice
    order = np.argsort(fold.astype(np.uint8 if plan.n_folds < 256 else np.int64), kind="stable")
    bounds = np.searchsorted(fold[order], np.arange(plan.n_folds + 1))
    Xs = X[order]

    rank = np.empty(n, dtype=np.intp)
    rank[order] = np.arange(n)  # row i's place in fold order

    def by_fold(predictors, width=None):
        """Outcome models: (K, n), a row per model (contiguous picks and gathers); propensities: (n, width)."""
        if width is None:
            sorted_out = np.empty((K, n))
            for f in range(plan.n_folds):
                lo, hi = bounds[f], bounds[f + 1]
                for j in range(K if hi > lo else 0):
                    sorted_out[j, lo:hi] = predictors[f][j].predict(Xs[lo:hi])
            return np.take(sorted_out, rank, axis=1)
        sorted_out = np.empty((n, width))
        for f in range(plan.n_folds):
            lo, hi = bounds[f], bounds[f + 1]
            if hi > lo:
                sorted_out[lo:hi] = predictors[f].predict(Xs[lo:hi])
        return np.take(sorted_out, rank, axis=0)

    q = by_fold(plan.q_quality)
    floored = None
    if cols.propensity is not None:
        p = numeric(batch, cols.propensity, lower=0.0, lower_open=True, upper=1.0, what="a probability")
    else:
        probs, low = floor_propensities(by_fold(plan.propensity, K))
        p = probs[np.arange(n), a]
        floored = (int(np.count_nonzero(low.any(axis=1))), low.sum(axis=0))  # counts add up over batches
    outcomes = {"quality": (y, q)}
    cost = None
    if cols.cost is not None:
        cost = numeric(batch, cols.cost, lower=0.0, what="a cost")
        qc = by_fold(plan.q_cost)
    elif plan.prices is not None:
        price = np.array([plan.prices[m] for m in plan.models])
        cost, qc = price[a], np.repeat(price[:, None], n, axis=1)
    if cost is not None:
        outcomes["cost"] = (cost, qc)
        if plan.lam is not None:
            outcomes["utility"] = (y - plan.lam * cost, q - plan.lam * qc)
    log = None
    arange = np.arange(n)
    at_action = a * n + arange  # q̂ is (K, n): row i's model k is q̂.ravel()[k·n + i]
    a_counts = _counts(a, K)
    # Per (policy, estimand) the 8 + 4 components of `P.ope_components(u, w, direct, q_a)` and
    # `P.weighted_mean_components(u, 1, agree)`. Several coincide (the constant 1 four times; with no clip
    # and no switch, w̃U = wU and the switch term is m̂) or add up (DR's m̂ + w(U − q̂ₐ)), so only the distinct
    # rows are formed, in place, and summed (the constant's sums are the count and the other sums);
    # `Moments.transform` maps their sums onto the 12 slots each block's finish expects.
    d = len(plan.policies) * (2 + 4 * len(outcomes))
    taus = dict(plan.taus)
    zt = np.empty((d + len(taus), n))  # row r of zt is component r + 1; component 0 is the constant
    slots: list = []
    extra = {}
    info: dict = {"binary": {e: bool(np.all((u == 0) | (u == 1))) for e, (u, _) in outcomes.items()},
                  "switched": {}, "tables": {}, "floored": floored}
    j = 0
    for spec in plan.policies:
        target = _policy_target(spec, batch, index, plan.models)
        if target is None:  # a policy of probabilities: the general matrix
            if log is None:
                log = RoutingLog(models=list(plan.models), action=a, reward=y, propensity=p, cost=cost,
                                 prices=plan.prices, X=X, pipeline=plan.pipeline,
                                 frame=_frame(batch, [c for c in cols.names if c != cols.reward]),
                                 source=batch.file, columns={"action": cols.action}, cluster=None)
            pi = policy_matrix(spec, log)
            agree = pi[arange, a]
            share = np.ones(n) @ pi
        elif np.ndim(target) == 0:  # one model for every row (always:): π is one-hot, picks are a row of q̂
            agree = (a == target).astype(float)
            share = np.zeros(K)
            share[target] = n
            matched = np.zeros(K)
            matched[target] = a_counts[target]
        else:  # one model per row: π is one-hot, so its products with q̂ are picks (exactly)
            agree = (a == target).astype(float)
            share = _counts(target, K).astype(float)
            matched = _counts(np.where(agree > 0, target, K), K).astype(float)  # logged = picked, per model
            at_target = target * n + arange
        w = zt[j]
        np.divide(agree, p, out=w)
        zt[j + 1] = agree
        wc, ac = j + 1, j + 2  # their components
        j += 2
        extra[spec.label] = (np.bincount(a, weights=agree, minlength=K) if target is None else matched, share,
                             float(w.max()), int(np.count_nonzero(w > 0)))
        resid_rows, direct_rows = [], []
        for estimand, (u, qm) in outcomes.items():
            flat = qm.ravel()  # one take per pick
            if target is None:
                np.einsum("ij,ji->i", pi, qm, out=zt[j + 1])
            elif np.ndim(target) == 0:
                zt[j + 1] = qm[target]
            else:
                np.take(flat, at_target, out=zt[j + 1])
            np.subtract(u, np.take(flat, at_action), out=zt[j + 2])
            zt[j + 2] *= w  # w(U − q̂ₐ)
            np.multiply(w, u, out=zt[j])
            np.multiply(agree, u, out=zt[j + 3])
            wu, direct, resid, au = j + 1, j + 2, j + 3, j + 4
            # ope: [1, w̃U, w, wU, m̂, m̂ + w̃(U − q̂ₐ), w(U − q̂ₐ), switch = m̂]; naive: [R = 1, Rw, Rwy, 1]
            slots += [[0], [wu], [wc], [wu], [direct], [direct, resid], [resid], [direct], [0], [ac], [au], [0]]
            key = (spec.label, estimand)
            if key in taus:  # d_τ = 1{w > τ}·w(U − q̂ₐ), after every block's rows
                row = d + list(taus).index(key)
                np.multiply(zt[j + 2], w > taus[key], out=zt[row])
                info["switched"][key] = int(np.count_nonzero(w > taus[key]))
            resid_rows.append(zt[j + 2])
            direct_rows.append(zt[j + 1])
            j += 4
        if plan.tables:
            info["tables"][spec.label] = P.WeightValueSums.of(w, resid_rows, direct_rows)
    slots += [[1 + r] for r in range(d, d + len(taus))]
    T = np.zeros((1 + d + len(taus), len(slots)))
    for s, components in enumerate(slots):
        T[components, s] = 1.0
    cluster = labels(batch, cols.cluster) if cols.cluster else None
    info["buckets"] = None
    if plan.buckets and cluster is None:
        info["buckets"] = _bucket_sums(batch, zt, plan.block, _BUCKET_KEY.format(seed=plan.seed)) @ T
    info["abs"] = None
    if plan.abs_coef is not None:  # Σᵢ|cᵀzᵢ| over the full components [1; zt]
        info["abs"] = np.abs(plan.abs_coef.T @ (T[1:].T @ zt + T[0][:, None])).sum(axis=1)
    return P.Moments.of_rows(zt, cluster, constant=True).transform(T), extra, n, info


def _bucket_sums(batch: Batch, zt: np.ndarray, block: int, key: str) -> np.ndarray:
    """Sums of the components [1; zt] over `N_BUCKETS` buckets of rows: each run of ``block`` consecutive rows
    of a file (numbered from the file's first row, so the runs do not depend on the batches) falls in the
    bucket its file and number hash to. A run cut by a batch boundary adds its two parts to the same bucket."""
    (codes, keys), number = row_place(batch)
    if block == 1:
        ids, sums, counts = number, zt, np.ones(zt.shape[1])
    else:
        s, n = int(number[0]), zt.shape[1]
        lo = min(n, -(-s // block) * block - s)  # the first run that starts in this batch
        hi = lo + (n - lo) // block * block  # and the end of the last whole one
        parts, counts = [], []
        if lo > 0:  # a run begun in the batch before
            parts.append(zt[:, :lo].sum(axis=1, keepdims=True))
            counts.append([lo])
        if hi > lo:  # whole runs: a reshape and a sum (np.add.reduceat held the GIL)
            parts.append(zt[:, lo:hi].reshape(zt.shape[0], -1, block).sum(axis=2))
            counts.append(np.full((hi - lo) // block, block))
        if n > hi:  # a run that the next batch ends
            parts.append(zt[:, hi:].sum(axis=1, keepdims=True))
            counts.append([n - hi])
        sums = np.hstack(parts)
        counts = np.concatenate(counts).astype(float)
        ids = (s + np.concatenate([[0], np.cumsum(counts[:-1])]).astype(np.int64)) // block
    bucket = (hash_rows(key, (codes[:ids.shape[0]], keys), ids) % np.uint64(N_BUCKETS)).astype(np.int64)
    return P._sum_by_code(bucket, N_BUCKETS, np.column_stack([counts, sums.T]))


def _features(pipeline, batch: Batch) -> np.ndarray:
    """`FeaturePipeline.transform` of the batch's rows, with bad values named by file, column and row. Numeric and
    categorical columns are taken straight from Arrow (the same arithmetic as the pipeline's); a text column
    goes through the pipeline on a DataFrame of its own columns."""
    for c in (*pipeline.numeric, *pipeline.categorical, *([pipeline.text] if pipeline.text else [])):
        if batch.columns[c].null_count:
            i = int(np.flatnonzero(np.asarray(batch.columns[c].is_null().to_numpy(zero_copy_only=False)))[0])
            raise DataError(f"{batch.file}: column {c!r}{batch.row(i)}: value is missing")
    if pipeline.text is not None:
        return pipeline.transform(_frame(batch, [*pipeline.numeric, *pipeline.categorical, pipeline.text]))
    blocks = []
    if pipeline.numeric:
        num = np.column_stack([_feature_numbers(batch, c) for c in pipeline.numeric])
        blocks.append((num - np.asarray(pipeline.means_)) / np.asarray(pipeline.scales_))
    for c in pipeline.categorical:
        levels = pipeline.levels_[c][1:]
        if not levels:
            blocks.append(np.zeros((batch.n, 0)))
            continue
        codes, keys = labels(batch, c)
        indicator = np.array([[k == lv for lv in levels] for k in keys.tolist()], dtype=float)
        blocks.append(indicator[codes])
    return np.hstack(blocks) if blocks else np.zeros((batch.n, 0))


def _counts(codes: np.ndarray, K: int) -> np.ndarray:
    """How many of the codes are 0, 1, ..., K − 1 (others not counted). For a few models by comparisons, which
    release the GIL (np.bincount holds it: worker threads waited on each other)."""
    if K > 8:
        return np.bincount(codes, minlength=K + 1)[:K]
    return np.array([np.count_nonzero(codes == k) for k in range(K)], dtype=np.int64)


def _feature_numbers(batch: Batch, col: str) -> np.ndarray:
    """A numeric feature column, checked as `io.numeric_column` checks it in memory (missing, infinite, too
    large), with file and row."""
    v = numeric(batch, col)
    huge = np.flatnonzero(np.abs(v) > MAX_ABS_VALUE)
    if huge.size:
        raise DataError(f"{batch.file}: column {col!r}{batch.row(int(huge[0]))}: {v[huge[0]]:g} is too large to "
                        f"compute with (|value| must be at most {MAX_ABS_VALUE:g}; rescale the column)")
    return v


def _policy_target(spec, batch: Batch, index: dict, models) -> np.ndarray | None:
    """The model each row's policy picks, for ``always:`` (one number for all rows) and ``column:`` policies (an
    array, read straight from the Arrow batch); None for other policies."""
    if spec.kind == "always" and spec.arg in index:
        return index[spec.arg]  # the same model for every row: a number
    if spec.kind == "column":
        codes, keys = label_codes(batch, spec.arg)
        pos = np.array([index.get(k, -1) for k in keys.tolist()], dtype=np.int64)
        target = pos[codes]
        if np.any(pos < 0) and np.any(target < 0):  # a dictionary may list a value that no row holds
            i = int(np.flatnonzero(target < 0)[0])
            raise DataError(f"--policy {spec.label}: {batch.file}: column {spec.arg!r}{batch.row(i)}: unknown model "
                            f"{keys[codes[i]]!r}; the log's models are {', '.join(models)}")
        return target
    return None


@reused_heap()  # one scope over all the passes and the fits between them
def evaluate_policies_streamed(path, *, action: str, reward: str, policies: Sequence[str],
                               propensity: str | None = None, cost: str | None = None, costs=None,
                               features: Sequence[str] | str | None = None, text: str | None = None,
                               cluster: str | None = None, methods: Sequence[str] = ("dr",),
                               lam: float | None = None, level: float = 0.95, n_folds: int = 5, seed: int = 0,
                               learner: str = "linear", compare: bool = False, naive: bool = True,
                               engine: str = "local", address: str | None = None,
                               sample_rows: int = DEFAULT_SAMPLE_ROWS, batch_rows: int = DEFAULT_BATCH_ROWS,
                               tau: float | str = "auto", progress=None, progress_total=None) -> EstimateTable:
    """`routing.evaluate.evaluate_policies` on a Parquet file, directory or glob, out of core.

    ``progress(k)`` is told of every batch of k rows read; ``progress_total(rows)`` of the rows that all the
    passes made will read, whenever that grows (module docstring: which passes are made).
    """
    methods = list(dict.fromkeys(methods))
    notes = []
    if "el" in methods:
        methods.remove("el")
        notes.append("el left out: the empirical-likelihood interval needs the whole log in memory")
    bad = [m for m in methods if m not in STREAMED_METHODS]
    if bad:
        raise DataError(f"--method {bad[0]}: out of core the methods are {', '.join(STREAMED_METHODS)}")
    if not methods:
        methods = ["dr"]
    if tau != "auto":
        try:
            tau = float(tau)
        except (TypeError, ValueError):
            tau = float("nan")
        if not tau >= 0:
            raise DataError("tau: give a threshold of at least 0 for the importance weights, or auto")
    if not policies:
        raise DataError("give at least one --policy")
    ds = path if isinstance(path, ParquetDataset) else ParquetDataset(path)
    feats = parse_list(features, "--features") if isinstance(features, str) else list(features or [])
    specs = tuple(parse_policy(p) for p in policies)
    pol_cols = []
    for spec in specs:
        if spec.kind == "column":
            pol_cols.append(spec.arg)
        elif spec.kind == "probs":
            pol_cols += [c for c in ds.columns if c.startswith(spec.arg)]
    cols = LogColumns(action, reward, propensity, cost, tuple(feats), text, cluster, tuple(pol_cols))
    named = {"--action": action, "--reward": reward, "--propensity": propensity, "--cost": cost, "--text": text,
             "--cluster": cluster}
    option = {v: k for k, v in named.items() if v is not None}
    option.update({c: "--features" for c in feats})
    ds.require([c for c in cols.names if c in option or c in pol_cols], option=option)
    if not feats and text is None and propensity is None:
        raise DataError("without --propensity the logging propensities must be estimated from --features or "
                        "--text; give one of them")
    run = functools.partial(run_partitions, ds, cols.names, engine=engine, address=address, batch_rows=batch_rows,
                            dictionary=[c for c in (action, cluster, *pol_cols) if c])
    run_sample = functools.partial(run_partitions, ds, cols.fit_names, engine=engine, address=address,
                                   batch_rows=batch_rows, dictionary=[c for c in (action, cluster) if c])
    # The sample is the rows with the sample_rows smallest hashes. Hashes are uniform, so with N rows in the
    # log (Parquet footers) the k-th smallest lies below a cut a little above k/N of the range; rows above the
    # cut are never taken out of Arrow. If fewer than k rows fall below it (rare), the pass is run again
    # without the cut, so the sample is always exactly the k smallest, however the log is split.
    n_log = ds.count_rows()
    switch = "switch-dr" in methods
    auto = switch and tau == "auto"
    passes = [0]

    def more_passes(k: int) -> None:
        passes[0] += k
        if progress_total is not None:
            progress_total(passes[0] * n_log)

    more_passes(3 if auto else 2)  # sample, score (and score again with a tuned τ)
    top = np.iinfo(np.uint64).max
    share = (1.25 * sample_rows + 20 * np.sqrt(sample_rows) + 100) / max(n_log, 1)
    threshold = top if share >= 1 else int(share * float(top))
    while True:
        seen: set = set()
        frames: list = []
        under = [0, 0]  # rows under the cut, rows held in frames
        rows = [0]

        def take(part):
            models, frame, n_under, n_rows = part
            rows[0] += n_rows
            seen.update(models)
            under[0] += n_under
            frames.append(frame)
            under[1] += frame.shape[0]
            if under[1] > 2 * sample_rows:  # trimmed now and then, not per batch: at most 2k rows held
                frames[:] = [_bottom(pd.concat(frames, ignore_index=True), sample_rows)]
                under[1] = frames[0].shape[0]

        run_sample(functools.partial(sample_partition, cols, seed, sample_rows, threshold), take, progress=progress)
        sample = [_bottom(pd.concat(frames, ignore_index=True), sample_rows) if frames else None]
        if threshold == top or under[0] >= sample_rows:
            break
        threshold = top
        more_passes(1)
    if sample[0] is None:
        raise DataError(f"{ds.label}: the dataset has no rows")
    plan = _plan(ds.label, cols, sorted(seen), sample[0], costs, n_folds, seed, learner, specs, lam)
    keys = [(spec.label, e) for spec in specs for e in _estimands(plan)]
    fixed = tuple((k, float(tau)) for k in keys) if switch and not auto else ()
    # runs of rows per bucket: single rows on a small log (where the bound needs every bucket), up to 64 rows
    # (at least 16 runs a bucket) on a large one, where summing runs is a quarter of the cost of bucketing rows
    block = int(max(1, min(64, rows[0] // (16 * N_BUCKETS))))
    plan = replace(plan, taus=fixed, tables=auto, buckets=cluster is None, block=block)
    first = _score(plan, run, progress)
    m = first.m
    tuned: dict = {}
    if auto:
        for spec in specs:
            table = first.tables.get(spec.label)
            for e_index, estimand in enumerate(_estimands(plan)):
                block = _block(plan, spec.label, estimand)
                direct = block + 4
                tuned[(spec.label, estimand)] = P.switch_dr_tune(
                    table if table is not None else P.WeightValueSums(np.zeros(0), np.zeros((0, 1 + 3 * 3))),
                    e_index, float(m.total[0]), float(m.total[direct]), float(m.gram[direct, direct]))
        plan = replace(plan, taus=tuple((k, v[0]) for k, v in tuned.items()))
    # Effective contributions without clusters: Σ|ψᵢ| is not a sum of fixed components, so the bucket sums
    # bound it from below; an estimate whose bound does not settle the interval (and a tuned Switch-DR, whose
    # d_τ is only known now) is counted exactly in a second scoring pass with its coefficients fixed.
    coefs = _contribution_coefs(plan, first, methods, tuned, exact_all=auto)
    need = [(k, c) for k, c, _, undecided in coefs if undecided]
    bounds = {k: b for k, _, b, undecided in coefs if not undecided}
    if auto or need:
        if not auto:
            more_passes(1)
        plan = replace(plan, tables=False, buckets=False,
                       abs_coef=np.column_stack([c for _, c in need]) if need else None)
        second = _score(plan, run, progress)
        exact = {k: float(v) for (k, _), v in zip(need, second.abs)} if need else {}
        return _finish(plan, second, methods, level, compare, naive, notes, exact, need, bounds)
    return _finish(plan, first, methods, level, compare, naive, notes, {}, [], bounds)


@dataclass
class _Scored:
    m: P.Moments
    extras: dict
    n: int
    binary: dict
    switched: dict
    tables: dict
    buckets: np.ndarray | None
    abs: np.ndarray | None
    floored: tuple | None = None  # (rows with a propensity raised to the floor, (K,) such entries per model)


def _score(plan: RoutingPlan, run, progress) -> _Scored:
    """One scoring pass over every row: moments, overlap counts, and what the plan asks for beside."""
    acc = P.MomentsAccumulator()
    out = _Scored(None, {}, 0, {}, {}, {}, None, None)

    def add(part):
        grouped, extra, n, info = part
        acc.add({None: grouped})
        out.n += n
        for label, (matched, share, wmax, npos) in extra.items():
            if label in out.extras:
                m0, s0, w0, p0 = out.extras[label]
                out.extras[label] = (m0 + matched, s0 + share, max(w0, wmax), p0 + npos)
            else:
                out.extras[label] = (matched, share, wmax, npos)
        for e, flag in info["binary"].items():
            out.binary[e] = out.binary.get(e, True) and flag
        if info["floored"] is not None:
            rows, per = info["floored"]
            out.floored = (rows, per) if out.floored is None else (out.floored[0] + rows, out.floored[1] + per)
        for k, c in info["switched"].items():
            out.switched[k] = out.switched.get(k, 0) + c
        for label, table in info["tables"].items():
            merged = table if label not in out.tables else out.tables[label] + table
            if merged.values.shape[0] > MAX_WEIGHT_VALUES:
                raise DataError(f"--method switch-dr: the importance weights of policy {label} take more than "
                                f"{MAX_WEIGHT_VALUES} distinct values, and out of core its threshold is chosen from "
                                "the exact quantiles of the weights kept value by value (estimated or finely "
                                "varying propensities); evaluate the log in memory, or give evaluate_policies_streamed "
                                "a fixed tau")
            out.tables[label] = merged
        if info["buckets"] is not None:
            out.buckets = info["buckets"] if out.buckets is None else out.buckets + info["buckets"]
        if info["abs"] is not None:
            out.abs = info["abs"] if out.abs is None else out.abs + info["abs"]

    run(functools.partial(routing_partition, plan), add, progress=progress)
    out.m = acc.result()[None]
    return out


def _estimands(plan: RoutingPlan) -> list[str]:
    out = ["quality"]
    if plan.cols.cost is not None or plan.prices is not None:
        out.append("cost")
        if plan.lam is not None:
            out.append("utility")
    return out


def _block(plan: RoutingPlan, label: str, estimand: str) -> int:
    """First column of a (policy, estimand) block: 8 OPE components, then 4 of the naive mean."""
    labels_ = [s.label for s in plan.policies]
    ests = _estimands(plan)
    return 12 * (labels_.index(label) * len(ests) + ests.index(estimand))


def _tau_col(plan: RoutingPlan, label: str, estimand: str) -> int:
    return 12 * len(plan.policies) * len(_estimands(plan)) + [k for k, _ in plan.taus].index((label, estimand))


def _minimum(plan: RoutingPlan, estimand: str) -> float:
    exact = estimand == "cost" and plan.prices is not None  # known given the prompts: no rows needed
    return 0 if exact else MIN_CONTRIBUTIONS


def _contribution_coefs(plan: RoutingPlan, scored: _Scored, methods, tuned: dict, exact_all: bool) -> list:
    """((label, estimand, method, part), c, bound, exact needed) for every unclustered estimate whose interval
    hangs on its effective contributions: c over the columns of the plan's moments (the d_τ columns included),
    the bucket bound (None with ``exact_all``), and whether that bound leaves the interval undecided."""
    if plan.cols.cluster is not None:
        return []
    m = scored.m
    D = 12 * len(plan.policies) * len(_estimands(plan)) + len(plan.taus)
    out = []
    for spec in plan.policies:
        for estimand in _estimands(plan):
            if _minimum(plan, estimand) <= 0 or scored.binary[estimand]:
                continue  # no interval withheld, or the weighted events decide
            block = _block(plan, spec.label, estimand)
            for method in methods:
                if method == "dm":
                    continue
                coefs = []
                if method == "switch-dr":
                    t = _tau_col(plan, spec.label, estimand)
                    if tuned:
                        theta, b = tuned[(spec.label, estimand)][1]["theta"], \
                            tuned[(spec.label, estimand)][1]["bias_estimate"]
                    else:
                        n = m.total[0]
                        theta = float((m.total[block + 5] - m.total[t]) / n)
                        b = float(m.total[t] / n)
                    c = np.zeros(D)
                    c[block], c[block + 5], c[t] = -theta, 1.0, -1.0
                    coefs.append(("psi", c))
                    c = np.zeros(D)
                    c[block], c[t] = -b, 1.0
                    coefs.append(("drop", c))
                else:
                    lin = P.ope_linear(m.select(np.arange(block, block + 8)), method)
                    c = np.zeros(D)
                    c[block:block + 8] = lin.coef
                    coefs.append(("psi", c))
                for part, c in coefs:
                    key = (spec.label, estimand, method, part)
                    bound = None if exact_all or scored.buckets is None else _bound(scored.buckets, m, c)
                    out.append((key, c, bound, bound is None or bound < _minimum(plan, estimand)))
    return out


def _bound(buckets: np.ndarray, m: P.Moments, c: np.ndarray) -> float:
    """(Σ_b|Σ_{i∈b}ψᵢ|)²/Σψᵢ² ≤ the effective contributions (Σᵢ|ψᵢ|)²/Σψᵢ² (triangle inequality)."""
    ss = float(c @ m.gram[:c.shape[0], :c.shape[0]] @ c)
    return float(np.sum(np.abs(buckets[:, :c.shape[0]] @ c)) ** 2 / ss) if ss > 0 else 0.0


def _plan(src, cols, models, sample, costs, n_folds, seed, learner, specs, lam) -> RoutingPlan:
    if len(models) < 2:
        raise DataError(f"{src}: column {cols.action!r} holds only one model ({models[0]!r}); routing needs at "
                        "least two")
    prices = parse_prices(costs)
    if prices is not None:
        missing = [m for m in models if m not in prices]
        if missing:
            raise DataError(f"{src}: column {cols.action!r}: --costs gives no price for model {missing[0]!r}")
    if lam is not None and cols.cost is None and prices is None:
        raise DataError("--lambda needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    fold_hash = sample["\x00fold"].to_numpy(dtype=np.uint64)  # hashed in the batch, where the row's place is known
    frame = sample.drop(columns=["\x00hash", "\x00fold"]).reset_index(drop=True)
    frame.attrs["llmcause_source"] = src
    log = read_log(frame, action=cols.action, reward=cols.reward, propensity=cols.propensity, cost=cols.cost,
                   costs=costs, features=list(cols.features), text=cols.text, seed=seed) \
        if frame[cols.action].nunique() >= 2 else None
    if log is None:
        raise DataError(f"{src}: the sample holds one model only; raise --sample-rows")
    index = {m: j for j, m in enumerate(models)}
    a = np.array([index[m] for m in log.models])[log.action]
    fold = (fold_hash % np.uint64(n_folds)).astype(np.int64)
    K = len(models)

    def outcome_models(y):
        template = default_outcome_model(y, learner)
        out = []
        for f in range(n_folds):
            train = fold != f
            pooled = float(y[train].mean()) if train.any() else float(y.mean())
            out.append([_fit_outcome(template, log.X[train & (a == j)], y[train & (a == j)], pooled)
                        for j in range(K)])
        return out

    q_cost = outcome_models(log.cost) if cols.cost is not None else None
    prop = None if cols.propensity is not None else [_Propensity(log.X[fold != f], a[fold != f], K)
                                                    for f in range(n_folds)]
    return RoutingPlan(cols=cols, models=models, prices=prices, pipeline=log.pipeline, n_folds=n_folds, seed=seed,
                       q_quality=outcome_models(log.reward), q_cost=q_cost, propensity=prop, policies=specs,
                       lam=lam, source=src)


def _finish(plan: RoutingPlan, scored: _Scored, methods, level, compare, naive, notes, exact: dict,
            need: list, bounds: dict) -> EstimateTable:
    m, extras, n = scored.m, scored.extras, scored.n
    estimands = _estimands(plan)
    coef_of = {k: c for k, c in need}
    warnings: list[str] = []
    if plan.cols.propensity is None:
        warnings.append("propensities were not logged: they were estimated from the features by a cross-fitted "
                        "logistic model, so every estimate also assumes the old router chose from these features only")
    floor_diag: dict = {}
    if scored.floored is not None:
        floor_diag, floor_warning = floor_report(*scored.floored, n, plan.models)
        if floor_warning:
            warnings.append(floor_warning)
    cost_note = ("costs come from the price table, so each policy's cost is known given the prompts"
                 if plan.prices is not None else None)
    out: list[Estimate] = []
    lin_of: dict = {}

    def tail(est: Estimate, estimand: str) -> Estimate:
        """The diagnostics `routing.evaluate` adds after the estimator's own, in its order."""
        diag = {**est.diagnostics, "propensity": "logged" if plan.cols.propensity else "estimated", **floor_diag}
        if cost_note and estimand == "cost":
            diag["note"] = cost_note
        return est.with_(diagnostics=diag)

    def contributions(key, lin: P.LinearEstimate, est: Estimate | None) -> tuple[str, float]:
        """(diagnostic name, value) of the effective contributions of an estimate's (``est``) or its bias
        term's (``lin``) influence values: exact from cluster sums or from the second pass, else the bucket
        bound that settled the interval."""
        if m.clustered:
            if est is not None:
                return "effective_contributions", effective_contributions(est.influence, est.cluster)
            return "effective_contributions", P.effective_contributions_of(lin)
        if key in exact:
            c = coef_of[key]
            ss = float(c @ m.gram @ c)
            zero = est is not None and not np.any(lin.coef)  # a constant term: no contributions (as core.ope)
            return "effective_contributions", (exact[key] ** 2 / ss if ss > 0 and not zero else 0.0)
        return "effective_contributions_at_least", bounds[key]

    for spec in plan.policies:
        matched, share_sum, wmax, npos = extras[spec.label]
        share = share_sum / n
        for estimand in estimands:
            block = _block(plan, spec.label, estimand)
            cols_ope = np.arange(block, block + 8)
            ope_m = m.select(cols_ope)
            summary = P.weight_summary(ope_m)
            diag = {"ess": summary["ess"], "ess_fraction": summary["ess_fraction"], "max_weight": wmax,
                    "mean_weight": summary["mean_weight"],
                    "matched": {plan.models[j]: float(matched[j]) for j in range(len(plan.models))},
                    "target_share": {plan.models[j]: float(share[j]) for j in range(len(plan.models))},
                    "thin_overlap": {plan.models[j]: float(matched[j]) for j in range(len(plan.models))
                                     if share[j] >= USED_SHARE and matched[j] < MATCHED_ALARM}}
            warns = thin_overlap_warnings(matched, share, list(plan.models), spec.label)
            ess_share = P.weight_ess_share(ope_m, npos)
            if ess_share is not None:
                diag["weight_ess_share"] = ess_share
                warns += heavy_weight_warnings(ess_share, npos, wmax)
            events = P.ope_events(ope_m) if scored.binary[estimand] else None
            if events is not None:
                diag["effective_events"] = events
            minimum = _minimum(plan, estimand)
            for method in methods:
                extra = {"clip": None} if method in ("ips", "dr") else {}
                d = {**diag, **extra}
                if method == "dm":  # a point estimate only, as in core.ope
                    out.append(tail(P.finish_ope(ope_m, "dm", name=spec.label, estimand=estimand, level=level,
                                                 diagnostics=d), estimand))
                    continue
                key = (spec.label, estimand, method)
                if method == "switch-dr":
                    t = _tau_col(plan, spec.label, estimand)
                    tau = dict(plan.taus)[(spec.label, estimand)]
                    T3 = np.zeros((m.total.shape[0], 3))
                    T3[block, 0], T3[block + 5, 1], T3[t, 1], T3[t, 2] = 1.0, 1.0, -1.0, 1.0
                    m3 = m.transform(T3)
                    est, drop = P.finish_switch_dr(m3, tau=tau, share_switched=scored.switched[(spec.label, estimand)]
                                                   / n, name=spec.label, estimand=estimand, level=level,
                                                   diagnostics=d, warnings=warns)
                    lin = P.LinearEstimate(est.estimate, np.array([-est.estimate, 1.0, 0.0]) if est.se > 0
                                           else np.zeros(3), m3, 0)
                else:
                    lin = P.ope_linear(ope_m, method)
                    full = np.zeros(m.total.shape[0])
                    full[cols_ope] = lin.coef
                    lin_of[key] = P.LinearEstimate(lin.theta, full, m, int(cols_ope[0]))
                    est = P.finish_linear(lin, name=spec.label, estimand=estimand, method=method, level=level,
                                          diagnostics=d, warnings=warns)
                    drop = None
                if minimum > 0 and events is None:
                    name_k, k = contributions((*key, "psi"), lin, est)
                    if drop is not None:
                        k = min(k, contributions((*key, "drop"), drop, None)[1])
                    est = withhold_interval(est, minimum, None, {name_k: k})
                elif minimum > 0:
                    est = withhold_interval(est, minimum, events, {})
                out.append(tail(est, estimand))
            if naive:
                nm = m.select(np.arange(block + 8, block + 12))
                total = float(nm.total[1])
                if total <= 0:
                    nan = float("nan")
                    out.append(Estimate(name=spec.label, estimand=estimand, method="naive", estimate=nan, se=nan,
                                        ci_low=nan, ci_high=nan, level=level, n=n,
                                        diagnostics={"matched_rows": 0.0}))
                else:
                    out.append(P.finish_weighted_mean(nm, name=spec.label, estimand=estimand, method="naive",
                                                      level=level, diagnostics={"matched_rows": total}))
    plain = [x for x in methods if x in ("dr", "sndr", "snips", "ips")]  # as routing.evaluate.policy_contrasts
    if compare and len(plan.policies) > 1 and plain:
        method = plain[0]
        base = plan.policies[0].label
        for estimand in estimands:
            a = lin_of[(base, estimand, method)]
            for spec in plan.policies[1:]:
                b = lin_of[(spec.label, estimand, method)]
                diff = P.LinearEstimate(b.theta - a.theta, b.coef - a.coef, m, a.rows_col)
                units = int(m.cluster_keys.shape[0]) if m.clustered else n
                est = P.finish_linear(diff, name=f"{spec.label} - {base}", estimand=estimand, method=method,
                                      level=level)
                est = est.with_(diagnostics={**est.diagnostics, "paired_units": units})  # as core.inference.contrast
                out.append(est)
    return EstimateTable(out, [*warnings, *notes])
