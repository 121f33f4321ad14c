"""Arena battles as published: the public slice with its empty answer, missing texts, and broken files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmcause.alignment.arena import read_arena_battles
from llmcause.cli import run
from llmcause.io import DataError

ROOT = Path(__file__).resolve().parents[1]


def _public_arena_folder() -> Path:
    candidates = [Path(os.environ["LLMCAUSE_ARENA_JUDGES"])] if "LLMCAUSE_ARENA_JUDGES" in os.environ else []
    candidates += [up / "shared" / "data" / "arena-judges" for up in (ROOT.parent, ROOT.parent.parent)]
    return next((c for c in candidates if (c / "arena_subsets").is_dir()), candidates[-1])


SUBSETS = _public_arena_folder() / "arena_subsets"
needs_public = pytest.mark.skipif(not SUBSETS.is_dir(), reason="the public Arena files are not here")


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def slice_path(tmp_path_factory):
    """The 552 public battles among three models, Qwen's file first: the empty answer is row 487."""
    files = sorted(SUBSETS.glob("*.parquet"), key=lambda p: "qwen" not in p.name)
    path = tmp_path_factory.mktemp("arena") / "arena552.parquet"
    pd.concat([pd.read_parquet(f) for f in files], ignore_index=True).to_parquet(path)
    return path


@needs_public
def test_public_slice_with_its_empty_answer_runs_through_style(capsys, slice_path):
    battles = read_arena_battles(slice_path)
    assert len(battles) == 552 and battles.attrs["warnings"] == []
    assert battles["text_a"].iloc[486] == "" and battles["text_b"].iloc[486] != ""  # the empty answer, kept
    assert battles["n_turns"].max() > 1  # multi-turn battles are read whole
    # recognised by its columns: no --arena needed
    code, out, err = _run(capsys, ["alignment", "style", slice_path, "--no-length-effect", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    names = {e["name"] for e in doc["estimates"]}
    assert {"claude-opus-4-20250514", "gemini-2.5-pro", "qwen3-235b-a22b-no-thinking"} <= names
    assert all(e["n"] == 552 for e in doc["estimates"] if e["name"] == "gemini-2.5-pro")


def _battle(conv_a, conv_b, winner="model_a", a="m1", b="m2"):
    return {"model_a": a, "model_b": b, "winner": winner, "conversation_a": conv_a, "conversation_b": conv_b}


def _conv(*pairs):
    out = []
    for user, answer in pairs:
        out += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    return json.dumps(out)


def _file(tmp_path, rows, name="battles.jsonl"):
    path = tmp_path / name
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    return path


def _world(n=240, seed=0):
    rng = np.random.default_rng(seed)
    models = ["alpha", "beta", "gamma"]
    rows = []
    for i in range(n):
        a, b = rng.choice(models, 2, replace=False)
        la, lb = rng.integers(1, 60, 2)
        winner = rng.choice(["model_a", "model_b", "tie", "tie (bothbad)"], p=[0.4, 0.4, 0.1, 0.1])
        turns = int(rng.integers(1, 3))
        rows.append(_battle(_conv(*[(f"q{i}.{t}", "word " * int(la)) for t in range(turns)]),
                            _conv(*[(f"q{i}.{t}", "word " * int(lb)) for t in range(turns)]), winner, a, b))
    return rows


def test_missing_conversation_is_dropped_with_one_counted_warning(capsys, tmp_path):
    rows = _world()
    rows[5]["conversation_b"] = None
    rows[17]["conversation_a"] = None
    rows[30]["conversation_b"] = _conv(("q", ""))  # an empty answer: kept, length 0
    path = _file(tmp_path, rows)
    battles = read_arena_battles(path)
    assert len(battles) == 238
    assert battles.attrs["warnings"] == [f"{path}: 2 of 240 battles have no answer text on one side (rows 6, 18) "
                                         "and were left out (--missing-text error to stop instead)"]
    assert "" in set(battles["text_b"])
    code, out, err = _run(capsys, ["alignment", "style", path, "--no-length-effect", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    assert sum("2 of 240 battles" in w for w in doc["warnings"]) == 1
    code, out, err = _run(capsys, ["alignment", "style", path, "--no-length-effect"])
    assert code == 0 and err.count("2 of 240 battles") == 1


def test_missing_text_error_option_and_broken_files_exit_2(capsys, tmp_path):
    rows = _world(60)
    rows[7]["conversation_a"] = None
    path = _file(tmp_path, rows)
    code, out, err = _run(capsys, ["alignment", "style", path, "--arena", "--missing-text", "error",
                                   "--no-length-effect"])
    assert code == 2 and out == ""
    assert err.strip() == f"error: {path}: column 'conversation_a', row 8: the text is missing"
    bad = _world(60)
    bad[3]["winner"] = "model_c"
    code, _, err = _run(capsys, ["alignment", "style", _file(tmp_path, bad, "w.jsonl"), "--no-length-effect"])
    assert code == 2 and "column 'winner', row 4" in err and "Traceback" not in err
    bad = _world(60)
    bad[9]["conversation_b"] = json.dumps([{"role": "assistant", "content": 3.5}])
    code, _, err = _run(capsys, ["alignment", "style", _file(tmp_path, bad, "c.jsonl"), "--no-length-effect"])
    assert code == 2 and "column 'conversation_b', row 10" in err
    with pytest.raises(DataError, match="not an Arena battle file"):
        read_arena_battles(pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "winner": ["tie"]}))
