"""E-values (VanderWeele & Ding 2017): the paper's example, the defining bias-factor identity, and the adjusted
risk ratio of a binary outcome with known truth."""

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.core.ate import aipw
from llmcause.core.evalue import evalue_ci, evalue_or, evalue_rr


def test_paper_example():
    # VanderWeele & Ding (2017): RR 3.9 (95% CI 1.8 to 8.7) has E-value 7.26, and 3.00 for the lower limit.
    assert evalue_rr(3.9) == pytest.approx(7.26, abs=0.005)
    assert evalue_ci(3.9, 1.8, 8.7) == pytest.approx(3.0, abs=1e-12)


@pytest.mark.parametrize("rr", [1.0, 1.07, 1.5, 2.0, 3.9, 12.0])
def test_evalue_is_where_the_bounding_factor_reaches_the_ratio(rr):
    # Ding & VanderWeele's bounding factor B = RR_UD * RR_EU / (RR_UD + RR_EU - 1) equals RR at RR_UD = RR_EU = E.
    e = evalue_rr(rr)
    assert e * e / (2 * e - 1) == pytest.approx(rr, rel=1e-12)
    assert evalue_rr(1 / rr) == pytest.approx(e, rel=1e-12)  # protective effects by their reciprocal


def test_intervals_and_odds_ratios():
    assert evalue_ci(1.4, 0.9, 2.1) == 1.0
    assert evalue_ci(0.5, 0.3, 0.8) == pytest.approx(evalue_rr(0.8))
    assert evalue_or(4.0, rare=True)["evalue"] == pytest.approx(evalue_rr(4.0))
    common = evalue_or(4.0, 2.25, 9.0, rare=False)
    assert common["rr_approx"] == 2.0 and common["evalue"] == pytest.approx(2 + np.sqrt(2))
    assert common["evalue_ci"] == pytest.approx(evalue_rr(1.5))


def _binary_world(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 2))
    a = rng.binomial(1, 1 / (1 + np.exp(-X[:, 0])))
    y = rng.binomial(1, 0.2 + 0.2 * a + 0.1 * (X[:, 0] > 0))
    return X, a, y  # E[Y(1)] = 0.45, E[Y(0)] = 0.25: RR 1.8


@pytest.mark.parametrize("estimand", ["ate", "att"])
def test_adjusted_risk_ratio_covers_the_truth(estimand):
    X, a, y = _binary_world(6000, seed=2)
    ev = aipw(y, a, X, estimand=estimand, seed=0).diagnostics["evalue"]
    true_rr = 1.8 if estimand == "ate" else (0.4 + 0.1 * np.mean(X[a == 1, 0] > 0)) / (0.2 + 0.1 * np.mean(X[a == 1, 0] > 0))
    assert ev["rr_ci"][0] <= true_rr <= ev["rr_ci"][1]
    assert ev["evalue_rr"] == pytest.approx(evalue_rr(ev["rr"]))
    assert 1 < ev["evalue_rr_ci"] < ev["evalue_rr"]
    assert not ev["outcome_rare"]


def test_rr_interval_coverage_small():
    hits = 0
    for seed in range(40):
        X, a, y = _binary_world(1500, seed=100 + seed)
        lo, hi = aipw(y, a, X, seed=seed, sensitivity_cf=None).diagnostics["evalue"]["rr_ci"]
        hits += lo <= 1.8 <= hi
    assert hits >= 34  # 95% nominal; P(fewer than 34 of 40 | 0.95) < 0.5%


def test_ate_command_prints_the_evalue(capsys, tmp_path):
    X, a, y = _binary_world(800, seed=7)
    path = tmp_path / "bin.csv"
    pd.DataFrame({"x0": X[:, 0], "x1": X[:, 1], "t": a, "y": y}).to_csv(path, index=False)
    assert run(["ate", str(path), "-t", "t", "-y", "y", "-x", "x0,x1"]) == 0
    out = capsys.readouterr().out
    assert "E-value: risk ratio" in out
    assert run(["ate", str(path), "-t", "t", "-y", "y", "-x", "x0,x1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["estimates"][0]["diagnostics"]["evalue"]["evalue_rr"] > 1
