"""Router logs with known truth.

(a) `routellm_world`: real outcomes. The shipped RouteLLM table records
whether Mixtral-8x7B and GPT-4-1106 each answered every GSM8K and MMLU prompt
correctly, so both potential outcomes of every prompt are known. A confounded
logging router sends the prompts that look hard for Mixtral (by a difficulty
score computed from the prompt text and its data set) to GPT-4 more often,
with known propensities. Every policy's true value over the prompt pool is
then exact: the mean over the pool of the correctness of the model it picks.

(b) `synthetic_world`: K models with increasing quality and cost, prompt
features (difficulty, length, topic), Bernoulli quality, log-normal costs that
grow with length, a logging router that sends hard prompts to big models, and
drift: over time prompts get harder and the middle model degrades. True
values are population expectations, by Monte Carlo on a large fresh sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Callable

import numpy as np
import pandas as pd
from scipy.special import expit, softmax

from .features import FeaturePipeline, hash_texts

ROUTELLM_MODELS = ("mixtral-8x7b", "gpt-4-1106")
ROUTELLM_PRICES = {"mixtral-8x7b": 0.1, "gpt-4-1106": 1.0}  # relative cost per call (large = 1)
SYNTH_MODELS = ("small", "medium", "large")
SYNTH_PRICES = {"small": 0.1, "medium": 0.35, "large": 1.0}


@dataclass
class RouterWorld:
    """A simulated log with the means to compute any policy's true value.

    ``frame`` is the log (columns named in ``columns``); ``truth(policy)`` takes
    a function from a table of prompts to an (m, K) matrix of model
    probabilities and returns the true (quality, cost) of that policy over the
    world's population of prompts.
    """

    frame: pd.DataFrame
    models: tuple[str, ...]
    prices: dict[str, float]
    columns: dict[str, str]
    population: pd.DataFrame
    quality: np.ndarray  # (m, K) true mean quality of each model on each population prompt
    cost: np.ndarray  # (m, K) true mean cost
    features: list[str] = field(default_factory=list)
    text: str | None = None
    info: dict = field(default_factory=dict)

    def truth(self, policy: Callable[[pd.DataFrame], np.ndarray]) -> tuple[float, float]:
        probs = np.asarray(policy(self.population), dtype=float)
        return float(np.mean(np.sum(probs * self.quality, axis=1))), float(np.mean(np.sum(probs * self.cost, axis=1)))

    def always(self, model: str) -> tuple[float, float]:
        j = self.models.index(model)
        return float(self.quality[:, j].mean()), float(self.cost[:, j].mean())

    def naive_always(self, model: str) -> float:
        """Mean logged quality where the logged model is ``model`` (what a dashboard shows)."""
        rows = self.frame[self.columns["action"]] == model
        return float(self.frame.loc[rows, self.columns["reward"]].mean())


# --------------------------------------------------------------------------- (a) real outcomes


def load_routellm_outcomes() -> pd.DataFrame:
    """The shipped table: dataset, prompt, mixtral_correct, gpt4_correct (15,361 prompts)."""
    return _outcomes().copy()


@lru_cache(maxsize=1)
def _outcomes() -> pd.DataFrame:
    path = resources.files("llmcause.routing") / "data" / "routellm_outcomes.csv.xz"
    with resources.as_file(path) as p:
        return pd.read_csv(p)


@lru_cache(maxsize=1)
def routellm_hashed_prompts():
    """Hashed n-grams of every pool prompt (computed once per process; see `FeaturePipeline.transform`)."""
    return hash_texts(_outcomes()["prompt"].tolist())


@lru_cache(maxsize=4)
def _routellm_difficulty(seed: int) -> np.ndarray:
    """Standardised difficulty score (predicted chance that Mixtral is wrong): what the old router looked at."""
    pool = _outcomes()
    pipe = FeaturePipeline(categorical=["dataset"], text="prompt", seed=seed)
    hashed = routellm_hashed_prompts()
    X = pipe.fit(pool, hashed).transform(pool, hashed)
    X = np.column_stack([np.ones(X.shape[0]), (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)])
    # a ridge linear-probability score: all the old router needs is an ordering by apparent difficulty
    wrong = 1.0 - pool["mixtral_correct"].to_numpy(dtype=float)
    beta = np.linalg.solve(X.T @ X + 10.0 * np.eye(X.shape[1]), X.T @ wrong)
    z = X[:, 1:] @ beta[1:]
    return (z - z.mean()) / z.std()


def routellm_world(n: int | None = 4000, *, seed: int = 0, confounding: float = 1.5, large_share: float = 0.35,
                   floor: float = 0.05, datasets: str = "all") -> RouterWorld:
    """A confounded router log over real GSM8K and MMLU outcomes of Mixtral-8x7B and GPT-4-1106.

    Parameters
    ----------
    n : rows, drawn without replacement from the prompt pool (None: every prompt once).
    confounding : slope of the logging logit in the difficulty score (0: random logging).
    large_share : about how often the old router chose GPT-4.
    floor : propensities are kept in [floor, 1 − floor] (overlap).
    datasets : ``all``, ``gsm8k`` or ``mmlu``.

    The log has columns prompt, dataset, model, propensity, correct, cost.
    Prices are relative per-call costs (`ROUTELLM_PRICES`).
    """
    rng = np.random.default_rng(seed)
    pool = _outcomes()
    z = _routellm_difficulty(0)
    keep = np.ones(pool.shape[0], dtype=bool)
    if datasets != "all":
        keep = pool["dataset"].str.startswith(datasets).to_numpy()
        if not keep.any():
            raise ValueError("datasets must be all, gsm8k or mmlu")
    pool, z = pool[keep].reset_index(drop=True), z[keep]
    m = pool.shape[0]
    if n is None or n >= m:
        idx = rng.permutation(m)
    else:
        idx = rng.choice(m, size=n, replace=False)
    offset = _solve_offset(z, confounding, large_share, floor)
    p_large = np.clip(expit(offset + confounding * z), floor, 1 - floor)
    outcomes = pool[["mixtral_correct", "gpt4_correct"]].to_numpy(dtype=float)
    prices = np.array([ROUTELLM_PRICES[mm] for mm in ROUTELLM_MODELS])
    rows = pool.iloc[idx].reset_index(drop=True)
    chose_large = rng.random(idx.shape[0]) < p_large[idx]
    action = chose_large.astype(int)
    frame = pd.DataFrame({
        "prompt": rows["prompt"], "dataset": rows["dataset"],
        "model": np.array(ROUTELLM_MODELS)[action],
        "propensity": np.where(chose_large, p_large[idx], 1 - p_large[idx]),
        "correct": outcomes[idx, action].astype(int),
        "cost": prices[action],
    })
    return RouterWorld(frame=frame, models=ROUTELLM_MODELS, prices=dict(ROUTELLM_PRICES),
                       columns={"action": "model", "reward": "correct", "propensity": "propensity", "cost": "cost"},
                       population=pool[["prompt", "dataset"]], quality=outcomes,
                       cost=np.tile(prices, (m, 1)), features=["dataset"], text="prompt",
                       info={"confounding": confounding, "floor": floor, "pool_size": m})


def _solve_offset(z: np.ndarray, slope: float, share: float, floor: float) -> float:
    lo, hi = -20.0, 20.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if np.mean(np.clip(expit(mid + slope * z), floor, 1 - floor)) < share:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# --------------------------------------------------------------------------- (b) synthetic K models


_ABILITY = np.array([0.3, 1.0, 1.6])  # logit quality at difficulty 0
_HARDNESS = np.array([1.6, 1.2, 0.7])  # how fast quality falls with difficulty


def _drift_path(t: np.ndarray, break_at: float | None) -> np.ndarray:
    """How far the drift has gone at time t: t itself (a steady trend), or a step at ``break_at``."""
    return t if break_at is None else (t >= break_at).astype(float)


def _synthetic_rows(rng: np.random.Generator, n: int, drift: float, break_at: float | None = None):
    t = np.sort(rng.random(n))
    difficulty = rng.standard_normal(n) + drift * 0.8 * _drift_path(t, break_at)
    length = rng.standard_normal(n)
    topic = rng.integers(0, 3, n)
    noise = rng.standard_normal(n)
    return t, difficulty, length, topic, noise


def _synthetic_means(t, difficulty, length, topic, drift: float, prices: np.ndarray, break_at: float | None = None,
                     model_drift: float = 1.0):
    ability = np.tile(_ABILITY, (t.shape[0], 1))
    ability[:, 1] -= model_drift * drift * 1.2 * _drift_path(t, break_at)  # the middle model degrades over time
    topic_bonus = np.where(topic == 1, 0.3, 0.0)[:, None] * np.array([0.0, 0.5, 1.0])
    quality = expit(ability + topic_bonus - _HARDNESS * difficulty[:, None])
    cost = prices * np.exp(0.3 * length)[:, None] * np.exp(0.5 * 0.2 ** 2)
    return quality, cost


def synthetic_world(n: int = 5000, *, seed: int = 0, drift: float = 1.0, overlap: float = 0.1,
                    confounding: float = 1.5, population: int = 400_000,
                    break_at: float | None = None, model_drift: float = 1.0) -> RouterWorld:
    """A log of three models (small, medium, large) with costs, confounded logging and drift.

    Parameters
    ----------
    n : logged rows, ordered by time t ∈ [0, 1).
    drift : 0 for a stationary world; 1 makes prompts harder and the medium model worse over time.
    overlap : share of uniform logging mixed into the old router (propensities ≥ overlap/3).
    confounding : how strongly the old router sends hard prompts to bigger models.
    population : Monte Carlo size for the true values.
    break_at : None for a steady drift; a time in (0, 1) makes the whole drift happen at once then
        (the traffic turns harder and the medium model worse in one step).
    model_drift : 1 lets the medium model degrade with the drift; 0 keeps the models as they are, so only
        the traffic drifts (covariate shift: see `future_traffic`).

    The log has columns time, difficulty, length, topic, model, propensity, quality, cost.
    """
    rng = np.random.default_rng(seed)
    prices = np.array([SYNTH_PRICES[m] for m in SYNTH_MODELS])
    t, d, ln, topic, _ = _synthetic_rows(rng, n, drift, break_at)
    q, c = _synthetic_means(t, d, ln, topic, drift, prices, break_at, model_drift)
    logits = confounding * np.column_stack([-d, np.zeros(n), d]) + np.array([0.4, 0.0, -0.4])
    pb = (1 - overlap) * softmax(logits, axis=1) + overlap / 3
    u = rng.random(n)
    action = np.minimum((u[:, None] > np.cumsum(pb, axis=1)).sum(axis=1), 2)
    rows = np.arange(n)
    quality = (rng.random(n) < q[rows, action]).astype(int)
    cost = prices[action] * np.exp(0.3 * ln) * np.exp(0.2 * rng.standard_normal(n))
    frame = pd.DataFrame({"time": t, "difficulty": d, "length": ln, "topic": np.array(["chat", "code", "math"])[topic],
                          "model": np.array(SYNTH_MODELS)[action], "propensity": pb[rows, action],
                          "quality": quality, "cost": cost})
    prng = np.random.default_rng(10_000 + seed)
    pt, pd_, pln, ptopic, _ = _synthetic_rows(prng, population, drift, break_at)
    pq, pc = _synthetic_means(pt, pd_, pln, ptopic, drift, prices, break_at, model_drift)
    pop = pd.DataFrame({"time": pt, "difficulty": pd_, "length": pln,
                        "topic": np.array(["chat", "code", "math"])[ptopic]})
    return RouterWorld(frame=frame, models=SYNTH_MODELS, prices=dict(SYNTH_PRICES),
                       columns={"action": "model", "reward": "quality", "propensity": "propensity", "cost": "cost",
                                "time": "time"},
                       population=pop, quality=pq, cost=pc, features=["difficulty", "length", "topic"],
                       info={"drift": drift, "overlap": overlap, "confounding": confounding, "break_at": break_at,
                             "model_drift": model_drift})


def window_truth(world: RouterWorld, model: str, edges: np.ndarray) -> list[float]:
    """True quality of always-``model`` in each time window [edges[i], edges[i+1]) (synthetic world)."""
    t = world.population["time"].to_numpy()
    j = world.models.index(model)
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        rows = (t >= lo) & (t < hi)
        out.append(float(world.quality[rows, j].mean()))
    return out


def future_traffic(world: RouterWorld, n: int = 2000, *, start: float = 1.0, end: float = 1.3, seed: int = 0,
                   population: int = 400_000) -> tuple[pd.DataFrame, dict[str, float]]:
    """Prompts of the synthetic world's next period, t ∈ [start, end): the traffic keeps drifting (harder prompts).

    Returns the target table (time, difficulty, length, topic: no model, no outcome) and the true quality of
    always-M on that period's traffic, for each model. Models are held as they are at t = 1 (covariate shift
    only), so use a world with ``model_drift=0`` for the log.
    """
    if world.info.get("model_drift", 1.0) != 0.0 or world.info.get("break_at") is not None:
        raise ValueError("future_traffic needs a synthetic world with model_drift=0 and a steady drift")
    drift = world.info["drift"]
    prices = np.array([SYNTH_PRICES[m] for m in SYNTH_MODELS])

    def draw(rng, m):
        t = start + (end - start) * np.sort(rng.random(m))
        return t, rng.standard_normal(m) + drift * 0.8 * t, rng.standard_normal(m), rng.integers(0, 3, m)

    t, d, ln, topic = draw(np.random.default_rng(seed), n)
    frame = pd.DataFrame({"time": t, "difficulty": d, "length": ln, "topic": np.array(["chat", "code", "math"])[topic]})
    pt, pd_, pln, ptopic = draw(np.random.default_rng(20_000 + seed), population)
    q, _ = _synthetic_means(pt, pd_, pln, ptopic, drift, prices, None, 0.0)
    return frame, {m: float(q[:, j].mean()) for j, m in enumerate(SYNTH_MODELS)}
