"""Rewriters and reward models behind model specs, for RATE (`alignment rate --rewriter SPEC --reward SPEC`).

A chat model (``openai:`` or a ``python:`` callable) rewrites by a prompt
template per direction (attribute on / off) and rewards by a scoring
template whose reply's first number is the reward (see
`llmcause.runs.models`). A ``python:`` object with ``rewrite`` or ``score``
is used as it is (the `rate.Rewriter` / `rate.RewardModel` protocols).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..runs.models import fill_template

REWRITE_TEMPLATES = {
    ("length", 1): ("Rewrite the response below so that it is longer: at least {threshold} words. Say nothing new: "
                    "restate and expand what it already says. Reply with the rewritten response only.\n\n"
                    "Prompt:\n{prompt}\n\nResponse:\n{response}"),
    ("length", 0): ("Rewrite the response below so that it is short: fewer than {threshold} words, keeping its main "
                    "point. Reply with the rewritten response only.\n\nPrompt:\n{prompt}\n\nResponse:\n{response}"),
    ("markdown", 1): ("Rewrite the response below with markdown formatting (a header, bullet points, bold key "
                      "words), changing nothing it says. Reply with the rewritten response only.\n\n"
                      "Prompt:\n{prompt}\n\nResponse:\n{response}"),
    ("markdown", 0): ("Rewrite the response below as plain prose without any markdown (no headers, lists or bold), "
                      "changing nothing it says. Reply with the rewritten response only.\n\n"
                      "Prompt:\n{prompt}\n\nResponse:\n{response}"),
}


def default_rewrite_templates(attribute: str, threshold: int) -> dict[int, str]:
    return {t: REWRITE_TEMPLATES[(attribute, t)].replace("{threshold}", str(threshold)) for t in (0, 1)}


class ModelRewriter:
    """`rate.Rewriter` by a chat model: ``templates[target]`` with ``{response}`` (and ``{prompt}``)."""

    def __init__(self, model, templates: dict[int, str]):
        self.model = model
        self.templates = templates

    def rewrite(self, texts: Sequence[str], target: int, prompts: Sequence[str] | None = None) -> list[str | None]:
        prompts = [""] * len(texts) if prompts is None else prompts
        filled = [fill_template(self.templates[int(target)], prompt=p, response=t) for t, p in zip(texts, prompts)]
        return self.model.generate(filled, description=f"rewrite (attribute {'on' if target else 'off'})")


class ModelReward:
    """`rate.RewardModel` by a chat judge: the first number of its reply to the scoring template."""

    def __init__(self, model):
        self.model = model

    def score(self, texts: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        return self.model.score(prompts, list(texts), description="reward")
