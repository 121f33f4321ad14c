"""Do style effects differ between subgroups (language, code vs not, human vs LLM-judge annotators)?

Estimand. γ_g, the style-controlled effect of each style gap within
subgroup g (each group gets its own model strengths, i.e. a fully
interacted contextual Bradley–Terry model), and the differences γ_g − γ_ref.

Inference. Each group's fit carries per-battle influence values; the
differences come from `core.inference.contrast`, which pairs groups that
share clusters (e.g. the same battles judged by a human and an LLM judge,
clustered by battle id) and treats disjoint rows as independent. The joint
test of "no difference in any style effect" is a Wald χ² test on all
differences with their joint covariance from the same influence values;
per-feature p-values are Holm-adjusted.

Assumptions. Those of the style-controlled model within each group; groups
defined before looking at the votes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import contrast, holm, influence_matrix
from .battles import Battles
from .style import StyleStudy, style_control


@dataclass
class GroupStyleEffects:
    """Per-group style-controlled fits and the tests of difference."""

    groups: list[str]
    studies: dict[str, StyleStudy]
    effects: EstimateTable  # one per (feature, group)
    differences: EstimateTable  # one per (feature, group ≠ reference)
    joint: Estimate  # Wald χ² test that all differences are zero

    def estimates(self) -> EstimateTable:
        return EstimateTable([*self.effects, *self.differences, self.joint],
                             [*self.effects.warnings, *self.differences.warnings])


def style_effects_by_group(battles: Battles, groups, *, reference: str | None = None, weights: str | None = None,
                           penalty: float = 0.0, level: float = 0.95, by: str = "group") -> GroupStyleEffects:
    """Fit the style-controlled model in each subgroup and test whether the style effects differ.

    ``groups`` has one label per battle. ``reference`` is the group the
    others are compared with (default: the largest group).
    """
    labels = np.asarray(groups).astype(str)
    if labels.shape[0] != battles.n:
        raise ValueError("one group label per battle is needed")
    names, counts = np.unique(labels, return_counts=True)
    if names.shape[0] < 2:
        raise ValueError(f"--by {by}: only one group ({names[0]!r}); heterogeneity needs at least two")
    order = [str(x) for x in names[np.lexsort((names, -counts))]]
    ref = order[0] if reference is None else str(reference)
    if ref not in order:
        raise ValueError(f"--by {by}: no group {ref!r}")
    order = [ref] + [g for g in order if g != ref]
    studies: dict[str, StyleStudy] = {}
    effects: dict[tuple[str, str], Estimate] = {}
    for g in order:
        sub = battles.subset(labels == g)
        try:
            study = style_control(sub.model_a, sub.model_b, sub.outcome, sub.style.values, sub.style.names,
                                  cluster=sub.cluster, weights=weights, penalty=penalty, level=level, rows=sub.rows)
        except ValueError as exc:
            raise ValueError(f"--by {by}, group {g!r} ({sub.n} battles): {exc}") from None
        studies[g] = study
        for e in study.style_effects():
            if e.influence is None:
                raise ValueError("too many battles to keep influence values for the test of difference")
            effects[(e.name, g)] = e.with_(name=f"{e.name} [{g}]",
                                           diagnostics={**e.diagnostics, "group": g, "by": by})
    features = battles.style.names
    diffs, pvals = [], []
    for f in features:
        for g in order[1:]:
            d = contrast(effects[(f, g)], effects[(f, ref)], estimand="difference in style effect")
            diffs.append(d.with_(diagnostics={**d.diagnostics, "feature": f, "group": g, "reference": ref,
                                              "pvalue": d.pvalue}))
            pvals.append(d.pvalue)
    adjusted = holm(pvals)
    diffs = [d.with_(diagnostics={**d.diagnostics, "p_holm": float(p)}) for d, p in zip(diffs, adjusted)]
    joint = _joint_wald(effects, features, order, level, by)
    ordered = [effects[(f, g)] for f in features for g in order]
    return GroupStyleEffects(groups=order, studies=studies, effects=EstimateTable(ordered),
                             differences=EstimateTable(diffs), joint=joint)


def _joint_wald(effects, features, order, level, by) -> Estimate:
    ests = [effects[(f, g)] for f in features for g in order]
    contrib, clustered = influence_matrix(ests)
    n_units = contrib.shape[0]
    cov = contrib.T @ contrib
    if clustered:
        cov *= n_units / (n_units - 1)
    theta = np.array([e.estimate for e in ests])
    n_g = len(order)
    rows = []
    for fi in range(len(features)):
        for gi in range(1, n_g):
            r = np.zeros(len(ests))
            r[fi * n_g + gi] = 1.0
            r[fi * n_g] = -1.0
            rows.append(r)
    A = np.array(rows)
    diff = A @ theta
    V = A @ cov @ A.T
    stat = float(diff @ np.linalg.pinv(V) @ diff)
    df = int(np.linalg.matrix_rank(V))
    p = float(stats.chi2.sf(stat, df)) if df > 0 else float("nan")
    return Estimate(name=f"style effects equal across {by}", estimand="joint Wald test (chi-square)",
                    method="wald", estimate=stat, se=float("nan"), ci_low=float("nan"), ci_high=float("nan"),
                    level=level, n=int(sum(effects[(features[0], g)].n for g in order)),
                    diagnostics={"df": df, "pvalue": p, "groups": list(order), "reference": order[0],
                                 "features": list(features), "clustered": bool(clustered)})
