"""`llmcause tour`: the showcase of every stage, on built-in worlds with known truth.

Each row asks a question, gives the naive answer, the causal answer with its
interval, the truth where the world knows it, and whether the interval
covers it. A stage joins the tour by providing ``llmcause.<stage>.tour`` with
a function ``tour_rows(quick: bool, seed: int) -> list[TourRow]``; one that also takes
``progress`` (called with 1 after each unit of its work) and ships ``tour_steps(quick) -> int``
(how many units) moves the tour's progress bar as it goes.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Callable, Sequence

from .core.estimate import Estimate, EstimateTable

STAGES = ("evaluation", "alignment", "routing", "pretraining", "agents")


@dataclass(frozen=True)
class TourRow:
    """One question of the tour and its answers."""

    stage: str
    question: str
    causal: Estimate
    naive: Estimate | float | None = None
    truth: float | None = None
    note: str | None = None
    # Set on a row that shows an estimator where one of its assumptions fails on purpose (what
    # breaks, in a few words); such a row is not expected to cover, and says so.
    broken_assumption: str | None = None

    @property
    def naive_value(self) -> float | None:
        if self.naive is None:
            return None
        return float(self.naive.estimate) if isinstance(self.naive, Estimate) else float(self.naive)

    @property
    def covered(self) -> bool | None:
        return None if self.truth is None else self.causal.covers(self.truth)


def engine_rows(quick: bool = False, seed: int = 0) -> list[TourRow]:
    """The engine's showcase: AIPW against the naive difference in a confounded world."""
    from .core.ate import aipw, difference_in_means
    from .core.simulate import confounded_world

    world = confounded_world(2_000 if quick else 20_000, seed=seed)
    naive = difference_in_means(world.outcome, world.treatment)
    causal = aipw(world.outcome, world.treatment, world.X, seed=seed, covariate_names=world.names)
    return [TourRow(
        stage="engine",
        question="Does turning on a tool raise the task score? (logs where easy prompts got the tool more often)",
        causal=causal.with_(name="tool on - off"), naive=naive, truth=world.true_ate,
        note="AIPW (cross-fitted) vs difference in means",
    )]


def available_stages() -> list[str]:
    """Stages that ship a tour module, in the house order."""
    return [s for s in STAGES if importlib.util.find_spec(f"llmcause.{s}") is not None
            and importlib.util.find_spec(f"llmcause.{s}.tour") is not None]


def _reports_progress(module) -> bool:
    import inspect

    return hasattr(module, "tour_steps") and "progress" in inspect.signature(module.tour_rows).parameters


def tour_steps(quick: bool = False, stages: Sequence[str] | None = None) -> int:
    """How many units of work `run_tour` reports to ``progress``: the engine's one, and each stage's own."""
    total = 0
    for stage in ["engine", *available_stages()] if stages is None else list(stages):
        module = None if stage == "engine" else importlib.import_module(f"llmcause.{stage}.tour")
        total += module.tour_steps(quick) if module is not None and _reports_progress(module) else 1
    return total


def run_tour(quick: bool = False, seed: int = 0, stages: Sequence[str] | None = None,
             on_stage: Callable[[str], None] | None = None,
             progress: Callable[[int], None] | None = None) -> list[TourRow]:
    """Run the engine showcase and every available stage's rows.

    ``progress(1)`` is called after each of `tour_steps(quick, stages)` units of work.
    """
    advance = progress if progress is not None else (lambda k=1: None)
    rows: list[TourRow] = []
    wanted = ["engine", *available_stages()] if stages is None else list(stages)
    for stage in wanted:
        if on_stage is not None:
            on_stage(stage)
        if stage == "engine":
            rows.extend(engine_rows(quick, seed))
            advance(1)
            continue
        module = importlib.import_module(f"llmcause.{stage}.tour")
        if _reports_progress(module):
            rows.extend(module.tour_rows(quick=quick, seed=seed, progress=advance))
        else:
            rows.extend(module.tour_rows(quick=quick, seed=seed))
            advance(1)
    return rows


def tour_estimates(rows: Sequence[TourRow]) -> EstimateTable:
    """The tour as estimates (the JSON form): diagnostics hold stage, question, naive, truth, covered."""
    out = []
    for r in rows:
        diag = {"stage": r.stage, "question": r.question, "naive": r.naive_value}
        if r.truth is not None:
            diag.update(truth=float(r.truth), covered=r.covered)
        if r.note:
            diag["note"] = r.note
        if r.broken_assumption:
            diag["broken_assumption"] = r.broken_assumption
        out.append(r.causal.with_(diagnostics=diag))
    warnings = [f"{r.stage}: {w}" for r in rows for w in r.causal.warnings]
    return EstimateTable([e.with_(warnings=()) for e in out], warnings)


def rich_tour_table(rows: Sequence[TourRow]):
    """The tour as one terminal table."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="llmcause tour: naive vs causal answers, against the truth", show_lines=True)
    table.add_column("stage")
    table.add_column("question", max_width=48)
    table.add_column("naive", justify="right")
    table.add_column("causal [CI]", justify="right")
    table.add_column("truth", justify="right")
    table.add_column("covered", justify="center")
    for r in rows:
        c = r.causal
        causal = f"{c.estimate:.3f} [{c.ci_low:.3f}, {c.ci_high:.3f}]\n{c.method}"
        naive = "—" if r.naive_value is None else f"{r.naive_value:.3f}"
        truth = "—" if r.truth is None else f"{r.truth:.3f}"
        covered = Text("—") if r.covered is None else (Text("yes", "green") if r.covered else Text("no", "red"))
        if r.broken_assumption and r.covered is not None:
            covered = Text("yes" if r.covered else "no") + Text(" (assumption broken on purpose)", "yellow")
        # Text cells: questions and method names such as "length [llm-judge]" are shown as written.
        table.add_row(Text(r.stage), Text(r.question), Text(naive), Text(causal), Text(truth), covered)
    return table
