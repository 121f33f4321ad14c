"""Executors: run a pure function over many parameter sets, yielding outcomes as they finish.

- `SerialExecutor`: in this process, one after another.
- `ProcessExecutor`: a local process pool (``concurrent.futures``).
- `RayExecutor`: Ray tasks, locally or on a cluster (needs the optional
  ``ray`` extra: ``pip install "llmcause[ray]"``).

Each executor's ``run(fn, items)`` takes ``(key, params)`` pairs and yields an
`Outcome` per item in completion order. A failing call yields an outcome
with ``error`` set instead of raising, so one bad run never loses the others.
The function must be importable by name (a module-level function) for the
process pool and Ray.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

__all__ = ["Outcome", "SerialExecutor", "ProcessExecutor", "RayExecutor", "make_executor", "EXECUTORS"]

EXECUTORS = ("serial", "process", "ray")


@dataclass(frozen=True)
class Outcome:
    """What one call produced: its result or an error message, its wall time and where it ran."""

    key: str
    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""


def call_one(fn: Callable[[dict], Any], key: str, params: dict) -> Outcome:
    """Call ``fn(params)``, catching any exception into the outcome."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    start = time.perf_counter()
    try:
        result = fn(params)
    except Exception as exc:  # a failed run is recorded, not fatal
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Outcome(key, None, last, time.perf_counter() - start, worker)
    return Outcome(key, result, None, time.perf_counter() - start, worker)


class SerialExecutor:
    """Run each call in this process, in order."""

    name = "serial"

    def __init__(self, workers: int = 1):
        self.workers = 1

    def run(self, fn: Callable[[dict], Any], items: Iterable[tuple[str, dict]]) -> Iterator[Outcome]:
        for key, params in items:
            yield call_one(fn, key, params)


class ProcessExecutor:
    """A pool of ``workers`` local processes; outcomes arrive as calls finish.

    Parameters
    ----------
    workers : number of processes (default: the CPU count).
    start_method : ``fork``, ``spawn`` or ``forkserver`` (default: the platform's).
    """

    name = "process"

    def __init__(self, workers: int | None = None, start_method: str | None = None):
        self.workers = int(workers or os.cpu_count() or 1)
        if self.workers < 1:
            raise ValueError("workers must be at least 1")
        self.start_method = start_method

    def run(self, fn: Callable[[dict], Any], items: Iterable[tuple[str, dict]]) -> Iterator[Outcome]:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        items = list(items)
        if not items:
            return
        ctx = multiprocessing.get_context(self.start_method) if self.start_method else None
        pool = ProcessPoolExecutor(max_workers=min(self.workers, len(items)), mp_context=ctx)
        try:
            pending = {pool.submit(call_one, fn, key, params) for key, params in items}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    yield fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Ray tasks (one per call), started on a local Ray instance or the cluster at ``address``.

    A task whose worker dies (killed, out of memory, node lost) is retried by
    Ray up to ``max_retries`` times; if it still cannot finish, its outcome
    carries the error and the other runs go on. Each key is yielded once, so a
    campaign stores each result exactly once; a campaign whose driver was
    killed resumes from its store (finished runs are skipped).

    Parameters
    ----------
    workers : CPUs for a local Ray instance started here (ignored when Ray is already running).
    address : a Ray cluster address (``"auto"`` or ``"ray://host:10001"``); None starts a local instance.
    max_retries : retries of a task after its worker is lost (exceptions raised by the function are
        outcomes, never retried).
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, max_retries: int = 3):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ImportError('the ray executor needs Ray: pip install "llmcause[ray]"') from None
        self.workers = int(workers or os.cpu_count() or 1)
        self.address = address
        if max_retries < 0:
            raise ValueError("max_retries must be at least 0")
        self.max_retries = int(max_retries)

    def run(self, fn: Callable[[dict], Any], items: Iterable[tuple[str, dict]]) -> Iterator[Outcome]:
        import ray

        items = list(items)
        if not items:
            return
        started_here = False
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, log_to_driver=False)
            else:
                ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
            started_here = True
        pending: list = []
        try:
            remote = ray.remote(max_retries=self.max_retries, retry_exceptions=False)(call_one)
            fn_ref = ray.put(fn)
            key_of = {}
            for key, params in items:
                ref = remote.remote(fn_ref, key, params)
                key_of[ref] = key
                pending.append(ref)
            yielded: set[str] = set()
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    key = key_of[ref]
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # the worker was lost more than max_retries times
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                        outcome = Outcome(key, None, f"{type(exc).__name__}: {first}"[:500])
                    if key not in yielded:
                        yielded.add(key)
                        yield outcome
        finally:
            for ref in pending:  # left over when the caller stopped early
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()


def make_executor(name: str, workers: int | None = None, **options: Any):
    """An executor by name: ``serial``, ``process`` or ``ray``."""
    if name == "serial":
        return SerialExecutor()
    if name == "process":
        return ProcessExecutor(workers, **options)
    if name == "ray":
        return RayExecutor(workers, **options)
    raise ValueError(f"unknown executor {name!r}; use one of: {', '.join(EXECUTORS)}")
