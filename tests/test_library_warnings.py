"""Library warnings never reach the terminal raw: default nuisance models converge on covariates in dollars,
and whatever libraries still say becomes one llmcause warning line (also in the JSON document)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

from llmcause.cli import run

COVS = "age,educ,black,hisp,married,nodegree,re74,re75"


def job_training_frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """Columns shaped like a job-training evaluation: earnings in dollars beside years and indicators."""
    rng = np.random.default_rng(seed)
    age, educ = rng.integers(17, 55, n), rng.integers(3, 17, n)
    black, hisp, married = rng.binomial(1, 0.3, n), rng.binomial(1, 0.1, n), rng.binomial(1, 0.4, n)
    nodegree = (educ < 12).astype(int)
    re74 = np.where(rng.random(n) < 0.3, 0.0, rng.gamma(2, 7000, n)).round(2)
    re75 = np.where(rng.random(n) < 0.3, 0.0, 0.6 * re74 + rng.gamma(2, 3000, n)).round(2)
    logit = 0.5 - 0.00005 * re74 - 0.00005 * re75 + 0.8 * black - 0.03 * (age - 30) + 0.4 * nodegree
    treat = rng.binomial(1, 1 / (1 + np.exp(-logit)))
    re78 = 0.8 * re75 + 0.3 * re74 + 300 * (educ - 10) + 1500 * treat + rng.normal(0, 3000, n)
    return pd.DataFrame(dict(treat=treat, age=age, educ=educ, black=black, hisp=hisp, married=married,
                             nodegree=nodegree, re74=re74, re75=re75, re78=re78.round(2)))


@pytest.fixture
def earnings_csv(tmp_path):
    path = tmp_path / "earnings.csv"
    job_training_frame().to_csv(path, index=False)
    return path


def test_default_propensity_model_converges_on_dollars():
    from llmcause.core.ate import default_outcome_model, default_propensity_model

    frame = job_training_frame()
    X = frame[COVS.split(",")].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        default_propensity_model().fit(X, frame["treat"].to_numpy())
        default_outcome_model().fit(X, frame["re78"].to_numpy())


@pytest.mark.parametrize("method", ["aipw", "ipw"])
def test_ate_on_earnings_prints_no_raw_library_warning(capsys, earnings_csv, method):
    code = run(["ate", str(earnings_csv), "-t", "treat", "-y", "re78", "-x", COVS, "--method", method])
    out, err = capsys.readouterr()
    assert code == 0, err
    for raw in ("ConvergenceWarning", "lbfgs", "RuntimeWarning", "site-packages", "Traceback"):
        assert raw not in out + err
    code = run(["ate", str(earnings_csv), "-t", "treat", "-y", "re78", "-x", COVS, "--method", method, "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert captured.err == "" and not any("fitting libraries" in w for w in doc["warnings"])
    est = doc["estimates"][0]
    assert est["ci_low"] < 1500 < est["ci_high"]  # the simulated effect of the programme


def test_remaining_library_warnings_become_one_line(capsys, earnings_csv, monkeypatch):
    from sklearn.linear_model import LogisticRegression

    import llmcause.core.ate as ate

    # A propensity model that cannot converge (unscaled dollars, 5 iterations): its warnings must be summarised.
    monkeypatch.setattr(ate, "default_propensity_model", lambda: LogisticRegression(max_iter=5))
    argv = ["ate", str(earnings_csv), "-t", "treat", "-y", "re78", "-x", COVS, "--method", "ipw"]
    assert run([*argv, "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = [w for w in json.loads(captured.out)["warnings"] if "fitting libraries" in w]
    assert len(lines) == 1 and "ConvergenceWarning x5" in lines[0]
    assert run(argv) == 0
    captured = capsys.readouterr()
    assert "ConvergenceWarning x5" in captured.err and "lbfgs failed" in captured.err
    assert captured.err.count("fitting libraries") == 1 and "STOP: TOTAL NO." not in captured.err


def test_library_warnings_are_summarised_with_counts():
    from llmcause.clikit import drain_library_warnings, library_warnings

    with library_warnings():
        for _ in range(3):
            warnings.warn("lbfgs failed to converge\nincrease max_iter", ConvergenceWarning)
        warnings.warn("overflow encountered in exp", RuntimeWarning)
        warnings.warn("an API detail", DeprecationWarning)
        lines = drain_library_warnings()
        assert drain_library_warnings() == []
    assert len(lines) == 1
    assert "4 warnings (ConvergenceWarning x3: lbfgs failed to converge; RuntimeWarning x1: overflow" in lines[0]
    assert "DeprecationWarning" not in lines[0] and "\n" not in lines[0]
