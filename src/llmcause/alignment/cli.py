"""`llmcause alignment ...`: style control, length-controlled win rates, rewrite interventions."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ..clikit import data_errors, declare_categorical, emit, CategoricalOption, JsonOption, LevelOption, \
    ReportOption, SeedOption, AddressOption, Engine, EngineOption
from ..core.estimate import EstimateTable
from ..io import SOURCE_ATTR, DataError, binary_column, check_output_path, check_outputs, label_column, \
    numeric_column, parse_list, read_table, require_columns, source_of

from ..runs.cliopts import ApiKeyEnvOption, ConcurrencyOption, MaxRetriesOption, MaxTokensOption, RpmOption, \
    StoreOption, TimeoutOption, TpmOption
from .display import print_lc, print_style, style_sections
from .._lazy import lazy_module

np = lazy_module("numpy")  # imported on first use: `llmcause --help` starts without it


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Style and preferences: do annotators prefer the model, or its longer answers?")


class Weights(str, Enum):
    none = "none"
    inverse_pair = "inverse-pair"


class Ties(str, Enum):
    half = "half"
    drop = "drop"


class Learner(str, Enum):
    boosting = "boosting"
    linear = "linear"


class Tokenizer(str, Enum):
    auto = "auto"
    simple = "simple"
    tiktoken = "tiktoken"


class LcFormat(str, Enum):
    auto = "auto"
    table = "table"
    arena = "arena"
    alpacaeval = "alpacaeval"


class LcMethod(str, Enum):
    glm = "glm"
    alpacaeval = "alpacaeval"


class Attribute(str, Enum):
    length = "length"
    markdown = "markdown"


_EXAMPLE_HELP = "A CSV, TSV, JSONL, JSON or Parquet file, or a built-in example: "


class MissingText(str, Enum):
    drop = "drop"
    error = "error"


MissingTextOption = Annotated[MissingText, typer.Option(
    "--missing-text", help="Arena files: a battle with no conversation on one side is left out with one warning "
                           "(drop) or stops the command (error). An empty answer is always kept, as length 0.")]


def read_input(data: str, *, arena: bool = False, seed: int = 0, missing: str = "drop"):
    """A table from a file, an Arena battle file (``arena``, or detected by its columns), or ``example:<name>``."""
    from .arena import is_arena_file, read_arena_battles
    from .datasets import EXAMPLES, example_table

    if data.startswith("example:") and not Path(data).exists():
        name = data.split(":", 1)[1]
        if name not in EXAMPLES:
            raise DataError(f"{data}: no such example; choose from " + ", ".join(f"example:{e}" for e in EXAMPLES))
        return example_table(name, seed=seed)
    df = read_table(data)
    if arena or is_arena_file(df):
        return read_arena_battles(df, name=source_of(df), missing=missing)
    return df


def _reader_warnings(df, table: EstimateTable) -> EstimateTable:
    """The table with the reader's warnings (rows left out) put first."""
    extra = list(df.attrs.get("warnings", ()))
    return EstimateTable(list(table), [*extra, *table.warnings]) if extra else table


def _battle_columns(arena: bool, model_a, model_b, winner, text_a=None, text_b=None, features=None):
    if arena:
        model_a, model_b, winner = model_a or "model_a", model_b or "model_b", winner or "winner"
        if not features:
            text_a, text_b = text_a or "text_a", text_b or "text_b"
    for option, value in (("--model-a", model_a), ("--model-b", model_b), ("--winner", winner)):
        if not value:
            raise DataError(f"missing option {option} (or --arena for Arena's battle files)")
    return model_a, model_b, winner, text_a, text_b


def _output(table, *, command: str, as_json: bool, report, title: str, printer, sections=()) -> None:
    """JSON (and the report) through `emit`; otherwise the report, then this stage's own tables."""
    if as_json:
        emit(table, command=command, as_json=True, report=report, title=title, sections=sections)
        return
    if report is not None:
        from ..clikit import report_details
        from ..report import write_report

        write_report(report, table, title=title, sections=list(sections), **report_details(report))
    from ..clikit import is_quiet, print_estimates

    if is_quiet():
        print_estimates(table)
        return
    printer()
    if report is not None:
        from ..clikit import stdout_console

        stdout_console().print(f"report written to {report}", highlight=False)


# --------------------------------------------------------------------------- style


@app.command("style")
def style_command(
    battles: Annotated[str, typer.Argument(help=_EXAMPLE_HELP + "example:arena, example:arena-judges, "
                                                 "example:world.")],
    model_a: Annotated[Optional[str], typer.Option(help="Column with the first model's name.")] = None,
    model_b: Annotated[Optional[str], typer.Option(help="Column with the second model's name.")] = None,
    winner: Annotated[Optional[str], typer.Option(help="Vote column: model_a, model_b or tie (or P(a wins)).")]
    = None,
    text_a: Annotated[Optional[str], typer.Option(help="Column with side a's answer (text or Arena "
                                                       "conversation).")] = None,
    text_b: Annotated[Optional[str], typer.Option(help="Column with side b's answer.")] = None,
    features: Annotated[Optional[str], typer.Option(help="Precomputed style features instead of texts: for each "
                        "name F, columns F_a and F_b (per-side counts) or a column F (a battle-level gap).")] = None,
    style_features: Annotated[str, typer.Option(help="With texts: which counts become features (length, headers, "
                                                     "lists, bold, code_blocks, links).")]
    = "length,headers,lists,bold",
    controls: Annotated[Optional[str], typer.Option(help="Extra content controls for the length effect: F_a/F_b "
                                                         "count pairs or plain columns.")] = None,
    categorical: CategoricalOption = None,
    cluster: Annotated[Optional[str], typer.Option(help="Prompt (or voter) column: cluster-robust CIs.")] = None,
    by: Annotated[Optional[str], typer.Option(help="Subgroup column (language, is_code, annotator type): style "
                                                   "effects per group and a test of difference.")] = None,
    reference: Annotated[Optional[str], typer.Option(help="With --by: the group others are compared with "
                                                          "(default: the largest).")] = None,
    weights: Annotated[Weights, typer.Option(help="inverse-pair: each pair of models counts alike.")]
    = Weights.none,
    penalty: Annotated[float, typer.Option(min=0.0, help="Ridge penalty on the style coefficients.")] = 0.0,
    ties: Annotated[Ties, typer.Option(help="half: a tie is half a win for each side; drop: leave ties out.")]
    = Ties.half,
    length_effect: Annotated[bool, typer.Option("--length-effect/--no-length-effect",
                             help="Also estimate the effect of length three ways (naive, BT, DML).")] = True,
    learner: Annotated[Learner, typer.Option(help="Nuisance learner for the DML length effect.")]
    = Learner.boosting,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-fitting folds.")] = 5,
    tokenizer: Annotated[Tokenizer, typer.Option(help="auto: tiktoken when installed and available offline, "
                                                      "else simple.")] = Tokenizer.auto,
    min_battles: Annotated[int, typer.Option(min=2, help="Fewest battles a model may have.")] = 2,
    arena: Annotated[bool, typer.Option("--arena", help="Read Arena's battle format (conversations as lists of "
                                                        "turns); column options default to its names. Files with "
                                                        "Arena's columns are recognised without it.")] = False,
    missing_text: MissingTextOption = MissingText.drop,
    time: Annotated[Optional[str], typer.Option("--time", help="Time column (numbers or dates): adds strengths and "
                                                "style effects per time window, with change tests.")] = None,
    windows: Annotated[int, typer.Option(min=2, max=50, help="Time windows (equal numbers of battles).")] = 4,
    half_life: Annotated[float, typer.Option(min=0.01, help="Half-life of the weighted estimates, in windows.")]
    = 1.0,
    engine: EngineOption = None,
    address: AddressOption = None,
    level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Model strengths with style held fixed, beside plain Bradley-Terry, and the effect of each style feature.

    Scores are shown on the Elo scale (1000 + 400 r / ln 10); the JSON holds log-odds.
    """
    from ..scan import is_dataset_path
    from .battles import prepare_battles
    from .heterogeneity import style_effects_by_group
    from .length_effect import length_effects
    from .style import style_control_battles

    check_output_path(report, "--report", inputs=[battles])
    if engine is not None or (is_dataset_path(battles) and not battles.startswith("example:")):
        _style_streamed(battles, engine=engine, address=address, model_a=model_a, model_b=model_b, winner=winner,
                        text_a=text_a, text_b=text_b, features=features, style_features=style_features,
                        controls=controls, categorical=categorical, cluster=cluster, by=by, time=time,
                        weights=weights, penalty=penalty, ties=ties, length_effect=length_effect,
                        tokenizer=tokenizer, min_battles=min_battles, arena=arena, missing_text=missing_text,
                        level=level, json_out=json_out, report=report)
        return
    df = declare_categorical(read_input(battles, arena=arena, seed=seed, missing=missing_text.value), categorical,
                             parse_list(controls, "--controls"), "--controls")
    arena = arena or "text_a" in df.columns and "conversation_a" in df.columns
    feature_list = parse_list(features, "--features") if features else None
    model_a, model_b, winner, text_a, text_b = _battle_columns(arena, model_a, model_b, winner, text_a, text_b,
                                                               feature_list)
    if by:
        require_columns(df, [by])
    prepared = prepare_battles(df, model_a=model_a, model_b=model_b, winner=winner, text_a=text_a, text_b=text_b,
                               features=feature_list, style_features=parse_list(style_features, "--style-features"),
                               controls=parse_list(controls, "--controls"), cluster=cluster, ties=ties.value,
                               tokenizer=tokenizer.value, min_battles=min_battles)
    src = source_of(df)
    groups = None
    if by:
        groups = label_column(df, by)[prepared.rows]
    when = None
    if time is not None:
        from ..io import time_column

        when, when_is_date = time_column(df, time)
        when = when[prepared.rows]
    from ..progress import progress, progress_enabled

    dml = length_effect and "length" in prepared.style.names
    steps = 1 + (2 * folds if dml else 0)  # the Bradley-Terry fits, then each cross-fitted DML nuisance fit
    what = "style: Bradley-Terry" + (f", {2 * folds} length fits" if dml else "")
    with data_errors(src), progress(steps, what, enabled=progress_enabled(json_out)) as advance:
        study = style_control_battles(prepared, weights=weights.value, penalty=penalty, level=level)
        advance(1)
        table = study.estimates()
        lengths = None
        if dml:
            if prepared.n < 10 * folds:
                raise DataError(f"{src}: only {prepared.n} battles; the length effect needs at least {10 * folds} "
                                "(use --no-length-effect or fewer --folds)")
            lengths = length_effects(prepared, study.controlled, learner=learner.value, n_folds=folds, seed=seed,
                                     level=level, progress=advance)
            table = table + lengths
        hetero = None
        if by:
            hetero = style_effects_by_group(prepared, groups, reference=reference, weights=weights.value,
                                            penalty=penalty, level=level, by=by)
            table = table + hetero.estimates()
        over_time = None
        if when is not None:
            from .drift import style_over_time

            over_time = style_over_time(prepared, when, time_is_date=when_is_date, n_windows=windows,
                                        half_life=half_life, weights=weights.value, penalty=penalty, level=level)
            table = table + over_time
    notes = _style_notes(prepared.tokenizer, prepared.n_ties, prepared.ties_dropped)
    table = _reader_warnings(df, table)
    sections = style_sections(study, lengths, hetero, notes) if report is not None else []  # plots: report only
    _output(table, command="alignment style", as_json=json_out, report=report,
            title="Style-controlled model strengths", sections=sections,
            printer=lambda: _print_style_and_time(study, lengths, hetero, notes, table.warnings, over_time))


def _style_notes(tokenizer, n_ties, ties_dropped) -> list[str]:
    notes = []
    if tokenizer:
        notes.append(f"length counted in {tokenizer} tokens")
    if n_ties:
        notes.append(f"{n_ties} ties counted as half a win each")
    if ties_dropped:
        notes.append(f"{ties_dropped} ties left out (--ties drop)")
    return notes


def _style_streamed(battles: str, *, engine, address, model_a, model_b, winner, text_a, text_b, features,
                    style_features, controls, categorical, cluster, by, time, weights, penalty, ties, length_effect,
                    tokenizer, min_battles, arena, missing_text, level, json_out, report) -> None:
    """`alignment style` on a Parquet dataset out of core (`streamed.style_control_streamed`): the same
    strengths and style effects; the length effect, --by, --time and --controls stay in memory."""
    from ..progress import progress, progress_enabled
    from ..scan import ParquetDataset
    from .streamed import style_control_streamed

    memory_only = [opt for opt, given in (("--by", by), ("--time", time), ("--controls", controls),
                                          ("--categorical", categorical)) if given]
    if memory_only:
        raise DataError(f"{memory_only[0]} is available in memory only (read a single file without --engine)")
    if address is not None and engine is not Engine.ray:
        raise DataError("--address needs --engine ray")
    ds = ParquetDataset(battles)
    cols = set(ds.columns)
    if arena and {"response_a", "response_b"} <= cols and not {"conversation_a", "conversation_b"} <= cols:
        raise DataError(f"{ds.label}: Kaggle's Arena release (response_a, response_b) is read in memory only "
                        "(read a single file without --engine)")
    sides = ("conversation_a", "conversation_b")
    arena = arena or (set(sides) <= cols and "winner" in cols and {"model_a", "model_b"} <= cols)
    feature_list = parse_list(features, "--features") if features else None
    model_a, model_b, winner, text_a, text_b = _battle_columns(arena, model_a, model_b, winner, text_a, text_b,
                                                               feature_list)
    if arena and (text_a, text_b) == ("text_a", "text_b") and "text_a" not in cols and set(sides) <= cols:
        text_a, text_b = sides  # in memory, the reader joins each conversation's answers into text_a / text_b
    enabled = progress_enabled(json_out)
    with progress(None, "scanning rows (one pass per Newton step)", enabled) as advance:
        with data_errors(ds.label):
            result = style_control_streamed(
                ds, model_a=model_a, model_b=model_b, winner=winner, text_a=text_a, text_b=text_b,
                features=feature_list, style_features=parse_list(style_features, "--style-features"),
                cluster=cluster, weights=weights.value, penalty=penalty, ties=ties.value, tokenizer=tokenizer.value,
                min_battles=min_battles, level=level, missing=missing_text.value,
                arena_sides=sides if arena else (), engine=(engine or Engine.local).value, address=address,
                progress=advance)
    study = result.study
    table = study.estimates()
    left_out = []
    if length_effect and "length" in study.feature_names:
        left_out.append("the length effect (naive, BT and DML) is computed in memory only and was left out (read "
                        "a single file without --engine for it, or pass --no-length-effect)")
    table = EstimateTable(list(table), [*result.warnings, *table.warnings, *left_out])
    notes = _style_notes(result.tokenizer, result.n_ties, result.ties_dropped)
    sections = style_sections(study, None, None, notes)
    _output(table, command="alignment style", as_json=json_out, report=report,
            title="Style-controlled model strengths", sections=sections,
            printer=lambda: _print_style_and_time(study, None, None, notes, table.warnings, None))


def _print_style_and_time(study, lengths, hetero, notes, warnings, over_time) -> None:
    if over_time is not None:
        from ..clikit import stdout_console

        stdout_console().print(over_time.rich_table(title="Over time (log-odds)"))
    print_style(study, lengths, hetero, notes, warnings)


# --------------------------------------------------------------------------- lc-winrate


@app.command("lc-winrate")
def lc_winrate_command(
    data: Annotated[str, typer.Argument(help=_EXAMPLE_HELP + "example:alpaca, example:arena, example:world. "
                                              "AlpacaEval annotation files are recognised by their columns.")],
    baseline: Annotated[Optional[str], typer.Option(help="Name of the baseline model (AlpacaEval files: "
                                                         "generator_1 unless given).")] = None,
    model_a: Annotated[Optional[str], typer.Option(help="Column with the first model's name.")] = None,
    model_b: Annotated[Optional[str], typer.Option(help="Column with the second model's name.")] = None,
    winner: Annotated[Optional[str], typer.Option(help="Vote column: model_a, model_b or tie (or P(a wins)).")]
    = None,
    length_a: Annotated[Optional[str], typer.Option(help="Column with side a's answer length.")] = None,
    length_b: Annotated[Optional[str], typer.Option(help="Column with side b's answer length.")] = None,
    text_a: Annotated[Optional[str], typer.Option(help="Or: side a's answer text (length in characters).")]
    = None,
    text_b: Annotated[Optional[str], typer.Option(help="Side b's answer text.")] = None,
    instruction: Annotated[Optional[str], typer.Option(help="Instruction id column (clusters; difficulty from "
                                                            "the other models when shared).")] = None,
    difficulty: Annotated[Optional[str], typer.Option(help="Instruction difficulty column.")] = None,
    ties: Annotated[Ties, typer.Option(help="half or drop.")] = Ties.half,
    fmt: Annotated[LcFormat, typer.Option("--format", help="auto: AlpacaEval annotations and Arena battle files "
                                                          "are recognised by their columns; table: a plain table "
                                                          "read through the column options.")] = LcFormat.auto,
    method: Annotated[LcMethod, typer.Option(help="glm: llmcause's length-controlled GLM (maximum likelihood, "
                                                  "difficulty from the other models); alpacaeval: AlpacaEval "
                                                  "2.0's length_controlled_v1 as published (needs its "
                                                  "df_gamed.csv).")] = LcMethod.glm,
    alpacaeval_gamed: Annotated[Optional[str], typer.Option(
        "--alpacaeval-gamed", help="--method alpacaeval: AlpacaEval's df_gamed.csv (gamed-baseline annotations "
                                   "and instruction difficulties). Default: the copy alpaca_eval left in the "
                                   "Hugging Face cache (never downloaded).")] = None,
    arena: Annotated[bool, typer.Option("--arena", help="Read Arena's battle format (recognised by its columns "
                                                        "without it).")] = False,
    missing_text: MissingTextOption = MissingText.drop,
    level: LevelOption = 0.95,
    seed: SeedOption = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Length-controlled win rate of each model against a BASELINE (AlpacaEval style), with a CI that includes
    the uncertainty of the fitted GLM; the raw win rate beside it."""
    from ..formats import is_alpacaeval_table, read_alpacaeval
    from .arena import texts_of_column, winner_outcome
    from .lc_winrate import lc_winrates, orient_against_baseline, require_comparisons

    check_output_path(report, "--report", inputs=[data, *([alpacaeval_gamed] if alpacaeval_gamed else [])])
    if fmt == LcFormat.alpacaeval:
        df = read_alpacaeval(data)
    else:
        df = read_input(data, arena=arena or fmt == LcFormat.arena, seed=seed, missing=missing_text.value)
        if fmt == LcFormat.auto and not arena and is_alpacaeval_table(df):
            df = read_alpacaeval(df)
    src = source_of(df)
    alpacaeval_file = df.attrs.get("format") == "alpacaeval"
    reader_warnings = list(df.attrs.get("warnings", ()))
    if alpacaeval_file:
        given = [o for o, v in (("--model-a", model_a), ("--model-b", model_b), ("--winner", winner),
                                ("--length-a", length_a), ("--length-b", length_b), ("--text-a", text_a),
                                ("--text-b", text_b)) if v]
        if given:
            raise DataError(f"{src}: an AlpacaEval annotation file needs no {given[0]} (its columns are known); "
                            "use --format table to read it as a plain table")
        require_columns(df, [c for c in (instruction, difficulty) if c])
        itself = (df["generator_1"] == df["generator_2"]).to_numpy()
        if itself.all():
            raise DataError(f"{src}: every annotation compares {df['generator_1'].iloc[0]!r} with itself; there is "
                            "no model to set against the baseline")
        if itself.any():
            reader_warnings.append(f"{src}: {int(itself.sum())} annotations of a model against itself were left out "
                                   "(50% by construction)")
            df = df[~itself].reset_index(drop=True)
            df.attrs[SOURCE_ATTR] = src
        if baseline is None:
            firsts = sorted(set(df["generator_1"]))
            if len(firsts) > 1:
                raise DataError(f"{src}: column 'generator_1' holds {len(firsts)} models ({', '.join(firsts[:4])}); "
                                "give --baseline")
            baseline = firsts[0]
        model_a, model_b, instruction = "generator_1", "generator_2", instruction or "instruction"
        a = df["generator_1"].to_numpy().astype(str)
        b = df["generator_2"].to_numpy().astype(str)
        y = 1.0 - df["p_2"].to_numpy(dtype=float)  # P(generator_1 preferred)
        la = df["length_1"].to_numpy(dtype=float)
        lb = df["length_2"].to_numpy(dtype=float)
    else:
        if baseline is None:
            raise DataError("missing option --baseline (the baseline model's name)")
        arena = arena or fmt == LcFormat.arena or "text_a" in df.columns and "conversation_a" in df.columns
        model_a, model_b, winner, text_a, text_b = _battle_columns(arena, model_a, model_b, winner, text_a, text_b,
                                                                   [length_a] if length_a else None)
        if (length_a is None) != (length_b is None) or (text_a is None) != (text_b is None):
            raise DataError("give both --length-a and --length-b (or both --text-a and --text-b)")
        if length_a is None and text_a is None:
            raise DataError("give the answer lengths (--length-a, --length-b) or texts (--text-a, --text-b)")
        require_columns(df, [model_a, model_b, winner, *[c for c in (instruction, difficulty) if c]])
        a = label_column(df, model_a)
        b = label_column(df, model_b)
        y = winner_outcome(df, winner, ties=ties.value)
        if length_a is not None:
            la = numeric_column(df, length_a, lower=0)
            lb = numeric_column(df, length_b, lower=0)
        else:
            la = np.array([len(t) for t in texts_of_column(df, text_a)], dtype=float)
            lb = np.array([len(t) for t in texts_of_column(df, text_b)], dtype=float)
        itself = np.flatnonzero(a == b)
        if itself.size:
            i = int(itself[0])
            raise DataError(f"{src}: columns {model_a!r} and {model_b!r}, row {i + 1}: {a[i]!r} plays against "
                            f"itself ({itself.size} such rows); a battle needs two different models")
    if baseline not in set(a) | set(b):
        raise DataError(f"{src}: the baseline {baseline!r} appears in neither {model_a!r} nor {model_b!r}")
    gamed = _gamed_rows(alpacaeval_gamed) if method == LcMethod.alpacaeval else None
    keep = ~np.isnan(y)
    model, pref, lm, lbase, idx = orient_against_baseline(a[keep], b[keep], y[keep], la[keep], lb[keep], baseline)
    rows = np.flatnonzero(keep)[idx]
    instr = None if instruction is None else label_column(df, instruction)[rows]
    gam = None if difficulty is None else numeric_column(df, difficulty)[rows]
    skipped = int(keep.sum() - idx.shape[0])
    with data_errors(src):
        require_comparisons(model, columns=(model_a, model_b), baseline=baseline)
        if gamed is not None:
            from .lc_alpacaeval import alpacaeval_lc_winrates

            pos = df["position"].to_numpy()[rows] if alpacaeval_file else None
            table = alpacaeval_lc_winrates(model, pref, lm, lbase, gamed, instructions=instr, positions=pos,
                                           difficulty=gam, level=level, baseline=baseline, rows=rows)
        else:
            table = lc_winrates(model, pref, lm, lbase, instructions=instr, difficulty=gam, level=level,
                                baseline=baseline, rows=rows)
    warnings = [*reader_warnings, *table.warnings]
    if skipped:
        warnings.append(f"{skipped} battles without the baseline were left out")
    table = EstimateTable(list(table), warnings)
    _output(table, command="alignment lc-winrate", as_json=json_out, report=report,
            title=f"Length-controlled win rates against {baseline} ({method.value})",
            printer=lambda: print_lc(table, baseline))


def _gamed_rows(path: Optional[str]):
    """AlpacaEval's gamed-baseline rows from --alpacaeval-gamed, else from the local Hugging Face cache."""
    from .lc_alpacaeval import GAMED_FILE, find_gamed, hf_cache_dirs, read_gamed

    if path is None:
        found = find_gamed()
        if found is None:
            where = ", ".join(str(d) for d in hf_cache_dirs())
            raise DataError(f"--method alpacaeval needs AlpacaEval's {GAMED_FILE} (gamed-baseline annotations and "
                            "instruction difficulties, from the Hugging Face dataset tatsu-lab/alpaca_eval): give "
                            f"--alpacaeval-gamed PATH; none was found in the Hugging Face cache ({where})")
        path = str(found)
    return read_gamed(path)


# --------------------------------------------------------------------------- rate


@app.command("rate")
def rate_command(
    data: Annotated[str, typer.Argument(help=_EXAMPLE_HELP + "example:responses.")],
    text: Annotated[str, typer.Option(help="Column with the responses (text or Arena conversation).")],
    attribute: Annotated[Attribute, typer.Option(help="The attribute to switch: length (long vs short) or "
                                                      "markdown (on vs off).")] = Attribute.length,
    prompt: Annotated[Optional[str], typer.Option(help="Prompt column, passed to the rewriter and reward.")]
    = None,
    treatment: Annotated[Optional[str], typer.Option(help="Binary column with the attribute (default: measured "
                                                          "from the text).")] = None,
    threshold: Annotated[int, typer.Option(min=2, help="Length attribute: long means at least this many "
                                                       "tokens.")] = 150,
    reward: Annotated[str, typer.Option(help="Reward model: sandbox (sandbox:length, a known length effect), "
                                             "ngram (sandbox:ngram, learnt from --train votes), "
                                             "openai:MODEL@URL or python:module:attr.")] = "sandbox",
    rewriter: Annotated[Optional[str], typer.Option(help="Rewriter: sandbox (the rule rewriter of --attribute), "
                                                         "openai:MODEL@URL or python:module:attr.")] = None,
    reward_template: Annotated[Optional[str], typer.Option("--reward-template", help="Prompt template of a chat "
                               "reward model, with {response} (and {prompt}); its reply's first number is the "
                               "reward.")] = None,
    rewrite_on_template: Annotated[Optional[str], typer.Option("--rewrite-on-template", help="Prompt template "
                                   "of a chat rewriter that turns the attribute on, with {response} (and "
                                   "{prompt}).")] = None,
    rewrite_off_template: Annotated[Optional[str], typer.Option("--rewrite-off-template", help="Likewise, "
                                    "turning the attribute off.")] = None,
    length_coef: Annotated[float, typer.Option(help="Sandbox reward: its true length effect.")] = 0.5,
    train: Annotated[Optional[str], typer.Option(help="Battles to learn the n-gram reward from: an Arena file, or "
                                                      "columns text_a, text_b, winner.")] = None,
    cluster: Annotated[Optional[str], typer.Option(help="Prompt id column: cluster-robust CIs.")] = None,
    rewrites: Annotated[Optional[Path], typer.Option(help="Write every original, rewrite and reward to this "
                                                          "CSV.")] = None,
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
    """Effect of an attribute on a reward model by rewriting (RATE): naive, single rewrite, rewrite of rewrite."""
    from ..io import write_text_atomic
    from ..progress import progress, progress_enabled
    from ..runs.cliopts import ModelSession
    from ..runs.models import ChatModel
    from .arena import texts_of_column
    from .llm import ModelReward, ModelRewriter, default_rewrite_templates
    from .rate import rate_effects
    from .rewards import LengthSandboxReward, length_attribute
    from .rewriters import LengthRewriter, MarkdownRewriter, has_markdown

    check_outputs({"--report": report, "--rewrites": rewrites}, inputs=[data, train])
    reward_spec = {"sandbox": "sandbox:length", "ngram": "sandbox:ngram"}.get(reward, reward)
    rewriter_spec = rewriter or "sandbox"
    if rewriter_spec == "sandbox":
        rewriter_spec = f"sandbox:{attribute.value}"
    if reward_spec == "sandbox:ngram" and train is None:
        raise DataError("--reward ngram needs --train (battles with texts and votes to learn it from)")
    df = read_input(data, seed=seed)
    src = source_of(df)
    texts = texts_of_column(df, text)
    prompts = None if prompt is None else [str(p) for p in label_column(df, prompt)]
    clusters = None if cluster is None else label_column(df, cluster)
    attr_of = length_attribute(threshold) if attribute == Attribute.length else has_markdown
    w = binary_column(df, treatment) if treatment else np.array([attr_of(t) for t in texts], dtype=float)
    templates = default_rewrite_templates(attribute.value, threshold)
    for target, given, option in ((1, rewrite_on_template, "--rewrite-on-template"),
                                  (0, rewrite_off_template, "--rewrite-off-template")):
        if given is not None:
            if "{response}" not in given:
                raise DataError(f"{option}: the template must contain {{response}}")
            templates[target] = given
    sandbox_rewriters = {"length": lambda: LengthRewriter(threshold), "markdown": MarkdownRewriter}
    sandbox_rewards = {"length": lambda: LengthSandboxReward(length_coef=length_coef, threshold=threshold,
                                                             seed=seed),
                       "ngram": lambda: _train_ngram(train, seed)}
    with ModelSession(store=store, concurrency=concurrency, timeout=timeout, max_retries=max_retries, rpm=rpm,
                      tpm=tpm, api_key_env=api_key_env, max_tokens=max_tokens, progress=progress_enabled(json_out),
                      inputs=(data, train)) as session:
        model = session.load(reward_spec, "--reward", sandbox=sandbox_rewards, score_template=reward_template,
                             template_option="--reward-template")
        if not hasattr(model, "score"):
            raise DataError(f"--reward {reward}: this model cannot score a response")
        if isinstance(model, ChatModel):  # its score is the first number of its reply to the reward template
            model = ModelReward(model)
        rw = session.load(rewriter_spec, "--rewriter", sandbox=sandbox_rewriters)
        if isinstance(rw, ChatModel) or not hasattr(rw, "rewrite"):
            if not hasattr(rw, "generate"):
                raise DataError(f"--rewriter {rewriter}: this model can neither rewrite nor generate text")
            rw = ModelRewriter(rw, templates)
        # after the models load, so that a bad model option is reported before what it would be run on
        n1 = int(w.sum())
        if min(n1, w.shape[0] - n1) < 2:  # rewrites in both directions need both kinds of response
            where = f"column {treatment!r}" if treatment else f"column {text!r} ({attribute.value} as measured)"
            raise DataError(f"{src}: {where}: need at least two responses with and two without the attribute (have "
                            f"{n1} and {w.shape[0] - n1})")
        chat = session.stats() is not None
        with progress(8, "rate", enabled=progress_enabled(json_out) and not chat) as advance, data_errors(src):
            result = rate_effects(texts, w, model, rw, prompts=prompts, cluster=clusters, attribute_of=attr_of,
                                  name=attribute.value, level=level, on_step=lambda s: advance(1))
        calls, note = session.summary(), session.note()
    table = result.table
    known = reward_spec == "sandbox:length" and attribute == Attribute.length
    if known:
        table = EstimateTable([e.with_(diagnostics={**e.diagnostics, "true_effect": length_coef})
                               if e.estimand.startswith("effect") else e for e in table], table.warnings)
    if calls is not None:
        table = EstimateTable([e.with_(diagnostics={**e.diagnostics, "calls": calls}) for e in table],
                              table.warnings)
    if rewrites is not None:
        write_text_atomic(rewrites, result.texts.to_csv(index=False))
    truth = {f"{e.name} ({e.method})": length_coef for e in table if known and e.estimand.startswith("effect")}
    reward_name = {"sandbox:length": "sandbox", "sandbox:ngram": "ngram"}.get(reward_spec, reward_spec.split("@")[0])
    emit(table, command="alignment rate", as_json=json_out, report=report, truth=truth or None,
         title=f"Effect of {attribute.value} on the {reward_name} reward (RATE)", notes=[note] if note else ())


def _train_ngram(path: str, seed: int):
    from .arena import read_arena_battles, texts_of_column, winner_outcome
    from .rewards import NgramRewardModel

    df = read_input(path, seed=seed)
    if {"conversation_a", "conversation_b"} <= set(df.columns) or {"response_a", "response_b"} <= set(df.columns):
        df = read_arena_battles(df, name=source_of(df))
    require_columns(df, ["text_a", "text_b", "winner"])
    y = winner_outcome(df, "winner")
    return NgramRewardModel().fit(texts_of_column(df, "text_a"), texts_of_column(df, "text_b"), y)
