"""`llmcause evaluation ...`: judge means, battles, judge audits, label budgets, example data."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ..clikit import data_errors, declare_categorical, emit, stdout_console, CategoricalOption, JsonOption, \
    LevelOption, ReportOption, SeedOption, AddressOption, Engine, EngineOption
from ..core.estimate import EstimateTable
from ..io import DataError, check_output_path, check_outputs, parse_list, read_table, write_text_atomic
from ..runs.cliopts import ApiKeyEnvOption, ConcurrencyOption, MaxRetriesOption, MaxTokensOption, RpmOption, \
    StoreOption, TimeoutOption, TpmOption


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


class InputFormat(str, Enum):
    auto = "auto"
    table = "table"
    inspect = "inspect"
    mt_bench = "mt-bench"
    lm_eval = "lm-eval"
    stata = "stata"


@app.command("judge")
def judge_command(
    data: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file, one row per judged response; "
                                              "or a directory or glob of Parquet files (read out of core), "
                                              "of inspect-ai logs or of lm-evaluation-harness samples "
                                              "(read into memory).")],
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
    categorical: CategoricalOption = None,
    method: Annotated[JudgeMethod, typer.Option(help="calibrated (default), ppi++, ppi, rg (binary judge and "
                                                     "labels), labeled, naive, or all.")] = JudgeMethod.calibrated,
    calibrate_on: Annotated[Optional[str], typer.Option("--calibrate-on", help="Comma-separated groups whose "
                                                        "labels train the calibration (default: all).")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Add the differences between groups (named "
                                          "'B - A') and a ranking with simultaneous intervals.")] = False,
    naive: Annotated[bool, typer.Option("--naive/--no-naive", help="Report the naive judge mean beside the "
                                        "chosen method.")] = True,
    target: Annotated[Optional[str], typer.Option("--target", help="Table of target rows (e.g. the production "
                                                  "prompt mix) with the --covariates columns and no outcomes: adds "
                                                  "each group's mean transported to it.")] = None,
    time: Annotated[Optional[str], typer.Option("--time", help="Time column (numbers or dates): adds the judge's "
                                                "calibration offset (label - judge) per window, change tests and a "
                                                "change point.")] = None,
    windows: Annotated[int, typer.Option(min=2, max=100, help="Time windows (equal numbers of labelled rows).")] = 4,
    half_life: Annotated[float, typer.Option(min=0.01, help="Half-life of the weighted offset, in windows.")] = 1.0,
    folds: Annotated[int, typer.Option(min=2, max=50, help="Cross-fitting folds of the calibration.")] = 5,
    fmt: Annotated[InputFormat, typer.Option("--format", help="auto: recognised from the file (an inspect-ai "
                   ".eval/.json log, FastChat MT-Bench judgments, lm-evaluation-harness samples_*.jsonl files or a "
                   "directory or glob of them, a Stata .dta file, else a table); or name one. inspect logs give "
                   "columns model, task, sample_id, epoch, scorer, score; lm-eval samples model, task, sample_id, "
                   "filter, metric, scorer, score.")] = InputFormat.auto,
    scorer: Annotated[Optional[str], typer.Option("--scorer", help="Keep the rows of this scorer (inspect-ai "
                      "and lm-eval files hold a row per sample and scorer, e.g. acc,none or "
                      "exact_match,strict-match).")] = None,
    labels: Annotated[Optional[str], typer.Option("--labels", help="A second file holding the --label column, "
                      "joined to the scores by --on.")] = None,
    on: Annotated[Optional[str], typer.Option("--on", help="The id column(s) shared by the scores "
                                             "and --labels: one, or several separated by commas "
                                             "(model,sample_id), joined on all of them.")]
    = None,
    engine: EngineOption = None,
    address: AddressOption = None,
    sample_rows: Annotated[int, typer.Option("--sample-rows", min=10, help="Out of core: the calibration is learnt "
                                             "on a seeded sample of at most this many labelled rows (default "
                                             "200000).")] = 200_000,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Score the rows whose --judge column "
                           "is empty with this model (openai:MODEL@URL, python:module:attr); needs --response.")]
    = None,
    response: Annotated[Optional[str], typer.Option("--response", help="Response text column (--judge-model).")]
    = None,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Prompt column (--judge-model).")] = None,
    judge_template: Annotated[Optional[str], typer.Option("--judge-template", help="Prompt template of a chat "
                              "judge, with {response} (and {prompt}); its reply's first number is the score.")]
    = None,
    store: StoreOption = None,
    concurrency: ConcurrencyOption = 8,
    timeout: TimeoutOption = 60.0,
    max_retries: MaxRetriesOption = 5,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    api_key_env: ApiKeyEnvOption = None,
    max_tokens: MaxTokensOption = None,
    level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Mean human score of each group from judge scores everywhere and labels on a subset."""
    from ..scan import is_dataset_path, redact_uri
    from .compare import compare_groups, rank_frame, rank_groups
    from .means import judge_means

    check_output_path(report, "--report", inputs=[data, *(f for f in (labels, target) if f)])
    cov = parse_list(covariates, "--covariates")
    cal_on = parse_list(calibrate_on, "--calibrate-on") if calibrate_on else None
    if (labels is None) != (on is None):
        raise DataError("give both --labels FILE and --on ID (the id column(s) the two files share)")
    streamed = engine is not None or (is_dataset_path(data) and not _read_in_memory(data, fmt))
    if streamed:
        # why the rows are streamed: an engine was asked for, or the input is a Parquet dataset
        where = ("read a single file without --engine" if engine is not None else
                 f"{redact_uri(data)} is read as a directory or glob of Parquet files (or their URI), out of core; "
                 "give a single file")
        if labels is not None or fmt != InputFormat.auto or categorical or scorer is not None:
            raise DataError(f"--labels, --format, --scorer and --categorical are available in memory only ({where})")
        if cov:
            raise DataError(f"--covariates is available in memory only ({where})")
        if target is not None or time is not None:
            raise DataError(f"--target and --time are available in memory only ({where})")
        if judge_model is not None:
            raise DataError(f"--judge-model is available in memory only ({where})")
        if address is not None and engine is not Engine.ray:
            raise DataError("--address needs --engine ray")
        df = data
        table = _judge_streamed(data, judge=judge, label=label, group=group, cluster=cluster, label_prob=label_prob,
                                methods=_with_naive(method.value, naive), calibrate_on=cal_on, n_folds=folds,
                                level=level, seed=seed, engine=(engine or Engine.local).value, address=address,
                                sample_rows=sample_rows, as_json=json_out)
    else:
        from ..formats import join_labels, read_any, select_scorer

        df = select_scorer(read_any(data, fmt.value), scorer, group)
        if labels is not None:
            df = join_labels(df, labels, on, label)
        df = declare_categorical(df, categorical, cov)
    calls, scoring_notes, scoring_warnings = None, [], []
    if judge_model is not None:
        from ..progress import progress_enabled
        from ..runs.cliopts import ModelSession
        from .scoring import score_missing

        if response is None:
            raise DataError("--judge-model needs --response (the column with the texts to score)")
        with ModelSession(store=store, concurrency=concurrency, timeout=timeout, max_retries=max_retries, rpm=rpm,
                          tpm=tpm, api_key_env=api_key_env, max_tokens=max_tokens, progress=progress_enabled(json_out),
                          inputs=(data,)) as session:
            model = session.load(judge_model, "--judge-model", score_template=judge_template,
                                 template_option="--judge-template")
            if not hasattr(model, "score"):
                raise DataError(f"--judge-model {judge_model}: this model cannot score a response")
            df, scoring_notes, scoring_warnings = score_missing(df, model, judge=judge, response=response,
                                                                prompt=prompt)
            calls = session.summary()
            if session.note():
                scoring_notes.append(session.note())
    tgt = None
    if target is not None:
        if not cov:
            raise DataError("--target needs --covariates: the columns that describe a row in both tables")
        tgt = read_table(target)
    if time is not None:
        from .shift import check_time_options

        check_time_options(label_prob)
    with data_errors(df):
        if not streamed:
            table = judge_means(df, judge=judge, label=label, group=group, cluster=cluster, label_prob=label_prob,
                                covariates=cov, methods=_with_naive(method.value, naive), calibrate_on=cal_on,
                                n_folds=folds, level=level, seed=seed)
        if tgt is not None:
            from .shift import transport_judge_means

            moved = transport_judge_means(table, df, tgt, covariates=cov, n_folds=folds, seed=seed, level=level)
            table = EstimateTable([*table, *moved], [*table.warnings, *moved.warnings])
        if time is not None:
            from .shift import judge_drift

            drift = judge_drift(df, judge=judge, label=label, time=time, n_windows=windows, half_life=half_life,
                                level=level)
            table = EstimateTable([*table, *drift], [*table.warnings, *drift.warnings])
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
            repeated = [] if streamed else _repeated_pairs(df, group, cluster)  # out of core: rows are not kept
            table = EstimateTable([*table, *extra], [*table.warnings, *repeated])
            from ..report import ReportSection

            for m, ranked in ranks:
                sections.append(ReportSection(f"Ranking ({m}), simultaneous intervals", frame=rank_frame(ranked)))
    if report is not None and not streamed:
        sections = [*_calibration_section(df, judge, label), *sections]
    if calls is not None:
        table = EstimateTable([e.with_(diagnostics={**e.diagnostics, "calls": calls}) for e in table],
                              [*scoring_warnings, *table.warnings])
    emit(table, command="evaluation judge", as_json=json_out, report=report, sections=sections,
         title=_judge_title(label, group, judge), notes=scoring_notes)


def _judge_title(label: str, group: Optional[str], judge: str) -> str:
    """The table's title; without --group the one row (named ``all``) is the whole table, so no "per" part."""
    return f"Mean {label}{f' per {group}' if group else ''} from judge {judge!r}"


def _read_in_memory(data: str, fmt: InputFormat) -> bool:
    """A directory or glob of lm-evaluation-harness samples or inspect-ai logs is read into memory, not scanned
    as Parquet."""
    from ..formats import detect_format
    from ..scan import is_uri

    return fmt in (InputFormat.lm_eval, InputFormat.inspect) or (
        fmt == InputFormat.auto and not is_uri(data) and detect_format(data) in ("lm-eval", "inspect"))


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


def _repeated_pairs(df, group: Optional[str], cluster: Optional[str]) -> list[str]:
    """A warning when a (group, prompt) pair has several rows: paired contrasts then weigh that prompt more."""
    if group is None or cluster is None or group not in df.columns or cluster not in df.columns:
        return []
    repeated = df.duplicated([group, cluster], keep="first").to_numpy()
    if not repeated.any():
        return []
    first = int(repeated.argmax())
    pairs = int(df[repeated][[group, cluster]].drop_duplicates().shape[0])
    return [f"{repeated.sum()} rows repeat a ({group}, {cluster}) pair already seen ({pairs} pairs; first at row "
            f"{first + 1}: {df[group].iloc[first]!s} on {df[cluster].iloc[first]!s}); the comparison counts each "
            f"{cluster} once but weighs a repeated pair by its number of rows: remove duplicates if they are copies"]


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

    check_output_path(report, "--report", inputs=[data])
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
    categorical: CategoricalOption = None,
    bins: Annotated[int, typer.Option(min=2, max=100, help="Bins of the calibration curve.")] = 10,
    missing_judge: Annotated[MissingJudge, typer.Option("--missing-judge")] = MissingJudge.error,
    judge_model: Annotated[Optional[str], typer.Option("--judge-model", help="Run the swap audit: ask this judge "
                           "(sandbox:first, sandbox:longer, openai:MODEL@URL, python:module:attr) about sampled "
                           "battles in both orders; needs --text-a and --text-b.")] = None,
    prompt: Annotated[Optional[str], typer.Option("--prompt", help="Prompt column (swap audit).")] = None,
    text_a: Annotated[Optional[str], typer.Option("--text-a", help="First answer's text column (swap audit).")]
    = None,
    text_b: Annotated[Optional[str], typer.Option("--text-b", help="Second answer's text column (swap audit).")]
    = None,
    sample: Annotated[int, typer.Option("--sample", min=2, help="Battles the swap audit asks about (all when "
                                        "fewer).")] = 200,
    judge_template: Annotated[Optional[str], typer.Option("--judge-template", help="Prompt template of a chat "
                              "judge, with {prompt}, {response_a} and {response_b}; its reply's first A, B or "
                              "tie is the verdict.")] = None,
    store: StoreOption = None,
    concurrency: ConcurrencyOption = 8,
    timeout: TimeoutOption = 60.0,
    max_retries: MaxRetriesOption = 5,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    api_key_env: ApiKeyEnvOption = None,
    max_tokens: MaxTokensOption = None,
    level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Judge bias audits: position bias (--pick, or executed with --judge-model) and agreement with labels
    (--judge and --label)."""
    from .audit import judge_agreement, position_bias

    check_output_path(report, "--report", inputs=[data])
    if pick is None and judge_model is None and (judge is None or label is None):
        raise DataError("give --pick (position audit of battles), --judge-model (swap audit, run now) or both "
                        "--judge and --label (agreement audit)")
    if judge_model is not None and (text_a is None or text_b is None):
        raise DataError("--judge-model needs --text-a and --text-b (the two answers' text columns)")
    df = declare_categorical(read_table(data), categorical, parse_list(covariates, "--covariates"))
    table = EstimateTable([])
    note = None
    if judge_model is not None:
        from ..progress import progress_enabled
        from ..runs.cliopts import ModelSession
        from .judges import SANDBOX_JUDGES
        from .swap import swap_audit

        with ModelSession(store=store, concurrency=concurrency, timeout=timeout, max_retries=max_retries, rpm=rpm,
                          tpm=tpm, api_key_env=api_key_env, max_tokens=max_tokens, progress=progress_enabled(json_out),
                          inputs=(data,)) as session:
            model = session.load(judge_model, "--judge-model", sandbox=SANDBOX_JUDGES, pair_template=judge_template,
                                 template_option="--judge-template")
            if not hasattr(model, "compare"):
                raise DataError(f"--judge-model {judge_model}: this model cannot compare two answers")
            with data_errors(df):
                audit = swap_audit(df, model, text_a=text_a, text_b=text_b, prompt=prompt, sample=sample,
                                   seed=seed, level=level, name=judge_model.split("@", 1)[0])
            summary, note = session.summary(), session.note()
        rows = audit.table
        if summary is not None:
            rows = EstimateTable([e.with_(diagnostics={**e.diagnostics, "calls": summary}) for e in rows],
                                 rows.warnings)
        table = table + rows
    with data_errors(df):
        if pick is not None:
            table = table + position_bias(df, model_a=model_a, model_b=model_b, pick=pick, human=human, pair=pair,
                                          group=group, missing_judge=missing_judge.value, level=level)
        if judge is not None and label is not None:
            table = table + judge_agreement(df, judge=judge, label=label, label_prob=label_prob, cluster=cluster,
                                            group=group, covariates=parse_list(covariates, "--covariates"),
                                            n_bins=bins, level=level)
    emit(table, command="evaluation audit", as_json=json_out, report=report, title="Judge bias audit",
         notes=[note] if note else ())


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
    categorical: CategoricalOption = None,
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

    check_outputs({"--report": report, "--active": active}, inputs=[data])
    if (active is None) != (budget is None):
        raise DataError("--active and --budget go together")
    if active is not None and active.suffix.lower() != ".csv":
        raise DataError(f"--active {active}: write the plan as a .csv file")
    cov = parse_list(covariates, "--covariates")
    df = declare_categorical(read_table(data), categorical, cov)
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
    prompt_mix = "prompt-mix"
    judge_swap = "judge-swap"
    quiz = "quiz"


@app.command("example")
def example_command(
    name: Annotated[Example, typer.Argument(help="cje-arena (real judge scores and oracle labels), arena-judges "
                                                 "(real battles, judge picks, human votes), world (simulated judge "
                                                 "scores with known truth), battles (simulated battles), "
                                                 "prompt-mix (judged benchmark answers, plus OUT_target.csv: "
                                                 "harder production prompts), judge-swap (a judge replaced by a "
                                                 "harsher one on day 36) or quiz (six questions with a right and a "
                                                 "wrong answer, for a swap audit of a real judge).")],
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
    elif name == Example.prompt_mix:
        from .simulate import prompt_mix_world

        mix = prompt_mix_world(1000, 1000, shift=1.0, label_fraction=0.15, seed=seed)
        target_path = out.with_name(out.stem + "_target.csv")
        check_output_path(target_path, "the target file")
        frame = mix.frame
        truth = ", ".join(f"{k} {v:.3f}" for k, v in mix.truth_target.items())
        what = (f"judged benchmark answers; {mix.target.shape[0]} production prompts in {target_path} (true mean "
                f"label on them: {truth})")
        write_text_atomic(target_path, mix.target.to_csv(index=False))
    elif name == Example.judge_swap:
        from .simulate import judge_swap_world

        sw = judge_swap_world(4000, seed=seed)
        frame = sw.frame
        what = (f"judged answers over 60 days; the judge is swapped on day {sw.swap_at:g} (true offset label - "
                f"judge: {sw.offsets[0]:+.3f} before, {sw.offsets[1]:+.3f} after)")
    elif name == Example.quiz:
        import pandas as pd

        from .judges import QUIZ

        frame = pd.DataFrame(QUIZ, columns=["prompt", "right", "wrong"])
        what = "quiz: prompt, right, wrong (try evaluation audit --judge-model ... --text-a right --text-b wrong)"
    else:
        bw = battle_world(4000, seed=seed)
        frame = bw.frame
        truth = ", ".join(f"{k} {v:+.3f}" for k, v in bw.strengths.items())
        what = f"simulated battles (true strengths: {truth})"
    write_text_atomic(out, frame.to_csv(index=False))
    stdout_console().print(f"wrote {frame.shape[0]} rows to {out}: {what}", highlight=False)
