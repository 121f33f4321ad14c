"""Worlds with known truth: LLM judges that are biased in known ways.

`judge_world`: several models answer the same prompts. Prompt j has a
difficulty dⱼ ~ N(0, 1) and a length factor ℓⱼ ~ N(0, 1). Model m's answer
has quality qⱼₘ = σ(aₘ − dⱼ + uⱼₘ), uⱼₘ ~ N(0, ½²), and a length (tokens)
exp(log 250 + vₘ + 0.4ℓⱼ + N(0, 0.3²)), vₘ the model's verbosity. The human
label is Beta(κq, κ(1−q)) (``label_kind="score"``, mean q) or Bernoulli(q)
(``"binary"``). The judge sees the answer and scores
    logit S = c + b·logit q + γ_len·(log length − log 250) + γ_self·1{m is the judge's own family} + N(0, σ²),
so it is miscalibrated (c, b), favours long answers and its own family, and
is noisy. Labels are drawn per row with probability π: uniform, or
(``labeling="unequal"``) higher for low judge scores, recorded in
``label_prob``.

Truth. E[Y | model m] = E[σ(aₘ + √(1 + ¼)·Z)], Z ~ N(0, 1), by Gauss–Hermite
quadrature: the mean label each model would get if every answer were
labelled.

`battle_world`: Arena-style battles between random ordered pairs. The human
prefers the first-shown model with probability σ(r_a − r_b) (r the
abilities, a Bradley–Terry model); the judge picks it with probability
σ(κ(r_a − r_b) + γ(v_a − v_b) + β): it is less decisive, likes verbose
models and the first position. Human votes exist on a random subset.
Truth: human win rates σ(r_x − r_y), centred strengths r, and the judge's
first-pick rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.special import expit, logit

# name: (ability a, verbosity v, same family as the judge)
DEFAULT_MODELS = {
    "atlas": (0.9, 0.6, True),
    "birch": (1.2, -0.5, False),
    "cedar": (0.4, 0.9, False),
    "dune": (0.0, 0.0, False),
}
JUDGE_BIAS = {"offset": 0.7, "slope": 0.8, "length": 0.9, "self": 0.7, "noise": 0.7}
_QUALITY_NOISE = 0.5
_BASE_LENGTH = 250.0


@dataclass(frozen=True)
class JudgeWorld:
    """Simulated judge scores and labels, with the true mean label per model."""

    frame: pd.DataFrame  # prompt_id, model, length, judge_score, judge_binary, label (NaN if unlabelled), label_prob
    truth: dict[str, float]
    quality: np.ndarray = field(repr=False)

    def true_difference(self, b: str, a: str) -> float:
        return self.truth[b] - self.truth[a]


@lru_cache(maxsize=1)
def _hermite_nodes() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.hermite_e.hermegauss(80)


def true_mean_quality(ability: float) -> float:
    """E[σ(a − d + u)] with d ~ N(0, 1), u ~ N(0, ½²), by Gauss–Hermite quadrature."""
    nodes, weights = _hermite_nodes()
    sd = np.sqrt(1.0 + _QUALITY_NOISE**2)
    return float(np.sum(weights * expit(ability + sd * nodes)) / np.sum(weights))


def judge_world(n_prompts: int = 1000, models: dict | None = None, *, label_fraction: float = 0.1,
                labeling: str = "uniform", label_kind: str = "score", judge: dict | None = None,
                concentration: float = 8.0, seed: int | np.random.Generator = 0) -> JudgeWorld:
    """Draw the judge world (see the module docstring); every model answers every prompt."""
    if labeling not in ("uniform", "unequal"):
        raise ValueError("labeling must be 'uniform' or 'unequal'")
    if label_kind not in ("score", "binary"):
        raise ValueError("label_kind must be 'score' or 'binary'")
    if not 0 < label_fraction <= 1:
        raise ValueError("label_fraction must lie in (0, 1]")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    models = dict(DEFAULT_MODELS if models is None else models)
    jb = {**JUDGE_BIAS, **(judge or {})}
    names = list(models)
    M = len(names)
    ability = np.array([models[m][0] for m in names])
    verbosity = np.array([models[m][1] for m in names])
    family = np.array([bool(models[m][2]) for m in names], dtype=float)
    difficulty = rng.standard_normal(n_prompts)
    length_factor = rng.standard_normal(n_prompts)
    shape = (n_prompts, M)
    quality = expit(ability[None, :] - difficulty[:, None] + _QUALITY_NOISE * rng.standard_normal(shape))
    log_len = np.log(_BASE_LENGTH) + verbosity[None, :] + 0.4 * length_factor[:, None] + 0.3 * rng.standard_normal(shape)
    if label_kind == "score":
        label = rng.beta(concentration * quality, concentration * (1 - quality))
    else:
        label = (rng.random(shape) < quality).astype(float)
    eta = (jb["offset"] + jb["slope"] * logit(quality) + jb["length"] * (log_len - np.log(_BASE_LENGTH))
           + jb["self"] * family[None, :] + jb["noise"] * rng.standard_normal(shape))
    score = np.round(expit(eta), 2)
    if labeling == "uniform":
        prob = np.full(shape, label_fraction)
    else:
        raw = 0.25 + (1.0 - score)
        prob = np.clip(label_fraction * raw / raw.mean(), 0.01, 1.0)
    labelled = rng.random(shape) < prob
    frame = pd.DataFrame({
        "prompt_id": np.repeat([f"p{j:05d}" for j in range(n_prompts)], M),
        "model": np.tile(names, n_prompts),
        "length": np.round(np.exp(log_len)).astype(int).ravel(),
        "judge_score": score.ravel(),
        "judge_binary": (score >= 0.5).astype(int).ravel(),
        "label": np.where(labelled, label, np.nan).ravel(),
        "label_prob": prob.ravel(),
    })
    truth = {m: true_mean_quality(a) for m, a in zip(names, ability)}
    return JudgeWorld(frame=frame, truth=truth, quality=quality.ravel())


@dataclass(frozen=True)
class BattleWorld:
    """Simulated battles with judge picks and (some) human votes, and the truth."""

    frame: pd.DataFrame  # model_a (shown first), model_b, judge ("model_a"/"model_b"), human (or empty)
    strengths: dict[str, float]  # centred human Bradley–Terry strengths (log-odds)
    first_pick_rate: float  # the judge's true rate of picking the answer shown first

    def win_rate(self, x: str, y: str) -> float:
        return float(expit(self.strengths[x] - self.strengths[y]))


def battle_world(n_battles: int = 4000, models: dict | None = None, *, human_fraction: float = 0.2,
                 decisiveness: float = 1.0, verbosity_bias: float = 0.5, position_bias: float = 0.35,
                 seed: int | np.random.Generator = 0) -> BattleWorld:
    """Draw Arena-style battles (see the module docstring)."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    models = dict(DEFAULT_MODELS if models is None else models)
    names = list(models)
    r = np.array([models[m][0] for m in names], dtype=float)
    v = np.array([models[m][1] for m in names], dtype=float)
    M = len(names)
    ia = rng.integers(0, M, n_battles)
    ib = (ia + rng.integers(1, M, n_battles)) % M  # a different model, uniformly
    human_first = rng.random(n_battles) < expit(r[ia] - r[ib])

    def judge_logit(a, b):
        return decisiveness * (r[a] - r[b]) + verbosity_bias * (v[a] - v[b]) + position_bias

    judge_first = rng.random(n_battles) < expit(judge_logit(ia, ib))
    voted = rng.random(n_battles) < human_fraction
    names_arr = np.array(names, dtype=object)
    frame = pd.DataFrame({
        "battle_id": [f"b{i:06d}" for i in range(n_battles)],
        "model_a": names_arr[ia], "model_b": names_arr[ib],
        "judge": np.where(judge_first, "model_a", "model_b"),
        "human": np.where(voted, np.where(human_first, "model_a", "model_b"), None),
    })
    pa, pb = np.meshgrid(np.arange(M), np.arange(M), indexing="ij")
    off = pa != pb
    first_rate = float(np.mean(expit(judge_logit(pa[off], pb[off]))))
    return BattleWorld(frame=frame, strengths={m: float(x) for m, x in zip(names, r - r.mean())},
                       first_pick_rate=first_rate)


# --------------------------------------------------------------------------- shift: another prompt mix, a new judge

_TOPICS = ("chat", "code", "math")
_TOPIC_HARDNESS = np.array([0.0, 0.0, 0.5])  # math answers are worse at equal difficulty


@dataclass(frozen=True)
class PromptMixWorld:
    """Judged answers on benchmark prompts (source) and the production prompts they will serve (target)."""

    frame: pd.DataFrame  # prompt_id, model, difficulty, topic, judge_score, label (NaN if unlabelled)
    target: pd.DataFrame  # prompt_id, difficulty, topic: production prompts, no answers judged or labelled
    truth_source: dict[str, float]  # mean label each model would get on the benchmark's prompt mix
    truth_target: dict[str, float]  # ... and on the production mix


def _topic_probs(shift: float) -> np.ndarray:
    s = min(max(shift, 0.0), 1.5) / 1.5
    return np.array([0.5, 0.3, 0.2]) * (1 - s) + np.array([0.2, 0.3, 0.5]) * s


def _mix_truth(ability: float, mean_difficulty: float, probs: np.ndarray) -> float:
    return float(sum(p * true_mean_quality(ability - mean_difficulty - h) for p, h in zip(probs, _TOPIC_HARDNESS)))


def prompt_mix_world(n_prompts: int = 1000, n_target: int = 1000, *, shift: float = 1.0, models: dict | None = None,
                     label_fraction: float = 0.1, seed: int | np.random.Generator = 0) -> PromptMixWorld:
    """Benchmark prompts with difficulty d ~ N(0, 1) and topics (chat, code, math) = (.5, .3, .2); production
    prompts with d ~ N(shift, 1) and a topic mix moving toward math ((.2, .3, .5) at shift ≥ 1.5).

    Model m's answer has quality q = σ(aₘ − d − ½·1{math} + u), u ~ N(0, ½²); the label is Beta(8q, 8(1−q));
    the judge scores logit S = 0.7 + 0.8·logit q + N(0, 0.7²) (miscalibrated, noisy). A share
    ``label_fraction`` of the benchmark rows is labelled at random. Truth: the mean label over each prompt
    population, by Gauss–Hermite quadrature (exact up to quadrature error).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    models = dict(DEFAULT_MODELS if models is None else models)
    names = list(models)
    ability = np.array([models[m][0] for m in names])
    p_src, p_tgt = _topic_probs(0.0), _topic_probs(shift)
    d = rng.standard_normal(n_prompts)
    topic = rng.choice(3, size=n_prompts, p=p_src)
    shape = (n_prompts, len(names))
    q = expit(ability[None, :] - d[:, None] - _TOPIC_HARDNESS[topic][:, None]
              + _QUALITY_NOISE * rng.standard_normal(shape))
    label = rng.beta(8.0 * q, 8.0 * (1 - q))
    score = np.round(expit(0.7 + 0.8 * logit(q) + 0.7 * rng.standard_normal(shape)), 3)
    labelled = rng.random(shape) < label_fraction
    frame = pd.DataFrame({
        "prompt_id": np.repeat([f"b{j:05d}" for j in range(n_prompts)], len(names)),
        "model": np.tile(names, n_prompts),
        "difficulty": np.repeat(np.round(d, 4), len(names)),
        "topic": np.repeat(np.array(_TOPICS)[topic], len(names)),
        "judge_score": score.ravel(),
        "label": np.where(labelled, label, np.nan).ravel(),
    })
    dt = rng.standard_normal(n_target) + shift
    tt = rng.choice(3, size=n_target, p=p_tgt)
    target = pd.DataFrame({"prompt_id": [f"t{j:05d}" for j in range(n_target)], "difficulty": np.round(dt, 4),
                           "topic": np.array(_TOPICS)[tt]})
    return PromptMixWorld(frame=frame, target=target,
                          truth_source={m: _mix_truth(a, 0.0, p_src) for m, a in zip(names, ability)},
                          truth_target={m: _mix_truth(a, shift, p_tgt) for m, a in zip(names, ability)})


@dataclass(frozen=True)
class JudgeSwapWorld:
    """A log of judged answers over time in which the judge is replaced by a harsher one at ``swap_at``."""

    frame: pd.DataFrame  # day, model, judge_score, label (NaN if unlabelled)
    swap_at: float  # the day the new judge took over
    offsets: tuple[float, float]  # true mean (label − judge score) before and after the swap
    truth: dict[str, float]  # mean label per model (the swap changes the judge, not the answers)


def judge_swap_world(n: int = 4000, *, days: float = 60.0, swap_at: float | None = 36.0, harshness: float = 0.6,
                     models: dict | None = None, label_fraction: float = 0.15,
                     seed: int | np.random.Generator = 0) -> JudgeSwapWorld:
    """Answers of the default models judged every day; on day ``swap_at`` the judge is swapped for one
    whose logit scores are ``harshness`` lower (None: no swap, a stationary log).

    Quality q = σ(aₘ − d + u) as in `judge_world`; label Beta(8q, 8(1−q)); judge logit S = 0.7 + 0.8·logit q
    − harshness·1{day ≥ swap_at} + N(0, 0.7²). The true calibration offsets E[Y − S] before and after are
    computed by Monte Carlo over 400,000 draws of the same model.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    models = dict(DEFAULT_MODELS if models is None else models)
    names = list(models)
    ability = np.array([models[m][0] for m in names])

    def draw(g, m):
        which = g.integers(0, len(names), m)
        q = expit(ability[which] - g.standard_normal(m) + _QUALITY_NOISE * g.standard_normal(m))
        y = g.beta(8.0 * q, 8.0 * (1 - q))
        eta = 0.7 + 0.8 * logit(q) + 0.7 * g.standard_normal(m)
        return which, y, eta

    day = np.sort(rng.random(n) * days)
    which, y, eta = draw(rng, n)
    after = np.zeros(n, dtype=bool) if swap_at is None else day >= swap_at
    score = np.round(expit(eta - harshness * after), 3)
    labelled = rng.random(n) < label_fraction
    frame = pd.DataFrame({"day": np.round(day, 3), "model": np.array(names)[which], "judge_score": score,
                          "label": np.where(labelled, y, np.nan)})
    _, ym, em = draw(np.random.default_rng(99_000), 400_000)
    offsets = (float(np.mean(ym - expit(em))), float(np.mean(ym - expit(em - harshness))))
    return JudgeSwapWorld(frame=frame, swap_at=float("nan") if swap_at is None else swap_at,
                          offsets=offsets if swap_at is not None else (offsets[0], offsets[0]),
                          truth={m: true_mean_quality(a) for m, a in zip(names, ability)})
