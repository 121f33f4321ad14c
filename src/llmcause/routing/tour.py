"""The routing stage's rows of `llmcause tour`, on real GSM8K/MMLU outcomes of Mixtral and GPT-4."""

from __future__ import annotations

import numpy as np

from ..tour import TourRow
from .evaluate import evaluate_policies, fit_nuisances
from .learn import study_router
from .logs import read_log
from .router import arm_scores
from .simulate import routellm_hashed_prompts, routellm_world


def tour_steps(quick: bool = False) -> int:
    """The units of work `tour_rows` reports: the always-GPT-4 value, the router study's steps, the truth."""
    from .learn import study_steps

    return 2 + study_steps(3 if quick else 5)


def tour_rows(quick: bool = False, seed: int = 0, progress=None) -> list[TourRow]:
    """Naive vs DR value of "always GPT-4", and a learnt router's quality at half GPT-4's cost."""
    advance = progress if progress is not None else (lambda k=1: None)
    world = routellm_world(2000 if quick else 6000, seed=seed)
    folds = 3 if quick else 5
    c = world.columns
    log = read_log(world.frame, action=c["action"], reward=c["reward"], propensity=c["propensity"],
                   costs=world.prices, features=world.features, text=world.text, seed=seed)
    large = max(world.models, key=lambda m: world.prices[m])
    nuis = fit_nuisances(log, n_folds=folds, seed=seed)
    table = evaluate_policies(log, [f"always:{large}"], methods=("dr",), nuisances=nuis, estimands=("quality",))
    dr = table.get(f"always:{large}", "dr")
    naive = table.get(f"always:{large}", "naive")
    advance(1)
    rows = [TourRow(stage="routing", question=f"How good is {large} on every prompt? (logs where the old router "
                                              "sent the hard-looking prompts to it)",
                    causal=dr, naive=naive, truth=world.always(large)[0],
                    note="DR with cross-fitted outcome models vs the mean logged score of the big model")]
    budget = 0.5 * world.prices[large]
    study = study_router(log, [budget], n_folds=folds, seed=seed, naive=False, progress=advance)
    oof = next(e for e in study.table if e.name == f"router @ budget {budget:g}" and e.estimand == "quality")
    router = study.router
    index = [world.models.index(m) for m in router.models]

    def learnt(frame):  # the population is the whole prompt pool, whose hashed n-grams are cached
        codes = router.choose_features(router.pipeline.transform(frame, hashed=routellm_hashed_prompts()))
        out = np.zeros((frame.shape[0], len(world.models)))
        out[np.arange(frame.shape[0]), np.asarray(index)[codes]] = 1.0
        return out

    # the naive check of a learnt router: value it on the very rows it was learnt from
    gamma = arm_scores(log.reward, log.action, nuis.propensity, nuis.q_quality)
    naive_in_sample = float(np.mean(gamma[np.arange(log.n), router.choose(log.frame)]))  # codes in log order
    rows.append(TourRow(stage="routing", question=f"What quality does a router learnt from the logs reach at half "
                                                  f"the cost of always using {large}?",
                        causal=oof.with_(name=f"router @ half of {large}'s cost"), naive=naive_in_sample,
                        truth=world.truth(learnt)[0],
                        note="valued out of fold vs valued on the rows it was learnt from"))
    advance(1)
    return rows
