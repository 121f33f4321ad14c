"""Campaigns: execute many runs of a pure function, resumably, through a store.

``run_campaign(fn, params_list, store=...)`` hashes every parameter set into
a run key, records the campaign's task list, skips every key whose result is
already stored, executes the rest on the chosen executor and commits each
result as soon as it arrives. Kill it at any point and call it again with
the same arguments: finished runs are skipped, none is lost, and the rest are
executed. Identical parameter sets within a campaign are executed once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from .executors import SerialExecutor, make_executor
from .identity import canonical_json, canonical_params, function_name, run_key
from .store import RunStore

__all__ = ["CampaignSummary", "run_campaign"]


@dataclass(frozen=True)
class CampaignSummary:
    """What a campaign did: runs executed now, skipped as already stored, and failed."""

    tasks: int
    runs: int
    executed: int
    skipped: int
    failed: int
    seconds: float
    executor: str
    keys: tuple[str, ...] = field(repr=False, default=())
    errors: Mapping[str, str] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "runs": self.runs, "executed": self.executed, "skipped": self.skipped,
                "failed": self.failed, "seconds": round(self.seconds, 3), "executor": self.executor}


def run_campaign(fn: Callable[[dict], Any], params: Sequence[Mapping[str, Any]], *, store: RunStore,
                 executor: Any = None, workers: int | None = None, campaign: str | None = None,
                 labels: Sequence[Mapping[str, Any]] | None = None, progress: bool | None = None,
                 description: str = "runs") -> CampaignSummary:
    """Execute ``fn`` on every parameter set not already in ``store``.

    Parameters
    ----------
    fn : a pure, module-level function ``fn(params: dict) -> JSON value``;
        its result must depend only on ``params`` (seeds included).
    params : one dict of JSON values per task.
    store : the `RunStore` that keeps results (``RunStore(":memory:")`` for none).
    executor : an executor object or name (``serial``, ``process``, ``ray``); default serial.
    workers : worker count for a named executor.
    campaign, labels : record the task list under this name, with one label
        dict per task (e.g. arm and seed), so analyses can find it later.
    progress : show a progress bar (None: only on a terminal).

    Returns
    -------
    CampaignSummary with ``executed``, ``skipped`` and ``failed`` counts over
    the distinct runs of the campaign.
    """
    start = time.perf_counter()
    if executor is None:
        executor = SerialExecutor()
    elif isinstance(executor, str):
        executor = make_executor(executor, workers)
    name = function_name(fn)
    canon = [canonical_params(dict(p)) for p in params]
    keys = [run_key(name, p) for p in canon]
    if campaign is not None:
        store.register(campaign, keys, [dict(lab) for lab in (labels or [{} for _ in keys])])
    unique: dict[str, dict] = {}
    for k, p in zip(keys, canon):
        unique.setdefault(k, p)
    done = store.done_keys(unique)
    todo = [(k, p) for k, p in unique.items() if k not in done]
    executed = failed = 0
    errors: dict[str, str] = {}
    from ..progress import progress as progress_bar

    with progress_bar(len(todo), description, enabled=progress) as advance:
        for outcome in executor.run(fn, todo):
            store.record(outcome.key, name, canonical_json(unique[outcome.key]), result=outcome.result,
                         error=outcome.error, seconds=outcome.seconds, worker=outcome.worker)
            if outcome.error is None:
                executed += 1
            else:
                failed += 1
                errors[outcome.key] = outcome.error
            advance(1)
    return CampaignSummary(tasks=len(keys), runs=len(unique), executed=executed, skipped=len(done), failed=failed,
                           seconds=time.perf_counter() - start, executor=getattr(executor, "name", "custom"),
                           keys=tuple(keys), errors=errors)
