"""The `llmcause` command: `ate`, `tour`, and each stage's commands.

Exit codes: 0 done; 2 bad input or usage (one plain line on stderr, no
traceback); 1 an internal error (set LLMCAUSE_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from typing_extensions import Annotated

from . import __version__
from .clikit import CategoricalOption, data_errors, declare_categorical, drain_library_warnings, emit, is_quiet, \
    library_warnings, print_estimates, print_warnings, report_details, set_argv, set_quiet, stdout_console
from .io import DataError, binary_column, check_output_path, covariate_matrix, label_column, numeric_column, \
    parse_list, read_table, require_columns
from .tour import STAGES

try:  # recent typer vendors click; older releases depend on it
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - depends on the installed typer
    import click.exceptions as _click_exc

_EXIT = tuple({typer.Exit, getattr(_click_exc, "Exit", typer.Exit)})
_ABORT = tuple({typer.Abort, getattr(_click_exc, "Abort", typer.Abort)})

app = typer.Typer(
    name="llmcause",
    help="Causal answers to LLM development questions: estimates with honest intervals, the naive answer "
         "beside them, and diagnostics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmcause {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                          help="Print the version and exit.")] = None,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the estimates (one tab-separated "
                                              "line each: name, estimand, method, estimate, CI low, CI high); "
                                              "no tables, notes, warnings or progress bars. May also follow "
                                              "the command.")] = False) -> None:
    """Causal inference for LLM development and evaluation."""
    set_quiet(quiet)


class Method(str, Enum):
    aipw = "aipw"
    ipw = "ipw"
    ra = "ra"
    dim = "dim"


class Estimand(str, Enum):
    ate = "ate"
    att = "att"


class Learner(str, Enum):
    linear = "linear"
    boosting = "boosting"


@app.command("ate")
def ate_command(
    data: Annotated[str, typer.Argument(help="CSV, TSV, JSONL, JSON or Parquet file, one row per unit.")],
    treatment: Annotated[str, typer.Option("--treatment", "-t", help="Binary treatment column (0/1, true/false).")],
    outcome: Annotated[str, typer.Option("--outcome", "-y", help="Numeric outcome column.")],
    covariates: Annotated[Optional[str], typer.Option("--covariates", "-x",
                          help="Comma-separated confounder columns (text columns are one-hot encoded).")] = None,
    categorical: CategoricalOption = None,
    method: Annotated[Method, typer.Option(help="aipw (cross-fitted, doubly robust), ipw (normalised), "
                                                "ra (OLS regression adjustment) or dim (difference in means).")]
    = Method.aipw,
    estimand: Annotated[Estimand, typer.Option(help="ate: effect on everyone; att: effect on the treated.")]
    = Estimand.ate,
    cluster: Annotated[Optional[str], typer.Option(help="Cluster column (e.g. prompt id): cluster-robust SEs, "
                                                        "folds keep clusters together.")] = None,
    folds: Annotated[int, typer.Option(min=2, max=50, help="Cross-fitting folds.")] = 5,
    learner: Annotated[Learner, typer.Option(help="Nuisance models: linear (ridge + logistic) or boosting "
                                                  "(histogram gradient boosting).")] = Learner.linear,
    clip: Annotated[float, typer.Option(min=0.0, max=0.49, help="Clip propensities to [clip, 1-clip] (att: only above 1-clip).")] = 0.01,
    level: Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed for the folds.")] = 0,
    sensitivity: Annotated[float, typer.Option(min=0.0, max=0.99, help="aipw: bound the effect under an unmeasured "
                                               "confounder explaining this share of the residual variation of both "
                                               "outcome and treatment.")] = 0.03,
    refute: Annotated[bool, typer.Option("--refute", help="Add refutation tests that refit everything: placebo "
                                                          "treatment, random common cause, data subset, dummy "
                                                          "outcome.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report here.")] = None,
) -> None:
    """Average effect of a binary TREATMENT on an OUTCOME, adjusting for COVARIATES.

    The naive difference in means is reported beside the causal estimate.
    """
    from .core.ate import aipw, difference_in_means, ipw, regression_adjustment

    check_output_path(report, "--report", inputs=[data])
    df = read_table(data)
    cov_names = parse_list(covariates, "--covariates")
    wanted = [treatment, outcome, *cov_names, *([cluster] if cluster else [])]
    require_columns(df, wanted)
    declare_categorical(df, categorical, cov_names)
    if treatment == outcome or treatment in cov_names or outcome in cov_names:
        raise DataError("--treatment, --outcome and --covariates must name different columns")
    a = binary_column(df, treatment)
    y = numeric_column(df, outcome)
    n1, n0 = int(a.sum()), int((1 - a).sum())
    src = data
    if n1 == 0 or n0 == 0:
        value = 1 if n0 == 0 else 0
        raise DataError(f"{src}: column {treatment!r} is constant ({value} in every row); an effect needs "
                        "both treated and control rows")
    clusters = label_column(df, cluster) if cluster else None
    if method != Method.dim:
        if not cov_names:
            raise DataError(f"--method {method.value} needs --covariates (the confounders to adjust for)")
        X, x_names = covariate_matrix(df, cov_names)
        need = folds + 1 if method in (Method.aipw, Method.ipw) else X.shape[1] + 2
        for arm, count in (("treated", n1), ("control", n0)):
            if count < need:
                raise DataError(f"{src}: column {treatment!r} has only {count} {arm} rows; {method.value} needs at "
                                f"least {need}" + (" (lower --folds)" if method != Method.ra else ""))
        if clusters is not None and len(set(clusters)) < folds:
            raise DataError(f"{src}: column {cluster!r} has {len(set(clusters))} clusters, fewer than --folds {folds}")
    from .progress import counting_fits, progress, progress_enabled

    from .core.refute import REFUTERS

    fits = {Method.aipw: 3 * folds, Method.ipw: folds}.get(method, 0)  # per fold: two outcome fits, one propensity
    # the steps: each cross-fitted model fit, and each refuter's refit (its model fits, or the refit itself)
    steps = fits + (len(REFUTERS) * max(fits, 1) if refute else 0)
    shown = steps > 0 and progress_enabled(json_out)
    what = f"{fits} model fits" + (f", {len(REFUTERS)} refuters" if refute else "")
    with data_errors(src), progress(steps or None, f"ate: {what}", enabled=shown) as advance:
        naive = difference_in_means(y, a, cluster=clusters, level=level)
        if method == Method.dim:
            estimates = [naive]
        else:
            outcome_model, propensity_model = _learners(learner, y)
            if fits and shown:
                outcome_model, propensity_model = counting_fits(outcome_model, advance), \
                    counting_fits(propensity_model, advance)
            if method == Method.aipw:
                est = aipw(y, a, X, estimand=estimand.value, outcome_model=outcome_model,
                           propensity_model=propensity_model, n_folds=folds, cluster=clusters, clip=clip,
                           seed=seed, level=level, covariate_names=x_names, sensitivity_cf=sensitivity)
            elif method == Method.ipw:
                est = ipw(y, a, X, estimand=estimand.value, propensity_model=propensity_model, n_folds=folds,
                          cluster=clusters, clip=clip, seed=seed, level=level, covariate_names=x_names)
            else:
                est = regression_adjustment(y, a, X, estimand=estimand.value, cluster=clusters, level=level)
            estimates = [est, naive]
        notes = _overlap_notes(estimates[0])
        if refute:
            from .core.refute import refute as run_refuters

            def refit(y_, a_, X_, cluster_, seed_):
                if method in (Method.dim, Method.ra):
                    est_ = difference_in_means(y_, a_, cluster=cluster_, level=level) if method == Method.dim else \
                        regression_adjustment(y_, a_, X_, estimand=estimand.value, cluster=cluster_, level=level)
                    advance(1)
                    return est_
                out_m, ps_m = _learners(learner, y_)
                if shown:
                    out_m, ps_m = counting_fits(out_m, advance), counting_fits(ps_m, advance)
                if method == Method.ipw:
                    return ipw(y_, a_, X_, estimand=estimand.value, propensity_model=ps_m, n_folds=folds,
                               cluster=cluster_, clip=clip, seed=seed_, level=level)
                return aipw(y_, a_, X_, estimand=estimand.value, outcome_model=out_m, propensity_model=ps_m,
                            n_folds=folds, cluster=cluster_, clip=clip, seed=seed_, level=level,
                            sensitivity_cf=None)

            X_ref = X if method != Method.dim else y[:, None][:, :0]  # no covariates: an n x 0 matrix
            refuted = run_refuters(refit, y, a, X_ref, estimates[0], cluster=clusters, seed=seed)
            estimates = [*estimates, *refuted]
            notes += [f"{r.name}: {'passes' if r.diagnostics['passes'] else 'FAILS'} ({r.diagnostics['check']}; "
                      f"estimate {r.estimate:.4g}, CI [{r.ci_low:.4g}, {r.ci_high:.4g}])" for r in refuted]
    from .core.estimate import EstimateTable

    table = EstimateTable(estimates)
    emit(table, command="ate", as_json=json_out, report=report,
         title=f"Effect of {treatment} on {outcome} ({estimand.value.upper()})", notes=notes)


def _overlap_notes(est) -> list[str]:
    d = est.diagnostics
    if "propensity_min" not in d:
        return []
    notes = [f"overlap: propensity {d['propensity_min']:.3f} to {d['propensity_max']:.3f}, "
             f"{d.get('n_clipped', 0)} ({d['share_clipped']:.2%}) clipped at {d['clip']:g} "
             f"({d.get('clip_rule', 'both ends')}); effective sample size "
             f"{d['ess_treated']:.0f} of {d['n_treated']} treated, {d['ess_control']:.0f} of {d['n_control']} control"]
    if "max_abs_smd_before" in d:
        notes.append(f"balance: largest |standardized mean difference| {d['max_abs_smd_before']:.2f} before "
                     f"weighting, {d['max_abs_smd_after']:.2f} after")
    s = d.get("sensitivity")
    if s:
        notes.append(f"sensitivity: a hidden confounder explaining {s['cf_y']:.0%} of the residual variation of "
                     f"outcome and treatment could move the estimate to [{s['theta_lower']:.3g}, "
                     f"{s['theta_upper']:.3g}] (CI [{s['ci_lower']:.3g}, {s['ci_upper']:.3g}]); explaining it away "
                     f"takes {s['rv']:.1%} (robustness value; {s['rva']:.1%} to make the CI include 0)")
    ev = d.get("evalue")
    if ev:
        notes.append(f"E-value: risk ratio {ev['rr']:.3g} (CI [{ev['rr_ci'][0]:.3g}, {ev['rr_ci'][1]:.3g}]); a hidden "
                     f"confounder associated with both treatment and outcome by a risk ratio of {ev['evalue_rr']:.3g} "
                     f"could explain it away ({ev['evalue_rr_ci']:.3g} to move the CI to 1)")
    return notes


def _learners(learner: Learner, y):
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from .core.ate import default_outcome_model, default_propensity_model

    if learner == Learner.linear:
        return default_outcome_model(), default_propensity_model()
    return HistGradientBoostingRegressor(random_state=0), HistGradientBoostingClassifier(random_state=0)


def _mount_sensitivity() -> None:
    from .sensitivity_cli import sensitivity_command

    app.command("sensitivity")(sensitivity_command)


_mount_sensitivity()


@app.command("tour")
def tour_command(
    quick: Annotated[bool, typer.Option("--quick", help="Smaller worlds: finishes in under a minute.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for every world.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report here.")] = None,
) -> None:
    """Run the showcase of every stage on built-in worlds with known truth."""
    from .progress import progress, progress_enabled
    from .tour import available_stages, rich_tour_table, run_tour, tour_estimates, tour_steps

    check_output_path(report, "--report")
    stages = ["engine", *available_stages()]
    with progress(tour_steps(quick, stages), "tour", enabled=progress_enabled(json_out)) as advance:
        rows = run_tour(quick=quick, seed=seed, stages=stages, progress=advance)
    table = tour_estimates(rows)
    truth = {f"{r.causal.name} ({r.causal.method})": r.truth for r in rows if r.truth is not None}
    if json_out:
        emit(table, command="tour", as_json=True, report=report, title="llmcause tour", truth=truth)
        return
    if report is not None:
        from .report import write_report

        write_report(report, table, title="llmcause tour", truth=truth, **report_details(report))
    if is_quiet():
        print_estimates(table)
        return
    console = stdout_console()
    console.print(rich_tour_table(rows))
    print_warnings(table.warnings)
    if report is not None:
        console.print(f"report written to {report}", highlight=False)


def _mount_stages() -> None:
    """Attach `llmcause <stage> ...` for every stage package that ships a cli module."""
    for stage in STAGES:
        if importlib.util.find_spec(f"llmcause.{stage}") is None:
            continue
        if importlib.util.find_spec(f"llmcause.{stage}.cli") is None:
            continue
        module = importlib.import_module(f"llmcause.{stage}.cli")
        app.add_typer(module.app, name=stage)


_mount_stages()


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code (no sys.exit), for tests and `main`."""
    command = typer.main.get_command(app)
    argv = _hoist_quiet(list(sys.argv[1:] if argv is None else argv))
    set_argv([a for a in argv if a not in ("--quiet", "-q")])
    try:
        with library_warnings():
            try:
                result = command.main(args=argv, prog_name="llmcause", standalone_mode=False)
            finally:
                # Library warnings not already reported with a table: one line, never the raw text.
                leftover = drain_library_warnings()
        if leftover:
            print_warnings(leftover)
        return int(result) if isinstance(result, int) else 0
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        sys.stderr.write("aborted\n")
        return 1
    except getattr(_click_exc, "NoArgsIsHelpError", ()) as exc:  # bare `llmcause` or `llmcause <stage>`
        sys.stdout.write(exc.format_message() + "\n")
        return 0
    except _click_exc.ClickException as exc:
        sys.stderr.write(f"error: {_one_line(exc.format_message())}\n")
        return 2
    except DataError as exc:
        sys.stderr.write(f"error: {_one_line(str(exc))}\n")
        return 2
    except BrokenPipeError:
        return 1
    except Exception as exc:  # an internal error: say so plainly; the traceback on request
        if os.environ.get("LLMCAUSE_DEBUG"):
            raise
        sys.stderr.write(f"internal error: {type(exc).__name__}: {_one_line(str(exc))} "
                         "(set LLMCAUSE_DEBUG=1 for a traceback)\n")
        return 1


def _hoist_quiet(argv: list[str]) -> list[str]:
    """`llmcause ate ... --quiet` means `llmcause --quiet ate ...` (no command has an option of that name)."""
    end = argv.index("--") if "--" in argv else len(argv)
    head = [a for a in argv[:end] if a not in ("--quiet", "-q")]
    if len(head) == end:
        return argv
    return ["--quiet", *head, *argv[end:]]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
