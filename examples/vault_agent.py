"""A small environment and agent of your own, plugged into `llmcause agents` (see README, "agents").

    PYTHONPATH=examples llmcause agents simulate --env python:vault_agent:Vault \
        --agent python:vault_agent:HastyAgent -n 200 --out vault.jsonl

The vault's two-digit code is fixed by the seed (the environment is deterministic given its seed and the
actions). The agent should read the manual, then type the code; it sometimes guesses instead, and
sometimes mistypes the last digit.
"""

from __future__ import annotations

import numpy as np


class Vault:
    def reset(self, seed: int) -> str:
        self.code = int(np.random.default_rng(seed).integers(10, 100))
        self.steps = 0
        return "a locked vault; a manual lies on the desk"

    def step(self, action: str) -> tuple[str, float, bool]:
        self.steps += 1
        if action == "read manual":
            return f"the manual says the code is {self.code}", 0.0, self.steps >= 4
        if action.startswith("type "):
            ok = action == f"type {self.code}"
            return ("the vault opens" if ok else "alarm"), float(ok), True
        return "nothing happens", 0.0, self.steps >= 4

    def actions(self) -> list[str]:
        return ["read manual", *[f"type {c}" for c in range(10, 100)]]


class HastyAgent:
    def distribution(self, observation: str, history) -> dict[str, float]:
        if observation.startswith("the manual says the code is "):
            code = int(observation.rsplit(" ", 1)[1])
            typo = code + 1 if code < 99 else code - 1
            return {f"type {code}": 0.9, f"type {typo}": 0.1}
        guesses = {f"type {c}": 0.3 / 90 for c in range(10, 100)}
        return {"read manual": 0.7, **guesses}

    def act(self, observation: str, history, rng: np.random.Generator) -> tuple[str, float]:
        dist = self.distribution(observation, history)
        actions, probs = list(dist), np.array(list(dist.values()))
        i = int(rng.choice(len(actions), p=probs / probs.sum()))
        return actions[i], float(probs[i])


class CarefulAgent(HastyAgent):
    """The new prompt: always reads first, double-checks what it types."""

    def distribution(self, observation: str, history) -> dict[str, float]:
        if observation.startswith("the manual says the code is "):
            code = int(observation.rsplit(" ", 1)[1])
            typo = code + 1 if code < 99 else code - 1
            return {f"type {code}": 0.98, f"type {typo}": 0.02}
        guesses = {f"type {c}": 0.05 / 90 for c in range(10, 100)}
        return {"read manual": 0.95, **guesses}
