"""The pretraining stage's tour rows: real proxy runs on the shipped corpus, and a confounded table of past runs.

1. Adding code (replacement at a fixed budget), paired by seed: its effect on
   held-out code, and on the other domains; the naive answer is what the
   RegMix linear regression on a swarm predicts for the same change.
2. A table of past runs in which bigger runs used more code: the DML effect
   of code's weight on math loss against the naive slope, with the truth.
3. The mixture recommended within the swarm's support, trained against the
   uniform mix on fresh seeds (realised), beside the law's prediction; and
   the law's unconstrained argmin, realised, when it differs.
"""

from __future__ import annotations

import numpy as np

from ..core.estimate import Estimate
from ..tour import TourRow
from .campaign import LOSS_PREFIX, run_design
from .corpus import load_corpus
from .designs import WEIGHT_PREFIX, dirichlet_swarm, one_at_a_time
from .effects import observational_effects, paired_difference
from .proxy import ProxyConfig
from .recommend import recommend_mixture, verify_recommendation
from .simulate import past_runs

STAGE = "pretraining"


def _linear_swarm_prediction(swarm, W_new: np.ndarray, targets: list[str]) -> np.ndarray:
    """RegMix's linear baseline: per held-out domain, loss regressed on the raw weights; mean over ``targets``."""
    from sklearn.linear_model import LinearRegression

    w_cols = [c for c in swarm.columns if str(c).startswith(WEIGHT_PREFIX)]
    X = swarm[w_cols].to_numpy(dtype=float)
    preds = [LinearRegression().fit(X, swarm[LOSS_PREFIX + t].to_numpy()).predict(W_new) for t in targets]
    return np.mean(preds, axis=0)


def tour_steps(quick: bool = False) -> int:
    """The units of work `tour_rows` reports: the one-at-a-time runs, the swarm, past runs, recommend, verify."""
    return 5


def tour_rows(quick: bool = False, seed: int = 0, progress=None) -> list[TourRow]:
    advance = progress if progress is not None else (lambda k=1: None)
    corpus = load_corpus()
    names = list(corpus.names)
    others = [d for d in names if d != "code"]
    config = ProxyConfig(order=3, budget=200_000) if quick else ProxyConfig(order=5, budget=1_000_000)
    n_seeds = 3 if quick else 5
    label = f"KN order {config.order}, {config.budget // 1000} KB"

    # 1. one-at-a-time: only the code arms are needed here
    design = one_at_a_time(names, seeds=[seed + s for s in range(n_seeds)], config=config)
    design = design[(design["varied"].isin(["", "code"])) & (design["contrast"].isin(["", "replacement"]))]
    _, oat = run_design(design, progress=False)
    advance(1)
    base = oat[oat["arm"] == "uniform"].set_index("seed").sort_index()
    drop = oat[oat["arm"] == "without code"].set_index("seed").sort_index()
    seeds = base.index.to_numpy()

    swarm_design = dirichlet_swarm(names, 24 if quick else 48, seeds=[seed], config=config, design_seed=seed)
    _, swarm = run_design(swarm_design, progress=False)
    advance(1)
    W_pair = np.vstack([np.full(len(names), 1 / len(names)),
                        design[design["arm"] == "without code"][[WEIGHT_PREFIX + d for d in names]].iloc[0]])

    rows = []
    for target, question in ((["code"], "held-out code"), (others, "the other five domains (average)")):
        a = base[[LOSS_PREFIX + t for t in target]].mean(axis=1).to_numpy()
        b = drop[[LOSS_PREFIX + t for t in target]].mean(axis=1).to_numpy()
        name = "code:code" if target == ["code"] else "code:others"
        est = paired_difference(a, b, seeds, name=name, estimand="replacement", level=0.95)
        lin = _linear_swarm_prediction(swarm, W_pair, target)
        rows.append(TourRow(
            stage=STAGE, question=f"Adding code (1/6 of the bytes, replacing the others): effect on {question} "
                                  "loss, bits per byte",
            causal=est, naive=float(lin[0] - lin[1]), truth=None,
            note=f"real proxy runs ({label}), {n_seeds} seeds paired by common random numbers; naive: RegMix "
                 "linear regression on a swarm"))

    # 2. a confounded table of past runs
    world = past_runs(300, seed=seed)
    obs = observational_effects(world.table, treatments=["w:code"], outcomes=["bpb:math"],
                                confounders=world.confounders, weights=world.weight_columns, seed=seed)
    advance(1)
    rows.append(TourRow(
        stage=STAGE, question="Past runs (bigger runs used more code): effect of code's weight on math loss, per "
                              "unit weight",
        causal=obs.get("code:math", "dml-plr"), naive=obs.get("code:math", "naive"),
        truth=world.true_effects["code:math"], note="cross-fitted partially linear model on log size and tokens"))

    # 3. recommend within the swarm's support, then train it against uniform
    rec = recommend_mixture(swarm, law="boosting" if quick else "auto", judge=not quick,
                            n_candidates=5_000 if quick else 20_000, seed=seed)
    advance(1)
    verified = verify_recommendation(rec, [10_000 + seed + s for s in range(n_seeds)], progress=False)
    advance(1)
    diff = verified.get("recommended - uniform")
    rows.append(TourRow(
        stage=STAGE, question="Recommended mixture (within the swarm's support) minus uniform: realised average "
                              "held-out bits per byte",
        causal=diff, naive=float(rec.predicted - rec.uniform_predicted), truth=None,
        note=f"{rec.law} law; naive: the law's predicted gain; verified on {n_seeds} fresh seeds"))
    if "unconstrained argmin - uniform" in verified.names:
        free: Estimate = verified.get("unconstrained argmin - uniform")
        rows.append(TourRow(
            stage=STAGE, question="The law's unconstrained argmin minus uniform: realised average held-out bits "
                                  "per byte",
            causal=free, naive=float(rec.unconstrained_predicted - rec.uniform_predicted), truth=None,
            note="what trusting the regression's argmin would have given"))
    return rows
