"""Plug-in agents and environments for the agents tests, named as python:agents_plugins:NAME."""

from __future__ import annotations

import random


class CoinEnv:
    """Guess a hidden coin; the coin is fixed by the seed (deterministic)."""

    def reset(self, seed: int) -> str:
        self.coin = "heads" if seed % 2 else "tails"
        self.t = 0
        return "guess the coin"

    def step(self, action: str):
        self.t += 1
        if action == "peek":
            return f"it is {self.coin}", 0.0, False
        return "over", float(action == self.coin), True

    def actions(self):
        return ["peek", "heads", "tails"]


class ShakyEnv(CoinEnv):
    """Like CoinEnv, but peeking reads a coin that is re-tossed with the global random module."""

    def step(self, action: str):
        if action == "peek":
            self.t += 1
            return f"it is {random.choice(['heads', 'tails'])}", 0.0, False
        return super().step(action)


class PeekAgent:
    def act(self, observation, history, rng):
        if not history:
            return ("peek", 0.8) if rng.random() < 0.8 else ("heads", 0.2)
        return observation.split()[-1], 1.0


class NotAnAgent:
    pass
