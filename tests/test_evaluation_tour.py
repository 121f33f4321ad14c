"""The evaluation rows of `llmcause tour`."""

from __future__ import annotations

from llmcause.evaluation.tour import tour_rows


def test_tour_rows_quick():
    steps = []
    rows = tour_rows(quick=True, seed=0, progress=steps.append)
    from llmcause.evaluation.tour import tour_steps

    assert len(steps) == tour_steps(quick=True)  # the tour's bar reaches its total
    assert all(r.stage == "evaluation" for r in rows)
    world = [r for r in rows if r.question.startswith("How good is model")]
    assert len(world) == 4
    assert all(r.covered for r in world)
    assert sum(abs(r.naive_value - r.truth) > r.causal.ci_high - r.causal.ci_low for r in world) >= 3
    mistake = [r for r in rows if "wrong way round" in r.question][0]
    assert mistake.naive_value < 0 < mistake.truth and mistake.covered
    unhelpful = [r for r in rows if "unhelpful" in r.question][0]
    assert unhelpful.naive_value > unhelpful.causal.ci_high  # base's calibration alone overstates it
    assert any("does not transport" in w for w in unhelpful.causal.warnings)
    arena = [r for r in rows if "Arena" in r.question][0]
    assert arena.covered and not arena.causal.covers(arena.naive_value)


def test_shift_rows_quick():
    rows = tour_rows(quick=True, seed=0)
    moved = [r for r in rows if "production prompt mix" in r.question][0]
    assert moved.covered and not moved.causal.covers(moved.naive_value)
    swap = [r for r in rows if "swapped for a harsher one" in r.question][0]
    assert swap.covered and "change point found on day" in swap.note
