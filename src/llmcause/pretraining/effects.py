"""Effects of a data domain on held-out losses, from designed proxy runs or from a table of past runs.

Designed runs (randomised, so effects are identified at the proxy's scale):

- **replacement** (one-at-a-time design): Δ_{j,d} = E[L_d(base) − L_d(base
  without j, same budget)], the effect of giving domain j its base weight
  while the other domains shrink proportionally (Liu et al. 2025; Ye et al.
  2025 estimate this kind of effect).
- **augmentation** (one-at-a-time design): E[L_d(base) − L_d(base without j,
  the others keeping their bytes)], the effect of adding j's bytes on top.
  Both are paired by seed: the arms of one seed share every other domain's
  training blocks (common random numbers), Δ̂ = mean_s Δ_s, SE = sd_s(Δ)/√S
  with t_{S−1} quantiles (each seed a cluster).
- **inclusion** (random-subset design, Ilyas et al. 2022): the OLS
  coefficient of "j included" in L_d on inclusion indicators, i.e. the
  average effect of including j over the random inclusion of the others;
  SEs clustered by subset.
- **replacement slope** (Dirichlet swarm): the partially linear effect of
  w_j on L_d given the composition of the other domains (and α), per unit
  of weight; a Dirichlet draw's w_j is independent of that composition, so
  this is a variance-weighted average slope (Robinson 1988).

A table of past runs (observational, confounded by model size, tokens, ...)
gets the cross-fitted partially linear (DML) effect of w_j on L_d adjusting
for the named confounders and the composition of the other domains, beside
the naive regression slope (Chernozhukov et al. 2018). It assumes that the
named columns are all the confounding there is.

Effects are named ``<domain>:<held-out domain>``, in bits per byte; the
held-out name ``mean`` is the average over all held-out domains.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from ..core.crossfit import fold_ids
from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from ..core.plr import partially_linear
from .campaign import LOSS_PREFIX, loss_columns
from .designs import WEIGHT_PREFIX, design_domains

__all__ = ["designed_effects", "one_at_a_time_effects", "inclusion_effects", "swarm_effects",
           "observational_effects", "paired_difference", "nuisance_model"]


def _targets(results: pd.DataFrame) -> dict[str, np.ndarray]:
    """Held-out losses by name, plus ``mean`` (average over the held-out domains)."""
    cols = loss_columns(results)
    if not cols:
        raise ValueError(f"the results have no loss columns ({LOSS_PREFIX}<domain>)")
    out = {c[len(LOSS_PREFIX):]: results[c].to_numpy(dtype=float) for c in cols}
    out["mean"] = results[cols].to_numpy(dtype=float).mean(axis=1)
    return out


def paired_difference(a: np.ndarray, b: np.ndarray, seeds: np.ndarray, *, name: str, estimand: str,
                      level: float = 0.95, method: str = "paired by seed", diagnostics: dict | None = None,
                      warnings: Sequence[str] = ()) -> Estimate:
    """mean_s (a_s − b_s) with SE sd/√S and t_{S−1} quantiles (each seed is one cluster)."""
    delta = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    theta = float(delta.mean())
    warns = list(warnings)
    if delta.shape[0] < 2:
        warns.append(f"{name}: one seed only, so no interval; run two or more seeds")
    return estimate_from_influence(theta, delta - theta, name=name, estimand=estimand, method=method, level=level,
                                   cluster=np.asarray(seeds), diagnostics=diagnostics, warnings=warns)


def _arm_means(rows: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """Mean loss per seed for one arm (duplicates of a run, from several campaigns, are averaged)."""
    return rows.groupby("seed")[[LOSS_PREFIX + t for t in targets]].mean()


def one_at_a_time_effects(results: pd.DataFrame, level: float = 0.95) -> list[Estimate]:
    """Replacement and augmentation effects of adding each domain, paired by seed."""
    rows = results[results["kind"] == "one-at-a-time"]
    rows = rows.assign(**{f"{LOSS_PREFIX}mean": _targets(rows)["mean"]}) if len(rows) else rows
    if rows.empty:
        return []
    targets = [c[len(LOSS_PREFIX):] for c in loss_columns(rows)]
    plain = rows[rows["contrast"].fillna("") == ""]
    base_name = "base" if (plain["arm"] == "base").any() else "uniform"
    base = plain[plain["arm"] == base_name]
    if base.empty:
        raise ValueError("the one-at-a-time runs have no base arm")
    base_by_seed = _arm_means(base, targets)
    domains = design_domains(rows)
    out = []
    for contrast in ("replacement", "augmentation"):
        for varied in [d for d in domains if ((rows["varied"] == d) & (rows["contrast"] == contrast)).any()]:
            arm = rows[(rows["varied"] == varied) & (rows["contrast"] == contrast)]
            arm_by_seed = _arm_means(arm, targets)
            seeds = base_by_seed.index.intersection(arm_by_seed.index)
            if len(seeds) == 0:
                continue
            b_w = float(base[WEIGHT_PREFIX + varied].iloc[0])
            diag = {"base_arm": base_name, "arm": str(arm["arm"].iloc[0]), "n_seeds": int(len(seeds)),
                    "weight": f"{varied}: 0 -> {b_w:.4g}", "budget_base": int(base["budget"].iloc[0]),
                    "budget_arm": int(arm["budget"].iloc[0])}
            for t in targets:
                a = base_by_seed.loc[seeds, LOSS_PREFIX + t].to_numpy()
                b = arm_by_seed.loc[seeds, LOSS_PREFIX + t].to_numpy()
                out.append(paired_difference(a, b, seeds.to_numpy(), name=f"{varied}:{t}", estimand=contrast,
                                             level=level, diagnostics={**diag, "loss_with": float(a.mean()),
                                                                        "loss_without": float(b.mean())}))
    return out


def _ols_influence(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OLS coefficients and per-row influence values (n × p), θ̂ − θ ≈ mean ψ."""
    XtX_inv = np.linalg.pinv(X.T @ X / X.shape[0])
    beta = XtX_inv @ (X.T @ y) / X.shape[0]
    resid = y - X @ beta
    return beta, (X @ XtX_inv) * resid[:, None]


def inclusion_effects(results: pd.DataFrame, level: float = 0.95) -> list[Estimate]:
    """Average effect of including each domain (linear datamodel), clustered by subset."""
    rows = results[(results["kind"] == "inclusion") & (results["arm"] != "uniform")]
    if rows.empty:
        return []
    domains = design_domains(rows)
    Z = (rows[[WEIGHT_PREFIX + d for d in domains]].to_numpy(dtype=float) > 0).astype(float)
    varying = [j for j in range(len(domains)) if 0 < Z[:, j].mean() < 1]
    X = np.column_stack([np.ones(len(rows)), Z[:, varying]])
    mixtures = rows["mixture"].to_numpy()
    n_mix = len(np.unique(mixtures))
    warnings = []
    if n_mix < 2 * X.shape[1]:
        warnings.append(f"inclusion design: {n_mix} subsets for {X.shape[1]} coefficients; intervals are rough")
    out = []
    for t, y in _targets(rows).items():
        beta, psi = _ols_influence(X, y)
        for col, j in enumerate(varying, start=1):
            out.append(estimate_from_influence(
                float(beta[col]), psi[:, col], name=f"{domains[j]}:{t}", estimand="inclusion",
                method="datamodels-ols", level=level, cluster=mixtures,
                diagnostics={"n_subsets": n_mix, "share_included": float(Z[:, j].mean())}, warnings=warnings))
    return out


def _rest_composition(W: np.ndarray, j: int) -> np.ndarray:
    rest = np.delete(W, j, axis=1)
    total = rest.sum(axis=1, keepdims=True)
    return np.divide(rest, total, out=np.full_like(rest, 1.0 / rest.shape[1]), where=total > 0)


def swarm_effects(results: pd.DataFrame, level: float = 0.95, n_folds: int = 5, seed: int = 0) -> list[Estimate]:
    """Partially linear slope of each held-out loss in each domain's weight, over a Dirichlet swarm."""
    rows = results[(results["kind"] == "dirichlet") & (results["arm"] != "uniform")]
    if rows.empty:
        return []
    domains = design_domains(rows)
    W = rows[[WEIGHT_PREFIX + d for d in domains]].to_numpy(dtype=float)
    mixtures = rows["mixture"].to_numpy()
    if len(np.unique(mixtures)) < max(n_folds, 8):
        return []
    alpha = rows["alpha"].to_numpy(dtype=float)[:, None] if "alpha" in rows.columns else np.zeros((len(rows), 0))
    alpha = np.nan_to_num(np.log(alpha), nan=0.0) if alpha.shape[1] else alpha
    folds = fold_ids(len(rows), n_folds, groups=mixtures, seed=seed)
    out = []
    for j, d in enumerate(domains):
        X = np.column_stack([_rest_composition(W, j), alpha])
        for t, y in _targets(rows).items():
            est = partially_linear(y, W[:, j], X, folds=folds, cluster=mixtures, level=level, name=f"{d}:{t}",
                                   estimand="replacement slope (per unit weight)")
            out.append(est)
    return out


def designed_effects(results: pd.DataFrame, level: float = 0.95, seed: int = 0) -> EstimateTable:
    """Every effect the designs in ``results`` identify (one-at-a-time, inclusion, Dirichlet swarm)."""
    if "kind" not in results.columns:
        raise ValueError("the results have no 'kind' column (the design kind of each run)")
    estimates = one_at_a_time_effects(results, level) + inclusion_effects(results, level)
    estimates += swarm_effects(results, level, seed=seed)
    warnings = []
    if not estimates:
        warnings.append("no design here identifies a per-domain effect: use a one-at-a-time, inclusion or "
                        "Dirichlet design with enough mixtures")
    return EstimateTable(estimates, warnings)


def _naive_slope(y: np.ndarray, d: np.ndarray, *, name: str, level: float) -> Estimate:
    dc = d - d.mean()
    var = float(np.mean(dc * dc))
    slope = float(np.mean(dc * (y - y.mean())) / var)
    psi = dc * ((y - y.mean()) - slope * dc) / var
    return estimate_from_influence(slope, psi, name=name, estimand="regression slope (per unit weight)",
                                   method="naive", level=level)


def nuisance_model(learner: str = "spline", seed: int = 0):
    """A regressor for the DML nuisances: ``linear`` (ridge), ``spline`` (additive cubic splines + ridge;
    the default: smooth in log size and tokens, fast on small tables) or ``boosting`` (gradient boosting)."""
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    if learner == "linear":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    if learner == "spline":
        return make_pipeline(SplineTransformer(n_knots=6, degree=3), Ridge(alpha=1e-2))
    if learner == "boosting":
        return GradientBoostingRegressor(n_estimators=200, max_depth=3, learning_rate=0.05, subsample=0.8,
                                         random_state=seed)
    raise ValueError(f"unknown learner {learner!r}; use linear, spline or boosting")


def observational_effects(table: pd.DataFrame, *, treatments: Sequence[str], outcomes: Sequence[str],
                          confounders: Sequence[str], weights: Sequence[str] | None = None,
                          learner: str = "spline", outcome_model=None, treatment_model=None, n_folds: int = 5,
                          seed: int = 0, level: float = 0.95, naive: bool = True) -> EstimateTable:
    """Cross-fitted partially linear effect of each treatment weight on each loss, from past runs.

    Parameters
    ----------
    table : one row per past run (not modified).
    treatments : weight columns whose effect is wanted (e.g. ``w:code``).
    outcomes : loss columns (e.g. ``bpb:math``).
    confounders : numeric columns that drove both the mixture and the loss
        (log parameters, log tokens, ...). They are assumed to be all of the
        confounding: the estimate is only as good as this list.
    weights : all mixture weight columns (default: the treatments); the
        composition of the others enters as covariates, so the effect is
        that of w_j replacing the others proportionally.
    learner : nuisance learner for E[L | X] and E[w_j | X] (see `nuisance_model`).
    outcome_model, treatment_model : scikit-learn regressors that replace the learner.

    Returns
    -------
    EstimateTable with, per pair, the DML estimate (method ``dml-plr``) and,
    when ``naive``, the unadjusted regression slope (method ``naive``).
    """
    weights = list(weights) if weights else list(treatments)
    learner_name = "custom" if outcome_model is not None or treatment_model is not None else learner
    outcome_model = outcome_model if outcome_model is not None else nuisance_model(learner, seed)
    treatment_model = treatment_model if treatment_model is not None else nuisance_model(learner, seed)
    W = table[list(weights)].to_numpy(dtype=float)
    C = table[list(confounders)].to_numpy(dtype=float)
    folds = fold_ids(len(table), n_folds, seed=seed)
    estimates = []
    for tcol in treatments:
        j = weights.index(tcol) if tcol in weights else None
        X = C if j is None or W.shape[1] < 2 else np.column_stack([C, _rest_composition(W, j)])
        d = table[tcol].to_numpy(dtype=float)
        for ycol in outcomes:
            y = table[ycol].to_numpy(dtype=float)
            name = f"{_strip(tcol, WEIGHT_PREFIX)}:{_strip(ycol, LOSS_PREFIX)}"
            est = partially_linear(y, d, X, outcome_model=outcome_model, treatment_model=treatment_model,
                                   folds=folds, level=level, name=name, seed=seed,
                                   estimand="replacement slope (per unit weight), adjusted")
            estimates.append(est.with_(diagnostics={**est.diagnostics, "confounders": list(confounders),
                                                    "learner": learner_name}))
            if naive:
                estimates.append(_naive_slope(y, d, name=name, level=level))
    assumption = (f"the observational effects assume that {', '.join(confounders)} (and the other domains' "
                  "weights) are all the confounding: anything else that made runs with more of a domain "
                  "different (data quality, schedule, code version) is assumed away")
    return EstimateTable(estimates, [assumption])


def _strip(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name
