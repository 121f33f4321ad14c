"""A tool-use world with known truth: look a fact up, compute with it, answer.

The task: "what is the population of PLACE times K?". The agent has a search
tool (asynchronous: a request is answered on the next step; flaky: a call
times out with probability ``flaky``; rate-limited: ``quota`` calls per
episode, time-outs included), a calculator and an answer action, and
``max_steps`` steps. Each place has a namesake (Paris, France and Paris,
Texas), which is what makes a wrong search argument tempting.

`ScriptedToolAgent` is a stochastic agent with the error modes of real ones:
searching the namesake (wrong argument), calling the calculator before there
is anything to compute (wrong tool), answering or computing before the search
result arrives, ignoring the result (answering the raw fact, or computing
with the namesake's value after seeing the mismatch), multiplying by the
wrong number. Some errors are recoverable (the agent can notice a mismatch
and search again), some are not (once the rate limit is spent on a namesake
and a time-out, the fact is out of reach and only memory is left).

Truth is computed by the world's own logic, exactly: given the seed (which
fixes the task and which search calls time out), the success probability of
any state under the agent's policy is a finite sum over the agent's action
distribution (`success_probability`, memoised on the world state and the
agent's belief). The effect of step k is

    E[success | do(a_k = a'), a' ~ π(·|s_k, a' ≠ a_k)] − E[success | a_k kept],

the rest of the episode drawn from the agent's policy in both (when π puts
all its mass on a_k, a' is uniform over the other allowed actions), and the
decisive step of a failed episode is the earliest step whose effect exceeds
`DECISIVE_THRESHOLD`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .protocol import AGENTS, WORLDS

DECISIVE_THRESHOLD = 0.1  # an effect on the success probability above this makes a step decisive

# Places, their namesakes and populations (the world's facts).
PLACES = (
    ("Springfield, Illinois", "Springfield, Missouri", 114394, 169176),
    ("Portland, Oregon", "Portland, Maine", 652503, 68408),
    ("Cambridge, England", "Cambridge, Massachusetts", 145700, 118403),
    ("Paris, France", "Paris, Texas", 2102650, 24476),
    ("Victoria, Canada", "Victoria, Seychelles", 91867, 26450),
    ("Santiago, Chile", "Santiago de Compostela", 5614000, 98179),
)
FACTS = {name: value for a, b, va, vb in PLACES for name, value in ((a, va), (b, vb))}
MULTIPLIERS = tuple(range(2, 10))

_TASK = re.compile(r"^task: what is the population of (.+) times (\d+)\? tools: (.+)$")
_RESULT = re.compile(r"search result: (.+?) = (\d+)")
_CALC = re.compile(r"^calc\[(-?\d+)\*(-?\d+)\]$")
_ACTION = re.compile(r"^(\w+)(?:\[(.*)\])?$")


def _guess(place: str) -> int:
    """The number an agent without the fact makes up: wrong, but the same every time."""
    return 10_000 + 997 * sum(map(ord, place)) % 900_000


@dataclass(frozen=True)
class Config:
    """What a seed fixes: the task and which search calls time out."""

    place: int
    swap: bool
    k: int
    timeouts: tuple[bool, ...]


class ToolUseWorld:
    """The environment (see the module docstring); deterministic given the seed and the actions.

    ``search`` is ``"on"``, ``"off"`` (not offered; calls answer "not available") or ``"replay"`` (calls get
    the outputs given to `set_tool`, in order: the mediator fixed at another run's value).
    """

    def __init__(self, flaky: float = 0.4, quota: int = 2, max_steps: int = 8, search: str = "on"):
        self.flaky, self.quota, self.max_steps = float(flaky), int(quota), int(max_steps)
        self.search_mode = search
        self._replayed: list[tuple[str, str | None]] = []
        self._config: Config | None = None

    # ---- the seed
    def config_of(self, seed: int) -> Config:
        rng = np.random.default_rng(seed)
        place = int(rng.integers(len(PLACES)))
        swap = bool(rng.random() < 0.5)
        k = int(MULTIPLIERS[int(rng.integers(len(MULTIPLIERS)))])
        timeouts = tuple(bool(x) for x in rng.random(self.quota) < self.flaky)
        return Config(place, swap, k, timeouts)

    def configurations(self):
        """Every configuration a seed can give, with its probability (for exact population truths)."""
        for place, swap, k, timeouts in itertools.product(range(len(PLACES)), (False, True), MULTIPLIERS,
                                                          itertools.product((False, True), repeat=self.quota)):
            p = (1 / len(PLACES)) * 0.5 * (1 / len(MULTIPLIERS))
            for t in timeouts:
                p *= self.flaky if t else 1 - self.flaky
            yield Config(place, swap, k, tuple(timeouts)), p

    # ---- the Environment protocol
    def reset(self, seed: int) -> str:
        return self.start(self.config_of(seed))

    def start(self, config: Config) -> str:
        self._config = config
        a, b, _, _ = PLACES[config.place]
        self.target, self.namesake = (b, a) if config.swap else (a, b)
        self.k = config.k
        self.t = self.calls = 0
        self.pending: tuple[str, str] | None = None  # (output due next step, place) of a search in flight
        self.done = False
        self.seen: tuple[int, ...] = ()  # numbers the tools returned
        self.outputs: list[tuple[str, str | None]] = []  # the search tool's outputs: (immediate, delayed)
        tools = "search, calc, answer" if self.search_mode != "off" else "calc, answer"
        return f"task: what is the population of {self.target} times {self.k}? tools: {tools}"

    def actions(self) -> list[str]:
        if self.done:
            return []
        out = []
        if self.search_mode != "off":
            out += [f"search[{self.target}]", f"search[{self.namesake}]"]
        out.append("wait")
        numbers = sorted(set(self.seen) | {_guess(self.target)})
        out += [f"calc[{v}*{self.k}]" for v in numbers]
        out += [f"answer[{v}]" for v in numbers]
        return out

    def step(self, action: str) -> tuple[str, float, bool]:
        if self.done:
            raise RuntimeError("step() after the episode ended; call reset(seed)")
        self.t += 1
        due, self.pending = self.pending, None
        m = _ACTION.match(action.strip())
        name, arg = (m.group(1), m.group(2)) if m else ("", None)
        reward, obs = 0.0, ""
        if name == "answer":
            self.done = True
            correct = arg is not None and arg.strip().lstrip("-").isdigit() and int(arg) == self.answer
            return ("correct" if correct else "wrong"), (1.0 if correct else 0.0), True
        if name == "search" and arg:
            obs = self._search(arg.strip())
        elif name == "calc" and arg is not None:
            c = _CALC.match(action.strip())
            if c:
                value = int(c.group(1)) * int(c.group(2))
                self.seen = (*self.seen, value)
                obs = f"calc: {value}"
            else:
                obs = "calc: syntax error"
        elif name == "wait" and arg is None:
            obs = "waiting"
        else:
            obs = f"unknown action {action!r}"
        if due is not None:
            obs += " | " + due[0]
            if due[1] in FACTS:
                self.seen = (*self.seen, FACTS[due[1]])
        if self.t >= self.max_steps:
            self.done = True
            return obs + " | out of time", reward, True
        return obs, reward, False

    def _search(self, place: str) -> str:
        if self.search_mode == "off":
            self.outputs.append(("search: not available", None))
            return "search: not available"
        if self.search_mode == "replay":
            j = len(self.outputs)
            now, later = self._replayed[j] if j < len(self._replayed) else ("search: not available", None)
            self.outputs.append((now, later))
            if later is not None:
                m = _RESULT.search(later)
                self.pending = (later, m.group(1) if m else "")
            return now
        if self.calls >= self.quota:
            return "search: quota exceeded"
        i, self.calls = self.calls, self.calls + 1
        if self._config.timeouts[i]:
            self.outputs.append(("search: error (timeout)", None))
            return "search: error (timeout)"
        later = f"search result: {place} = {FACTS[place]}" if place in FACTS else f"search result: no page for {place}"
        self.pending = (later, place)
        self.outputs.append(("search: request sent", later))
        return "search: request sent"

    # ---- mediation: switch the tool, read its outputs
    def set_tool(self, tool: str, mode: str, outputs: Sequence[tuple[str, str | None]] | None = None) -> None:
        """Turn the ``search`` tool on, off, or to replay given outputs (call before `reset`)."""
        if tool != "search":
            raise ValueError(f"this world can switch only the search tool, not {tool!r}")
        if mode not in ("on", "off", "replay"):
            raise ValueError(f"tool mode {mode!r}: use on, off or replay")
        self.search_mode = mode
        self._replayed = list(outputs or [])

    def tool_outputs(self, tool: str) -> list[tuple[str, str | None]]:
        return list(self.outputs)

    # ---- exact truth
    @property
    def answer(self) -> int:
        return FACTS[self.target] * self.k

    def state_key(self) -> tuple:
        return (self.t, self.calls, self.pending, self.done, self.seen, len(self.outputs))

    def clone(self) -> "ToolUseWorld":
        other = object.__new__(ToolUseWorld)
        other.__dict__.update(self.__dict__)
        other.outputs = list(self.outputs)
        return other


class ScriptedToolAgent:
    """A stochastic tool-using agent with realistic errors (see the module docstring).

    The rates are the probabilities of its errors where they can happen; `distribution` gives the full
    action distribution, `act` draws from it.
    """

    def __init__(self, namesake: float = 0.6, premature: float = 0.05, ignore: float = 0.05,
                 wrong_arg: float = 0.06, wrong_tool: float = 0.03, notice: float = 0.5, recall: float = 0.3,
                 detour: float = 0.04):
        self.namesake, self.premature, self.ignore, self.detour = namesake, premature, ignore, detour
        self.wrong_arg, self.wrong_tool, self.notice, self.recall = wrong_arg, wrong_tool, notice, recall

    def act(self, observation: str, history, rng: np.random.Generator) -> tuple[str, float]:
        dist = self.distribution(observation, history)
        actions = list(dist)
        probs = np.fromiter(dist.values(), float)
        i = int(np.searchsorted(np.cumsum(probs), rng.random() * probs.sum(), side="right"))
        i = min(i, len(actions) - 1)
        return actions[i], float(probs[i] / probs.sum())

    def belief(self, observation: str, history) -> tuple:
        """What the agent's choice depends on, read from what it saw and did."""
        first = history[0][0] if history else observation
        m = _TASK.match(first)
        if m is None:
            raise ValueError(f"not a tool-use task: {first[:60]!r}")
        target, k, tools = m.group(1), int(m.group(2)), m.group(3)
        seen_obs = [o for o, _ in history] + [observation]
        values = {}
        for o in seen_obs:
            for place, v in _RESULT.findall(o):
                values[place] = int(v)
        last_calc = None
        for i, (_, a) in enumerate(history):
            c = _CALC.match(a)
            result = seen_obs[i + 1]
            if c and result.startswith("calc: ") and result[6:].split(" |")[0].lstrip("-").isdigit():
                last_calc = (int(c.group(1)), int(c.group(2)), int(result[6:].split(" |")[0]))
        pending = bool(history) and history[-1][1].startswith("search[") and observation.startswith("search: request")
        blocked = any("not available" in o or "quota exceeded" in o for o in seen_obs) or "search" not in tools
        timeouts = sum("timeout" in o for o in seen_obs)
        return target, k, tuple(sorted(values.items())), last_calc, pending, blocked, timeouts

    def distribution(self, observation: str, history) -> dict[str, float]:
        return self.distribution_given(self.belief(observation, history))

    def distribution_given(self, belief: tuple) -> dict[str, float]:
        """The action distribution from the belief (see `belief`)."""
        target, k, values, last_calc, pending, blocked, timeouts = belief
        values = dict(values)
        twin = next((b if a == target else a) for a, b, _, _ in PLACES if target in (a, b))
        tv, nv, guess = values.get(target), values.get(twin), _guess(target)
        choices = _norm(self._choices(target, twin, k, tv, nv, guess, last_calc, pending, blocked))
        out = {a: (1 - self.detour) * p for a, p in choices.items()}
        out["wait"] = out.get("wait", 0.0) + self.detour  # a harmless detour (re-reading, thinking aloud)
        return out

    def _choices(self, target, twin, k, tv, nv, guess, last_calc, pending, blocked) -> dict[str, float]:
        if last_calc is not None:
            a, m, c = last_calc
            if tv is not None and a == tv and m == k:
                return {f"answer[{c}]": 1 - self.ignore, f"answer[{tv}]": self.ignore}
            if tv is not None and a == tv:  # multiplied by the wrong number
                return {f"answer[{c}]": 0.6, f"calc[{tv}*{k}]": 0.4}
            if tv is not None:  # computed too early; the fact has arrived since
                return {f"answer[{c}]": 0.7, f"calc[{tv}*{k}]": 0.3}
            if nv is not None and not blocked:
                return {f"answer[{c}]": 0.8, f"search[{target}]": 0.2}
            return {f"answer[{c}]": 1.0}
        if pending:  # the result comes with the next step, whatever the action
            return {"wait": 1 - 2 * self.premature, f"answer[{guess}]": self.premature,
                    f"calc[{guess}*{k}]": self.premature}
        if tv is not None:
            return {f"calc[{tv}*{k}]": 1 - self.wrong_arg - self.ignore, f"calc[{tv}*{k + 1}]": self.wrong_arg,
                    f"answer[{tv}]": self.ignore}
        if nv is not None:  # looked up the namesake
            if not blocked:
                return {f"search[{target}]": self.notice, f"calc[{nv}*{k}]": 0.9 * (1 - self.notice),
                        f"answer[{nv}]": 0.1 * (1 - self.notice)}
            return {f"calc[{nv}*{k}]": 0.8, f"answer[{guess}]": 0.2}
        if not blocked:
            # confidently wrong: the famous namesake (first of its pair) pulls hard when the target is obscure
            namesake = self.namesake if target != _famous(target) else self.namesake / 5
            rest = 1 - namesake - self.wrong_tool - 0.03
            return {f"search[{target}]": rest, f"search[{twin}]": namesake, f"calc[{guess}*{k}]": self.wrong_tool,
                    f"answer[{guess}]": 0.03}
        # no search: work from memory
        return {f"calc[{FACTS[target]}*{k}]": self.recall, f"calc[{FACTS[twin]}*{k}]": 0.3,
                f"calc[{guess}*{k}]": 1 - self.recall - 0.3}


def _famous(place: str) -> str:
    return next(a for a, b, _, _ in PLACES if place in (a, b))


def _norm(d: Mapping[str, float]) -> dict[str, float]:
    d = {a: float(p) for a, p in d.items() if p > 0}
    s = sum(d.values())
    return {a: p / s for a, p in d.items()}


def careful_agent() -> ScriptedToolAgent:
    """The same agent under a new prompt: checks the place and waits for results more often."""
    return ScriptedToolAgent(namesake=0.15, premature=0.03, ignore=0.03, wrong_arg=0.03, notice=0.95)


WORLDS["tool_use"] = (ToolUseWorld, ScriptedToolAgent)
AGENTS["tool_use_careful"] = careful_agent


# --------------------------------------------------------------------------- exact truth


def success_probability(env: ToolUseWorld, agent: ScriptedToolAgent, observation: str, history: list,
                        memo: dict | None = None) -> float:
    """P(success) from this state, the rest drawn from the agent's policy (exact, by recursion)."""
    memo = {} if memo is None else memo
    belief = agent.belief(observation, history)
    key = (env.state_key(), belief)
    if key in memo:
        return memo[key]
    total = 0.0
    for action, p in agent.distribution_given(belief).items():
        total += p * action_value(env, agent, observation, history, action, memo)
    memo[key] = total
    return total


def action_value(env, agent, observation, history, action, memo) -> float:
    """P(success) after taking ``action`` now and following the policy afterwards."""
    nxt = env.clone()
    obs, reward, done = nxt.step(action)
    if done:
        return float(reward > 0)
    return success_probability(nxt, agent, obs, [*history, (observation, action)], memo)


def step_effects(env: ToolUseWorld, agent: ScriptedToolAgent, episode) -> list[float]:
    """The true effect of every step of a logged episode (see the module docstring)."""
    effects = []
    for k in range(len(episode.steps)):
        obs = env.reset(episode.seed)
        history = []
        for s in episode.steps[:k]:
            history.append((obs, s.action))
            obs, _, _ = env.step(s.action)
        memo: dict = {}
        logged = episode.steps[k].action
        dist = agent.distribution(obs, history)
        others = {a: p for a, p in dist.items() if a != logged}
        if sum(others.values()) < 1e-12:
            others = {a: 1.0 for a in env.actions() if a != logged}
        z = sum(others.values())
        alt = sum(p / z * action_value(env, agent, obs, history, a, memo) for a, p in others.items())
        effects.append(alt - action_value(env, agent, obs, history, logged, memo))
    return effects


def decisive_step(effects: Sequence[float], threshold: float = DECISIVE_THRESHOLD) -> int | None:
    """The earliest step whose effect exceeds ``threshold`` (None if none does)."""
    return next((k for k, e in enumerate(effects) if e > threshold), None)


def population_success(agent: ScriptedToolAgent, world: ToolUseWorld | None = None, mode: str = "on",
                       replay_off: bool = False) -> float:
    """Exact success probability of ``agent`` over the seed distribution (every configuration, weighted).

    ``mode`` switches the search tool; ``replay_off=True`` gives P(Y(1, M(0))): search offered, its outputs
    those of the run with search off (which, search being off, never returns anything).
    """
    world = world or ToolUseWorld()
    key = (tuple(sorted(vars(agent).items())), type(agent), world.flaky, world.quota, world.max_steps, mode,
           replay_off)
    if key not in _POPULATION:
        _POPULATION[key] = _population_success(agent, world, mode, replay_off)
    return _POPULATION[key]


_POPULATION: dict = {}  # exact values already computed in this process


def _population_success(agent, world, mode, replay_off) -> float:
    total = 0.0
    for config, p in world.configurations():
        env = ToolUseWorld(world.flaky, world.quota, world.max_steps)
        if replay_off:
            # With search off every call answers "not available", whatever the agent does, so M(0) is that
            # answer for every call; replaying an empty list gives it to every call.
            env.set_tool("search", "replay", [])
        else:
            env.set_tool("search", mode)
        obs = env.start(config)
        total += p * success_probability(env, agent, obs, [])
    return total


# --------------------------------------------------------------------------- episodes


@dataclass(frozen=True)
class SimulatedTraces:
    """Logged episodes of a world, with the true step effects and decisive step of each failed one."""

    episodes: list
    effects: dict  # episode_id -> list of true step effects (failed episodes only)
    decisive: dict  # episode_id -> decisive step (None for successes)


def simulate_tool_use(n_episodes: int, seed: int = 0, agent: Any = None, world: ToolUseWorld | None = None,
                      truth: bool = True, env_spec: str | None = "tool_use",
                      agent_spec: str | None = "tool_use") -> SimulatedTraces:
    """Run ``n_episodes`` of the tool-use world under ``agent`` (the scripted agent by default)."""
    from .replay import run_episode

    agent = agent or ScriptedToolAgent()
    world = world or ToolUseWorld()
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=n_episodes)
    episodes, effects, decisive = [], {}, {}
    for i, s in enumerate(seeds):
        ep = run_episode(world, agent, int(s), np.random.default_rng([seed, i, 1]), episode_id=f"e{i}",
                         env_spec=env_spec, agent_spec=agent_spec)
        episodes.append(ep)
        if truth:
            if ep.success:
                decisive[ep.episode_id] = None
            else:
                eff = step_effects(ToolUseWorld(world.flaky, world.quota, world.max_steps), agent, ep)
                effects[ep.episode_id] = eff
                decisive[ep.episode_id] = decisive_step(eff)
    return SimulatedTraces(episodes, effects, decisive)
