"""`routing evaluate --gamma`: MSM bounds on each policy's quality, the breaking Γ, and the report plot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from llmcause.cli import run
from llmcause.core.msm import msm_hajek_bounds
from llmcause.routing.simulate import synthetic_world

BASE = ["--action", "model", "--reward", "quality", "--propensity", "propensity", "--features",
        "difficulty,length,topic", "--method", "snips"]


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    world = synthetic_world(1200, seed=3)
    path = tmp_path_factory.mktemp("routing_msm") / "log.csv"
    world.frame.to_csv(path, index=False)
    return path, world.frame


def test_gamma_adds_bounds_that_contain_snips(log_csv, capsys, tmp_path):
    path, frame = log_csv
    report = tmp_path / "r.html"
    code = run(["routing", "evaluate", str(path), *BASE, "--policy", "always:large", "--gamma", "1.5", "--json",
                "--report", str(report)])
    out = capsys.readouterr()
    assert code == 0, out.err
    rows = json.loads(out.out)["estimates"]
    snips = next(r for r in rows if r["method"] == "snips" and r["estimand"] == "quality")
    lo = next(r for r in rows if r["estimand"] == "quality lower bound (Γ=1.5)")
    hi = next(r for r in rows if r["estimand"] == "quality upper bound (Γ=1.5)")
    assert lo["estimate"] < snips["estimate"] < hi["estimate"]
    assert lo["diagnostics"]["snips_value"] == pytest.approx(snips["estimate"], rel=1e-9)
    # by hand: the logged rows of the large model, weights 1/μ boxed by Γ
    rows_large = frame["model"].to_numpy() == "large"
    ref = msm_hajek_bounds(frame["quality"].to_numpy()[rows_large], frame["propensity"].to_numpy()[rows_large], 1.5)
    assert (lo["estimate"], hi["estimate"]) == pytest.approx(ref, rel=1e-12)
    g = lo["diagnostics"]["breaking_gamma"]
    logging_value = lo["diagnostics"]["logging_value"]
    assert logging_value == pytest.approx(frame["quality"].mean())
    if g is not None:
        y, e = frame["quality"].to_numpy()[rows_large], frame["propensity"].to_numpy()[rows_large]
        side = 0 if snips["estimate"] > logging_value else 1
        before, after = msm_hajek_bounds(y, e, g * 0.99)[side], msm_hajek_bounds(y, e, g * 1.01)[side]
        assert (before - logging_value) * (after - logging_value) <= 0
    html = report.read_text()
    assert "Sensitivity to the logged propensities: always:large" in html


def test_gamma_note_and_bad_gamma(log_csv, capsys):
    path, _ = log_csv
    assert run(["routing", "evaluate", str(path), *BASE, "--policy", "always:small", "--gamma", "2"]) == 0
    assert "off by up to 2x in odds" in capsys.readouterr().out
    assert run(["routing", "evaluate", str(path), *BASE, "--policy", "always:small", "--gamma", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--gamma" in err and "Traceback" not in err
