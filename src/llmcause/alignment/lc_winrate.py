"""Length-controlled win rate against a baseline (AlpacaEval 2.0 style), with a complete CI.

Model. For instruction x, the preference for the model over the baseline
(1 model wins, 0 baseline wins, soft values allowed) follows the GLM
    logit P(model ≻ baseline | x) = θ + φ·tanh(Δₓ/sd(Δ)) + ψ·γₓ,
with Δₓ the length gap (model minus baseline, characters by default) and
γₓ the instruction's difficulty (optional).

Estimand. LC = meanₓ σ(θ + ψγₓ): the win rate the model would have if its
answers were as long as the baseline's (Δ set to 0), standardised over the
instructions (a g-formula).

Variance. Delta method on the fitted GLM (sandwich covariance of
(θ, φ, ψ)) plus the sampling of instructions: ψᵢ = σ(θ̂ + ψ̂γᵢ) − LC + gᵀ·IFᵢ,
g = meanₓ σ'(·)(1, 0, γₓ), IFᵢ = n·H⁻¹sᵢ. AlpacaEval's own standard error
(the SEM of the predicted preferences) leaves the parameter term out; it
is reported in the diagnostics for comparison.

Differences from `alpaca_eval`'s ``length_controlled_v1``: no L1 penalty or
cross-validation (plain maximum likelihood), no "gamed" baseline rows, and
difficulty is a given column or, with several models on shared
instructions, estimated from the other models' preferences (leave one model
out). The published estimator itself is `lc_alpacaeval` (``--method alpacaeval``).

Assumptions. The GLM is right about how length moves the preference; the
length effect is the same at every instruction; instructions are a sample
from the population of interest.

Reference. Dubois, Galambosi, Liang & Hashimoto 2024, "Length-Controlled
AlpacaEval" (arXiv 2404.04475).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from ..core.pairwise import weighted_logistic_fit

ESTIMAND = "length-controlled win rate"
EXTRAPOLATION_SHARE = 0.1  # fewer answers than this on one side of equal length: warn
MIN_COMPARISONS = 10  # fewer comparisons of a model with the baseline: no length-controlled fit


def require_comparisons(models, *, columns: tuple[str, ...], baseline: str) -> None:
    """ValueError naming the model column(s) when a model meets the baseline fewer than MIN_COMPARISONS times.

    ``models`` holds the opponent of the baseline in each comparison (as `orient_against_baseline` gives).
    """
    names, counts = np.unique(np.asarray(models).astype(str), return_counts=True)
    few = np.flatnonzero(counts < MIN_COMPARISONS)
    if few.size:
        i = int(few[np.argmin(counts[few])])
        where = " and ".join(repr(c) for c in columns)
        raise ValueError(f"column{'s' if len(columns) > 1 else ''} {where}: model {str(names[i])!r} has only "
                         f"{_comparisons(int(counts[i]))} with the baseline {baseline!r}; the length-controlled "
                         f"win rate needs at least {MIN_COMPARISONS} per model")


def _comparisons(n: int) -> str:
    return f"{n} comparison" if n == 1 else f"{n} comparisons"


def length_controlled_winrate(preference, length_model, length_baseline, *, difficulty=None, cluster=None,
                              rows=None, level: float = 0.95, name: str = "model",
                              baseline: str = "baseline") -> EstimateTable:
    """The LC win rate of one model against the baseline, and its raw win rate (method ``naive``).

    Parameters
    ----------
    preference : P(model beats baseline) per instruction: 1, 0, ½ for a tie, or soft.
    length_model, length_baseline : lengths of the two answers (characters or tokens).
    difficulty : optional instruction difficulty γₓ (any monotone score).
    cluster : optional instruction (or prompt) id, for CR1 errors when instructions repeat.
    """
    y = np.asarray(preference, dtype=float)
    n = y.shape[0]
    lm = np.asarray(length_model, dtype=float)
    lb = np.asarray(length_baseline, dtype=float)
    if not (lm.shape[0] == lb.shape[0] == n):
        raise ValueError("preference and lengths must have the same length")
    if np.any((y < 0) | (y > 1)) or not np.all(np.isfinite(y)):
        raise ValueError("preferences must lie in [0, 1]")
    if n < MIN_COMPARISONS:
        raise ValueError(f"model {name!r} has only {_comparisons(n)} with the baseline; need at least "
                         f"{MIN_COMPARISONS}")
    if np.all(y >= 1) or np.all(y <= 0):
        raise ValueError(f"model {name!r} {'won' if y[0] >= 1 else 'lost'} every comparison: the win rate "
                         "cannot be length-controlled")
    delta = lm - lb
    sd = float(np.std(delta))
    if sd <= 0:
        raise ValueError(f"model {name!r}: the length gap never varies, so length cannot be controlled")
    cols = [np.ones(n), np.tanh(delta / sd)]
    names = ["intercept", "tanh(length gap/sd)"]
    if difficulty is not None:
        gam = np.asarray(difficulty, dtype=float)
        if gam.shape[0] != n or not np.all(np.isfinite(gam)):
            raise ValueError("difficulty must be finite, one per comparison")
        if np.std(gam) > 0:
            cols.append(gam)
            names.append("difficulty")
    X = np.column_stack(cols)
    fit = weighted_logistic_fit(X, y)
    if not fit.converged or np.max(np.abs(fit.coef)) > 25:
        raise ValueError(f"model {name!r}: the length-controlled GLM did not converge (separation)")
    scores = fit.scores.toarray() if hasattr(fit.scores, "toarray") else np.asarray(fit.scores)
    h_inv = np.linalg.inv(fit.hessian)
    infl_beta = n * scores @ h_inv  # per-row influence of (θ, φ, ψ)
    X0 = X.copy()
    X0[:, 1] = 0.0  # length gap set to zero
    p0 = expit(X0 @ fit.coef)
    lc = float(np.mean(p0))
    grad = (p0 * (1 - p0)) @ X0 / n
    psi = p0 - lc + infl_beta @ grad
    cov = h_inv @ (scores.T @ scores) @ h_inv
    shorter = float(np.mean(delta < 0))
    diag = {
        "baseline": baseline,
        "share_shorter_than_baseline": shorter,
        "raw_win_rate": float(np.mean(y)),
        "alpacaeval_se": float(np.std(p0, ddof=1) / np.sqrt(n)),
        "coefficients": {k: float(v) for k, v in zip(names, fit.coef)},
        "coefficient_se": {k: float(np.sqrt(cov[i, i])) for i, k in enumerate(names)},
        "length_sd": sd,
        "mean_length_gap": float(np.mean(delta)),
        "difficulty_used": "difficulty" in names,
    }
    lc_est = estimate_from_influence(lc, psi, name=name, estimand=ESTIMAND, method="length-controlled glm",
                                     level=level, cluster=cluster, rows=rows, diagnostics=diag)
    raw = estimate_from_influence(float(np.mean(y)), y - np.mean(y), name=name, estimand="win rate", method="naive",
                                  level=level, cluster=cluster, rows=rows, diagnostics={"baseline": baseline})
    warnings = []
    if min(shorter, float(np.mean(delta > 0))) < EXTRAPOLATION_SHARE:
        warnings.append(f"{name}: {shorter:.0%} of its answers are shorter than the baseline's, so the win rate at "
                        "equal length is an extrapolation; with a few hundred instructions its interval may "
                        "undercover")
    if "difficulty" not in names:
        warnings.append(f"{name}: no instruction difficulty in the model (give a difficulty column, or shared "
                        "instructions answered by several models)")
    return EstimateTable([lc_est, raw], warnings)


def leave_one_out_difficulty(models, instructions, preference) -> np.ndarray:
    """Difficulty of each row's instruction from the *other* models' preferences on it.

    γ = −logit((s + ½)/(c + 1)), with s the other models' summed preferences and
    c their count on the instruction (higher γ: the baseline wins more often).
    Leaving the row's own model out keeps its outcome out of its covariate.
    """
    models = np.asarray(models).astype(str)
    instr = np.asarray(instructions).astype(str)
    y = np.asarray(preference, dtype=float)
    _, icode = np.unique(instr, return_inverse=True)
    key_m = np.char.add(np.char.add(models, "\x00"), instr)
    _, mcode = np.unique(key_m, return_inverse=True)
    s_all = np.bincount(icode, weights=y)
    c_all = np.bincount(icode).astype(float)
    s_own = np.bincount(mcode, weights=y)
    c_own = np.bincount(mcode).astype(float)
    s = s_all[icode] - s_own[mcode]
    c = c_all[icode] - c_own[mcode]
    return -logit((s + 0.5) / (c + 1.0))


def orient_against_baseline(model_a, model_b, outcome, length_a, length_b, baseline: str):
    """Battles involving ``baseline`` as (model, P(model wins), model length, baseline length, row index)."""
    a = np.asarray(model_a).astype(str)
    b = np.asarray(model_b).astype(str)
    y = np.asarray(outcome, dtype=float)
    la = np.asarray(length_a, dtype=float)
    lb = np.asarray(length_b, dtype=float)
    on_a = a == baseline
    on_b = b == baseline
    idx = np.flatnonzero(on_a | on_b)
    model = np.where(on_b, a, b)[idx]
    pref = np.where(on_b, y, 1.0 - y)[idx]
    len_model = np.where(on_b, la, lb)[idx]
    len_base = np.where(on_b, lb, la)[idx]
    return model, pref, len_model, len_base, idx


def lc_winrates(models, preference, length_model, length_baseline, *, instructions=None, difficulty=None,
                level: float = 0.95, baseline: str = "baseline", rows=None) -> EstimateTable:
    """LC and raw win rates of every model against the baseline.

    Difficulty: the given values, else (with ``instructions`` shared by several
    models) the leave-one-model-out estimate, else none. Clustered by
    instruction when instructions are given, so models judged on the same
    instructions can be contrasted pairwise (`core.inference.contrast`).
    """
    models = np.asarray(models).astype(str)
    y = np.asarray(preference, dtype=float)
    rows = np.arange(y.shape[0]) if rows is None else np.asarray(rows)
    instr = None if instructions is None else np.asarray(instructions).astype(str)
    gam = None if difficulty is None else np.asarray(difficulty, dtype=float)
    source = "given"
    if gam is None and instr is not None and np.unique(models).shape[0] > 1:
        gam = leave_one_out_difficulty(models, instr, y)
        source = "leave-one-model-out"
    out: list[Estimate] = []
    warnings: list[str] = []
    for m in sorted(set(models.tolist())):  # plain str: names reach messages as the user wrote them
        sel = models == m
        cl = None if instr is None else instr[sel]  # clustered by instruction: models pair on shared ones
        table = length_controlled_winrate(y[sel], np.asarray(length_model)[sel], np.asarray(length_baseline)[sel],
                                          difficulty=None if gam is None else gam[sel], cluster=cl, rows=rows[sel],
                                          level=level, name=m, baseline=baseline)
        for e in table:
            out.append(e.with_(diagnostics={**e.diagnostics, "difficulty_source": source if gam is not None
                                            else "none"}) if e.method != "naive" else e)
        warnings.extend(table.warnings)
    return EstimateTable(out, warnings)
