"""`llmcause agents ...`: simulate trajectories, attribute failures, mediate a tool, value a new policy."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from typing_extensions import Annotated

from ..clikit import JsonOption, LevelOption, ReportOption, SeedOption, data_errors, emit
from ..io import DataError, check_output_path, json_lines, write_text_atomic
from ..runs.cliopts import ApiKeyEnvOption, ConcurrencyOption, MaxRetriesOption, MaxTokensOption, RpmOption, \
    StoreOption, TimeoutOption, TpmOption

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Agents: which step made a failed episode fail (counterfactual replay), what a tool is "
                       "worth directly and through its output, and what a new policy would achieve, from "
                       "logged trajectories.")

Traces = Annotated[Path, typer.Argument(help="Trajectory JSONL: one episode per line (episode_id, seed, steps, "
                                             "success or return, optional env and agent specs).")]
EnvOpt = Annotated[Optional[str], typer.Option("--env", help="Environment: python:module:attr (a factory called "
                                                             "with no arguments) or a built-in world name.")]
AgentOpt = Annotated[Optional[str], typer.Option("--agent", help="Agent: python:module:attr, a built-in name, or "
                                                                 "openai:MODEL@BASE_URL (a served chat model).")]


def _same_file(a: Path | None, b: Path | None) -> bool:
    if a is None or b is None:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _check_out(path: Path | None, option: str, *inputs: Path | None) -> None:
    check_output_path(path, option)
    for i in inputs:
        if _same_file(path, i):
            raise DataError(f"{option} {path}: is an input file; write the output elsewhere")


def _resolvers(traces, env: str | None, agent: str | None):
    """Functions giving the environment and agent of an episode (command-line specs win over the file's)."""
    from .protocol import resolve_agent, resolve_env

    cache: dict[tuple[str, str], Any] = {}

    def spec_of(ep, kind: str, given: str | None) -> str:
        spec = given or (ep.env if kind == "env" else ep.agent)
        if spec is None:
            raise DataError(f"{traces.where(ep)}: no {kind} spec in the file; give --{kind}")
        return spec

    def get(ep, kind, given, resolve):
        spec = spec_of(ep, kind, given)
        if (kind, spec) not in cache:
            try:
                cache[(kind, spec)] = resolve(spec)
            except DataError as exc:
                raise DataError(f"{traces.where(ep)}: {exc}" if given is None else str(exc)) from None
        return cache[(kind, spec)]

    return (lambda ep: get(ep, "env", env, resolve_env)), (lambda ep: get(ep, "agent", agent, resolve_agent))


@contextmanager
def _model_session(json_out: bool, inputs: tuple, **opts) -> Iterator[Any]:
    """The models an ``openai:`` agent spec loads use these call options and this store."""
    from ..progress import progress_enabled
    from ..runs.cliopts import ModelSession
    from .llm import use_session

    with ModelSession(progress=progress_enabled(json_out), inputs=inputs, **opts) as session, use_session(session):
        yield session


def _print_json(table, command: str, extra: dict) -> None:
    doc = table.to_dict(command)
    doc.update(extra)
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")


@app.command("simulate")
def simulate_command(
    episodes: Annotated[int, typer.Option("--episodes", "-n", min=1, max=1_000_000, help="Episodes to run.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the trajectories here (JSONL).")],
    world: Annotated[Optional[str], typer.Option(help="Built-in world (environment and its agent): tool_use.")]
    = None,
    env: EnvOpt = None, agent: AgentOpt = None,
    truth: Annotated[Optional[Path], typer.Option(help="Also write each episode's true decisive step here "
                                                       "(JSONL; worlds with known truth only).")] = None,
    store: StoreOption = None, concurrency: ConcurrencyOption = 1, timeout: TimeoutOption = 60.0,
    max_retries: MaxRetriesOption = 5, rpm: RpmOption = None, tpm: TpmOption = None,
    api_key_env: ApiKeyEnvOption = None, max_tokens: MaxTokensOption = None,
    seed: SeedOption = 0, level: LevelOption = 0.95, json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Run an agent in an environment and log its trajectories (with the true decisive steps, where known)."""
    calls_opts = dict(store=store, concurrency=concurrency, timeout=timeout, max_retries=max_retries, rpm=rpm,
                      tpm=tpm, api_key_env=api_key_env, max_tokens=max_tokens)
    import numpy as np

    from ..core.inference import estimate_from_influence
    from ..core.estimate import EstimateTable
    from .protocol import resolve_agent, resolve_env
    from .replay import run_episode
    from .traces import write_traces

    _check_out(out, "--out")
    _check_out(truth, "--truth", out)
    _check_out(report, "--report", out, truth)
    if world is not None and (env is not None or agent is not None):
        raise DataError("give --world, or --env and --agent, not both")
    env_spec = world or env or "tool_use"
    agent_spec = world or agent or ("tool_use" if env is None else None)
    if agent_spec is None:
        raise DataError("--env needs --agent (the policy to run in it)")
    with _model_session(json_out, (), **calls_opts) as session:
        the_env, the_agent = resolve_env(env_spec), resolve_agent(agent_spec)
        truth_lines = None
        if truth is not None:
            from .simulate import ScriptedToolAgent, ToolUseWorld, simulate_tool_use

            if not (isinstance(the_env, ToolUseWorld) and isinstance(the_agent, ScriptedToolAgent)):
                raise DataError("--truth needs a world with known truth (--world tool_use, or the tool_use env "
                                "with a ScriptedToolAgent)")
            sim = simulate_tool_use(episodes, seed=seed, agent=the_agent, world=the_env, env_spec=env_spec,
                                    agent_spec=agent_spec)
            eps = sim.episodes
            truth_lines = [{"episode_id": e.episode_id, "decisive_step": sim.decisive[e.episode_id]} for e in eps]
        else:
            seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=episodes)
            eps = [run_episode(the_env, the_agent, int(s), np.random.default_rng([seed, i, 1]), episode_id=f"e{i}",
                               env_spec=env_spec, agent_spec=agent_spec) for i, s in enumerate(seeds)]
        calls, note = session.summary(), session.note()
    write_traces(out, eps)
    if truth_lines is not None:
        write_text_atomic(truth, "".join(json.dumps(t) + "\n" for t in truth_lines))
    y = np.array([e.success for e in eps], float)
    est = estimate_from_influence(float(y.mean()), y - y.mean(), name=agent_spec, estimand="success rate",
                                  method="simulation", level=level,
                                  diagnostics={"env": env_spec, "mean_steps": float(np.mean([len(e.steps)
                                                                                             for e in eps]))},
                                  keep_influence=False)
    table = EstimateTable([est])
    if json_out:
        _print_json(table, "agents simulate", {"episodes": len(eps), **({"calls": calls} if calls else {})})
        if report is not None:
            emit(table, command="agents simulate", as_json=False, report=report, title="Simulated episodes")
        return
    emit(table, command="agents simulate", as_json=False, report=report,
         title=f"{len(eps)} episodes of {agent_spec} in {env_spec}; trajectories written to {out}",
         notes=[note] if note else ())


@app.command("attribute")
def attribute_command(
    traces: Traces, env: EnvOpt = None, agent: AgentOpt = None,
    budget: Annotated[int, typer.Option(min=8, max=100_000, help="Replays per failed episode (two per replicate "
                                                                 "pair); spent adaptively.")] = 200,
    replicates: Annotated[Optional[int], typer.Option(min=1, max=10_000, help="Fixed scheme instead: this many "
                                                      "replicate pairs at every step.")] = None,
    threshold: Annotated[float, typer.Option(min=0.0, max=0.99, help="A step is decisive when its effect on the "
                                             "success probability is clearly above this.")] = 0.1,
    truth: Annotated[Optional[Path], typer.Option(help="Known decisive steps (JSONL: episode_id, decisive_step), "
                                                       "to score the attribution and the two baselines.")] = None,
    store: StoreOption = None, concurrency: ConcurrencyOption = 1, timeout: TimeoutOption = 60.0,
    max_retries: MaxRetriesOption = 5, rpm: RpmOption = None, tpm: TpmOption = None,
    api_key_env: ApiKeyEnvOption = None, max_tokens: MaxTokensOption = None,
    seed: SeedOption = 0, level: LevelOption = 0.95, json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Which step made each failed episode fail: effects of changing each step, by paired replays."""
    calls_opts = dict(store=store, concurrency=concurrency, timeout=timeout, max_retries=max_retries, rpm=rpm,
                      tpm=tpm, api_key_env=api_key_env, max_tokens=max_tokens)
    from ..progress import progress_enabled
    from .attribution import attribute_failures, score_against_truth
    from .traces import read_traces

    _check_out(report, "--report", traces, truth)
    tr = read_traces(traces)
    known = _read_truth(truth, tr) if truth is not None else None
    with _model_session(json_out, (traces, truth), **calls_opts) as session:
        env_for, agent_for = _resolvers(tr, env, agent)
        options = {"budget": budget, "adaptive": True} if replicates is None else \
            {"budget": 2 * replicates * max(len(e.steps) for e in tr), "adaptive": False, "replicates": replicates}
        with data_errors(tr.source):
            att = attribute_failures(tr.episodes, env_for, agent_for, threshold=threshold, level=level, seed=seed,
                                     show_progress=progress_enabled(json_out), where=tr.where, **options)
        calls, note = session.summary(), session.note()
    table = att.table
    if known is not None:
        table = table + score_against_truth(att.episodes, known, level=level)
    episodes = [r.to_json() for r in att.episodes]
    if json_out:
        _print_json(table, "agents attribute", {"episodes": episodes, **({"calls": calls} if calls else {})})
        if report is not None:
            emit(table, command="agents attribute", as_json=False, report=report, title="Failure attribution")
        return
    emit(table, command="agents attribute", as_json=False, report=report,
         title=f"Failure attribution: {len(att.episodes)} failed of {len(tr)} episodes",
         notes=[_episode_line(r) for r in att.episodes[:20]]
         + ([f"... {len(att.episodes) - 20} more (--json for all)"] if len(att.episodes) > 20 else [])
         + ([note] if note else []))


def _episode_line(r) -> str:
    d = "none" if r.decisive_step is None else str(r.decisive_step)
    e = r.effects[r.decisive_step] if r.decisive_step is not None else None
    eff = f" (effect {e.estimate:+.2f} [{e.ci_low:+.2f}, {e.ci_high:+.2f}])" if e is not None else ""
    return (f"episode {r.episode_id}: decisive step {d}{eff}; last step {r.last_step}, least likely action at step "
            f"{r.lowest_prob_step}; {r.replays} replays")


def _read_truth(path: Path, tr) -> dict:
    src = str(path)
    if not path.exists():
        raise DataError(f"{src}: no such file")
    known: dict = {}
    for number, doc in json_lines(path, src):
        if "episode_id" not in doc or "decisive_step" not in doc:
            raise DataError(f"{src}: line {number}: needs fields 'episode_id' and 'decisive_step'")
        d = doc["decisive_step"]
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
            raise DataError(f"{src}: line {number}: field 'decisive_step' must be a step number or null, got {d!r}")
        known[str(doc["episode_id"])] = d
    missing = [e.episode_id for e in tr if not e.success and e.episode_id not in known]
    if missing:
        raise DataError(f"{src}: no decisive_step for failed episode {missing[0]!r} of {tr.source}")
    return known


@app.command("ope")
def ope_command(
    traces: Traces,
    target: Annotated[str, typer.Option("--target", help="The new policy: an agent spec whose agent has a "
                                                         "distribution(observation, history) method.")],
    method: Annotated[str, typer.Option(help="is (trajectory-wise), pdis (per-decision), wpdis (weighted), dr "
                                             "(doubly robust with a fitted Q), or all.")] = "all",
    gamma: Annotated[float, typer.Option(min=0.0, max=1.0, help="Discount per step.")] = 1.0,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-fitting folds of the fitted Q.")] = 2,
    seed: SeedOption = 0, level: LevelOption = 0.95, json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Expected return of a new policy (--target), from trajectories logged under another."""
    from .ope import sequential_ope_methods, sequential_ope_study
    from .protocol import resolve_agent
    from .traces import read_traces

    _check_out(report, "--report", traces)
    with data_errors(str(traces)):
        methods = sequential_ope_methods(method)
    tr = read_traces(traces)
    agent = resolve_agent(target)
    if not callable(getattr(agent, "distribution", None)):
        raise DataError(f"--target {target!r}: the agent has no distribution(observation, history) method, which "
                        "off-policy evaluation needs (the probability of any action, not only the one it draws)")
    with data_errors(tr.source):
        table = sequential_ope_study(tr.episodes, agent, methods=methods, target_name=target, gamma=gamma,
                                     n_folds=folds, level=level, seed=seed)
    if json_out:
        _print_json(table, "agents ope", {"episodes": len(tr)})
        if report is not None:
            emit(table, command="agents ope", as_json=False, report=report, title="Off-policy value")
        return
    e = table[0]
    emit(table, command="agents ope", as_json=False, report=report,
         title=f"Value of {target} from {len(tr)} logged trajectories",
         notes=[f"weights: effective sample size {e.diagnostics['ess']:.1f} of {len(tr)} trajectories; largest "
                f"weight {e.diagnostics['max_weight']:.3g} ({e.diagnostics['max_weight_share']:.1%} of the total)"])


@app.command("mediate")
def mediate_command(
    tool: Annotated[str, typer.Option(help="The tool whose effect is split (the environment switches it).")]
    = "search",
    world: Annotated[Optional[str], typer.Option(help="Built-in world (environment and its agent): tool_use.")]
    = None,
    env: EnvOpt = None, agent: AgentOpt = None,
    episodes: Annotated[int, typer.Option("--episodes", "-n", min=2, max=1_000_000,
                                          help="Environment seeds to run.")] = 1000,
    replicates: Annotated[int, typer.Option(min=1, max=1000, help="Runs per seed and arm (the agent's draws "
                                                                  "differ between replicates).")] = 1,
    seed: SeedOption = 0, level: LevelOption = 0.95, json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Total, direct and indirect effect of offering a tool, with Y(1, M(0)) executed by replaying outputs."""
    import numpy as np

    from ..progress import progress, progress_enabled
    from .mediation import tool_mediation
    from .protocol import resolve_agent, resolve_env

    _check_out(report, "--report")
    if world is not None and (env is not None or agent is not None):
        raise DataError("give --world, or --env and --agent, not both")
    env_spec = world or env or "tool_use"
    agent_spec = world or agent or ("tool_use" if env is None else None)
    if agent_spec is None:
        raise DataError("--env needs --agent (the policy to run in it)")
    resolve_env(env_spec)
    the_agent = resolve_agent(agent_spec)
    seeds = np.random.default_rng(seed).integers(0, 2**31 - 1, size=episodes)
    with progress(3 * episodes * replicates, "running", enabled=progress_enabled(json_out)) as advance:
        table = tool_mediation(lambda: resolve_env(env_spec), the_agent, seeds, tool=tool, replicates=replicates,
                               level=level, seed=seed, advance=advance)
    if json_out:
        _print_json(table, "agents mediate", {"episodes": episodes})
        if report is not None:
            emit(table, command="agents mediate", as_json=False, report=report, title="Tool mediation")
        return
    d = table[0].diagnostics
    emit(table, command="agents mediate", as_json=False, report=report,
         title=f"Effect of offering {tool} on success: {agent_spec} in {env_spec}, {episodes} seeds",
         notes=[f"success: tool on {d['p_tool_on']:.3f}, off {d['p_tool_off']:.3f}, on with the off run's outputs "
                f"{d['p_on_with_off_outputs']:.3f}"])
