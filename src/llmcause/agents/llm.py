"""Agents backed by a served model: ``--agent openai:MODEL@BASE_URL`` (an OpenAI-compatible chat endpoint).

At each step the model sees the episode so far as a transcript (each
observation and the action taken) and the current observation, and replies
with its next action; the first ``tool[argument]`` in the reply is the
action (else the reply's first line). Sampling is pinned (temperature 0, a
fixed seed), so the policy is deterministic: the probability it gives its
action is 1. Every call goes through the call layer of the command
(``--store`` caches it, so replays that share a prefix, and reruns, cost no
new calls).
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from typing import Any, Iterator

from ..io import DataError

AGENT_PROMPT = ("You are an agent solving a task with tools. Reply with exactly one action, written as "
                "tool[argument], and nothing else.\n\n{transcript}")
_ACTION = re.compile(r"[A-Za-z_]+\[[^\]\n]*\]")
_SESSION: list[Any] = []  # the ModelSession of the running command, if any


@contextmanager
def use_session(session) -> Iterator[None]:
    """Load ``openai:`` agents through this `llmcause.runs.cliopts.ModelSession` (its store and options)."""
    _SESSION.append(session)
    try:
        yield
    finally:
        _SESSION.pop()


def parse_action(reply: str) -> str:
    m = _ACTION.search(reply)
    if m:
        return m.group(0)
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


class ModelAgent:
    """An `Agent` whose action is a chat model's reply to the transcript of the episode."""

    def __init__(self, model, template: str = AGENT_PROMPT):
        self.model = model
        self.template = template

    def prompt(self, observation: str, history) -> str:
        lines = []
        for obs, action in history:
            lines += [f"Observation: {obs}", f"Action: {action}"]
        lines += [f"Observation: {observation}", "Action:"]
        return self.template.replace("{transcript}", "\n".join(lines))

    def act(self, observation: str, history, rng) -> tuple[str, float]:
        reply = self.model.generate([self.prompt(observation, history)], description="agent step")[0]
        if reply is None:
            raise DataError(f"agent {self.model.name}: no answer from the model after retries "
                            "(see --max-retries and --timeout)")
        return parse_action(reply), 1.0


def resolve_openai_agent(rest: str, kind: str) -> ModelAgent:
    if kind != "agent":
        raise DataError(f"openai:{rest} names a model, which can be an agent but not an environment")
    spec = "openai:" + rest
    if _SESSION:
        model = _SESSION[-1].load(spec, "--agent")
    else:
        from ..runs.models import ModelSpecError, load_model

        try:
            model = load_model(spec, params={"temperature": 0.0, "seed": 0})
        except ModelSpecError as exc:
            raise DataError(f"--agent {exc}") from None
    return ModelAgent(model)
