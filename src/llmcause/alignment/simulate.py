"""Worlds with known truth for style and preference questions.

`simulate_battles` builds an arena: models with known strengths and known
style habits (verbosity, headers, lists, bold) write real markdown answers
to prompts; each answer carries some content (distinct facts, which also
make it longer). Votes are drawn from
    logit P(a wins) = r_a − r_b + zᵀγ_annotator + κ·(log(1 + facts_a) − log(1 + facts_b)),
where z are the style gaps computed from the texts exactly as the
estimators compute them ((a − b)/(a + b + 1), z-scored over the battles),
so γ is in the estimators' units (log-odds per SD). Human and LLM-judge
annotators have different style sensitivities. With κ = 0 style is not a
proxy for content and the style-controlled model is correctly specified;
with κ > 0 length is confounded by content, which the content features of
the texts (distinct words) reveal.

`simulate_alpaca` builds an AlpacaEval-style table (every model answers the
same instructions; a baseline; instruction difficulty) with known
length-controlled win rates. `simulate_responses` builds responses of
varied length for rewrite (RATE) experiments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from .features import LMARENA_FEATURES, battle_style_features, text_features

HUMAN_STYLE = {"length": 0.30, "headers": 0.05, "lists": 0.08, "bold": 0.05}
JUDGE_STYLE = {"length": 0.55, "headers": 0.15, "lists": 0.02, "bold": 0.12}

# Verbosity without content: repeating a fact already given adds tokens but no distinct words.
_NOTHING = "There is not much more to say."
_VERBS = ("shapes", "limits", "extends", "explains", "reduces", "supports", "changes", "balances")


def pseudo_words(n: int, rng: np.random.Generator) -> list[str]:
    """n distinct made-up words (content words that carry no meaning but count as facts)."""
    consonants = np.array(list("bdfgklmnprstvz"))
    vowels = np.array(list("aeiou"))
    words: set[str] = set()
    while len(words) < n:
        batch = 2 * (n - len(words)) + 16
        syll = rng.integers(2, 4, batch)
        c = consonants[rng.integers(0, consonants.size, (batch, 4))]
        v = vowels[rng.integers(0, vowels.size, (batch, 3))]
        for i in range(batch):
            k = int(syll[i])
            words.add("".join(c[i, j] + v[i, j] for j in range(k)) + c[i, 3])
    return sorted(words)[:n]


def write_answer(rng: np.random.Generator, vocab: list[str], n_facts: int, n_filler: int, n_headers: int,
                 list_share: float, n_bold: int) -> str:
    """A markdown answer: fact sentences (new words), repeated sentences (no new words), headers, lists, bold."""
    picks = rng.integers(0, len(vocab), 3 * n_facts).tolist()
    verbs = rng.integers(0, len(_VERBS), n_facts).tolist()
    facts = [f"The {vocab[picks[3 * i]]} {_VERBS[verbs[i]]} the {vocab[picks[3 * i + 1]]} of the "
             f"{vocab[picks[3 * i + 2]]}." for i in range(n_facts)]
    repeat = rng.integers(0, max(1, n_facts), n_filler).tolist()
    sentences = facts + [facts[j] if facts else _NOTHING for j in repeat]
    order = rng.permutation(len(sentences)).tolist()
    sentences = [sentences[i] for i in order] or ["I am not sure."]
    s_count = len(sentences)
    if n_bold:
        for i in rng.choice(s_count, size=min(n_bold, s_count), replace=False).tolist():
            words = sentences[i].split()
            j = int(rng.integers(0, len(words)))
            words[j] = f"**{words[j].rstrip('.')}**" + ("." if words[j].endswith(".") else "")
            sentences[i] = " ".join(words)
    n_sections = max(1, min(n_headers, s_count))
    bounds = [(s_count * j) // n_sections for j in range(n_sections + 1)]
    as_item = (rng.random(s_count) < list_share).tolist()
    blocks = []
    for j in range(n_sections):
        idx = range(bounds[j], bounds[j + 1])
        if n_headers and len(idx):
            title_words = sentences[idx[0]].replace("*", "").rstrip(".").split()[1:3]
            blocks.append("## " + " ".join(title_words).capitalize())
        lines, para = [], []
        for i in idx:
            if as_item[i]:
                if para:
                    lines.append(" ".join(para))
                    para = []
                lines.append(f"- {sentences[i]}")
            else:
                para.append(sentences[i])
        if para:
            lines.append(" ".join(para))
        blocks.append("\n".join(lines))
    return "\n\n".join(b for b in blocks if b)


@dataclass
class ArenaWorld:
    """Simulated battles and the truth behind them."""

    battles: pd.DataFrame
    strengths: dict[str, float]  # centred log-odds
    style_coefs: dict[str, dict[str, float]]  # per annotator type, log-odds per SD
    content_effect: float
    length_ade: dict[str, float]  # average ∂P(a wins)/∂(length gap in SD), per annotator type and "all"
    habits: pd.DataFrame = field(repr=False, default=None)  # per-model style habits

    def true_contrast(self, a: str, b: str) -> float:
        return self.strengths[a] - self.strengths[b]


def simulate_battles(n_battles: int = 3000, n_models: int = 8, *, seed: int = 0, content_effect: float = 0.0,
                     judge_share: float = 0.0, human_style: dict | None = None, judge_style: dict | None = None,
                     strength_sd: float = 0.4, n_prompts: int | None = None, facts_mean: float = 5.0) -> ArenaWorld:
    """Battles with texts, votes from known strengths and style coefficients (see the module docstring).

    Columns: battle_id, prompt_id, model_a, model_b, text_a, text_b, winner
    (model_a / model_b), annotator (human / llm-judge), facts_a, facts_b
    (the latent content), and a language-like group ``topic`` (code / chat).
    """
    rng = np.random.default_rng(seed)
    human = dict(HUMAN_STYLE if human_style is None else human_style)
    judge = dict(JUDGE_STYLE if judge_style is None else judge_style)
    models = [f"model-{i + 1:02d}" for i in range(n_models)]
    r = rng.normal(0.0, strength_sd, n_models)
    r -= r.mean()
    # Style habits, independent of strength: some weak models are verbose and heavily formatted.
    verbosity = np.exp(rng.normal(0.0, 0.6, n_models))
    headers = rng.uniform(0.0, 2.5, n_models)
    list_share = rng.uniform(0.0, 0.6, n_models)
    bold = rng.uniform(0.0, 3.0, n_models)
    vocab = pseudo_words(4000, rng)
    n_prompts = n_prompts or max(2, n_battles // 2)
    prompt = rng.integers(0, n_prompts, n_battles)
    prompt_scale = np.exp(rng.normal(0.0, 0.3, n_prompts))
    ia = rng.integers(0, n_models, n_battles)
    ib = (ia + rng.integers(1, n_models, n_battles)) % n_models
    facts = rng.poisson(facts_mean * prompt_scale[prompt][:, None], size=(n_battles, 2))
    texts = [[], []]
    for side, idx in enumerate((ia, ib)):
        n_filler = rng.poisson(3.0 * verbosity[idx])
        n_head = rng.poisson(headers[idx])
        n_bold = rng.poisson(bold[idx])
        for i in range(n_battles):
            texts[side].append(write_answer(rng, vocab, int(facts[i, side]), int(n_filler[i]), int(n_head[i]),
                                            float(list_share[idx[i]]), int(n_bold[i])))
    counts_a = text_features(texts[0])
    counts_b = text_features(texts[1])
    feats = battle_style_features(counts_a, counts_b, LMARENA_FEATURES)
    if feats.dropped:
        raise ValueError(f"simulated style features without variation: {feats.dropped}")
    is_judge = rng.random(n_battles) < judge_share
    gam_h = np.array([human[f] for f in feats.names])
    gam_j = np.array([judge[f] for f in feats.names])
    style_term = np.where(is_judge, feats.values @ gam_j, feats.values @ gam_h)
    content = content_effect * (np.log1p(facts[:, 0]) - np.log1p(facts[:, 1]))
    eta = r[ia] - r[ib] + style_term + content
    p = expit(eta)
    y = rng.random(n_battles) < p
    k_len = feats.names.index("length")
    slope = p * (1 - p) * np.where(is_judge, gam_j[k_len], gam_h[k_len])
    ade = {"all": float(slope.mean())}
    if (~is_judge).any():
        ade["human"] = float(slope[~is_judge].mean())
    if is_judge.any():
        ade["llm-judge"] = float(slope[is_judge].mean())
    battles = pd.DataFrame({
        "battle_id": [f"b{i:06d}" for i in range(n_battles)],
        "prompt_id": [f"p{j:05d}" for j in prompt],
        "model_a": [models[i] for i in ia],
        "model_b": [models[i] for i in ib],
        "text_a": texts[0],
        "text_b": texts[1],
        "winner": np.where(y, "model_a", "model_b"),
        "annotator": np.where(is_judge, "llm-judge", "human"),
        "topic": np.where(prompt % 3 == 0, "code", "chat"),
        "facts_a": facts[:, 0],
        "facts_b": facts[:, 1],
    })
    habits = pd.DataFrame({"model": models, "strength": r, "verbosity": verbosity, "headers": headers,
                           "list_share": list_share, "bold": bold})
    return ArenaWorld(battles=battles, strengths=dict(zip(models, r.tolist())),
                      style_coefs={"human": human, "llm-judge": judge}, content_effect=content_effect,
                      length_ade=ade, habits=habits)


@dataclass
class AlpacaWorld:
    """An AlpacaEval-style table and each model's true length-controlled win rate."""

    table: pd.DataFrame
    true_lc: dict[str, float]
    true_raw: dict[str, float]
    baseline: str = "baseline"


def simulate_alpaca(n_instructions: int = 600, *, seed: int = 0, models: dict | None = None,
                    length_coef: float = 1.2) -> AlpacaWorld:
    """Every model answers the same instructions; a judge compares each answer with the baseline's.

    ``models`` maps a name to (θ, ψ, verbosity): quality, sensitivity to
    difficulty, and log length ratio to the baseline. Preferences follow the
    length-controlled GLM with the tanh of the length gap over its SD for
    that model, and difficulty γ ~ N(0, 1) (given as a column). The true LC
    win rate is E_γ σ(θ + ψγ), computed by Gauss–Hermite quadrature.
    """
    rng = np.random.default_rng(seed)
    models = models or {"concise-strong": (0.4, -0.6, -0.3), "verbose-weak": (-0.3, -0.9, 0.8),
                        "average": (0.0, -0.8, 0.1)}
    gamma = rng.normal(0.0, 1.0, n_instructions)
    base_len = np.exp(rng.normal(7.0, 0.5, n_instructions))
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    rows, true_lc, true_raw = [], {}, {}
    for name, (theta, psi, verb) in models.items():
        length = base_len * np.exp(verb + rng.normal(0.0, 0.4, n_instructions))
        delta = length - base_len
        p = expit(theta + length_coef * np.tanh(delta / np.std(delta)) + psi * gamma)
        y = (rng.random(n_instructions) < p).astype(float)
        true_lc[name] = float(np.sum(weights * expit(theta + psi * nodes)))
        true_raw[name] = float(np.mean(p))
        for i in range(n_instructions):
            rows.append((f"x{i:04d}", name, "baseline", float(length[i]), float(base_len[i]), float(gamma[i]),
                         "model_a" if y[i] else "model_b"))
    table = pd.DataFrame(rows, columns=["instruction", "model_a", "model_b", "length_a", "length_b", "difficulty",
                                        "winner"])
    return AlpacaWorld(table=table, true_lc=true_lc, true_raw=true_raw)


@dataclass
class ResponseWorld:
    """Responses for rewrite experiments, with their prompts."""

    responses: pd.DataFrame


def simulate_responses(n: int = 400, *, seed: int = 0, facts_mean: float = 6.0) -> ResponseWorld:
    """Plain and markdown answers of varied length; longer answers carry more facts (confounding)."""
    rng = np.random.default_rng(seed)
    vocab = pseudo_words(3000, rng)
    depth = np.exp(rng.normal(0.0, 0.5, n))
    facts = rng.poisson(facts_mean * depth)
    filler = rng.poisson(4.0 * depth)
    md = rng.random(n) < 0.5
    texts = [write_answer(rng, vocab, int(facts[i]), int(filler[i]), int(md[i] * rng.poisson(1.5)),
                          0.4 * md[i], int(md[i] * rng.poisson(2.0))) for i in range(n)]
    frame = pd.DataFrame({"prompt_id": [f"q{i // 2:04d}" for i in range(n)],
                          "prompt": [f"Question {i // 2}" for i in range(n)], "response": texts, "facts": facts})
    return ResponseWorld(responses=frame)
