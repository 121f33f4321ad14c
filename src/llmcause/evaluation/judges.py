"""Sandbox pairwise judges (``sandbox:NAME`` for ``evaluation audit --judge-model``), with known position bias.

- ``sandbox:first``: always picks the answer shown first. Its first-pick
  rate is 1 (position bias +0.5) and it never picks the same answer in both
  orders (order consistency 0): the worst judge, for checking the audit.
- ``sandbox:longer``: picks the longer answer (a tie when equally long),
  whatever the order: no position bias, order consistency 1 apart from
  ties. A length-biased judge, but an order-blind one.

Both follow the ``compare(prompts, responses_a, responses_b)`` protocol of
`llmcause.runs.Model` (response A is shown first).
"""

from __future__ import annotations

from typing import Sequence


class FirstShownJudge:
    name = "sandbox:first"

    def compare(self, prompts, responses_a: Sequence[str], responses_b: Sequence[str], **kw) -> list[str]:
        return ["A" for _ in responses_a]


class LongerAnswerJudge:
    name = "sandbox:longer"

    def compare(self, prompts, responses_a: Sequence[str], responses_b: Sequence[str], **kw) -> list[str]:
        return ["A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"
                for a, b in zip(responses_a, responses_b)]


SANDBOX_JUDGES = {"first": FirstShownJudge, "longer": LongerAnswerJudge}


# Short questions with a right and a wrong answer, for auditing a real judge's position bias in both orders.
QUIZ = [
    ("What is the capital of France?", "Paris.", "Berlin."),
    ("What colour is the sky on a clear day?", "Blue.", "Green."),
    ("How many legs does a spider have?", "Eight.", "Six."),
    ("Which planet is closest to the Sun?", "Mercury.", "Neptune."),
    ("What do bees make?", "Honey.", "Milk."),
    ("What is frozen water called?", "Ice.", "Steam."),
]
