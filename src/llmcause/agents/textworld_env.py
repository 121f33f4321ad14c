"""TextWorld as an environment for `llmcause agents` (optional extra: ``pip install llmcause[agents]``).

TextWorld (Côté et al. 2018) generates text adventures from a seed. Each seed
here is one game, made offline once per process with ``tw-make custom
--world-size W --nb-objects N --quest-length L --seed S`` into a temporary
folder; the game engine is deterministic given the game and the commands, so
replays reproduce. Reward: the game's score increments; success: the quest is
won. ``actions()`` are the game's admissible commands.

`NoisyWalkthroughAgent` follows the game's oracle walkthrough (from its
``EnvInfos``; the environment writes it into the first observation as a
"guide" line, since an agent sees only observations) and makes the mistakes of
an inattentive player: a random direction instead of the next command, "look"
or "inventory" detours, or the next-but-one command. After a wrong direction it
usually walks back.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..io import DataError
from .protocol import WORLDS

DIRECTIONS = ("north", "south", "east", "west")
_OPPOSITE = {"north": "south", "south": "north", "east": "west", "west": "east"}
_GUIDE = re.compile(r"^guide: (.*)$", re.M)


def _textworld():
    try:
        import textworld
    except ImportError:
        raise DataError("the textworld world needs the optional package textworld: pip install 'llmcause[agents]'") \
            from None
    return textworld


def _tw_make() -> str:
    near = Path(sys.executable).parent / "tw-make"
    found = str(near) if near.exists() else shutil.which("tw-make")
    if not found:
        raise DataError("tw-make (installed with textworld) was not found next to Python or on PATH")
    return found


class TextWorldEnv:
    """A TextWorld game per seed (see the module docstring)."""

    _games: dict = {}  # (options, seed) -> game file, shared by the instances of a process
    _folder: str | None = None

    def __init__(self, world_size: int = 5, nb_objects: int = 10, quest_length: int = 5, max_steps: int = 30):
        self.options = (int(world_size), int(nb_objects), int(quest_length))
        self.max_steps = int(max_steps)
        self._env = None
        self._env_seed = None

    def _game(self, seed: int) -> str:
        key = (*self.options, int(seed))
        if key not in TextWorldEnv._games:
            _textworld()
            if TextWorldEnv._folder is None:
                TextWorldEnv._folder = tempfile.mkdtemp(prefix="llmcause-textworld-")
                atexit.register(shutil.rmtree, TextWorldEnv._folder, True)  # the games live as long as the process
            path = os.path.join(TextWorldEnv._folder, "game_{}_{}_{}_{}.z8".format(*key))
            w, n, q = self.options
            cmd = [_tw_make(), "custom", "--world-size", str(w), "--nb-objects", str(n), "--quest-length", str(q),
                   "--seed", str(int(seed)), "--output", path, "--silent", "-f"]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0 or not os.path.exists(path):
                raise DataError(f"tw-make failed for seed {seed}: {(done.stderr or done.stdout).strip()[-200:]}")
            TextWorldEnv._games[key] = path
        return TextWorldEnv._games[key]

    def reset(self, seed: int) -> str:
        textworld = _textworld()
        if self._env is None or self._env_seed != seed:
            if self._env is not None:
                self._env.close()
            infos = textworld.EnvInfos(admissible_commands=True, extras=["walkthrough"], won=True, lost=True)
            self._env = textworld.start(self._game(seed), request_infos=infos)
            self._env_seed = seed
        state = self._env.reset()
        self._state, self.score, self.t = state, 0, 0
        guide = "; ".join(state["extra.walkthrough"])
        text = _body(state.feedback)
        start = text.find("-= ")  # the banner's ASCII art ends where the first room is named
        return f"{text[start:] if start > 0 else text}\nguide: {guide}"

    def step(self, action: str) -> tuple[str, float, bool]:
        state, score, done = self._env.step(action)
        self.t += 1
        reward = float(score - self.score)
        self._state, self.score = state, score
        if self.t >= self.max_steps and not done:
            done = True
        if done and not state.won:
            reward = min(reward, 0.0)
        return _body(state.feedback), reward, bool(done)

    def actions(self) -> list[str]:
        return list(self._state.admissible_commands or [])


def _body(feedback: str) -> str:
    # the player's text without blank runs and trailing prompt padding
    return "\n".join(" ".join(ln.split()) for ln in feedback.splitlines() if ln.strip())


class NoisyWalkthroughAgent:
    """Follows the guide with probability ``1 - noise``; its mistakes are listed in the module docstring."""

    def __init__(self, noise: float = 0.15, walk_back: float = 0.8):
        self.noise, self.walk_back = float(noise), float(walk_back)

    def distribution(self, observation: str, history) -> dict[str, float]:
        first = history[0][0] if history else observation
        m = _GUIDE.search(first)
        if m is None:
            raise ValueError("no guide line in the first observation (a TextWorldEnv observation)")
        guide = [c.strip() for c in m.group(1).split(";") if c.strip()]
        done, astray = self._progress(guide, history, observation)
        nxt = guide[done] if done < len(guide) else "look"
        out: dict[str, float] = {}
        if astray:  # walked off the route: usually walks back
            _add(out, f"go {_OPPOSITE.get(astray[-1], 'north')}", self.walk_back)
            _add(out, nxt, 1 - self.walk_back)
            return out
        _add(out, nxt, 1 - self.noise)
        for d in DIRECTIONS:
            _add(out, f"go {d}", self.noise * 0.5 / len(DIRECTIONS))
        _add(out, "look", self.noise * 0.2)
        _add(out, "inventory", self.noise * 0.1)
        _add(out, guide[done + 1] if done + 1 < len(guide) else "look", self.noise * 0.2)  # skips a command
        return out

    @staticmethod
    def _progress(guide: list[str], history, observation: str) -> tuple[int, list[str]]:
        """Guide commands done in order, and the moves off the route not yet walked back."""
        results = [o for o, _ in history[1:]] + [observation]  # what each action led to
        done, astray = 0, []
        for (_, a), seen in zip(history, results):
            moved = a.startswith("go ") and "can't go that way" not in seen
            if astray and moved and a == f"go {_OPPOSITE.get(astray[-1], '')}":
                astray.pop()
            elif not astray and done < len(guide) and a == guide[done]:
                done += 1
            elif moved:
                astray.append(a[3:])
        return done, astray

    def act(self, observation: str, history, rng: np.random.Generator) -> tuple[str, float]:
        dist = self.distribution(observation, history)
        actions = sorted(dist)
        probs = np.array([dist[a] for a in actions])
        i = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
        i = min(i, len(actions) - 1)
        return actions[i], float(probs[i] / probs.sum())


def _add(dist: dict, action: str, p: float) -> None:
    dist[action] = dist.get(action, 0.0) + p


WORLDS["textworld"] = (TextWorldEnv, NoisyWalkthroughAgent)
