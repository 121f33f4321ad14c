"""Style-controlled model strengths beside plain Bradley–Terry scores.

Model (contextual Bradley–Terry). For battle i between models aᵢ and bᵢ,
    logit P(a beats b) = r_a − r_b + zᵢᵀγ,
with zᵢ the z-scored style gaps (a − b)/(a + b + 1) (length, headers, lists,
bold, ...). Ties count as half a win for each side.

Estimands. r: each model's strength with style held fixed (a controlled
direct effect of the model at z = 0), on the log-odds scale, centred to mean
zero (only contrasts r_a − r_b are identified); γ: the change in the log-odds
of winning per standard deviation of a style gap, holding the models fixed.
The plain Bradley–Terry fit (no z) is reported beside it.

Assumptions. Logit additivity; style is not a proxy for unmeasured quality
(length carries substance, so γ may absorb real helpfulness: controlling a
mediator over-controls); battles independent given the cluster structure.

Variance. Sandwich (cluster-robust CR1 by prompt when given), from
`core.pairwise.fit_bradley_terry`. Ranks with uncertainty: 1 + the number of
models whose lower bound lies above this one's upper bound.

References. Bradley & Terry 1952; Chiang et al. 2024, "Chatbot Arena"
(arXiv 2403.04132); LMArena, "Does style matter?" (2024).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from ..core.estimate import Estimate, EstimateTable
from ..core.pairwise import PairwiseFit, elo_scale, fit_bradley_terry, rank_with_uncertainty
from ..core.inference import critical_value
from .battles import Battles

WEIGHT_KINDS = ("none", "inverse-pair")


def pair_frequency_weights(model_a: Sequence, model_b: Sequence) -> np.ndarray:
    """Weights 1/n_pair for each battle (unordered pair of models), normalised to mean 1.

    Each pair of models then counts about equally, so heavily sampled pairs do
    not dominate the fit (LMArena's reweighting, without its floor).
    """
    a = np.asarray(model_a).astype(str)
    b = np.asarray(model_b).astype(str)
    first = a < b
    lo, hi = np.where(first, a, b), np.where(first, b, a)
    _, codes, counts = np.unique(np.char.add(np.char.add(lo, "\x00"), hi), return_inverse=True, return_counts=True)
    w = 1.0 / counts[codes.ravel()]
    return w / w.mean()


@dataclass
class StyleStudy:
    """Plain and style-controlled Bradley–Terry fits of the same battles."""

    plain: PairwiseFit
    controlled: PairwiseFit
    level: float = 0.95
    weights: str = "none"
    rows: np.ndarray | None = field(default=None, repr=False)
    dropped_features: list[str] = field(default_factory=list)

    @property
    def feature_names(self) -> list[str]:
        return list(self.controlled.feature_names)

    def estimates(self) -> EstimateTable:
        """Plain strengths (method ``bt``), style-controlled strengths and style effects (log-odds)."""
        out = [*self._with_elo(self.plain), *self._with_elo(self.controlled)]
        warnings = []
        if self.dropped_features:
            warnings.append(f"style features with no variation were left out: {', '.join(self.dropped_features)}")
        return EstimateTable(out, warnings)

    def strengths(self, method: str = "style-controlled") -> EstimateTable:
        fit = self.controlled if method == "style-controlled" else self.plain
        return EstimateTable([e for e in self._with_elo(fit) if e.estimand == "strength"])

    def style_effects(self) -> EstimateTable:
        return EstimateTable([e for e in self._with_elo(self.controlled) if e.estimand == "style effect"])

    def _with_elo(self, fit: PairwiseFit) -> list[Estimate]:
        out = []
        for e in fit.estimates(level=self.level):
            diag = dict(e.diagnostics)
            if e.estimand == "strength":
                diag.update(elo_ci_low=float(elo_scale(e.ci_low)), elo_ci_high=float(elo_scale(e.ci_high)),
                            weights=self.weights)
            else:
                diag.update(units="log-odds per SD of the style gap (a-b)/(a+b+1)")
            rows = self.rows if (self.rows is not None and e.influence is not None) else None
            out.append(e.with_(diagnostics=diag, rows=rows))
        return out

    def leaderboard(self) -> pd.DataFrame:
        """One row per model: Elo-scale scores with CIs and ranks, plain and style-controlled."""
        q = critical_value(self.level, self.controlled.df)
        cols = {"model": [str(c) for c in self.controlled.competitors],
                "battles": [self.controlled.n_battles.get(c, 0) for c in self.controlled.competitors]}
        for label, fit in (("bt", self.plain), ("style", self.controlled)):
            se = fit.strength_se()
            lo, hi = fit.strengths - q * se, fit.strengths + q * se
            cols[f"elo_{label}"] = elo_scale(fit.strengths)
            cols[f"elo_{label}_low"] = elo_scale(lo)
            cols[f"elo_{label}_high"] = elo_scale(hi)
            cols[f"rank_{label}"] = rank_with_uncertainty(lo, hi)
        frame = pd.DataFrame(cols)
        frame["rank_shift"] = frame["rank_bt"] - frame["rank_style"]
        return frame.sort_values(["elo_style", "model"], ascending=[False, True]).reset_index(drop=True)


def style_control(
    model_a: Sequence,
    model_b: Sequence,
    outcome: Sequence[float],
    features: np.ndarray,
    feature_names: Sequence[str] | None = None,
    *,
    cluster: Sequence | None = None,
    weights: str | Sequence[float] | None = None,
    penalty: float = 0.0,
    level: float = 0.95,
    rows: np.ndarray | None = None,
    competitors: Sequence | None = None,
) -> StyleStudy:
    """Fit plain and style-controlled Bradley–Terry models with sandwich CIs.

    Parameters
    ----------
    model_a, model_b : model labels per battle.
    outcome : P(a wins): 1, 0, or ½ for a tie.
    features : (n, k) style gaps, already z-scored (see `features.standardize_gaps`).
    cluster : optional prompt (or voter) label per battle: CR1 errors, t_{G−1} intervals.
    weights : ``"inverse-pair"`` (each pair of models counts alike), ``"none"`` or
        explicit weights.
    penalty : ridge on γ (0: plain maximum likelihood; LMArena's example uses 1).
    rows : original row ids of the battles (so contrasts with fits on other rows pair correctly).
    """
    if isinstance(weights, str) or weights is None:
        kind = "none" if weights is None else weights
        if kind not in WEIGHT_KINDS:
            raise ValueError(f"unknown weights {kind!r}; use none or inverse-pair")
        w = pair_frequency_weights(model_a, model_b) if kind == "inverse-pair" else None
    else:
        kind, w = "custom", np.asarray(weights, dtype=float)
    Z = np.asarray(features, dtype=float)
    if Z.ndim == 1:
        Z = Z[:, None]
    names = list(feature_names) if feature_names is not None else [f"z{j}" for j in range(Z.shape[1])]
    comps = competitors if competitors is not None else None
    plain = fit_bradley_terry(model_a, model_b, outcome, weights=w, cluster=cluster, competitors=comps, method="bt")
    controlled = fit_bradley_terry(model_a, model_b, outcome, features=Z, feature_names=names, weights=w,
                                   cluster=cluster, penalty=penalty, competitors=plain.competitors,
                                   method="style-controlled")
    return StyleStudy(plain=plain, controlled=controlled, level=level, weights=kind,
                      rows=None if rows is None else np.asarray(rows))


def style_control_battles(battles: Battles, *, weights: str | None = None, penalty: float = 0.0,
                          level: float = 0.95) -> StyleStudy:
    """`style_control` on prepared battles (see `battles.prepare_battles`)."""
    study = style_control(battles.model_a, battles.model_b, battles.outcome, battles.style.values,
                          battles.style.names, cluster=battles.cluster, weights=weights, penalty=penalty,
                          level=level, rows=battles.rows)
    study.dropped_features = list(battles.style.dropped)
    return study
