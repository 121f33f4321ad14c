"""`llmcause pretraining ...`: design mixture interventions, run them, estimate effects, recommend a mix."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from ..clikit import data_errors, emit, print_warnings, stdout_console, JsonOption, LevelOption, ReportOption
from ..io import DataError, check_output_path, parse_list, read_table, require_columns, source_of, \
    write_text_atomic


app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Data mixtures: what a domain's share of the pretraining mix does to each held-out loss, "
                       "from proxy runs that really train (Kneser-Ney byte models on a shipped six-domain corpus) "
                       "or from a table of past runs; and which mixture to use, verified by training it.")


class Kind(str, Enum):
    dirichlet = "dirichlet"
    one_at_a_time = "one-at-a-time"
    inclusion = "inclusion"


class ExecutorName(str, Enum):
    serial = "serial"
    process = "process"
    ray = "ray"


class Law(str, Enum):
    auto = "auto"
    loglinear = "loglinear"
    exponential = "exponential"
    boosting = "boosting"


class Learner(str, Enum):
    linear = "linear"
    spline = "spline"
    boosting = "boosting"




# --------------------------------------------------------------------------- helpers


def _domains(text: Optional[str]) -> list[str]:
    from .corpus import load_corpus

    corpus = load_corpus()
    names = parse_list(text, "--domains") if text else list(corpus.names)
    for d in names:
        if d not in corpus.names:
            raise DataError(f"--domains: unknown domain {d!r}; the corpus has: {', '.join(corpus.names)}")
    if len(set(names)) != len(names):
        raise DataError("--domains: a domain is listed twice")
    if len(names) < 2:
        raise DataError("--domains: a mixture needs at least two domains")
    return names


def _positive(value: int, option: str, what: str = "a positive number") -> int:
    if value < 1:
        raise DataError(f"{option}: must be {what}, got {value}")
    return value


def _config(order: int, budget: int, block: int):
    from .proxy import ProxyConfig

    if not 1 <= order <= 7:
        raise DataError(f"--order: must be from 1 to 7, got {order}")
    _positive(budget, "--budget", "a positive number of bytes")
    if block < 16:
        raise DataError(f"--block: must be at least 16 bytes, got {block}")
    return ProxyConfig(order, budget, block)


def _is_store(path: str) -> bool:
    p = Path(path)
    if p.suffix.lower() in (".db", ".sqlite", ".sqlite3"):
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _open_store(path: str, create: bool):
    from ..runs import RunStore, StoreError

    if not create and not Path(path).exists():
        raise DataError(f"{path}: no such file")
    try:
        return RunStore(path, create=create)
    except StoreError as exc:
        raise DataError(str(exc)) from None


def _results(source: str, campaign: Optional[str]):
    """A results table from a run store or a results file; runs without a result are counted, then dropped."""
    from .campaign import drop_failed_runs, load_results, runs_left_out

    if _is_store(source):
        store = _open_store(source, create=False)
        try:
            if campaign is not None and campaign not in store.campaigns():
                raise DataError(f"{source}: no campaign {campaign!r}; the store has: "
                                f"{', '.join(store.campaigns()) or '(none)'}")
            frame = load_results(store, campaign)
        finally:
            store.close()
        if frame.empty:
            gone = runs_left_out(frame)
            detail = f" ({gone['failed']} failed, {gone['not_run']} never finished)" if any(gone.values()) else ""
            raise DataError(f"{source}: the store holds no finished proxy runs{detail}")
        frame.attrs["llmcause_source"] = source
        return frame
    frame = read_table(source)
    if campaign is not None:
        require_columns(frame, ["campaign"])
        frame = frame[frame["campaign"].astype(str) == campaign].copy()
        frame.attrs["llmcause_source"] = source
    frame, _ = drop_failed_runs(frame)
    if frame.empty:
        raise DataError(f"{source}: every run in the table has empty losses (failed runs); nothing to analyse")
    return frame


def _with_left_out(table, frame):
    """The table with a warning counting the registered runs it could not use (failed or unfinished)."""
    from ..core.estimate import EstimateTable
    from .campaign import left_out_warnings

    extra = left_out_warnings(frame)
    return EstimateTable(list(table), [*extra, *table.warnings]) if extra else table


def _check_results(frame) -> None:
    from .campaign import loss_columns
    from .designs import design_domains
    from ..io import numeric_column

    src = source_of(frame)
    require_columns(frame, ["kind", "arm", "seed"])
    if not design_domains(frame):
        raise DataError(f"{src}: no weight columns (w:<domain>)")
    if not loss_columns(frame):
        raise DataError(f"{src}: no loss columns (bpb:<domain>)")
    for col in [c for c in frame.columns if str(c).startswith(("w:", "bpb:"))]:
        numeric_column(frame, col, lower=0.0)


def _print_json(doc: dict) -> None:
    sys.stdout.write(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- commands


@app.command("design")
def design_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the design here (CSV).")],
    domains: Annotated[Optional[str], typer.Option(help="Comma-separated domains (default: all six).")] = None,
    kind: Annotated[Kind, typer.Option(help="dirichlet (RegMix swarm), one-at-a-time (drop each domain: "
                                            "replacement and augmentation arms) or inclusion (random subsets).")]
    = Kind.dirichlet,
    runs: Annotated[int, typer.Option(help="Mixtures (dirichlet) or subsets (inclusion), besides uniform.")] = 32,
    seeds: Annotated[int, typer.Option(help="Seeds per mixture (arms are paired by seed).")] = 3,
    budget: Annotated[int, typer.Option(help="Training bytes per run.")] = 1_000_000,
    order: Annotated[int, typer.Option(help="n-gram order of the proxy (1-7).")] = 5,
    block: Annotated[int, typer.Option(help="Bytes per training block.")] = 4096,
    base: Annotated[Optional[str], typer.Option(help="one-at-a-time base mix, e.g. code=0.5,math=0.5 "
                                                     "(default uniform).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for drawing the mixtures.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Write a design of proxy runs (one row per run); the uniform mix is always an arm."""
    from .designs import make_design

    check_output_path(out, "--out")
    names = _domains(domains)
    config = _config(order, budget, block)
    _positive(seeds, "--seeds")
    _positive(runs, "--runs")
    base_weights = _parse_weights(base, names) if base else None
    with data_errors("design"):
        frame = make_design(kind.value, names, runs=runs, seeds=seeds, config=config, design_seed=seed,
                            base=base_weights)
    write_text_atomic(out, frame.to_csv(index=False))
    if json_out:
        _print_json({"command": "pretraining design", "out": str(out), "runs": int(len(frame)),
                     "mixtures": int(frame["mixture"].nunique()), "estimates": [], "warnings": []})
    else:
        plural = "s" if seeds > 1 else ""
        stdout_console().print(f"wrote {len(frame)} runs ({frame['mixture'].nunique()} mixtures x {seeds} seed{plural}) "
                               f"to {out}", highlight=False)


def _parse_weights(text: str, names: list[str]) -> dict[str, float]:
    out = {}
    for part in parse_list(text, "--base"):
        if "=" not in part:
            raise DataError(f"--base: {part!r} is not domain=weight")
        d, v = part.split("=", 1)
        d = d.strip()
        if d not in names:
            raise DataError(f"--base: unknown domain {d!r}; the design has: {', '.join(names)}")
        try:
            out[d] = float(v)
        except ValueError:
            raise DataError(f"--base: {v!r} is not a number") from None
        if not out[d] >= 0:
            raise DataError(f"--base: the weight of {d!r} must be non-negative")
    if abs(sum(out.values()) - 1.0) > 1e-6:
        raise DataError(f"--base: the weights sum to {sum(out.values()):.6g}, not 1")
    return out


@app.command("run")
def run_command(
    design: Annotated[str, typer.Argument(help="Design file (CSV etc.) from `pretraining design`, or your own "
                                               "with seed, budget, order and w:<domain> columns.")],
    store: Annotated[Path, typer.Option(help="SQLite run store; finished runs are skipped, so a killed "
                                             "campaign resumes.")],
    executor: Annotated[ExecutorName, typer.Option(help="serial, process (local pool) or ray (extra).")]
    = ExecutorName.serial,
    workers: Annotated[Optional[int], typer.Option(help="Workers for process/ray (default: CPU count).")] = None,
    campaign: Annotated[Optional[str], typer.Option(help="Name of this campaign in the store (default: the "
                                                         "design file's name).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Also write the results table here (CSV).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Execute a design's proxy runs, skipping those already in the store."""
    from ..progress import progress_enabled
    from ..runs import StoreError, make_executor
    from .campaign import read_design, run_design

    check_output_path(store, "--store")
    check_output_path(out, "--out")
    if workers is not None:
        _positive(workers, "--workers")
    frame = read_design(design)
    try:
        ex = make_executor(executor.value, workers)
    except ImportError as exc:
        raise DataError(f"--executor {executor.value}: {exc}") from None
    run_store = _open_store(str(store), create=True)
    try:
        summary, results = run_design(frame, run_store, executor=ex, campaign=campaign or Path(design).name,
                                      progress=progress_enabled(json_out))
    except StoreError as exc:
        raise DataError(str(exc)) from None
    finally:
        run_store.close()
    if out is not None:
        write_text_atomic(out, results.to_csv(index=False))
    warnings = [f"{summary.failed} runs failed; the first error: {next(iter(summary.errors.values()))}"] \
        if summary.failed else []
    if json_out:
        _print_json({"command": "pretraining run", **summary.to_dict(), "store": str(store), "estimates": [],
                     "warnings": warnings})
    else:
        stdout_console().print(f"executed {summary.executed} runs, skipped {summary.skipped} already stored "
                               f"({summary.runs} distinct runs, {summary.executor} executor, "
                               f"{summary.seconds:.1f} s); store {store}", highlight=False)
        print_warnings(warnings)
    if summary.failed:
        raise typer.Exit(1)


@app.command("effects")
def effects_command(
    runs: Annotated[str, typer.Argument(help="Run store (.db) or a results/past-runs table (CSV, ...).")],
    campaign: Annotated[Optional[str], typer.Option(help="Only this campaign's runs.")] = None,
    confounders: Annotated[Optional[str], typer.Option(help="Past-runs table: comma-separated confounder "
                                                            "columns (e.g. log_params,log_tokens); switches to "
                                                            "the observational (DML) analysis.")] = None,
    treatment: Annotated[Optional[str], typer.Option(help="Past-runs table: weight columns whose effect to "
                                                          "estimate (default: every w:<domain>).")] = None,
    losses: Annotated[Optional[str], typer.Option(help="Past-runs table: loss columns (default: every "
                                                       "bpb:<domain>).")] = None,
    learner: Annotated[Learner, typer.Option(help="DML nuisance learner.")] = Learner.spline,
    folds: Annotated[int, typer.Option(min=2, max=50, help="Cross-fitting folds (DML).")] = 5,
    on: Annotated[Optional[str], typer.Option(help="Only these held-out losses, e.g. code,math,mean "
                                                   "(default: every domain and the mean).")] = None,
    level: LevelOption = 0.95,
    seed: Annotated[int, typer.Option(help="Seed for the folds.")] = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Effect of each domain on each held-out loss (bits per byte), named <domain>:<held-out domain>."""
    from .effects import designed_effects, observational_effects

    check_output_path(report, "--report")
    frame = _results(runs, campaign)
    src = source_of(frame)
    if confounders:
        conf = parse_list(confounders, "--confounders")
        weights = [c for c in frame.columns if str(c).startswith("w:")]
        treat = parse_list(treatment, "--treatment") if treatment else weights
        outs = parse_list(losses, "--losses") if losses else [c for c in frame.columns if str(c).startswith("bpb:")]
        if not treat:
            raise DataError(f"{src}: no treatment columns: name them with --treatment (or use w:<domain> columns)")
        if not outs:
            raise DataError(f"{src}: no loss columns: name them with --losses (or use bpb:<domain> columns)")
        from ..io import numeric_column

        for col in [*conf, *treat, *outs, *weights]:
            numeric_column(frame, col)
        if len(frame) < 4 * folds:
            raise DataError(f"{src}: {len(frame)} runs are too few for {folds}-fold cross-fitting "
                            f"(need at least {4 * folds})")
        with data_errors(src):
            table = observational_effects(frame, treatments=treat, outcomes=outs, confounders=conf,
                                          weights=weights or None, learner=learner.value, n_folds=folds,
                                          seed=seed, level=level)
        title = "Effects of domain weights on held-out losses, from past runs (DML)"
    else:
        _check_results(frame)
        with data_errors(src):
            table = designed_effects(frame, level=level, seed=seed)
        title = "Effects of adding each domain on held-out losses (bits per byte), from designed proxy runs"
    if on:
        from ..core.estimate import EstimateTable

        wanted = parse_list(on, "--on")
        held = {e.name.split(":", 1)[1] for e in table}
        for name in wanted:
            if name not in held:
                raise DataError(f"--on: no held-out loss {name!r}; these are: {', '.join(sorted(held))}")
        table = EstimateTable([e for e in table if e.name.split(":", 1)[1] in wanted], table.warnings)
    table = _with_left_out(table, frame)
    emit(table, command="pretraining effects", as_json=json_out, report=report, title=title,
         sections=_effect_sections(table))


def _effect_sections(table) -> list:
    import pandas as pd

    from ..report import ReportSection

    frame = table.to_frame()
    if frame.empty:
        return []
    frame = frame[frame["method"] != "naive"]
    sections = []
    for estimand, part in frame.groupby("estimand", sort=False):
        names = part["name"].str.split(":", n=1, expand=True)
        grid = pd.DataFrame({"domain": names[0], "held-out": names[1], "estimate": part["estimate"]})
        pivot = grid.pivot_table(index="domain", columns="held-out", values="estimate", sort=False).round(4)
        pivot.insert(0, "adding", pivot.index)
        sections.append(ReportSection(title=f"{estimand}: effect on held-out bits per byte (rows: domain added)",
                                      frame=pivot.reset_index(drop=True)))
    return sections


@app.command("recommend")
def recommend_command(
    runs: Annotated[str, typer.Argument(help="Run store (.db) or results table holding a Dirichlet swarm.")],
    target: Annotated[str, typer.Option(help="What to minimise: mean (average held-out bits per byte) or one "
                                             "domain's held-out loss.")] = "mean",
    law: Annotated[Law, typer.Option(help="Mixing law; auto picks the best held-out Spearman.")] = Law.auto,
    campaign: Annotated[Optional[str], typer.Option(help="Only this campaign's runs.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Train the recommended, the uniform and the "
                                                          "unconstrained mix on fresh seeds and compare.")] = False,
    seeds: Annotated[int, typer.Option(help="Seeds for verification.")] = 3,
    executor: Annotated[ExecutorName, typer.Option(help="Executor for verification runs.")] = ExecutorName.serial,
    workers: Annotated[Optional[int], typer.Option(help="Workers for process/ray.")] = None,
    candidates: Annotated[int, typer.Option(help="Candidate mixtures searched.")] = 20_000,
    level: LevelOption = 0.95,
    seed: Annotated[int, typer.Option(help="Seed for folds and candidates.")] = 0,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Recommend the mixture minimising the target within the swarm's support (and verify it)."""
    from ..core.estimate import Estimate, EstimateTable
    from ..progress import progress_enabled
    from ..report import ReportSection
    from .recommend import recommend_mixture, verify_recommendation

    check_output_path(report, "--report")
    _positive(seeds, "--seeds")
    _positive(candidates, "--candidates")
    frame = _results(runs, campaign)
    _check_results(frame)
    src = source_of(frame)
    swarm = frame[frame["kind"] == "dirichlet"] if (frame["kind"] == "dirichlet").any() else \
        frame[~frame["kind"].isin(["verification", "scale"])]
    require_columns(swarm, ["order", "budget", "block"])
    configs = swarm[["order", "budget", "block"]].drop_duplicates()
    if len(configs) > 1:
        listed = "; ".join(f"order {r.order}, budget {r.budget}" for r in configs.itertuples())
        raise DataError(f"{src}: the swarm runs use {len(configs)} proxy configurations ({listed}); choose one "
                        "with --campaign")
    known = [c[4:] for c in frame.columns if str(c).startswith("bpb:")]
    if target != "mean" and target not in known:
        raise DataError(f"--target: unknown target {target!r}; use mean or one of: {', '.join(known)}")
    with data_errors(src):
        rec = recommend_mixture(swarm, target=target, law=law.value, n_candidates=candidates, seed=seed, level=level)
    estimates = list(rec.spearman)
    if verify:
        store = _open_store(runs, create=False) if _is_store(runs) else None
        try:
            ex = _executor(executor, workers)
            verified = verify_recommendation(rec, seeds, store=store, executor=ex, level=level,
                                             progress=progress_enabled(json_out))
        finally:
            if store is not None:
                store.close()
        table = EstimateTable([*estimates, *verified], verified.warnings)
    else:
        nan = float("nan")
        pred = Estimate(name="recommended", estimand=f"predicted held-out {target} bits per byte",
                        method=f"{rec.law} law (unverified)", estimate=rec.predicted, se=nan, ci_low=nan,
                        ci_high=nan, level=level, n=int(len(swarm)),
                        diagnostics={"weights": rec.weights_dict(), "uniform_predicted": rec.uniform_predicted,
                                     "support_radius": rec.radius})
        table = EstimateTable([*estimates, pred], [*rec.warnings, "the recommendation is not verified: rerun "
                                                   "with --verify to train it against the uniform mix"])
    table = _with_left_out(table, frame)
    weights = rec.weights_frame()
    emit(table, command="pretraining recommend", as_json=json_out, report=report,
         title=f"Recommended mixture for held-out {target} loss ({rec.law} law, within the swarm's support)",
         sections=[ReportSection(title="Mixtures (weights)", frame=weights)])
    if not json_out:
        from rich.table import Table

        t = Table(title="mixture weights")
        for col in weights.columns:
            t.add_column(str(col), justify="left" if col == "mixture" else "right")
        for row in weights.itertuples(index=False):
            t.add_row(*[str(v) if isinstance(v, str) else f"{v:.3f}" for v in row])
        stdout_console().print(t)


def _executor(executor: ExecutorName, workers: Optional[int]):
    from ..runs import make_executor

    if workers is not None:
        _positive(workers, "--workers")
    try:
        return make_executor(executor.value, workers)
    except ImportError as exc:
        raise DataError(f"--executor {executor.value}: {exc}") from None


@app.command("scale")
def scale_command(
    design: Annotated[str, typer.Argument(help="A design or table whose w:<domain> rows are the mixtures.")],
    proxy_order: Annotated[int, typer.Option(help="Proxy n-gram order.")] = 3,
    proxy_budget: Annotated[int, typer.Option(help="Proxy training bytes.")] = 250_000,
    target_order: Annotated[int, typer.Option(help="Target n-gram order.")] = 6,
    target_budget: Annotated[int, typer.Option(help="Target training bytes.")] = 4_000_000,
    seeds: Annotated[int, typer.Option(help="Seeds per mixture and scale.")] = 1,
    store: Annotated[Optional[Path], typer.Option(help="Run store (resumable); default: none.")] = None,
    executor: Annotated[ExecutorName, typer.Option(help="serial, process or ray.")] = ExecutorName.serial,
    workers: Annotated[Optional[int], typer.Option(help="Workers for process/ray.")] = None,
    level: LevelOption = 0.95,
    json_out: JsonOption = False,
    report: ReportOption = None,
) -> None:
    """Rank agreement (Spearman with CI) between a cheap proxy and a bigger target on the same mixtures."""
    from ..progress import progress_enabled
    from .campaign import read_design
    from .scale import rank_agreement

    check_output_path(report, "--report")
    check_output_path(store, "--store")
    _positive(seeds, "--seeds")
    frame = read_design(design)
    proxy = _config(proxy_order, proxy_budget, 4096)
    target = _config(target_order, target_budget, 4096)
    run_store = _open_store(str(store), create=True) if store else None
    try:
        table = rank_agreement(frame, proxy, target, seeds=seeds, store=run_store, executor=_executor(executor, workers),
                               level=level, progress=progress_enabled(json_out))
    finally:
        if run_store is not None:
            run_store.close()
    emit(table, command="pretraining scale", as_json=json_out, report=report,
         title="Do the proxy and the target rank the mixtures alike?")
