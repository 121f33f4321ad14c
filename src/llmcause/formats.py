"""Readers for the files evaluation tools write, into one flat table per file.

Each format is chosen with ``--format NAME`` or recognised by the file's own
structure (an ``.eval`` or ``.dta`` suffix, or the keys of its JSON records),
never by guessing from values:

- ``inspect``: inspect-ai eval logs (``.eval`` and ``.json``), read with
  inspect-ai's own ``read_eval_log`` (optional extra ``inspect``). One row per
  sample, epoch and scorer: model, task, sample_id, epoch, scorer, score
  (numeric; C/I/P/N letters as 1/0/0.5/0), answer. A scorer whose value is a
  dict (one score per key, as multi-value scorers write) gives one scorer per
  key, named ``scorer/key``. A directory (searched recursively) or glob of logs gives
  the rows of every log, each with its own model.
- ``mt-bench``: FastChat MT-Bench judgments. Single grading
  (``question_id, model, judge, score, turn``) gives one row per answer with
  its 1-10 score (a score of -1, FastChat's "could not parse", becomes empty);
  pairwise (``question_id, model_1, model_2, g1_winner, g2_winner, judge,
  turn``) gives one row per comparison with ``winner`` in model_1 / model_2 /
  tie and ``consistent`` (both orders agree).
- ``lm-eval``: lm-evaluation-harness per-sample outputs (``samples_<task>_<date>.jsonl``,
  written with ``--log_samples``; a file, or a directory or glob of them). One row per
  sample, metric and filter: model, task, sample_id (the harness's ``doc_id``), filter,
  metric, scorer (the harness's own ``metric,filter`` key), score, target, response, and the
  document's scalar fields as ``doc.<name>``. The model is named by the ``results_<date>.json``
  written beside the samples (its ``model_name``, else ``config.model_args``), else by the
  samples' folder (the harness names it after the model).
- ``stata``: Stata ``.dta`` files (pandas' reader).
- ``alpacaeval``: AlpacaEval annotations (``instruction, output_1, output_2,
  generator_1, generator_2, preference``; JSON as alpaca_eval writes them, or
  CSV/JSONL/Parquet with the same columns), recognised by those columns. One
  row per annotation, with ``length_1``/``length_2`` (characters; an empty
  answer is 0), ``p_2`` (P(output_2 preferred): preference 1 → 0, 2 → 1,
  1.5 or AlpacaEval's draw code 0 → ½, soft values in between) and
  ``position`` (the row's place among its generator_2's annotations, which is
  how alpaca_eval keys instruction difficulty). A missing preference (a
  failed annotation) drops the row with one warning.
- ``table``: CSV, TSV, JSON Lines, JSON or Parquet (`io.read_table`).

`join_labels` joins human labels kept in a second file by an id column.
"""

from __future__ import annotations

import glob
import json
import math
import re
from pathlib import Path

from ._lazy import lazy_module
from .io import SOURCE_ATTR, DataError, json_lines, read_table, require_columns, show_value, source_of

np = lazy_module("numpy")
pd = lazy_module("pandas")

FORMAT_ATTR = "llmcause_format"  # which reader made a frame (its rows are one score per scorer)
FORMATS = ("auto", "table", "inspect", "mt-bench", "lm-eval", "stata", "alpacaeval")
ALPACAEVAL_COLUMNS = ("instruction", "output_1", "output_2", "generator_1", "generator_2", "preference")
_ALPACAEVAL_MARK = {"output_1", "output_2", "generator_1", "generator_2"}  # these four tell the format
_MT_SINGLE = {"question_id", "model", "judge", "score", "turn"}
_MT_PAIR = {"question_id", "model_1", "model_2", "g1_winner", "g2_winner", "turn"}
_INSPECT_KEYS = ({"eval", "samples"}, {"version", "eval", "status"})  # a JSON log's top-level keys
_LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}


def read_any(path: str, fmt: str = "auto"):
    """The file as a DataFrame, in the shape its format gives (see the module docstring)."""
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt}: choose from {', '.join(FORMATS)}")
    kind = detect_format(path) if fmt == "auto" else fmt
    if kind == "inspect":
        return read_inspect_log(path)
    if kind == "mt-bench":
        return read_mt_bench(path)
    if kind == "lm-eval":
        return read_lm_eval(path)
    if kind == "stata":
        return read_stata(path)
    if kind == "alpacaeval":
        return read_alpacaeval(path)
    df = read_table(path)
    if fmt == "auto" and is_alpacaeval_table(df):
        return read_alpacaeval(df)
    return df


def detect_format(path: str) -> str:
    """The format a file's structure shows: its suffix, or the keys of its first JSON record.

    A directory or glob is ``lm-eval`` when it holds lm-evaluation-harness samples files, ``inspect`` when it
    holds inspect-ai logs, else ``table`` (a Parquet dataset).
    """
    p = Path(path)
    if p.is_dir() or any(ch in str(path) for ch in "*?["):
        lm_eval, inspect = _lm_eval_files(str(path)), _inspect_files(str(path))
        if lm_eval and inspect:  # reading one kind would silently drop the other
            raise DataError(f"{path}: holds both lm-evaluation-harness samples ({Path(lm_eval[0]).name}) and "
                            f"inspect-ai logs ({Path(inspect[0]).name}); give --format lm-eval or --format inspect, "
                            "or a glob that names one kind")
        if lm_eval:
            return "lm-eval"
        return "inspect" if inspect else "table"
    suffix = p.suffix.lower()
    if suffix == ".eval":
        return "inspect"
    if suffix == ".dta":
        return "stata"
    if suffix in (".json", ".jsonl", ".ndjson") and p.is_file():
        head = _first_json(p)
        if isinstance(head, list) and head and isinstance(head[0], dict):
            head = head[0]  # a list of records: the first shows the structure
        if isinstance(head, dict):
            if _INSPECT_KEYS[0] <= set(head) or _INSPECT_KEYS[1] <= set(head):
                return "inspect"
            if _MT_SINGLE <= set(head) or _MT_PAIR <= set(head):
                return "mt-bench"
            if _LM_EVAL_KEYS <= set(head):
                return "lm-eval"
            if _ALPACAEVAL_MARK <= set(head):
                return "alpacaeval"
    return "table"


def _first_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(1 << 20)
    except (OSError, UnicodeDecodeError):
        return None
    first = text.lstrip().split("\n", 1)[0]
    for candidate in (first, text):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    head = text.lstrip()
    if head.startswith("["):  # a JSON list too long to parse whole: its first record shows the structure
        start = head.find("{")
        try:
            return json.JSONDecoder().raw_decode(head, start)[0] if start > 0 else None
        except json.JSONDecodeError:
            pass
    if text.lstrip().startswith("{") and '"eval"' in text and '"samples"' in text:
        return {"eval": None, "samples": None}  # a large log: its head is enough to tell
    return None


# --------------------------------------------------------------------------- inspect-ai


def _is_inspect_log(path: Path) -> bool:
    if path.suffix.lower() == ".eval":
        return True
    head = _first_json(path) if path.suffix.lower() == ".json" else None
    return isinstance(head, dict) and any(keys <= set(head) for keys in _INSPECT_KEYS)


def _inspect_files(path: str) -> list[str]:
    """The inspect-ai logs (``.eval``, or ``.json`` with a log's keys) a directory (recursively) or a glob names."""
    if Path(path).is_dir():
        found = sorted(str(f) for f in Path(path).rglob("*") if f.suffix.lower() in (".eval", ".json"))
    else:
        found = sorted(f for f in glob.glob(path, recursive=True))
    return [f for f in found if Path(f).is_file() and _is_inspect_log(Path(f))]


def read_inspect_log(path: str):
    """inspect-ai eval logs (a file, or a directory or glob of them) as one row per sample, epoch and scorer
    (and key, for a dict-valued scorer); the model of each row is that of its own log."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise DataError(f"{path}: reading inspect-ai logs needs the inspect extra "
                        "(pip install 'llmcause[inspect]')") from None
    src = str(path)
    if Path(src).is_dir() or any(ch in src for ch in "*?["):
        files = _inspect_files(src)
        if not files:
            raise DataError(f"{src}: holds no inspect-ai logs (.eval, or .json as inspect writes them)")
        rows = [row for f in files for row in _inspect_rows(read_eval_log, f)]
    else:
        rows = _inspect_rows(read_eval_log, src)
    df = pd.DataFrame(rows)
    df.attrs[SOURCE_ATTR] = src
    df.attrs[FORMAT_ATTR] = "inspect"
    return df


def _inspect_rows(read_eval_log, path: str) -> list[dict]:
    try:
        log = read_eval_log(str(path))
    except Exception as exc:  # noqa: BLE001 - inspect raises many types for a broken log
        raise DataError(f"{path}: not a readable inspect-ai log: {str(exc).splitlines()[0][:200]}") from None
    model, task = str(log.eval.model), str(log.eval.task)
    rows = []
    for i, sample in enumerate(log.samples or []):
        for scorer, score in (sample.scores or {}).items():
            values = score.value if isinstance(score.value, dict) else {None: score.value}
            for key, value in values.items():  # a multi-value scorer: one scorer per key
                name = scorer if key is None else f"{scorer}/{key}"
                rows.append({"model": model, "task": task, "sample_id": str(sample.id), "epoch": int(sample.epoch),
                             "scorer": name, "score": _score_value(value, path, i, name), "answer": score.answer})
    if not rows:
        status = getattr(log, "status", "unknown")
        raise DataError(f"{path}: the log holds no scored samples (status {status})")
    return rows


def _score_value(value, path, i, scorer) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.strip().upper() in _LETTERS:
        return _LETTERS[value.strip().upper()]
    raise DataError(f"{path}: sample {i + 1}, scorer {scorer!r}: score {value!r} is not a number "
                    "(nor C, I, P or N)")


# --------------------------------------------------------------------------- MT-Bench


def read_mt_bench(path: str):
    """FastChat MT-Bench judgments (single or pairwise) as one row per judged answer or comparison."""
    df = read_table(path)
    src = str(path)
    cols = set(df.columns)
    out = df.copy()
    if "judge" in cols:
        out["judge"] = [j[0] if isinstance(j, (list, tuple, np.ndarray)) and len(j) else j for j in df["judge"]]
    if _MT_SINGLE <= cols:
        score = pd.to_numeric(df["score"], errors="coerce")
        bad = np.flatnonzero(score.isna().to_numpy() & df["score"].notna().to_numpy())
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{src}: column 'score', row {i + 1}: {str(df['score'].iloc[i])!r} is not a number")
        out["score"] = score.where(score != -1)  # FastChat writes -1 when the judgment could not be parsed
        out_of_range = np.flatnonzero(((out["score"] < 1) | (out["score"] > 10)).to_numpy())
        if out_of_range.size:
            i = int(out_of_range[0])
            raise DataError(f"{src}: column 'score', row {i + 1}: {df['score'].iloc[i]} is outside 1-10")
    elif _MT_PAIR <= cols:
        winners = []
        for i, (g1, g2) in enumerate(zip(df["g1_winner"], df["g2_winner"])):
            for col, v in (("g1_winner", g1), ("g2_winner", g2)):
                if v not in ("model_1", "model_2", "tie", "error"):
                    raise DataError(f"{src}: column {col!r}, row {i + 1}: {v!r} is not model_1, model_2, tie "
                                    "or error")
            winners.append(g1 if g1 == g2 and g1 != "error" else ("tie" if "error" not in (g1, g2) else None))
        out["winner"] = winners
        out["consistent"] = (df["g1_winner"] == df["g2_winner"]).astype(int)
    else:
        need = sorted(_MT_SINGLE - cols) if "score" in cols else sorted(_MT_PAIR - cols)
        raise DataError(f"{src}: not an MT-Bench judgment file: missing column(s) {', '.join(need)}")
    return out


# --------------------------------------------------------------------------- lm-evaluation-harness

_LM_EVAL_KEYS = {"doc_id", "doc", "arguments", "resps", "filtered_resps"}
# keys every samples record carries besides the metric values (older harness versions lack metrics/filter)
_LM_EVAL_FIXED = _LM_EVAL_KEYS | {"target", "filter", "metrics", "doc_hash", "prompt_hash", "target_hash"}
_LM_EVAL_NAME = re.compile(r"^samples_(?P<task>.+)_(?P<date>\d{4}-\d{2}-\d{2}T[\d.-]+)\.jsonl$")


def _lm_eval_files(path: str) -> list[str]:
    """The lm-evaluation-harness samples files a directory (searched recursively) or a glob names."""
    if Path(path).is_dir():
        found = sorted(str(f) for f in Path(path).rglob("samples_*.jsonl"))
    else:
        found = sorted(f for f in glob.glob(path, recursive=True) if Path(f).is_file())
    return [f for f in found if isinstance(head := _first_json(Path(f)), dict) and _LM_EVAL_KEYS <= set(head)]


def read_lm_eval(path: str):
    """lm-evaluation-harness samples (a file, or a directory or glob of them) as one row per sample, metric, filter.

    The scores are the harness's per-sample metric values (``acc``, ``exact_match``, ...), as the
    harness averages them into its results; a metric the harness computes only over the whole corpus
    (its per-sample value is not a number, e.g. BLEU's reference/prediction pair) is refused.
    """
    src = str(path)
    if Path(src).is_dir() or any(ch in src for ch in "*?["):
        files = _lm_eval_files(src)
        if not files:
            raise DataError(f"{src}: holds no lm-evaluation-harness samples files (samples_<task>_<date>.jsonl)")
    elif not Path(src).is_file():
        raise DataError(f"{src}: no such file")
    else:
        files = [src]
    rows = []
    for f in files:
        rows.extend(_lm_eval_rows(f))
    df = pd.DataFrame(rows)
    df.attrs[SOURCE_ATTR] = src
    df.attrs[FORMAT_ATTR] = "lm-eval"
    return df


def _lm_eval_rows(path: str) -> list[dict]:
    p = Path(path)
    match = _LM_EVAL_NAME.match(p.name)
    task = match["task"] if match else p.stem
    model = _lm_eval_model(p, match["date"] if match else None)
    rows = []
    for i, rec in json_lines(p, str(path)):
        for key in ("doc_id", "doc", "filtered_resps"):
            if key not in rec:
                raise DataError(f"{path}: line {i}: key {key!r} is missing (not an lm-evaluation-harness sample)")
        if "metrics" in rec:
            metrics = rec["metrics"]
            if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
                raise DataError(f"{path}: line {i}: key 'metrics' is not a list of metric names")
        else:
            metrics = [k for k in rec if k not in _LM_EVAL_FIXED]
        if not metrics:
            raise DataError(f"{path}: line {i}: the sample holds no metric")
        filt = str(rec.get("filter", "none"))
        doc = rec["doc"] if isinstance(rec["doc"], dict) else {}
        fields = {f"doc.{k}": v for k, v in doc.items() if isinstance(v, (str, int, float, bool)) or v is None}
        resp = rec["filtered_resps"]
        response = resp[0] if isinstance(resp, list) and len(resp) == 1 and isinstance(resp[0], str) else None
        for metric in metrics:
            if metric not in rec:
                raise DataError(f"{path}: line {i}: key {metric!r} is missing (named in 'metrics')")
            rows.append({"model": model, "task": task, "sample_id": rec["doc_id"], "filter": filt, "metric": metric,
                         "scorer": f"{metric},{filt}", "score": _lm_eval_score(rec[metric], path, i, metric),
                         "target": None if rec.get("target") is None else str(rec["target"]),
                         "response": response, **fields})
    if not rows:
        raise DataError(f"{path}: the file holds no samples")
    return rows


def _lm_eval_score(value, path, line: int, metric: str) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    raise DataError(f"{path}: line {line}, key {metric!r}: {shown} is not a number")


def _lm_eval_model(samples: Path, date: str | None) -> str:
    """The model's name from the results file the harness wrote beside the samples, else the folder's name."""
    candidates = [samples.with_name(f"results_{date}.json")] if date else []
    candidates += sorted(samples.parent.glob("results_*.json"))
    for results in candidates:
        try:
            doc = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("model_name"), str) and doc["model_name"]:
            return doc["model_name"]
        config = doc.get("config") if isinstance(doc.get("config"), dict) else {}
        name = _model_from_args(config.get("model_args"))
        if name:
            return name
        if isinstance(config.get("model"), str) and config["model"]:
            return config["model"]
    return samples.parent.name


def _model_from_args(args) -> str | None:
    """The harness's own rule: the first of peft, delta, pretrained, model, path, engine in --model_args."""
    if isinstance(args, str):
        args = dict(part.split("=", 1) for part in args.split(",") if "=" in part)
    if isinstance(args, dict):
        for key in ("peft", "delta", "pretrained", "model", "path", "engine"):
            if args.get(key):
                return str(args[key])
    return None


# --------------------------------------------------------------------------- AlpacaEval


def is_alpacaeval_table(df) -> bool:
    """True when the columns are those of AlpacaEval annotations (by structure, not by values).

    The two outputs and two generators mark the format; a missing instruction or
    preference column is then reported by `read_alpacaeval`.
    """
    return _ALPACAEVAL_MARK <= set(map(str, df.columns))


def read_alpacaeval(source):
    """AlpacaEval annotations as one row per judged pair (see the module docstring for the columns added).

    Preference codes as alpaca_eval writes them: 1 output_1 preferred, 2
    output_2 preferred, values in between soft (1.5 a tie), 0 a draw (read as
    1.5, as alpaca_eval does). Anything else is an error naming the row.
    """
    df = read_table(source)
    src = source_of(df)
    missing = [c for c in ALPACAEVAL_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{src}: not an AlpacaEval annotation file: no column {missing[0]!r} (it needs "
                        f"{', '.join(ALPACAEVAL_COLUMNS)})")
    for col in ("instruction", "generator_1", "generator_2", "output_1", "output_2"):
        blank = df[col].isna().to_numpy().copy()
        if col.startswith("generator"):
            blank |= (df[col].astype(str).str.strip() == "").to_numpy()
        if blank.any():
            i = int(np.flatnonzero(blank)[0])
            what = "answer is missing (an empty answer is written as an empty string)" if col.startswith("output") \
                else "value is missing"
            raise DataError(f"{src}: column {col!r}, row {i + 1}: the {what}")
    for col in ("output_1", "output_2"):
        nested = df[col].map(lambda v: isinstance(v, (list, dict))).to_numpy(dtype=bool)
        if nested.any():  # its length would be that of a Python repr, not of an answer
            i = int(np.flatnonzero(nested)[0])
            raise DataError(f"{src}: column {col!r}, row {i + 1}: the answer is a JSON "
                            f"{'list' if isinstance(df[col].iloc[i], list) else 'object'}, not text")
    raw = df["preference"]
    pref = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    present = raw.notna().to_numpy()
    bad = present & ~((pref == 0) | ((pref >= 1) & (pref <= 2)))  # NaN fails both tests, so text is caught too
    bad |= raw.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)  # true is not preference 1
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{src}: column 'preference', row {i + 1}: {show_value(raw.iloc[i])} is not an AlpacaEval preference "
                        "(1 = output_1 preferred, 2 = output_2, values in between, 0 = draw)")
    out = df.copy()
    out["generator_1"] = df["generator_1"].astype(str)
    out["generator_2"] = df["generator_2"].astype(str)
    out["preference"] = pref
    out["length_1"] = df["output_1"].astype(str).str.len().astype(float)
    out["length_2"] = df["output_2"].astype(str).str.len().astype(float)
    out["p_2"] = np.where(pref == 0, 0.5, pref - 1.0)
    out["position"] = out.groupby("generator_2", sort=False).cumcount()
    warnings = list(df.attrs.get("warnings", ()))
    failed = ~present
    if failed.all():
        raise DataError(f"{src}: column 'preference': every annotation is missing (all {len(df)} rows failed)")
    if failed.any():
        warnings.append(f"{src}: {int(failed.sum())} of {len(df)} annotations have no preference (failed "
                        "annotations) and were left out")
        out = out[~failed].reset_index(drop=True)
    out.attrs.update(df.attrs)
    out.attrs["warnings"] = warnings
    out.attrs["format"] = "alpacaeval"
    return out


# --------------------------------------------------------------------------- Stata


def read_stata(path: str):
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such file")
    try:
        df = pd.read_stata(p, convert_categoricals=True)
    except Exception as exc:  # noqa: BLE001 - pandas raises ValueError or struct errors for broken files
        raise DataError(f"{path}: could not read as Stata .dta: {str(exc).splitlines()[0][:200]}") from None
    if df.shape[0] == 0:
        raise DataError(f"{path}: the table has no data rows")
    return read_table(df, name=str(path))


# --------------------------------------------------------------------------- scorers


def select_scorer(df, scorer: str | None, group: str | None):
    """The rows of one scorer (``--scorer``); refuses to average several scorers' scores into one mean.

    inspect-ai and lm-evaluation-harness files hold one row per sample and scorer (metric and filter);
    a mean over rows of several scorers would mix, e.g., ``acc`` with ``acc_norm``.
    """
    src = str(df.attrs.get(SOURCE_ATTR, "data"))
    if scorer is not None:
        if "scorer" not in df.columns:
            raise DataError(f"{src}: --scorer needs a 'scorer' column (inspect-ai logs and lm-evaluation-harness "
                            "samples have one)")
        known = list(dict.fromkeys(df["scorer"].astype(str)))
        if scorer not in known:
            raise DataError(f"{src}: column 'scorer': no row is scored by {scorer!r} (the file has "
                            f"{', '.join(known[:8])})")
        out = df[df["scorer"].astype(str) == scorer].reset_index(drop=True)
        out.attrs.update(df.attrs)
        return out
    if df.attrs.get(FORMAT_ATTR) in ("inspect", "lm-eval") and {"task", "scorer"} <= set(df.columns):
        series = df["task"].astype(str) + " " + df["scorer"].astype(str)
        by = df[group] if group is not None and group in df.columns else pd.Series(0, index=df.index)
        if (series.groupby(by, sort=False).nunique() > 1).any():
            known = list(dict.fromkeys(series))
            shown = ", ".join(known[:6]) + (", ..." if len(known) > 6 else "")
            raise DataError(f"{src}: the rows hold {len(known)} task and scorer pairs ({shown}), one row per sample "
                            "and scorer; a mean must not mix them: choose one with --scorer NAME (and a file of one "
                            "task), or give --group scorer or --group task")
    return df


# --------------------------------------------------------------------------- labels


def join_labels(scores, labels_path: str, on, label: str):
    """Scores with the ``label`` column of a second file joined by the ``on`` column(s) (a left join: unlabelled
    rows stay).

    ``on`` is one column or several (a list, or names separated by commas, e.g. ``model,sample_id`` for labels
    of each model's answer to a sample); rows match when every one of them agrees (compared as text). Each key
    may appear once in the labels file; a label whose key matches no score row is an error naming its row, so
    a typo cannot silently drop labels.
    """
    labels = read_any(labels_path)
    src = str(labels_path)
    keys = parse_on(on)
    hint = {k: "--on" for k in keys}
    require_columns(scores, keys, option=hint)
    require_columns(labels, keys, option=hint)
    require_columns(labels, [label])
    if label in scores.columns:
        raise DataError(f"{src}: column {label!r} is in both files; rename one")
    ids = _key_of(labels, keys)
    where = f"column {keys[0]!r}" if len(keys) == 1 else "columns " + ", ".join(map(repr, keys))
    dup = np.flatnonzero(ids.duplicated().to_numpy())
    if dup.size:
        i = int(dup[0])
        raise DataError(f"{src}: {where}, row {i + 1}: id {_show_key(ids.iloc[i])} appears twice")
    score_ids = _key_of(scores, keys)
    stray = np.flatnonzero(~ids.isin(set(score_ids)).to_numpy())
    if stray.size:
        i = int(stray[0])
        raise DataError(f"{src}: {where}, row {i + 1}: id {_show_key(ids.iloc[i])} matches no row of the scores")
    mapping = dict(zip(ids, labels[label]))
    out = scores.copy()
    out[label] = [mapping.get(k, np.nan) for k in score_ids]
    out.attrs.update(scores.attrs)
    return out


def parse_on(on) -> list[str]:
    """The key columns of ``--on``: one name, or several separated by commas (each once)."""
    keys = [k.strip() for k in on.split(",")] if isinstance(on, str) else [str(k) for k in on]
    if not keys or any(not k for k in keys):
        raise DataError(f"--on {on}: give column names separated by commas (no empty name)")
    if len(set(keys)) < len(keys):
        raise DataError(f"--on {on}: a column is named twice")
    return keys


def _key_of(df, keys: list[str]):
    """Each row's key as text: the value of a single column, a tuple of values for several."""
    parts = [df[k].astype(str) for k in keys]
    if len(parts) == 1:
        return parts[0].reset_index(drop=True)
    return pd.Series(list(zip(*parts)), dtype=object)


def _show_key(key) -> str:
    return repr(key) if isinstance(key, str) else "(" + ", ".join(map(repr, key)) + ")"
