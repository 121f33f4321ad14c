"""AlpacaEval annotations and the length_controlled_v1 LC win rate: a real file, broken files, agreement with
alpaca_eval itself, known truth and coverage."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from llmcause.alignment.lc_alpacaeval import (METHOD, alpacaeval_lc_winrate, alpacaeval_lc_winrates, find_gamed,
                                              match_difficulty, read_gamed)
from llmcause.cli import run
from llmcause.formats import detect_format, read_any

REAL = Path(__file__).parent / "data" / "alpacaeval" / "claude-2.1_annotations_150.json.gz"
N_REAL = 150


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def records():
    with gzip.open(REAL, "rt", encoding="utf-8") as fh:
        return json.load(fh)


def _write_json(path, rows):
    path.write_text(json.dumps(rows, indent=2))
    return path


def _gamed_frame(n_index, seed=0, instruction=None):
    """A df_gamed.csv in alpaca_eval's layout: two gamed baselines, one row per instruction each, verbose first."""
    rng = np.random.default_rng(seed)
    d = rng.normal(0, 1.2, n_index)
    parts = []
    for name, shift in (("gpt4_1106_preview_verbose", -0.6), ("gpt4_1106_preview_concise", 1.0)):
        s = rng.normal(shift, 0.8, n_index)
        p = expit(-1.4 * np.tanh(s) + 0.8 * d + rng.normal(0, 0.7, n_index))
        part = pd.DataFrame({"model": name, "index": np.arange(n_index), "preference": p, "std_delta_len": s,
                             "instruction_difficulty": d, "not_gamed_baseline": False})
        if instruction is not None:
            part["instruction"] = instruction
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- the reader, on a real file


def test_reader_on_real_annotations(records, tmp_path):
    df = read_any(str(REAL))  # .json.gz: recognised by its columns
    assert df.attrs["format"] == "alpacaeval" and len(df) == N_REAL
    assert df["length_1"].tolist() == [len(r["output_1"]) for r in records]
    assert df["length_2"].tolist() == [len(r["output_2"]) for r in records]
    assert np.allclose(df["p_2"], [float(r["preference"]) - 1 for r in records])
    assert df["position"].tolist() == list(range(N_REAL))
    assert set(df["generator_1"]) == {"gpt4_1106_preview"} and set(df["generator_2"]) == {"claude-2.1"}
    plain = _write_json(tmp_path / "annotations.json", records)
    assert detect_format(str(plain)) == "alpacaeval"  # from the first record of the JSON list
    cols = ["instruction", "output_1", "output_2", "generator_1", "generator_2", "preference"]
    frame = pd.DataFrame(records)[cols]
    for name, write in (("a.csv", lambda p: frame.to_csv(p, index=False)),
                        ("a.jsonl", lambda p: frame.to_json(p, orient="records", lines=True)),
                        ("a.parquet", lambda p: frame.to_parquet(p))):
        write(tmp_path / name)
        other = read_any(str(tmp_path / name))
        assert other.attrs["format"] == "alpacaeval"
        assert np.allclose(other["p_2"], df["p_2"]) and other["length_2"].tolist() == df["length_2"].tolist()
    assert "p_2" not in read_any(str(tmp_path / "a.csv"), "table").columns  # --format table: left as it is


def test_reader_codes_draws_ties_and_empty_answers(records, tmp_path):
    rows = [dict(r) for r in records[:20]]
    rows[0]["preference"], rows[1]["preference"], rows[2]["preference"] = 0, 1.5, 2
    rows[3]["output_2"] = ""
    df = read_any(str(_write_json(tmp_path / "a.json", rows)), "alpacaeval")
    assert df["p_2"].tolist()[:3] == [0.5, 0.5, 1.0] and df["length_2"].iloc[3] == 0


def test_cli_lc_winrate_on_the_real_file_needs_no_column_options(capsys):
    code, out, err = _run(capsys, ["alignment", "lc-winrate", REAL, "--json"])
    assert code == 0, err
    res = json.loads(out)
    lc = [e for e in res["estimates"] if e["method"] == "length-controlled glm"]
    raw = [e for e in res["estimates"] if e["method"] == "naive"]
    assert len(lc) == 1 and lc[0]["name"] == "claude-2.1" and lc[0]["n"] == N_REAL
    assert raw[0]["estimate"] == pytest.approx(np.mean([e for e in read_any(str(REAL))["p_2"]]))
    assert lc[0]["diagnostics"]["baseline"] == "gpt4_1106_preview"


def test_cli_method_alpacaeval_with_a_gamed_file(capsys, tmp_path, records):
    gamed = tmp_path / "df_gamed.csv"
    _gamed_frame(N_REAL, instruction=[r["instruction"] for r in records]).to_csv(gamed, index=False)
    code, out, err = _run(capsys, ["alignment", "lc-winrate", REAL, "--method", "alpacaeval",
                                   "--alpacaeval-gamed", gamed, "--json"])
    assert code == 0, err
    est = {e["method"]: e for e in json.loads(out)["estimates"]}
    lc = est[METHOD]
    assert lc["diagnostics"]["difficulty_source"] == "instruction text" and lc["ci_low"] < lc["estimate"] < lc["ci_high"]
    assert lc["diagnostics"]["n_clusters"] == N_REAL and "naive" in est
    code, out, err = _run(capsys, ["alignment", "lc-winrate", REAL, "--method", "alpacaeval", "--alpacaeval-gamed",
                                   gamed])
    assert code == 0 and "method: alpacaeval length_controlled_v1" in out


def test_gamed_file_is_found_in_the_hugging_face_cache_never_downloaded(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert find_gamed() is None
    repo = tmp_path / "hf" / "hub" / "datasets--tatsu-lab--alpaca_eval"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    _gamed_frame(30).to_csv(repo / "snapshots" / "abc" / "df_gamed.csv", index=False)
    assert find_gamed() == repo / "snapshots" / "abc" / "df_gamed.csv"


# --------------------------------------------------------------------------- broken files: exit 2


@pytest.fixture()
def no_hf_cache(tmp_path, monkeypatch):
    for var in ("HF_HUB_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "nohf"))
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))


def test_broken_annotation_files_exit_2(capsys, tmp_path, records, no_hf_cache):
    def broken(name, change):
        rows = [dict(r) for r in records[:40]]
        change(rows)
        return _write_json(tmp_path / name, rows)

    def drop_preference(rows):
        for r in rows:
            del r["preference"]

    def set_row(i, key, value):
        return lambda rows: rows[i].__setitem__(key, value)

    cases = [
        (broken("nocol.json", drop_preference), [], ["nocol.json", "'preference'"]),
        (broken("three.json", set_row(4, "preference", 3)), [], ["three.json", "'preference'", "row 5", "3"]),
        (broken("text.json", set_row(6, "preference", "b")), [], ["text.json", "'preference'", "row 7"]),
        (broken("nullout.json", set_row(2, "output_2", None)), [], ["nullout.json", "'output_2'", "row 3"]),
        (broken("allnan.json", lambda rows: [r.__setitem__("preference", None) for r in rows]), [],
         ["allnan.json", "'preference'", "every annotation"]),
        (broken("self.json", lambda rows: [r.__setitem__("generator_2", r["generator_1"]) for r in rows]), [],
         ["self.json", "itself"]),
        (broken("ok.json", lambda rows: None), ["--baseline", "gpt-5"], ["ok.json", "'gpt-5'"]),
        (broken("ok2.json", lambda rows: None), ["--method", "alpacaeval"], ["--alpacaeval-gamed", "df_gamed.csv"]),
        (broken("ok3.json", lambda rows: None), ["--model-a", "generator_1"], ["ok3.json", "--model-a"]),
        (broken("bool.json", set_row(5, "preference", True)), [], ["bool.json", "'preference'", "row 6", "True"]),
        (broken("list.json", set_row(8, "output_2", ["a", "b"])), [], ["list.json", "'output_2'", "row 9", "list"]),
        (broken("numgen.json", set_row(4, "generator_2", 12)), [], ["numgen.json", "model '12'", "only 1"]),
    ]
    nogen = broken("nogen.json", lambda rows: [r.pop("generator_2") for r in rows])
    cases.append((nogen, ["--format", "alpacaeval"], ["nogen.json", "'generator_2'"]))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    cases.append((empty, ["--format", "alpacaeval"], ["empty.json", "empty"]))
    bad_gamed = tmp_path / "df_gamed.csv"
    frame = _gamed_frame(40)
    frame.loc[3, "preference"] = 1.7
    frame.to_csv(bad_gamed, index=False)
    cases.append((broken("ok4.json", lambda rows: None), ["--method", "alpacaeval", "--alpacaeval-gamed", bad_gamed],
                  ["df_gamed.csv", "'preference'", "row 4"]))
    for path, extra, words in cases:
        before = path.read_bytes()
        code, out, err = _run(capsys, ["alignment", "lc-winrate", path, *extra])
        assert code == 2, (path.name, err)
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert "np." not in err, err  # values as the user wrote them, never numpy reprs
        for w in words:
            assert w in err, (path.name, w, err)
        assert path.read_bytes() == before


def test_failed_annotations_are_left_out_with_one_warning(capsys, tmp_path, records):
    rows = [dict(r) for r in records[:60]]
    for i in (3, 10, 11):
        rows[i]["preference"] = None
    path = _write_json(tmp_path / "failed.json", rows)
    code, out, err = _run(capsys, ["alignment", "lc-winrate", path, "--json"])
    assert code == 0, err
    res = json.loads(out)
    assert [e["n"] for e in res["estimates"]] == [57, 57]
    assert sum("3 of 60 annotations have no preference" in w for w in res["warnings"]) == 1


# --------------------------------------------------------------------------- agreement with alpaca_eval


def test_point_estimate_equals_alpaca_eval_reference(records, tmp_path, monkeypatch):
    """alpaca_eval's own get_length_controlled_winrate, run offline on a df_gamed.csv in a local hub cache."""
    pytest.importorskip("alpaca_eval")
    import alpaca_eval.constants as ac
    import huggingface_hub.constants as hc
    import sklearn
    from alpaca_eval.metrics.glm_winrate import get_length_controlled_winrate

    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "datasets--tatsu-lab--alpaca_eval"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(rev)
    (repo / "snapshots" / rev).mkdir(parents=True)
    gamed_path = repo / "snapshots" / rev / "df_gamed.csv"
    _gamed_frame(N_REAL, seed=3).to_csv(gamed_path, index=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(ac, "DEFAULT_CACHE_DIR", str(tmp_path / "hub"))
    ann = pd.DataFrame(records)
    with sklearn.config_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = get_length_controlled_winrate(ann, save_weights_dir=None, is_warn_extreme_changes=False)
    df = read_any(str(REAL))
    gamed = read_gamed(find_gamed())
    assert find_gamed() == gamed_path
    table = alpacaeval_lc_winrates(df["generator_2"], df["p_2"], df["length_2"], df["length_1"], gamed,
                                   positions=df["position"], baseline="gpt4_1106_preview")
    lc = table.get("claude-2.1", METHOD)
    assert 100 * lc.estimate == pytest.approx(ref["length_controlled_winrate"], abs=1e-6)
    assert 100 * lc.diagnostics["alpacaeval_se"] == pytest.approx(ref["lc_standard_error"], abs=1e-6)
    assert 100 * table.get("claude-2.1", "naive").estimate == pytest.approx(ref["win_rate"], abs=1e-6)
    assert lc.se > lc.diagnostics["alpacaeval_se"]  # ours adds the fitted weights' uncertainty


def test_difficulty_matching_by_text_and_by_position():
    g = read_gamed_frame(_gamed_frame(5, instruction=list("abcde")))
    d, how = match_difficulty(g, instructions=["c", "a"])
    assert how == "instruction text" and d.tolist() == [g.difficulty[2], g.difficulty[0]]
    g2 = read_gamed_frame(_gamed_frame(5))
    d, how = match_difficulty(g2, positions=[4, 0])
    assert how == "position" and d.tolist() == [g2.difficulty[4], g2.difficulty[0]]
    with pytest.raises(ValueError, match="position 7"):
        match_difficulty(g2, positions=[7])
    with pytest.raises(ValueError, match="does not hold"):
        match_difficulty(g, instructions=["z"])


def read_gamed_frame(frame):
    return read_gamed(frame)  # read_table takes a DataFrame as well as a path


# --------------------------------------------------------------------------- known truth and coverage

W_LEN, W_DIFF, W_NG = -1.2, 0.9, -0.6  # longer model answers win more; the model is below the baseline


def _world(n, seed, n_gamed=None):
    """A world where length_controlled_v1 is the truth: model and gamed rows share the length and difficulty
    weights, the gamed rows have no model term. Binary preferences; instructions drawn afresh."""
    rng = np.random.default_rng(seed)
    n_gamed = n if n_gamed is None else n_gamed
    d_all = rng.normal(0, 1.0, n_gamed)
    parts = []
    for shift in (-0.8, 0.9):  # verbose, concise
        s = rng.normal(shift, 0.7, n_gamed)
        y = (rng.random(n_gamed) < expit(W_LEN * np.tanh(s) + W_DIFF * d_all)).astype(float)
        parts.append(pd.DataFrame({"index": np.arange(n_gamed), "preference": y, "std_delta_len": s,
                                   "instruction_difficulty": d_all}))
    gamed = read_gamed_frame(pd.concat(parts, ignore_index=True))
    d = rng.normal(0, 1.0, n)
    lb = rng.lognormal(7.5, 0.5, n)
    lm = lb * rng.lognormal(-0.5, 0.6, n)  # the model's answers are mostly shorter
    gap = lb - lm
    y = (rng.random(n) < expit(W_LEN * np.tanh(gap / gap.std(ddof=1)) + W_DIFF * d + W_NG)).astype(float)
    return y, lm, lb, d, gamed


def _true_lc():
    z = np.random.default_rng(99).normal(size=2_000_000)
    return float(np.mean(expit(W_NG + W_DIFF * z)))


def test_known_truth_lc_found_where_the_raw_win_rate_is_off():
    truth = _true_lc()
    y, lm, lb, d, gamed = _world(1500, seed=1)
    table = alpacaeval_lc_winrate(y, lm, lb, d, gamed, cluster=np.arange(y.shape[0]), name="m")
    lc, raw = table[0], table[1]
    assert lc.method == METHOD and raw.method == "naive"
    assert abs(lc.estimate - truth) < 2.5 * lc.se, (lc.estimate, lc.se, truth)
    assert raw.ci_high < truth  # shorter answers lose: the raw win rate is far below
    assert lc.diagnostics["weights"]["np.tanh(std_delta_len)"] == pytest.approx(W_LEN, abs=0.3)


def test_lc_coverage_small():
    truth = _true_lc()
    hits = 0
    for seed in range(10):
        y, lm, lb, d, gamed = _world(300, seed=100 + seed)
        hits += alpacaeval_lc_winrate(y, lm, lb, d, gamed, name="m")[0].covers(truth)
    assert hits >= 8  # 95% nominal: fewer than 8 of 10 has probability 1.2%


@pytest.mark.slow
def test_lc_coverage_many_seeds():
    truth = _true_lc()
    hits = sum(alpacaeval_lc_winrate(*_world(300, seed=1000 + s), name="m")[0].covers(truth) for s in range(200))
    assert 0.91 <= hits / 200 <= 0.99, hits
