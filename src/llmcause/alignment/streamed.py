"""`alignment style` over a Parquet battle log larger than memory, locally or on a Ray cluster.

Estimands, model and assumptions are those of `style.style_control` (plain
and style-controlled Bradley–Terry strengths, style effects per SD of each
style gap). The fit is the in-memory one, computed from sums over battles
(`core.partitioned`): every quantity is a sum over rows once a few small
things are known, so

1. a first pass counts battles per model and per pair of models (the
   ``inverse-pair`` weights, the connectivity and ``--min-battles`` checks),
   ties, and the mean and population SD of each raw style gap (merged exactly
   with Chan's formulas), which fix the z-scoring;
2. each later pass evaluates the log-likelihood, score and Hessian of both
   fits at their current coefficients (one pass per Newton step of the
   in-memory iterations, same line search and stopping rule);
3. with ``cluster``, a last pass sums the scores per cluster (CR1, merged by
   label across files, so a prompt spread over several files counts once).

The result equals `style_control_battles(prepare_battles(...))` on the whole
table to rounding (tested to 1e-10). Style counts from texts are the costly
part: on the local engine the first pass keeps the battles it read (model
codes, votes, raw gaps: about 8·(k + 4) bytes a battle) in a temporary folder
that the Newton passes read instead; on Ray every pass counts them again.

Not streamed (in memory only): the length effect (its DML part cross-fits
learners on all battles), ``--by``, ``--time``, ``--controls`` and Kaggle's
Arena release (``response_a``/``response_b``); per-row influence values are
not kept.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..core import partitioned as P
from ..io import DataError, show_value
from ..scan import DEFAULT_BATCH_ROWS, Batch, ParquetDataset, labels, numeric, reused_heap, run_partitions
from .arena import TIES, WIN_A, WIN_B, text_of_cell
from .battles import check_style_inputs
from .features import LMARENA_FEATURES, normalized_difference, resolve_tokenizer
from .style import StyleStudy

_SIDES = ("conversation_a", "conversation_b")


@dataclass(frozen=True)
class StyleSpec:
    """What every partition needs to read its battles (all picklable, for Ray)."""

    model_a: str
    model_b: str
    winner: str
    text_a: str | None
    text_b: str | None
    features: tuple  # ((name, column_a, column_b) or (name, gap_column, None)), when no texts
    style_features: tuple
    cluster: str | None
    ties: str
    tokenizer: str | None
    drop_missing: tuple = ()  # side columns whose null cells leave the battle out (Arena files)

    @property
    def columns(self) -> list[str]:
        cols = [self.model_a, self.model_b, self.winner, self.text_a, self.text_b, self.cluster, *self.drop_missing]
        for _, a, b in self.features:
            cols += [a, b]
        return list(dict.fromkeys(c for c in cols if c is not None))

    @property
    def names(self) -> list[str]:
        return list(self.style_features) if self.text_a is not None else [f[0] for f in self.features]


@dataclass(frozen=True)
class FitPlan:
    """What the Newton passes need: competitor order, the z-scoring, the pair weights."""

    competitors: tuple
    mean: np.ndarray
    sd: np.ndarray
    keep: np.ndarray  # raw gap columns that vary
    pair_weights: np.ndarray | None  # (m, m) inverse-pair weights, or None

    @property
    def m(self) -> int:
        return len(self.competitors)


@dataclass
class _Rows:
    a: tuple  # (codes, keys)
    b: tuple
    y: np.ndarray
    raw: np.ndarray  # (n, k) raw style gaps
    cluster: tuple | None
    n_read: int
    index: np.ndarray  # each battle's position in the batch
    missing: int = 0  # battles left out for a missing side (Arena files)
    first_missing: str = ""


def _winner(batch: Batch, col: str, ties: str) -> np.ndarray:
    """`arena.winner_outcome` on one batch (P(a wins); ties ½ or NaN when dropped)."""
    import pyarrow.types as pt

    arr = batch.columns[col]
    if pt.is_boolean(arr.type):
        raise DataError(f"{batch.file}: column {col!r} is true/false; the winner must be model_a, model_b or tie "
                        "(or the probability that model_a wins)")
    if pt.is_integer(arr.type) or pt.is_floating(arr.type) or pt.is_null(arr.type):
        y = numeric(batch, col, what="a winner")
        bad = np.flatnonzero((y < 0) | (y > 1))
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: {show_value(y[i])} is not a probability that "
                            "model_a wins (must be in [0, 1])")
        return y
    if arr.null_count:
        i = int(np.flatnonzero(np.asarray(arr.is_null().to_numpy(zero_copy_only=False)))[0])
        raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: the winner is missing")
    codes, keys = labels(batch, col)
    text = np.array([str(k).strip().lower() for k in keys], dtype=object)
    value = np.full(keys.shape[0], np.nan)
    value[np.isin(text, WIN_A)] = 1.0
    value[np.isin(text, WIN_B)] = 0.0
    is_tie = np.isin(text, TIES)
    value[is_tie] = 0.5 if ties == "half" else np.nan
    bad = np.isnan(value) & ~is_tie
    if bad.any():
        i = int(np.flatnonzero(bad[codes])[0])
        raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: unknown winner value {keys[codes[i]]!r} "
                        "(use model_a, model_b or tie)")
    return value[codes]


def _texts(batch: Batch, col: str, rows: np.ndarray) -> list[str]:
    values = batch.columns[col].to_pylist()
    out = []
    for i in rows.tolist():
        out.append(text_of_cell(values[i], f"{batch.file}: column {col!r}{batch.row(i)}"))
    return out


def _style_counts(texts: list[str], names: Sequence[str], tokenizer: str) -> np.ndarray:
    """The named style counts of each text (`features.text_features` without the content counts)."""
    from .features import _style_counts as counts_of, strip_fenced_code

    out = np.empty((len(texts), len(names)))
    for i, t in enumerate(texts):
        c = counts_of(t, *strip_fenced_code(t), tokenizer)
        out[i] = [c[f] for f in names]
    return out


def _read(spec: StyleSpec, batch: Batch, *, decisive: bool = True) -> _Rows:
    """One batch's battles, checked as `battles.prepare_battles` checks them (decisive ones only, unless not
    ``decisive``, when the outcome keeps NaN for dropped ties)."""
    n_read = batch.n
    keep = np.ones(n_read, dtype=bool)
    for col in spec.drop_missing:
        keep &= ~np.asarray(batch.columns[col].is_null().to_numpy(zero_copy_only=False), dtype=bool)
    missing = int(n_read - keep.sum())
    first_missing = f"{batch.file}{batch.row(int(np.flatnonzero(~keep)[0]))}" if missing else ""
    a = labels(batch, spec.model_a)
    b = labels(batch, spec.model_b)
    y = _winner(batch, spec.winner, spec.ties)
    clusters = labels(batch, spec.cluster) if spec.cluster else None
    rows = np.flatnonzero(keep)
    if spec.text_a is not None:
        ta, tb = _texts(batch, spec.text_a, rows), _texts(batch, spec.text_b, rows)
        ca = _style_counts(ta, spec.style_features, spec.tokenizer)
        cb = _style_counts(tb, spec.style_features, spec.tokenizer)
        raw = np.empty((rows.shape[0], len(spec.style_features)))
        for j in range(raw.shape[1]):
            raw[:, j] = normalized_difference(ca[:, j], cb[:, j])
    else:
        raw = np.empty((rows.shape[0], len(spec.features)))
        for j, (_, col_a, col_b) in enumerate(spec.features):
            if col_b is None:
                raw[:, j] = numeric(batch, col_a)[rows]
            else:
                ca = numeric(batch, col_a, lower=0, what="a count")[rows]
                cb = numeric(batch, col_b, lower=0, what="a count")[rows]
                raw[:, j] = normalized_difference(ca, cb)
    if decisive:
        rows_kept = ~np.isnan(y[rows])
        raw = raw[rows_kept]
        rows = rows[rows_kept]
    return _Rows(a=(a[0][rows], a[1]), b=(b[0][rows], b[1]), y=y[rows], raw=raw,
                 cluster=None if clusters is None else (clusters[0][rows], clusters[1]), n_read=n_read,
                 index=rows, missing=missing, first_missing=first_missing)


# --------------------------------------------------------------------------- pass 1: counts and scaling


@dataclass
class Census:
    """Mergeable first-pass counts (see the module docstring)."""

    n_read: int = 0
    missing: int = 0
    first_missing: str = ""
    n_ties: int = 0
    ties_dropped: int = 0
    battles: dict = field(default_factory=dict)  # model → decisive battles
    won: dict = field(default_factory=dict)  # model → wins (ties count ½)
    first_row: dict = field(default_factory=dict)  # model → "file, row r" of its first battle
    pairs: dict = field(default_factory=dict)  # (lo, hi) → battles between the two
    count: int = 0  # decisive battles
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None

    def add(self, other: "Census | None") -> None:
        if other is None:
            return
        self.n_read += other.n_read
        if other.missing and not self.missing:
            self.first_missing = other.first_missing
        self.missing += other.missing
        self.n_ties += other.n_ties
        self.ties_dropped += other.ties_dropped
        for key, v in other.battles.items():
            self.battles[key] = self.battles.get(key, 0) + v
        for key, v in other.won.items():
            self.won[key] = self.won.get(key, 0.0) + v
        for key, v in other.first_row.items():
            self.first_row.setdefault(key, v)
        for key, v in other.pairs.items():
            self.pairs[key] = self.pairs.get(key, 0) + v
        if other.count:
            if not self.count:
                self.count, self.mean, self.m2 = other.count, other.mean.copy(), other.m2.copy()
            else:  # Chan, Golub & LeVeque: merge counts, means and sums of squared deviations
                n = self.count + other.count
                delta = other.mean - self.mean
                self.mean = self.mean + delta * (other.count / n)
                self.m2 = self.m2 + other.m2 + delta * delta * (self.count * other.count / n)
                self.count = n


def census_partition(spec: StyleSpec, batch: Batch, spill: bool = False):
    """Pass 1 on one batch: counts per model and pair, ties, and the raw gaps' mean and M2 (with ``spill``,
    also the decisive battles read, so that later passes need not count the texts' style again)."""
    rows = _read(spec, batch, decisive=False)
    census = _census(spec, batch, rows)
    if not spill:
        return census
    keep = ~np.isnan(rows.y)
    kept = _Rows(a=(rows.a[0][keep], rows.a[1]), b=(rows.b[0][keep], rows.b[1]), y=rows.y[keep],
                 raw=rows.raw[keep], cluster=None if rows.cluster is None else (rows.cluster[0][keep],
                                                                                rows.cluster[1]),
                 n_read=rows.n_read, index=rows.index[keep])
    return census, kept


def _census(spec: StyleSpec, batch: Batch, rows: _Rows) -> Census:
    out = Census(n_read=rows.n_read, missing=rows.missing, first_missing=rows.first_missing)
    union, ga, gb = _union_codes(rows.a, rows.b)
    same = np.flatnonzero(ga == gb)
    if same.size:
        i = int(same[0])
        raise DataError(f"{batch.file}{_row_of(batch, rows, i)}: model {union[ga[i]]!r} battles itself (columns "
                        f"{spec.model_a!r} and {spec.model_b!r}); a battle needs two different models")
    y = rows.y
    out.n_ties = int(np.sum(y == 0.5))
    keep = ~np.isnan(y)
    out.ties_dropped = int(np.sum(~keep))
    ga, gb, y, raw = ga[keep], gb[keep], y[keep], rows.raw[keep]
    K = union.shape[0]
    battles = np.bincount(ga, minlength=K) + np.bincount(gb, minlength=K)
    won = np.bincount(ga, weights=y, minlength=K) + np.bincount(gb, weights=1 - y, minlength=K)
    first = np.full(K, np.iinfo(np.int64).max)
    for g in (ga, gb):
        u, idx = np.unique(g, return_index=True)
        first[u] = np.minimum(first[u], idx)
    kept_rows = np.flatnonzero(keep)
    for j in np.flatnonzero(battles).tolist():
        label = union[j]
        out.battles[label] = int(battles[j])
        out.won[label] = float(won[j])
        out.first_row[label] = f"{batch.file}{_row_of(batch, rows, int(kept_rows[first[j]]))}"
    lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)
    pair = np.bincount(lo * K + hi, minlength=K * K)
    for code in np.flatnonzero(pair).tolist():
        out.pairs[(union[code // K], union[code % K])] = int(pair[code])
    if y.shape[0]:
        out.count = int(y.shape[0])
        out.mean = raw.mean(axis=0)
        out.m2 = ((raw - out.mean) ** 2).sum(axis=0)
    return out


def _row_of(batch: Batch, rows: _Rows, i: int) -> str:
    """", row r" of the i-th battle read (battles left out for a missing side are skipped)."""
    return batch.row(int(rows.index[i]))


def _union_codes(a: tuple, b: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both label columns coded into their sorted union of labels (few per batch)."""
    union = np.unique(np.concatenate([a[1], b[1]]).astype(str)).astype(object)
    ma = np.searchsorted(union, a[1].astype(str))
    mb = np.searchsorted(union, b[1].astype(str))
    return union, ma[a[0]], mb[b[0]]


# --------------------------------------------------------------------------- Newton passes


def _codes_in(plan: FitPlan, lab: tuple) -> np.ndarray:
    index = {c: i for i, c in enumerate(plan.competitors)}
    return np.array([index[str(k)] for k in lab[1].tolist()], dtype=np.int64)[lab[0]]


def newton_partition(spec: StyleSpec, plan: FitPlan, betas: tuple, clustered: bool, batch: Batch) -> list:
    """One batch's `BattleSums` of each active fit (plain, style-controlled) at its coefficients, or with
    ``clustered`` its per-cluster scores."""
    return newton_rows(plan, betas, clustered, _read(spec, batch))


def newton_rows(plan: FitPlan, betas: tuple, clustered: bool, rows: _Rows) -> list:
    """`newton_partition` on battles already read."""
    ia, ib = _codes_in(plan, rows.a), _codes_in(plan, rows.b)
    Z = (rows.raw[:, plan.keep] - plan.mean) / plan.sd
    w = None if plan.pair_weights is None else plan.pair_weights[ia, ib]
    out = []
    for beta, covariates in zip(betas, (None, Z)):
        if beta is None or rows.y.shape[0] == 0:
            out.append(None)
        elif clustered:
            out.append(P.battle_cluster_scores(ia, ib, rows.y, beta, plan.m, rows.cluster, covariates, w))
        else:
            out.append(P.battle_sums(ia, ib, rows.y, beta, plan.m, covariates, w))
    return out


# --------------------------------------------------------------------------- driver


@dataclass
class StreamedStyle:
    study: StyleStudy
    tokenizer: str | None
    n_ties: int
    ties_dropped: int
    warnings: list
    passes: int


@reused_heap()  # one scope over all the passes and the fits between them
def style_control_streamed(path, *, model_a: str, model_b: str, winner: str, text_a: str | None = None,
                           text_b: str | None = None, features: Sequence[str] | None = None,
                           style_features: Sequence[str] = LMARENA_FEATURES, cluster: str | None = None,
                           weights: str = "none", penalty: float = 0.0, ties: str = "half",
                           tokenizer: str = "auto", min_battles: int = 2, level: float = 0.95,
                           missing: str = "drop", arena_sides: Sequence[str] = (), engine: str = "local",
                           address: str | None = None, batch_rows: int = DEFAULT_BATCH_ROWS, progress=None,
                           max_iter: int = 100) -> StreamedStyle:
    """`style.style_control_battles(battles.prepare_battles(...))` on a Parquet file, directory or glob.

    ``arena_sides``: Arena conversation columns whose missing cells leave the
    battle out (``missing="drop"``, with one warning) or stop (``"error"``).
    """
    ds = path if isinstance(path, ParquetDataset) else ParquetDataset(path)
    spec = _spec(ds, model_a=model_a, model_b=model_b, winner=winner, text_a=text_a, text_b=text_b,
                 features=features, style_features=style_features, cluster=cluster, ties=ties, tokenizer=tokenizer,
                 missing=missing, arena_sides=arena_sides)
    if weights not in ("none", "inverse-pair"):
        raise ValueError(f"unknown weights {weights!r}; use none or inverse-pair")
    run = functools.partial(run_partitions, ds, spec.columns, engine=engine, address=address, batch_rows=batch_rows,
                            progress=progress, dictionary=[c for c in (model_a, model_b, winner, cluster) if c])
    census = Census()
    # Style counts from texts cost far more than reading: on the local engine the first pass keeps the
    # battles it read (codes, votes, raw gaps) in a temporary folder, one file per batch, and the Newton
    # passes read those instead of counting every answer's style again.
    spill = None
    if engine == "local" and spec.text_a is not None:
        import tempfile

        spill = tempfile.TemporaryDirectory(prefix="llmcause-style-")
    try:
        return _fit(ds, spec, run, census, spill, weights=weights, penalty=penalty, min_battles=min_battles,
                    level=level, cluster=cluster, max_iter=max_iter, progress=progress)
    finally:
        if spill is not None:
            spill.cleanup()


def _fit(ds, spec, run, census, spill, *, weights, penalty, min_battles, level, cluster, max_iter,
         progress) -> StreamedStyle:
    import os
    import pickle

    files: list[str] = []

    def take(part):
        if spill is None:
            census.add(part)
            return
        counts, rows = part
        census.add(counts)
        if rows.y.shape[0]:
            path = os.path.join(spill.name, f"{len(files):08d}.pkl")
            with open(path, "wb") as fh:
                pickle.dump(rows, fh, protocol=pickle.HIGHEST_PROTOCOL)
            files.append(path)

    run(functools.partial(census_partition, spec, spill=spill is not None), take)

    def scan(fn, consume):
        if spill is None:
            run(functools.partial(newton_partition, spec, *fn), consume)
            return
        for path in files:
            with open(path, "rb") as fh:
                rows = pickle.load(fh)
            consume(newton_rows(*fn, rows))
            if progress is not None:
                progress(rows.n_read)

    warnings = []
    if census.missing:
        warnings.append(f"{ds.label}: {census.missing} of {census.n_read} battles have no answer text on one side "
                        f"(first: {census.first_missing}) and were left out (--missing-text error to stop "
                        "instead)")
    plan, dropped = _plan(ds.label, spec, census, weights, min_battles)
    m, k = plan.m, int(np.sum(plan.keep))
    names = [n for n, kept in zip(spec.names, plan.keep) if kept]
    fits = [P.BattleNewton(m - 1, 0.0, max_iter=max_iter),
            P.BattleNewton(m - 1 + k, np.concatenate([np.zeros(m - 1), np.full(k, float(penalty))]),
                           max_iter=max_iter)]
    passes = 1
    while not all(f.done for f in fits):
        betas = tuple(None if f.done else f.cand for f in fits)
        sums = [None, None]

        def add(part, sums=sums):
            for j, s in enumerate(part):
                if s is not None:
                    sums[j] = s if sums[j] is None else sums[j] + s

        scan((plan, betas, False), add)
        passes += 1
        for f, s in zip(fits, sums):
            if not f.done:
                f.update(s)
    for f in fits:
        if not f.converged or np.max(np.abs(f.beta[: m - 1]), initial=0.0) > 25:
            wins = _all_win_or_loss(census, plan.competitors)
            raise DataError(f"{ds.label}: the Bradley–Terry fit did not converge: some strengths are not identified"
                            + (f" ({wins})" if wins else ""))
    clusters = [None, None]
    if cluster:
        accs = [P.MomentsAccumulator(), P.MomentsAccumulator()]

        def add_clusters(part):
            for acc, s in zip(accs, part):
                if s is not None:
                    acc.add({None: s})

        scan((plan, tuple(f.beta for f in fits), True), add_clusters)
        passes += 1
        clusters = [acc.result()[None] for acc in accs]
    out = []
    for f, cl, method, fnames in zip(fits, clusters, ("bt", "style-controlled"), ([], names)):
        try:
            out.append(P.finish_bradley_terry(f.beta, f.at, m=m, penalty=f.pen, competitors=plan.competitors,
                                              feature_names=fnames, n_battles=census.battles, clusters=cl,
                                              method=method, converged=f.converged))
        except ValueError as exc:
            raise DataError(f"{ds.label}: {exc}") from None
    study = StyleStudy(plain=out[0], controlled=out[1], level=level, weights=weights, rows=None,
                       dropped_features=dropped)
    return StreamedStyle(study=study, tokenizer=spec.tokenizer, n_ties=census.n_ties,
                         ties_dropped=census.ties_dropped, warnings=warnings, passes=passes)


def _spec(ds: ParquetDataset, *, model_a, model_b, winner, text_a, text_b, features, style_features, cluster, ties,
          tokenizer, missing, arena_sides) -> StyleSpec:
    """The checks of `prepare_battles` that need only the schema, and the columns each partition reads."""
    check_style_inputs(text_a, text_b, features, ties, style_features)
    if missing not in ("drop", "error"):
        raise ValueError("missing must be 'drop' or 'error'")
    names = {"--model-a": model_a, "--model-b": model_b, "--winner": winner}
    if text_a is not None:
        names.update({"--text-a": text_a, "--text-b": text_b})
    if cluster:
        names["--cluster"] = cluster
    ds.require(list(names.values()), option={v: k for k, v in names.items()})
    if len({model_a, model_b, winner}) < 3:
        raise DataError("--model-a, --model-b and --winner must name different columns")
    cols = set(ds.columns)
    feature_cols: list = []
    used_tokenizer = None
    if text_a is not None:
        used_tokenizer = resolve_tokenizer(tokenizer)
    else:
        for name in features:
            col_a, col_b = f"{name}_a", f"{name}_b"
            if col_a in cols and col_b in cols:
                feature_cols.append((name, col_a, col_b))
            elif name in cols:
                feature_cols.append((name, name, None))
            else:
                raise DataError(f"{ds.label}: --features {name!r}: no columns {col_a!r} and {col_b!r} (per-side "
                                f"counts) and no column {name!r} (a battle-level gap)")
    sides = tuple(c for c in arena_sides if c in cols)
    return StyleSpec(model_a=model_a, model_b=model_b, winner=winner, text_a=text_a, text_b=text_b,
                     features=tuple(feature_cols), style_features=tuple(style_features) if text_a else (),
                     cluster=cluster, ties=ties, tokenizer=used_tokenizer,
                     drop_missing=sides if missing == "drop" else ())


def _plan(src: str, spec: StyleSpec, census: Census, weights: str, min_battles: int) -> tuple[FitPlan, list]:
    """After pass 1: `prepare_battles`' remaining checks, the z-scoring and the pair weights."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    if census.n_read == 0:
        raise DataError(f"{src}: the dataset has no rows")
    if census.count == 0:
        raise DataError(f"{src}: column {spec.winner!r}: no decisive battles left after dropping ties")
    comps = sorted(census.battles)
    if len(comps) < 2:
        raise DataError(f"{src}: only one model ({comps[0]!r}) in columns {spec.model_a!r} and {spec.model_b!r}")
    few = [c for c in comps if census.battles[c] < min_battles]
    if few:
        model = few[0]
        raise DataError(f"{census.first_row[model]}: model {model!r} has only {census.battles[model]} battle(s); a "
                        f"strength needs at least {min_battles}: drop the model or collect more battles")
    index = {c: i for i, c in enumerate(comps)}
    m = len(comps)
    lo = np.array([index[a] for a, _ in census.pairs], dtype=np.int64)
    hi = np.array([index[b] for _, b in census.pairs], dtype=np.int64)
    n_comp, lab = connected_components(csr_matrix((np.ones(lo.shape[0]), (lo, hi)), shape=(m, m)), directed=False)
    if n_comp > 1:
        lonely = [str(comps[i]) for i in range(m) if lab[i] != lab[0]][:3]
        raise DataError(f"{src}: the battles do not connect all competitors: {lonely} never meet {str(comps[0])!r}, "
                        "directly or through others")
    pair_weights = None
    if weights == "inverse-pair":
        # as style.pair_frequency_weights: 1/n_pair normalised to mean 1 over the battles (mean of 1/n_pair = P/n)
        counts = np.array(list(census.pairs.values()), dtype=float)
        pair_weights = np.zeros((m, m))
        value = (1.0 / counts) / (len(counts) / census.count)
        pair_weights[lo, hi] = value
        pair_weights[hi, lo] = value
    mean = census.mean
    sd = np.sqrt(census.m2 / census.count)
    keep = sd > 1e-12 * np.maximum(1.0, np.abs(mean))
    dropped = [n for n, kept in zip(spec.names, keep) if not kept]
    return FitPlan(competitors=tuple(comps), mean=mean[keep], sd=sd[keep], keep=keep,
                   pair_weights=pair_weights), dropped


def _all_win_or_loss(census: Census, comps) -> str:
    bad = [f"{c!r} won {int(census.won[c])} of {census.battles[c]}" for c in comps
           if census.won[c] == 0 or census.won[c] == census.battles[c]]
    return "; ".join(bad[:3])


__all__ = ["StreamedStyle", "style_control_streamed"]
