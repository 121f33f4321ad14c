"""Tour rows for the alignment stage: style vs substance on worlds with known truth."""

from __future__ import annotations

import numpy as np

from ..core.inference import contrast
from ..core.pairwise import weighted_logistic_fit
from ..tour import TourRow
from .arena import winner_outcome
from .battles import prepare_battles
from .heterogeneity import style_effects_by_group
from .lc_winrate import lc_winrates
from .length_effect import length_effects
from .rate import rate_effects
from .rewards import LengthSandboxReward, length_attribute
from .rewriters import FILLER_PREFIX, LengthRewriter
from .simulate import simulate_alpaca, simulate_battles, simulate_responses
from .style import style_control_battles

STAGE = "alignment"


def _prepare(world):
    return prepare_battles(world.battles, model_a="model_a", model_b="model_b", winner="winner", text_a="text_a",
                           text_b="text_b", tokenizer="simple")


def _ranking_rows(n: int, seed: int) -> list[TourRow]:
    world = simulate_battles(n, 8, seed=seed)
    battles = _prepare(world)
    study = style_control_battles(battles)
    plain = {e.name: e for e in study.strengths("bt")}
    ctrl = {e.name: e for e in study.strengths("style-controlled")}
    # The pair whose standing moves most once style is held fixed (chosen from the data, not the truth).
    names = sorted(ctrl)
    best, pair = -1.0, (names[0], names[1])
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            moved = abs((ctrl[a].estimate - ctrl[b].estimate) - (plain[a].estimate - plain[b].estimate))
            if moved > best:
                best, pair = moved, (a, b)
    a, b = pair
    causal = contrast(ctrl[a], ctrl[b], estimand="difference in strength (log-odds)")
    naive = contrast(plain[a], plain[b], estimand="difference in strength (log-odds)")
    rows = [TourRow(stage=STAGE, question=f"Is {a} stronger than {b}, or only dressed better? (strength gap, "
                    "log-odds)", causal=causal, naive=naive, truth=world.true_contrast(a, b),
                    note="style-controlled Bradley-Terry vs plain Bradley-Terry")]
    # Length effect in log-odds per SD: the raw logistic slope (models ignored) vs the style-controlled one.
    k = battles.style.names.index("length")
    d = battles.style.values[:, [k]]
    raw_slope = float(weighted_logistic_fit(np.column_stack([np.ones(battles.n), d]), battles.outcome).coef[1])
    gamma = study.style_effects()["length"]
    rows.append(TourRow(stage=STAGE, question="How much does one SD of length gap move the vote, models held "
                        "fixed? (log-odds)", causal=gamma, naive=raw_slope, truth=world.style_coefs["human"]["length"],
                        note="style-controlled coefficient vs raw logistic slope"))
    return rows


def _length_row(n: int, seed: int) -> TourRow:
    world = simulate_battles(n, 6, seed=seed + 1, content_effect=1.0)
    battles = _prepare(world)
    table = length_effects(battles, None, seed=seed)
    return TourRow(stage=STAGE, question="Does length itself win votes, when longer answers also say more? "
                   "(P(win) per SD of length gap)", causal=table.get("length", "dml-plr"),
                   naive=table.get("length", "naive"), truth=world.length_ade["all"],
                   note="DML with content controls vs raw slope")


def _judge_row(n: int, seed: int) -> TourRow:
    world = simulate_battles(n, 6, seed=seed + 2, judge_share=0.5)
    battles = _prepare(world)
    het = style_effects_by_group(battles, world.battles["annotator"].to_numpy(), reference="human",
                                 by="annotator")
    diff = het.differences.get("length [llm-judge] - length [human]")
    truth = world.style_coefs["llm-judge"]["length"] - world.style_coefs["human"]["length"]
    # Naive: the difference in raw logistic slopes on the length gap, models ignored.
    k = battles.style.names.index("length")
    slopes = {}
    for g in ("human", "llm-judge"):
        sel = world.battles["annotator"].to_numpy() == g
        X = np.column_stack([np.ones(int(sel.sum())), battles.style.values[sel, k]])
        slopes[g] = float(weighted_logistic_fit(X, battles.outcome[sel]).coef[1])
    return TourRow(stage=STAGE, question="Is the LLM judge more swayed by length than humans? (difference in "
                   "log-odds per SD)", causal=diff, naive=slopes["llm-judge"] - slopes["human"], truth=truth,
                   note=f"joint test of all style differences: p = {het.joint.diagnostics['pvalue']:.2g}")


def _lc_row(n: int, seed: int) -> TourRow:
    world = simulate_alpaca(n, seed=seed)
    t = world.table
    table = lc_winrates(t["model_a"], winner_outcome(t, "winner"), t["length_a"], t["length_b"],
                        instructions=t["instruction"], difficulty=t["difficulty"], baseline="baseline")
    return TourRow(stage=STAGE, question="Win rate of a verbose model against the baseline, at equal length?",
                   causal=table.get("verbose-weak", "length-controlled glm"),
                   naive=table.get("verbose-weak", "naive"), truth=world.true_lc["verbose-weak"],
                   note="length-controlled GLM (delta-method CI) vs raw win rate")


def _rate_rows(n: int, seed: int) -> list[TourRow]:
    texts = simulate_responses(n, seed=seed).responses["response"].tolist()
    attr = length_attribute(150)
    w = np.array([attr(t) for t in texts])
    reward = LengthSandboxReward(length_coef=0.5, threshold=150, seed=seed)
    table = rate_effects(texts, w, reward, LengthRewriter(150), attribute_of=attr, name="length").table
    rows = [TourRow(stage=STAGE, question="Does the reward model reward length itself? (reward units; rewrite "
                    "interventions)", causal=table.get("length ATE", "rate"),
                    naive=table.get("length ATE", "naive"), truth=reward.true_effect,
                    note="RATE (rewrite of rewrite) vs observational difference")]
    # The same question with a rewriter that pads with a filler phrase, as a paraphrasing model would:
    # the filler's words reach the reward in one direction only, which RATE cannot cancel.
    leaky = rate_effects(texts, w, reward, LengthRewriter(150, restate_prefix=FILLER_PREFIX), attribute_of=attr,
                         name="length").table
    rate = leaky.get("length ATE", "rate")
    found = ", ".join(sorted({w for side in rate.diagnostics["word_leak"].values() for w in side["systematic"]}))
    found = found or "none"
    rows.append(TourRow(stage=STAGE, question="...and with a rewriter that pads with \"In other words\"? (reward "
                        "units)", causal=rate, naive=leaky.get("length ATE", "naive"), truth=reward.true_effect,
                        note=f"leak diagnostic flags the words: {found}",
                        broken_assumption="rewriter adds words in one direction"))
    return rows


def tour_steps(quick: bool = False) -> int:
    """The units of work `tour_rows` reports through ``progress``: one per question."""
    return 5


def tour_rows(quick: bool = False, seed: int = 0, progress=None) -> list[TourRow]:
    """The stage's rows for `llmcause tour`."""
    advance = progress if progress is not None else (lambda k=1: None)
    n_battles = 1200 if quick else 4000
    rows = _ranking_rows(n_battles, seed)
    advance(1)
    rows.append(_length_row(n_battles, seed))
    advance(1)
    rows.append(_judge_row(n_battles, seed))
    advance(1)
    rows.append(_lc_row(400 if quick else 1500, seed))
    advance(1)
    rows.extend(_rate_rows(200 if quick else 600, seed))
    advance(1)
    return rows


__all__ = ["tour_rows", "tour_steps"]
