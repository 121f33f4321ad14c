"""`llmcause routing ...`: evaluate routers from logs, learn a budgeted router, draw the frontier."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from ..clikit import data_errors, declare_categorical, emit, CategoricalOption, JsonOption, LevelOption, \
    ReportOption, SeedOption, AddressOption, Engine, EngineOption
from ..io import DataError, check_output_path, check_outputs, parse_list


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Routing under a cost budget: value any router from logs where a biased router chose, learn "
                       "the best router for a budget, and draw the quality-cost frontier.")

Log = Annotated[str, typer.Argument(help="Router log (CSV, TSV, JSONL, JSON or Parquet), one row per prompt.")]
Action = Annotated[str, typer.Option("--action", "-a", help="Column with the model the logged router chose.")]
Reward = Annotated[str, typer.Option("--reward", "-y", help="Column with the quality of the answer.")]
Propensity = Annotated[Optional[str], typer.Option(
    help="Column with the logging probability of the chosen model. Without it, propensities are estimated "
         "from the features (and a warning says what that assumes).")]
Cost = Annotated[Optional[str], typer.Option("--cost", help="Column with the cost of the logged call.")]
Costs = Annotated[Optional[str], typer.Option("--costs", help="Price table instead of a cost column: "
                                                              "MODEL=PRICE,MODEL=PRICE.")]
Features = Annotated[Optional[str], typer.Option("--features", "-x", help="Comma-separated prompt feature columns "
                                                                          "(numbers or categories).")]
Text = Annotated[Optional[str], typer.Option("--text", help="Prompt text column, turned into local hashed "
                                                            "n-gram features.")]
Cluster = Annotated[Optional[str], typer.Option(help="Prompt id column: cluster-robust errors, folds keep a "
                                                     "prompt's rows together.")]
Folds = Annotated[int, typer.Option(min=2, max=20, help="Cross-fitting folds.")]
LearnerOpt = Annotated[str, typer.Option("--learner", help="Outcome models: linear or boosting.")]


def _read(data, action, reward, propensity, cost, costs, features, text, time=None, cluster=None, seed=0,
          categorical=None):
    from ..io import read_table
    from .logs import read_log

    if categorical:
        data = declare_categorical(read_table(data), categorical, parse_list(features, "--features"), "--features")
    log = read_log(data, action=action, reward=reward, propensity=propensity, cost=cost, costs=costs,
                   features=parse_list(features, "--features"), text=text, time=time, cluster=cluster, seed=seed)
    if log.X.shape[1] == 0 and log.propensity is None:
        raise DataError("without --propensity the logging propensities must be estimated from --features or --text; "
                        "give one of them")
    return log


def _policy_files(policies: List[str]) -> list[str]:
    """The router files that ``file:PATH`` policies read (so no output may replace them)."""
    return [p[len("file:"):] for p in policies if p.startswith("file:")]


def _check_learner(learner: str) -> str:
    if learner not in ("linear", "boosting"):
        raise DataError(f"--learner {learner!r}: use linear or boosting")
    return learner


def _reward_range(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise DataError(f"--reward-range {text!r}: give two numbers LO,HI (e.g. 0,1)") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise DataError(f"--reward-range {text!r}: need finite LO < HI")
    return lo, hi


def _methods(text: str) -> list[str]:
    from .evaluate import ALL_METHODS

    if text.strip().lower() == "all":
        return list(ALL_METHODS)
    methods = [m.lower() for m in parse_list(text, "--method")]
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        raise DataError(f"--method {bad[0]!r}: use one or more of {', '.join(ALL_METHODS)}, or all")
    return methods


@app.command("evaluate")
def evaluate_command(
    data: Log, action: Action, reward: Reward,
    policy: Annotated[List[str], typer.Option("--policy", "-p", help="Target policy: always:MODEL, column:COL, "
                                              "probs:PREFIX or file:ROUTER.json. Repeat for several.")],
    propensity: Propensity = None, cost: Cost = None, costs: Costs = None, features: Features = None,
    text: Text = None, categorical: CategoricalOption = None,
    method: Annotated[str, typer.Option(help="dr, ips, snips, dm, sndr, switch-dr, dros, el (IPS with an "
                                             "empirical-likelihood interval), a comma list, or all.")] = "dr,el",
    lam: Annotated[Optional[float], typer.Option("--lambda", min=0.0, help="Price of one unit of cost in quality: "
                                                 "adds the utility quality - lambda*cost.")] = None,
    time: Annotated[Optional[str], typer.Option(help="Time column (numbers or dates): adds per-window estimates, "
                                                     "an exponentially weighted value and change tests.")] = None,
    windows: Annotated[int, typer.Option(min=2, max=100, help="Time windows (equal numbers of rows).")] = 4,
    half_life: Annotated[float, typer.Option(min=0.01, help="Half-life of the weighted value, in windows.")] = 1.0,
    compare: Annotated[bool, typer.Option(help="Add each policy minus the first, paired on the log.")] = False,
    reward_range: Annotated[str, typer.Option("--reward-range", help="LO,HI: bounds the reward can never leave, "
                                              "used by the el interval (default 0,1: a 0/1 or [0, 1] score).")]
    = "0,1",
    gamma: Annotated[Optional[float], typer.Option(min=1.0, max=100.0, help="Add bounds on each policy's quality "
                                                   "if the logged propensities were off by up to this factor in "
                                                   "odds (marginal sensitivity model), and the factor at which "
                                                   "the comparison with the logging router flips.")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Table of target prompts (e.g. next month's "
                                                  "traffic) with the --covariates columns: adds each policy's value "
                                                  "transported to them.")] = None,
    covariates: Annotated[Optional[str], typer.Option("--covariates", help="Comma-separated columns shared by the "
                                                      "log and --target that describe a prompt.")] = None,
    cluster: Cluster = None, folds: Folds = 5, learner: LearnerOpt = "linear", level: LevelOption = 0.95,
    seed: SeedOption = 0,
    engine: EngineOption = None,
    address: AddressOption = None,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=100, help="Out of core: the features, outcome "
                                             "and propensity models are fitted on a seeded sample of at most this "
                                             "many rows (default 200000).")] = 200_000,
    json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Quality, cost and utility of each --policy, off-policy, with the naive answer beside."""
    from ..core.estimate import EstimateTable
    from ..scan import is_dataset_path
    from .drift import drift_study
    from .evaluate import evaluate_policies, fit_nuisances

    check_output_path(report, "--report", inputs=[data, *_policy_files(policy), *([target] if target else [])])
    methods = _methods(method)
    _check_learner(learner)
    reward_bounds = _reward_range(reward_range)
    if address is not None and engine is not Engine.ray:
        raise DataError("--address needs --engine ray")
    if engine is not None or is_dataset_path(data):
        if time is not None or target is not None or gamma is not None or categorical:
            raise DataError("--time, --target, --gamma and --categorical are available in memory only (read a "
                            "single file without --engine)")
        table = _evaluate_streamed(data, as_json=json_out, action=action, reward=reward, policies=policy,
                                   propensity=propensity, cost=cost, costs=costs, features=features, text=text,
                                   cluster=cluster, methods=methods, lam=lam, level=level, n_folds=folds, seed=seed,
                                   learner=learner, compare=compare, engine=(engine or Engine.local).value,
                                   address=address, sample_rows=sample_rows)
        emit(table, command="routing evaluate", as_json=json_out, report=report,
             title=f"Off-policy value of {len(policy)} routing polic{'y' if len(policy) == 1 else 'ies'}")
        return
    log = _read(data, action, reward, propensity, cost, costs, features, text, time, cluster, seed,
                categorical)
    if lam is not None and not log.has_cost:
        raise DataError("--lambda needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    if "el" in methods:
        from .evaluate import check_reward_range

        bad = check_reward_range(log, reward_bounds)
        if bad is not None:
            lo, hi = reward_bounds
            raise DataError(f"{log.source}: column {reward!r}, row {bad + 1}: {log.reward[bad]:g} lies outside "
                            f"--reward-range {lo:g},{hi:g}; the el interval needs bounds the reward "
                            "never leaves (give --reward-range LO,HI, or leave el out of --method)")
    cov = parse_list(covariates, "--covariates") if covariates else []
    if target is None and cov:
        raise DataError("--covariates describes the --target rows; give --target TABLE")
    with data_errors(log.source):
        nuis = fit_nuisances(log, n_folds=folds, seed=seed, learner=learner)
        table = evaluate_policies(log, policy, methods=methods, lam=lam, level=level, nuisances=nuis,
                                  compare=compare, reward_range=reward_bounds)
        if time is not None:
            estimands = [e for e in ("quality", "cost", "utility") if any(x.estimand == e for x in table)]
            table = table + drift_study(log, policy, n_windows=windows, half_life=half_life, estimands=estimands,
                                        lam=lam, level=level, nuisances=nuis)
        if target is not None:
            from .shift import transport_policies

            estimands = [e for e in ("quality", "cost", "utility") if any(x.estimand == e for x in table)]
            table = table + transport_policies(log, target, policy, covariates=cov, nuisances=nuis,
                                               estimands=estimands, lam=lam, n_folds=folds, seed=seed, level=level)
    notes, sections = [], []
    if gamma is not None:
        from .msm import bound_estimates, bound_notes, bound_sections, msm_policy_bounds

        with data_errors(log.source):
            bounds = msm_policy_bounds(log, policy, nuis.propensity, gamma)
        table = table + EstimateTable(bound_estimates(bounds, gamma, level, int(log.reward.shape[0])))
        notes = bound_notes(bounds, gamma)
        sections = bound_sections(bounds) if report is not None else []
    table = EstimateTable(list(table), table.warnings)
    emit(table, command="routing evaluate", as_json=json_out, report=report, notes=notes, sections=sections,
         title=f"Off-policy value of {len(policy)} routing polic{'y' if len(policy) == 1 else 'ies'}")


def _evaluate_streamed(data: str, *, as_json: bool, **kwargs):
    """evaluate_policies out of core, with a progress bar in rows on a terminal (over every pass it makes)."""
    from ..clikit import data_errors as errors
    from ..progress import progress, progress_enabled
    from ..scan import ParquetDataset
    from .streamed import evaluate_policies_streamed

    ds = ParquetDataset(data)
    enabled = progress_enabled(as_json)
    with progress(2 * ds.count_rows() if enabled else None, "scanning rows", enabled) as advance:
        with errors(ds.label):
            return evaluate_policies_streamed(ds, progress=advance, progress_total=getattr(advance, "set_total", None),
                                              **kwargs)


def _study_bar(folds: int, what: str, as_json: bool):
    """A bar over study_router's steps: nuisances, one router per outer fold, the final router."""
    from ..progress import progress, progress_enabled
    from .learn import study_steps

    return progress(study_steps(folds), what, enabled=progress_enabled(as_json))


@app.command("learn")
def learn_command(
    data: Log, action: Action, reward: Reward,
    budget: Annotated[float, typer.Option(min=0.0, help="Average cost per prompt the router may spend.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the router here as JSON (for file: policies).")],
    propensity: Propensity = None, cost: Cost = None, costs: Costs = None, features: Features = None,
    text: Text = None, categorical: CategoricalOption = None,
    baseline: Annotated[Optional[str], typer.Option(help="Model the benefits are measured against "
                                                         "(default: the cheapest).")] = None,
    cluster: Cluster = None, folds: Folds = 5, learner: LearnerOpt = "linear", level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Learn a router that meets --budget, value it out of fold, and save it as JSON."""
    from .learn import study_router

    check_outputs({"--report": report, "--out": out}, inputs=[data])
    _check_learner(learner)
    log = _read(data, action, reward, propensity, cost, costs, features, text, None, cluster, seed,
                categorical)
    if not log.has_cost:
        raise DataError("learn needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    with data_errors(log.source), _study_bar(folds, "learning the router", json_out) as advance:
        study = study_router(log, [budget], baseline=baseline, n_folds=folds, seed=seed, learner=learner,
                             level=level, progress=advance)
    study.router.save(out)
    emit(study.table, command="routing learn", as_json=json_out, report=report,
         title=f"Router for budget {budget:g} (values out of fold); saved to {out}")


@app.command("frontier")
def frontier_command(
    data: Log, action: Action, reward: Reward,
    propensity: Propensity = None, cost: Cost = None, costs: Costs = None, features: Features = None,
    text: Text = None, categorical: CategoricalOption = None,
    budgets: Annotated[Optional[str], typer.Option(help="Comma-separated budgets (default: evenly spaced from the "
                                                        "cheapest to the dearest model's cost).")] = None,
    points: Annotated[int, typer.Option(min=2, max=50, help="Number of budgets when --budgets is not given.")] = 7,
    baseline: Annotated[Optional[str], typer.Option(help="Model the benefits are measured against "
                                                         "(default: the cheapest).")] = None,
    cluster: Cluster = None, folds: Folds = 5, learner: LearnerOpt = "linear", level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Quality against cost of budgeted routers learnt out of fold, with the area under the frontier."""
    from ..report import ReportSection
    from .learn import default_budgets, frontier_figure, study_router

    check_output_path(report, "--report", inputs=[data])
    _check_learner(learner)
    log = _read(data, action, reward, propensity, cost, costs, features, text, None, cluster, seed,
                categorical)
    if not log.has_cost:
        raise DataError("frontier needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    if budgets is not None:
        grid = []
        for b in parse_list(budgets, "--budgets"):
            try:
                grid.append(float(b))
            except ValueError:
                raise DataError(f"--budgets: {b!r} is not a number") from None
    else:
        grid = default_budgets(log, points)
    with data_errors(log.source), _study_bar(folds, f"routers for {len(grid)} budgets", json_out) as advance:
        study = study_router(log, grid, baseline=baseline, n_folds=folds, seed=seed, learner=learner, level=level,
                             progress=advance)
    sections = []
    if report is not None:
        sections.append(ReportSection("Quality-cost frontier", figure=frontier_figure(study),
                                      text="Routers learnt and valued out of fold; squares are single models; the "
                                           "dashed line is random routing between the cheapest and dearest model."))
    emit(study.table, command="routing frontier", as_json=json_out, report=report, sections=sections,
         title="Quality-cost frontier of budgeted routers")


@app.command("benefit")
def benefit_command(
    data: Log, action: Action, reward: Reward,
    propensity: Propensity = None, cost: Cost = None, costs: Costs = None, features: Features = None,
    text: Text = None, categorical: CategoricalOption = None,
    baseline: Annotated[Optional[str], typer.Option(help="Model the benefits are measured against "
                                                         "(default: the first by name).")] = None,
    bins: Annotated[int, typer.Option(min=2, max=20, help="Bins of predicted benefit for the calibration check.")]
    = 5,
    cluster: Cluster = None, folds: Folds = 5, learner: LearnerOpt = "linear", level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Which prompts gain from each model: DR-learner benefits with a calibration check."""
    from ..report import ReportSection
    from .benefit import benefit_study, calibration_figure

    check_output_path(report, "--report", inputs=[data])
    _check_learner(learner)
    log = _read(data, action, reward, propensity, cost, costs, features, text, None, cluster, seed,
                categorical)
    if baseline is not None and baseline not in log.models:
        raise DataError(f"--baseline {baseline!r} is not one of the log's models ({', '.join(log.models)})")
    with data_errors(log.source):
        fit = benefit_study(log, baseline=baseline, n_bins=bins, n_folds=folds, seed=seed, learner=learner,
                            level=level)
    sections = []
    if report is not None:
        sections.append(ReportSection("Calibration of the predicted benefit", figure=calibration_figure(fit),
                                      frame=fit.calibration))
    emit(fit.table, command="routing benefit", as_json=json_out, report=report, sections=sections,
         title=f"Per-prompt benefit over {fit.baseline} (DR-learner)")


@app.command("simulate")
def simulate_command(
    world: Annotated[str, typer.Argument(help="routellm (real GSM8K/MMLU outcomes of Mixtral and GPT-4), "
                                              "synthetic (three models, costs, drift) or traffic (the synthetic "
                                              "world whose prompts keep getting harder, plus OUT_next.csv: the "
                                              "next period's prompts).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the simulated log here (CSV).")],
    n: Annotated[int, typer.Option(min=100, help="Logged rows.")] = 4000,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
) -> None:
    """Write a router log from a built-in world, and print the true value of each single-model policy."""
    from ..core.estimate import Estimate, EstimateTable
    from ..io import write_text_atomic
    from .simulate import routellm_world, synthetic_world

    check_output_path(out, "--out")
    if world not in ("routellm", "synthetic", "traffic"):
        raise DataError(f"unknown world {world!r}: use routellm, synthetic or traffic")
    truths = []
    if world == "traffic":
        from .simulate import future_traffic

        w = synthetic_world(n, seed=seed, model_drift=0.0)
        next_path = out.with_name(out.stem + "_next.csv")
        check_output_path(next_path, "the next-period file")
        upcoming, truth_next = future_traffic(w, n // 2, seed=seed)
        write_text_atomic(next_path, upcoming.to_csv(index=False))
        for m, v in truth_next.items():
            truths.append(Estimate(name=f"always:{m}", estimand=f"quality on {next_path.name}", method="truth",
                                   estimate=v, se=0.0, ci_low=v, ci_high=v, n=int(upcoming.shape[0])))
    else:
        w = routellm_world(n, seed=seed) if world == "routellm" else synthetic_world(n, seed=seed)
    write_text_atomic(out, w.frame.to_csv(index=False))
    for m in w.models:
        q, c = w.always(m)
        for estimand, v in (("quality", q), ("cost", c)):
            truths.append(Estimate(name=f"always:{m}", estimand=estimand, method="truth", estimate=v, se=0.0,
                                   ci_low=v, ci_high=v, n=len(w.frame),
                                   diagnostics={"naive": w.naive_always(m)} if estimand == "quality" else {}))
    emit(EstimateTable(truths), command="routing simulate", as_json=json_out,
         title=f"True values in the {world} world; log written to {out} (columns: {', '.join(w.frame.columns)})")
