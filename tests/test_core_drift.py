"""core.drift: routing's drift numbers unchanged by the move, level on a stationary log, breaks found."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from llmcause.core.drift import (argmax_quantile, change_point, change_tests, chi2_change, regime_warning,
                                 window_labels, window_means)
from llmcause.core.estimate import Estimate, EstimateTable
from llmcause.core.inference import contrast, estimate_from_influence, linear_combination
from llmcause.routing.drift import drift_study
from llmcause.routing.evaluate import fit_nuisances, outcome_table
from llmcause.routing.logs import read_log
from llmcause.routing.policies import parse_policy, policy_matrix
from llmcause.routing.simulate import synthetic_world


# --- routing's drift study as it was before it moved into core (kept verbatim, to compare against)

def _old_drift_study(log, policies, *, n_windows=4, half_life=1.0, estimands=("quality",), lam=None, level=0.95,
                     nuisances=None):
    labels = window_labels(log.time, n_windows)
    nuis = nuisances
    table = outcome_table(log, nuis, lam)
    out = []
    rows_all = np.arange(log.n)
    for spec in (parse_policy(p) for p in policies):
        pi = policy_matrix(spec, log)
        w = pi[rows_all, log.action] / nuis.propensity
        for estimand in estimands:
            if estimand not in table:
                continue
            u, q = table[estimand]
            phi = np.einsum("ij,ij->i", pi, q) + w * (u - q[rows_all, log.action])
            per = []
            for j in range(n_windows):
                rows = np.flatnonzero(labels == j)
                theta = float(phi[rows].mean())
                per.append(estimate_from_influence(
                    theta, phi[rows] - theta, name=f"{spec.label} [window {j + 1}/{n_windows}]", estimand=estimand,
                    method="dr", level=level, rows=rows,
                    cluster=None if log.cluster is None else log.cluster[rows]))
            out += per
            out += _old_change(per, spec.label, estimand, half_life)
    return EstimateTable(out)


def _old_change(per, label, estimand, half_life):
    n_w = len(per)
    theta = np.array([e.estimate for e in per])
    se = np.array([e.se for e in per])
    age = np.arange(n_w)[::-1]
    omega = 0.5 ** (age / half_life)
    omega /= omega.sum()
    prec = 1.0 / se ** 2
    pooled = float(np.sum(prec * theta) / prec.sum())
    chi2 = float(np.sum(prec * (theta - pooled) ** 2))
    p = float(stats.chi2.sf(chi2, n_w - 1))
    ew = linear_combination(per, omega, name=f"{label} [weighted]", estimand=estimand, method="dr",
                            diagnostics={"chi2": chi2, "p_change": p})
    diff = contrast(per[-1], per[0], name=f"{label} [last - first window]", estimand=f"change in {estimand}",
                    method="dr")
    return [ew, diff.with_(diagnostics={"chi2_any_change": chi2, "p_any_change": p})]


def _routing_log(drift=1.0, n=3000, seed=4, cluster=False):
    world = synthetic_world(n, seed=seed, drift=drift, population=1000)
    frame = world.frame.assign(prompt=[f"p{i // 2}" for i in range(n)]) if cluster else world.frame
    c = world.columns
    return read_log(frame, action=c["action"], reward=c["reward"], propensity=c["propensity"],
                    features=world.features, cost="cost", time="time", cluster="prompt" if cluster else None)


@pytest.mark.parametrize("cluster", [False, True])
def test_routing_drift_numbers_unchanged_by_the_move(cluster):
    log = _routing_log(cluster=cluster)
    nuis = fit_nuisances(log, seed=0)
    policies = ["always:medium", "always:large"]
    estimands = ("quality", "cost", "utility")
    new = drift_study(log, policies, n_windows=5, half_life=1.5, estimands=estimands, lam=0.2, nuisances=nuis)
    old = _old_drift_study(log, policies, n_windows=5, half_life=1.5, estimands=estimands, lam=0.2, nuisances=nuis)
    assert len(old) == 3 * 2 * (5 + 2)
    for e_old in old:
        e_new = new.get(e_old.name, "dr") if sum(x.name == e_old.name for x in new) == 1 else \
            [x for x in new if x.name == e_old.name and x.estimand == e_old.estimand][0]
        for field in ("estimate", "se", "ci_low", "ci_high"):
            assert getattr(e_new, field) == pytest.approx(getattr(e_old, field), abs=1e-12, rel=0), (e_old.name, field)
        for key, value in e_old.diagnostics.items():
            assert e_new.diagnostics[key] == pytest.approx(value, abs=1e-12, rel=1e-12), (e_old.name, key)


def _stationary_scores(rng, n, sd=1.0):
    return rng.normal(0.3, sd, n), np.sort(rng.random(n))


def test_change_test_holds_its_level_on_stationary_scores():
    rng = np.random.default_rng(0)
    p = []
    for _ in range(300):
        y, t = _stationary_scores(rng, 400)
        labels = window_labels(t, 4)
        per = window_means(y[np.argsort(t)], labels[np.argsort(t)], t[np.argsort(t)], label="x", estimand="v",
                           method="mean")
        p.append(chi2_change(per)[1])
    rate = np.mean(np.array(p) < 0.05)
    assert 0.02 <= rate <= 0.09, rate  # binomial(300, 0.05): 0.05 ± 0.025 at 2 sd


def test_change_point_finds_a_single_break_and_its_interval_covers():
    rng = np.random.default_rng(1)
    hits, found = 0, 0
    for _ in range(100):
        n = 1200
        t = np.sort(rng.random(n))
        y = rng.normal(0.0, 1.0, n) + 0.6 * (t >= 0.6)
        labels = window_labels(t, 6)
        est, notes = change_point(y, t, labels, label="x", estimand="v", method="mean")
        if est:
            found += 1
            when, jump = est
            hits += when.ci_low <= 0.6 <= when.ci_high + 1e-12
            assert jump.name == "x [after - before break]"
    assert found >= 90
    assert hits / found >= 0.85


def test_change_point_declines_a_trend():
    rng = np.random.default_rng(2)
    n = 6000
    t = np.sort(rng.random(n))
    y = rng.normal(0.0, 1.0, n) + 1.5 * t  # a steady trend: no single break explains it
    est, notes = change_point(y, t, window_labels(t, 8), label="x", estimand="v", method="mean")
    assert est == [] and "not a single break" in notes[0]


def test_argmax_quantile_matches_bai():
    # Bai (1997), Table 1: 7.69 (90%), 11.03 (95%)
    assert argmax_quantile(0.90) == pytest.approx(7.69, abs=0.01)
    assert argmax_quantile(0.95) == pytest.approx(11.03, abs=0.01)


def _est(name, v, se):
    return Estimate(name=name, estimand="v", method="m", estimate=v, se=se, ci_low=v - 2 * se, ci_high=v + 2 * se)


def test_regime_warning_only_when_intervals_part():
    assert regime_warning([_est("a [window 1/2]", 0.0, 0.1), _est("a [window 2/2]", 0.3, 0.1)], "a") is None
    msg = regime_warning([_est("a [window 1/2]", 0.0, 0.1), _est("a [window 2/2]", 0.5, 0.1)], "a")
    assert "mixes regimes" in msg and "window 1/2" in msg and "window 2/2" in msg


def _routing_log_world(world, **kw):
    c = world.columns
    return read_log(world.frame, action=c["action"], reward=c["reward"], propensity=c["propensity"],
                    features=world.features, cost="cost", time="time", **kw)


def test_routing_drift_on_a_steady_trend_warns_and_invents_no_break():
    log = _routing_log(drift=1.0, n=6000)
    table = drift_study(log, ["always:medium"], n_windows=4, seed=0)
    assert any("mixes regimes" in w for w in table.warnings)
    assert "always:medium [change point]" not in table.names
    assert any("not a single break" in w for w in table.warnings)


def test_routing_drift_finds_the_break_in_a_log_whose_traffic_turns():
    world = synthetic_world(6000, seed=7, drift=1.0, break_at=0.55, population=200_000)
    table = drift_study(_routing_log_world(world), ["always:medium"], n_windows=4, seed=0)
    when = table["always:medium [change point]"]
    assert when.ci_low <= 0.55 <= when.ci_high and when.ci_high - when.ci_low < 0.2
    t = world.population["time"].to_numpy()
    j = world.models.index("medium")
    truth = world.quality[t >= 0.55, j].mean() - world.quality[t < 0.55, j].mean()
    assert table["always:medium [after - before break]"].covers(truth)
    still = synthetic_world(6000, seed=8, drift=0.0, population=1000)
    flat = drift_study(_routing_log_world(still), ["always:medium"], n_windows=4, seed=0)
    assert "always:medium [change point]" not in flat.names and not flat.warnings
