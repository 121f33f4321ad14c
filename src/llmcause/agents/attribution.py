"""Which step made a failed episode fail: attribution by counterfactual replay.

For a failed episode and each step k, two arms are replayed from the logged
prefix before k (the environment is reset with the episode's seed and the
logged actions re-applied, each observation checked against the log):

- keep: the logged action a_k, then the rest drawn from the agent's policy;
- change: do(a_k = a'), a' drawn from the agent's policy at that state
  conditioned on a' ≠ a_k (uniform over the other allowed actions when the
  policy puts all its mass on a_k), then the rest drawn from the policy.

Replicate r of both arms draws the future from the same random stream
(common random numbers), so the paired difference is less noisy. The effect
of step k is P(success | change) − P(success | keep), estimated by the mean
paired difference with a t interval over replicate pairs (the clusters);
when every pair agrees the standard error is floored at 0.5/R, since R equal
pairs do not prove a zero-width interval.
Keeping a_k in the comparison matters: re-running the future alone would make
every early step look decisive. The decisive step is the earliest k whose
interval lies above ``threshold``; success means a positive total reward.

Budget: an adaptive scheme gives every step a few pairs, then spends further
pairs on the undecided step (interval straddling the threshold) before the
earliest decisive one whose upper bound is highest; a fixed scheme splits the
budget evenly. Baselines: blame the last step; blame the least likely action.

Assumptions: the environment is deterministic given seed and actions (checked
on every replay); the agent's randomness comes only from the generator it is
given. Reference: the "decisive error" of Zhang et al. 2025 (Who&When), here
measured by intervention instead of read by a judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence, wald_interval
from .replay import replay_prefix, rollout
from .traces import Episode

REJECTION_TRIES = 100  # draws from the agent's policy before falling back to a uniform alternative


@dataclass
class EpisodeAttribution:
    """The per-step effects of one failed episode, its decisive step and the baselines' picks."""

    episode_id: str
    decisive_step: int | None
    effects: list[Estimate]
    replays: int
    last_step: int
    lowest_prob_step: int
    pairs: dict = field(default_factory=dict, repr=False)

    def to_json(self) -> dict:
        return {"episode_id": self.episode_id, "decisive_step": self.decisive_step,
                "effects": [{"step": int(e.name.split()[-1]), "estimate": e.estimate, "ci_low": e.ci_low,
                             "ci_high": e.ci_high, "replicates": e.n} for e in self.effects],
                "replays": self.replays,
                "baselines": {"last_step": self.last_step, "lowest_prob_step": self.lowest_prob_step}}


@dataclass
class Attribution:
    """Attribution of every failed episode, and the summary estimates."""

    episodes: list[EpisodeAttribution]
    table: EstimateTable


class _StepReplays:
    """Paired replays of one step of one episode."""

    def __init__(self, env, agent, episode: Episode, k: int, seed: int, where: str):
        self.env, self.agent, self.episode, self.k, self.seed, self.where = env, agent, episode, k, seed, where
        self.diffs: list[float] = []

    def add(self, n_pairs: int) -> int:
        ep, k = self.episode, self.k
        logged = ep.steps[k].action
        for _ in range(n_pairs):
            r = len(self.diffs)
            keep = self._arm(logged, r, None)
            change = self._arm(None, r, logged)
            self.diffs.append(float(change) - float(keep))
        return 2 * n_pairs

    def _arm(self, action: str | None, r: int, avoid: str | None) -> bool:
        prefix = replay_prefix(self.env, self.episode, self.k, self.where)
        if action is None:
            action = _alternative(self.env, self.agent, prefix, avoid, np.random.default_rng([self.seed, self.k, r, 1]))
        future = np.random.default_rng([self.seed, self.k, r, 0])  # common random numbers across the two arms
        reward, _ = rollout(self.env, self.agent, prefix.observation, prefix.history, future, first_action=action)
        return prefix.reward + reward > 0

    def estimate(self, level: float) -> Estimate:
        d = np.asarray(self.diffs, float)
        theta = float(d.mean())
        est = estimate_from_influence(theta, d - theta, name=f"step {self.k}", estimand="effect on success",
                                      method="counterfactual replay", level=level, cluster=np.arange(d.size),
                                      keep_influence=False)
        floor = 0.5 / d.size  # identical pairs (all 0, say) do not prove a zero-width interval
        if est.se < floor:
            lo, hi = wald_interval(theta, floor, level, est.df)
            est = est.with_(se=floor, ci_low=lo, ci_high=hi, diagnostics={**est.diagnostics, "se_floor": True})
        # a difference of two probabilities lies in [-1, 1]
        return est.with_(ci_low=max(est.ci_low, -1.0), ci_high=min(est.ci_high, 1.0))


def _alternative(env, agent, prefix, avoid: str, rng: np.random.Generator) -> str:
    for _ in range(REJECTION_TRIES):
        action, _ = agent.act(prefix.observation, prefix.history, rng)
        if action != avoid:
            return action
    others = [a for a in env.actions() if a != avoid]
    if not others:
        return avoid
    return others[int(rng.integers(len(others)))]


def attribute_episode(episode: Episode, env: Any, agent: Any, *, threshold: float = 0.1, budget: int = 200,
                      initial: int = 4, batch: int = 4, min_pairs: int = 8, adaptive: bool = True,
                      replicates: int | None = None,
                      level: float = 0.95, seed: int = 0, where: str = "",
                      advance: Callable[[int], None] = lambda k: None) -> EpisodeAttribution:
    """Effects of every step of one failed episode by paired replays, and its decisive step.

    ``budget`` counts replays (two per pair). Adaptive: ``initial`` pairs per step, then batches of ``batch``
    pairs to the undecided step with the highest upper bound before the earliest decisive one. Fixed
    (``adaptive=False``): ``replicates`` pairs per step, or the budget split evenly.
    """
    n = len(episode.steps)
    base = int(np.random.default_rng([seed, _stable_hash(episode.episode_id)]).integers(2**31))
    steps = [_StepReplays(env, agent, episode, k, base, where) for k in range(n)]
    used = 0
    even = max(1, budget // (2 * n))  # every step gets at least one pair, even past a tiny budget
    first = min(initial, even) if adaptive else (replicates or even)
    for s in steps:
        used += s.add(first)
        advance(2 * first)
    if adaptive:
        while used + 2 * batch <= budget:
            ests = [s.estimate(level) for s in steps]
            above = [k for k, e in enumerate(ests) if e.ci_low > threshold]
            stop = above[0] if above else n
            open_ = [k for k in range(stop) if not (ests[k].ci_high < threshold and len(steps[k].diffs) >= min_pairs)]
            if not open_:
                break
            # the open step most likely to be decisive: the highest upper bound (few pairs or a large effect)
            pick = max(open_, key=lambda k: (ests[k].ci_high, -k))
            used += steps[pick].add(batch)
            advance(2 * batch)
    effects = [s.estimate(level) for s in steps]
    decisive = next((k for k, e in enumerate(effects) if e.ci_low > threshold), None)
    probs = [s.prob for s in episode.steps]
    return EpisodeAttribution(episode.episode_id, decisive, effects, used, n - 1, int(np.argmin(probs)),
                              {k: list(s.diffs) for k, s in enumerate(steps)})


def attribute_failures(episodes: Sequence[Episode], env_for: Callable[[Episode], Any],
                       agent_for: Callable[[Episode], Any], *, threshold: float = 0.1, budget: int = 200,
                       adaptive: bool = True, level: float = 0.95, seed: int = 0, show_progress: bool = False,
                       where: Callable[[Episode], str] = lambda e: "", **options) -> Attribution:
    """Attribute every failed episode; the summary is the share of failed episodes with a decisive step.

    ``env_for`` and ``agent_for`` give the environment and agent to replay an episode with.
    """
    from ..progress import progress

    failed = [e for e in episodes if not e.success]
    out = []
    with progress(budget * len(failed), "replaying", enabled=show_progress) as advance:
        for ep in failed:
            out.append(attribute_episode(ep, env_for(ep), agent_for(ep), threshold=threshold, budget=budget,
                                         adaptive=adaptive, level=level, seed=seed, where=where(ep),
                                         advance=advance, **options))
    return Attribution(out, summary_table(out, len(episodes), threshold, level))


def summary_table(results: Sequence[EpisodeAttribution], n_episodes: int, threshold: float,
                  level: float = 0.95) -> EstimateTable:
    """Share of failed episodes with a decisive step (episodes as units), with the replay cost."""
    warnings = []
    if not results:
        return EstimateTable([], [f"no failed episodes among {n_episodes}: nothing to attribute"])
    found = np.array([r.decisive_step is not None for r in results], float)
    theta = float(found.mean())
    replays = [r.replays for r in results]
    positions = [r.decisive_step / max(len(r.effects) - 1, 1) for r in results if r.decisive_step is not None]
    diag = {"failed_episodes": len(results), "episodes": n_episodes, "threshold": threshold,
            "replays_per_episode": float(np.mean(replays)),
            "decisive_is_last_step": float(np.mean([r.decisive_step == r.last_step for r in results
                                                    if r.decisive_step is not None])) if positions else None,
            "decisive_is_lowest_prob_step": float(np.mean([r.decisive_step == r.lowest_prob_step for r in results
                                                           if r.decisive_step is not None])) if positions else None}
    est = _share(estimate_from_influence(theta, found - theta, name="failed episodes",
                                         method="counterfactual replay", estimand="share with a decisive step",
                                         level=level, diagnostics=diag, keep_influence=False))
    if theta < 1:
        warnings.append(f"{int((1 - found).sum())} of {len(results)} failed episodes have no step whose change "
                        f"clearly raises the success probability by more than {threshold:g} (the environment's "
                        "draws, or a budget too small to tell)")
    return EstimateTable([est], warnings)


def _stable_hash(text: str) -> int:
    h = 1469598103934665603
    for ch in text.encode("utf-8"):
        h = ((h ^ ch) * 1099511628211) % (1 << 61)
    return h


def score_against_truth(results: Sequence[EpisodeAttribution], decisive: dict, level: float = 0.95) -> EstimateTable:
    """Share of failed episodes whose known decisive step each method names: replay, last step, least likely."""
    if not results:
        return EstimateTable([])
    truth = [decisive[r.episode_id] for r in results]
    picks = {"counterfactual replay": [r.decisive_step for r in results],
             "baseline: last step": [r.last_step for r in results],
             "baseline: least likely action": [r.lowest_prob_step for r in results]}
    out = []
    for method, chosen in picks.items():
        hit = np.array([c == t for c, t in zip(chosen, truth)], float)
        out.append(_share(estimate_from_influence(
            float(hit.mean()), hit - hit.mean(), name="decisive step named", estimand="accuracy", method=method,
            level=level, keep_influence=False,
            diagnostics={"replays_per_episode": float(np.mean([r.replays for r in results]))}
            if method == "counterfactual replay" else {})))
    return EstimateTable(out)


def _share(est: Estimate) -> Estimate:
    # a share lies in [0, 1]; the Wald interval is cut there
    return est.with_(ci_low=max(est.ci_low, 0.0), ci_high=min(est.ci_high, 1.0))
