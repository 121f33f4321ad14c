"""Off-policy evaluation of a sequential policy from logged trajectories with per-step probabilities.

Data: n trajectories of up to T steps, as (n, T) arrays: rewards r_it, the
logging policy's probability μ_it of the action taken, the target policy's
probability π_it of that same action, and a mask of the steps that exist
(an ended trajectory is absorbing: no reward, ratio 1). With ρ_it = π_it/μ_it
and cumulative ratios w_it = Π_{s≤t} ρ_is (w_i,−1 = 1), the estimand is the
target's expected discounted return V(π) = E_π[Σ_t γ^t r_t], and per
trajectory:

- IS (trajectory-wise)   V_i = w_i,T · Σ_t γ^t r_it;
- PDIS (per-decision)    V_i = Σ_t γ^t w_it r_it (Precup, Sutton & Singh 2000);
- WPDIS (weighted)       Σ_t γ^t Σ_i w_it r_it / Σ_i w_it (consistent, biased in small samples);
- DR                     V_i = Σ_t γ^t [w_it (r_it − q_it) + w_i,t−1 v_it] (Jiang & Li 2016), with
  q_it = Q̂(s_it, a_it) and v_it = Σ_a π(a|s_it) Q̂(s_it, a) from a fitted Q (fit it out of fold).

Each estimator returns an `Estimate` with influence values (V_i − V̂; for
WPDIS the linearised ratio), so intervals come from `core.inference`.
Assumptions: the logged probabilities are the logging policy's true ones;
support: π > 0 ⇒ μ > 0 at every step; no confounding of the logged actions
outside the logged history. IS, PDIS and DR are unbiased under these; DR has
lower variance when Q̂ is good. Diagnostics: Kish's effective sample size of
the trajectory weights w_i,T (the weight of the whole trajectory), and the
largest weight's share; when the ESS falls below `ESS_ALARM` of n the weights
have exploded (products of many ratios, or long sequences such as LLM
responses whose log-probability ratios are large) and a warning says so.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .estimate import Estimate
from .inference import estimate_from_influence

SEQUENTIAL_METHODS = ("is", "pdis", "wpdis", "dr")
ESS_ALARM = 0.1  # share of the trajectories below which the effective sample size says the weights exploded


def check_sequential_inputs(rewards, logging_prob, target_prob, mask=None):
    """Validate (n, T) arrays; returns float arrays and a boolean mask (padded steps zeroed)."""
    r = np.atleast_2d(np.asarray(rewards, dtype=float))
    mu = np.atleast_2d(np.asarray(logging_prob, dtype=float))
    pi = np.atleast_2d(np.asarray(target_prob, dtype=float))
    if not (r.shape == mu.shape == pi.shape):
        raise ValueError(f"rewards, logging_prob and target_prob need the same (n, T) shape (got {r.shape}, "
                         f"{mu.shape}, {pi.shape})")
    m = np.ones(r.shape, bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != r.shape:
        raise ValueError(f"mask must have shape {r.shape}, got {m.shape}")
    if r.shape[0] == 0:
        raise ValueError("no trajectories")
    if not np.all(np.isfinite(r[m])):
        raise ValueError("rewards have missing or non-finite values")
    if not (np.all(mu[m] > 0) and np.all(mu[m] <= 1)):
        raise ValueError("logging probabilities of the actions taken must lie in (0, 1]")
    if not (np.all(pi[m] >= 0) and np.all(pi[m] <= 1)):
        raise ValueError("target probabilities must lie in [0, 1]")
    r, mu, pi = np.where(m, r, 0.0), np.where(m, mu, 1.0), np.where(m, pi, 1.0)
    return r, mu, pi, m


def cumulative_weights(logging_prob, target_prob, mask=None, log_ratio=None) -> np.ndarray:
    """w_it = Π_{s≤t} π_is/μ_is (ratio 1 on padded steps); computed in logs so long products do not overflow."""
    if log_ratio is None:
        _, mu, pi, _ = check_sequential_inputs(np.zeros_like(np.asarray(logging_prob, float)), logging_prob,
                                               target_prob, mask)
        with np.errstate(divide="ignore"):
            log_ratio = np.log(pi) - np.log(mu)
    return np.exp(np.cumsum(log_ratio, axis=1))


def sequential_ope(rewards, logging_prob, target_prob, mask=None, *, q_logged=None, v_target=None,
                   gamma: float = 1.0, methods: Sequence[str] = SEQUENTIAL_METHODS, log_ratio=None,
                   name: str = "policy", estimand: str = "value", level: float = 0.95, cluster=None
                   ) -> list[Estimate]:
    """Sequential off-policy estimates of one target policy (see the module docstring).

    Parameters
    ----------
    rewards, logging_prob, target_prob, mask : (n, T) arrays (see above).
    q_logged, v_target : (n, T) fitted Q of the logged action and the target's expected Q at each state;
        needed by ``"dr"``.
    log_ratio : optional (n, T) log π − log μ, for sequence-level data known only as log-probabilities
        (the probabilities themselves underflow); then ``logging_prob`` and ``target_prob`` may be all ones.
    """
    unknown = [m for m in methods if m not in SEQUENTIAL_METHODS]
    if unknown:
        raise ValueError(f"unknown sequential OPE method(s) {unknown}; use {list(SEQUENTIAL_METHODS)}")
    r, mu, pi, m = check_sequential_inputs(rewards, logging_prob, target_prob, mask)
    n, T = r.shape
    if log_ratio is not None:
        lr = np.asarray(log_ratio, dtype=float)
        if lr.shape != r.shape or not np.all(np.isfinite(lr[m])):
            raise ValueError("log_ratio must be a finite (n, T) array")
        lr = np.where(m, lr, 0.0)
    else:
        with np.errstate(divide="ignore"):
            lr = np.log(pi) - np.log(mu)
    w = np.exp(np.cumsum(lr, axis=1))
    disc = gamma ** np.arange(T)
    final = w[:, -1]
    diag, warns = weight_diagnostics(final, n)
    out = []
    for method in methods:
        if method == "is":
            per = final * (r @ disc)
        elif method == "pdis":
            per = (w * r) @ disc
        elif method == "wpdis":
            theta, psi = _wpdis(w, r, disc)
            out.append(_estimate(theta, psi, method, name, estimand, level, cluster, diag, warns))
            continue
        else:
            if q_logged is None or v_target is None:
                raise ValueError("method 'dr' needs q_logged and v_target (a fitted Q)")
            q = np.where(m, np.asarray(q_logged, float), 0.0)
            v = np.where(m, np.asarray(v_target, float), 0.0)
            if q.shape != r.shape or v.shape != r.shape:
                raise ValueError(f"q_logged and v_target must have shape {r.shape}")
            w_prev = np.hstack([np.ones((n, 1)), w[:, :-1]])
            per = (w * (r - q) + w_prev * v) @ disc
        theta = float(per.mean())
        out.append(_estimate(theta, per - theta, method, name, estimand, level, cluster, diag, warns))
    return out


def _wpdis(w: np.ndarray, r: np.ndarray, disc: np.ndarray) -> tuple[float, np.ndarray]:
    # Σ_t γ^t θ_t with θ_t = Σ_i w_it r_it / Σ_i w_it; ψ_i = Σ_t γ^t w_it (r_it − θ_t) / mean_i w_it
    sw = w.mean(axis=0)
    safe = np.where(sw > 0, sw, 1.0)
    theta_t = np.where(sw > 0, (w * r).mean(axis=0) / safe, 0.0)
    psi = ((w * (r - theta_t)) / safe) @ disc
    return float(theta_t @ disc), psi


def weight_diagnostics(final_weights: np.ndarray, n: int) -> tuple[dict, list[str]]:
    """ESS of the trajectory weights, the largest weight's share, and a warning when they explode."""
    fw = np.asarray(final_weights, float)
    total = float(fw.sum())
    ess = float(total ** 2 / np.dot(fw, fw)) if total > 0 else 0.0
    top = float(fw.max() / total) if total > 0 else float("nan")
    diag = {"ess": ess, "ess_fraction": ess / n, "max_weight": float(fw.max()), "mean_weight": float(fw.mean()),
            "max_weight_share": top, "zero_weight_share": float(np.mean(fw == 0))}
    warns = []
    if ess < ESS_ALARM * n:
        warns.append(f"importance weights explode: effective sample size {ess:.1f} of {n} trajectories "
                     f"({ess / n:.1%}); the largest weight carries {top:.0%} of the total and the mean weight is "
                     f"{fw.mean():.3g} (1 expected); IS-type estimates and their intervals are not trustworthy")
    return diag, warns


def _estimate(theta, psi, method, name, estimand, level, cluster, diag, warns) -> Estimate:
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method=method, level=level,
                                   cluster=cluster, diagnostics=dict(diag), warnings=warns)
