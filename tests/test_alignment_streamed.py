"""`alignment style` out of core equals the in-memory fit; bad input in a dataset exits 2 with one plain line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from llmcause.alignment.battles import prepare_battles
from llmcause.alignment.simulate import simulate_battles
from llmcause.alignment.streamed import style_control_streamed
from llmcause.alignment.style import style_control_battles
from llmcause.cli import run


def _split(frame: pd.DataFrame, root, seed: int) -> None:
    """The frame as Parquet files cut at random rows, with one empty file among them."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cuts = np.sort(np.r_[0, rng.choice(np.arange(1, frame.shape[0]), 4, replace=False), frame.shape[0]])
    pieces = [frame.iloc[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    pieces.insert(2, frame.iloc[:0])
    for i, piece in enumerate(pieces):
        piece.to_parquet(root / f"part-{i}.parquet", index=False)


def _same(streamed, memory, tol=1e-10):
    a, b = streamed.estimates(), memory.estimates()
    assert [(e.name, e.estimand, e.method, e.n) for e in a] == [(e.name, e.estimand, e.method, e.n) for e in b]
    for x, y in zip(a, b):
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert getattr(x, key) == pytest.approx(getattr(y, key), rel=tol, abs=tol)
        assert x.diagnostics.get("rank") == y.diagnostics.get("rank")
        assert x.diagnostics.get("n_clusters") == y.diagnostics.get("n_clusters")
    assert a.warnings == b.warnings


@pytest.fixture(scope="module")
def world():
    frame = simulate_battles(1200, 5, seed=11).battles.copy()
    frame.loc[frame.index[::37], "winner"] = "tie"
    return frame


@pytest.mark.parametrize("style,options", [
    ({"text_a": "text_a", "text_b": "text_b"}, {}),
    ({"text_a": "text_a", "text_b": "text_b"}, {"cluster": "prompt_id", "weights": "inverse-pair", "penalty": 1.0}),
    ({"features": ["facts"]}, {"cluster": "prompt_id", "ties": "drop"}),
])
def test_streamed_style_equals_in_memory(world, tmp_path, style, options):
    import tempfile
    from pathlib import Path

    spills = lambda: set(Path(tempfile.gettempdir()).glob("llmcause-style-*"))  # noqa: E731
    before = spills()
    _split(world, tmp_path / "battles", seed=len(options))
    weights, penalty = options.get("weights", "none"), options.get("penalty", 0.0)
    prepared = prepare_battles(world, model_a="model_a", model_b="model_b", winner="winner",
                               cluster=options.get("cluster"), ties=options.get("ties", "half"), tokenizer="simple",
                               **style)
    memory = style_control_battles(prepared, weights=weights, penalty=penalty)
    got = style_control_streamed(tmp_path / "battles", model_a="model_a", model_b="model_b", winner="winner",
                                 tokenizer="simple", batch_rows=97, **style, **options)
    _same(got.study, memory)
    assert spills() <= before  # the texts' spill folder is removed
    assert (got.n_ties, got.ties_dropped) == (prepared.n_ties, prepared.ties_dropped)
    assert got.study.controlled.n_battles == memory.controlled.n_battles


def test_constant_feature_is_dropped_as_in_memory(world, tmp_path):
    frame = world.assign(same_a=3, same_b=3)
    _split(frame, tmp_path / "b", seed=5)
    prepared = prepare_battles(frame, model_a="model_a", model_b="model_b", winner="winner",
                               features=["facts", "same"])
    memory = style_control_battles(prepared)
    memory.dropped_features = list(prepared.style.dropped)
    got = style_control_streamed(tmp_path / "b", model_a="model_a", model_b="model_b", winner="winner",
                                 features=["facts", "same"], batch_rows=200)
    assert got.study.dropped_features == ["same"]
    _same(got.study, memory)


def _run(capsys, argv):
    code = run(argv)
    out, err = capsys.readouterr()
    return code, out, err


COLS = ["--model-a", "model_a", "--model-b", "model_b", "--winner", "winner"]


def test_cli_dataset_json_matches_in_memory(world, tmp_path, capsys):
    _split(world, tmp_path / "d", seed=2)
    single = tmp_path / "all.parquet"
    world.to_parquet(single, index=False)
    argv = [*COLS, "--text-a", "text_a", "--text-b", "text_b", "--cluster", "prompt_id", "--tokenizer", "simple",
            "--json"]
    code, out, err = _run(capsys, ["alignment", "style", str(tmp_path / "d"), *argv])
    assert code == 0, err
    streamed = json.loads(out)
    code, out, err = _run(capsys, ["alignment", "style", str(single), *argv, "--no-length-effect"])
    assert code == 0, err
    memory = json.loads(out)
    assert set(streamed) == set(memory)
    assert [(e["name"], e["method"]) for e in streamed["estimates"]] == \
        [(e["name"], e["method"]) for e in memory["estimates"]]
    for s, m in zip(streamed["estimates"], memory["estimates"]):
        assert set(s) == set(m) and set(s["diagnostics"]) == set(m["diagnostics"])
        for key in ("estimate", "se", "ci_low", "ci_high"):
            assert s[key] == pytest.approx(m[key], rel=1e-10, abs=1e-12)
    assert any("length effect" in w and "in memory only" in w for w in streamed["warnings"])
    code, out, err = _run(capsys, ["alignment", "style", str(single), *argv, "--no-length-effect", "--engine",
                                   "local"])
    assert code == 0 and json.loads(out)["warnings"] == []


def test_cli_arena_conversations_and_missing_side(world, tmp_path, capsys):
    frame = world.iloc[:600].copy()

    def conversation(text):
        return [{"role": "user", "content": "q"}, {"role": "assistant", "content": text}]

    arena = pd.DataFrame({"model_a": frame["model_a"], "model_b": frame["model_b"], "winner": frame["winner"],
                          "conversation_a": [conversation(t) for t in frame["text_a"]],
                          "conversation_b": [conversation(t) for t in frame["text_b"]]})
    arena.loc[arena.index[[5, 400]], "conversation_b"] = None
    single = tmp_path / "arena.parquet"
    arena.to_parquet(single, index=False)
    _split(arena, tmp_path / "arena", seed=9)
    argv = ["--tokenizer", "simple", "--json", "--no-length-effect"]
    code, out, err = _run(capsys, ["alignment", "style", str(tmp_path / "arena"), *argv])
    assert code == 0, err
    streamed = json.loads(out)
    code, out, err = _run(capsys, ["alignment", "style", str(single), *argv])
    memory = json.loads(out)
    for s, m in zip(streamed["estimates"], memory["estimates"]):
        assert s["estimate"] == pytest.approx(m["estimate"], rel=1e-10, abs=1e-12)
        assert s["se"] == pytest.approx(m["se"], rel=1e-10)
    assert len(streamed["estimates"]) == len(memory["estimates"])
    assert any("2 of 600 battles have no answer text" in w for w in streamed["warnings"])
    code, out, err = _run(capsys, ["alignment", "style", str(tmp_path / "arena"), *argv, "--missing-text", "error"])
    assert code == 2 and "conversation_b" in err and "the text is missing" in err


@pytest.fixture()
def bad_dir(world, tmp_path):
    root = tmp_path / "bad"
    frame = world.iloc[:400].copy()
    frame["gap"] = np.linspace(-1, 1, 400)
    frame.iloc[:200].to_parquet(root.mkdir() or root / "a.parquet", index=False)
    return root, frame


@pytest.mark.parametrize("change,argv,needles", [
    (None, ["--features", "gap", "--winner", "nope"], ["no column 'nope'", "--winner", "the columns are"]),
    ("nan", ["--features", "gap"], ["b.parquet", "column 'gap'", "row 8", "missing"]),
    ("winner", ["--features", "gap"], ["b.parquet", "column 'winner'", "row 3", "unknown winner value 'maybe'"]),
    ("prob", ["--features", "gap"], ["b.parquet", "column 'winner'", "row 6", ": 1.5 is not a probability"]),
    ("self", ["--features", "gap"], ["b.parquet", "row 5", "battles itself"]),
    ("count", ["--features", "facts"], ["b.parquet", "column 'facts_a'", "row 2", "-1"]),
    ("text", ["--text-a", "text_a", "--text-b", "text_b"], ["b.parquet", "column 'text_b'", "row 4",
                                                            "text is missing"]),
    (None, ["--features", "gap", "--by", "topic"], ["--by is available in memory only"]),
    (None, ["--features", "gap", "--address", "x:1"], ["--address needs --engine ray"]),
    (None, ["--features", "gap", "--min-battles", "1000"], ["a.parquet", "row", "has only", "battle(s)"]),
])
def test_bad_input_in_a_dataset(bad_dir, capsys, change, argv, needles):
    root, frame = bad_dir
    rest = frame.iloc[200:].reset_index(drop=True).copy()
    if change == "nan":
        rest.loc[7, "gap"] = np.nan
    elif change == "winner":
        rest.loc[2, "winner"] = "maybe"
    elif change == "prob":
        frame = frame.assign(winner=np.where(frame["winner"] == "model_a", 1.0, 0.0))
        frame.iloc[:200].to_parquet(root / "a.parquet", index=False)
        rest = frame.iloc[200:].reset_index(drop=True).copy()
        rest.loc[5, "winner"] = 1.5
    elif change == "self":
        rest.loc[4, "model_b"] = rest.loc[4, "model_a"]
    elif change == "count":
        rest.loc[1, "facts_a"] = -1
    elif change == "text":
        rest.loc[3, "text_b"] = None
    rest.to_parquet(root / "b.parquet", index=False)
    args = [a for a in COLS if a not in ("--winner", "winner")] if "--winner" in argv else COLS
    code, out, err = _run(capsys, ["alignment", "style", str(root), *args, *argv])
    assert code == 2, err
    assert out == "" and "Traceback" not in err and len(err.strip().splitlines()) == 1
    for needle in needles:
        assert needle in err


def test_report_over_a_file_of_the_dataset_is_refused(world, tmp_path, capsys):
    _split(world.iloc[:300], tmp_path / "d", seed=1)
    target = tmp_path / "d" / "part-0.parquet"
    before = target.read_bytes()
    for data in (str(tmp_path / "d"), str(tmp_path / "d" / "*.parquet")):
        code, out, err = _run(capsys, ["alignment", "style", data, *COLS, "--features", "facts", "--report",
                                       str(target)])
        assert code == 2 and "is an input file" in err and "Traceback" not in err
    assert target.read_bytes() == before


@pytest.mark.parametrize("threads", [1, 2])
def test_memory_stays_bounded_by_the_batch(tmp_path, monkeypatch, threads):
    """Peak traced allocations do not grow with the number of battles (fixed models and clusters)."""
    import tracemalloc

    monkeypatch.setenv("LLMCAUSE_THREADS", str(threads))
    batch, rng = 2_000, np.random.default_rng(3)
    names = np.array([f"m{j}" for j in range(6)])

    def write(name, n):
        a = rng.integers(0, 6, n)
        b = (a + rng.integers(1, 6, n)) % 6
        la, lb = rng.poisson(50, n), rng.poisson(50, n)
        win = rng.random(n) < 1 / (1 + np.exp(-(0.3 * (a - b) + 2 * (la - lb) / (la + lb + 1))))
        df = pd.DataFrame({"model_a": names[a], "model_b": names[b], "winner": np.where(win, "model_a", "model_b"),
                           "length_a": la, "length_b": lb, "prompt": rng.integers(0, 500, n)})
        root = tmp_path / name
        root.mkdir()
        for i in range(4):
            df.iloc[i * n // 4:(i + 1) * n // 4].to_parquet(root / f"p{i}.parquet", index=False,
                                                            row_group_size=batch)
        return str(root), int(df.memory_usage(deep=True).sum())

    def peak(root):
        tracemalloc.start()
        result = style_control_streamed(root, model_a="model_a", model_b="model_b", winner="winner",
                                        features=["length"], cluster="prompt", batch_rows=batch)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result.study.controlled.n_clusters == 500
        return top

    small, _ = write("small", 8_000)
    big, big_bytes = write("big", 80_000)
    peak(small)  # first imports and caches out of the way
    p_small, p_big = peak(small), peak(big)
    assert p_big < 1.25 * p_small + 200_000, (p_small, p_big)
    # the log is 100 batches; the local engine holds at most threads + 1 of them at once
    assert p_big < big_bytes / 3 * (threads + 1) / 2, (p_big, big_bytes)
