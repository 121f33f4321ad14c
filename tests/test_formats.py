"""Readers for evaluation tools' files: inspect-ai logs, lm-evaluation-harness samples, MT-Bench judgments,
Stata, labels joined by id."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run
from llmcause.formats import detect_format, join_labels, read_any, read_mt_bench
from llmcause.io import DataError, read_table

ROOT = Path(__file__).resolve().parents[1]
MT_BENCH = next((up / "shared" / "data" / "routellm" / "mt_bench_judgements.jsonl"
                 for up in (ROOT.parent, ROOT.parent.parent)
                 if (up / "shared" / "data" / "routellm" / "mt_bench_judgements.jsonl").is_file()), None)


def _run(capsys, argv):
    code = run([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------- inspect-ai


@pytest.fixture(scope="module")
def inspect_log(tmp_path_factory):
    """A real eval log written by inspect-ai itself, offline, with its mock model (two scorers, two epochs)."""
    pytest.importorskip("inspect_ai")
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import _model
    from inspect_ai.scorer import includes, match
    from inspect_ai.solver import generate

    # the mock model counts tokens with a tokenizer it would download; count words instead, offline
    original = _model.count_text_tokens
    _model.count_text_tokens = lambda text: len(str(text).split())
    try:
        task = Task(dataset=[Sample(input=f"Say {i}", target=str(i), id=f"s{i}") for i in range(6)],
                    solver=generate(), scorer=[match(), includes()], epochs=2)
        logs = inspect_eval(task, model="mockllm/model", log_dir=str(tmp_path_factory.mktemp("logs")),
                            display="none")
    finally:
        _model.count_text_tokens = original
    assert logs[0].status == "success", logs[0].error
    return Path(logs[0].location)


def test_inspect_log_with_a_dict_valued_scorer_gives_one_scorer_per_key(tmp_path):
    pytest.importorskip("inspect_ai")
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import _model
    from inspect_ai.scorer import Score, match, mean, scorer
    from inspect_ai.solver import generate

    @scorer(metrics=[mean()])
    def graded():
        async def score(state, target):
            i = int(state.sample_id[1:])
            return Score(value={"helpful": i / 10, "harmless": "C" if i % 2 else "I"})
        return score

    original = _model.count_text_tokens
    _model.count_text_tokens = lambda text: len(str(text).split())
    try:
        task = Task(dataset=[Sample(input=f"Say {i}", target=str(i), id=f"s{i}") for i in range(6)],
                    solver=generate(), scorer=[match(), graded()])
        log = inspect_eval(task, model="mockllm/model", log_dir=str(tmp_path / "logs"), display="none")[0]
    finally:
        _model.count_text_tokens = original
    assert log.status == "success", log.error
    df = read_any(log.location)
    assert set(df["scorer"]) == {"match", "graded/helpful", "graded/harmless"} and len(df) == 18
    helpful = df[df["scorer"] == "graded/helpful"].set_index("sample_id")["score"]
    assert helpful.to_dict() == pytest.approx({f"s{i}": i / 10 for i in range(6)})
    harmless = df[df["scorer"] == "graded/harmless"].set_index("sample_id")["score"]
    assert harmless.to_dict() == {f"s{i}": float(i % 2) for i in range(6)}


def test_inspect_log_reads_one_row_per_sample_epoch_and_scorer(inspect_log):
    assert inspect_log.suffix == ".eval" and detect_format(str(inspect_log)) == "inspect"
    df = read_any(str(inspect_log))
    assert list(df.columns) == ["model", "task", "sample_id", "epoch", "scorer", "score", "answer"]
    assert len(df) == 6 * 2 * 2 and set(df["scorer"]) == {"match", "includes"}
    assert set(df["epoch"]) == {1, 2} and set(df["model"]) == {"mockllm/model"}
    assert set(df["score"]) <= {0.0, 1.0}


def test_inspect_log_with_labels_runs_through_judge(capsys, inspect_log, tmp_path):
    labels = pd.DataFrame({"sample_id": [f"s{i}" for i in range(6)], "human": [1, 0, 1, 1, 0, 1]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = _run(capsys, ["evaluation", "judge", inspect_log, "--judge", "score", "--label", "human",
                                   "--labels", tmp_path / "labels.csv", "--on", "sample_id", "--group", "scorer",
                                   "--cluster", "sample_id", "--method", "labeled", "--json"])
    assert code == 0, err
    doc = json.loads(out)
    labeled = {e["name"]: e for e in doc["estimates"] if e["method"] == "labeled"}
    assert set(labeled) == {"match", "includes"}
    assert labeled["match"]["estimate"] == pytest.approx(4 / 6)  # every row labelled: the label mean


def test_broken_inspect_logs_exit_2(capsys, inspect_log, tmp_path):
    broken = tmp_path / "broken.eval"
    broken.write_bytes(inspect_log.read_bytes()[:200])
    code, out, err = _run(capsys, ["evaluation", "judge", broken, "--judge", "score", "--label", "x"])
    assert code == 2 and out == "" and err.startswith(f"error: {broken}: not a readable inspect-ai log")
    fake = tmp_path / "fake.json"
    fake.write_text('{"version": 2, "eval": {"task": "t"}, "status": "started", "samples": "nonsense"}')
    code, _, err = _run(capsys, ["evaluation", "judge", fake, "--judge", "score", "--label", "x"])
    assert code == 2 and str(fake) in err and "Traceback" not in err


@pytest.fixture(scope="module")
def inspect_dir(tmp_path_factory):
    """Two real logs of two mock models in one folder: one .eval, one .json (inspect's two formats)."""
    pytest.importorskip("inspect_ai")
    from inspect_ai import Task, eval as inspect_eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import _model
    from inspect_ai.scorer import match
    from inspect_ai.solver import generate

    folder = tmp_path_factory.mktemp("inspect_logs")
    original = _model.count_text_tokens
    _model.count_text_tokens = lambda text: len(str(text).split())
    try:
        for name, log_format in (("mockllm/a", "eval"), ("mockllm/b", "json")):
            task = Task(dataset=[Sample(input=f"Say {i}", target=str(i), id=f"s{i}") for i in range(5)],
                        solver=generate(), scorer=match(), epochs=2)
            log = inspect_eval(task, model=name, log_dir=str(folder / name.split("/")[1]), log_format=log_format,
                               display="none")[0]
            assert log.status == "success", log.error
    finally:
        _model.count_text_tokens = original
    return folder


def test_inspect_directory_and_glob_read_every_log(capsys, inspect_dir, tmp_path):
    assert detect_format(str(inspect_dir)) == "inspect"
    df = read_any(str(inspect_dir))
    assert len(df) == 2 * 5 * 2 and set(df["model"]) == {"mockllm/a", "mockllm/b"}
    assert df.groupby("model").size().to_dict() == {"mockllm/a": 10, "mockllm/b": 10}
    assert set(df["epoch"]) == {1, 2} and set(df["scorer"]) == {"match"}
    one = read_any(str(next(inspect_dir.rglob("*.json"))))
    assert set(one["model"]) == {"mockllm/b"} and len(one) == 10
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"sample_id": [f"s{i}" for i in range(5)], "human": [1, 0, 1, 1, 0]}).to_csv(labels, index=False)
    for source in (inspect_dir, inspect_dir / "*" / "*.json", inspect_dir / "**" / "*.eval"):
        code, out, err = _run(capsys, ["evaluation", "judge", source, "--judge", "score", "--label", "human",
                                       "--labels", labels, "--on", "sample_id", "--group", "model",
                                       "--cluster", "sample_id", "--method", "labeled", "--json"])
        assert code == 0, err
        labeled = {e["name"]: e["estimate"] for e in json.loads(out)["estimates"] if e["method"] == "labeled"}
        assert labeled == pytest.approx({m: 3 / 5 for m in set(read_any(str(source))["model"])})
    log = next(inspect_dir.rglob("*.eval"))
    before = log.read_bytes()
    code, out, err = _run(capsys, ["evaluation", "judge", inspect_dir, "--judge", "score", "--label", "human",
                                   "--labels", labels, "--on", "sample_id", "--report", log])
    assert code == 2 and "is an input file" in err and log.read_bytes() == before
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.json").write_text('{"a": 1}')
    with pytest.raises(DataError, match="holds no inspect-ai logs"):
        read_any(str(empty), "inspect")
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    pd.DataFrame({"sample_id": ["s0"], "score": [1.0]}).to_parquet(parquet / "part.parquet")
    code, out, err = _run(capsys, ["evaluation", "judge", parquet, "--judge", "score", "--label", "human",
                                   "--labels", labels, "--on", "sample_id"])
    assert code == 2 and out == "" and f"{parquet} is read as a directory or glob of Parquet files" in err
    assert "--engine" not in err  # none was given


# --------------------------------------------------------------------------- lm-evaluation-harness

# Written by lm-evaluation-harness 0.4.13 itself (tests/data/lm_eval/make_samples.py): two canned models,
# a generate_until task under two filters and a multiple-choice task with acc and acc_norm.
LM_EVAL = ROOT / "tests" / "data" / "lm_eval" / "out"


def _lm_eval_results(model: str) -> dict:
    return json.loads(next((LM_EVAL / model).glob("results_*.json")).read_text())


def test_lm_eval_samples_read_one_row_per_sample_metric_and_filter():
    arith = next((LM_EVAL / "canned-strong").glob("samples_tiny_arith_*.jsonl"))
    assert detect_format(str(arith)) == "lm-eval" and detect_format(str(LM_EVAL)) == "lm-eval"
    df = read_any(str(arith))
    assert len(df) == 8 * 2 and set(df["filter"]) == {"strict-match", "flexible-extract"}
    assert set(df["model"]) == {"canned-strong"} and set(df["task"]) == {"tiny_arith"}
    assert sorted(set(df["sample_id"])) == list(range(8)) and set(df["doc.id"]) == {f"arith-{i}" for i in range(8)}
    every = read_any(str(LM_EVAL))  # a directory of two models' runs
    assert set(every["model"]) == {"canned-strong", "canned-weak"}
    # the per-sample scores average to the harness's own results, for every model, task, metric and filter
    for model in ("canned-strong", "canned-weak"):
        results = _lm_eval_results(model)["results"]
        for (task, scorer), rows in every[every["model"] == model].groupby(["task", "scorer"]):
            assert rows["score"].mean() == pytest.approx(results[task][scorer], rel=1e-12)
            assert len(rows) == results[task]["sample_len"]


def test_lm_eval_directory_runs_through_judge_with_labels(capsys, tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"doc.id": [f"cap-{i}" for i in range(6)], "human": [1, 1, 0, 1, 1, 0]}).to_csv(labels, index=False)
    argv = ["evaluation", "judge", LM_EVAL, "--judge", "score", "--label", "human", "--labels", labels,
            "--on", "doc.id", "--group", "model", "--method", "labeled", "--json"]
    code, out, err = _run(capsys, argv)
    assert code == 2 and out == "" and "4 task and scorer pairs" in err and "--scorer" in err  # never mixed
    code, out, err = _run(capsys, [*argv, "--scorer", "acc,none"])
    assert code == 0, err
    doc = json.loads(out)
    for model in ("canned-strong", "canned-weak"):
        naive = next(e for e in doc["estimates"] if e["name"] == model and e["method"] == "naive")
        harness = _lm_eval_results(model)["results"]["tiny_capitals"]
        assert naive["estimate"] == pytest.approx(harness["acc,none"], rel=1e-12)
        # the harness's stderr divides by n - 1, the plug-in standard error by n
        assert naive["se"] * np.sqrt(6 / 5) == pytest.approx(harness["acc_stderr,none"], rel=1e-9)
        labeled = next(e for e in doc["estimates"] if e["name"] == model and e["method"] == "labeled")
        assert labeled["estimate"] == pytest.approx(4 / 6)  # every row labelled: the label mean
    arith = tmp_path / "arith_labels.csv"
    pd.DataFrame({"doc.id": [f"arith-{i}" for i in range(8)], "human": [1, 0] * 4}).to_csv(arith, index=False)
    glob_arg = str(LM_EVAL / "*" / "samples_tiny_arith_*.jsonl")
    code, out, err = _run(capsys, ["evaluation", "judge", glob_arg, "--judge", "score", "--label", "human",
                                   "--labels", arith, "--on", "doc.id", "--method", "naive", "--group", "model",
                                   "--scorer", "exact_match,strict-match", "--json"])
    assert code == 0, err
    means = {e["name"]: e["estimate"] for e in json.loads(out)["estimates"]}
    assert means == pytest.approx({m: _lm_eval_results(m)["results"]["tiny_arith"]["exact_match,strict-match"]
                                   for m in ("canned-strong", "canned-weak")})


def test_report_over_a_file_of_lm_eval_output_is_refused(capsys, tmp_path):
    out_dir = tmp_path / "out"
    shutil.copytree(LM_EVAL, out_dir)
    samples = next((out_dir / "canned-weak").glob("samples_tiny_capitals_*.jsonl"))
    results = next((out_dir / "canned-weak").glob("results_*.json"))
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"doc.id": [f"cap-{i}" for i in range(6)], "human": [1, 1, 0, 1, 1, 0]}).to_csv(labels, index=False)
    base = ["evaluation", "judge", "--judge", "score", "--label", "human", "--labels", labels, "--on", "doc.id",
            "--scorer", "acc,none", "--group", "model"]
    for source in (out_dir, out_dir / "*" / "samples_tiny_capitals_*.jsonl"):
        for target in (samples, results):  # results are read too: they name the model
            before = target.read_bytes()
            code, out, err = _run(capsys, [*base[:2], source, *base[2:], "--report", target])
            assert code == 2 and out == "" and "is an input file" in err and "Traceback" not in err, err
            assert target.read_bytes() == before
    code, out, err = _run(capsys, [*base[:2], out_dir, *base[2:], "--report", out_dir / "report.html"])
    assert code == 0 and (out_dir / "report.html").is_file(), err  # a new file beside the data is fine


def test_lm_eval_model_name_from_results_args_or_folder(tmp_path):
    src = next((LM_EVAL / "canned-weak").glob("samples_tiny_capitals_*.jsonl"))
    alone = tmp_path / "my-model"
    alone.mkdir()
    shutil.copy(src, alone / src.name)
    assert set(read_any(str(alone / src.name))["model"]) == {"my-model"}  # no results file: the folder names it
    results = _lm_eval_results("canned-weak")
    del results["model_name"]  # as older harness versions wrote it: the name is in config.model_args
    (alone / src.name.replace("samples_tiny_capitals_", "results_").replace(".jsonl", ".json")).write_text(
        json.dumps(results))
    assert set(read_any(str(alone / src.name))["model"]) == {"canned-weak"}


@pytest.mark.parametrize("edit, message", [
    (lambda lines: lines[:2] + ['{"doc_id": 2, "doc": {\n'] + lines[3:], "line 3 is not valid JSON"),
    (lambda lines: lines[:4] + [json.dumps({k: v for k, v in json.loads(lines[4]).items() if k != "doc_id"}) + "\n"]
     + lines[5:], "line 5: key 'doc_id' is missing"),
    (lambda lines: lines[:1] + [json.dumps({**json.loads(lines[1]), "acc": "high"}) + "\n"] + lines[2:],
     "line 2, key 'acc': 'high' is not a number"),
    (lambda lines: lines[:3] + [json.dumps({k: v for k, v in json.loads(lines[3]).items() if k != "acc_norm"})
                                + "\n"] + lines[4:], "line 4: key 'acc_norm' is missing"),
])
def test_broken_lm_eval_samples_exit_2(capsys, tmp_path, edit, message):
    src = next((LM_EVAL / "canned-weak").glob("samples_tiny_capitals_*.jsonl"))
    broken = tmp_path / src.name
    broken.write_text("".join(edit(src.read_text().splitlines(keepends=True))))
    code, out, err = _run(capsys, ["evaluation", "judge", broken, "--format", "lm-eval", "--judge", "score",
                                   "--label", "doc.label", "--method", "naive", "--group", "scorer"])
    assert code == 2 and out == "" and "Traceback" not in err
    assert err.startswith(f"error: {broken}: {message}") and len(err.strip().splitlines()) == 1


def test_lm_eval_empty_directory_exit_2(capsys, tmp_path):
    code, _, err = _run(capsys, ["evaluation", "judge", tmp_path, "--format", "lm-eval", "--judge", "score",
                                 "--label", "x"])
    assert code == 2 and "no lm-evaluation-harness samples files" in err


# --------------------------------------------------------------------------- MT-Bench


@pytest.mark.skipif(MT_BENCH is None, reason="the public MT-Bench judgments are not here")
def test_mt_bench_single_judgments_from_the_public_file():
    assert detect_format(str(MT_BENCH)) == "mt-bench"
    df = read_any(str(MT_BENCH))
    assert len(df) == 320 and set(df["judge"]) == {"gpt-4"}
    assert df["score"].between(1, 10).all() and set(df["turn"]) == {1, 2}
    assert df.groupby("model")["score"].size().to_dict() == {"gpt-4-1106-preview": 160,
                                                             "mistralai/Mixtral-8x7B-Instruct-v0.1": 160}


def _pairwise(tmp_path, rows, name="pair.jsonl"):
    path = tmp_path / name
    with open(path, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    return path


def test_mt_bench_pairwise_and_broken_files(tmp_path, capsys):
    rows = [{"question_id": 81 + i, "model_1": "a", "model_2": "b", "g1_winner": g1, "g2_winner": g2,
             "judge": ["gpt-4", "pair-v2"], "turn": 1}
            for i, (g1, g2) in enumerate([("model_1", "model_1"), ("model_1", "model_2"), ("tie", "tie"),
                                          ("model_2", "error")])]
    path = _pairwise(tmp_path, rows)
    df = read_mt_bench(str(path))
    assert df["winner"].tolist()[:3] == ["model_1", "tie", "tie"] and pd.isna(df["winner"].iloc[3])  # an error
    assert df["consistent"].tolist() == [1, 0, 1, 0] and set(df["judge"]) == {"gpt-4"}
    rows[2]["g2_winner"] = "model_3"
    with pytest.raises(DataError, match=r"column 'g2_winner', row 3: 'model_3'"):
        read_mt_bench(str(_pairwise(tmp_path, rows, "bad.jsonl")))
    single = [{"question_id": 1, "model": "m", "judge": ["gpt-4", "single-v1"], "score": s, "turn": 1}
              for s in (8, -1, 11)]
    path = _pairwise(tmp_path, single, "single.jsonl")
    code, out, err = _run(capsys, ["evaluation", "judge", path, "--judge", "score", "--label", "x"])
    assert code == 2 and err.strip() == f"error: {path}: column 'score', row 3: 11 is outside 1-10"


# --------------------------------------------------------------------------- Stata and labels


def test_stata_file_written_by_pandas_runs_through_ate(capsys, tmp_path, world_frame):
    path = tmp_path / "world.dta"
    world_frame.drop(columns=["prompt", "domain"]).to_stata(path, write_index=False)
    assert detect_format(str(path)) == "stata"
    df = read_table(path)
    assert len(df) == len(world_frame) and str(path) in df.attrs.values()
    code, out, err = _run(capsys, ["ate", path, "-t", "treated", "-y", "outcome", "-x", "x0,x1,x2,x3,x4",
                                   "--method", "ra", "--json"])
    assert code == 0, err
    est = json.loads(out)["estimates"][0]
    assert est["ci_low"] < 1.0 < est["ci_high"]  # the world's true ATE
    broken = tmp_path / "broken.dta"
    broken.write_bytes(path.read_bytes()[:300])
    code, _, err = _run(capsys, ["ate", broken, "-t", "treated", "-y", "outcome"])
    assert code == 2 and err.startswith(f"error: {broken}: could not read as Stata .dta")


def test_join_labels_checks_ids(tmp_path):
    scores = read_table(pd.DataFrame({"id": ["a", "b", "c"], "judge": [0.1, 0.5, 0.9]}), name="scores.csv")
    good = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["c", "a"], "human": [1, 0]}).to_csv(good, index=False)
    out = join_labels(scores, str(good), "id", "human")
    assert out["human"].tolist()[0] == 0 and np.isnan(out["human"].iloc[1]) and out["human"].iloc[2] == 1
    assert "human" not in scores.columns  # the caller's frame is left alone
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"id": ["a", "a"], "human": [1, 0]}).to_csv(dup, index=False)
    with pytest.raises(DataError, match=r"dup.csv: column 'id', row 2: id 'a' appears twice"):
        join_labels(scores, str(dup), "id", "human")
    stray = tmp_path / "stray.csv"
    pd.DataFrame({"id": ["a", "zz"], "human": [1, 0]}).to_csv(stray, index=False)
    with pytest.raises(DataError, match=r"stray.csv: column 'id', row 2: id 'zz' matches no row"):
        join_labels(scores, str(stray), "id", "human")
    with pytest.raises(DataError, match="human"):
        join_labels(scores, str(tmp_path / "labels.csv"), "id", "nope")


def test_join_labels_on_several_columns(tmp_path):
    scores = read_table(pd.DataFrame({"model": ["a", "a", "b", "b"], "id": [1, 2, 1, 2],
                                      "judge": [0.1, 0.5, 0.9, 0.3]}), name="scores.csv")
    good = tmp_path / "labels.csv"
    pd.DataFrame({"model": ["b", "a", "a"], "id": [1, 2, 1], "human": [5, 7, 9]}).to_csv(good, index=False)
    for on in ("model,id", " model , id", ["model", "id"]):
        out = join_labels(scores, str(good), on, "human")
        assert out["human"].tolist()[:3] == [9, 7, 5] and np.isnan(out["human"].iloc[3])
    dup = tmp_path / "dup.csv"
    pd.DataFrame({"model": ["a", "b", "a"], "id": [1, 1, 1], "human": [1, 0, 1]}).to_csv(dup, index=False)
    with pytest.raises(DataError, match=r"dup.csv: columns 'model', 'id', row 3: id \('a', '1'\) appears twice"):
        join_labels(scores, str(dup), "model,id", "human")
    stray = tmp_path / "stray.csv"
    pd.DataFrame({"model": ["a", "c"], "id": [1, 1], "human": [1, 0]}).to_csv(stray, index=False)
    with pytest.raises(DataError, match=r"stray.csv: columns 'model', 'id', row 2: id \('c', '1'\) matches no row"):
        join_labels(scores, str(stray), "model,id", "human")
    with pytest.raises(DataError, match=r"labels.csv: no column 'task' \(given to --on\)"):
        join_labels(read_table(scores.assign(task="t"), name="scores.csv"), str(good), "model,task", "human")
    with pytest.raises(DataError, match=r"scores.csv: no column 'run' \(given to --on\)"):
        join_labels(scores, str(good), "model,run", "human")
    for bad in ("model,", "model,model"):
        with pytest.raises(DataError, match="--on"):
            join_labels(scores, str(good), bad, "human")


def test_lm_eval_per_model_labels_join_on_model_and_doc_id(capsys, tmp_path):
    labels = tmp_path / "labels.csv"
    rows = [(m, f"cap-{i}", int(m == "canned-strong" or i < 2)) for m in ("canned-strong", "canned-weak")
            for i in range(6)]
    pd.DataFrame(rows, columns=["model", "doc.id", "human"]).to_csv(labels, index=False)
    argv = ["evaluation", "judge", LM_EVAL, "--judge", "score", "--label", "human", "--labels", labels,
            "--on", "model,doc.id", "--group", "model", "--method", "labeled", "--scorer", "acc,none", "--json"]
    code, out, err = _run(capsys, argv)
    assert code == 0, err
    labeled = {e["name"]: e["estimate"] for e in json.loads(out)["estimates"] if e["method"] == "labeled"}
    assert labeled == pytest.approx({"canned-strong": 1.0, "canned-weak": 2 / 6})
    code, out, err = _run(capsys, [*argv[:10], "doc.id", *argv[11:]])  # one column: each id twice in the labels
    assert code == 2 and out == "" and "column 'doc.id', row 7: id 'cap-0' appears twice" in err


def test_labels_needs_on(capsys, tmp_path):
    path = tmp_path / "s.csv"
    pd.DataFrame({"id": ["a"], "judge": [0.5]}).to_csv(path, index=False)
    code, _, err = _run(capsys, ["evaluation", "judge", path, "--judge", "judge", "--label", "h",
                                 "--labels", path])
    assert code == 2 and "--on" in err


def test_a_folder_of_both_lm_eval_samples_and_inspect_logs_is_not_read_as_one_kind(tmp_path, inspect_log):
    """Reading one kind would silently drop the other's rows: the folder is refused unless --format names one."""
    import shutil

    shutil.copytree(LM_EVAL, tmp_path / "both")
    shutil.copy(inspect_log, tmp_path / "both" / inspect_log.name)
    with pytest.raises(DataError, match=r"both lm-evaluation-harness samples .* and inspect-ai logs"):
        detect_format(str(tmp_path / "both"))
    assert set(read_any(str(tmp_path / "both"), fmt="lm-eval")["model"]) == set(read_any(str(LM_EVAL))["model"])
    assert len(read_any(str(tmp_path / "both"), fmt="inspect")) == len(read_any(str(inspect_log)))
