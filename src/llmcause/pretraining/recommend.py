"""Recommend a mixture from a swarm within its support, and verify it by training it.

A mixing law fitted on a swarm predicts well only near the swarm's
mixtures; its argmin over the whole simplex is usually an extrapolation (in
a small replication of the RegMix workflow, the argmin lost to the uniform
mix). So `recommend_mixture` minimises the predicted target only over
candidates **within the support**: each weight inside the range the swarm
covered, and the L1 distance to the nearest swarm mixture no larger than the
90th percentile of the swarm's own nearest-neighbour distances. It reports
the unconstrained argmin too, with a warning when that lies outside.

`verify_recommendation` then trains the recommended mix, the uniform mix
(and the unconstrained argmin) on fresh seeds and reports realised losses
and the paired difference against uniform, with intervals, beside the law's
prediction. Only realised differences justify a choice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence
from ..runs import RunStore
from .campaign import LOSS_PREFIX, loss_columns, run_design
from .designs import weight_columns
from .effects import paired_difference
from .laws import LAWS, MixtureLaws, combine_target, heldout_spearman, mixture_table
from .proxy import ProxyConfig

__all__ = ["Recommendation", "recommend_mixture", "verify_recommendation", "support_radius", "in_support"]

SUPPORT_QUANTILE = 0.9
VERIFY_SEED_OFFSET = 10_000


@dataclass
class Recommendation:
    """A recommended mixture, what the law predicts for it, and where the law's own minimum lies."""

    domains: list[str]
    weights: np.ndarray
    predicted: float
    law: str
    target: str | Mapping[str, float]
    unconstrained_weights: np.ndarray
    unconstrained_predicted: float
    unconstrained_in_support: bool
    radius: float
    uniform_predicted: float
    best_observed_weights: np.ndarray
    best_observed_loss: float
    config: ProxyConfig
    spearman: EstimateTable
    warnings: list[str] = field(default_factory=list)

    def weights_dict(self, which: str = "recommended") -> dict[str, float]:
        w = {"recommended": self.weights, "unconstrained": self.unconstrained_weights,
             "best observed": self.best_observed_weights}[which]
        return {d: float(v) for d, v in zip(self.domains, w)}

    def weights_frame(self) -> pd.DataFrame:
        rows = {"recommended": self.weights, "unconstrained argmin": self.unconstrained_weights,
                "best swarm mixture": self.best_observed_weights,
                "uniform": np.full(len(self.domains), 1.0 / len(self.domains))}
        frame = pd.DataFrame({k: np.round(v, 4) for k, v in rows.items()}, index=self.domains).T
        frame.insert(0, "mixture", frame.index)
        return frame.reset_index(drop=True)


def _nn_distances(A: np.ndarray, B: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    d = np.abs(A[:, None, :] - B[None, :, :]).sum(axis=2)
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def support_radius(W: np.ndarray, quantile: float = SUPPORT_QUANTILE) -> float:
    """The ``quantile`` of the swarm's leave-one-out nearest-neighbour L1 distances."""
    return float(np.quantile(_nn_distances(W, W, exclude_self=True), quantile))


def in_support(candidates: np.ndarray, W: np.ndarray, radius: float) -> np.ndarray:
    """Inside every weight's observed range and within ``radius`` (L1) of a swarm mixture."""
    lo, hi = W.min(axis=0) - 1e-9, W.max(axis=0) + 1e-9
    inside = np.all((candidates >= lo) & (candidates <= hi), axis=1)
    near = np.zeros(len(candidates), dtype=bool)
    for start in range(0, len(candidates), 2048):
        chunk = candidates[start:start + 2048]
        near[start:start + 2048] = _nn_distances(chunk, W) <= radius + 1e-12
    return inside & near


def _candidates(W: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Local convex combinations of neighbouring swarm mixtures, plus draws from all over the simplex."""
    m, k = W.shape
    dist = np.abs(W[:, None, :] - W[None, :, :]).sum(axis=2)
    neighbours = np.argsort(dist, axis=1)[:, 1:4]
    anchor = rng.integers(0, m, size=n // 2)
    pair = neighbours[anchor[:, None], rng.integers(0, neighbours.shape[1], size=(n // 2, 2))]
    picks = np.column_stack([anchor, pair])
    mix = rng.dirichlet(np.ones(3), size=n // 2)
    local = np.einsum("ij,ijk->ik", mix, W[picks])
    alphas = np.exp(rng.uniform(np.log(0.1), np.log(5.0), size=n - n // 2))
    spread = np.vstack([rng.dirichlet(np.full(k, a)) for a in alphas])
    return np.vstack([W, local, spread])


def recommend_mixture(results: pd.DataFrame, *, target: str | Mapping[str, float] = "mean", law: str = "auto",
                      n_candidates: int = 20_000, top_k: int = 16, seed: int = 0, level: float = 0.95,
                      judge: bool = True) -> Recommendation:
    """Fit mixing laws on the swarm in ``results`` and recommend the best mixture within its support.

    Parameters
    ----------
    results : a results table (weights ``w:<domain>``, losses ``bpb:<domain>``)
        of one proxy configuration; seeds of a mixture are averaged.
    target : ``mean`` (average held-out bits per byte), one domain, or a
        {domain: weight} weighting of held-out domains.
    law : ``loglinear``, ``exponential``, ``boosting`` or ``auto`` (the law
        with the highest held-out Spearman on the target).
    n_candidates : candidate mixtures searched; top_k best supported
        candidates are averaged (as RegMix averages its top proposals).
    judge : cross-validate the law(s) on unseen mixtures (held-out
        Spearman); needed when ``law="auto"``.
    """
    configs = results[["order", "budget", "block"]].drop_duplicates()
    if len(configs) != 1:
        raise ValueError("the runs use several proxy configurations (order, budget, block); pass one of them")
    cfg = configs.iloc[0]
    config = ProxyConfig(int(cfg["order"]), int(cfg["budget"]), int(cfg["block"]))
    W, Y, domains, _ = mixture_table(results)
    if W.shape[0] < 8:
        raise ValueError(f"{W.shape[0]} distinct mixtures are too few to fit a mixing law (need at least 8)")
    target_name = target if isinstance(target, str) else "weighted"
    if law != "auto" and law not in LAWS:
        raise ValueError(f"unknown mixing law {law!r}; use auto or one of: {', '.join(LAWS)}")
    spearman = EstimateTable()
    if judge or law == "auto":
        spearman = heldout_spearman(results, laws=list(LAWS) if law == "auto" else [law],
                                    targets=[target], seed=seed,
                                    level=level)
    if law == "auto":
        scores = {e.method: e.estimate for e in spearman if e.name.endswith(f":{target_name}")}
        law = max(scores, key=lambda k: (np.nan_to_num(scores[k], nan=-2), k == "boosting"))
    laws = MixtureLaws(law, seed).fit(W, Y)
    rng = np.random.default_rng(seed)
    cands = _candidates(W, n_candidates, rng)
    pred = laws.predict(cands, target)
    radius = support_radius(W)
    ok = in_support(cands, W, radius)
    warnings = []
    order = np.argsort(pred[ok])
    supported = cands[ok]
    best = supported[order[:top_k]].mean(axis=0)
    if not in_support(best[None, :], W, radius)[0]:
        best = supported[order[0]]
    best_pred = float(laws.predict(best[None, :], target)[0])
    free = cands[int(np.argmin(pred))]
    free_pred = float(pred.min())
    free_ok = bool(in_support(free[None, :], W, radius)[0])
    if not free_ok and free_pred < best_pred:
        dist = float(_nn_distances(free[None, :], W)[0])
        warnings.append(f"extrapolation: the {law} law's minimum ({free_pred:.3f} bpb predicted) lies outside the "
                        f"swarm's support (L1 distance {dist:.2f} to the nearest swarm mixture; support radius "
                        f"{radius:.2f}); the recommendation stays within the support")
    uniform = np.full((1, len(domains)), 1.0 / len(domains))
    realised = combine_target(Y, target)
    return Recommendation(
        domains=domains, weights=best, predicted=best_pred, law=law, target=target, unconstrained_weights=free,
        unconstrained_predicted=free_pred, unconstrained_in_support=free_ok, radius=radius,
        uniform_predicted=float(laws.predict(uniform, target)[0]), best_observed_weights=W[int(np.argmin(realised))],
        best_observed_loss=float(realised.min()), config=config, spearman=spearman, warnings=warnings)


def _mean_estimate(values: np.ndarray, seeds: np.ndarray, *, name: str, target: str, level: float,
                   diagnostics: dict) -> Estimate:
    theta = float(values.mean())
    return estimate_from_influence(theta, values - theta, name=name, estimand=f"held-out {target} bits per byte",
                                   method="realised", level=level, cluster=seeds, diagnostics=diagnostics)


def verify_recommendation(rec: Recommendation, seeds: int | Sequence[int] = 3, *, store: RunStore | None = None,
                          executor: Any = "serial", workers: int | None = None, include_unconstrained: bool = True,
                          level: float = 0.95, progress: bool | None = None) -> EstimateTable:
    """Train the recommended mix, the uniform mix (and the law's unconstrained argmin) and compare, paired by seed.

    Fresh seeds (offset by 10,000 from the swarm's) are used, so the
    verification is out of sample. Returns realised target losses and the
    differences against uniform; the law's predictions sit in diagnostics.
    """
    seed_list = [VERIFY_SEED_OFFSET + s for s in range(int(seeds))] if isinstance(seeds, (int, np.integer)) \
        else [int(s) for s in seeds]
    arms = {"recommended": rec.weights, "uniform": np.full(len(rec.domains), 1.0 / len(rec.domains))}
    predicted = {"recommended": rec.predicted, "uniform": rec.uniform_predicted}
    if include_unconstrained and not np.allclose(rec.unconstrained_weights, rec.weights, atol=1e-3):
        arms["unconstrained argmin"] = rec.unconstrained_weights
        predicted["unconstrained argmin"] = rec.unconstrained_predicted
    rows = []
    for arm, w in arms.items():
        w = np.clip(w, 0, None)
        w = w / w.sum()
        for s in seed_list:
            rows.append({"kind": "verification", "arm": arm, "seed": s, "budget": rec.config.budget,
                         "order": rec.config.order, "block": rec.config.block,
                         **dict(zip(weight_columns(rec.domains), np.round(w, 12)))})
    design = pd.DataFrame(rows)
    design[weight_columns(rec.domains)] = design[weight_columns(rec.domains)].div(
        design[weight_columns(rec.domains)].sum(axis=1), axis=0)
    summary, res = run_design(design, store, executor=executor, workers=workers, campaign="verification",
                              progress=progress)
    warnings = list(rec.warnings)
    if summary.failed:
        # Keep the seeds where every arm trained, so the comparison stays paired.
        ok = res[loss_columns(res)].notna().all(axis=1)
        good = res[ok].groupby("seed")["arm"].nunique()
        kept = [s for s in seed_list if good.get(s, 0) == len(arms)]
        warnings.append(f"{summary.failed} verification runs failed (first error: "
                        f"{next(iter(summary.errors.values()))}); {len(seed_list) - len(kept)} of "
                        f"{len(seed_list)} seeds are left out")
        if not kept:
            raise ValueError("every verification seed had a failed run; nothing to compare")
        seed_list = kept
        res = res[res["seed"].isin(seed_list)]
    per_domain = {c[len(LOSS_PREFIX):]: res[c].to_numpy(dtype=float) for c in res.columns
                  if str(c).startswith(LOSS_PREFIX)}
    res = res.assign(_target=combine_target(per_domain, rec.target))
    target_name = rec.target if isinstance(rec.target, str) else "weighted"
    by_arm = {arm: res[res["arm"] == arm].set_index("seed")["_target"].loc[seed_list].to_numpy() for arm in arms}
    seeds_arr = np.array(seed_list)
    out = []
    for arm in arms:
        out.append(_mean_estimate(by_arm[arm], seeds_arr, name=arm, target=target_name, level=level,
                                  diagnostics={"predicted": predicted[arm],
                                               "weights": {d: round(float(v), 4) for d, v in
                                                           zip(rec.domains, arms[arm])}}))
    for arm in arms:
        if arm == "uniform":
            continue
        out.append(paired_difference(by_arm[arm], by_arm["uniform"], seeds_arr, name=f"{arm} - uniform",
                                     estimand=f"difference in held-out {target_name} bits per byte", level=level,
                                     method="realised, paired by seed",
                                     diagnostics={"predicted": predicted[arm] - predicted["uniform"]}))
    diff = out[len(arms)]
    if diff.ci_low > 0:
        warnings.append("the recommended mix lost to the uniform mix in verification: keep the uniform mix")
    elif not diff.ci_high < 0:
        warnings.append("verification cannot tell the recommended mix from the uniform mix at this many seeds")
    return EstimateTable(out, warnings)
