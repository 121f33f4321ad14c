"""Agent trajectories as JSONL: one episode per line; reader, validator and writer.

Each line: ``episode_id``, ``seed`` (the environment seed), ``steps`` (a list
of ``{"observation", "action", "prob", "reward"?, "step"?}``, where ``prob``
is the logging policy's probability of the action and ``step``, when given,
must count 0, 1, 2, ...), an outcome (``success`` 0/1 or ``return``; success
means a positive return), and optionally the ``env`` and ``agent`` specs.
Errors name the file, the line and the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..io import DataError, write_text_atomic


@dataclass(frozen=True)
class Step:
    """One logged decision: what the agent saw, what it did, how likely that was under the logging policy."""

    observation: str
    action: str
    prob: float
    reward: float = 0.0


@dataclass(frozen=True)
class Episode:
    """A logged trajectory and its outcome."""

    episode_id: str
    seed: int
    steps: tuple[Step, ...]
    total_return: float
    env: str | None = None
    agent: str | None = None
    line: int = 0
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def success(self) -> bool:
        return self.total_return > 0

    @property
    def history(self) -> list[tuple[str, str]]:
        return [(s.observation, s.action) for s in self.steps]

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"episode_id": self.episode_id, "seed": self.seed,
                               "steps": [{"observation": s.observation, "action": s.action, "prob": s.prob,
                                          "reward": s.reward} for s in self.steps],
                               "success": int(self.success), "return": self.total_return}
        if self.env is not None:
            doc["env"] = self.env
        if self.agent is not None:
            doc["agent"] = self.agent
        return doc


@dataclass(frozen=True)
class Traces:
    """The episodes of one file, and where they came from."""

    episodes: tuple[Episode, ...]
    source: str

    def __len__(self) -> int:
        return len(self.episodes)

    def __iter__(self):
        return iter(self.episodes)

    def where(self, episode: Episode) -> str:
        return f"{self.source}: line {episode.line} (episode {episode.episode_id!r})"


def read_traces(path: str | Path) -> Traces:
    """Read and validate a trajectory JSONL file (errors name file, line and field)."""
    path = Path(path)
    src = str(path)
    if not path.exists():
        raise DataError(f"{src}: no such file")
    if path.is_dir():
        raise DataError(f"{src}: is a directory, not a trajectory file")
    episodes: list[Episode] = []
    seen: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{src}: not UTF-8 text (a trajectory file is JSONL, one episode per line)") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{src}: line {number}"
        try:
            doc = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        episode = parse_episode(doc, where, number)
        if episode.episode_id in seen:
            raise DataError(f"{where}: field 'episode_id' {episode.episode_id!r} repeats line "
                            f"{seen[episode.episode_id]}")
        seen[episode.episode_id] = number
        episodes.append(episode)
    if not episodes:
        raise DataError(f"{src}: no episodes (a trajectory file is JSONL, one episode per line)")
    return Traces(tuple(episodes), src)


def parse_episode(doc: Any, where: str, line: int = 0) -> Episode:
    """One episode from its JSON object; ``where`` prefixes every error."""
    if not isinstance(doc, dict):
        raise DataError(f"{where}: an episode is a JSON object, got {type(doc).__name__}")
    for key in ("episode_id", "seed", "steps"):
        if key not in doc:
            raise DataError(f"{where}: missing field {key!r}")
    eid = doc["episode_id"]
    if isinstance(eid, bool) or not isinstance(eid, (str, int)) or str(eid) == "":
        raise DataError(f"{where}: field 'episode_id' must be a non-empty string or integer, got {eid!r}")
    seed = doc["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"{where}: field 'seed' must be a non-negative integer, got {seed!r}")
    steps_doc = doc["steps"]
    if not isinstance(steps_doc, list) or not steps_doc:
        raise DataError(f"{where}: field 'steps' must be a non-empty list")
    steps = tuple(_parse_step(s, i, where) for i, s in enumerate(steps_doc))
    total = _outcome(doc, where, steps)
    specs = {}
    for key in ("env", "agent"):
        value = doc.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise DataError(f"{where}: field {key!r} must be a spec string (python:module:attr or a world name)")
        specs[key] = value
    extra = {k: v for k, v in doc.items() if k not in {"episode_id", "seed", "steps", "success", "return", "env",
                                                      "agent"}}
    return Episode(str(eid), int(seed), steps, total, specs["env"], specs["agent"], line, extra)


def _parse_step(s: Any, i: int, where: str) -> Step:
    at = f"{where}: steps[{i}]"
    if not isinstance(s, dict):
        raise DataError(f"{at}: a step is a JSON object")
    if "step" in s and s["step"] != i:
        raise DataError(f"{at}: field 'step' is {s['step']!r} where {i} was expected (steps out of order)")
    for key in ("observation", "action"):
        if not isinstance(s.get(key), str):
            raise DataError(f"{at}: field {key!r} must be a string" + ("" if key in s else " (missing)"))
    if "prob" not in s:
        raise DataError(f"{at}: missing field 'prob' (the logging policy's probability of the action)")
    prob = s["prob"]
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not math.isfinite(prob):
        raise DataError(f"{at}: field 'prob' must be a number, got {prob!r}")
    if not 0 < prob <= 1:
        raise DataError(f"{at}: field 'prob' is {prob!r}; the probability of an action that was taken must lie in "
                        "(0, 1]")
    reward = s.get("reward", 0.0)
    if reward is None:
        reward = 0.0
    if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not math.isfinite(reward):
        raise DataError(f"{at}: field 'reward' must be a finite number, got {reward!r}")
    return Step(s["observation"], s["action"], float(prob), float(reward))


def _outcome(doc: dict, where: str, steps: Sequence[Step]) -> float:
    has_s, has_r = doc.get("success") is not None, doc.get("return") is not None
    if not has_s and not has_r:
        raise DataError(f"{where}: the episode has no outcome (give field 'success' 0/1 or 'return')")
    total = None
    if has_r:
        r = doc["return"]
        if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
            raise DataError(f"{where}: field 'return' must be a finite number, got {r!r}")
        total = float(r)
    if has_s:
        s = doc["success"]
        if s not in (0, 1) or isinstance(s, float) and not float(s).is_integer():
            raise DataError(f"{where}: field 'success' must be 0 or 1 (or true/false), got {s!r}")
        if total is None:
            total = float(s)
        elif bool(s) != (total > 0):
            raise DataError(f"{where}: field 'success' {s!r} disagrees with 'return' {total!r} (success means a "
                            "positive return)")
    return float(total)


def write_traces(path: str | Path, episodes: Iterable[Episode]) -> None:
    """Write episodes as JSONL, all at once (temporary file, then rename)."""
    write_text_atomic(path, "".join(json.dumps(e.to_json()) + "\n" for e in episodes))
