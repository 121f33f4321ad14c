"""The options every command that calls a model shares, and the session that loads its models.

``--store RUNS.db`` caches every call (a rerun makes none, a killed run
resumes); ``--concurrency``, ``--timeout``, ``--max-retries``, ``--rpm``,
``--tpm``, ``--max-tokens`` shape the calls (temperature 0 and a fixed
seed); ``--api-key-env`` names the variable that holds the key (default
``OPENAI_API_KEY``). Keys are read from the environment only, never from
the command line, so they stay out of shell history and of the command
line a report records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import typer
from typing_extensions import Annotated

from ..io import DataError, check_output_path
from .calls import CallOptions, CallStats
from .models import PAIR_TEMPLATE, SCORE_TEMPLATE, ModelSpecError, check_template, load_model
from .store import RunStore, StoreError

__all__ = ["StoreOption", "ConcurrencyOption", "TimeoutOption", "MaxRetriesOption", "RpmOption", "TpmOption",
           "ApiKeyEnvOption", "MaxTokensOption", "ModelSession"]

StoreOption = Annotated[Optional[Path], typer.Option("--store", help="Run store (SQLite) that caches every model "
                        "call: a rerun makes no calls, a killed run resumes.")]
ConcurrencyOption = Annotated[int, typer.Option("--concurrency", min=1, max=1024, help="Model calls in flight at "
                              "once.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=0.01, help="Seconds to wait for one model call.")]
MaxRetriesOption = Annotated[int, typer.Option("--max-retries", min=0, max=100, help="Retries of a call after 429, "
                             "5xx, timeouts, malformed answers and dropped connections.")]
RpmOption = Annotated[Optional[float], typer.Option("--rpm", min=0.001, help="Most model calls per minute.")]
TpmOption = Annotated[Optional[float], typer.Option("--tpm", min=1.0, help="Most tokens per minute.")]
MaxTokensOption = Annotated[Optional[int], typer.Option("--max-tokens", min=1, help="Most tokens a model may "
                            "generate per call (default: the endpoint's).")]
ApiKeyEnvOption = Annotated[Optional[str], typer.Option("--api-key-env", help="Environment variable holding the "
                            "API key of openai: models (default OPENAI_API_KEY).")]


class ModelSession:
    """Loads the models a command names, with its call options and one store; sums their call statistics.

    Use as a context manager; errors in specs, templates or the store become `DataError` (exit 2).
    """

    def __init__(self, *, store: Path | None = None, concurrency: int = 8, timeout: float = 60.0,
                 max_retries: int = 5, rpm: float | None = None, tpm: float | None = None,
                 api_key_env: str | None = None, progress: bool | None = None, inputs: tuple = (),
                 params: Mapping[str, Any] | None = None, max_tokens: int | None = None):
        if store is not None:
            check_output_path(store, "--store")
            for i in inputs:
                if i is not None and Path(str(i)).exists() and Path(str(i)).resolve() == store.resolve():
                    raise DataError(f"--store {store}: is an input file; name another file for the run store")
        self.store_path = store
        self.options = CallOptions(concurrency=concurrency, timeout=timeout, max_retries=max_retries, rpm=rpm,
                                   tpm=tpm, progress=progress)
        self.api_key_env = api_key_env
        # Pinned sampling, so that a rerun asks (and caches) exactly the same requests.
        self.params = dict(params or {"temperature": 0.0, "seed": 0})
        if max_tokens is not None:
            self.params["max_tokens"] = int(max_tokens)
        self.models: list[Any] = []
        self._store: RunStore | None = None

    def __enter__(self) -> "ModelSession":
        return self

    def __exit__(self, *exc) -> None:
        if self._store is not None:
            self._store.close()

    def _the_store(self) -> RunStore | None:
        if self.store_path is None:
            return None
        if self._store is None:
            try:
                self._store = RunStore(self.store_path)
            except StoreError as exc:
                raise DataError(f"--store {exc}") from None
        return self._store

    def load(self, spec: str, option: str, *, sandbox: Mapping[str, Any] | None = None,
             score_template: str | None = None, pair_template: str | None = None, template_option: str = "") -> Any:
        """The model of ``spec`` (given with ``option``); templates are checked for their placeholders."""
        if score_template is not None:
            _check(score_template, ["response"], template_option)
        if pair_template is not None:
            _check(pair_template, ["response_a", "response_b"], template_option)
        try:
            store = None if spec.startswith("sandbox:") else self._the_store()
            model = load_model(spec, sandbox=sandbox, store=store, options=self.options,
                               api_key_env=self.api_key_env, params=self.params,
                               score_template=score_template or SCORE_TEMPLATE,
                               pair_template=pair_template or PAIR_TEMPLATE)
        except ModelSpecError as exc:
            message = str(exc)
            raise DataError(f"{option} {message[6:] if message.startswith('model ') else message}") from None
        self.models.append(model)
        return model

    def stats(self) -> CallStats | None:
        """Calls made by every chat model of the session, summed (None when none was loaded)."""
        total, any_chat = CallStats(), False
        for m in self.models:
            s = getattr(m, "stats", None)
            if isinstance(s, CallStats):
                total.add(s)
                any_chat = True
        return total if any_chat else None

    def parse_failures(self) -> int:
        return sum(int(getattr(m, "parse_failures", 0)) for m in self.models)

    def summary(self) -> dict | None:
        s = self.stats()
        if s is None:
            return None
        return {**s.to_dict(), "parse_failures": self.parse_failures(),
                "store": None if self.store_path is None else str(self.store_path)}

    def note(self) -> str | None:
        """One line for the terminal: calls made, from the store, failed, cost."""
        s = self.stats()
        if s is None:
            return None
        cost = f"${s.cost:.4f}" if s.cost_known else "cost unknown (no price for this model)"
        line = (f"model calls: {s.done} answered now, {s.cached} from the store, {s.failed} failed, "
                f"{s.retries} retries; {s.prompt_tokens + s.completion_tokens} tokens, {cost}")
        if self.parse_failures():
            line += f"; {self.parse_failures()} replies could not be read"
        return line


def _check(template: str, needed, option: str) -> None:
    try:
        check_template(template, needed, option)
    except ModelSpecError as exc:
        raise DataError(str(exc)) from None
