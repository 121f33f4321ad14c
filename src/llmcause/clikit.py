"""Plumbing shared by every command: printing tables or JSON, writing reports, errors.

Stage command modules use these so that all commands behave alike: one JSON
document on stdout under ``--json``; a rich table and warnings otherwise;
reports written atomically; bad input raised as `DataError` (exit 2).
"""

from __future__ import annotations

import os
from enum import Enum
import sys
import textwrap
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


class Engine(str, Enum):
    """Where a Parquet dataset is scanned out of core."""

    local = "local"
    ray = "ray"


EngineOption = Annotated[Optional[Engine], typer.Option(
    help="Scan a Parquet file, directory or glob out of core: local (the default for a directory or glob) or ray "
         "(Ray Data tasks). Without it a single file is read into memory.")]
AddressOption = Annotated[Optional[str], typer.Option(help="Ray cluster address for --engine ray (default: the "
                                                           "running cluster, or a new local one).")]

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


_state: dict = {"quiet": False, "argv": None}  # set by `cli.run`: --quiet, and the arguments it was given


def set_quiet(flag: bool) -> None:
    _state["quiet"] = bool(flag)


def is_quiet() -> bool:
    return _state["quiet"]


def set_argv(argv: list[str]) -> None:
    _state["argv"] = list(argv)


def report_details(report: str | Path | None = None) -> dict:
    """The report header's facts: the command line, the input files it names, and the time (UTC).

    The time honours $SOURCE_DATE_EPOCH, so that a rerun can give the same bytes.
    """
    import shlex
    from datetime import datetime, timezone

    argv = _state["argv"] if _state["argv"] is not None else sys.argv[1:]
    values = [a.split("=", 1)[1] if a.startswith("--") and "=" in a else a for a in argv]
    out = Path(report).resolve() if report is not None else None
    inputs = []
    for v in values:
        if v and not v.startswith("-") and Path(v).is_file() and Path(v).resolve() != out and v not in inputs:
            inputs.append(v)
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    when = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch.isdigit() else datetime.now(timezone.utc)
    from .scan import redact_uri

    return {"command": redact_uri("llmcause " + shlex.join(argv)), "inputs": inputs,
            "created": when.strftime("%Y-%m-%d %H:%M:%S UTC")}


def output_width() -> int | None:
    """Columns for stdout: $COLUMNS when set; the terminal's own on a terminal; 120 when piped."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    return None if sys.stdout.isatty() else 120


# Columns a narrow terminal may drop, in this order; names, estimates and intervals are never dropped.
SECONDARY_COLUMNS = ("n", "se", "SE", "estimand")
NAME_KEEP = 32  # names up to this long are kept on one line while secondary columns can still go


def fit_table(table, console=None):
    """Let a rich table shrink without cutting anything: numbers stay whole, text wraps (long words fold),
    and when even that is too wide for ``console``, the secondary columns go."""
    for column in table.columns:
        if column.justify == "right":  # estimates, intervals, counts
            column.no_wrap = True
        else:
            column.overflow = "fold"
            column.no_wrap = False
    if console is None:
        return table
    for header in SECONDARY_COLUMNS:
        if _needed_width(table) <= console.width:
            break
        table.columns[:] = [c for c in table.columns if not _is_secondary(str(c.header), header)]
    if _needed_width(table) > console.width:  # numbers' headers go on several lines, as narrow as the numbers
        for column in table.columns:
            if column.no_wrap and isinstance(column.header, str):
                cells = max((len(str(c)) for c in column._cells), default=1)
                column.header = "\n".join(textwrap.wrap(column.header, max(cells, 1), break_long_words=False))
    return table


def _longest(column) -> int:
    return max([len(line) for line in str(column.header).splitlines() or [""]] + [len(str(c)) for c in column._cells])


def _needed_width(table) -> int:
    """Width the table needs with numbers whole (rich's own measure lets them wrap at spaces) and names of up
    to NAME_KEEP characters on one line; other text columns may fold to their longest word."""
    widths = []
    for i, column in enumerate(table.columns):
        if column.no_wrap:
            widths.append(_longest(column))
        elif i == 0:
            widths.append(min(_longest(column), NAME_KEEP))
        else:
            words = [w for c in [column.header, *column._cells] for w in str(c).split()]
            widths.append(max((len(w) for w in words), default=1))
    pad = table.padding[1] + table.padding[3] if table.padding else 0
    return sum(widths) + len(widths) * pad + (len(widths) + 1 if table.box else 0)


def _is_secondary(header: str, kind: str) -> bool:
    """``header`` is of the secondary kind ``kind`` ("SE" also covers "our SE", "AlpacaEval SE")."""
    return header == kind or (kind in ("se", "SE") and header.endswith(" " + kind))


def stdout_console():
    from rich.console import Console
    from rich.table import Table

    class _FittingConsole(Console):
        def print(self, *objects, **kwargs):  # noqa: A003 - rich's own name
            super().print(*(fit_table(o, self) if isinstance(o, Table) else o for o in objects), **kwargs)

    # On a terminal rich uses its width; piped output gets a fixed, wide table instead of 80 columns.
    # Names in tables and lines are the user's data: never read as markup ("[/oops]") or emoji codes (":x:").
    return _FittingConsole(soft_wrap=False, width=output_width(), quiet=is_quiet(), markup=False, emoji=False)


def print_warnings(warnings: Iterable[str]) -> None:
    from rich.console import Console
    from rich.text import Text

    if is_quiet():
        return
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
         argv: list[str] | None = None, notes: Iterable[str] = (), extra_tables: Iterable = ()) -> None:
    """Write the report (if asked), then print JSON or a table with its warnings.

    ``notes`` are short lines printed under the table (e.g. key diagnostics);
    under ``--json`` they are omitted, since the diagnostics are in the document.
    ``extra_tables`` (rich tables) follow the notes, before the warnings and the
    report's path, which always comes last.
    """
    table = with_library_warnings(table)
    if report is not None:
        from .report import write_report

        details = report_details(report)
        if argv is not None:
            details["command"] = "llmcause " + " ".join(argv)
        write_report(report, table, title=title, sections=list(sections), truth=truth, intro=intro,
                     notes=list(notes), **details)
    if as_json:
        sys.stdout.write(table.to_json(command) + "\n")
        sys.stdout.flush()
        return
    if is_quiet():
        print_estimates(table)
        return
    console = stdout_console()
    console.print(table.rich_table(title=title))
    for note in notes:
        console.print(note, highlight=False, markup=False, soft_wrap=True)
    for extra in extra_tables:
        console.print(extra)
    print_warnings(table.warnings)
    if report is not None:
        console.print(f"report written to {report}", highlight=False)


def print_estimates(table: EstimateTable) -> None:
    """The `--quiet` output: one tab-separated line per estimate (name, estimand, method, estimate, CI)."""
    for e in table:
        numbers = (f"{v:.6g}" for v in (e.estimate, e.ci_low, e.ci_high))
        fields = [str(e.name), str(e.estimand), str(e.method), *numbers]
        sys.stdout.write("\t".join(" ".join(f.split()) for f in fields) + "\n")
    sys.stdout.flush()


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
