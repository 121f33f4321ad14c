"""Progress bars count the real units of work and reach their total; none is drawn under --json.

A recorder replaces the bar (the commands draw one only when stdout is a terminal) and counts the
steps each command reports, as the work happens.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest

import llmcause.progress as progress_module
from llmcause.cli import run


@pytest.fixture
def bars(monkeypatch):
    """Every bar a command opens: [description, total, steps counted, steps counted when the bar closed]."""
    opened = []

    @contextmanager
    def recorder(total, description, enabled=None):
        if enabled is None:
            enabled = progress_module.progress_enabled()
        if not enabled:
            yield lambda k=1: None
            return
        bar = [description, total, 0, None]
        opened.append(bar)

        def advance(k=1):
            bar[2] += k

        yield advance
        bar[3] = bar[2]

    monkeypatch.setattr(progress_module, "progress", recorder)
    monkeypatch.setattr(progress_module, "progress_enabled", lambda as_json=False: not as_json)
    return opened


def _ok(capsys, argv):
    code = run([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured


@pytest.mark.parametrize("method, refute, total", [("aipw", False, 15), ("aipw", True, 75), ("ipw", True, 25),
                                                   ("ra", True, 4)])
def test_ate_bar_counts_each_fit_and_each_refit(capsys, world_csv, bars, method, refute, total):
    argv = ["ate", world_csv, "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2,x3,x4", "--method", method]
    _ok(capsys, [*argv, *(["--refute"] if refute else [])])
    assert [(b[1], b[3]) for b in bars] == [(total, total)]
    _ok(capsys, [*argv, "--json"])
    assert len(bars) == 1  # no bar under --json


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    from llmcause.routing.simulate import synthetic_world

    path = tmp_path_factory.mktemp("routing") / "log.csv"
    synthetic_world(1200, seed=3).frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command, extra", [("learn", ["--budget", "0.4", "--out", "ROUTER"]),
                                            ("frontier", ["--points", "3"])])
def test_routing_bars_count_nuisances_folds_and_final_router(capsys, log_csv, tmp_path, bars, command, extra):
    extra = [str(tmp_path / "router.json") if e == "ROUTER" else e for e in extra]
    _ok(capsys, ["routing", command, log_csv, "--action", "model", "--reward", "quality", "--propensity",
                 "propensity", "--features", "difficulty,length,topic", "--costs", "small=0.1,medium=0.35,large=1",
                 "--folds", "4", *extra])
    assert [(b[1], b[3]) for b in bars] == [(4 + 2, 4 + 2)]


def test_study_router_reports_its_steps_as_it_goes():
    from llmcause.routing.learn import study_router, study_steps
    from llmcause.routing.logs import read_log
    from llmcause.routing.simulate import synthetic_world

    world = synthetic_world(900, seed=5)
    log = read_log(world.frame, action="model", reward="quality", propensity="propensity",
                   costs={"small": 0.1, "medium": 0.35, "large": 1.0}, features=["difficulty", "length"])
    steps = []
    bare = study_router(log, [0.3, 0.6], n_folds=3, seed=0)
    counted = study_router(log, [0.3, 0.6], n_folds=3, seed=0, progress=steps.append)
    assert len(steps) == study_steps(3) == 5
    assert [e.estimate for e in counted.table] == [e.estimate for e in bare.table]  # counting changes nothing


def test_style_bar_counts_the_fit_and_each_length_effect_fit(capsys, tmp_path, bars):
    from llmcause.alignment.simulate import simulate_battles

    path = tmp_path / "battles.csv"
    simulate_battles(300, 4, seed=2).battles.to_csv(path, index=False)
    _ok(capsys, ["alignment", "style", path, "--model-a", "model_a", "--model-b", "model_b", "--winner", "winner",
                 "--text-a", "text_a", "--text-b", "text_b", "--tokenizer", "simple", "--folds", "3"])
    assert [(b[1], b[3]) for b in bars] == [(1 + 2 * 3, 1 + 2 * 3)]


def test_dml_length_effect_counts_two_fits_per_fold():
    from llmcause.alignment.length_effect import dml_length_effect
    from llmcause.alignment.simulate import simulate_battles
    from llmcause.alignment.battles import prepare_battles

    world = simulate_battles(300, 4, seed=4)
    battles = prepare_battles(world.battles, model_a="model_a", model_b="model_b", winner="winner",
                              text_a="text_a", text_b="text_b", tokenizer="simple")
    steps = []
    bare = dml_length_effect(battles, learner="linear", n_folds=4)
    counted = dml_length_effect(battles, learner="linear", n_folds=4, progress=steps.append)
    assert len(steps) == 8 and np.isclose(counted.estimate, bare.estimate, rtol=0, atol=0)


def test_tour_steps_add_up_over_stages():
    from llmcause.tour import available_stages, run_tour, tour_steps

    steps = []
    rows = run_tour(quick=True, seed=0, stages=["engine"], progress=steps.append)
    assert len(rows) == 1 and len(steps) == tour_steps(True, ["engine"]) == 1
    total = tour_steps(True)
    assert total == 1 + sum(__import__(f"llmcause.{s}.tour", fromlist=["tour_steps"]).tour_steps(True)
                            for s in available_stages())
