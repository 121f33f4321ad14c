"""Plumbing shared by every command: printing tables or JSON, writing reports, errors.

Stage command modules use these so that all commands behave alike: one JSON
document on stdout under ``--json``; a rich table and warnings otherwise;
reports written atomically; bad input raised as `DataError` (exit 2).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional

from .core.estimate import EstimateTable
from .io import DataError, check_output_path, source_of

__all__ = ["DataError", "JsonOption", "LevelOption", "ReportOption", "SeedOption", "emit", "check_output_path",
           "data_errors", "print_warnings", "stdout_console"]

import typer  # noqa: E402
from typing_extensions import Annotated  # noqa: E402

# The options every command shares, declared once so they read and behave the same everywhere.
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
ReportOption = Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report here.")]
LevelOption = Annotated[float, typer.Option(min=0.5, max=0.999, help="Confidence level.")]
SeedOption = Annotated[int, typer.Option(help="Seed for folds, bootstraps and draws.")]


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


def emit(table: EstimateTable, *, command: str, as_json: bool, title: str, report: str | Path | None = None,
         sections: Iterable = (), truth: Mapping[str, float] | None = None, intro: str | None = None,
         argv: list[str] | None = None, notes: Iterable[str] = ()) -> None:
    """Write the report (if asked), then print JSON or a table with its warnings.

    ``notes`` are short lines printed under the table (e.g. key diagnostics);
    under ``--json`` they are omitted, since the diagnostics are in the document.
    """
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
