"""The agents rows of the tour: attribution beats both baselines; mediation and OPE cover the exact truths."""

from __future__ import annotations

from llmcause.agents.tour import tour_rows


def test_agents_tour_rows():
    steps = []
    rows = tour_rows(quick=True, seed=0, progress=steps.append)
    from llmcause.agents.tour import tour_steps

    assert len(steps) == tour_steps(quick=True)  # the tour's bar reaches its total
    assert len(rows) == 4 and all(r.stage == "agents" for r in rows)
    attribution = rows[0]
    assert attribution.causal.estimate >= 0.9 and attribution.naive_value < 0.5
    assert all(r.covered for r in rows[1:])
    assert rows[3].causal.estimate > rows[3].naive_value  # the logged rate understates the careful prompt
