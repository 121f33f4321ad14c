"""Models that interventions call: the `Model` protocol, model specs and their adapters.

A model is named on the command line by a spec:

- ``sandbox:NAME``: a deterministic model of the stage (its table of sandbox models);
- ``python:module:attr``: any Python object. An object with ``generate``
  (or the stage's own protocol, e.g. ``score`` or ``rewrite``) is used as is;
  a class is instantiated without arguments first; a plain callable
  ``fn(prompt: str) -> str`` becomes a chat model;
- ``openai:MODEL@BASE_URL``: an OpenAI-compatible chat-completions endpoint
  (vLLM, Ollama, llama.cpp's server, hosted APIs) through the official
  ``openai`` client (extra ``llm``). ``openai:MODEL`` alone uses the client's
  default URL (``OPENAI_BASE_URL`` or OpenAI's). The key comes from
  ``OPENAI_API_KEY`` or the variable named by ``api_key_env``; endpoints
  other than the default may need none.

Chat models (`ChatModel`) answer through a `CallLayer` (cache, retries,
limits, accounting). As judges and reward models they fill a prompt template
(``{prompt}``, ``{response}``; ``{response_a}``, ``{response_b}`` for pairs)
and parse the first number, or the first A / B / tie, in the reply; a reply
that does not parse is asked once more with a reminder of the expected form,
then recorded as missing (NaN or None) and counted in ``parse_failures``.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

from .._lazy import lazy_module
from .calls import CallError, CallLayer, CallOptions, Reply
from .store import RunStore

np = lazy_module("numpy")  # imported on first use: `llmcause --help` starts without it

__all__ = ["Model", "ModelSpec", "ChatModel", "ModelSpecError", "parse_spec", "load_model", "fill_template",
           "parse_number", "parse_choice", "SCORE_TEMPLATE", "PAIR_TEMPLATE"]

SCORE_TEMPLATE = ("Rate how good the response is as an answer to the prompt, from 1 (useless) to 10 (excellent). "
                  "Reply with the number only.\n\nPrompt:\n{prompt}\n\nResponse:\n{response}")
PAIR_TEMPLATE = ("Which response answers the prompt better? Reply with A, B or tie only.\n\nPrompt:\n{prompt}\n\n"
                 "Response A:\n{response_a}\n\nResponse B:\n{response_b}")
_NO_KEY = "none"  # what the client sends to an endpoint that needs no key (it insists on one)
_NUMBER_REMINDER = "\n\nReply with a single number and nothing else."
_CHOICE_REMINDER = "\n\nReply with exactly one of: A, B, tie."


class ModelSpecError(ValueError):
    """A model spec that cannot be used (unknown kind, missing module, missing key or extra)."""


@runtime_checkable
class Model(Protocol):
    """Generates one text per prompt (None where no answer could be had).

    Optional capabilities, detected with ``hasattr``:
    ``score(prompts, responses) -> array`` (a reward or judge score per pair, NaN when missing),
    ``compare(prompts, responses_a, responses_b) -> list`` ("A", "B", "tie" or None) and
    ``logprob(prompts, responses) -> array`` (log-probability of each response given its prompt).
    """

    name: str

    def generate(self, prompts: Sequence[str], **params: Any) -> list[str | None]:
        ...


@dataclass(frozen=True)
class ModelSpec:
    kind: str          # sandbox, python or openai
    name: str          # sandbox name, module:attr, or the served model's name
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}" + (f"@{self.base_url}" if self.base_url else "")


def parse_spec(spec: str) -> ModelSpec:
    """``sandbox:NAME``, ``python:module:attr`` or ``openai:MODEL[@BASE_URL]``."""
    kind, sep, rest = str(spec).partition(":")
    if not sep or not rest:
        raise ModelSpecError(f"model {spec!r}: write sandbox:NAME, python:module:attr or openai:MODEL@BASE_URL")
    if kind == "sandbox":
        return ModelSpec("sandbox", rest)
    if kind == "python":
        module, sep, attr = rest.partition(":")
        if not sep or not module or not attr:
            raise ModelSpecError(f"model {spec!r}: write python:module:attr (e.g. python:mypackage.judges:judge)")
        return ModelSpec("python", rest)
    if kind == "openai":
        model, base = rest, None
        m = re.match(r"^(.*)@(https?://\S+)$", rest)
        if m:
            model, base = m.group(1), m.group(2).rstrip("/")
        if not model:
            raise ModelSpecError(f"model {spec!r}: the model name is missing (openai:MODEL@BASE_URL)")
        return ModelSpec("openai", model, base)
    raise ModelSpecError(f"model {spec!r}: unknown kind {kind!r}; use sandbox:, python: or openai:")


def fill_template(template: str, **values: str) -> str:
    """Put the values into ``{prompt}``, ``{response}``, ``{response_a}``, ``{response_b}``; nothing else is read.

    The substitution is one pass over the template, so braces inside a
    prompt or response are kept as they are and never expanded.
    """
    def put(m: re.Match) -> str:
        name = m.group(1)
        return str(values[name]) if name in values else m.group(0)

    return re.sub(r"\{(prompt|response|response_a|response_b)\}", put, template)


def check_template(template: str, needed: Sequence[str], option: str) -> None:
    missing = [f"{{{n}}}" for n in needed if f"{{{n}}}" not in template]
    if missing:
        raise ModelSpecError(f"{option}: the template must contain {', '.join(missing)}")


_NUM = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_CHOICE = re.compile(r"\[\[(A|B|C|tie)\]\]|\b(A|B)\b|\b(tie|Tie|TIE|draw|Draw)\b")


def parse_number(text: str | None) -> float | None:
    """The first number in the reply, or None."""
    if not text:
        return None
    m = _NUM.search(text)
    if m is None:
        return None
    value = float(m.group(0))
    return value if np.isfinite(value) else None


def parse_choice(text: str | None) -> str | None:
    """The first verdict in the reply: ``[[A]]``/``[[B]]``/``[[C]]`` (C: tie), else a standalone A or B, or tie."""
    if not text:
        return None
    m = _CHOICE.search(text)
    if m is None:
        return None
    token = m.group(1) or m.group(2) or m.group(3)
    return {"A": "A", "B": "B"}.get(token, "tie")


# --------------------------------------------------------------------------- chat models


class ChatModel:
    """A model answering chat messages through a `CallLayer`; judge and reward roles by template."""

    def __init__(self, name: str, layer: CallLayer, params: Mapping[str, Any] | None = None,
                 score_template: str = SCORE_TEMPLATE, pair_template: str = PAIR_TEMPLATE,
                 system: str | None = None):
        self.name = name
        self.layer = layer
        self.params = dict(params or {})
        self.score_template = score_template
        self.pair_template = pair_template
        self.system = system
        self.parse_failures = 0
        self.parse_retries = 0

    @property
    def stats(self):
        return self.layer.stats

    def _request(self, prompt: str, params: Mapping[str, Any]) -> dict:
        messages = ([{"role": "system", "content": self.system}] if self.system else [])
        messages.append({"role": "user", "content": str(prompt)})
        return {"model": self.name, "messages": messages, "params": {**self.params, **params}}

    def generate(self, prompts: Sequence[str], description: str = "generate", **params: Any) -> list[str | None]:
        answers = self.layer.run([self._request(p, params) for p in prompts], description)
        return [None if a is None else a["text"] for a in answers]

    def _parsed(self, filled: list[str], parse: Callable[[str | None], Any], reminder: str, description: str):
        replies = self.generate(filled, description=description)
        values = [parse(r) for r in replies]
        again = [i for i, v in enumerate(values) if v is None and replies[i] is not None]
        if again:
            self.parse_retries += len(again)
            second = self.generate([filled[i] + reminder for i in again], description=description + " (again)")
            for i, r in zip(again, second):
                values[i] = parse(r)
        self.parse_failures += sum(v is None and r is not None for v, r in zip(values, replies))
        return values

    def score(self, prompts: Sequence[str] | None, responses: Sequence[str], description: str = "score") -> np.ndarray:
        """The first number of the judge's reply for each (prompt, response); NaN where none."""
        prompts = [""] * len(responses) if prompts is None else list(prompts)
        filled = [fill_template(self.score_template, prompt=p, response=r) for p, r in zip(prompts, responses)]
        values = self._parsed(filled, parse_number, _NUMBER_REMINDER, description)
        return np.array([np.nan if v is None else v for v in values], dtype=float)

    def compare(self, prompts: Sequence[str] | None, responses_a: Sequence[str], responses_b: Sequence[str],
                description: str = "compare") -> list[str | None]:
        """"A", "B" or "tie" per pair (A is shown first); None where the reply does not say."""
        prompts = [""] * len(responses_a) if prompts is None else list(prompts)
        filled = [fill_template(self.pair_template, prompt=p, response_a=a, response_b=b)
                  for p, a, b in zip(prompts, responses_a, responses_b)]
        return self._parsed(filled, parse_choice, _CHOICE_REMINDER, description)


class _CallableSender:
    """Calls ``fn(prompt) -> str`` with the last user message: on a worker thread, or directly (``sync``)."""

    def __init__(self, fn: Callable[[str], str]):
        self.fn = fn

    def sync(self, request: dict, timeout: float) -> Reply:
        prompt = request["messages"][-1]["content"]
        text = self.fn(prompt)
        if not isinstance(text, str):
            raise CallError("malformed", f"the callable returned {type(text).__name__}, not text", retryable=False)
        return Reply(text, len(prompt.split()), len(text.split()))

    async def __call__(self, request: dict, timeout: float) -> Reply:
        import asyncio

        return await asyncio.to_thread(self.sync, request, timeout)


class _OpenAISender:
    """``send(request, timeout)`` through ``openai.AsyncOpenAI`` (``sync``: ``openai.OpenAI``); errors become
    `CallError`s that never carry the key."""

    def __init__(self, base_url: str | None, api_key: str):
        self.base_url = base_url
        self.api_key = api_key
        self.client = None
        self.sync_client = None

    async def __call__(self, request: dict, timeout: float) -> Reply:
        try:
            response = await self.client.chat.completions.create(
                model=request["model"], messages=request["messages"], timeout=timeout, **request["params"])
        except Exception as exc:
            raise _call_error(exc, timeout) from None
        return _reply_of(response)

    def call_sync(self, request: dict, timeout: float) -> Reply:
        try:
            response = self.sync_client.chat.completions.create(
                model=request["model"], messages=request["messages"], timeout=timeout, **request["params"])
        except Exception as exc:
            raise _call_error(exc, timeout) from None
        return _reply_of(response)


def _call_error(exc: Exception, timeout: float) -> Exception:
    """The `CallError` for an exception of the openai client (anything else is returned as it is)."""
    import httpx
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return CallError("timeout", f"no answer within {timeout:g} s", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return CallError("connection", f"connection failed ({type(exc.__cause__).__name__})", retryable=True)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        retryable = status in (408, 409, 429) or status >= 500
        # Authentication errors can quote part of the key: keep only the status.
        detail = "" if status in (401, 403) else f": {str(exc.message)[:200]}"
        return CallError(str(status), f"HTTP {status}{detail}", retryable=retryable,
                         retry_after=_retry_after(exc.response.headers))
    if isinstance(exc, (ValueError, openai.APIResponseValidationError)):
        return CallError("malformed", f"the answer is not valid JSON ({type(exc).__name__})", retryable=True)
    if isinstance(exc, httpx.HTTPError):
        return CallError("connection", f"connection failed ({type(exc).__name__})", retryable=True)
    return exc


def _reply_of(response) -> Reply:
    try:
        text = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        text = None
    if not isinstance(text, str):
        raise CallError("malformed", "the answer has no message text", retryable=True)
    usage = getattr(response, "usage", None)
    return Reply(text, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0))


def _retry_after(headers) -> float | None:
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            import email.utils
            import time

            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is None:
                continue
            seconds = parsed.timestamp() - time.time()
        if np.isfinite(seconds):
            return max(0.0, seconds)
    return None


class OpenAIChatModel(ChatModel):
    """A chat model behind an OpenAI-compatible endpoint; one ``AsyncOpenAI`` client per batch of calls."""

    def __init__(self, name: str, base_url: str | None, api_key: str, *, store: RunStore | None,
                 options: CallOptions, prices=None, params=None, **kw):
        self.sender = _OpenAISender(base_url, api_key)
        secrets = [] if api_key == _NO_KEY else [api_key]
        layer = CallLayer(name, self.sender, store=store, options=options, prices=prices, secrets=secrets)
        super().__init__(name, _ClientScope(layer, self.sender), params=params, **kw)
        self.base_url = base_url

    def __repr__(self) -> str:  # never the key
        return f"OpenAIChatModel({self.name!r}, base_url={self.base_url!r})"


class _ClientScope:
    """Runs a `CallLayer` with an ``AsyncOpenAI`` client opened in the event loop of that run."""

    def __init__(self, layer: CallLayer, sender: _OpenAISender):
        self.layer, self.sender = layer, sender

    @property
    def stats(self):
        return self.layer.stats

    def run(self, requests, description="calls"):
        import openai

        from .calls import run_sync

        if self.layer.options.concurrency > 1:
            return run_sync(self._run(requests, description))
        # One call at a time: the synchronous client, without an event loop's overhead per call.
        with openai.OpenAI(api_key=self.sender.api_key, base_url=self.sender.base_url, max_retries=0,
                           timeout=self.layer.options.timeout) as client:
            self.sender.sync_client = client
            try:
                return self.layer.run_serial(requests, self.sender.call_sync, description)
            finally:
                self.sender.sync_client = None

    async def _run(self, requests, description):
        import openai

        client = openai.AsyncOpenAI(api_key=self.sender.api_key, base_url=self.sender.base_url, max_retries=0,
                                    timeout=self.layer.options.timeout)
        self.sender.client = client
        try:
            return await self.layer.arun(requests, description)
        finally:
            self.sender.client = None
            await client.close()


def load_model(spec: str | ModelSpec, *, sandbox: Mapping[str, Callable[[], Any]] | None = None,
               store: RunStore | None = None, options: CallOptions | None = None, api_key_env: str | None = None,
               prices: Mapping[str, tuple[float, float]] | None = None, params: Mapping[str, Any] | None = None,
               score_template: str = SCORE_TEMPLATE, pair_template: str = PAIR_TEMPLATE,
               system: str | None = None) -> Any:
    """The model a spec names (see the module docstring).

    ``sandbox`` maps the names a stage offers to factories; ``params`` are
    sampling parameters sent with every call (e.g. ``temperature``, ``seed``).
    """
    s = spec if isinstance(spec, ModelSpec) else parse_spec(spec)
    options = options or CallOptions()
    kw = dict(params=params, score_template=score_template, pair_template=pair_template, system=system)
    if s.kind == "sandbox":
        table = dict(sandbox or {})
        if s.name not in table:
            choices = ", ".join(f"sandbox:{k}" for k in table) or "none here"
            raise ModelSpecError(f"model {s}: no such sandbox model ({choices})")
        return table[s.name]()
    if s.kind == "python":
        module_name, attr = s.name.split(":", 1)
        try:
            obj = importlib.import_module(module_name)
        except ImportError as exc:
            raise ModelSpecError(f"model {s}: cannot import {module_name!r} ({exc})") from None
        for part in attr.split("."):
            if not hasattr(obj, part):
                raise ModelSpecError(f"model {s}: {module_name!r} has no attribute {attr!r}")
            obj = getattr(obj, part)
        if isinstance(obj, type):
            obj = obj()
        if any(hasattr(obj, m) for m in ("generate", "score", "compare", "rewrite")):
            return obj
        if not callable(obj):
            raise ModelSpecError(f"model {s}: {attr!r} is neither a model nor a callable")
        layer = CallLayer(f"python:{s.name}", _CallableSender(obj), store=store, options=options, prices=prices)
        return ChatModel(f"python:{s.name}", layer, **kw)
    try:
        import openai  # noqa: F401
    except ImportError:
        raise ModelSpecError(f"model {s}: the openai client is not installed; pip install 'llmcause[llm]'") from None
    env = api_key_env or "OPENAI_API_KEY"
    key = os.environ.get(env, "")
    if not key:
        if s.base_url is None:
            raise ModelSpecError(f"model {s}: no API key; set {env} (or name another variable with --api-key-env)")
        if api_key_env:
            raise ModelSpecError(f"model {s}: the variable {env} named by --api-key-env is not set")
        key = _NO_KEY  # a local or self-hosted endpoint without authentication
    return OpenAIChatModel(s.name, s.base_url, key, store=store, options=options, prices=prices, **kw)

