"""Length-controlled win rates and RATE rewrite interventions, against known truth."""

from __future__ import annotations

import numpy as np
import pytest

from llmcause.alignment.arena import winner_outcome
from llmcause.alignment.lc_winrate import (leave_one_out_difficulty, lc_winrates, length_controlled_winrate,
                                           orient_against_baseline)
from llmcause.alignment.rate import RewardModel, Rewriter, rate_effects
from llmcause.alignment.rewards import LengthSandboxReward, NgramRewardModel, content_words, length_attribute
from llmcause.alignment.rewriters import LengthRewriter, MarkdownRewriter, has_markdown
from llmcause.alignment.simulate import simulate_alpaca, simulate_responses
from llmcause.core.pairwise import weighted_logistic_fit


def _alpaca_table(world, with_difficulty=True):
    t = world.table
    y = winner_outcome(t, "winner")
    diff = t["difficulty"].to_numpy() if with_difficulty else None
    return lc_winrates(t["model_a"], y, t["length_a"], t["length_b"], instructions=t["instruction"],
                       difficulty=diff, baseline="baseline")


def test_lc_winrate_covers_truth_and_raw_win_rate_is_off():
    world = simulate_alpaca(600, seed=0)
    table = _alpaca_table(world)
    for name, truth in world.true_lc.items():
        lc = table.get(name, "length-controlled glm")
        assert abs(lc.estimate - truth) <= 2.39 * lc.se, (name, lc.estimate, lc.se, truth)  # 3 at once
        # AlpacaEval's SE leaves the GLM's parameter uncertainty out: ours is wider.
        assert lc.se > 2 * lc.diagnostics["alpacaeval_se"]
    raw = table.get("verbose-weak", "naive")
    assert raw.ci_low > world.true_lc["verbose-weak"]
    assert any("verbose-weak" in w and "extrapolation" in w for w in table.warnings)
    assert not any("concise-strong" in w and "extrapolation" in w for w in table.warnings)


def test_lc_standard_error_agrees_with_an_instruction_bootstrap():
    world = simulate_alpaca(500, seed=4)
    t = world.table[world.table["model_a"] == "verbose-weak"].reset_index(drop=True)
    y = winner_outcome(t, "winner")
    la, lb, gam = t["length_a"].to_numpy(), t["length_b"].to_numpy(), t["difficulty"].to_numpy()
    est = length_controlled_winrate(y, la, lb, difficulty=gam)[0]
    rng = np.random.default_rng(0)
    n, draws = y.shape[0], []
    for _ in range(300):
        i = rng.integers(0, n, n)
        delta = la[i] - lb[i]
        X = np.column_stack([np.ones(n), np.tanh(delta / delta.std()), gam[i]])
        coef = weighted_logistic_fit(X, y[i]).coef
        draws.append(np.mean(1 / (1 + np.exp(-(coef[0] + coef[2] * gam[i])))))
    boot_se = float(np.std(draws, ddof=1))
    assert abs(est.se / boot_se - 1) < 0.15, (est.se, boot_se)


def test_lc_coverage_small():
    hits = 0
    for seed in range(10):
        world = simulate_alpaca(300, seed=50 + seed)
        lc = _alpaca_table(world).get("verbose-weak", "length-controlled glm")
        hits += lc.covers(world.true_lc["verbose-weak"])
    assert hits >= 8  # 95% nominal: fewer than 8/10 has probability 1.2%


@pytest.mark.slow
def test_lc_coverage_many_seeds():
    hits = np.zeros(3)
    names = ["concise-strong", "verbose-weak", "average"]
    # 1,000 instructions: at 400, the verbose model (2% of its answers shorter than the baseline's, so
    # equal length is an extrapolation) covers only about 90%, and the estimate says so in a warning.
    for seed in range(200):
        world = simulate_alpaca(1000, seed=1000 + seed)
        table = _alpaca_table(world)
        for j, name in enumerate(names):
            hits[j] += table.get(name, "length-controlled glm").covers(world.true_lc[name])
    print("LC coverage (concise-strong, verbose-weak, average):", hits / 200)
    assert np.all(np.abs(hits / 200 - 0.95) < 0.04), hits / 200


def test_difficulty_from_other_models_ignores_the_models_own_votes():
    world = simulate_alpaca(100, seed=1)
    t = world.table
    y = winner_outcome(t, "winner")
    g1 = leave_one_out_difficulty(t["model_a"], t["instruction"], y)
    flipped = y.copy()
    own = (t["model_a"] == "average").to_numpy()
    flipped[own] = 1 - flipped[own]
    g2 = leave_one_out_difficulty(t["model_a"], t["instruction"], flipped)
    np.testing.assert_array_equal(g1[own], g2[own])
    assert not np.array_equal(g1[~own], g2[~own])
    table = _alpaca_table(world, with_difficulty=False)
    assert table.get("average", "length-controlled glm").diagnostics["difficulty_source"] == "leave-one-model-out"


def test_orient_against_baseline():
    model, pref, lm, lb, idx = orient_against_baseline(["x", "base", "y"], ["base", "x", "z"], [1.0, 1.0, 0.5],
                                                       [10, 20, 30], [5, 15, 25], "base")
    assert list(model) == ["x", "x"] and list(pref) == [1.0, 0.0]
    assert list(lm) == [10, 15] and list(lb) == [5, 20] and list(idx) == [0, 1]


def test_lc_rejects_degenerate_inputs():
    y = np.ones(20)
    with pytest.raises(ValueError, match="won every comparison"):
        length_controlled_winrate(y, np.arange(20), np.zeros(20))
    with pytest.raises(ValueError, match="never varies"):
        length_controlled_winrate(np.r_[np.ones(10), np.zeros(10)], np.ones(20), np.ones(20))


# --------------------------------------------------------------------------- RATE


def _rate(seed, n=300, coef=0.5):
    texts = simulate_responses(n, seed=seed).responses["response"].tolist()
    attr = length_attribute(150)
    w = np.array([attr(t) for t in texts])
    reward = LengthSandboxReward(length_coef=coef, threshold=150, seed=seed)
    return rate_effects(texts, w, reward, LengthRewriter(150), attribute_of=attr, name="length")


def test_rate_recovers_known_length_effect_where_naive_and_single_rewrite_do_not():
    result = _rate(seed=0, n=400)
    table = result.table
    for kind in ("ATE", "ATT", "ATU"):
        e = table.get(f"length {kind}", "rate")
        assert abs(e.estimate - 0.5) <= 2.39 * e.se, (kind, e.estimate, e.se)  # three at once
    assert table.get("length ATE", "naive").ci_low > 0.5
    assert table.get("length ATE", "single rewrite").ci_low > 0.5
    audit = table.get("length ATE", "rate").diagnostics["rewrite_audit"]
    assert min(audit.values()) == 1.0
    # The ATE combines ATT and ATU with weights n₁/n, n₀/n and paired variances.
    att, atu, ate = (table.get(f"length {k}", "rate") for k in ("ATT", "ATU", "ATE"))
    n1, n0 = ate.diagnostics["n_treated"], ate.diagnostics["n_control"]
    n = n1 + n0
    assert abs(ate.estimate - (n1 * att.estimate + n0 * atu.estimate) / n) < 1e-12
    assert abs(ate.se**2 - (n1**2 * att.se**2 + n0**2 * atu.se**2) / n**2) < 1e-12
    assert list(result.texts.columns[:3]) == ["text", "attribute", "reward"]


def test_rate_coverage_small():
    hits = sum(_rate(seed=20 + s, n=200).table.get("length ATE", "rate").covers(0.5) for s in range(12))
    assert hits >= 9  # 95% nominal: fewer than 9/12 has probability 0.2%


@pytest.mark.slow
def test_rate_coverage_many_seeds():
    hits = sum(_rate(seed=500 + s, n=300).table.get("length ATE", "rate").covers(0.5) for s in range(200))
    print("RATE ATE coverage:", hits / 200)
    assert abs(hits / 200 - 0.95) < 0.04, hits / 200


def test_length_rewriter_sets_the_attribute_and_keeps_content():
    rw = LengthRewriter(60)
    texts = simulate_responses(40, seed=3).responses["response"].tolist()
    for t in texts:
        short, long = rw.shorten(t), rw.lengthen(t)
        assert not rw.is_long(short) and rw.is_long(long)
        assert content_words(rw.lengthen(short)) == content_words(short)
        assert content_words(long) == content_words(t) or rw.is_long(t)
        # Lengthening adds no word at all, content or not: whatever the reward counts, it sees none added.
        assert _all_words(long) == _all_words(t)
    assert isinstance(rw, Rewriter) and isinstance(LengthSandboxReward(), RewardModel)


def test_markdown_rewriter():
    rw = MarkdownRewriter()
    text = "# Plan\n\n- **Boil** the water.\n- Add salt\n\n```\n# code stays\n```\nThen eat."
    plain = rw.strip(text)
    assert has_markdown(plain) == 0 and "# code stays" in plain
    assert rw.strip(plain) == plain
    rich = rw.add(plain)
    assert has_markdown(rich) == 1
    assert {w.lower() for w in rich.replace("*", " ").split() if w.isalpha()} >= \
        {w.lower() for w in plain.split() if w.isalpha()}
    assert rw.rewrite([text, plain], 0) == [plain, plain]


def test_ngram_reward_learns_a_planted_preference():
    rng = np.random.default_rng(0)
    good = ["a careful and excellent answer", "excellent work with details", "clear excellent reply"]
    bad = ["a sloppy answer", "vague reply with errors", "sloppy work"]
    a, b, y = [], [], []
    for i in range(300):
        g, p = good[i % 3], bad[rng.integers(0, 3)]
        if rng.random() < 0.5:
            a.append(g), b.append(p), y.append(1.0)
        else:
            a.append(p), b.append(g), y.append(0.0)
    model = NgramRewardModel(n_features=2**12).fit(a, b, y)
    s = model.score(["an excellent answer", "a sloppy answer"])
    assert s[0] > s[1]
    with pytest.raises(ValueError, match="not fitted"):
        NgramRewardModel().score(["x"])


def test_rate_input_checks():
    with pytest.raises(ValueError, match="0 or 1"):
        rate_effects(["a", "b", "c", "d"], [0, 1, 2, 1], LengthSandboxReward(), LengthRewriter())
    with pytest.raises(ValueError, match="at least two"):
        rate_effects(["a", "b", "c"], [0, 0, 1], LengthSandboxReward(), LengthRewriter())


def _all_words(text):
    import re

    return {w.lower() for w in re.findall(r"[^\W\d_]+", text)}


def test_reward_does_not_discount_the_rewriters_words():
    # The reward's notion of content is fixed by the language, not by what a rewriter adds.
    assert {"other", "words"} <= content_words("In other words, these words differ from the other ones.")


def test_rate_leak_diagnostic_flags_a_filler_and_the_bias_it_causes():
    from llmcause.alignment.rate import rewrite_word_leak
    from llmcause.alignment.rewriters import FILLER_PREFIX

    texts = simulate_responses(400, seed=5).responses["response"].tolist()
    attr = length_attribute(150)
    w = np.array([attr(t) for t in texts])
    reward = LengthSandboxReward(length_coef=0.5, threshold=150, seed=5)
    clean = rate_effects(texts, w, reward, LengthRewriter(150), attribute_of=attr, name="length")
    leaky = rate_effects(texts, w, reward, LengthRewriter(150, restate_prefix=FILLER_PREFIX), attribute_of=attr,
                         name="length")
    c, l = clean.table.get("length ATE", "rate"), leaky.table.get("length ATE", "rate")
    assert c.diagnostics["word_leak"]["ATT pairs"]["systematic"] == {} and not clean.table.warnings
    assert c.diagnostics["word_leak"]["ATU pairs"]["systematic"] == {}
    flagged = l.diagnostics["word_leak"]["ATT pairs"]["systematic"]
    assert {"other", "words"} <= set(flagged) and all(v > 0.9 for v in flagged.values())
    assert any("one direction only" in m for m in leaky.table.warnings)
    # The filler is content to this reward, and only long rewrites carry it: RATE moves up by about
    # content_coef x (new distinct words)/10 and no longer covers the truth.
    assert c.covers(0.5) and l.ci_low > 0.5
    # Words that differ at random in both directions are not a systematic leak.
    rng = np.random.default_rng(0)
    vocab = ["alpha", "beta", "gamma", "delta"]
    on = [" ".join(rng.choice(vocab, 2)) for _ in range(500)]
    off = [" ".join(rng.choice(vocab, 2)) for _ in range(500)]
    assert rewrite_word_leak(on, off)["systematic"] == {}
    assert rewrite_word_leak(["x filler"] * 10, ["x"] * 10)["systematic"] == {"filler": 1.0}
