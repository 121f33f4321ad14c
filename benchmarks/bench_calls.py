"""The call layer against a bare `openai` client, on the loopback chat-completions server.

Same requests, same server (`llmcause.runs.loopback`, run in its own process
so it does not share the client's interpreter), one client process:

- concurrency 1: llmcause's `ChatModel.generate` (call layer with a fresh
  SQLite run store, every answer committed as it arrives) against a plain
  loop over the synchronous ``openai.OpenAI`` client; time per call;
- concurrency 8 and 64: the same layer against a bare ``openai.AsyncOpenAI``
  client driven by ``asyncio.gather`` under a semaphore of the same size;
  calls per second.
- a rerun of the last campaign: every answer comes from the store, no call.

Goals: at concurrency 1 the layer costs at most 1.2x the bare client's time
per call; at concurrency 64 it reaches at least 0.8x the bare asyncio
client's throughput (a time ratio of at most 1.25).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import openai

import llmcause
from llmcause.runs import CallOptions, RunStore, load_model

PARAMS = {"temperature": 0.0, "seed": 0}


def start_server(latency: float):
    proc = subprocess.Popen([sys.executable, "-m", "llmcause.runs.loopback", "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def prompts(n: int, tag: str) -> list[str]:
    return [f"{tag} question {i}: what is {i} times {i + 1}?" for i in range(n)]


def bare_sync(url: str, ps: list[str]) -> float:
    client = openai.OpenAI(api_key="none", base_url=url, max_retries=0)
    t = time.perf_counter()
    for p in ps:
        client.chat.completions.create(model="toy", messages=[{"role": "user", "content": p}], **PARAMS)
    elapsed = time.perf_counter() - t
    client.close()
    return elapsed


def bare_async(url: str, ps: list[str], concurrency: int) -> float:
    async def go():
        client = openai.AsyncOpenAI(api_key="none", base_url=url, max_retries=0)
        sem = asyncio.Semaphore(concurrency)

        async def one(p):
            async with sem:
                await client.chat.completions.create(model="toy", messages=[{"role": "user", "content": p}],
                                                     **PARAMS)

        t = time.perf_counter()
        await asyncio.gather(*(one(p) for p in ps))
        elapsed = time.perf_counter() - t
        await client.close()
        return elapsed

    return asyncio.run(go())


def layer(url: str, ps: list[str], concurrency: int, store_path: Path) -> tuple[float, dict]:
    store = RunStore(store_path)
    model = load_model(f"openai:toy@{url}", store=store, params=PARAMS,
                       options=CallOptions(concurrency=concurrency, timeout=30, max_retries=3))
    t = time.perf_counter()
    out = model.generate(ps)
    elapsed = time.perf_counter() - t
    assert all(o is not None for o in out)
    store.close()
    return elapsed, model.stats.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 calls per run, 3 rounds (instead of 1,000 and 5).")
    parser.add_argument("--latency", type=float, default=0.0, help="Seconds the server waits per answer.")
    args = parser.parse_args()
    n, rounds = (200, 3) if args.quick else (1000, 5)
    os.environ.pop("OPENAI_API_KEY", None)
    proc, url = start_server(args.latency)
    tmp = Path(tempfile.mkdtemp())
    try:
        print(f"llmcause {llmcause.__version__}, openai {openai.__version__}, Python {platform.python_version()}, "
              f"{n} calls per run, {rounds} alternating rounds (medians), server latency {args.latency:g} s")
        bare_sync(url, prompts(20, "warm-up"))  # first connections, imports
        ratios = []
        for c in (1, 8, 64):
            bare_t, ours_t = [], []
            for r in range(rounds):  # alternate, so that load on the machine hits both alike
                tag = f"c{c}r{r}"
                bare_t.append(bare_sync(url, prompts(n, "bare" + tag)) if c == 1
                              else bare_async(url, prompts(n, "bare" + tag), c))
                t, stats = layer(url, prompts(n, "layer" + tag), c, tmp / f"runs-{tag}.db")
                assert stats["calls"] == n, stats
                ours_t.append(t)
            bare, ours = statistics.median(bare_t), statistics.median(ours_t)
            ratio = statistics.median(o / b for o, b in zip(ours_t, bare_t))
            what = "time per call" if c == 1 else "throughput"
            print(f"concurrency {c:>2}: bare {'loop' if c == 1 else 'asyncio'} {n / bare:6.0f} calls/s "
                  f"({1e3 * bare / n:.2f} ms/call); llmcause {n / ours:6.0f} calls/s ({1e3 * ours / n:.2f} ms/call)")
            ratios.append(f"ratio call layer vs bare openai {'loop' if c == 1 else 'asyncio'} (concurrency {c}, "
                          f"{what}): {ratio:.3f} (n={n})")
        again, stats = layer(url, prompts(n, f"layerc64r{rounds - 1}"), 64, tmp / f"runs-c64r{rounds - 1}.db")
        print(f"rerun from the store: {n / again:6.0f} answers/s, {stats['calls']} calls made, "
              f"{stats['cached']} from the store")
        for r in ratios:
            print(r)
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
