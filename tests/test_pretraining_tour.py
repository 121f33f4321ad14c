"""The pretraining tour rows (quick mode): real proxy runs and the confounded past-runs table."""

from __future__ import annotations

from llmcause.pretraining.tour import tour_rows
from llmcause.tour import available_stages


def test_quick_tour_rows():
    assert "pretraining" in available_stages()
    steps = []
    rows = tour_rows(quick=True, seed=0, progress=steps.append)
    from llmcause.pretraining.tour import tour_steps

    assert len(steps) == tour_steps(quick=True)  # the tour's bar reaches its total
    by_name = {r.causal.name: r for r in rows}
    own = by_name["code:code"].causal
    assert own.estimand == "replacement" and own.ci_high < 0  # adding code lowers held-out code loss
    assert by_name["code:code"].naive_value > own.ci_high  # the linear swarm regression understates it
    others = by_name["code:others"].causal
    assert others.ci_low > 0  # and costs the other domains a little
    past = by_name["code:math"]
    assert past.covered and not past.causal.covers(past.naive_value)
    rec = by_name["recommended - uniform"]
    assert rec.causal.method == "realised, paired by seed" and rec.truth is None
    assert all(r.stage == "pretraining" and r.question for r in rows)
