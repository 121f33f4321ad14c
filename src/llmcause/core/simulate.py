"""A confounded world with a known average treatment effect, for the engine's tests and tour.

Covariates X ~ N(0, I_p). Treatment by a logistic propensity in the first
three covariates (``overlap`` sets its strength, hence how extreme the
propensities get). Outcome Y = 1 + x₀ + ½x₁ − ½x₂ + 0.3x₃ + A·τ(X) + ε with
τ(x) = 1 + ½x₀ and ε ~ N(0, 1). Because x₀ raises both the chance of
treatment and the outcome, the naive difference in means is biased upwards.

Truth. ATE = 1 exactly. ATT = 1 + ½E[x₀ | A = 1], computed by Gauss–Hermite
quadrature (the propensity depends on X only through a normal index).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

_PROPENSITY = np.array([0.9, -0.6, 0.5])
OVERLAP = {"good": 1.0, "moderate": 2.0, "poor": 4.0}


@dataclass(frozen=True)
class ConfoundedWorld:
    X: np.ndarray
    treatment: np.ndarray
    outcome: np.ndarray
    propensity: np.ndarray
    true_ate: float
    true_att: float
    names: list[str]

    def to_frame(self):
        import pandas as pd

        df = pd.DataFrame(self.X, columns=self.names)
        df["treated"] = self.treatment.astype(int)
        df["outcome"] = self.outcome
        return df


def confounded_world(n: int = 2000, n_covariates: int = 5, *, overlap: str = "good",
                     seed: int | np.random.Generator = 0) -> ConfoundedWorld:
    """Draw n rows of the confounded world (see the module docstring)."""
    if n_covariates < 4:
        raise ValueError("need at least 4 covariates")
    if overlap not in OVERLAP:
        raise ValueError(f"overlap must be one of {list(OVERLAP)}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    beta = _PROPENSITY * OVERLAP[overlap]
    X = rng.standard_normal((n, n_covariates))
    e = expit(X[:, :3] @ beta)
    a = (rng.random(n) < e).astype(float)
    tau = 1.0 + 0.5 * X[:, 0]
    y0 = 1.0 + X[:, 0] + 0.5 * X[:, 1] - 0.5 * X[:, 2] + 0.3 * X[:, 3]
    y = y0 + a * tau + rng.standard_normal(n)
    return ConfoundedWorld(X=X, treatment=a, outcome=y, propensity=e, true_ate=1.0,
                           true_att=1.0 + 0.5 * _mean_x0_given_treated(beta),
                           names=[f"x{j}" for j in range(n_covariates)])


def _mean_x0_given_treated(beta: np.ndarray) -> float:
    # The index s = βᵀx ~ N(0, |β|²) and E[x₀ | s] = β₀s/|β|², so
    # E[x₀ | A=1] = β₀/|β|² · E[s σ(s)] / E[σ(s)].
    sd = float(np.linalg.norm(beta))
    nodes, weights = np.polynomial.hermite_e.hermegauss(120)
    s = sd * nodes
    p = expit(s)
    return float(beta[0] / sd**2 * np.sum(weights * s * p) / np.sum(weights * p))
