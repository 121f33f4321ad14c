"""Plumbing shared by every command: printing tables or JSON, writing reports, errors.

Stage command modules use these so that all commands behave alike: one JSON
document on stdout under ``--json``; a rich table and warnings otherwise;
reports written atomically; bad input raised as `DataError` (exit 2).
"""

from __future__ import annotations

import sys
import warnings as _warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional

from .core.estimate import EstimateTable
from .io import DataError, check_output_path, source_of

__all__ = ["DataError", "CategoricalOption", "JsonOption", "LevelOption", "ReportOption", "SeedOption", "emit",
           "check_output_path", "data_errors", "declare_categorical", "print_warnings", "stdout_console"]

import typer  # noqa: E402
from typing_extensions import Annotated  # noqa: E402

# The options every command shares, declared once so they read and behave the same everywhere.
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ReportOption = Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report here.")]
LevelOption = Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level.")]
SeedOption = Annotated[int, typer.Option(help="Seed for folds, bootstraps and draws.")]
CategoricalOption = Annotated[Optional[str], typer.Option(
    "--categorical", help="Comma-separated covariate columns whose values are categories (one-hot encoded, even "
                          "when they look like numbers). A column of numbers with a text value in it is an error "
                          "unless listed here; a column of text only is categorical anyway.")]


def declare_categorical(df, text: Optional[str], among, option: str = "--covariates"):
    """Mark the ``--categorical`` columns of ``df`` (each must be one of ``among``, the covariates given)."""
    from .io import mark_categorical, parse_list

    columns = parse_list(text, "--categorical")
    among = list(among)
    for col in columns:
        if col not in among:
            raise DataError(f"--categorical {col!r}: not one of the columns given to {option}")
    return mark_categorical(df, columns) if columns else df


def stdout_console():
    from rich.console import Console

    # On a terminal rich uses its width; piped output gets a fixed, wide table instead of 80 columns.
    # Names in tables and lines are the user's data: never read as markup ("[/oops]") or emoji codes (":x:").
    return Console(soft_wrap=False, width=None if sys.stdout.isatty() else 120, markup=False, emoji=False)


def print_warnings(warnings: Iterable[str]) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(stderr=True, markup=False, emoji=False, highlight=False)
    for w in warnings:
        # One line per warning (no wrapping), so logs and grep keep each one whole; the text is plain data.
        console.print(Text.assemble(("warning:", "yellow"), " ", str(w)), soft_wrap=True)


# Warnings raised by libraries (scikit-learn, numpy, scipy) while a command runs, recorded instead of printed.
_LIBRARY_WARNINGS: list | None = None
# Library warnings that say nothing about the user's results (API changes inside llmcause's own calls).
_IGNORED = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning, ResourceWarning)


@contextmanager
def library_warnings() -> Iterator[list]:
    """Record library warnings while a command runs; `emit` turns them into one llmcause warning line.

    Raw warnings (five walls of ConvergenceWarning text) never reach the
    terminal; what they say is summarised with counts, in the table's
    warnings and so in the JSON document too.
    """
    global _LIBRARY_WARNINGS
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        previous, _LIBRARY_WARNINGS = _LIBRARY_WARNINGS, caught
        try:
            yield caught
        finally:
            _LIBRARY_WARNINGS = previous


def drain_library_warnings() -> list[str]:
    """The recorded library warnings as (at most) one line, and forget them."""
    if not _LIBRARY_WARNINGS:
        return []
    caught = [w for w in _LIBRARY_WARNINGS if not issubclass(w.category, _IGNORED)]
    del _LIBRARY_WARNINGS[:]
    if not caught:
        return []
    kinds: dict[tuple[str, str], int] = {}
    for w in caught:
        first = " ".join(str(w.message).split("\n")[0].split())
        key = (w.category.__name__, first[:120])
        kinds[key] = kinds.get(key, 0) + 1
    parts = [f"{name} x{count}: {text}" for (name, text), count in sorted(kinds.items(), key=lambda kv: -kv[1])]
    shown = "; ".join(parts[:3]) + (f"; and {len(parts) - 3} other kinds" if len(parts) > 3 else "")
    return [f"the fitting libraries raised {len(caught)} warning{'s' if len(caught) > 1 else ''} ({shown}); the "
            "estimates above may rest on nuisance models that did not fit well: rescale or simplify the "
            "covariates, or choose another --learner"]


def with_library_warnings(table: EstimateTable) -> EstimateTable:
    """``table`` with the recorded library warnings added as one line."""
    extra = drain_library_warnings()
    return EstimateTable(list(table), [*table.warnings, *extra]) if extra else table


def emit(table: EstimateTable, *, command: str, as_json: bool, title: str, report: str | Path | None = None,
         sections: Iterable = (), truth: Mapping[str, float] | None = None, intro: str | None = None,
         argv: list[str] | None = None, notes: Iterable[str] = ()) -> None:
    """Write the report (if asked), then print JSON or a table with its warnings.

    ``notes`` are short lines printed under the table (e.g. key diagnostics);
    under ``--json`` they are omitted, since the diagnostics are in the document.
    """
    table = with_library_warnings(table)
    if report is not None:
        from .report import write_report

        cmdline = "llmcause " + " ".join(argv if argv is not None else sys.argv[1:])
        write_report(report, table, title=title, command=cmdline, sections=list(sections), truth=truth, intro=intro)
    if as_json:
        sys.stdout.write(table.to_json(command) + "\n")
        sys.stdout.flush()
        return
    console = stdout_console()
    console.print(table.rich_table(title=title))
    for note in notes:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    print_warnings(table.warnings)
    if report is not None:
        console.print(f"report written to {report}", highlight=False)


@contextmanager
def data_errors(df_or_source) -> Iterator[None]:
    """Turn ValueErrors raised by estimators on this data into DataError naming the source."""
    src = df_or_source if isinstance(df_or_source, str) else source_of(df_or_source)
    try:
        yield
    except DataError:
        raise
    except ValueError as exc:
        raise DataError(f"{src}: {exc}") from None
