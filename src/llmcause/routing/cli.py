"""`llmcause routing ...`: evaluate routers from logs, learn a budgeted router, draw the frontier."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from typing_extensions import Annotated

from ..clikit import data_errors, emit, JsonOption, LevelOption, ReportOption, SeedOption
from ..io import DataError, check_output_path, parse_list


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


def _read(data, action, reward, propensity, cost, costs, features, text, time=None, cluster=None, seed=0):
    from .logs import read_log

    log = read_log(data, action=action, reward=reward, propensity=propensity, cost=cost, costs=costs,
                   features=parse_list(features, "--features"), text=text, time=time, cluster=cluster, seed=seed)
    if log.X.shape[1] == 0 and log.propensity is None:
        raise DataError("without --propensity the logging propensities must be estimated from --features or --text; "
                        "give one of them")
    return log


def _check_learner(learner: str) -> str:
    if learner not in ("linear", "boosting"):
        raise DataError(f"--learner {learner!r}: use linear or boosting")
    return learner


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
    text: Text = None,
    method: Annotated[str, typer.Option(help="dr, ips, snips, dm, sndr, switch-dr, dros, el (IPS with an "
                                             "empirical-likelihood interval), a comma list, or all.")] = "dr,el",
    lam: Annotated[Optional[float], typer.Option("--lambda", min=0.0, help="Price of one unit of cost in quality: "
                                                 "adds the utility quality - lambda*cost.")] = None,
    time: Annotated[Optional[str], typer.Option(help="Time column (numbers or dates): adds per-window estimates, "
                                                     "an exponentially weighted value and change tests.")] = None,
    windows: Annotated[int, typer.Option(min=2, max=100, help="Time windows (equal numbers of rows).")] = 4,
    half_life: Annotated[float, typer.Option(min=0.01, help="Half-life of the weighted value, in windows.")] = 1.0,
    compare: Annotated[bool, typer.Option(help="Add each policy minus the first, paired on the log.")] = False,
    cluster: Cluster = None, folds: Folds = 5, learner: LearnerOpt = "linear", level: LevelOption = 0.95,
    seed: SeedOption = 0,
    engine: Annotated[Optional[str], typer.Option(
        help="Scan a Parquet file, directory or glob out of core: local (the default for a directory or glob) or "
             "ray (Ray Data tasks). Without it a single file is read into memory.")] = None,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address for --engine ray (default: the "
                                                        "running cluster, or a new local one).")] = None,
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

    check_output_path(report, "--report")
    methods = _methods(method)
    _check_learner(learner)
    if engine is not None and engine not in ("local", "ray"):
        raise DataError(f"--engine {engine!r}: use local or ray")
    if address is not None and engine != "ray":
        raise DataError("--address needs --engine ray")
    if engine is not None or is_dataset_path(data):
        if time is not None:
            raise DataError("--time is available in memory only (read a single file without --engine)")
        table = _evaluate_streamed(data, as_json=json_out, action=action, reward=reward, policies=policy,
                                   propensity=propensity, cost=cost, costs=costs, features=features, text=text,
                                   cluster=cluster, methods=methods, lam=lam, level=level, n_folds=folds, seed=seed,
                                   learner=learner, compare=compare, engine=engine or "local", address=address,
                                   sample_rows=sample_rows)
        emit(table, command="routing evaluate", as_json=json_out, report=report,
             title=f"Off-policy value of {len(policy)} routing polic{'y' if len(policy) == 1 else 'ies'}")
        return
    log = _read(data, action, reward, propensity, cost, costs, features, text, time, cluster, seed)
    if lam is not None and not log.has_cost:
        raise DataError("--lambda needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    with data_errors(log.source):
        nuis = fit_nuisances(log, n_folds=folds, seed=seed, learner=learner)
        table = evaluate_policies(log, policy, methods=methods, lam=lam, level=level, nuisances=nuis,
                                  compare=compare)
        if time is not None:
            estimands = [e for e in ("quality", "cost", "utility") if any(x.estimand == e for x in table)]
            table = table + drift_study(log, policy, n_windows=windows, half_life=half_life, estimands=estimands,
                                        lam=lam, level=level, nuisances=nuis)
    table = EstimateTable(list(table), table.warnings)
    emit(table, command="routing evaluate", as_json=json_out, report=report,
         title=f"Off-policy value of {len(policy)} routing polic{'y' if len(policy) == 1 else 'ies'}")


def _evaluate_streamed(data: str, *, as_json: bool, **kwargs):
    """evaluate_policies out of core, with a progress bar in rows on a terminal (two passes)."""
    from ..clikit import data_errors as errors
    from ..progress import progress, progress_enabled
    from ..scan import ParquetDataset
    from .streamed import evaluate_policies_streamed

    ds = ParquetDataset(data)
    enabled = progress_enabled(as_json)
    with progress(2 * ds.count_rows() if enabled else None, "scanning rows", enabled) as advance:
        with errors(ds.label):
            return evaluate_policies_streamed(ds, progress=advance, **kwargs)


@app.command("learn")
def learn_command(
    data: Log, action: Action, reward: Reward,
    budget: Annotated[float, typer.Option(min=0.0, help="Average cost per prompt the router may spend.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the router here as JSON (for file: policies).")],
    propensity: Propensity = None, cost: Cost = None, costs: Costs = None, features: Features = None,
    text: Text = None,
    baseline: Annotated[Optional[str], typer.Option(help="Model the benefits are measured against "
                                                         "(default: the cheapest).")] = None,
    cluster: Cluster = None, folds: Folds = 5, learner: LearnerOpt = "linear", level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False, report: ReportOption = None,
) -> None:
    """Learn a router that meets --budget, value it out of fold, and save it as JSON."""
    from .learn import study_router

    check_output_path(report, "--report")
    check_output_path(out, "--out")
    _check_learner(learner)
    log = _read(data, action, reward, propensity, cost, costs, features, text, None, cluster, seed)
    if not log.has_cost:
        raise DataError("learn needs costs: give --cost COLUMN or --costs MODEL=PRICE,...")
    with data_errors(log.source):
        study = study_router(log, [budget], baseline=baseline, n_folds=folds, seed=seed, learner=learner,
                             level=level)
    study.router.save(out)
    emit(study.table, command="routing learn", as_json=json_out, report=report,
         title=f"Router for budget {budget:g} (values out of fold); saved to {out}")


@app.command("frontier")
def frontier_command(
    data: Log, action: Action, reward: Reward,
    propensity: Propensity = None, cost: Cost = None, costs: Costs = None, features: Features = None,
    text: Text = None,
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

    check_output_path(report, "--report")
    _check_learner(learner)
    log = _read(data, action, reward, propensity, cost, costs, features, text, None, cluster, seed)
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
    with data_errors(log.source):
        study = study_router(log, grid, baseline=baseline, n_folds=folds, seed=seed, learner=learner, level=level)
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
    text: Text = None,
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

    check_output_path(report, "--report")
    _check_learner(learner)
    log = _read(data, action, reward, propensity, cost, costs, features, text, None, cluster, seed)
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
    world: Annotated[str, typer.Argument(help="routellm (real GSM8K/MMLU outcomes of Mixtral and GPT-4) or "
                                              "synthetic (three models, costs, drift).")],
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
    if world not in ("routellm", "synthetic"):
        raise DataError(f"unknown world {world!r}: use routellm or synthetic")
    w = routellm_world(n, seed=seed) if world == "routellm" else synthetic_world(n, seed=seed)
    write_text_atomic(out, w.frame.to_csv(index=False))
    truths = []
    for m in w.models:
        q, c = w.always(m)
        for estimand, v in (("quality", q), ("cost", c)):
            truths.append(Estimate(name=f"always:{m}", estimand=estimand, method="truth", estimate=v, se=0.0,
                                   ci_low=v, ci_high=v, n=len(w.frame),
                                   diagnostics={"naive": w.naive_always(m)} if estimand == "quality" else {}))
    emit(EstimateTable(truths), command="routing simulate", as_json=json_out,
         title=f"True values in the {world} world; log written to {out} (columns: {', '.join(w.frame.columns)})")
