"""alignment style --time: strengths and style effects per window, change tests; bad time column."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy.special import expit

from llmcause.cli import run

MODELS = ["m1", "m2", "m3", "m4"]


def _battles(n, seed, jump=0.0, at=0.5):
    """Bradley-Terry votes with a length effect; model m1 gains ``jump`` log-odds at time ``at``."""
    rng = np.random.default_rng(seed)
    r = np.array([0.3, 0.1, -0.1, -0.3])
    t = np.sort(rng.random(n))
    ia = rng.integers(0, 4, n)
    ib = (ia + rng.integers(1, 4, n)) % 4
    gap = rng.standard_normal(n)
    boost = np.where(t >= at, jump, 0.0)
    eta = r[ia] - r[ib] + boost * ((ia == 0).astype(float) - (ib == 0)) + 0.4 * gap
    win = rng.random(n) < expit(eta)
    return pd.DataFrame({"model_a": np.array(MODELS)[ia], "model_b": np.array(MODELS)[ib],
                         "winner": np.where(win, "model_a", "model_b"), "length": gap, "day": np.round(100 * t, 3)})


def _style(capsys, path, *extra):
    code = run(["alignment", "style", str(path), "--model-a", "model_a", "--model-b", "model_b", "--winner", "winner",
                "--features", "length", "--no-length-effect", "--time", "day", *extra, "--json"])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def _get(doc, name, estimand):
    return [e for e in doc["estimates"] if e["name"] == name and e["estimand"] == estimand][0]


def test_a_model_that_improves_part_way_is_seen_to_change(tmp_path, capsys):
    path = tmp_path / "b.csv"
    _battles(6000, seed=1, jump=1.0, at=0.5).to_csv(path, index=False)
    doc = _style(capsys, path, "--windows", "4")
    change = _get(doc, "m1 [last - first window]", "change in strength")
    # centred strengths: m1 gains 1.0 against the others, 0.75 against the field's centre
    assert change["ci_low"] <= 0.75 <= change["ci_high"] and change["ci_low"] > 0
    assert _get(doc, "m1 [weighted]", "strength")["diagnostics"]["p_change"] < 0.001
    assert any("m1 (strength): the pooled estimate mixes regimes" in w for w in doc["warnings"])
    length = _get(doc, "length [last - first window]", "change in style effect")
    assert length["ci_low"] <= 0.0 <= length["ci_high"]
    assert "m1 [window 4/4]" in {e["name"] for e in doc["estimates"]}


def test_stationary_battles_rarely_show_change(tmp_path, capsys):
    from llmcause.alignment.battles import prepare_battles
    from llmcause.alignment.drift import style_over_time

    rejections = total = 0
    for seed in range(30):
        frame = _battles(1200, seed=100 + seed)
        prepared = prepare_battles(frame, model_a="model_a", model_b="model_b", winner="winner", features=["length"])
        table = style_over_time(prepared, frame["day"].to_numpy()[prepared.rows], n_windows=3)
        for e in table:
            if e.name.endswith("[weighted]"):
                rejections += e.diagnostics["p_change"] < 0.05
                total += 1
    assert total == 30 * 5 and rejections / total <= 0.10


def test_bad_time_column_exits_2(tmp_path, capsys):
    frame = _battles(400, seed=2)
    frame["day"] = frame["day"].astype(object)
    frame.loc[9, "day"] = "last tuesday"
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    code = run(["alignment", "style", str(path), "--model-a", "model_a", "--model-b", "model_b", "--winner", "winner",
                "--features", "length", "--no-length-effect", "--time", "day"])
    err = capsys.readouterr().err
    assert code == 2 and "bad.csv" in err and "'day'" in err and "row 10" in err and "Traceback" not in err
