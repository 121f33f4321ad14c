"""Diagnostics that say when not to trust a weighted estimate: overlap, ESS, balance.

Overlap problems are reported, never silently fixed: the share of clipped
propensities, the propensity range, Kish's effective sample size per arm,
and standardized mean differences of the covariates before and after
weighting (Austin & Stuart 2015; a |SMD| above 0.1 is the usual alarm).
Trimming to [0.1, 0.9] (Crump et al. 2009) would change the estimand, so
llmcause clips (keeps every row) and says how much it clipped. For the ATT
only the upper end is clipped: a control's weight is e/(1−e), which explodes
only as e → 1, while raising a small e (controls unlike the treated) to the
bound would give those controls weight they should not have and bias the
estimate (`clip_propensity`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SMD_ALARM = 0.1
ESS_ALARM = 0.1  # fraction of an arm's rows
CLIP_ALARM = 0.01  # share of rows whose propensity was clipped


def kish_ess(weights: np.ndarray) -> float:
    """Kish's effective sample size (Σw)²/Σw²."""
    w = np.asarray(weights, dtype=float)
    ss = float(np.sum(w * w))
    return float(np.sum(w) ** 2 / ss) if ss > 0 else 0.0


def standardized_mean_differences(X: np.ndarray, treated: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(mean₁ − mean₀)/√((s₁² + s₀²)/2) per column, means weighted when ``weights`` is given.

    The denominator always uses the unweighted arm variances, so before and
    after weighting are on the same scale.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    t = np.asarray(treated, dtype=bool).astype(float)
    w = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    # One pass of matrix products instead of copying each arm's rows.
    cols = np.column_stack([t, 1 - t, w * t, w * (1 - t)])
    sums = X.T @ cols
    sq = (X * X).T @ cols[:, :2]
    counts, wsum = cols.sum(axis=0)[:2], cols.sum(axis=0)[2:]
    mean1, mean0 = sums[:, 0] / counts[0], sums[:, 1] / counts[1]
    var1 = (sq[:, 0] - counts[0] * mean1**2) / (counts[0] - 1)
    var0 = (sq[:, 1] - counts[1] * mean0**2) / (counts[1] - 1)
    pooled = np.sqrt(np.clip((var1 + var0) / 2.0, 0.0, None))
    diff = sums[:, 2] / wsum[0] - sums[:, 3] / wsum[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pooled > 1e-12 * (1 + np.abs(mean1) + np.abs(mean0)), diff / pooled, 0.0)


def balancing_weights(propensity: np.ndarray, treated: np.ndarray, estimand: str = "ate") -> np.ndarray:
    """Inverse-propensity weights: 1/e and 1/(1−e) for the ATE; 1 and e/(1−e) for the ATT."""
    e = np.asarray(propensity, dtype=float)
    t = np.asarray(treated, dtype=bool)
    if estimand == "ate":
        return np.where(t, 1.0 / e, 1.0 / (1.0 - e))
    if estimand == "att":
        return np.where(t, 1.0, e / (1.0 - e))
    raise ValueError(f"unknown estimand {estimand!r}")


def clip_propensity(propensity: np.ndarray, clip: float, estimand: str = "ate") -> np.ndarray:
    """Propensities bounded for weighting: [clip, 1 − clip] for the ATE, ≤ 1 − clip for the ATT.

    The ATT weights controls by e/(1−e) and treated rows by 1, so a small
    propensity is harmless there; only e near 1 needs a bound.
    """
    e = np.asarray(propensity, dtype=float)
    if estimand == "att":
        return np.minimum(e, 1.0 - clip)
    if estimand == "ate":
        return np.clip(e, clip, 1.0 - clip)
    raise ValueError(f"unknown estimand {estimand!r}")


def overlap_report(
    propensity_raw: np.ndarray,
    treated: np.ndarray,
    *,
    clip: float,
    estimand: str = "ate",
    X: np.ndarray | None = None,
    names: Sequence[str] | None = None,
) -> tuple[dict, list[str]]:
    """Overlap diagnostics for a binary treatment, and plain-language warnings.

    Returns (diagnostics, warnings). Diagnostics: the raw propensity range,
    the clip bound, which ends were clipped (``clip_rule``), the number and
    share of rows clipped at each end, Kish ESS per arm (absolute and as a
    fraction of the arm), and, given covariates, the largest |SMD| before and
    after weighting (with the per-covariate values). Any clipping at all is
    also said in a warning, with its count.
    """
    e_raw = np.asarray(propensity_raw, dtype=float)
    t = np.asarray(treated, dtype=bool)
    e = clip_propensity(e_raw, clip, estimand)
    low = (e_raw < clip) if estimand == "ate" else np.zeros(e_raw.shape, dtype=bool)
    high = e_raw > 1.0 - clip
    clipped = low | high
    w = balancing_weights(e, t, estimand)
    n1, n0 = int(t.sum()), int((~t).sum())
    ess1, ess0 = kish_ess(w[t]), kish_ess(w[~t])
    diag: dict = {
        "propensity_min": float(e_raw.min()),
        "propensity_max": float(e_raw.max()),
        "clip": float(clip),
        "clip_rule": "upper end only" if estimand == "att" else "both ends",
        "n_clipped": int(clipped.sum()),
        "n_clipped_low": int(low.sum()),
        "n_clipped_high": int(high.sum()),
        "share_clipped": float(clipped.mean()),
        "n_treated": n1,
        "n_control": n0,
        "ess_treated": ess1,
        "ess_control": ess0,
        "ess_treated_fraction": ess1 / n1 if n1 else 0.0,
        "ess_control_fraction": ess0 / n0 if n0 else 0.0,
        "max_weight": float(w.max()),
    }
    warnings: list[str] = []
    if diag["n_clipped"]:
        where = (f"above {1 - clip:g} and were lowered to it" if estimand == "att"
                 else f"outside [{clip:g}, {1 - clip:g}] and were moved to the nearer bound "
                      f"({diag['n_clipped_low']} low, {diag['n_clipped_high']} high)")
        head = "poor overlap: " if diag["share_clipped"] > CLIP_ALARM else ""
        warnings.append(
            f"{head}{diag['n_clipped']} of {e_raw.shape[0]} propensities ({diag['share_clipped']:.1%}) lay {where} "
            f"(range {diag['propensity_min']:.3g} to {diag['propensity_max']:.3g}); the estimate is biased by "
            "the clipping to the extent those propensities were right"
            + (", and intervals can cover well below their level (COVERAGE.md, poor overlap)" if head else "")
        )
    for arm, frac, ess in (("treated", diag["ess_treated_fraction"], ess1), ("control", diag["ess_control_fraction"], ess0)):
        if estimand == "att" and arm == "treated":
            continue
        if frac < ESS_ALARM:
            warnings.append(
                f"poor overlap: the {arm} arm's effective sample size after weighting is {ess:.0f} "
                f"({frac:.1%} of its rows); a few rows carry the estimate, and intervals can cover well below "
                "their level (COVERAGE.md, poor overlap)"
            )
    if X is not None:
        X = np.asarray(X, dtype=float)
        before = standardized_mean_differences(X, t)
        after = standardized_mean_differences(X, t, w)
        labels = list(names) if names is not None else [f"x{j}" for j in range(X.shape[1])]
        diag["max_abs_smd_before"] = float(np.max(np.abs(before))) if before.size else 0.0
        diag["max_abs_smd_after"] = float(np.max(np.abs(after))) if after.size else 0.0
        diag["smd_before"] = {k: float(v) for k, v in zip(labels, before)}
        diag["smd_after"] = {k: float(v) for k, v in zip(labels, after)}
        if diag["max_abs_smd_after"] > SMD_ALARM:
            worst = labels[int(np.argmax(np.abs(after)))]
            warnings.append(
                f"imbalance after weighting: |SMD| of {worst!s} is {diag['max_abs_smd_after']:.2f} (> {SMD_ALARM}); "
                "the propensity model may be misspecified"
            )
    return diag, warnings
