"""Which prompts gain from a bigger model? The DR-learner and its calibration check.

Estimand: τₐ(x) = E[Y(a) − Y(base) | X = x], the per-prompt benefit of model a
over the baseline. DR-learner (Kennedy 2023, arXiv 2004.14497): AIPW
pseudo-outcomes Γᵢ = Γᵢᵃ − Γᵢᵇᵃˢᵉ from cross-fitted nuisances, regressed on
the features with a second cross-fit, so every τ̂(Xᵢ) is out of fold.

Calibration check: bin the prompts by τ̂ (quantiles) and compare the mean τ̂
in each bin with the DR estimate of the bin's average benefit (the mean of Γ
there, with a Wald interval). A calibrated τ̂ lies on the diagonal. The slope
of Γ on τ̂ − mean(τ̂) (the best linear predictor test of Chernozhukov,
Demirer, Duflo & Fernández-Val 2018) is 1 for a calibrated τ̂ and 0 when it
carries no signal; it is reported with its interval.

Assumptions: those of `evaluate` (ignorability given the features, overlap,
correct propensities).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.crossfit import fold_ids
from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from .evaluate import Nuisances, fit_nuisances
from .logs import RoutingLog
from .router import arm_scores, fit_linear_score


@dataclass
class BenefitFit:
    """Out-of-fold τ̂ per row for each model against the baseline, and its checks."""

    baseline: str
    tau: dict[str, np.ndarray]
    pseudo: dict[str, np.ndarray]
    table: EstimateTable
    calibration: pd.DataFrame


def benefit_study(log: RoutingLog, *, baseline: str | None = None, n_bins: int = 5, n_folds: int = 5,
                  seed: int = 0, learner: str = "linear", level: float = 0.95,
                  nuisances: Nuisances | None = None) -> BenefitFit:
    """DR-learner benefits of each model over ``baseline`` (default the first model), with calibration.

    Returns estimates named ``"<model> - <baseline>"``: the average benefit
    (estimand ``quality benefit``, method ``dr``), the calibration slope
    (estimand ``calibration slope``) and, per τ̂ bin, the DR benefit in the bin
    (estimand ``quality benefit in bin j``), plus a calibration table.
    """
    base = baseline or log.models[0]
    if base not in log.models:
        raise ValueError(f"baseline {base!r} is not one of the log's models ({', '.join(log.models)})")
    nuis = nuisances or fit_nuisances(log, n_folds=n_folds, seed=seed, learner=learner)
    gamma = arm_scores(log.reward, log.action, nuis.propensity, nuis.q_quality)
    b = log.models.index(base)
    folds = fold_ids(log.n, n_folds, groups=log.cluster, seed=seed + 7919)  # a fresh split for the second stage
    X = log.X
    mean, sd = X.mean(axis=0), X.std(axis=0)
    Z = (X - mean) / np.where(sd > 0, sd, 1.0) if X.shape[1] else X
    estimates: list[Estimate] = []
    frames = []
    taus, pseudos = {}, {}
    for j, model in enumerate(log.models):
        if j == b:
            continue
        g = gamma[:, j] - gamma[:, b]
        tau = np.empty(log.n)
        for k in np.unique(folds):
            test = folds == k
            tau[test] = fit_linear_score(Z[~test], g[~test]).predict(Z[test])
        taus[model], pseudos[model] = tau, g
        label = f"{model} - {base}"
        ate = float(g.mean())
        estimates.append(estimate_from_influence(ate, g - ate, name=label, estimand="quality benefit", method="dr",
                                                 level=level, cluster=log.cluster,
                                                 diagnostics={"tau_hat_sd": float(tau.std())}))
        estimates.append(_blp_slope(g, tau, label, level, log.cluster))
        edges = np.unique(np.quantile(tau, np.linspace(0, 1, n_bins + 1)))
        bins = np.clip(np.searchsorted(edges, tau, side="right") - 1, 0, max(len(edges) - 2, 0))
        for i in np.unique(bins):
            rows = np.flatnonzero(bins == i)
            m = float(g[rows].mean())
            est = estimate_from_influence(m, g[rows] - m, name=label, estimand=f"quality benefit in bin {i + 1}",
                                          method="dr", level=level, rows=rows,
                                          cluster=None if log.cluster is None else log.cluster[rows],
                                          diagnostics={"mean_tau_hat": float(tau[rows].mean()),
                                                       "bin_rows": int(rows.size)})
            estimates.append(est)
            frames.append({"model": model, "bin": int(i + 1), "rows": int(rows.size),
                           "mean predicted benefit": float(tau[rows].mean()), "DR benefit": m,
                           "ci_low": est.ci_low, "ci_high": est.ci_high, "covers prediction": est.covers(
                               float(tau[rows].mean()))})
    return BenefitFit(baseline=base, tau=taus, pseudo=pseudos, table=EstimateTable(estimates),
                      calibration=pd.DataFrame(frames))


def _blp_slope(g: np.ndarray, tau: np.ndarray, label: str, level: float, cluster) -> Estimate:
    """OLS slope of Γ on τ̂ − mean τ̂, with its sandwich influence values."""
    tc = tau - tau.mean()
    var = float(np.mean(tc * tc))
    if var <= 0:
        nan = float("nan")
        return Estimate(name=label, estimand="calibration slope", method="dr", estimate=nan, se=nan, ci_low=nan,
                        ci_high=nan, level=level, n=int(g.shape[0]),
                        diagnostics={"note": "the predicted benefit is constant"})
    slope = float(np.mean(tc * g) / var)
    intercept = float(g.mean())
    resid = g - intercept - slope * tc
    psi = tc * resid / var
    return estimate_from_influence(slope, psi, name=label, estimand="calibration slope", method="dr", level=level,
                                   cluster=cluster, diagnostics={"calibrated_if": 1.0, "no_signal_if": 0.0})


def calibration_figure(fit: BenefitFit):
    """Binned predicted benefit against the DR estimate of the bin's benefit, with intervals."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    cal = fit.calibration
    for i, (model, part) in enumerate(cal.groupby("model", sort=False)):
        x = part["mean predicted benefit"].to_numpy()
        y = part["DR benefit"].to_numpy()
        err = np.vstack([y - part["ci_low"].to_numpy(), part["ci_high"].to_numpy() - y])
        ax.errorbar(x, y, yerr=err, fmt="o", color=f"C{i}", capsize=3, label=f"{model} vs {fit.baseline}")
    lims = [min(cal["ci_low"].min(), cal["mean predicted benefit"].min()),
            max(cal["ci_high"].max(), cal["mean predicted benefit"].max())]
    ax.plot(lims, lims, ":", color="0.5", label="calibrated")
    ax.set_xlabel("mean predicted benefit in bin (out of fold)")
    ax.set_ylabel("DR estimate of the bin's benefit")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
