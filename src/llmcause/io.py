"""Reading tables and checking columns, with errors that name the file, column and row.

Supported inputs: CSV, TSV, JSON Lines, JSON (records or columns), Parquet
(each optionally .gz/.bz2/.xz/.zip compressed, except Parquet), or a pandas
DataFrame. Rows in messages are counted from 1 over the data rows (the
header line is not counted).

Every problem with the user's data raises `DataError`, whose message is one
plain sentence; the command line turns it into exit code 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ._lazy import lazy_module

np = lazy_module("numpy")
pd = lazy_module("pandas")

FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zip")
SOURCE_ATTR = "llmcause_source"
CATEGORICAL_ATTR = "llmcause_categorical"
# Numbers beyond this magnitude overflow sums of squares (variances, least squares); no data needs them.
MAX_ABS_VALUE = 1e150


class DataError(ValueError):
    """Bad user data or usage: one plain message naming the file, column and row."""


def read_table(source: str | os.PathLike | pd.DataFrame, *, name: str | None = None) -> pd.DataFrame:
    """Read a table from a path (format from its extension) or copy a DataFrame.

    The result remembers where it came from (``source_of(df)``) so that later
    column checks can name the file. The caller's DataFrame is never modified.
    """
    if isinstance(source, pd.DataFrame):
        df = source.copy()
        df.attrs[SOURCE_ATTR] = name or source.attrs.get(SOURCE_ATTR, "data")
        _check_unique_columns([str(c) for c in df.columns], df.attrs[SOURCE_ATTR])
        if df.shape[0] == 0:
            raise DataError(f"{df.attrs[SOURCE_ATTR]}: the table has no rows")
        return df
    path = Path(source)
    label = name or str(source)
    if not path.exists():
        raise DataError(f"{label}: no such file")
    if path.is_dir():
        raise DataError(f"{label}: is a directory, not a data file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{label}: permission denied")
    if path.stat().st_size == 0:
        raise DataError(f"{label}: the file is empty")
    if path.suffix.lower() == ".dta":  # Stata, as classic causal data sets ship
        from .formats import read_stata

        return read_stata(path) if name is None else read_table(read_stata(path), name=name)
    fmt = _format_of(path, label)
    try:
        if fmt == "csv":
            _check_header_names(path, label, ",")
            df = pd.read_csv(path)
        elif fmt == "tsv":
            _check_header_names(path, label, "\t")
            df = pd.read_csv(path, sep="\t")
        elif fmt == "jsonl":
            df = _read_jsonl(path, label)
        elif fmt == "json":
            df = _read_json(path, label)
        else:
            df = pd.read_parquet(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{label}: the file has no columns") from None
    except UnicodeDecodeError:
        raise DataError(f"{label}: the file is not text in UTF-8 (is it really {fmt.upper()}?)") from None
    except (pd.errors.ParserError, ValueError, OSError, ImportError) as exc:
        raise DataError(f"{label}: could not read as {fmt.upper()}: {_first_line(exc)}") from None
    except Exception as exc:  # pyarrow raises its own types for corrupt files
        raise DataError(f"{label}: could not read as {fmt.upper()}: {_first_line(exc)}") from None
    if df.shape[0] == 0:
        raise DataError(f"{label}: the table has no data rows")
    if fmt in ("csv", "tsv"):
        _check_not_truncated(path, label, "," if fmt == "csv" else "\t", df.shape[1], df.shape[0])
    df.columns = [str(c) for c in df.columns]
    _check_unique_columns(df.columns, label)
    df.attrs[SOURCE_ATTR] = label
    return df


def source_of(df: pd.DataFrame) -> str:
    """The name of the file (or ``data``) a table was read from."""
    return str(df.attrs.get(SOURCE_ATTR, "data"))


def parse_list(text: str | None, option: str = "") -> list[str]:
    """Split ``"a,b, c"`` into names; empty pieces are an error."""
    if text is None:
        return []
    parts = [p.strip() for p in str(text).split(",")]
    if any(p == "" for p in parts):
        raise DataError(f"{option or 'list'}: empty name in {text!r}")
    return parts


def require_columns(df: pd.DataFrame, columns: Iterable[str], *, option: dict[str, str] | None = None) -> None:
    """Raise DataError naming the first column that the table lacks."""
    src = source_of(df)
    for col in columns:
        if col not in df.columns:
            hint = f" (given to {option[col]})" if option and col in option else ""
            available = ", ".join(map(str, list(df.columns)[:12]))
            more = ", ..." if df.shape[1] > 12 else ""
            raise DataError(f"{src}: no column {col!r}{hint}; the columns are: {available}{more}")


def numeric_column(df: pd.DataFrame, col: str, *, allow_missing: bool = False, lower: float | None = None,
                   upper: float | None = None, lower_open: bool = False, upper_open: bool = False,
                   what: str = "a number") -> np.ndarray:
    """The column as float64, checked: numbers only, finite, optional bounds.

    Missing cells are an error unless ``allow_missing`` (then they are NaN).
    Bounds are inclusive unless ``lower_open``/``upper_open``.
    """
    require_columns(df, [col])
    src = source_of(df)
    raw = df[col]
    if raw.dtype == bool:
        values = raw.to_numpy(dtype=float)
    else:
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    present = raw.notna().to_numpy()
    bad = np.flatnonzero(present & np.isnan(values))
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{src}: column {col!r}, row {i + 1}: {show_value(raw.iloc[i])} is not {what}")
    missing = np.flatnonzero(~present)
    if missing.size and not allow_missing:
        raise DataError(f"{src}: column {col!r}, row {int(missing[0]) + 1}: value is missing "
                        f"({missing.size} missing in all)")
    inf = np.flatnonzero(np.isinf(values))
    if inf.size:
        raise DataError(f"{src}: column {col!r}, row {int(inf[0]) + 1}: value is infinite (or too large to "
                        "hold as a number)")
    huge = np.flatnonzero(np.abs(np.nan_to_num(values)) > MAX_ABS_VALUE)
    if huge.size:
        i = int(huge[0])
        raise DataError(f"{src}: column {col!r}, row {i + 1}: {values[i]:g} is too large to compute with "
                        f"(|value| must be at most {MAX_ABS_VALUE:g}; rescale the column)")
    finite = ~np.isnan(values)
    if lower is not None:
        out = finite & ((values <= lower) if lower_open else (values < lower))
        _raise_first(out, values, src, col, f"{'above' if lower_open else 'at least'} {lower:g}")
    if upper is not None:
        out = finite & ((values >= upper) if upper_open else (values > upper))
        _raise_first(out, values, src, col, f"{'below' if upper_open else 'at most'} {upper:g}")
    return values


_TRUE = {"1", "1.0", "true", "t", "yes", "y"}
_FALSE = {"0", "0.0", "false", "f", "no", "n"}


def binary_column(df: pd.DataFrame, col: str, *, allow_missing: bool = False) -> np.ndarray:
    """The column as 0/1 floats. Accepts booleans, 0/1 numbers and true/false, yes/no text."""
    require_columns(df, [col])
    src = source_of(df)
    raw = df[col]
    present = raw.notna().to_numpy()
    missing = np.flatnonzero(~present)
    if missing.size and not allow_missing:
        raise DataError(f"{src}: column {col!r}, row {int(missing[0]) + 1}: value is missing")
    out = np.full(raw.shape[0], np.nan)
    if raw.dtype == bool:
        return raw.to_numpy(dtype=float)
    numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
    text = raw.astype(str).str.strip().str.lower().to_numpy()
    is_true = np.where(np.isnan(numeric), np.isin(text, list(_TRUE)), numeric == 1)
    is_false = np.where(np.isnan(numeric), np.isin(text, list(_FALSE)), numeric == 0)
    bad = np.flatnonzero(present & ~is_true & ~is_false)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{src}: column {col!r}, row {i + 1}: {show_value(raw.iloc[i])} is not binary (use 0/1 or true/false)")
    out[is_true & present] = 1.0
    out[is_false & present] = 0.0
    return out


def label_column(df: pd.DataFrame, col: str, *, allow_missing: bool = False) -> np.ndarray:
    """The column as labels (strings), checked for missing values."""
    require_columns(df, [col])
    src = source_of(df)
    raw = df[col]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size and not allow_missing:
        raise DataError(f"{src}: column {col!r}, row {int(missing[0]) + 1}: value is missing")
    # each distinct value turned into text once (a Python call per row cost 0.07 s for 200,000 rows)
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    names = np.array([str(v) for v in uniques] + [np.nan], dtype=object)
    return names[codes]  # a missing value's code is -1: the NaN at the end (allow_missing)


def mark_categorical(df: pd.DataFrame, columns: Iterable[str], option: str = "--categorical") -> pd.DataFrame:
    """Record that ``columns`` hold categories (one-hot encoded even when their values are numbers).

    The table remembers the list, so covariate checks further down use it;
    returns ``df`` (changed in place: it is a table llmcause read itself).
    """
    columns = list(columns)
    require_columns(df, columns, option={c: option for c in columns})
    df.attrs[CATEGORICAL_ATTR] = sorted(set(df.attrs.get(CATEGORICAL_ATTR, [])) | set(columns))
    return df


def categorical_columns(df: pd.DataFrame) -> list[str]:
    """The columns the user declared categorical (see `mark_categorical`)."""
    return list(df.attrs.get(CATEGORICAL_ATTR, []))


def covariate_kind(df: pd.DataFrame, col: str, categorical: Iterable[str] | None = None) -> str:
    """``"numeric"`` or ``"categorical"``, from the user's declaration and the column's type; never a guess.

    Categorical: listed in ``categorical`` (or `mark_categorical`), a pandas
    category column, or text only. Numeric: numbers (or booleans) only. A
    column of numbers with some text in it (or the reverse) is an error naming
    the first odd row: one stray "unknown" must not turn a number into dummies.
    """
    listed = set(categorical_columns(df) if categorical is None else categorical)
    raw = df[col]
    if col in listed or isinstance(raw.dtype, pd.CategoricalDtype):
        return "categorical"
    if raw.dtype == bool or pd.api.types.is_numeric_dtype(raw.dtype):
        return "numeric"
    present = raw.notna().to_numpy()
    is_number = pd.to_numeric(raw, errors="coerce").notna().to_numpy()
    if is_number[present].all():
        return "numeric"
    if not is_number[present].any():
        return "categorical"
    src = source_of(df)
    if is_number[present].mean() >= 0.5:
        i = int(np.flatnonzero(present & ~is_number)[0])
        what = "is not a number, but the column's other values are numbers"
    else:
        i = int(np.flatnonzero(is_number)[0])
        what = "is a number, but the column's other values are text"
    raise DataError(f"{src}: column {col!r}, row {i + 1}: {show_value(raw.iloc[i])} {what}; fix the value, or list the "
                    "column in --categorical to treat its values as categories")


def covariate_matrix(df: pd.DataFrame, columns: Sequence[str],
                     categorical: Iterable[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Covariates as a float matrix; categorical columns one-hot encoded (first level dropped).

    Which columns are categorical follows `covariate_kind` (declared, or
    text only); a numeric column with a stray text value is an error. Missing
    or infinite values are errors naming the column and row. Returns the
    matrix and the names of its columns.
    """
    require_columns(df, columns)
    src = source_of(df)
    blocks, names = [], []
    for col in columns:
        raw = df[col]
        missing = np.flatnonzero(raw.isna().to_numpy())
        if missing.size:
            raise DataError(f"{src}: column {col!r}, row {int(missing[0]) + 1}: value is missing")
        if covariate_kind(df, col, categorical) == "numeric":
            blocks.append(numeric_column(df, col)[:, None])
            names.append(col)
            continue
        text = raw.astype(str).to_numpy()
        levels = sorted(set(text))
        if len(levels) > 200:
            raise DataError(f"{src}: column {col!r} has {len(levels)} distinct categories (too many to one-hot "
                            "encode)")
        for level in levels[1:]:
            blocks.append((text == level).astype(float)[:, None])
            names.append(f"{col}={level}")
    if not blocks:
        return np.zeros((df.shape[0], 0)), []
    return np.hstack(blocks), names


def shared_covariates(source: pd.DataFrame, target: pd.DataFrame, columns: Sequence[str],
                      option: str = "--covariates") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The same covariates from a source and a target table, encoded together (one-hot levels shared).

    Each table is checked on its own first, so errors name its file, column and
    row; a column that is numeric in one table must be numeric in the other.
    """
    columns = list(columns)
    if not columns:
        raise DataError(f"--target needs {option}: the columns that describe a row in both tables")
    for df in (source, target):
        require_columns(df, columns, option={c: option for c in columns})
        if df.shape[0] == 0:
            raise DataError(f"{source_of(df)}: the table has no rows")
    for col in columns:
        kinds = []
        for df in (source, target):
            covariate_matrix(df, [col])  # missing or infinite values, named by file and row
            kinds.append(bool(pd.to_numeric(df[col], errors="coerce").notna().all()))
        if kinds[0] != kinds[1]:
            df = target if kinds[0] else source
            i = int(np.flatnonzero(pd.to_numeric(df[col], errors="coerce").isna().to_numpy())[0])
            raise DataError(f"{source_of(df)}: column {col!r}, row {i + 1}: {show_value(df[col].iloc[i])} is not a "
                            "number, but the column is numeric in the other table")
    pooled = pd.concat([source[columns], target[columns]], ignore_index=True)
    X, names = covariate_matrix(pooled, columns)
    return X[:source.shape[0]], X[source.shape[0]:], names


def time_column(df: pd.DataFrame, col: str) -> tuple[np.ndarray, bool]:
    """A time column as float (seconds since the epoch for dates) and whether it held dates.

    Every cell must be a number, or every cell a date; the first that is
    neither is named by file, column and row.
    """
    require_columns(df, [col], option={col: "--time"})
    raw = df[col]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if missing.size:
        raise DataError(f"{source_of(df)}: column {col!r}, row {int(missing[0]) + 1}: time is missing")
    as_num = pd.to_numeric(raw, errors="coerce")
    if as_num.notna().all():
        return numeric_column(df, col), False
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns when it cannot infer one date format
        as_date = pd.to_datetime(raw, errors="coerce", utc=True)
    bad = np.flatnonzero(as_date.isna().to_numpy())
    if bad.size:
        # name a cell that fails the reading most cells agree on (numbers or dates)
        bad_num = np.flatnonzero(as_num.isna().to_numpy())
        i = int(bad_num[0] if bad_num.size < bad.size else bad[0])
        raise DataError(f"{source_of(df)}: column {col!r}, row {i + 1}: {show_value(raw.iloc[i])} is neither a number nor "
                        "a date")
    seconds = (as_date - pd.Timestamp("1970-01-01", tz="UTC")) / pd.Timedelta(seconds=1)
    return seconds.to_numpy(dtype=float), True


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file all at once: a temporary file in the same folder, then a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def check_output_path(path: str | os.PathLike | None, option: str, inputs: Iterable = ()) -> None:
    """Fail early (before any work) when an output file cannot be written or would replace an input.

    ``inputs`` are the files the command reads (paths or other strings such
    as ``example:arena``, which are ignored): writing over one of them is
    refused, so a user's data is never replaced by a report.
    """
    if path is None:
        return
    p = Path(path)
    for source in inputs:
        if source is None or isinstance(source, pd.DataFrame):
            continue
        if _same_file(p, source) or any(_same_file(p, f) for f in _dataset_files(source)):
            raise DataError(f"{option} {path}: is an input file of this command; choose another path")
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise DataError(f"{option} {path}: is a directory")
    if not parent.exists():
        raise DataError(f"{option} {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise DataError(f"{option} {path}: folder {parent} is not writable")


def check_outputs(outputs: Mapping[str, str | os.PathLike | None], inputs: Iterable = ()) -> None:
    """`check_output_path` for each ``{option: path}``, and no two outputs the same file."""
    inputs = list(inputs)
    seen: list[tuple[str, Path]] = []
    for option, path in outputs.items():
        check_output_path(path, option, inputs)
        if path is None:
            continue
        for other_option, other in seen:
            if _same_path(Path(path), other):
                raise DataError(f"{option} {path}: is also the path given to {other_option}; choose another path")
        seen.append((option, Path(path)))


# --------------------------------------------------------------------------- helpers


def _same_path(a: Path, b: Path) -> bool:
    """Whether two paths name the same file (existing or not)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)


def _dataset_files(source) -> list[str]:
    """The files a directory or a glob input stands for (as the out-of-core scanner or the lm-eval reader reads
    them); none for a plain path."""
    import fnmatch
    import glob

    s = str(source)
    if any(ch in s for ch in "*?["):
        files = [f for f in glob.glob(s, recursive=True) if os.path.isfile(f)]
        beside = {str(r) for f in files if fnmatch.fnmatch(Path(f).name, "samples_*.jsonl")
                  for r in Path(f).parent.glob("results_*.json")}  # read for the model's name
        return files + sorted(beside)
    if os.path.isdir(s):  # a Parquet dataset, lm-evaluation-harness output (samples and the results beside them)
        return [str(f) for f in Path(s).rglob("*") if f.is_file() and (  # or inspect-ai logs (.eval, .json)
            f.suffix in (".parquet", ".pq", ".eval", ".json") or fnmatch.fnmatch(f.name, "samples_*.jsonl")
            or fnmatch.fnmatch(f.name, "results_*.json"))]
    return []


def _same_file(output: Path, source) -> bool:
    """Whether ``output`` is the existing file ``source`` (through links, case-insensitive file systems, ...)."""
    try:
        src = Path(source)
        return output.exists() and src.exists() and os.path.samefile(output, src)
    except (OSError, TypeError, ValueError):
        return False


def _format_of(path: Path, label: str) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in FORMATS:
        raise DataError(f"{label}: unknown file type {ext or '(none)'!r}; use .csv, .tsv, .jsonl, .json or .parquet")
    return FORMATS[ext]


def _open_text(path: Path):
    import bz2
    import gzip
    import lzma

    ext = path.suffix.lower()
    if ext == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if ext == ".bz2":
        return bz2.open(path, "rt", encoding="utf-8")
    if ext == ".xz":
        return lzma.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def json_lines(path: Path, label: str):
    """Yield (line number, record) for each non-blank line of a JSON Lines file (plain or compressed); a line
    that is not a JSON object, or repeats a key, is an error naming the file (as ``label``) and the line."""
    try:
        with _open_text(Path(path)) as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line, object_pairs_hook=_unique_keys)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{label}: line {lineno} is not valid JSON ({exc.msg})") from None
                except _DuplicateKey as exc:
                    raise DataError(f"{label}: line {lineno}: key {exc.key!r} appears twice in one record") from None
                if not isinstance(rec, dict):
                    raise DataError(f"{label}: line {lineno} is not a JSON object")
                yield lineno, rec
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{label}: could not read: {exc}") from None


def _read_jsonl(path: Path, label: str) -> pd.DataFrame:
    if path.suffix.lower() == ".zip":
        return pd.read_json(path, lines=True)
    records = [rec for _, rec in json_lines(path, label)]
    if not records:
        raise DataError(f"{label}: the file has no records")
    return pd.DataFrame.from_records(records)


def _read_json(path: Path, label: str) -> pd.DataFrame:
    if path.suffix.lower() == ".zip":
        return pd.read_json(path)
    with _open_text(path) as fh:
        try:
            obj = json.load(fh)
        except json.JSONDecodeError as exc:
            raise DataError(f"{label}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if isinstance(obj, list):
        if not all(isinstance(r, dict) for r in obj):
            bad = next(i for i, r in enumerate(obj) if not isinstance(r, dict))
            raise DataError(f"{label}: record {bad + 1} is not a JSON object")
        return pd.DataFrame.from_records(obj)
    if isinstance(obj, dict):
        if all(isinstance(v, list) for v in obj.values()):
            lengths = {len(v) for v in obj.values()}
            if len(lengths) > 1:
                raise DataError(f"{label}: the columns have different lengths {sorted(lengths)}")
            return pd.DataFrame(obj)
        for key in ("records", "data", "rows"):
            if isinstance(obj.get(key), list):
                return pd.DataFrame.from_records(obj[key])
    raise DataError(f"{label}: expected a list of records or an object of columns")


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list) -> dict:
    """json object hook: a key given twice in one record is an error, not a silent overwrite."""
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


def _check_header_names(path: Path, label: str, sep: str) -> None:
    """A CSV/TSV header naming a column twice is an error (pandas would silently rename it ``name.1``)."""
    try:
        head = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return  # read_table reports the file as having no columns
    _check_unique_columns([str(v) for v in head.iloc[0].tolist()], label)


def _check_not_truncated(path: Path, label: str, sep: str, n_columns: int, n_rows: int) -> None:
    """A file that stops mid-row (no final line end, fewer fields than the header) is an error, not a row of NaN."""
    import csv

    if path.suffix.lower() in _COMPRESSION:
        return
    with open(path, "rb") as fh:
        fh.seek(max(0, path.stat().st_size - 65536))
        tail = fh.read()
    if not tail or tail.endswith((b"\n", b"\r")):
        return
    last = tail.splitlines()[-1].decode("utf-8", errors="replace")
    fields = next(csv.reader([last], delimiter=sep), [])
    if len(fields) < n_columns:
        raise DataError(f"{label}: row {n_rows}: the file ends mid-row ({len(fields)} of {n_columns} fields, no line "
                        "end); it looks truncated")


def _check_unique_columns(names: Sequence[str], label: str) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(f"{label}: column {name!r} appears twice in the header (columns {seen[name] + 1} and "
                            f"{i + 1}); give each column its own name")
        seen[name] = i


def _raise_first(mask: np.ndarray, values: np.ndarray, src: str, col: str, bound: str) -> None:
    bad = np.flatnonzero(mask)
    if bad.size:
        i = int(bad[0])
        raise DataError(f"{src}: column {col!r}, row {i + 1}: {values[i]:g} is out of range (must be {bound})")


def show_value(value) -> str:
    """A cell value as a user would write it: text quoted, numbers plain (no numpy reprs)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, str) else str(value)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
