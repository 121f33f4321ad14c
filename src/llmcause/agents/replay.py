"""Replaying logged prefixes and rolling the rest out under the agent's policy.

A replay resets the environment with the episode's seed, re-applies the
logged actions before step k and checks that every observation (and reward)
matches the log: an environment that does not reproduce its own log is not
deterministic given seed and actions, and no counterfactual built on it can
be trusted, so replay stops with `NondeterministicEnvironment`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io import DataError
from .traces import Episode

MAX_STEPS = 200  # a rollout longer than this is stopped and counted as a failure


class NondeterministicEnvironment(DataError):
    """The environment did not reproduce a logged observation from the same seed and actions."""


@dataclass(frozen=True)
class Prefix:
    """The state before step k of a logged episode."""

    observation: str
    history: list[tuple[str, str]]
    reward: float  # reward collected before step k


def replay_prefix(env: Any, episode: Episode, k: int, where: str = "") -> Prefix:
    """Reset with the episode's seed and re-apply its actions 0..k-1, checking each observation against the log."""
    label = where or f"episode {episode.episode_id!r}"
    if not 0 <= k < len(episode.steps):
        raise ValueError(f"step {k} is outside episode {episode.episode_id!r} (steps 0..{len(episode.steps) - 1})")
    obs = env.reset(episode.seed)
    _check_obs(obs, episode, 0, label)
    total = 0.0
    history: list[tuple[str, str]] = []
    for i in range(k):
        step = episode.steps[i]
        obs, reward, done = env.step(step.action)
        if not np_isclose(reward, step.reward):
            raise NondeterministicEnvironment(
                f"{label}: replaying step {i} gave reward {reward!r}, the log has {step.reward!r}; the environment "
                "must be deterministic given its seed and the actions taken")
        if done:
            raise NondeterministicEnvironment(
                f"{label}: replaying step {i} ended the episode, but the log continues; the environment must be "
                "deterministic given its seed and the actions taken")
        history.append((step.observation, step.action))
        total += float(reward)
        _check_obs(obs, episode, i + 1, label)
    return Prefix(obs, history, total)


def np_isclose(a: float, b: float) -> bool:
    return bool(np.isclose(float(a), float(b), rtol=1e-9, atol=1e-12))


def _check_obs(obs: str, episode: Episode, i: int, label: str) -> None:
    logged = episode.steps[i].observation
    if obs != logged:
        raise NondeterministicEnvironment(
            f"{label}: replaying to step {i} gave observation {_short(obs)!r}, the log has {_short(logged)!r}; the "
            "environment must be deterministic given its seed and the actions taken (or the log comes from "
            "another environment)")


def _short(text: str, n: int = 60) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 3] + "..."


def rollout(env: Any, agent: Any, observation: str, history: list[tuple[str, str]], rng: np.random.Generator,
            first_action: str | None = None, max_steps: int = MAX_STEPS) -> tuple[float, int]:
    """Run the agent from the current state to the end; return (reward collected, steps taken).

    ``first_action`` forces the first action (an intervention); the rest is drawn from the agent's policy.
    """
    history = list(history)
    total = 0.0
    for t in range(max_steps):
        if t == 0 and first_action is not None:
            action = first_action
        else:
            action, _ = agent.act(observation, history, rng)
        history.append((observation, action))
        observation, reward, done = env.step(action)
        total += float(reward)
        if done:
            return total, t + 1
    return total, max_steps


def run_episode(env: Any, agent: Any, seed: int, rng: np.random.Generator, episode_id: str = "0",
                env_spec: str | None = None, agent_spec: str | None = None, max_steps: int = MAX_STEPS) -> Episode:
    """Run one episode from ``seed``, logging observations, actions and the agent's probabilities."""
    from .traces import Step

    observation = env.reset(seed)
    history: list[tuple[str, str]] = []
    steps = []
    total = 0.0
    for _ in range(max_steps):
        action, prob = agent.act(observation, history, rng)
        next_obs, reward, done = env.step(action)
        steps.append(Step(observation, action, float(prob), float(reward)))
        history.append((observation, action))
        total += float(reward)
        observation = next_obs
        if done:
            break
    return Episode(str(episode_id), int(seed), tuple(steps), total, env_spec, agent_spec)
