"""The call layer under every model adapter: concurrency, rate limits, retries, accounting, a persistent cache.

A *request* is a JSON dict (the model's messages and sampling parameters).
`CallLayer.run(requests)` answers each one, in order, as follows:

1. Its identity is ``run_key("call:<model>", request)``: model name,
   parameters and input (the endpoint URL and the key are not part of it,
   so the same model served elsewhere reuses the cache).
2. A request whose answer is in the store (`RunStore`, SQLite WAL) is not
   sent again; identical requests in one batch are sent once.
3. The rest are sent with at most ``concurrency`` in flight, within the
   requests- and tokens-per-minute limits (token buckets), each with a
   per-call timeout. 429, 5xx, timeouts, malformed bodies and dropped
   connections are retried up to ``max_retries`` times, after an exponential
   backoff with full jitter, or after the server's Retry-After when that is
   longer. Other errors (a bad request, a wrong key) fail at once.
4. Each answer is committed to the store as soon as it arrives, so a killed
   campaign resumes where it stopped and a rerun makes no calls. Failures
   are recorded too (with the error, never the key) and are tried again on
   the next run.

Tokens and cost are counted per call (`prices`: dollars per million input
and output tokens); `CallStats` sums calls made, answers taken from the
store, failures, retries, tokens and cost, and is what commands put in their
JSON diagnostics.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from .identity import canonical_json, canonical_params, run_key
from .store import RunStore

__all__ = ["CallError", "CallLayer", "CallOptions", "CallStats", "Reply", "PRICES", "price_of", "redact", "run_sync"]

# Dollars per million (input, output) tokens, as published by the provider; extend with CallLayer(prices=...).
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}


def price_of(model: str, prices: Mapping[str, tuple[float, float]] | None = None) -> tuple[float, float] | None:
    """The (input, output) price per million tokens of ``model``, or None when unknown."""
    table = {**PRICES, **(prices or {})}
    return table.get(model) or table.get(model.rsplit("/", 1)[-1])


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


@dataclass(frozen=True)
class Reply:
    """One answer: its text and the tokens it took."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class CallError(Exception):
    """A failed call: ``kind`` (e.g. ``429``, ``timeout``), whether to retry, and the server's Retry-After."""

    def __init__(self, kind: str, message: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True)
class CallOptions:
    """How calls are made. ``rpm``/``tpm``: requests and tokens per minute (None: no limit)."""

    concurrency: int = 8
    timeout: float = 60.0
    max_retries: int = 5
    rpm: float | None = None
    tpm: float | None = None
    backoff: float = 0.5
    backoff_max: float = 30.0
    progress: bool | None = False

    def __post_init__(self):
        if self.concurrency < 1:
            raise ValueError("the concurrency must be at least 1")
        if not self.timeout > 0:
            raise ValueError("the timeout must be positive")
        if self.max_retries < 0:
            raise ValueError("the number of retries must be 0 or more")
        for name in ("rpm", "tpm"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise ValueError(f"the {name} limit must be positive")


@dataclass
class CallStats:
    """What the calls of a session did and cost."""

    requests: int = 0      # distinct requests asked for
    done: int = 0          # answered by a call now
    cached: int = 0        # answered from the store
    failed: int = 0        # no answer after all retries
    calls: int = 0         # HTTP calls (attempts) made, retries included
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0      # of the calls made now (dollars)
    cost_saved: float = 0.0  # what the answers taken from the store cost when they were made
    cost_known: bool = True
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)

    def add(self, other: "CallStats") -> None:
        for name in ("requests", "done", "cached", "failed", "calls", "retries", "prompt_tokens",
                     "completion_tokens", "cost", "cost_saved", "seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_known = self.cost_known and other.cost_known
        self.errors.update(other.errors)

    def to_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "done": self.done, "cached": self.cached, "failed": self.failed,
                "calls": self.calls, "retries": self.retries, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "cost_usd": round(self.cost, 6) if self.cost_known else None,
                "cost_saved_usd": round(self.cost_saved, 6) if self.cost_known else None,
                "seconds": round(self.seconds, 3), "errors": dict(sorted(self.errors.items()))}


class _Bucket:
    """A token bucket refilled at ``per_minute / 60`` per second, holding one second's worth (bursts stay small)."""

    def __init__(self, per_minute: float):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        self._refill()
        amount = min(amount, self.capacity)
        return 0.0 if self.level >= amount else (amount - self.level) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= amount


class _Limiter:
    def __init__(self, rpm: float | None, tpm: float | None):
        self.requests = _Bucket(rpm) if rpm else None
        self.tokens = _Bucket(tpm) if tpm else None
        self.lock = asyncio.Lock()

    async def acquire(self, tokens: float) -> None:
        if self.requests is None and self.tokens is None:
            return
        async with self.lock:  # one waiter at a time keeps the order fair
            while True:
                wait = max(self.requests.wait_for(1) if self.requests else 0.0,
                           self.tokens.wait_for(tokens) if self.tokens else 0.0)
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(tokens)

    def acquire_sync(self, tokens: float) -> None:
        while True:
            wait = max(self.requests.wait_for(1) if self.requests else 0.0,
                       self.tokens.wait_for(tokens) if self.tokens else 0.0)
            if wait <= 0:
                break
            time.sleep(wait)
        if self.requests:
            self.requests.take(1)
        if self.tokens:
            self.tokens.take(tokens)

    def settle(self, estimated: float, actual: float) -> None:
        if self.tokens is not None:
            self.tokens.take(actual - estimated)


def _estimated_tokens(request: Mapping) -> float:
    chars = sum(len(str(m.get("content", ""))) for m in request.get("messages", []) if isinstance(m, Mapping))
    chars += len(str(request.get("prompt", "")))
    return chars / 4.0 + float((request.get("params") or {}).get("max_tokens") or 0)


Sender = Callable[[dict, float], Awaitable[Reply]]


class CallLayer:
    """Answers requests to one model through ``send``, with a cache, limits and retries.

    Parameters
    ----------
    model : the model's name (part of every cache key; also looked up in the price table).
    send : ``async send(request, timeout) -> Reply``; raises `CallError` (or a timeout).
    store : a `RunStore` for the cache; None keeps answers in memory only.
    options : `CallOptions`.
    prices : extra price-table entries ``{model: (input, output)}`` in dollars per million tokens.
    secrets : strings (API keys) removed from every error message before it is stored or shown.
    """

    def __init__(self, model: str, send: Sender, *, store: RunStore | None = None,
                 options: CallOptions | None = None, prices: Mapping[str, tuple[float, float]] | None = None,
                 secrets: Sequence[str] = (), seed: int | None = None):
        self.model = model
        self.send = send
        self.store = store
        self.options = options or CallOptions()
        self.price = price_of(model, prices)
        self.secrets = [s for s in secrets if s]
        self.stats = CallStats(cost_known=self.price is not None)
        self._memory: dict[str, dict] = {}
        self._rng = random.Random(seed)
        self.function = f"call:{model}"

    # ------------------------------------------------------------------ public

    def key(self, request: Mapping) -> str:
        return run_key(self.function, request)

    def run(self, requests: Sequence[Mapping], description: str = "calls") -> list[dict | None]:
        """Answers (``{"text", "prompt_tokens", "completion_tokens"}``, None when failed), in request order."""
        sync = getattr(self.send, "sync", None)
        if self.options.concurrency == 1 and sync is not None:
            return self.run_serial(requests, sync, description)
        return run_sync(self.arun(requests, description))

    def _prepare(self, requests: Sequence[Mapping]):
        """Keys, distinct requests, answers already known (memory or store), fresh stats, and what to ask."""
        canon = [canonical_params(dict(r)) for r in requests]
        keys = [self.key(r) for r in canon]
        unique: dict[str, dict] = {}
        for k, r in zip(keys, canon):
            unique.setdefault(k, r)
        answers: dict[str, dict | None] = {k: self._memory[k] for k in unique if k in self._memory}
        if self.store is not None:
            answers.update(self.store.results([k for k in unique if k not in answers]))
        stats = CallStats(requests=len(unique), cached=len(answers), cost_known=self.price is not None)
        stats.cost_saved = sum(self._cost(a) for a in answers.values() if a)
        todo = [(k, r) for k, r in unique.items() if k not in answers]
        return keys, unique, answers, stats, todo

    def _bar(self, total: int, description: str, cached: int) -> "_CallProgress":
        from ..progress import progress_enabled

        show = self.options.progress if self.options.progress is not None else progress_enabled()
        return _CallProgress(total, description, show, cached=cached)

    async def arun(self, requests: Sequence[Mapping], description: str = "calls") -> list[dict | None]:
        """`run` inside an event loop: up to ``concurrency`` calls in flight."""
        start = time.perf_counter()
        keys, unique, answers, stats, todo = self._prepare(requests)
        with self._bar(len(unique), description, len(answers)) as bar:
            limiter = _Limiter(self.options.rpm, self.options.tpm)
            semaphore = asyncio.Semaphore(self.options.concurrency)

            async def one(key: str, request: dict) -> None:
                async with semaphore:
                    answer = await self._answer(key, request, limiter, stats)
                answers[key] = answer
                bar.update(stats)

            await asyncio.gather(*(one(k, r) for k, r in todo))
        stats.seconds = time.perf_counter() - start
        self.stats.add(stats)
        return [answers.get(k) for k in keys]

    def run_serial(self, requests: Sequence[Mapping], send_sync: Callable[[dict, float], Reply],
                   description: str = "calls") -> list[dict | None]:
        """`run` one call at a time through a synchronous ``send_sync`` (no event loop: less overhead per call)."""
        start = time.perf_counter()
        keys, unique, answers, stats, todo = self._prepare(requests)
        with self._bar(len(unique), description, len(answers)) as bar:
            limiter = _Limiter(self.options.rpm, self.options.tpm)
            for key, request in todo:
                answers[key] = self._answer_serial(key, request, send_sync, limiter, stats)
                bar.update(stats)
        stats.seconds = time.perf_counter() - start
        self.stats.add(stats)
        return [answers.get(k) for k in keys]

    # ------------------------------------------------------------------ one request

    def _cost(self, answer: Mapping) -> float:
        if self.price is None:
            return 0.0
        tokens_in, tokens_out = answer.get("prompt_tokens", 0), answer.get("completion_tokens", 0)
        return (tokens_in * self.price[0] + tokens_out * self.price[1]) / 1e6

    def _delay(self, attempt: int, error: CallError | None) -> float:
        """Full-jitter exponential backoff, or the server's Retry-After when longer."""
        opts = self.options
        delay = self._rng.uniform(0, min(opts.backoff_max, opts.backoff * 2 ** (attempt - 1)))
        if error is not None and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, 600.0))
        return delay

    def _accept(self, key, request, reply, limiter, stats, estimated, t0) -> dict | CallError:
        """Store a reply and count it; a reply without text comes back as a (retryable) error."""
        if not isinstance(reply, Reply) or not isinstance(reply.text, str):
            return CallError("malformed", "the answer has no text", retryable=True)
        answer = {"text": reply.text, "prompt_tokens": int(reply.prompt_tokens),
                  "completion_tokens": int(reply.completion_tokens)}
        limiter.settle(estimated, answer["prompt_tokens"] + answer["completion_tokens"])
        stats.done += 1
        stats.prompt_tokens += answer["prompt_tokens"]
        stats.completion_tokens += answer["completion_tokens"]
        stats.cost += self._cost(answer)
        self._keep(key, request, answer, None, time.perf_counter() - t0)
        return answer

    def _give_up(self, key, request, error: CallError | None, stats: CallStats, t0: float) -> None:
        stats.failed += 1
        message = redact(f"{error.kind}: {error}", self.secrets) if error else "failed"
        self._keep(key, request, None, message, time.perf_counter() - t0)

    async def _answer(self, key: str, request: dict, limiter: _Limiter, stats: CallStats) -> dict | None:
        opts = self.options
        estimated = _estimated_tokens(request)
        error: CallError | None = None
        t0 = time.perf_counter()
        for attempt in range(opts.max_retries + 1):
            if attempt:
                stats.retries += 1
                await asyncio.sleep(self._delay(attempt, error))
            await limiter.acquire(estimated)
            stats.calls += 1
            try:
                reply = await asyncio.wait_for(self.send(request, opts.timeout), timeout=opts.timeout + 1.0)
            except CallError as exc:
                error = exc
            except asyncio.TimeoutError:
                error = CallError("timeout", f"no answer within {opts.timeout:g} s", retryable=True)
            except Exception as exc:  # a python: model raising, a client bug: not worth retrying
                error = CallError(type(exc).__name__, str(exc), retryable=False)
            else:
                result = self._accept(key, request, reply, limiter, stats, estimated, t0)
                if not isinstance(result, CallError):
                    return result
                error = result
            stats.errors[error.kind] += 1
            if not error.retryable:
                break
        self._give_up(key, request, error, stats, t0)
        return None

    def _answer_serial(self, key: str, request: dict, send_sync, limiter: _Limiter, stats: CallStats) -> dict | None:
        opts = self.options
        estimated = _estimated_tokens(request)
        error: CallError | None = None
        t0 = time.perf_counter()
        for attempt in range(opts.max_retries + 1):
            if attempt:
                stats.retries += 1
                time.sleep(self._delay(attempt, error))
            limiter.acquire_sync(estimated)
            stats.calls += 1
            try:
                reply = send_sync(request, opts.timeout)
            except CallError as exc:
                error = exc
            except Exception as exc:
                error = CallError(type(exc).__name__, str(exc), retryable=False)
            else:
                result = self._accept(key, request, reply, limiter, stats, estimated, t0)
                if not isinstance(result, CallError):
                    return result
                error = result
            stats.errors[error.kind] += 1
            if not error.retryable:
                break
        self._give_up(key, request, error, stats, t0)
        return None

    def _keep(self, key: str, request: dict, answer: dict | None, error: str | None, seconds: float) -> None:
        if answer is not None:
            self._memory[key] = answer
        if self.store is not None:
            self.store.record(key, self.function, canonical_json(request), result=answer, error=error,
                              seconds=seconds, worker="call")


def run_sync(coro):
    """Run a coroutine to completion from synchronous code, also when an event loop is running (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target():
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class _CallProgress:
    """A transient bar on stderr: answers so far, of which from the store, failures and cost."""

    def __init__(self, total: int, description: str, enabled: bool, cached: int):
        self.total, self.description, self.enabled, self.cached = total, description, enabled, cached
        self._bar = None

    def __enter__(self) -> "_CallProgress":
        if self.enabled and self.total:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("cached {task.fields[cached]}  failed {task.fields[failed]}  "
                                            "{task.fields[cost]}"),
                                 TimeRemainingColumn(), console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total, completed=self.cached,
                                            cached=self.cached, failed=0, cost="")
        return self

    def update(self, stats: CallStats) -> None:
        if self._bar is not None:
            cost = f"${stats.cost:.4f}" if stats.cost_known else "cost unknown"
            self._bar.update(self._task, completed=stats.cached + stats.done + stats.failed, cached=stats.cached,
                             failed=stats.failed, cost=cost)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

