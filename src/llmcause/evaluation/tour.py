"""The evaluation stage's rows of `llmcause tour`.

On the simulated judge world (known truth): the calibrated mean of each model
against the naive judge mean, and the biggest ranking mistake the naive
judge makes. On shipped real data: the `unhelpful` policy of cje-arena (a
calibration learnt on `base` does not transport; its probe labels correct
it), and the human win rate of claude-opus-4 over gemini-2.5-pro from a
judge's picks plus a fifth of the human votes, against the all-votes rate.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..core.inference import contrast
from ..tour import TourRow
from .battles import battle_study
from .datasets import load_arena_judges, load_cje_arena
from .means import judge_means
from .simulate import judge_world

STAGE = "evaluation"


def tour_steps(quick: bool = False) -> int:
    """The units of work `tour_rows` reports through ``progress``."""
    return 6


def tour_rows(quick: bool = False, seed: int = 0, progress=None) -> list[TourRow]:
    advance = progress if progress is not None else (lambda k=1: None)
    rows = []
    for make in (lambda: _world_rows(quick, seed), lambda: [_unhelpful_row(seed)], lambda: [_arena_row(seed)],
                 lambda: [_transport_row(quick, seed)], lambda: [_judge_swap_row(quick, seed)]):
        rows.extend(make())
        advance(1)
    # The real local model takes tens of seconds (a server start, a dozen generations): not in --quick.
    local, skipped = (None, "--quick leaves it out") if quick else local_judge_row(seed)
    advance(1)
    if local is not None:
        return [*rows, local]
    # No row without the model: say so through the tour's warnings.
    last = rows[-1]
    return [*rows[:-1], TourRow(**{**last.__dict__, "causal": last.causal.with_(
        warnings=(*last.causal.warnings, f"skipped the row with a real local judge: {skipped}"))})]


def local_judge_row(seed: int = 0, force: bool = False):
    """SmolLM2-135M (llama-cpp-python on 127.0.0.1) as a judge, asked about six quiz battles in both orders.

    Returns ``(row, None)``, or ``(None, why)`` when the local model is not
    installed, cannot start, or is turned off (``LLMCAUSE_LOCAL_MODEL=off``).
    """
    import os

    from ..runs import CallOptions, load_model
    from ..runs.local import PINNED_PARAMS, LocalModelServer, local_model_missing
    from .judges import QUIZ
    from .swap import swap_audit
    import pandas as pd

    if not force and os.environ.get("LLMCAUSE_LOCAL_MODEL", "").lower() in ("off", "0", "no"):
        return None, "turned off (LLMCAUSE_LOCAL_MODEL=off)"
    why = local_model_missing()
    if why:
        return None, why
    frame = pd.DataFrame(QUIZ, columns=["prompt", "right", "wrong"])
    try:
        with LocalModelServer() as server:
            judge = load_model(server.spec, params={**PINNED_PARAMS, "seed": seed, "max_tokens": 6},
                               options=CallOptions(concurrency=1, timeout=120, max_retries=2))
            audit = swap_audit(frame, judge, text_a="right", text_b="wrong", prompt="prompt", sample=None,
                               seed=seed, name="SmolLM2-135M")
    except RuntimeError as exc:
        return None, str(exc)
    bias = [e for e in audit.table if e.estimand.startswith("position bias")][0]
    shown_first = audit.verdicts["x_first"]
    answered = shown_first.notna()
    apparent = float((shown_first[answered] == "A").mean()) if answered.any() else float("nan")
    missing = int(bias.diagnostics.get("verdicts_missing", 0))
    return TourRow(stage=STAGE,
                   question="Real local model (SmolLM2-135M via llama.cpp on 127.0.0.1) as a judge: does it prefer "
                            "the answer shown first? (6 quiz questions, each asked in both orders)",
                   causal=bias, naive=None, truth=None,
                   note=f"first-pick rate - 0.5 over both orders; with the right answer always shown first its "
                        f"accuracy would look like {apparent:.0%}; {missing} unreadable verdicts left out"), None


def _transport_row(quick: bool, seed: int) -> TourRow:
    """Quality on the production prompt mix (harder, more math) from judged benchmark answers."""
    from .shift import transport_judge_means
    from .simulate import prompt_mix_world

    world = prompt_mix_world(800 if quick else 2000, 800 if quick else 2000, shift=1.0, label_fraction=0.15,
                             seed=seed)
    cov = ["difficulty", "topic"]
    table = judge_means(world.frame, judge="judge_score", label="label", group="model", cluster="prompt_id",
                        covariates=cov, methods=["calibrated"], seed=seed)
    moved = transport_judge_means(table, world.frame, world.target, covariates=cov, seed=seed)
    model = "birch"
    return TourRow(stage=STAGE,
                   question=f"How good is {model} on the production prompt mix? (judged and labelled on a "
                            "benchmark whose prompts are easier)",
                   causal=moved.get(model, "calibrated+transport"), naive=table.get(model, "calibrated"),
                   truth=world.truth_target[model],
                   note="transported (DR: outcome model + density ratio) vs the benchmark's calibrated mean")


def _judge_swap_row(quick: bool, seed: int) -> TourRow:
    """How much harsher is the new judge? The jump at the estimated change point vs a split at mid-log."""
    from ..core.inference import estimate_from_influence
    from .shift import judge_drift
    from .simulate import judge_swap_world

    world = judge_swap_world(3000 if quick else 6000, seed=seed)
    table = judge_drift(world.frame, judge="judge_score", label="label", time="day")
    lab = world.frame[world.frame["label"].notna()]
    off = (lab["label"] - lab["judge_score"]).to_numpy()
    late = (lab["day"] >= lab["day"].median()).to_numpy()
    naive = estimate_from_influence(float(off[late].mean() - off[~late].mean()), np.zeros(2), name="halves",
                                    estimand="jump", method="naive")
    name = "judge offset [after - before break]"
    causal = table[name] if name in table.names else table["judge offset [last - first window]"]
    when = table["judge offset [change point]"].estimate if "judge offset [change point]" in table.names else None
    return TourRow(stage=STAGE,
                   question="The judge was swapped for a harsher one part way through the log: by how much did "
                            "its calibration offset (label - judge) jump?",
                   causal=causal.with_(name="offset jump"), naive=naive,
                   truth=world.offsets[1] - world.offsets[0],
                   note=(f"change point found on day {when:.1f} (true day {world.swap_at:g})" if when is not None
                         else "no single break found") + "; naive = second half minus first half of the log")


def _world_rows(quick: bool, seed: int) -> list[TourRow]:
    world = judge_world(500 if quick else 2000, label_fraction=0.1, seed=seed)
    table = judge_means(world.frame, judge="judge_score", label="label", group="model", cluster="prompt_id",
                        methods=["calibrated", "naive"], seed=seed)
    rows = []
    for name, truth in world.truth.items():
        rows.append(TourRow(stage=STAGE,
                            question=f"How good is model {name} on the human scale? (judge scores on every answer, "
                                     "humans labelled 10%)",
                            causal=table.get(name, "calibrated"), naive=table.get(name, "naive"), truth=truth,
                            note="calibrated AIPW vs the judge's mean score"))
    # The biggest ranking mistake of the naive judge: a pair it orders wrongly, largest true gap first.
    worst = None
    for a, b in itertools.combinations(world.truth, 2):
        hi, lo = (a, b) if world.truth[a] > world.truth[b] else (b, a)
        naive_gap = table.get(hi, "naive").estimate - table.get(lo, "naive").estimate
        gap = world.truth[hi] - world.truth[lo]
        if naive_gap < 0 and (worst is None or gap > worst[2]):
            worst = (hi, lo, gap)
    if worst is not None:
        hi, lo, gap = worst
        causal = contrast(table.get(hi, "calibrated"), table.get(lo, "calibrated"))
        naive = contrast(table.get(hi, "naive"), table.get(lo, "naive"))
        rows.append(TourRow(stage=STAGE,
                            question=f"Is {hi} better than {lo}? The naive judge ranks them the wrong way round",
                            causal=causal, naive=naive, truth=gap,
                            note="paired by prompt; the judge favours long answers and its own family"))
    return rows


def _unhelpful_row(seed: int) -> TourRow:
    data = load_cje_arena()
    table = judge_means(data, judge="judge_score", label="oracle_label", group="policy", cluster="prompt_id",
                        methods=["calibrated"], calibrate_on=["base"], seed=seed)
    est = table.get("unhelpful", "calibrated")
    borrowed = est.estimate - est.diagnostics["mean_residual"]  # the calibration-only number
    probe = data.loc[(data["policy"] == "unhelpful") & data["oracle_label"].notna(), "oracle_label"].mean()
    return TourRow(stage=STAGE,
                   question="Real data (cje-arena): how good is the 'unhelpful' policy, built to fool the judge? "
                            "(calibration learnt on 'base', 50 probe labels of its own)",
                   causal=est.with_(name="unhelpful"), naive=float(borrowed), truth=None,
                   note=f"naive = base's calibration alone; its 50 probe labels average {probe:.3f}; "
                        "warns that the calibration does not transport")


def _arena_row(seed: int) -> TourRow:
    data = load_arena_judges("gpt-4o-mini", drop_missing=True)
    data = data[data["model_a"].str.contains("gemini-2.5-pro") | data["model_b"].str.contains("gemini-2.5-pro")]
    data = data.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    keep = rng.random(data.shape[0]) < 0.2
    data = data.assign(human=np.where(keep, data["human_winner"], None))
    table = battle_study(data, judge="judge_pick", human="human", method="ppi++")
    name = [e.name for e in table if " vs " in e.name][0]
    first = name.split(" vs ")[0]
    won = np.where(data["model_a"] == first, data["human_winner"] == "model_a", data["human_winner"] == "model_b")
    naive = battle_study(data, judge="judge_pick", human=None, method="naive").get(name, "naive")
    return TourRow(stage=STAGE,
                   question=f"Real data (Arena): how often do humans prefer {first} over gemini-2.5-pro? "
                            "(gpt-4o-mini's picks on every battle, human votes on a fifth)",
                   causal=table.get(name, "ppi++"), naive=naive, truth=float(np.mean(won)),
                   note="truth = the rate over all human votes")
