"""Inference from influence values: the one place where intervals are made.

Every estimator in llmcause returns a point estimate θ̂ and per-row influence
values ψ (θ̂ − θ ≈ mean ψ). This module turns them into standard errors
(iid or cluster-robust CR1), Wald intervals, contrasts between estimates
(paired when they share rows or clusters, with t degrees of freedom carried
through), simultaneous intervals by a multiplier bootstrap (max-t, on the
same t reference as the pointwise intervals), Holm-adjusted p-values, and a vectorised
percentile bootstrap. Nothing here refits a model.

References: Liang & Zeger 1986 (cluster-robust variance); Cameron & Miller
2015; Chernozhukov, Chetverikov & Kato 2013 (multiplier bootstrap, max-t);
Šidák 1967; Satterthwaite 1946 (combined df); Holm 1979.
"""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import numpy as np
from scipy import stats

from .estimate import Estimate, EstimateTable

_CHUNK_CELLS = 4_000_000  # bootstrap draws are made in chunks of about this many cells


# --------------------------------------------------------------------------- variance


def critical_value(level: float, df: float | None = None) -> float:
    """Two-sided quantile: z_{(1+level)/2}, or the t quantile with ``df`` degrees of freedom."""
    _check_level(level)
    q = (1.0 + level) / 2.0
    return float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))


def wald_interval(estimate: float, se: float, level: float = 0.95, df: float | None = None) -> tuple[float, float]:
    """θ̂ ± q·SE, with q the normal (or t with ``df``) two-sided quantile."""
    half = critical_value(level, df) * se
    return float(estimate - half), float(estimate + half)


def influence_se(psi: np.ndarray, cluster: np.ndarray | None = None) -> tuple[float, float | None]:
    """Standard error from influence values, and the t degrees of freedom to use.

    iid: Var = n⁻² Σ ψᵢ² (ddof 0, as DoubleML and ppi_py).
    Clustered (CR1): Var = G/(G−1) · n⁻² · Σ_g (Σ_{i∈g} ψᵢ)², with t_{G−1}
    quantiles (Cameron & Miller 2015), which matters when G is small.
    """
    psi = np.asarray(psi, dtype=float)
    n = psi.shape[0]
    if n == 0:
        return float("nan"), None
    if cluster is None:
        return float(np.sqrt(np.dot(psi, psi)) / n), None
    codes, n_groups = _codes(cluster)
    if n_groups < 2:
        return float("nan"), None
    sums = np.bincount(codes, weights=psi, minlength=n_groups)
    var = n_groups / (n_groups - 1) * np.sum(sums * sums) / n**2
    return float(np.sqrt(var)), float(n_groups - 1)


def estimate_from_influence(
    theta: float,
    psi: np.ndarray,
    *,
    name: str,
    estimand: str,
    method: str,
    level: float = 0.95,
    cluster: np.ndarray | None = None,
    rows: np.ndarray | None = None,
    n: int | None = None,
    diagnostics: dict | None = None,
    warnings: Iterable[str] = (),
    keep_influence: bool = True,
) -> Estimate:
    """Build an `Estimate` (SE and Wald CI) from θ̂ and its influence values."""
    psi = np.asarray(psi, dtype=float)
    if cluster is not None:
        cluster = np.asarray(cluster)
        if cluster.shape[0] != psi.shape[0]:
            raise ValueError("cluster must have one label per influence value")
    if rows is not None:
        rows = np.asarray(rows)
        if rows.shape[0] != psi.shape[0]:
            raise ValueError("rows must have one id per influence value")
    se, df = influence_se(psi, cluster)
    lo, hi = wald_interval(theta, se, level, df)
    diag = dict(diagnostics or {})
    if cluster is not None:
        diag.setdefault("n_clusters", int(_codes(cluster)[1]))
    return Estimate(
        name=name, estimand=estimand, method=method, estimate=float(theta), se=se, ci_low=lo, ci_high=hi,
        level=level, n=int(psi.shape[0] if n is None else n), diagnostics=diag,
        influence=psi if keep_influence else None, rows=rows if keep_influence else None,
        cluster=cluster if keep_influence else None, df=df, warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- joint influence


def influence_matrix(estimates: Sequence[Estimate]) -> tuple[np.ndarray, bool]:
    """Per-unit contributions C (units × m) such that θ̂ⱼ − θⱼ ≈ Σ_u C[u, j].

    Units are clusters when every estimate is clustered (paired by cluster
    label), otherwise rows (paired by row id). A unit missing from an estimate
    contributes 0 to it, so estimates on disjoint units are independent.
    """
    if not estimates:
        raise ValueError("no estimates given")
    for e in estimates:
        if e.influence is None:
            raise ValueError(f"estimate {e.name!r} ({e.method}) carries no influence values")
    clustered = [e.cluster is not None for e in estimates]
    if any(clustered) and not all(clustered):
        raise ValueError("cannot combine clustered and unclustered estimates; give all of them a cluster")
    use_cluster = all(clustered)
    keys = []
    for e in estimates:
        psi = e.influence
        keys.append(e.cluster if use_cluster else (e.rows if e.rows is not None else np.arange(psi.shape[0])))
    all_keys = np.concatenate([np.asarray(k) for k in keys])
    uniq, inverse = np.unique(all_keys, return_inverse=True)
    out = np.zeros((uniq.shape[0], len(estimates)))
    start = 0
    for j, e in enumerate(estimates):
        n_j = e.influence.shape[0]
        idx = inverse[start:start + n_j]
        out[:, j] = np.bincount(idx, weights=e.influence / n_j, minlength=uniq.shape[0])
        start += n_j
    return out, use_cluster


def linear_combination(
    estimates: Sequence[Estimate],
    weights: Sequence[float],
    *,
    name: str,
    estimand: str | None = None,
    method: str | None = None,
    level: float | None = None,
    diagnostics: dict | None = None,
) -> Estimate:
    """Σⱼ wⱼθ̂ⱼ with an SE that respects shared rows or clusters (pairing)."""
    weights = np.asarray(weights, dtype=float)
    if weights.shape[0] != len(estimates):
        raise ValueError("one weight per estimate")
    contrib, clustered = influence_matrix(estimates)
    combined = contrib @ weights
    n_units = combined.shape[0]
    theta = float(sum(w * e.estimate for w, e in zip(weights, estimates)))
    var = float(np.sum(combined * combined))
    df = combined_df(estimates, weights, contrib)
    if clustered:
        var *= n_units / (n_units - 1) if n_units > 1 else np.nan
        df = float(n_units - 1) if df is None else min(df, float(n_units - 1))
    se = float(np.sqrt(var))
    level = estimates[0].level if level is None else level
    lo, hi = wald_interval(theta, se, level, df)
    diag = {"n_clusters": n_units} if clustered else {}
    diag.update(diagnostics or {})
    # Influence on the unit scale: ψ_u = U·C_u, so mean over units reproduces the sum.
    units = _unit_labels(estimates, clustered)
    return Estimate(
        name=name, estimand=estimand or estimates[0].estimand, method=method or estimates[0].method,
        estimate=theta, se=se, ci_low=lo, ci_high=hi, level=level,
        n=max(e.n for e in estimates), diagnostics=diag,
        influence=combined * n_units, rows=None if clustered else units, cluster=units if clustered else None,
        df=df,
    )


def combined_df(estimates: Sequence[Estimate], weights: Sequence[float], contrib: np.ndarray) -> float | None:
    """t degrees of freedom for Σⱼ wⱼθ̂ⱼ from the estimates' own df (None: normal).

    Estimates on disjoint units are independent, so their df combine by
    Welch–Satterthwaite over the terms aⱼ = wⱼ²SEⱼ²: (Σaⱼ)²/Σ(aⱼ²/dfⱼ).
    When they share units the terms are dependent and the smallest dfⱼ is
    kept (conservative). Estimates without df (normal) add no term.
    """
    terms = [(w * w * e.se * e.se, e.df) for w, e in zip(weights, estimates) if w != 0]
    dfs = [d for _, d in terms if d is not None and np.isfinite(d)]
    if not dfs:
        return None
    used = contrib[:, np.asarray(weights) != 0]
    if np.any(np.count_nonzero(used, axis=1) > 1):
        return float(min(dfs))
    total = sum(a for a, _ in terms)
    denom = sum(a * a / d for a, d in terms if d is not None and np.isfinite(d))
    if not np.isfinite(total) or denom <= 0:
        return float(min(dfs))
    return float(max(min(dfs), total * total / denom))


def contrast(b: Estimate, a: Estimate, *, name: str | None = None, estimand: str | None = None,
             method: str | None = None) -> Estimate:
    """The difference b − a, named ``"B - A"`` by default.

    Paired automatically: rows (or clusters) that the two estimates share
    enter as ψᵢᴮ − ψᵢᴬ; the rest contribute independently, so for disjoint
    samples the variances add.
    """
    est = linear_combination([b, a], [1.0, -1.0], name=name or f"{b.name} - {a.name}",
                             estimand=estimand or f"difference in {b.estimand}", method=method or b.method)
    n_shared = _n_shared_units(a, b)
    return est.with_(diagnostics={**est.diagnostics, "paired_units": n_shared})


def pairwise_contrasts(estimates: Sequence[Estimate], **kwargs) -> list[Estimate]:
    """All differences ``later - earlier`` among the given estimates."""
    out = []
    for i in range(len(estimates)):
        for j in range(i + 1, len(estimates)):
            out.append(contrast(estimates[j], estimates[i], **kwargs))
    return out


# --------------------------------------------------------------------------- bootstrap


def multiplier_weights(rng: np.random.Generator, shape: tuple[int, ...], kind: str = "normal") -> np.ndarray:
    """iid multiplier draws with mean 0 and variance 1.

    ``normal``: N(0, 1); ``bayes``: Exp(1) − 1; ``wild``: Mammen's two-point law.
    """
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "bayes":
        return rng.standard_exponential(shape) - 1.0
    if kind == "wild":
        s5 = np.sqrt(5.0)
        p = (s5 + 1.0) / (2.0 * s5)
        return np.where(rng.random(shape) < p, (1.0 - s5) / 2.0, (1.0 + s5) / 2.0)
    raise ValueError(f"unknown multiplier kind {kind!r}; use normal, bayes or wild")


def multiplier_bootstrap(
    estimates: Sequence[Estimate], n_boot: int = 10_000, seed: int | np.random.Generator = 0, kind: str = "normal"
) -> np.ndarray:
    """Draws of the studentised deviations t*_{b,j} = Σ_u ξ_{b,u} C_{u,j} / √(Σ_u C²_{u,j}).

    One multiplier ξ per unit (cluster or row), shared across estimates so
    their dependence is kept. Returns an array of shape (n_boot, m). No model
    is refitted. For ``normal`` multipliers the draws are made directly from
    their exact law N(0, CᵀC) (cost independent of the number of units); the
    ``bayes`` and ``wild`` kinds draw ξ explicitly, one matrix product per chunk.
    """
    contrib, _ = influence_matrix(estimates)
    scale = np.sqrt(np.sum(contrib * contrib, axis=0))
    scale[scale == 0] = np.inf
    rng = _rng(seed)
    if kind == "normal":
        # With Gaussian multipliers ξᵀC is exactly N(0, CᵀC): draw in m dimensions, not one ξ per unit.
        vals, vecs = np.linalg.eigh(contrib.T @ contrib)
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        return (rng.standard_normal((n_boot, root.shape[1])) @ root.T) / scale
    n_units = contrib.shape[0]
    chunk = max(1, _CHUNK_CELLS // max(n_units, 1))
    draws = np.empty((n_boot, contrib.shape[1]))
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        xi = multiplier_weights(rng, (stop - start, n_units), kind)
        draws[start:stop] = (xi @ contrib) / scale
    return draws


def simultaneous_intervals(
    estimates: Sequence[Estimate], level: float = 0.95, n_boot: int = 10_000,
    seed: int | np.random.Generator = 0, kind: str = "normal",
) -> EstimateTable:
    """Max-t simultaneous intervals θ̂ⱼ ± cⱼ·SEⱼ, jointly covering with probability ≥ level.

    c is the ``level`` quantile over multiplier-bootstrap draws of maxⱼ |t*_{b,j}|
    (Chernozhukov, Chetverikov & Kato 2013): the joint critical value on the
    normal scale. Each estimate's interval uses the same reference law as its
    pointwise one: the per-estimate tail level 2Φ(c) − 1 is carried to a t
    quantile with the estimate's own df when it has one (few clusters, a
    Welch–Satterthwaite df), so cⱼ = F⁻¹_{t,dfⱼ}(Φ(c)). For independent
    estimates this is Šidák's rule with t marginals, exact; for perfectly
    dependent ones it is the pointwise t quantile. cⱼ is never below the
    pointwise critical value, so a simultaneous interval is never narrower
    than its pointwise one. Each returned estimate keeps its point estimate
    and SE; diagnostics hold ``critical_value`` (cⱼ), ``joint_normal_critical_value``
    (c) and the Holm-adjusted p-value ``p_holm``.
    """
    _check_level(level)
    draws = multiplier_bootstrap(estimates, n_boot, seed, kind)
    c = float(np.quantile(np.max(np.abs(draws), axis=1), level))
    upper_tail = float(stats.norm.cdf(c))
    p_adj = holm([e.pvalue for e in estimates])
    out = []
    for e, p in zip(estimates, p_adj):
        cj = c if e.df is None else float(stats.t.ppf(upper_tail, e.df))
        cj = max(cj, critical_value(level, e.df))
        diag = {**e.diagnostics, "critical_value": cj, "joint_normal_critical_value": c, "simultaneous": True,
                "p_holm": float(p)}
        out.append(e.with_(ci_low=e.estimate - cj * e.se, ci_high=e.estimate + cj * e.se, level=level,
                           diagnostics=diag))
    return EstimateTable(out)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values (controls the family-wise error under any dependence)."""
    p = np.asarray(pvalues, dtype=float)
    m = p.shape[0]
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled))
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out


def resample_counts(rng: np.random.Generator, n: int, n_draws: int, cluster: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap resampling counts, shape (n_draws, n): how often each row is drawn.

    With ``cluster``, whole clusters are drawn with replacement and each row
    gets its cluster's count.
    """
    if cluster is None:
        picks = rng.integers(0, n, size=(n_draws, n))
        flat = (picks + (np.arange(n_draws) * n)[:, None]).ravel()
        return np.bincount(flat, minlength=n_draws * n).reshape(n_draws, n).astype(float)
    codes, n_groups = _codes(cluster)
    group_counts = resample_counts(rng, n_groups, n_draws)
    return group_counts[:, codes]


def percentile_bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int | np.random.Generator = 0,
    cluster: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised percentile bootstrap.

    ``statistic(W)`` receives a (b, n) matrix of resampling counts and returns
    the statistic for each of the b resamples, shape (b,) or (b, m); e.g. a
    mean is ``lambda W: W @ x / W.sum(1)``. Draws are made in chunks, never in
    a Python loop over replicates. Returns (draws, ci_low, ci_high).
    """
    _check_level(level)
    rng = _rng(seed)
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    parts = []
    for start in range(0, n_boot, chunk):
        counts = resample_counts(rng, n, min(chunk, n_boot - start), cluster)
        parts.append(np.asarray(statistic(counts), dtype=float))
    draws = np.concatenate(parts, axis=0)
    alpha = 1.0 - level
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    return draws, lo, hi


# --------------------------------------------------------------------------- helpers


def _codes(labels: np.ndarray) -> tuple[np.ndarray, int]:
    uniq, codes = np.unique(np.asarray(labels), return_inverse=True)
    return codes.ravel(), int(uniq.shape[0])


def _unit_labels(estimates: Sequence[Estimate], clustered: bool) -> np.ndarray:
    keys = [e.cluster if clustered else (e.rows if e.rows is not None else np.arange(e.influence.shape[0]))
            for e in estimates]
    return np.unique(np.concatenate([np.asarray(k) for k in keys]))


def _n_shared_units(a: Estimate, b: Estimate) -> int:
    def units(e: Estimate) -> np.ndarray:
        if e.cluster is not None:
            return np.asarray(e.cluster)
        return np.asarray(e.rows) if e.rows is not None else np.arange(e.influence.shape[0])

    return int(np.intersect1d(units(a), units(b)).shape[0])


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
