"""Bad input, every command: exit 2, one plain message naming file/column/row, no traceback, no output left,
input bytes unchanged.

Each command gets a small valid input (so that a case fails only because of what it breaks) and the same
table of breakages: misspelt columns, NaN, inf, text in a number column, empty file, header only, repeated
header names, truncated and binary-garbage CSV/JSONL/Parquet, an output in a missing folder or over the input;
plus the cases special to a command (a treatment or action with one value, probabilities of 0 or above 1,
a policy for a model never logged, an empty group).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from llmcause.cli import run

RNG = np.random.default_rng(7)
N = 60


def _units() -> pd.DataFrame:
    x0, x1 = RNG.normal(size=N), RNG.normal(size=N)
    treated = (RNG.random(N) < 1 / (1 + np.exp(-x0))).astype(int)
    return pd.DataFrame({"treated": treated, "outcome": (x0 + treated + RNG.normal(size=N)).round(4),
                         "x0": x0.round(4), "x1": x1.round(4)})


def _judged() -> pd.DataFrame:
    score = RNG.random(N).round(3)
    label = np.where(np.arange(N) % 3 == 0, (score + RNG.normal(0, 0.1, N)).round(3), np.nan)
    return pd.DataFrame({"model": np.tile(["a", "b"], N // 2), "prompt": np.repeat(np.arange(N // 2), 2),
                         "judge_score": score, "label": label, "label_prob": 1 / 3})


def _battles() -> pd.DataFrame:
    models = ["m1", "m2", "m3"]
    a = RNG.choice(models, N)
    b = np.array([RNG.choice([m for m in models if m != x]) for x in a])
    return pd.DataFrame({"model_a": a, "model_b": b, "winner": RNG.choice(["model_a", "model_b", "tie"], N),
                         "length_a": RNG.integers(50, 500, N), "length_b": RNG.integers(50, 500, N)})


def _judged_battles() -> pd.DataFrame:
    """Battles with a judge's pick (1: model_a won, 0: model_b) on every row and a human vote on half."""
    f = _battles().drop(columns=["winner"])
    human = np.where(np.arange(N) % 2 == 0, RNG.choice(["model_a", "model_b"], N), None)
    return f.assign(judge=RNG.integers(0, 2, N), human=human)


def _responses() -> pd.DataFrame:
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    text = [" ".join(RNG.choice(words, RNG.integers(3, 40))) for _ in range(N)]
    return pd.DataFrame({"prompt": [f"q{i}" for i in range(N)], "response": text,
                         "long": [int(len(t.split()) >= 20) for t in text]})


def _log() -> pd.DataFrame:
    return pd.DataFrame({"model": RNG.choice(["small", "large"], N), "quality": RNG.random(N).round(3),
                         "propensity": 0.5, "difficulty": RNG.normal(size=N).round(3)})


def _past_runs() -> pd.DataFrame:
    log_params = RNG.uniform(6, 9, N)
    w_code = RNG.uniform(0.1, 0.6, N)
    return pd.DataFrame({"log_params": log_params.round(3), "log_tokens": (log_params + RNG.normal(0, 0.2, N)).round(3),
                         "w:code": w_code.round(3), "w:web": (1 - w_code).round(3),
                         "bpb:math": (2 - 0.1 * log_params - 0.3 * w_code + RNG.normal(0, 0.02, N)).round(4)})


@dataclass
class Command:
    """One command: its valid input, the argv after the input path, and the columns the cases may break."""

    name: str
    frame: Callable[[], pd.DataFrame]
    argv: list[str]
    number: str  # a numeric column that must be present on every row
    column_option: tuple[str, str]  # an option naming a column, and that column
    extra: dict = field(default_factory=dict)  # case name -> function(frame) -> frame, with expected text
    inf_text: str = "infinite"  # what the message says of "inf" (in a column of picks or 0/1 it is no pick)


COMMANDS = [
    Command("ate", _units, ["ate", "{input}", "-t", "treated", "-y", "outcome", "-x", "x0,x1", "--folds", "2"],
            "outcome", ("-y", "outcome"),
            {"treatment with one value": (lambda f: f.assign(treated=1), ["'treated'", "constant"]),
             "treatment not binary": (lambda f: f.assign(treated=np.arange(N) % 3), ["'treated'", "row 3"])}),
    Command("evaluation judge", _judged, ["evaluation", "judge", "{input}", "--judge", "judge_score", "--label",
                                          "label", "--group", "model", "--method", "ppi++", "--label-prob",
                                          "label_prob"],
            "judge_score", ("--judge", "judge_score"),
            {"no labels at all": (lambda f: f.assign(label=np.nan), ["label"]),
             "label probability 0": (lambda f: f.assign(label_prob=0.0), ["'label_prob'", "row 1"]),
             "label probability above 1": (lambda f: f.assign(label_prob=1.5), ["'label_prob'", "row 1"])}),
    Command("evaluation plan", _judged, ["evaluation", "plan", "{input}", "--judge", "judge_score", "--label",
                                         "label", "--halfwidth", "0.05", "--method", "ppi"],
            "judge_score", ("--label", "label"), {}),
    Command("alignment lc-winrate", _battles, ["alignment", "lc-winrate", "{input}", "--baseline", "m1",
                                               "--model-a", "model_a", "--model-b", "model_b", "--winner", "winner",
                                               "--length-a", "length_a", "--length-b", "length_b"],
            "length_a", ("--winner", "winner"),
            {"one model only": (lambda f: f.assign(model_a="m1", model_b="m1"), ["m1"])}),
    Command("routing evaluate", _log, ["routing", "evaluate", "{input}", "-a", "model", "-y", "quality",
                                       "--propensity", "propensity", "-x", "difficulty", "--policy", "always:large",
                                       "--method", "ips", "--folds", "2"],
            "quality", ("-a", "model"),
            {"action with one value": (lambda f: f.assign(model="large"), ["'model'", "only one model"]),
             "propensity 0": (lambda f: f.assign(propensity=0.0), ["'propensity'", "row 1"]),
             "propensity above 1": (lambda f: f.assign(propensity=1.2), ["'propensity'", "row 1"])}),
    Command("evaluation audit", _judged, ["evaluation", "audit", "{input}", "--judge", "judge_score", "--label",
                                          "label", "--group", "model"],
            "judge_score", ("--label", "label"), {}),
    Command("sensitivity", _units, ["sensitivity", "{input}", "--treatment", "treated", "--outcome", "outcome",
                                    "--covariates", "x0,x1", "--benchmark", "x0"],
            "outcome", ("--treatment", "treated"),
            {"treatment with one value": (lambda f: f.assign(treated=1), ["'treated'"])}),
    Command("routing benefit", _log, ["routing", "benefit", "{input}", "-a", "model", "-y", "quality",
                                      "--propensity", "propensity", "-x", "difficulty", "--folds", "2"],
            "quality", ("-a", "model"),
            {"propensity above 1": (lambda f: f.assign(propensity=1.2), ["'propensity'", "row 1"])}),
    Command("routing learn", _log, ["routing", "learn", "{input}", "-a", "model", "-y", "quality", "--propensity",
                                    "propensity", "-x", "difficulty", "--costs", "small=1,large=10", "--budget",
                                    "5", "--folds", "2", "--out", "{input}.router.json"],
            "quality", ("-y", "quality"),
            {"action with one value": (lambda f: f.assign(model="large"), ["'model'"])}),
    Command("routing frontier", _log, ["routing", "frontier", "{input}", "-a", "model", "-y", "quality",
                                       "--propensity", "propensity", "-x", "difficulty", "--costs",
                                       "small=1,large=10", "--points", "3", "--folds", "2"],
            "difficulty", ("-x", "difficulty"),
            {"propensity 0": (lambda f: f.assign(propensity=0.0), ["'propensity'", "row 1"])}),
    Command("evaluation battles", _judged_battles, ["evaluation", "battles", "{input}", "--judge", "judge",
                                                    "--human", "human", "--model-a", "model_a", "--model-b",
                                                    "model_b"],
            "judge", ("--human", "human"),
            {"no human votes": (lambda f: f.assign(human=None), ["human"]),
             "a model against itself": (lambda f: f.assign(model_b=f["model_a"]), ["row 1"]),
             "human vote not a pick": (lambda f: f.assign(human="maybe"), ["'human'", "row 1", "'maybe'"])},
            inf_text="not a pick"),
    Command("alignment style", _battles, ["alignment", "style", "{input}", "--model-a", "model_a", "--model-b",
                                          "model_b", "--winner", "winner", "--features", "length", "--folds", "2"],
            "length_a", ("--winner", "winner"),
            {"one model only": (lambda f: f.assign(model_a="m1", model_b="m1"), ["m1"]),
             "winner not a pick": (lambda f: _set(f, "winner", 2, "nobody"), ["'winner'", "row 3", "'nobody'"]),
             "empty winner": (lambda f: _set(f, "winner", 5, ""), ["'winner'", "row 6"])}),
    Command("alignment rate", _responses, ["alignment", "rate", "{input}", "--text", "response", "--attribute",
                                           "length", "--treatment", "long", "--reward", "sandbox:length",
                                           "--rewriter", "sandbox"],
            "long", ("--text", "response"),
            {"treatment with one value": (lambda f: f.assign(long=1), ["'long'"]),
             "treatment not binary": (lambda f: f.assign(long=np.arange(N) % 3), ["'long'", "row 3"]),
             "missing text": (lambda f: _set(f, "response", 3, None), ["'response'", "row 4"])},
            inf_text="not binary"),
    Command("pretraining effects", _past_runs, ["pretraining", "effects", "{input}", "--confounders",
                                                "log_params,log_tokens", "--treatment", "w:code", "--losses",
                                                "bpb:math", "--learner", "linear", "--folds", "2"],
            "log_params", ("--treatment", "w:code"), {}),  # (an empty loss is a failed run: left out, counted)
]


def _set(frame: pd.DataFrame, col: str, row: int, value) -> pd.DataFrame:
    out = frame.copy()
    out[col] = out[col].astype(object)
    out.loc[row, col] = value
    return out


def _common_cases(cmd: Command):
    """(case, what to write, argv changes, texts the message must hold); {input} is the input's path."""
    num = cmd.number
    opt, col = cmd.column_option
    csv = lambda f: ("csv", f.to_csv(index=False).encode())  # noqa: E731
    return {
        "misspelt column": (csv(cmd.frame()), {opt: col + "_typo"}, ["{input}", f"'{col}_typo'"]),
        "NaN in a number column": (csv(_set(cmd.frame(), num, 4, "NaN")), {}, ["{input}", f"'{num}'", "row 5"]),
        "inf in a number column": (csv(_set(cmd.frame(), num, 2, "inf")), {}, ["{input}", f"'{num}'", "row 3",
                                                                                cmd.inf_text]),
        "1e308 in a number column": (csv(_set(cmd.frame(), num, 6, "1e308")), {}, ["{input}", f"'{num}'", "row 7"]),
        "text in a number column": (csv(_set(cmd.frame(), num, 3, "oops")), {}, ["{input}", f"'{num}'", "row 4",
                                                                                   "'oops'"]),
        "empty file": (("csv", b""), {}, ["{input}", "empty"]),
        "header only": (("csv", (",".join(cmd.frame().columns) + "\n").encode()), {}, ["{input}", "no data rows"]),
        "repeated header": (("csv", _repeat_header(cmd.frame(), num)), {}, ["{input}", f"'{num}'", "twice"]),
        "truncated csv": (("csv", _truncated(cmd.frame())), {}, ["{input}", "truncated"]),
        "binary garbage csv": (("csv", bytes(range(256)) * 8), {}, ["{input}"]),
        "binary garbage parquet": (("parquet", b"PAR1" + bytes(range(256)) * 4), {}, ["{input}", "PARQUET"]),
        "truncated parquet": (("parquet", _parquet(cmd.frame())[:-40]), {}, ["{input}", "PARQUET"]),
        "truncated jsonl": (("jsonl", cmd.frame().to_json(orient="records", lines=True).encode()[:-25]), {},
                            ["{input}", "line"]),
        "binary garbage jsonl": (("jsonl", bytes(range(256)) * 8), {}, ["{input}"]),
        "report in a missing folder": (csv(cmd.frame()), {"--report": "{missing}/r.html"}, ["--report",
                                                                                            "does not exist"]),
        "report over the input": (csv(cmd.frame()), {"--report": "{input}"}, ["--report", "input"]),
    }


def _repeat_header(frame: pd.DataFrame, col: str) -> bytes:
    text = frame.to_csv(index=False)
    header, rest = text.split("\n", 1)
    other = next(c for c in frame.columns if c != col)
    return (header.replace(other, col, 1) + "\n" + rest).encode()


def _truncated(frame: pd.DataFrame) -> bytes:
    """The file cut in the middle of a row's first field (as a copy or download stopped short would leave it)."""
    text = frame.to_csv(index=False)
    cut = text.index("\n", len(text) // 2) + 2
    return text[:cut].encode()


def _parquet(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    return buf.getvalue()


def _cases():
    for cmd in COMMANDS:
        for case, (content, changes, expect) in _common_cases(cmd).items():
            yield pytest.param(cmd, content, changes, expect, id=f"{cmd.name}: {case}")
        for case, (mutate, expect) in cmd.extra.items():
            content = ("csv", mutate(cmd.frame()).to_csv(index=False).encode())
            yield pytest.param(cmd, content, {}, ["{input}", *expect], id=f"{cmd.name}: {case}")


def _argv(cmd: Command, changes: dict, path: Path, report: Path, missing: Path) -> list[str]:
    sub = lambda s: s.replace("{input}", str(path)).replace("{missing}", str(missing))  # noqa: E731
    argv = [sub(a) for a in cmd.argv]
    for opt, value in changes.items():
        if opt in argv:
            argv[argv.index(opt) + 1] = sub(value)
        else:
            argv += [opt, sub(value)]
    if "--report" not in changes:
        argv += ["--report", str(report)]
    return argv


@pytest.mark.parametrize("cmd, content, changes, expect", list(_cases()))
def test_bad_input_exits_2_with_one_plain_message(capsys, tmp_path, cmd, content, changes, expect):
    ext, data = content
    path = tmp_path / f"input.{ext}"
    path.write_bytes(data)
    report = tmp_path / "out.html"
    code = run(_argv(cmd, changes, path, report, tmp_path / "no such folder"))
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for text in expect:
        assert text.replace("{input}", str(path)) in lines[0], (text, lines[0])
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_the_valid_inputs_pass(capsys, tmp_path):
    """The breakages above are what fails: each command succeeds on its untouched input."""
    for cmd in COMMANDS:
        path = tmp_path / f"{cmd.name.replace(' ', '_')}.csv"
        cmd.frame().to_csv(path, index=False)
        code = run([a.replace("{input}", str(path)) for a in cmd.argv] + ["--json"])
        out, err = capsys.readouterr()
        assert code == 0, (cmd.name, err)


@pytest.mark.parametrize("argv", [["tour", "--quick", "--report", "{missing}/r.html"],
                                  ["routing", "simulate", "synthetic", "--out", "{missing}/log.csv"],
                                  ["evaluation", "example", "world", "--out", "{missing}/w.csv"],
                                  ["pretraining", "design", "--out", "{missing}/d.csv"]],
                         ids=lambda a: " ".join(a[:2]))
def test_outputs_in_a_missing_folder(capsys, tmp_path, argv):
    code = run([a.replace("{missing}", str(tmp_path / "nope")) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_policy_for_a_model_never_logged(capsys, tmp_path):
    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    code = run(["routing", "evaluate", str(path), "-a", "model", "-y", "quality", "--propensity", "propensity",
                "-x", "difficulty", "--policy", "always:huge"])
    err = capsys.readouterr().err
    assert code == 2 and "'huge'" in err and err.count("\n") == 1


def test_empty_group_for_the_calibration(capsys, tmp_path):
    path = tmp_path / "judged.csv"
    _judged().to_csv(path, index=False)
    code = run(["evaluation", "judge", str(path), "--judge", "judge_score", "--label", "label", "--group", "model",
                "--calibrate-on", "zzz"])
    err = capsys.readouterr().err
    assert code == 2 and "'zzz'" in err and err.count("\n") == 1


def test_lc_winrate_model_with_too_few_comparisons_names_file_columns_and_model(capsys, tmp_path):
    f = _battles()
    f.loc[f.index[-1], ["model_a", "model_b"]] = ["m1", "rare"]  # one comparison of 'rare' with the baseline
    path = tmp_path / "battles.csv"
    f.to_csv(path, index=False)
    code = run(["alignment", "lc-winrate", str(path), "--baseline", "m1", "--model-a", "model_a", "--model-b",
                "model_b", "--winner", "winner", "--length-a", "length_a", "--length-b", "length_b"])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}: columns 'model_a' and 'model_b': model 'rare' has only 1 comparison "
                          "with the baseline 'm1'")
    n = 12  # an AlpacaEval file: the generator columns are named
    ann = pd.DataFrame({"instruction": [f"q{i}" for i in range(n)], "output_1": ["a" * (10 + i) for i in range(n)],
                        "output_2": ["b" * (20 + 3 * i) for i in range(n)], "generator_1": "base",
                        "generator_2": ["good"] * (n - 2) + ["rare"] * 2, "preference": [1.0, 2.0] * (n // 2)})
    path = tmp_path / "annotations.json"
    ann.to_json(path, orient="records")
    code = run(["alignment", "lc-winrate", str(path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {path}: columns 'generator_1' and 'generator_2': model 'rare' has only 2 "
                          "comparisons with the baseline 'base'")
