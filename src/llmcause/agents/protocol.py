"""What an agent and an environment must provide, and how they are named on the command line.

An environment is deterministic given its seed and the actions taken, so a
logged prefix of actions, replayed from the same seed, reproduces the state
(`replay` checks this on every replay). An agent returns its action and the
probability it gave that action; agents that can also say how likely any
action is (``distribution``) can be the target of off-policy evaluation.

Specs (command line and trace files): ``python:module:attr`` names a factory
called with no arguments (a class or a function); a bare name is a built-in
world (see `WORLDS`). Other schemes can be added with `register_scheme`
(e.g. ``openai:MODEL`` for an agent backed by a served model).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from ..io import DataError

History = Sequence[tuple[str, str]]  # the earlier (observation, action) pairs of this episode, oldest first


@runtime_checkable
class Environment(Protocol):
    """A task the agent acts in; deterministic given ``seed`` and the actions taken."""

    def reset(self, seed: int) -> str:
        """Start an episode; return the first observation."""

    def step(self, action: str) -> tuple[str, float, bool]:
        """Apply ``action``; return (observation, reward, done)."""

    def actions(self) -> list[str]:
        """The actions allowed now."""


@runtime_checkable
class Agent(Protocol):
    """A stochastic policy: all its randomness comes from ``rng``."""

    def act(self, observation: str, history: History, rng: np.random.Generator) -> tuple[str, float]:
        """Return the action and the probability the agent gave it."""


def action_distribution(agent: Any, observation: str, history: History) -> Mapping[str, float]:
    """The agent's probability for every action it might take now (agents with a ``distribution`` method)."""
    dist = getattr(agent, "distribution", None)
    if dist is None:
        raise DataError(f"agent {type(agent).__name__} has no distribution(observation, history) method, which "
                        "off-policy evaluation of a target policy needs")
    return dist(observation, history)


# --------------------------------------------------------------------------- specs

# name -> (environment factory, logging agent factory); filled by the world modules on import.
WORLDS: dict[str, tuple[Callable[[], Any], Callable[[], Any]]] = {}
AGENTS: dict[str, Callable[[], Any]] = {}  # further built-in agents (e.g. target policies of a world)
_SCHEMES: dict[str, Callable[[str, str], Any]] = {}


def register_scheme(scheme: str, resolver: Callable[[str, str], Any]) -> None:
    """Make ``scheme:REST`` specs resolvable: ``resolver(rest, kind)`` returns an agent or environment.

    ``kind`` is ``"env"`` or ``"agent"``; the resolver raises `DataError` for a spec it cannot serve.
    """
    _SCHEMES[scheme] = resolver


def _builtin_worlds() -> None:
    from . import simulate  # noqa: F401  (registers the tool-use world)
    from . import textworld_env  # noqa: F401  (registers TextWorld; the package itself loads when used)


def resolve_env(spec: str) -> Any:
    """An environment from its spec (``python:module:attr`` or a built-in world name)."""
    obj = _resolve(spec, "env")
    missing = [m for m in ("reset", "step", "actions") if not callable(getattr(obj, m, None))]
    if missing:
        raise DataError(f"env spec {spec!r}: the object has no {', '.join(missing)} method (an Environment needs "
                        "reset(seed), step(action) and actions())")
    return obj


def resolve_agent(spec: str) -> Any:
    """An agent from its spec (``python:module:attr``, a built-in world or agent name, or a registered scheme)."""
    obj = _resolve(spec, "agent")
    if not callable(getattr(obj, "act", None)):
        raise DataError(f"agent spec {spec!r}: the object has no act(observation, history, rng) method")
    return obj


def env_factory(spec: str) -> Callable[[], Any]:
    """A function returning a fresh environment for ``spec`` (checked once here)."""
    resolve_env(spec)
    return lambda: resolve_env(spec)


def _resolve(spec: str, kind: str) -> Any:
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"{kind} spec {spec!r}: empty")
    scheme, sep, rest = spec.partition(":")
    if sep and scheme == "openai" and scheme not in _SCHEMES:
        from .llm import resolve_openai_agent

        register_scheme("openai", resolve_openai_agent)
    if sep and scheme == "python":
        return _python_factory(rest, spec, kind)()
    if sep and scheme in _SCHEMES:
        return _SCHEMES[scheme](rest, kind)
    if sep:
        known = ", ".join(["python", *sorted(_SCHEMES)])
        raise DataError(f"unknown {kind} spec {spec!r}: scheme {scheme!r} is not one of {known}")
    _builtin_worlds()
    if spec in WORLDS:
        return WORLDS[spec][0 if kind == "env" else 1]()
    if kind == "agent" and spec in AGENTS:
        return AGENTS[spec]()
    names = sorted(WORLDS) + (sorted(AGENTS) if kind == "agent" else [])
    raise DataError(f"unknown {kind} spec {spec!r}: use python:module:attr or one of {', '.join(names)}")


def _python_factory(rest: str, spec: str, kind: str) -> Callable[[], Any]:
    module_name, sep, attr = rest.rpartition(":")
    if not sep or not module_name or not attr:
        raise DataError(f"{kind} spec {spec!r}: write python:module:attr (a factory called with no arguments)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(f"{kind} spec {spec!r}: cannot import {module_name!r} ({exc})") from None
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise DataError(f"{kind} spec {spec!r}: module {module_name!r} has no attribute {attr!r}")
        factory = getattr(factory, part)
    if not callable(factory):
        raise DataError(f"{kind} spec {spec!r}: {attr!r} is not callable (give a class or a factory function)")
    return factory
