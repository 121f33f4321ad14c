"""Transport a mean from the rows you have (source) to the population you will serve (target).

Estimand. θ_T = E_T[Y]: the mean outcome over the target population, which
shares the covariates X with the source but has no outcomes. Under covariate
shift (Y ⟂ sample | X) and overlap (p_T(x) > 0 ⇒ p_S(x) > 0),
θ_T = E_T[μ(X)] = E_S[w(X)·Y] with μ(x) = E[Y | X = x] and w = p_T/p_S.

Estimator (doubly robust; Dahabreh et al. 2020, and Kato, Uehara & Yasui 2020
for off-policy values under covariate shift). The outcome is any per-row
score φᵢ whose conditional mean given X is the source's μ(X): a label, a
calibrated AIPW pseudo-outcome, a policy's DR score. With cross-fitted μ̂
(regression of φ on X, source rows) and a cross-fitted density ratio from a
classifier of target vs source, ŵ(x) = P̂(T|x)/P̂(S|x)·n_S/n_T (normalised to
mean 1 over the source),

    θ̂_T = mean_T μ̂(Xⱼ) + mean_S ŵ(Xᵢ)(φᵢ − μ̂(Xᵢ)).

It is consistent when either μ̂ or ŵ is right. Influence values come in two
blocks, one per sample, scaled so that their mean square over the N = n_S + n_T
rows gives Var = Var_T(μ̂)/n_T + Var_S(ŵ(φ − μ̂))/n_S.

Folds are shared by both samples and keep rows with identical covariates
together, so that when target and source are the same sample the classifier
learns nothing (ŵ = 1), target rows get their source twin's out-of-fold μ̂,
and θ̂_T equals the source mean.

Overlap diagnostics: Kish's ESS of ŵ over the source rows, the largest ŵ,
and the share of target rows outside the source's range (a numeric covariate
beyond the source's min or max, or a category the source never shows).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .crossfit import fold_ids
from .diagnostics import kish_ess
from .estimate import Estimate
from .inference import estimate_from_influence

ESS_THIN = 0.1  # ESS below this share of the source rows: thin overlap
OUTSIDE_THIN = 0.05  # more than this share of target rows outside the source's range: thin overlap


@dataclass
class CovariateShift:
    """A fitted density ratio between a source and a target sample (see `fit_covariate_shift`)."""

    X_source: np.ndarray
    X_target: np.ndarray
    weights: np.ndarray  # ŵ per source row, mean 1
    folds_source: np.ndarray
    folds_target: np.ndarray
    ess: float
    share_outside: float
    max_weight: float
    learner: str

    @property
    def n_source(self) -> int:
        return int(self.X_source.shape[0])

    @property
    def n_target(self) -> int:
        return int(self.X_target.shape[0])

    def diagnostics(self) -> dict:
        return {"n_source": self.n_source, "n_target": self.n_target, "ess": self.ess,
                "ess_share": self.ess / self.n_source, "max_weight": self.max_weight,
                "target_outside_source": self.share_outside}

    def warning(self, label: str) -> str | None:
        """A plain warning when overlap is thin, else None."""
        if self.ess / self.n_source >= ESS_THIN and self.share_outside <= OUTSIDE_THIN:
            return None
        return (f"{label}: thin overlap between the source and the target (ESS {self.ess:.0f} of "
                f"{self.n_source} source rows, {100 * self.share_outside:.1f}% of target rows outside the source's "
                "range): the transported value extrapolates and its interval may under-cover")


def fit_covariate_shift(X_source: np.ndarray, X_target: np.ndarray, *, n_folds: int = 5, seed: int = 0,
                        learner: str = "linear") -> CovariateShift:
    """Cross-fit the classifier of target vs source and return the density ratio on the source rows.

    ``learner``: ``linear`` (L2 logistic regression on standardised covariates,
    by Newton's method; exact for shifts of the mean of Gaussian
    covariates) or ``boosting``
    (histogram gradient boosting).
    """
    Xs, Xt = _as_matrix(X_source), _as_matrix(X_target)
    if Xs.shape[1] != Xt.shape[1]:
        raise ValueError("source and target need the same covariates")
    ns, nt = Xs.shape[0], Xt.shape[0]
    if ns < 2 * n_folds or nt < 2 * n_folds:
        raise ValueError(f"transport needs at least {2 * n_folds} source and target rows ({ns} and {nt} given)")
    pooled = np.vstack([Xs, Xt])
    _, key = np.unique(pooled, axis=0, return_inverse=True)
    folds = fold_ids(pooled.shape[0], n_folds, groups=key.ravel(), seed=seed)
    target = np.r_[np.zeros(ns), np.ones(nt)]
    p_target = np.empty(pooled.shape[0])
    for k in range(n_folds):
        test = folds == k
        model = _classifier(learner, seed).fit(pooled[~test], target[~test])
        p_target[test] = model.predict_proba(pooled[test])[:, 1]
    p = np.clip(p_target[:ns], 1e-12, 1 - 1e-12)
    w = p / (1 - p) * (ns / nt)
    w = w / w.mean()
    lo, hi = Xs.min(axis=0), Xs.max(axis=0)
    outside = np.any((Xt < lo) | (Xt > hi), axis=1) if Xs.shape[1] else np.zeros(nt, dtype=bool)
    return CovariateShift(X_source=Xs, X_target=Xt, weights=w, folds_source=folds[:ns], folds_target=folds[ns:],
                          ess=kish_ess(w), share_outside=float(outside.mean()), max_weight=float(w.max()),
                          learner=learner)


def transported_mean(phi: np.ndarray, shift: CovariateShift, *, name: str, estimand: str, method: str,
                     level: float = 0.95, rows: np.ndarray | None = None, target_row_offset: int | None = None,
                     cluster: np.ndarray | None = None) -> Estimate:
    """DR estimate of the target mean of φ, with influence values over the source and the target rows.

    ``rows``: ids of the source rows (default ``arange(n_S)``); target rows get
    ids ``target_row_offset + j`` (default: after the largest source id), so
    two transported estimates pair on shared target rows. ``cluster``: source
    clusters (target rows are their own clusters).
    """
    phi = np.asarray(phi, dtype=float)
    ns, nt = shift.n_source, shift.n_target
    if phi.shape[0] != ns:
        raise ValueError("one score per source row")
    mu_s, mu_t = _crossfit_outcome(phi, shift)
    w = shift.weights
    resid = w * (phi - mu_s)
    delta = float(resid.mean())
    m_t = float(mu_t.mean())
    theta = m_t + delta
    big_n = ns + nt
    psi = np.r_[(big_n / ns) * (resid - delta), (big_n / nt) * (mu_t - m_t)]
    src_rows = np.arange(ns) if rows is None else np.asarray(rows)
    offset = (int(src_rows.max()) + 1 if ns else 0) if target_row_offset is None else target_row_offset
    all_rows = np.r_[src_rows, offset + np.arange(nt)]
    clus = None
    if cluster is not None:
        clus = np.r_[np.asarray(cluster).astype(str).astype(object),
                     np.array([f"target row {j}" for j in range(nt)], dtype=object)]
    plain = float(phi.mean())
    diag = {**shift.diagnostics(), "source_mean": plain, "outcome_model_target_mean": m_t,
            "weighted_residual": delta}
    warn = shift.warning(name)
    return estimate_from_influence(theta, psi, name=name, estimand=estimand, method=method, level=level,
                                   rows=all_rows, cluster=clus, diagnostics=diag, warnings=(warn,) if warn else ())


def pseudo_outcomes(est: Estimate) -> tuple[np.ndarray, np.ndarray]:
    """(row ids, per-row scores φᵢ) of an estimate that is a mean of per-row scores: φᵢ = θ̂ + ψᵢ.

    Influence entries with negative row ids (pseudo-rows that carry extra
    variance, like a calibration's jackknife) are dropped and the data rows'
    values put back on their own scale, so mean(φ) = θ̂. Valid for estimators
    whose data-row influence is φᵢ − θ̂ (AIPW-type means, plain means), not for
    two-sample ones (PPI).
    """
    if est.influence is None:
        raise ValueError(f"estimate {est.name!r} carries no influence values")
    psi = np.asarray(est.influence, dtype=float)
    rows = np.arange(psi.shape[0]) if est.rows is None else np.asarray(est.rows)
    keep = rows >= 0
    phi = est.estimate + psi[keep] * (keep.sum() / psi.shape[0])
    return rows[keep], phi


def _crossfit_outcome(phi: np.ndarray, shift: CovariateShift) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold μ̂ on the source rows and on the target rows (folds shared by both samples)."""
    mu_s = np.empty(shift.n_source)
    mu_t = np.empty(shift.n_target)
    for k in np.unique(np.r_[shift.folds_source, shift.folds_target]):
        test_s, test_t = shift.folds_source == k, shift.folds_target == k
        train = ~test_s
        if not train.any():  # every source row in one fold: fall back to the source mean
            mu_s[test_s], mu_t[test_t] = phi.mean(), phi.mean()
            continue
        model = _regressor(shift.learner).fit(shift.X_source[train], phi[train])
        if test_s.any():
            mu_s[test_s] = model.predict(shift.X_source[test_s])
        if test_t.any():
            mu_t[test_t] = model.predict(shift.X_target[test_t])
    return mu_s, mu_t


def _as_matrix(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    return X[:, None] if X.ndim == 1 else X


class _Standardised:
    """Shared by the linear fits: centre and scale by the training rows, add an intercept."""

    def _design(self, X: np.ndarray) -> np.ndarray:
        return np.column_stack([np.ones(X.shape[0]), (X - self.mean_) / self.scale_])

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        self.mean_ = X.mean(axis=0)
        sd = X.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self._design(X)


class _Logistic(_Standardised):
    """L2-penalised logistic regression (intercept unpenalised) by Newton's method, to machine precision."""

    def __init__(self, penalty: float = 1.0):
        self.penalty = penalty

    def fit(self, X: np.ndarray, y: np.ndarray) -> "_Logistic":
        Z = self._standardise(X)
        pen = np.full(Z.shape[1], self.penalty)
        pen[0] = 0.0
        beta = np.zeros(Z.shape[1])
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(Z @ beta)))
            grad = Z.T @ (p - y) + pen * beta
            hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(pen) + 1e-12 * np.eye(Z.shape[1])
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.max(np.abs(step)) < 1e-12:
                break
        self.coef_ = beta
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-(self._design(X) @ self.coef_)))
        return np.column_stack([1 - p, p])


class _Ridge(_Standardised):
    """Least squares with a small ridge on the standardised slopes (intercept unpenalised)."""

    def __init__(self, penalty: float = 1e-3):
        self.penalty = penalty

    def fit(self, X: np.ndarray, y: np.ndarray) -> "_Ridge":
        Z = self._standardise(X)
        pen = np.full(Z.shape[1], self.penalty)
        pen[0] = 0.0
        self.coef_ = np.linalg.solve(Z.T @ Z + np.diag(pen), Z.T @ y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self._design(X) @ self.coef_


def _classifier(learner: str, seed: int):
    if learner == "boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, random_state=seed)
    if learner != "linear":
        raise ValueError("learner must be linear or boosting")
    return _Logistic()


def _regressor(learner: str):
    if learner == "boosting":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=0)
    return _Ridge()
