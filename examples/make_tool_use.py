"""Write examples/tool_use.csv: logs of a tool that was switched on mostly for easy prompts.

Each row is one prompt: its difficulty (0 easy to 1 hard), its length in
tokens, its domain, whether the tool was on, and the answer's score.
The tool was enabled with probability σ(1.5 − 3·difficulty + 0.5·[code]),
so easy prompts got it more often. The score is
0.9 − 0.6·difficulty + 0.05·[math] − 0.02·log(tokens/200) + tool·(0.08 + 0.1·(difficulty − 0.5)) + noise,
so the tool's true average effect on the score is exactly +0.08, while the
naive difference in means also credits the tool with its users' easier prompts.

Run: python examples/make_tool_use.py   (seeded: the same file every time)
"""

from pathlib import Path

import numpy as np
import pandas as pd

TRUE_ATE = 0.08


def make(n: int = 3000, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0, 1, n)
    tokens = np.round(np.exp(rng.normal(np.log(200), 0.6, n))).astype(int)
    domain = rng.choice(["chat", "code", "math"], size=n, p=[0.5, 0.3, 0.2])
    p_tool = 1 / (1 + np.exp(-(1.5 - 3.0 * difficulty + 0.5 * (domain == "code"))))
    tool = (rng.random(n) < p_tool).astype(int)
    effect = TRUE_ATE + 0.1 * (difficulty - 0.5)
    score = (0.9 - 0.6 * difficulty + 0.05 * (domain == "math") - 0.02 * np.log(tokens / 200)
             + tool * effect + rng.normal(0, 0.1, n))
    return pd.DataFrame({"prompt_id": [f"p{i:04d}" for i in range(n)], "difficulty": difficulty.round(4),
                         "prompt_tokens": tokens, "domain": domain, "tool_on": tool, "score": score.round(4)})


if __name__ == "__main__":
    out = Path(__file__).with_name("tool_use.csv")
    make().to_csv(out, index=False)
    print(f"wrote {out}")
