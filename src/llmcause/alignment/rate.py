"""RATE: the effect of a text attribute on a reward model (or judge), by rewriting.

Estimand. For a binary attribute W of a response (long vs short, markdown
vs plain), the effect on the reward R(x, y) of switching W with everything
else held fixed: ATT (over responses that have W = 1), ATU (over those
with W = 0) and ATE = (n₁ATT + n₀ATU)/n.

Estimators. Re(y, w) is a rewrite of y that sets W = w.
- Naive (observational): mean R | W=1 − mean R | W=0. Confounded: long
  answers also say more.
- Single rewrite: ATT = mean_{W=1}[R(y) − R(Re(y,0))], ATU likewise. Biased
  by the rewriter's own side effects (a rewritten text differs from an
  original in more than W).
- RATE (rewrite of rewrite): ATT = mean_{W=1}[R(Re(Re(y,0),1)) − R(Re(y,0))],
  ATU = mean_{W=0}[R(Re(y,1)) − R(Re(Re(y,1),0))]: both sides of each
  difference have passed through the rewriter, so side effects that do not
  depend on w cancel.

Variance. Paired differences dᵢ: Var(ATT) = s²_{d,1}/n₁ (ddof 0), and
Var(ATE) = (n₁²Var(ATT) + n₀²Var(ATU))/n² (conditional on n₁), through
influence values ψᵢ = dᵢ − ATT_{W(i)}; cluster-robust by prompt when given.

Assumptions. The rewriter changes W (audited when an attribute function is
given) and its off-target effect on the reward does not depend on w. The
second is checked without the reward by `rewrite_word_leak`: words that one
side of the RATE pairs has systematically and the other lacks (a filler the
rewriter adds in one direction only) are a side effect that RATE cannot
cancel; they are listed in the diagnostics and warned about.

Reference. Reber, Richardson, Nief, Garbacea & Veitch 2025, "RATE: causal
explainability of reward models with imperfect counterfactuals" (ICML;
arXiv 2410.11348).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from ..core.estimate import Estimate, EstimateTable
from ..core.inference import estimate_from_influence


@runtime_checkable
class Rewriter(Protocol):
    """Sets a binary attribute of texts: ``rewrite(texts, target, prompts)`` returns one text per input."""

    def rewrite(self, texts: Sequence[str], target: int, prompts: Sequence[str] | None = None) -> list[str]:
        ...


@runtime_checkable
class RewardModel(Protocol):
    """Scores responses: ``score(texts, prompts)`` returns one float per text (higher is better)."""

    def score(self, texts: Sequence[str], prompts: Sequence[str] | None = None) -> np.ndarray:
        ...


@dataclass
class RateResult:
    """The estimates and every text and reward behind them (for auditing)."""

    table: EstimateTable
    texts: pd.DataFrame  # original, rewrites and rewards per response

    def estimates(self) -> EstimateTable:
        return self.table


def _rewrite(rewriter: Rewriter, texts: list[str], target: int, prompts) -> list[str]:
    if not texts:
        return []
    out = list(rewriter.rewrite(texts, target, prompts))
    if len(out) != len(texts):
        raise ValueError(f"the rewriter returned {len(out)} texts for {len(texts)} inputs")
    return [str(t) for t in out]


def _score(model: RewardModel, texts: list[str], prompts) -> np.ndarray:
    if not texts:
        return np.zeros(0)
    r = np.asarray(model.score(texts, prompts), dtype=float).ravel()
    if r.shape[0] != len(texts) or not np.all(np.isfinite(r)):
        raise ValueError("the reward model must return one finite score per text")
    return r


def rate_effects(
    texts: Sequence[str],
    attribute: Sequence[int],
    reward_model: RewardModel,
    rewriter: Rewriter,
    *,
    prompts: Sequence[str] | None = None,
    cluster: Sequence | None = None,
    attribute_of: Callable[[str], int] | None = None,
    name: str = "attribute",
    level: float = 0.95,
    on_step: Callable[[str], None] | None = None,
) -> RateResult:
    """Naive, single-rewrite and RATE estimates of the attribute's effect on the reward.

    Parameters
    ----------
    texts : responses y.
    attribute : W per response (0/1), e.g. from ``attribute_of``.
    reward_model : scores texts (`RewardModel`).
    rewriter : sets W (`Rewriter`).
    prompts : optional prompt per response, passed to the rewriter and the reward model.
    cluster : optional prompt id per response (several responses per prompt): CR1 errors.
    attribute_of : optional W(text), used to audit that each rewrite sets W as asked.
    """
    texts = [str(t) for t in texts]
    w = np.asarray(attribute, dtype=float)
    n = len(texts)
    if w.shape[0] != n:
        raise ValueError("one attribute value per text is needed")
    if not np.all(np.isin(w, (0.0, 1.0))):
        raise ValueError("the attribute must be 0 or 1")
    n1, n0 = int(w.sum()), int(n - w.sum())
    if n1 < 2 or n0 < 2:
        raise ValueError(f"need at least two responses with and two without the attribute (have {n1} and {n0})")
    prompts_arr = None if prompts is None else [str(p) for p in prompts]
    clus = None if cluster is None else np.asarray(cluster)
    t_idx, c_idx = np.flatnonzero(w == 1), np.flatnonzero(w == 0)

    def pick(seq, idx):
        return None if seq is None else [seq[i] for i in idx]

    step = on_step or (lambda s: None)
    step("scoring the originals")
    r_orig = _score(reward_model, texts, prompts_arr)
    step("rewriting: attribute off")
    t_texts = pick(texts, t_idx)
    y0 = _rewrite(rewriter, t_texts, 0, pick(prompts_arr, t_idx))
    step("rewriting back: attribute on")
    y01 = _rewrite(rewriter, y0, 1, pick(prompts_arr, t_idx))
    step("rewriting: attribute on")
    c_texts = pick(texts, c_idx)
    y1 = _rewrite(rewriter, c_texts, 1, pick(prompts_arr, c_idx))
    step("rewriting back: attribute off")
    y10 = _rewrite(rewriter, y1, 0, pick(prompts_arr, c_idx))
    step("scoring the rewrites")
    r_y0 = _score(reward_model, y0, pick(prompts_arr, t_idx))
    r_y01 = _score(reward_model, y01, pick(prompts_arr, t_idx))
    r_y1 = _score(reward_model, y1, pick(prompts_arr, c_idx))
    r_y10 = _score(reward_model, y10, pick(prompts_arr, c_idx))

    out: list[Estimate] = []
    cl_t = None if clus is None else clus[t_idx]
    cl_c = None if clus is None else clus[c_idx]
    kw = dict(level=level)

    # Naive: two-sample difference of means, as one influence vector over all n rows.
    m1, m0 = float(r_orig[t_idx].mean()), float(r_orig[c_idx].mean())
    psi = np.where(w == 1, (n / n1) * (r_orig - m1), -(n / n0) * (r_orig - m0))
    out.append(estimate_from_influence(m1 - m0, psi, name=f"{name} ATE", estimand=f"effect of {name} on reward",
                                       method="naive", cluster=clus, diagnostics={"n_treated": n1, "n_control": n0},
                                       **kw))

    def paired(d_t: np.ndarray, d_c: np.ndarray, method: str, diag: dict) -> list[Estimate]:
        att, atu = float(d_t.mean()), float(d_c.mean())
        ate = (n1 * att + n0 * atu) / n
        psi_ate = np.empty(n)
        psi_ate[t_idx] = d_t - att
        psi_ate[c_idx] = d_c - atu
        est = f"effect of {name} on reward"
        return [
            estimate_from_influence(ate, psi_ate, name=f"{name} ATE", estimand=est, method=method, cluster=clus,
                                    diagnostics={**diag, "n_treated": n1, "n_control": n0}, **kw),
            estimate_from_influence(att, d_t - att, name=f"{name} ATT", estimand=est, method=method, cluster=cl_t,
                                    rows=t_idx, diagnostics=diag, **kw),
            estimate_from_influence(atu, d_c - atu, name=f"{name} ATU", estimand=est, method=method, cluster=cl_c,
                                    rows=c_idx, diagnostics=diag, **kw),
        ]

    out += paired(r_orig[t_idx] - r_y0, r_y1 - r_orig[c_idx], "single rewrite",
                  {"compares": "original vs one rewrite"})
    out += paired(r_y01 - r_y0, r_y1 - r_y10, "rate", {"compares": "rewrite vs rewrite of rewrite"})
    # The rewriter's own effect: rewriting twice returns to the same W, so a fair rewriter changes nothing.
    out.append(estimate_from_influence(float(np.mean(r_y01 - r_orig[t_idx])),
                                       (r_y01 - r_orig[t_idx]) - np.mean(r_y01 - r_orig[t_idx]),
                                       name="rewrite side effect (W=1)", estimand="reward change from rewriting "
                                       "twice", method="rewrite audit", cluster=cl_t, rows=t_idx, **kw))
    out.append(estimate_from_influence(float(np.mean(r_y10 - r_orig[c_idx])),
                                       (r_y10 - r_orig[c_idx]) - np.mean(r_y10 - r_orig[c_idx]),
                                       name="rewrite side effect (W=0)", estimand="reward change from rewriting "
                                       "twice", method="rewrite audit", cluster=cl_c, rows=c_idx, **kw))
    warnings = []
    leak = {"ATT pairs": rewrite_word_leak(y01, y0), "ATU pairs": rewrite_word_leak(y1, y10)}
    out = [e.with_(diagnostics={**e.diagnostics, "word_leak": leak}) if e.method == "rate" else e for e in out]
    flagged = [f"{w!r} on the {'on' if v > 0 else 'off'} side of {abs(v):.0%} of {side}"
               for side, found in leak.items() for w, v in found["systematic"].items()]
    if flagged:
        words = "; ".join(flagged)
        warnings.append(f"the rewriter adds words in one direction only ({words}): a side effect "
                        f"RATE cannot cancel; if the reward responds to these words, RATE measures {name} plus "
                        "them (use a rewriter that adds no words, or check the reward ignores them)")
    frame = pd.DataFrame({"text": texts, "attribute": w.astype(int), "reward": r_orig})
    frame["rewrite"] = None
    frame["rewrite_of_rewrite"] = None
    frame["reward_rewrite"] = np.nan
    frame["reward_rewrite_of_rewrite"] = np.nan
    frame.loc[t_idx, "rewrite"] = y0
    frame.loc[t_idx, "rewrite_of_rewrite"] = y01
    frame.loc[c_idx, "rewrite"] = y1
    frame.loc[c_idx, "rewrite_of_rewrite"] = y10
    frame.loc[t_idx, "reward_rewrite"] = r_y0
    frame.loc[t_idx, "reward_rewrite_of_rewrite"] = r_y01
    frame.loc[c_idx, "reward_rewrite"] = r_y1
    frame.loc[c_idx, "reward_rewrite_of_rewrite"] = r_y10
    if attribute_of is not None:
        audit = _audit(attribute_of, y0, y01, y1, y10)
        out = [e.with_(diagnostics={**e.diagnostics, "rewrite_audit": audit}) if e.method == "rate" else e
               for e in out]
        worst = min(audit.values())
        if worst < 0.95:
            warnings.append(f"the rewriter set the attribute as asked in only {worst:.0%} of some rewrites: "
                            "the RATE estimate mixes in texts whose attribute did not change")
    return RateResult(table=EstimateTable(out, warnings), texts=frame)


LEAK_SHARE = 0.2  # a word is a systematic one-sided side effect when its net share of pairs is at least this
_WORD = re.compile(r"[^\W\d_]+")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def rewrite_word_leak(on_texts: Sequence[str], off_texts: Sequence[str], *, threshold: float = LEAK_SHARE,
                      top: int = 5) -> dict:
    """Words that the attribute-on texts of RATE's pairs have and their attribute-off partners lack, and back.

    ``on_texts[i]`` and ``off_texts[i]`` are the two sides of one RATE
    difference (e.g. Re(Re(y,0),1) and Re(y,0)). For each word, its net share
    is (pairs where only the on side has it − pairs where only the off side
    has it) / pairs. A word with |net share| ≥ ``threshold`` is added in one
    direction systematically: if the reward responds to it, RATE measures the
    attribute plus that word. Words that differ at random in both directions
    (a paraphraser's noise) have net shares near 0 and are not listed.
    """
    if len(on_texts) != len(off_texts):
        raise ValueError("one off-side text per on-side text is needed")
    n = len(on_texts)
    if n == 0:
        return {"pairs": 0, "on_only_share": 0.0, "off_only_share": 0.0, "systematic": {}}
    net: dict[str, int] = {}
    on_any = off_any = 0
    for on, off in zip(on_texts, off_texts):
        a, b = _words(on), _words(off)
        on_only, off_only = a - b, b - a
        on_any += bool(on_only)
        off_any += bool(off_only)
        for w in on_only:
            net[w] = net.get(w, 0) + 1
        for w in off_only:
            net[w] = net.get(w, 0) - 1
    shares = {w: c / n for w, c in net.items() if abs(c) / n >= threshold}
    ranked = sorted(shares.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    return {"pairs": n, "on_only_share": on_any / n, "off_only_share": off_any / n,
            "systematic": {w: round(v, 4) for w, v in ranked}}


def _audit(attribute_of, y0, y01, y1, y10) -> dict:
    def share(texts, target):
        return float(np.mean([attribute_of(t) == target for t in texts])) if texts else 1.0

    return {"Re(y,0) has W=0": share(y0, 0), "Re(Re(y,0),1) has W=1": share(y01, 1),
            "Re(y,1) has W=1": share(y1, 1), "Re(Re(y,1),0) has W=0": share(y10, 0)}
