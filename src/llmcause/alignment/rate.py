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


def _rewrite(rewriter: Rewriter, texts: list[str | None], target: int, prompts) -> list[str | None]:
    """Rewrites of the texts that exist (None in, None out); a rewriter may answer None where it failed."""
    have = [i for i, t in enumerate(texts) if t is not None]
    out: list[str | None] = [None] * len(texts)
    if not have:
        return out
    got = list(rewriter.rewrite([texts[i] for i in have], target, None if prompts is None else
                                [prompts[i] for i in have]))
    if len(got) != len(have):
        raise ValueError(f"the rewriter returned {len(got)} texts for {len(have)} inputs")
    for i, t in zip(have, got):
        out[i] = None if t is None else str(t)
    return out


def _score(model: RewardModel, texts: list[str | None], prompts) -> np.ndarray:
    """Rewards of the texts that exist; NaN for a missing text or a score the model could not give."""
    have = [i for i, t in enumerate(texts) if t is not None]
    out = np.full(len(texts), np.nan)
    if not have:
        return out
    r = np.asarray(model.score([texts[i] for i in have], None if prompts is None else [prompts[i] for i in have]),
                   dtype=float).ravel()
    if r.shape[0] != len(have) or np.any(np.isinf(r)):
        raise ValueError("the reward model must return one finite score per text")
    out[have] = r
    return out


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
    reward_model : scores texts (`RewardModel`); NaN where it gives no score.
    rewriter : sets W (`Rewriter`); None where it gives no rewrite.
    prompts : optional prompt per response, passed to the rewriter and the reward model.
    cluster : optional prompt id per response (several responses per prompt): CR1 errors.
    attribute_of : optional W(text), used to audit that each rewrite sets W as asked.

    A response whose rewrite or any of whose rewards is missing (a model
    call that failed or a reply that could not be read) is left out of every
    estimate, with a warning; the estimates then assume such responses are
    missing at random.
    """
    texts = [str(t) for t in texts]
    w_all = np.asarray(attribute, dtype=float)
    n_all = len(texts)
    if w_all.shape[0] != n_all:
        raise ValueError("one attribute value per text is needed")
    if not np.all(np.isin(w_all, (0.0, 1.0))):
        raise ValueError("the attribute must be 0 or 1")
    n1, n0 = int(w_all.sum()), int(n_all - w_all.sum())
    if n1 < 2 or n0 < 2:
        raise ValueError(f"need at least two responses with and two without the attribute (have {n1} and {n0})")
    prompts_arr = None if prompts is None else [str(p) for p in prompts]
    clus_all = None if cluster is None else np.asarray(cluster)
    t_all, c_all = np.flatnonzero(w_all == 1), np.flatnonzero(w_all == 0)

    def pick(seq, idx):
        return None if seq is None else [seq[i] for i in idx]

    step = on_step or (lambda s: None)
    step("scoring the originals")
    r_orig = _score(reward_model, texts, prompts_arr)
    step("rewriting: attribute off")
    y0 = _rewrite(rewriter, pick(texts, t_all), 0, pick(prompts_arr, t_all))
    step("rewriting back: attribute on")
    y01 = _rewrite(rewriter, y0, 1, pick(prompts_arr, t_all))
    step("rewriting: attribute on")
    y1 = _rewrite(rewriter, pick(texts, c_all), 1, pick(prompts_arr, c_all))
    step("rewriting back: attribute off")
    y10 = _rewrite(rewriter, y1, 0, pick(prompts_arr, c_all))
    step("scoring the rewrites")
    # Per response: its first rewrite and the rewrite of that rewrite, with their rewards.
    first: list[str | None] = [None] * n_all
    second: list[str | None] = [None] * n_all
    for idx, a, b in ((t_all, y0, y01), (c_all, y1, y10)):
        for j, i in enumerate(idx):
            first[i], second[i] = a[j], b[j]
    r_first = _score(reward_model, first, prompts_arr)
    r_second = _score(reward_model, second, prompts_arr)

    warnings = []
    ok = np.isfinite(r_orig) & np.isfinite(r_first) & np.isfinite(r_second)
    keep = np.flatnonzero(ok)
    if keep.size < n_all:
        warnings.append(f"{n_all - keep.size} of {n_all} responses left out: a rewrite or a reward is missing "
                        "(assumed missing at random)")
    w = w_all[keep]
    n, n1, n0 = keep.size, int(w.sum()), int(keep.size - w.sum())
    if n1 < 2 or n0 < 2:
        raise ValueError(f"only {n1} responses with and {n0} without the attribute have every rewrite and reward; "
                         "need at least two of each")
    t_idx, c_idx = keep[w == 1], keep[w == 0]  # original row numbers
    clus = None if clus_all is None else clus_all[keep]
    kw = dict(level=level)
    out: list[Estimate] = []
    cl_t = None if clus_all is None else clus_all[t_idx]
    cl_c = None if clus_all is None else clus_all[c_idx]
    ro = r_orig[keep]

    # Naive: two-sample difference of means, as one influence vector over all n rows.
    m1, m0 = float(r_orig[t_idx].mean()), float(r_orig[c_idx].mean())
    psi = np.where(w == 1, (n / n1) * (ro - m1), -(n / n0) * (ro - m0))
    out.append(estimate_from_influence(m1 - m0, psi, name=f"{name} ATE", estimand=f"effect of {name} on reward",
                                       method="naive", cluster=clus, rows=keep,
                                       diagnostics={"n_treated": n1, "n_control": n0}, **kw))
    tpos, cpos = np.flatnonzero(w == 1), np.flatnonzero(w == 0)

    def paired(d_t: np.ndarray, d_c: np.ndarray, method: str, diag: dict) -> list[Estimate]:
        att, atu = float(d_t.mean()), float(d_c.mean())
        ate = (n1 * att + n0 * atu) / n
        psi_ate = np.empty(n)
        psi_ate[tpos] = d_t - att
        psi_ate[cpos] = d_c - atu
        est = f"effect of {name} on reward"
        return [
            estimate_from_influence(ate, psi_ate, name=f"{name} ATE", estimand=est, method=method, cluster=clus,
                                    rows=keep, diagnostics={**diag, "n_treated": n1, "n_control": n0}, **kw),
            estimate_from_influence(att, d_t - att, name=f"{name} ATT", estimand=est, method=method, cluster=cl_t,
                                    rows=t_idx, diagnostics=diag, **kw),
            estimate_from_influence(atu, d_c - atu, name=f"{name} ATU", estimand=est, method=method, cluster=cl_c,
                                    rows=c_idx, diagnostics=diag, **kw),
        ]

    out += paired(r_orig[t_idx] - r_first[t_idx], r_first[c_idx] - r_orig[c_idx], "single rewrite",
                  {"compares": "original vs one rewrite"})
    out += paired(r_second[t_idx] - r_first[t_idx], r_first[c_idx] - r_second[c_idx], "rate",
                  {"compares": "rewrite vs rewrite of rewrite"})
    # The rewriter's own effect: rewriting twice returns to the same W, so a fair rewriter changes nothing.
    for idx, cl, label in ((t_idx, cl_t, "W=1"), (c_idx, cl_c, "W=0")):
        d = r_second[idx] - r_orig[idx]
        out.append(estimate_from_influence(float(np.mean(d)), d - np.mean(d), name=f"rewrite side effect ({label})",
                                           estimand="reward change from rewriting twice", method="rewrite audit",
                                           cluster=cl, rows=idx, **kw))
    leak = {"ATT pairs": rewrite_word_leak([second[i] for i in t_idx], [first[i] for i in t_idx]),
            "ATU pairs": rewrite_word_leak([first[i] for i in c_idx], [second[i] for i in c_idx])}
    out = [e.with_(diagnostics={**e.diagnostics, "word_leak": leak}) if e.method == "rate" else e for e in out]
    flagged = [f"{w!r} on the {'on' if v > 0 else 'off'} side of {abs(v):.0%} of {side}"
               for side, found in leak.items() for w, v in found["systematic"].items()]
    if flagged:
        words = "; ".join(flagged)
        warnings.append(f"the rewriter adds words in one direction only ({words}): a side effect "
                        f"RATE cannot cancel; if the reward responds to these words, RATE measures {name} plus "
                        "them (use a rewriter that adds no words, or check the reward ignores them)")
    frame = pd.DataFrame({"text": texts, "attribute": w_all.astype(int), "reward": r_orig, "rewrite": first,
                          "rewrite_of_rewrite": second, "reward_rewrite": r_first,
                          "reward_rewrite_of_rewrite": r_second})
    if attribute_of is not None:
        audit = _audit(attribute_of, [first[i] for i in t_idx], [second[i] for i in t_idx],
                       [first[i] for i in c_idx], [second[i] for i in c_idx])
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
