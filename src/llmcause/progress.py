"""Progress bars for long work: shown on a terminal, never under --json or when stdout is piped."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator


def progress_enabled(as_json: bool = False) -> bool:
    """True when a bar may be drawn: stdout is a terminal, and neither JSON nor `--quiet` output is asked."""
    from .clikit import is_quiet

    return (not as_json) and (not is_quiet()) and sys.stdout.isatty()


@contextmanager
def progress(total: int | None, description: str, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k=1)``; draws a transient rich bar on stderr when enabled.

    ``advance.set_total(total)`` changes the total, for work whose size is known only as it goes.
    """
    if enabled is None:
        enabled = progress_enabled()
    if not enabled:
        def idle(k=1):
            return None

        idle.set_total = lambda total: None
        yield idle
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        def advance(k=1):
            bar.advance(task, k)

        advance.set_total = lambda total: bar.update(task, total=total)
        yield advance


def counting_fits(estimator, advance: Callable[[int], None]):
    """``estimator`` wrapped so that each fit (of each clone, one per fold) advances a progress bar.

    Its predictions are the wrapped estimator's own; cloning keeps the callback.
    """
    from sklearn.base import BaseEstimator, clone

    class CountingFits(BaseEstimator):
        def __init__(self, estimator=None, advance=None):
            self.estimator = estimator
            self.advance = advance

        def fit(self, X, y, sample_weight=None):
            model = clone(self.estimator)
            self.estimator_ = model.fit(X, y) if sample_weight is None else model.fit(X, y, sample_weight=sample_weight)
            if hasattr(self.estimator_, "classes_"):
                self.classes_ = self.estimator_.classes_
            self.advance(1)
            return self

        def predict(self, X):
            return self.estimator_.predict(X)

        def predict_proba(self, X):
            return self.estimator_.predict_proba(X)

    # named after the wrapped class, so the diagnostics (which name the learners) read the same with or without a bar
    from .core.crossfit import model_name

    return type(model_name(estimator), (CountingFits,), {})(estimator, advance)
