"""Readers for the files evaluation tools write, into one flat table per file.

Each format is chosen with ``--format NAME`` or recognised by the file's own
structure (an ``.eval`` or ``.dta`` suffix, or the keys of its JSON records),
never by guessing from values:

- ``inspect``: inspect-ai eval logs (``.eval`` and ``.json``), read with
  inspect-ai's own ``read_eval_log`` (optional extra ``inspect``). One row per
  sample, epoch and scorer: model, task, sample_id, epoch, scorer, score
  (numeric; C/I/P/N letters as 1/0/0.5/0), answer.
- ``mt-bench``: FastChat MT-Bench judgments. Single grading
  (``question_id, model, judge, score, turn``) gives one row per answer with
  its 1-10 score (a score of -1, FastChat's "could not parse", becomes empty);
  pairwise (``question_id, model_1, model_2, g1_winner, g2_winner, judge,
  turn``) gives one row per comparison with ``winner`` in model_1 / model_2 /
  tie and ``consistent`` (both orders agree).
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

import json
from pathlib import Path

from ._lazy import lazy_module
from .io import SOURCE_ATTR, DataError, read_table, require_columns, source_of

np = lazy_module("numpy")
pd = lazy_module("pandas")

FORMATS = ("auto", "table", "inspect", "mt-bench", "stata", "alpacaeval")
ALPACAEVAL_COLUMNS = ("instruction", "output_1", "output_2", "generator_1", "generator_2", "preference")
_ALPACAEVAL_MARK = {"output_1", "output_2", "generator_1", "generator_2"}  # these four tell the format
_MT_SINGLE = {"question_id", "model", "judge", "score", "turn"}
_MT_PAIR = {"question_id", "model_1", "model_2", "g1_winner", "g2_winner", "turn"}
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
    if kind == "stata":
        return read_stata(path)
    if kind == "alpacaeval":
        return read_alpacaeval(path)
    df = read_table(path)
    if fmt == "auto" and is_alpacaeval_table(df):
        return read_alpacaeval(df)
    return df


def detect_format(path: str) -> str:
    """The format a file's structure shows: its suffix, or the keys of its first JSON record."""
    p = Path(path)
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
            if {"eval", "samples"} <= set(head) or {"version", "eval", "status"} <= set(head):
                return "inspect"
            if _MT_SINGLE <= set(head) or _MT_PAIR <= set(head):
                return "mt-bench"
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


def read_inspect_log(path: str):
    """An inspect-ai eval log as one row per sample, epoch and scorer."""
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise DataError(f"{path}: reading inspect-ai logs needs the inspect extra "
                        "(pip install 'llmcause[inspect]')") from None
    try:
        log = read_eval_log(str(path))
    except Exception as exc:  # noqa: BLE001 - inspect raises many types for a broken log
        raise DataError(f"{path}: not a readable inspect-ai log: {str(exc).splitlines()[0][:200]}") from None
    model, task = str(log.eval.model), str(log.eval.task)
    rows = []
    for i, sample in enumerate(log.samples or []):
        for scorer, score in (sample.scores or {}).items():
            rows.append({"model": model, "task": task, "sample_id": str(sample.id), "epoch": int(sample.epoch),
                         "scorer": scorer, "score": _score_value(score.value, path, i, scorer),
                         "answer": score.answer})
    if not rows:
        status = getattr(log, "status", "unknown")
        raise DataError(f"{path}: the log holds no scored samples (status {status})")
    df = pd.DataFrame(rows)
    df.attrs[SOURCE_ATTR] = str(path)
    return df


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
    raw = df["preference"]
    pref = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    present = raw.notna().to_numpy()
    bad = present & ~((pref == 0) | ((pref >= 1) & (pref <= 2)))  # NaN fails both tests, so text is caught too
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{src}: column 'preference', row {i + 1}: {raw.iloc[i]!r} is not an AlpacaEval preference "
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


# --------------------------------------------------------------------------- labels


def join_labels(scores, labels_path: str, on: str, label: str):
    """Scores with the ``label`` column of a second file joined by ``on`` (a left join: unlabelled rows stay).

    Each id may appear once in the labels file; a label whose id matches no
    score row is an error naming its row, so a typo cannot silently drop labels.
    """
    labels = read_any(labels_path)
    src = str(labels_path)
    require_columns(scores, [on])
    require_columns(labels, [on, label])
    if label in scores.columns:
        raise DataError(f"{src}: column {label!r} is in both files; rename one")
    ids = labels[on].astype(str)
    dup = np.flatnonzero(ids.duplicated().to_numpy())
    if dup.size:
        raise DataError(f"{src}: column {on!r}, row {int(dup[0]) + 1}: id {ids.iloc[int(dup[0])]!r} appears twice")
    known = set(scores[on].astype(str))
    stray = np.flatnonzero(~ids.isin(known).to_numpy())
    if stray.size:
        raise DataError(f"{src}: column {on!r}, row {int(stray[0]) + 1}: id {ids.iloc[int(stray[0])]!r} matches no "
                        "row of the scores")
    mapping = dict(zip(ids, labels[label]))
    out = scores.copy()
    out[label] = [mapping.get(k, np.nan) for k in scores[on].astype(str)]
    out.attrs.update(scores.attrs)
    return out
