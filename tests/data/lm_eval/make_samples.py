"""Write real lm-evaluation-harness output for tests/test_formats.py: samples_*.jsonl and results_*.json.

Not run by the suite (lm_eval is no dependency of llmcause). Run it in a throwaway environment:

    python3 -m venv /tmp/lmeval && /tmp/lmeval/bin/pip install torch==2.13.0 lm_eval
    HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 /tmp/lmeval/bin/python tests/data/lm_eval/make_samples.py

Two "models" answer two small local tasks (tasks/*.yaml over tasks/*.jsonl): one generate_until task
scored by exact_match under two filters, one multiple-choice task scored by acc and acc_norm. The models
are a canned answer key, right on a fixed share of the questions (chosen by a hash of the question), so no
weights and no network are needed and every run writes the same per-sample scores.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zlib
from pathlib import Path

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

HERE = Path(__file__).resolve().parent
TASKS = HERE / "tasks"
OUT = HERE / "out"


def _knows(question: str, skill: float) -> bool:
    return zlib.crc32(question.encode()) % 100 < skill * 100


@register_model("canned")
class CannedLM(LM):
    """Answers from a key: right where _knows(question), wrong (but well-formed) elsewhere."""

    def __init__(self, pretrained: str = "canned", skill: float = 0.5, verbose: str = "no", **_):
        super().__init__()
        self.skill = float(skill)
        self.verbose = verbose == "yes"  # answers "The answer is N": only a number-extracting filter finds N

    def generate_until(self, requests):
        out = []
        for req in requests:
            context = req.args[0]
            a, b = (int(x) for x in re.search(r"(\d+) plus (\d+)", context).groups())
            n = a + b if _knows(context, self.skill) else a + b + 1
            out.append(f"The answer is {n}" if self.verbose else str(n))
        return out

    def loglikelihood(self, requests):
        out = []
        for req in requests:
            context, continuation = req.args
            right = continuation.strip() == _MC_KEY[context.split("\n")[0]]
            prefer = right if _knows(context, self.skill) else not right
            out.append((-0.5 if prefer else -3.0 - 0.1 * len(continuation), prefer))
        return out

    def loglikelihood_rolling(self, requests):
        return [-1.0 for _ in requests]


_MC_KEY: dict[str, str] = {}


def main() -> None:
    import json

    for line in (TASKS / "capitals.jsonl").read_text().splitlines():
        doc = json.loads(line)
        _MC_KEY[doc["question"]] = doc["choices"][doc["label"]]
    os.chdir(TASKS)  # the task files name their data relative to here
    if OUT.exists():
        shutil.rmtree(OUT)
    from lm_eval.__main__ import cli_evaluate

    for model_args in ("pretrained=canned-strong,skill=0.8,verbose=yes", "pretrained=canned-weak,skill=0.4"):
        sys.argv = ["lm_eval", "run", "--model", "canned", "--model_args", model_args,
                    "--tasks", "tiny_arith,tiny_capitals", "--include_path", str(TASKS),
                    "--output_path", str(OUT), "--log_samples", "--seed", "0"]
        cli_evaluate()


if __name__ == "__main__":
    main()
