"""Battles (prediction-powered win rates and Bradley–Terry), position-bias and agreement audits."""

from __future__ import annotations

import numpy as np
import pytest

from llmcause.core.inference import simultaneous_intervals
from llmcause.evaluation import battle_study, battle_world, judge_agreement, load_arena_judges, position_bias
from llmcause.evaluation.battles import Battles, strengths
from llmcause.io import DataError


def _claude_rate(data, other):
    sub = data[(data.model_a == other) | (data.model_b == other)]
    claude_first = sub.model_a.str.startswith("claude")
    won = np.where(claude_first, sub.human_winner == "model_a", sub.human_winner == "model_b")
    return float(np.mean(won))


@pytest.mark.parametrize("judge", ["gpt-4o-mini", "gpt-5.2"])
def test_arena_ppi_win_rate_covers_the_all_votes_rate(judge):
    data = load_arena_judges(judge, drop_missing=True)
    keep = np.random.default_rng(0).random(data.shape[0]) < 0.2  # hide 80% of the human votes
    hidden = data.assign(human=np.where(keep, data.human_winner, None))
    table = battle_study(hidden, judge="judge_pick", human="human")
    for other in ("gemini-2.5-flash", "gemini-2.5-pro", "qwen3-235b-a22b-no-thinking"):
        name = [e.name for e in table if " vs " in e.name and other in e.name][0]
        assert name.startswith("claude")  # pairs are named in sorted order
        est = table.get(name, "ppi++")
        truth = _claude_rate(data, other)
        assert est.covers(truth), (judge, other, est.estimate, truth)
        assert est.diagnostics["n_labeled"] == int(keep[(data.model_a == other) | (data.model_b == other)].sum())


def test_arena_ppi_coverage_over_many_hidings():
    data = load_arena_judges("gpt-4o-mini", drop_missing=True)
    data = data[(data.model_a == "gemini-2.5-pro") | (data.model_b == "gemini-2.5-pro")].reset_index(drop=True)
    truth = _claude_rate(data, "gemini-2.5-pro")
    a = data.model_a.to_numpy()
    covered, naive_covered = 0, 0
    reps = 150
    for r in range(reps):
        keep = np.random.default_rng(100 + r).random(data.shape[0]) < 0.25
        b = Battles(data.assign(human=np.where(keep, data.human_winner, None)), model_a="model_a",
                    model_b="model_b", judge="judge_pick", human="human")
        from llmcause.evaluation.battles import win_rates

        est = win_rates(b)[0]
        covered += est.covers(truth)
        naive_covered += win_rates(b, method="naive")[0].covers(truth)
    assert covered / reps >= 0.93  # finite-population target: at least nominal
    assert naive_covered == 0  # the judge alone says claude wins far less often than humans do
    assert a.size > 200


def test_arena_position_bias_shows():
    data = load_arena_judges()
    table = position_bias(data, pick="judge_pick", human="human_winner", group="judge", pair="id",
                          missing_judge="drop")
    bias = [e for e in table if e.estimand.startswith("position bias")]
    assert {e.name for e in bias} == {"gpt-4o-mini", "gpt-5.2"}
    mini = [e for e in bias if e.name == "gpt-4o-mini"][0]
    assert mini.ci_low > 0  # picks the first answer more than half the time
    paired = [e for e in table if e.name == "gpt-4o-mini" and e.method == "paired"][0]
    assert paired.ci_low > 0  # and more often than the humans preferred the first answer
    assert all(e.estimate > 0 for e in bias)
    assert any("gpt-4o-mini" in w and "shown first" in w for w in table.warnings)
    assert any("2 rows without a judge pick" in w for w in table.warnings)


def test_battle_world_truth_and_naive_error():
    w = battle_world(6000, human_fraction=0.25, seed=2)
    table = battle_study(w.frame)
    naive = battle_study(w.frame, method="naive")
    rates = [e for e in table if " vs " in e.name]
    strengths_ = [e for e in table if " vs " not in e.name]
    assert len(rates) == 6 and len(strengths_) == 4
    # Ten intervals: check them jointly (max-t simultaneous intervals), not one by one.
    for e in simultaneous_intervals(rates, seed=0):
        assert e.covers(w.win_rate(*e.name.split(" vs "))), e.name
    for e in simultaneous_intervals(strengths_, seed=0):
        assert e.covers(w.strengths[e.name]), e.name
        assert "rank" in e.diagnostics and "elo" in e.diagnostics
    # The judge likes verbose models: its strengths are off for the verbose and the terse model.
    wrong = [e.name for e in naive if " vs " not in e.name and not e.covers(w.strengths[e.name])]
    assert len(wrong) >= 2
    pos = position_bias(w.frame, pick="judge")
    assert pos[0].covers(w.first_pick_rate) and pos[1].ci_low > 0


@pytest.mark.filterwarnings("ignore::FutureWarning")  # ppi_py passes penalty=None to scikit-learn
def test_ppi_bradley_terry_is_ppi_logistic_on_the_design():
    ppi_py = pytest.importorskip("ppi_py")
    import scipy.sparse as sp

    from llmcause.core.pairwise import bradley_terry_design

    w = battle_world(1500, human_fraction=0.3, seed=3)
    b = Battles(w.frame, model_a="model_a", model_b="model_b", judge="judge", human="human")
    comps = sorted(set(b.a) | set(b.b))
    ia = np.array([comps.index(v) for v in b.a])
    ib = np.array([comps.index(v) for v in b.b])
    X = sp.csr_matrix(bradley_terry_design(ia, ib, len(comps), np.zeros((ia.size, 0)))).toarray()
    L = ~np.isnan(b.human)
    ref = ppi_py.ppi_logistic_pointestimate(X[L], b.human[L], b.judge[L], X[~L], b.judge[~L], lam=1.0)
    table = strengths(b, method="ppi")
    free = np.array([e.estimate for e in table])
    # Centred strengths are the free coefficients (competitor 0 at zero) minus their mean.
    expected = np.concatenate([[0.0], ref]) - np.concatenate([[0.0], ref]).mean()
    assert np.max(np.abs(free - expected)) < 1e-6


def test_battles_without_human_votes_need_naive():
    w = battle_world(500, seed=0)
    with pytest.raises(DataError, match="needs --human"):
        battle_study(w.frame, human=None)
    naive = battle_study(w.frame, human=None, method="naive")
    assert len(naive) > 0


def test_order_consistency_with_both_orders():
    w = battle_world(1000, seed=4)
    f = w.frame
    swapped = f.rename(columns={"model_a": "model_b", "model_b": "model_a"})
    # A judge with no position effect at all that always picks the same model in both orders.
    swapped = swapped.assign(judge=np.where(f.judge == "model_a", "model_b", "model_a"))
    both = __import__("pandas").concat([f, swapped], ignore_index=True)
    table = position_bias(both, pick="judge", pair="battle_id")
    cons = [e for e in table if e.estimand.startswith("order consistency")][0]
    assert cons.estimate == 1.0
    rate = table[0]
    assert rate.estimate == pytest.approx(0.5)


def test_judge_agreement_binary_and_continuous():
    from llmcause.evaluation import judge_world

    w = judge_world(1500, label_fraction=0.3, seed=6)
    f = w.frame.assign(label_bin=(w.frame.label > 0.5).where(w.frame.label.notna()).astype(float))
    t = judge_agreement(f, judge="judge_binary", label="label_bin", group="model")
    sens = [e for e in t if e.estimand.startswith("sensitivity") and e.name == "birch"][0]
    lab = f[f.label_bin.notna() & (f.model == "birch") & (f.label_bin == 1)]
    assert sens.estimate == pytest.approx(lab.judge_binary.mean())
    curve = judge_agreement(f, judge="judge_score", label="label", covariates=["length", "model"], n_bins=5)
    bins = [e for e in curve if e.method == "calibration curve"]
    assert 3 <= len(bins) <= 5
    assert all(bins[i].estimate <= bins[i + 1].estimate + 0.05 for i in range(len(bins) - 1))
    length = curve.get("length", "ols")
    assert length.ci_low > 0  # longer answers score higher at the same label


def test_order_consistency_counts_ties_in_both_orders_as_consistent():
    import pandas as pd

    # Four pairs judged in both orders: tie/tie (consistent), A wins both times (consistent),
    # tie then a win (inconsistent), and the position always winning (inconsistent).
    rows = [
        ("p1", "x", "y", "tie"), ("p1", "y", "x", "tie"),
        ("p2", "x", "y", "x"), ("p2", "y", "x", "x"),
        ("p3", "x", "y", "tie"), ("p3", "y", "x", "y"),
        ("p4", "x", "y", "A"), ("p4", "y", "x", "A"),
    ]
    frame = pd.DataFrame(rows, columns=["pair", "model_a", "model_b", "judge"])
    table = position_bias(frame, pick="judge", pair="pair")
    cons = [e for e in table if e.estimand.startswith("order consistency")][0]
    assert cons.estimate == pytest.approx(0.5)
    assert cons.diagnostics["n_pairs_both_orders"] == 4
