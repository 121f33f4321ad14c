"""`llmcause evaluation ...`: judge means, battles, judge audits, label budgets, example data."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ..clikit import data_errors, emit, stdout_console, JsonOption, LevelOption, ReportOption, SeedOption
from ..core.estimate import EstimateTable
from ..io import DataError, check_output_path, parse_list, read_table, write_text_atomic


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="What an LLM judge's scores really say: human-scale means from judge scores plus a few "
                       "labels, comparisons and rankings, battles, judge bias audits and label budgets.")



class JudgeMethod(str, Enum):
    calibrated = "calibrated"
    ppipp = "ppi++"
    ppi = "ppi"
    rg = "rg"
    labeled = "labeled"
    naive = "naive"
    all = "all"


class Engine(str, Enum):
    local = "local"
    ray = "ray"


EngineOption = Annotated[Optional[Engine], typer.Option(
    help="Scan a Parquet file, directory or glob out of core: local (the default for a directory or glob) or ray "
         "(Ray Data tasks). Without it a single file is read into memory.")]
AddressOption = Annotated[Optional[str], typer.Option(help="Ray cluster address for --engine ray (default: the "
                                                           "running cluster, or a new local one).")]


class BattleMethod(str, Enum):
    ppipp = "ppi++"
    ppi = "ppi"
    labeled = "labeled"
    naive = "naive"


class MissingJudge(str, Enum):
    error = "error"
    drop = "drop"


class PlanMethod(str, Enum):
    calibrated = "calibrated"
    ppi = "ppi"


@app.command("judge")
def judge_command(
    data: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file, one row per judged response; "
                                              "or a directory or glob of Parquet files (read out of core).")],
    judge: Annotated[str, typer.Option("--judge", help="Column of judge scores (numeric, every row).")],
    label: Annotated[str, typer.Option("--label", help="Column of human/oracle labels; empty = not labelled.")],
    group: Annotated[Optional[str], typer.Option(help="Column naming the model, policy or prompt set.")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Prompt-id column: cluster-robust errors, paired "
                                                        "comparisons, folds keep prompts together.")] = None,
    label_prob: Annotated[Optional[str], typer.Option("--label-prob", help="Column of the known probability that "
                                                      "each row was labelled (active or stratified labelling).")]
    = None,
    covariates: Annotated[Optional[str], typer.Option(help="Comma-separated columns the calibration may use "
                                                           "beside the judge score (calibrated only).")] = None,
    method: Annotated[JudgeMethod, typer.Option(help="calibrated (default), ppi++, ppi, rg (binary judge and "
                                                     "labels), labeled, naive, or all.")] = JudgeMethod.calibrated,
    calibrate_on: Annotated[Optional[str], typer.Option("--calibrate-on", help="Comma-separated groups whose "
                                                        "labels train the calibration (default: all).")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Add the differences between groups (named "
                                          "'B - A') and a ranking with simultaneous intervals.")] = False,
    naive: Annotated[bool, typer.Option("--naive/--no-naive", help="Report the naive judge mean beside the "
                                        "chosen method.")] = True,
    folds: Annotated[int, typer.Option(min=2, max=50, help="Cross-fitting folds of the calibration.")] = 5,
    engine: EngineOption = None,
    address: AddressOption = None,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=10, help="Out of core: the calibration is learnt "
                                             "on a seeded sample of at most this many labelled rows (default "
                                             "200000).")] = 200_000,
    level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Mean human score of each group from judge scores everywhere and labels on a subset."""
    from ..scan import is_dataset_path
    from .compare import compare_groups, rank_frame, rank_groups
    from .means import judge_means

    check_output_path(report, "--report")
    cov = parse_list(covariates, "--covariates")
    cal_on = parse_list(calibrate_on, "--calibrate-on") if calibrate_on else None
    streamed = engine is not None or is_dataset_path(data)
    if streamed:
        if cov:
            raise DataError("--covariates is available in memory only (read a single file without --engine)")
        if address is not None and engine is not Engine.ray:
            raise DataError("--address needs --engine ray")
        df = data
        table = _judge_streamed(data, judge=judge, label=label, group=group, cluster=cluster, label_prob=label_prob,
                                methods=_with_naive(method.value, naive), calibrate_on=cal_on, n_folds=folds,
                                level=level, seed=seed, engine=(engine or Engine.local).value, address=address,
                                sample_rows=sample_rows, as_json=json_out)
    else:
        df = read_table(data)
    with data_errors(df):
        if not streamed:
            table = judge_means(df, judge=judge, label=label, group=group, cluster=cluster, label_prob=label_prob,
                                covariates=cov, methods=_with_naive(method.value, naive), calibrate_on=cal_on,
                                n_folds=folds, level=level, seed=seed)
        sections = []
        if compare:
            extra, ranks = [], []
            methods = list(dict.fromkeys(e.method for e in table))
            for m in methods:
                if sum(e.method == m for e in table) < 2:
                    continue
                extra.extend(compare_groups(table, method=m, seed=seed))
                ranked = rank_groups(table, method=m, seed=seed)
                ranks.append((m, ranked))
                table = _add_rank_diagnostics(table, ranked, m)
            if not extra:
                raise DataError("--compare needs at least two groups (give --group)")
            table = EstimateTable([*table, *extra], table.warnings)
            from ..report import ReportSection

            for m, ranked in ranks:
                sections.append(ReportSection(f"Ranking ({m}), simultaneous intervals", frame=rank_frame(ranked)))
    if report is not None and not streamed:
        sections = [*_calibration_section(df, judge, label), *sections]
    emit(table, command="evaluation judge", as_json=json_out, report=report, sections=sections,
         title=f"Mean {label} per {group or 'table'} from judge {judge!r}")


def _judge_streamed(data: str, *, as_json: bool, **kwargs) -> EstimateTable:
    """judge_means out of core, with a progress bar in rows on a terminal."""
    from ..progress import progress, progress_enabled
    from ..scan import ParquetDataset
    from .streamed import judge_means_streamed

    ds = ParquetDataset(data)
    enabled = progress_enabled(as_json)
    m = kwargs["methods"]
    passes = 2 if m == "all" or "calibrated" in ([m] if isinstance(m, str) else m) else 1
    with progress(ds.count_rows() * passes if enabled else None, "scanning rows", enabled) as advance:
        with data_errors(ds.label):
            return judge_means_streamed(ds, progress=advance, **kwargs)


def _with_naive(method: str, naive: bool) -> str | list[str]:
    """The methods to run: the chosen one, plus the naive judge mean beside it unless asked not to."""
    if not naive or method in ("naive", "all"):
        return method
    return [method, "naive"]


def _add_rank_diagnostics(table: EstimateTable, ranked: EstimateTable, method: str) -> EstimateTable:
    info = {e.name: e for e in ranked}
    out = []
    for e in table:
        if e.method == method and e.name in info:
            r = info[e.name]
            d = r.diagnostics
            e = e.with_(diagnostics={**e.diagnostics, "rank": d["rank"], "rank_low": d["rank_low"],
                                     "rank_high": d["rank_high"], "ci_low_simultaneous": r.ci_low,
                                     "ci_high_simultaneous": r.ci_high})
        out.append(e)
    return EstimateTable(out, table.warnings)


def _calibration_section(df, judge: str, label: str):
    """A scatter of label against judge score on the labelled rows, with the binned means."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from ..report import ReportSection

    s = pd.to_numeric(df[judge], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(df[label], errors="coerce").to_numpy(dtype=float)
    ok = ~np.isnan(s) & ~np.isnan(y)
    if ok.sum() < 2:
        return []
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    jitter = np.random.default_rng(0).uniform(-0.004, 0.004, ok.sum())
    ax.scatter(s[ok] + jitter, y[ok], s=8, alpha=0.35, color="C0", label="labelled rows")
    uniq = np.unique(s[ok])
    if uniq.size <= 30:
        means = [y[ok][s[ok] == u].mean() for u in uniq]
        ax.plot(uniq, means, "o-", color="C3", label="mean label at each score")
    lo, hi = float(np.nanmin(s)), float(np.nanmax(s))
    ax.plot([lo, hi], [lo, hi], color="0.7", lw=1, label="label = judge")
    ax.set_xlabel(f"judge score ({judge})")
    ax.set_ylabel(f"label ({label})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return [ReportSection("Judge score against label (labelled rows)", figure=fig,
                          text="How the judge's scale maps to the label's: the calibration learns this curve.")]


@app.command("battles")
def battles_command(
    data: Annotated[str, typer.Argument(help="Table of battles, one row per battle.")],
    judge: Annotated[str, typer.Option("--judge", help="Column of the judge's pick (model_a/model_b, A/B, 1/0, "
                                                       "tie, or the winner's name).")],
    human: Annotated[Optional[str], typer.Option("--human", help="Column of the human vote; empty = no vote.")]
    = None,
    model_a: Annotated[str, typer.Option("--model-a", help="Column of the first competitor (shown first).")]
    = "model_a",
    model_b: Annotated[str, typer.Option("--model-b", help="Column of the second competitor.")] = "model_b",
    cluster: Annotated[Optional[str], typer.Option(help="Cluster column (prompt, voter): cluster-robust errors.")]
    = None,
    method: Annotated[BattleMethod, typer.Option(help="ppi++ (default), ppi, labeled (human votes only) or "
                                                      "naive (judge only).")] = BattleMethod.ppipp,
    missing_judge: Annotated[MissingJudge, typer.Option("--missing-judge", help="What to do with battles the "
                                                        "judge did not decide: error or drop.")]
    = MissingJudge.error,
    naive: Annotated[bool, typer.Option("--naive/--no-naive", help="Report the naive judge-only estimates beside "
                                        "the chosen method.")] = True,
    level: LevelOption = 0.95,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Prediction-powered human win rates per pair and a Bradley–Terry ranking."""
    from .battles import battle_study

    check_output_path(report, "--report")
    df = read_table(data)
    with data_errors(df):
        table = battle_study(df, model_a=model_a, model_b=model_b, judge=judge, human=human, cluster=cluster,
                             method=method.value, missing_judge=missing_judge.value, level=level)
        if naive and method.value != "naive":
            judge_only = battle_study(df, model_a=model_a, model_b=model_b, judge=judge, human=human,
                                      cluster=cluster, method="naive", missing_judge=missing_judge.value, level=level)
            table = EstimateTable([*table, *judge_only], [*table.warnings, *judge_only.warnings])
    emit(table, command="evaluation battles", as_json=json_out, report=report,
         title="Human win rates and strengths from judge picks plus human votes")


@app.command("audit")
def audit_command(
    data: Annotated[str, typer.Argument(help="Table of judged rows (with --label) or battles (with --pick).")],
    judge: Annotated[Optional[str], typer.Option("--judge", help="Judge score column (agreement audit).")] = None,
    label: Annotated[Optional[str], typer.Option("--label", help="Label column (agreement audit).")] = None,
    pick: Annotated[Optional[str], typer.Option("--pick", help="Judge pick column (position audit); model_a is "
                                                               "the answer shown first.")] = None,
    model_a: Annotated[str, typer.Option("--model-a", help="First-shown competitor (position audit).")]
    = "model_a",
    model_b: Annotated[str, typer.Option("--model-b", help="Second-shown competitor (position audit).")]
    = "model_b",
    human: Annotated[Optional[str], typer.Option("--human", help="Human vote column (position audit).")] = None,
    pair: Annotated[Optional[str], typer.Option("--pair", help="Column identifying the same comparison judged "
                                                               "more than once (e.g. in both orders).")] = None,
    group: Annotated[Optional[str], typer.Option(help="One audit per value of this column (judge, model).")]
    = None,
    cluster: Annotated[Optional[str], typer.Option(help="Cluster column (agreement audit).")] = None,
    label_prob: Annotated[Optional[str], typer.Option("--label-prob", help="Known labelling probabilities.")]
    = None,
    covariates: Annotated[Optional[str], typer.Option(help="Columns to test for judge bias at a fixed label "
                                                           "(e.g. length, model).")] = None,
    bins: Annotated[int, typer.Option(min=2, max=100, help="Bins of the calibration curve.")] = 10,
    missing_judge: Annotated[MissingJudge, typer.Option("--missing-judge")] = MissingJudge.error,
    level: LevelOption = 0.95,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Judge bias audits: position bias (--pick) and agreement with labels (--judge and --label)."""
    from .audit import judge_agreement, position_bias

    check_output_path(report, "--report")
    if pick is None and (judge is None or label is None):
        raise DataError("give --pick (position audit of battles) or both --judge and --label (agreement audit)")
    df = read_table(data)
    table = EstimateTable([])
    with data_errors(df):
        if pick is not None:
            table = table + position_bias(df, model_a=model_a, model_b=model_b, pick=pick, human=human, pair=pair,
                                          group=group, missing_judge=missing_judge.value, level=level)
        if judge is not None and label is not None:
            table = table + judge_agreement(df, judge=judge, label=label, label_prob=label_prob, cluster=cluster,
                                            group=group, covariates=parse_list(covariates, "--covariates"),
                                            n_bins=bins, level=level)
    emit(table, command="evaluation audit", as_json=json_out, report=report, title="Judge bias audit")


@app.command("plan")
def plan_command(
    data: Annotated[str, typer.Argument(help="Pilot table: judge scores on every row, labels on some.")],
    judge: Annotated[str, typer.Option("--judge", help="Judge score column.")],
    label: Annotated[str, typer.Option("--label", help="Label column (empty = not labelled).")],
    halfwidth: Annotated[float, typer.Option("--halfwidth", help="Target half-width of the interval.")],
    cost_label: Annotated[float, typer.Option("--cost-label", help="Cost of one label.")] = 1.0,
    cost_judge: Annotated[float, typer.Option("--cost-judge", help="Cost of one judge call (0: free).")] = 0.0,
    items: Annotated[Optional[int], typer.Option("--items", min=2, help="Number of judged items, when fixed.")]
    = None,
    method: Annotated[PlanMethod, typer.Option(help="Estimator the plan is for: calibrated or ppi.")]
    = PlanMethod.calibrated,
    label_prob: Annotated[Optional[str], typer.Option("--label-prob", help="Known labelling probabilities of "
                                                      "the pilot.")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Prompt-id column (bootstrap and folds by cluster).")]
    = None,
    covariates: Annotated[Optional[str], typer.Option(help="Calibration covariates.")] = None,
    active: Annotated[Optional[Path], typer.Option("--active", help="Also write an active labelling plan (CSV: "
                                                   "the input plus label_prob and to_label) here.")] = None,
    budget: Annotated[Optional[int], typer.Option("--budget", min=1, help="Labels to draw in the active round.")]
    = None,
    level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """How many labels (and judge calls) reach a target interval half-width; active labelling."""
    from .budget import active_labeling_plan, plan_labels

    check_output_path(report, "--report")
    check_output_path(active, "--active")
    if (active is None) != (budget is None):
        raise DataError("--active and --budget go together")
    if active is not None and active.suffix.lower() != ".csv":
        raise DataError(f"--active {active}: write the plan as a .csv file")
    cov = parse_list(covariates, "--covariates")
    df = read_table(data)
    with data_errors(df):
        table = plan_labels(df, judge=judge, label=label, halfwidth=halfwidth, level=level, cost_label=cost_label,
                            cost_judge=cost_judge, n_items=items, label_prob=label_prob, cluster=cluster,
                            covariates=cov, method=method.value, seed=seed)
        notes = []
        if active is not None:
            plan, summary = active_labeling_plan(df, judge=judge, label=label, budget=budget, label_prob=label_prob,
                                                 cluster=cluster, covariates=cov, seed=seed)
            notes.append(f"active plan: {summary['drawn']} of {summary['candidates']} unlabelled rows drawn "
                         f"(probabilities {summary['min_prob']:.3f} to {summary['max_prob']:.3f}); expected "
                         f"residual variance {summary['variance_ratio_vs_uniform']:.2f} x that of a uniform draw; "
                         f"written to {active} (analyse it with --label-prob label_prob)")
    if active is not None:
        write_text_atomic(active, plan.to_csv(index=False))
    table = EstimateTable(list(table), [*table.warnings, *notes])
    emit(table, command="evaluation plan", as_json=json_out, report=report, title=f"Label budget for ±{halfwidth:g}")


class Example(str, Enum):
    cje_arena = "cje-arena"
    arena_judges = "arena-judges"
    world = "world"
    battles = "battles"


@app.command("example")
def example_command(
    name: Annotated[Example, typer.Argument(help="cje-arena (real judge scores and oracle labels), arena-judges "
                                                 "(real battles, judge picks, human votes), world (simulated judge "
                                                 "scores with known truth) or battles (simulated battles).")],
    out: Annotated[Path, typer.Option("--out", help="Write the table here (.csv).")],
    seed: SeedOption = 0,
) -> None:
    """Write a shipped data set or a simulated world as a CSV file, to try the commands on."""
    from .datasets import load_arena_judges, load_cje_arena
    from .simulate import battle_world, judge_world

    check_output_path(out, "--out")
    if out.suffix.lower() != ".csv":
        raise DataError(f"--out {out}: write the example as a .csv file")
    if name == Example.cje_arena:
        frame, what = load_cje_arena(), "cje-arena: 4 policies x 1,000 prompts, judge_score, oracle_label on a subset"
    elif name == Example.arena_judges:
        frame, what = load_arena_judges(), "arena-judges: real battles with two judges' picks and the human vote"
    elif name == Example.world:
        world = judge_world(1000, seed=seed)
        frame = world.frame
        truth = ", ".join(f"{k} {v:.3f}" for k, v in world.truth.items())
        what = f"simulated judge world (true mean label: {truth})"
    else:
        bw = battle_world(4000, seed=seed)
        frame = bw.frame
        truth = ", ".join(f"{k} {v:+.3f}" for k, v in bw.strengths.items())
        what = f"simulated battles (true strengths: {truth})"
    write_text_atomic(out, frame.to_csv(index=False))
    stdout_console().print(f"wrote {frame.shape[0]} rows to {out}: {what}", highlight=False)
