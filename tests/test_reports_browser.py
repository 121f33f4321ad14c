"""Each stage's HTML report opened in headless Chromium at phone and desktop widths.

Checked as a reader would see it: every plot loaded and visible with a
non-zero size inside the window, no console errors, no horizontal scrolling
of the page at 390 and 1280 px, no script in the page, and a model named
``<script>alert(1)</script>`` shown as text. Skipped only where no Chromium
is installed; CI sets LLMCAUSE_REQUIRE_BROWSER=1, which turns that skip into
a failure.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headless import Browser, chromium_path
from llmcause.cli import run
from llmcause.core.estimate import Estimate, EstimateTable
from llmcause.report import write_report

XSS = "<script>alert(1)</script>"
WIDTHS = (390, 1280)

CHROMIUM = chromium_path()
if CHROMIUM is None and os.environ.get("LLMCAUSE_REQUIRE_BROWSER") == "1":
    raise RuntimeError("LLMCAUSE_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium installed")


def _cli(argv):
    code = run([str(a) for a in argv])
    assert code == 0, argv


def _battles(n=300, seed=0):
    rng = np.random.default_rng(seed)
    models = [XSS, "gpt-4o-2024-08-06", "llama-3.1-405b-instruct"]
    rows = []
    for i in range(n):
        a, b = rng.choice(models, 2, replace=False)
        la, lb = rng.integers(5, 80, 2)
        rows.append({"model_a": a, "model_b": b, "winner": rng.choice(["model_a", "model_b", "tie"], p=[.45, .45, .1]),
                     "text_a": "word " * int(la) + "\n- item" * int(rng.integers(0, 3)), "text_b": "word " * int(lb)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def reports(tmp_path_factory, world_frame_module):
    d = tmp_path_factory.mktemp("reports")
    out = {}
    world = d / "world.csv"
    world_frame_module.to_csv(world, index=False)
    out["ate"] = d / "ate.html"
    _cli(["ate", world, "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2,x3,x4", "--folds", "2",
          "--report", out["ate"]])
    battles = d / "battles.csv"
    _battles().to_csv(battles, index=False)
    out["alignment"] = d / "style.html"
    _cli(["alignment", "style", battles, "--model-a", "model_a", "--model-b", "model_b", "--winner", "winner",
          "--text-a", "text_a", "--text-b", "text_b", "--no-length-effect", "--report", out["alignment"]])
    judged = d / "judged.csv"
    _cli(["evaluation", "example", "world", "--out", judged])
    frame = pd.read_csv(judged)
    frame.loc[frame["model"] == frame["model"].iloc[0], "model"] = XSS
    frame.to_csv(judged, index=False)
    out["evaluation"] = d / "judge.html"
    _cli(["evaluation", "judge", judged, "--judge", "judge_score", "--label", "label", "--group", "model",
          "--cluster", "prompt_id", "--report", out["evaluation"]])
    log = d / "log.csv"
    _cli(["routing", "simulate", "routellm", "--out", log, "--n", "800", "--seed", "0"])
    out["routing"] = d / "routing.html"
    _cli(["routing", "evaluate", log, "--action", "model", "--reward", "correct", "--propensity", "propensity",
          "--costs", "mixtral-8x7b=0.1,gpt-4-1106=1", "--features", "dataset", "--policy", "always:gpt-4-1106",
          "--policy", "always:mixtral-8x7b", "--report", out["routing"]])
    from llmcause.pretraining.simulate import past_runs

    past = d / "past.csv"
    past_runs(300, seed=11).table.to_csv(past, index=False)
    out["pretraining"] = d / "pretraining.html"
    _cli(["pretraining", "effects", past, "--confounders", "log_params,log_tokens", "--treatment", "w:code",
          "--losses", "bpb:math", "--report", out["pretraining"]])
    out["agents"] = d / "agents.html"
    _cli(["agents", "mediate", "--world", "tool_use", "-n", "300", "--report", out["agents"]])
    # a table with known truth, as the tour writes it (truth marks and their legend)
    rows = [Estimate(name=name, estimand="ATE", method=m, estimate=v, se=0.05, ci_low=v - 0.1, ci_high=v + 0.1,
                     n=500) for name, m, v in ((XSS, "aipw", 1.0), (XSS, "naive", 1.6), ("tool use", "aipw", 0.08))]
    out["truth"] = d / "truth.html"
    write_report(out["truth"], EstimateTable(rows), title="with truth", truth={XSS: 1.05, "tool use": 0.1})
    return out


@pytest.fixture(scope="module")
def world_frame_module():
    from llmcause.core.simulate import confounded_world

    return confounded_world(1200, seed=11).to_frame()


@pytest.fixture(scope="module")
def browser():
    b = Browser(CHROMIUM)
    yield b
    b.close()


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("stage", ["ate", "alignment", "evaluation", "routing", "pretraining", "agents", "truth"])
def test_report_reads_well_in_a_browser(reports, browser, tmp_path, stage, width):
    shot = tmp_path / f"{stage}-{width}.png"
    facts = browser.open_page(reports[stage], width=width, screenshot=shot)
    assert facts["errors"] == [] and facts["dialogs"] == []
    assert facts["scripts"] == 0  # nothing in the page runs
    assert facts["innerWidth"] == width
    assert facts["scrollWidth"] <= width, "the page scrolls sideways: the layout does not hold"
    assert facts["images"], "no plot in the report"
    for im in facts["images"]:
        assert im["complete"] and im["natural"] > 0 and im["visible"], im
        assert im["width"] > 50 and im["height"] > 50, im
        assert im["left"] >= 0 and im["right"] <= width + 0.5, im
    assert shot.stat().st_size > 5_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = facts["text"]
    assert "How to read this" in text and "llmcause" in text
    if stage in ("alignment", "evaluation", "truth"):
        assert XSS in text  # the model named like a script shows as text
    if stage == "ate":
        assert "overlap: propensity" in text and "balance:" in text and "sensitivity:" in text
        assert "world.csv" in text and "SHA-256" in text


def test_report_header_names_the_input_file(reports):
    import hashlib

    html = reports["ate"].read_text()
    world = reports["ate"].parent / "world.csv"
    digest = hashlib.sha256(world.read_bytes()).hexdigest()
    assert digest in html and f"{world.stat().st_size:,} bytes" in html
    assert "created" in html and "llmcause ate" in html
