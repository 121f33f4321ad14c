"""Scanning Parquet logs larger than memory: a file, a directory of files or a glob, in record batches.

The local engine reads one file (fragment) at a time with pyarrow.dataset,
only the columns asked for, in batches of at most ``batch_rows`` rows, and
hands each batch to one of `local_threads` worker threads (``LLMCAUSE_THREADS``,
default the usable CPUs up to 8) while it reads the next; results are consumed
in batch order, so they merge, and errors surface, exactly as with one thread.
At most threads + 1 batches are held at once, so memory stays bounded by a few
batches (plus a row group being decoded) whatever the size of the log. Each
batch knows its file and the row number of its first row, so bad values are
reported by file, column and row. While batches are worked on, glibc's malloc
keeps the memory that a batch's arrays freed for the next (`reused_heap`).

The Ray engine cuts the log into units of whole row groups (read from the
footers on the driver; a row group larger than a unit is cut into runs of its
batches) and runs one Ray Data task per unit (`ray.data.range`
over the units and `map_batches`). Each task reads its row groups with the
local engine's reader (the same batches, label columns from Parquet's
dictionary pages) and applies the same partition function to every batch; the
results come back to the driver in file and row order, so the caller merges
them exactly as the local engine does and both engines give the same numbers.
(`ray.data.read_parquet` was measured at 2 to 5 s of fixed cost per
execution in Ray 2.60, which starts a pool of footer-reading actors every time,
and it decodes label columns to strings; see BENCHMARKS.md.)
"""

from __future__ import annotations

import contextlib
import functools
import glob
import itertools
import os
import pickle
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .io import DataError

DEFAULT_BATCH_ROWS = 262_144
ENGINES = ("local", "ray")
_GLOB = set("*?[")


def is_uri(path) -> bool:
    """A filesystem URI such as ``s3://bucket/logs/`` or ``gs://...`` (read through pyarrow.fs), not a local path."""
    s = str(path)
    scheme, sep, _ = s.partition("://")
    return bool(sep) and scheme.isidentifier() and len(scheme) > 1  # "C://" is a Windows drive, not a scheme


_SECRET_OPTION = re.compile(r"([?&][^=&]*(?:key|secret|token|password|credential)[^=&]*=)[^&]*", re.IGNORECASE)


def redact_uri(text: str) -> str:
    """``text`` with a URI's credentials hidden: the ``user:secret@`` part and options whose names speak of
    keys, secrets, tokens or passwords (messages, progress bars and reports show the rest)."""
    text = re.sub(r"\b([A-Za-z][A-Za-z0-9+.-]+://)[^/@\s]*@", r"\1***@", str(text))
    return _SECRET_OPTION.sub(r"\1***", text)


def is_dataset_path(path) -> bool:
    """A directory, a glob or a filesystem URI: inputs that only the out-of-core engines read."""
    s = str(path)
    return is_uri(s) or os.path.isdir(s) or any(ch in _GLOB for ch in s)


@dataclass
class Batch:
    """Some rows of one file: ``columns`` maps a name to a pyarrow array; ``start`` is the row (0-based) of
    the first one in ``file`` (None when a row filter was applied)."""

    file: str
    start: int | None
    columns: dict

    @property
    def n(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def row(self, i: int) -> str:
        return "" if self.start is None else f", row {self.start + int(i) + 1}"


class ParquetDataset:
    """A Parquet file, a directory of Parquet files (searched recursively) or a glob of them; locally or at a
    filesystem URI that pyarrow.fs reads (``s3://bucket/logs/``, ``s3://bucket/logs/*.parquet``, ``gs://...``,
    ``hdfs://...``; options such as ``?region=...&endpoint_override=...`` after the path, credentials from the
    environment as pyarrow finds them)."""

    def __init__(self, path: str | os.PathLike):
        import pyarrow.dataset as pds

        self.label = redact_uri(path) if is_uri(path) else str(path)  # messages never show a URI's secrets
        self.filesystem, files = _resolve_uri(str(path)) if is_uri(path) else (None, _resolve(self.label))
        self.files = files
        try:
            self._ds = pds.dataset(files, format="parquet", filesystem=self.filesystem)
            self.schema = self._ds.schema
        except Exception as exc:  # pyarrow's own errors for corrupt or mismatched files
            raise DataError(f"{self.label}: could not read as Parquet: {str(exc).splitlines()[0]}") from None

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def require(self, columns: Sequence[str], option: dict[str, str] | None = None) -> None:
        for col in columns:
            if col not in self.schema.names:
                hint = f" (given to {option[col]})" if option and col in option else ""
                shown = ", ".join(self.columns[:12]) + (", ..." if len(self.columns) > 12 else "")
                raise DataError(f"{self.label}: no column {col!r}{hint}; the columns are: {shown}")

    def count_rows(self) -> int:
        return int(sum(f.count_rows() for f in self._ds.get_fragments()))

    def batches(self, columns: Sequence[str], batch_rows: int = DEFAULT_BATCH_ROWS, filter=None,
                dictionary: Sequence[str] = ()) -> Iterator[Batch]:
        """Batches of the given columns, file by file, in file order, with no read-ahead. Columns named in
        ``dictionary`` (labels: few distinct values) come as Arrow dictionary arrays straight from Parquet's
        dictionary pages, so `labels` need not hash every value."""
        cols = list(dict.fromkeys(columns))
        for frag in self._fragments(cols, dictionary):
            yield from _fragment_batches(frag, cols, batch_rows, filter, 0)

    def _fragments(self, cols: Sequence[str], dictionary: Sequence[str]):
        return _format_dataset(self.files, self.schema, cols, dictionary, self.filesystem).get_fragments()


def _format_dataset(files, schema, cols, dictionary, filesystem=None):
    """A pyarrow dataset of ``files`` that reads the text columns among ``dictionary`` as dictionary arrays."""
    import pyarrow.dataset as pds

    wanted = {c for c in dictionary if c in cols and _is_text(schema.field(c).type)}
    if not wanted:
        return pds.dataset(files, format="parquet", filesystem=filesystem)
    fmt = pds.ParquetFileFormat(read_options=pds.ParquetReadOptions(dictionary_columns=wanted))
    return pds.dataset(files, format=fmt, filesystem=filesystem)


def _resolve_uri(uri: str):
    """(pyarrow filesystem, Parquet files) of a URI naming a file, a directory (searched recursively) or a glob
    (``*`` and ``[...]`` in the path; a ``?`` starts the URI's options, as pyarrow reads them)."""
    import fnmatch

    from pyarrow import fs as pafs

    shown = redact_uri(uri)
    head, _, query = uri.partition("?")
    scheme, _, rest = head.partition("://")
    glob_at = min((i for i, ch in enumerate(rest) if ch in "*["), default=-1)
    base = rest if glob_at < 0 else rest[:rest.rfind("/", 0, glob_at) + 1]
    try:
        filesystem, root = pafs.FileSystem.from_uri(f"{scheme}://{base}" + (f"?{query}" if query else ""))
        if glob_at >= 0 or base.endswith("/"):
            info = None
        else:
            info = filesystem.get_file_info(root)
            if info.type == pafs.FileType.NotFound:
                raise DataError(f"{shown}: no such file or directory")
        if info is not None and info.type == pafs.FileType.File:
            files = [root]
        else:
            listed = filesystem.get_file_info(pafs.FileSelector(root.rstrip("/"), recursive=True,
                                                                allow_not_found=True))
            files = sorted(f.path for f in listed if f.type == pafs.FileType.File)
            if glob_at >= 0:
                # the pattern in the filesystem's own terms: its root, then the URI's path after the base
                pattern = root.rstrip("/") + "/" + rest[len(base):]
                files = [f for f in files if fnmatch.fnmatchcase(f, pattern)]
                if not files:
                    raise DataError(f"{shown}: no file matches this pattern")
            else:
                files = [f for f in files if Path(f).suffix in (".parquet", ".pq")]
                if not files:
                    raise DataError(f"{shown}: no .parquet files there")
    except DataError:
        raise
    except Exception as exc:  # unknown scheme, no credentials, unreachable endpoint: pyarrow's first line
        why = redact_uri(str(exc).splitlines()[0]) if str(exc) else type(exc).__name__
        raise DataError(f"{shown}: could not open: {why}") from None
    bad = [f for f in files if Path(f).suffix not in (".parquet", ".pq")]
    if bad:
        raise DataError(f"{bad[0]}: only Parquet files can be scanned out of core (.parquet or .pq)")
    return filesystem, files


def _fragment_batches(frag, cols, batch_rows, filter, start: int) -> Iterator[Batch]:
    """One fragment's batches (a batch never spans two row groups, so a run of row groups read alone gives the
    same batches as the whole file); ``start``: the file row of the fragment's first row."""
    try:
        missing = [c for c in cols if c not in frag.physical_schema.names]
    except Exception:  # noqa: BLE001 - an unreadable footer is reported below, as any other read error
        missing = []
    if missing:  # the dataset's schema is its first file's: another file may lack a column
        raise DataError(f"{frag.path}: no column {missing[0]!r} (the dataset's other files have it)")
    try:
        it = frag.to_batches(columns=cols, batch_size=batch_rows, batch_readahead=0, fragment_readahead=0,
                             filter=filter, memory_pool=_read_pool())
        for rb in it:
            if rb.num_rows:
                yield Batch(frag.path, None if filter is not None else start, {c: rb.column(c) for c in cols})
            start += rb.num_rows
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{frag.path}: could not read as Parquet: {str(exc).splitlines()[0]}") from None


@functools.lru_cache(maxsize=1)
def _read_pool():
    """Arrow's jemalloc pool where the wheel has it (its first scan in a process took 0.16 s for 10^7 router rows
    against 0.41 to 0.47 s with the default mimalloc pool, later scans 0.11 against 0.13 s), else the default."""
    import pyarrow as pa

    try:
        return pa.jemalloc_memory_pool()
    except (NotImplementedError, AttributeError):
        return None


def _is_text(t) -> bool:
    import pyarrow.types as pt

    return pt.is_string(t) or pt.is_large_string(t) or pt.is_binary(t) or pt.is_large_binary(t)


def _resolve(path: str) -> list[str]:
    if any(ch in _GLOB for ch in path):
        files = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
        if not files:
            raise DataError(f"{path}: no file matches this pattern")
    elif os.path.isdir(path):
        files = sorted(str(p) for p in Path(path).rglob("*") if p.is_file() and p.suffix in (".parquet", ".pq"))
        if not files:
            raise DataError(f"{path}: the directory holds no .parquet files")
    elif os.path.isfile(path):
        files = [path]
    else:
        raise DataError(f"{path}: no such file or directory")
    bad = [f for f in files if Path(f).suffix not in (".parquet", ".pq")]
    if bad:
        raise DataError(f"{bad[0]}: only Parquet files can be scanned out of core (.parquet or .pq)")
    return files


# --------------------------------------------------------------------------- engines


def run_partitions(dataset: ParquetDataset, columns: Sequence[str], fn: Callable[[Batch], object],
                   consume: Callable[[object], None], *, engine: str = "local", address: str | None = None,
                   batch_rows: int = DEFAULT_BATCH_ROWS, progress: Callable[[int], None] | None = None,
                   filter=None, dictionary: Sequence[str] = ()) -> None:
    """``fn`` applied to every batch of the dataset; ``consume`` gets each result, in file and row order, as
    it arrives (so that results are merged, not piled up).

    ``engine="local"``: in this process, ``fn`` on `local_threads` threads (so it must be thread-safe: pure
    functions of the batch are), at most threads + 1 batches in memory (``dictionary``: label columns read as
    dictionary arrays; see `ParquetDataset.batches`).
    ``engine="ray"``: as Ray Data tasks on the cluster at ``address`` (a local
    one is started when none is given and none is running), one task per run
    of row groups, each reading its batches as the local engine does (so ``fn``
    sees the same batches); ``fn`` must be picklable (a top-level function or a
    `functools.partial` of one), and the files must be readable at the same
    paths on every node (a shared disk), or live at a filesystem URI that every
    node can reach (object storage: ``s3://...``).
    """
    if engine == "local":
        batches = dataset.batches(columns, batch_rows, filter=filter, dictionary=dictionary)
        threads = local_threads()
        with reused_heap():
            if threads <= 1:
                for batch in batches:
                    consume(fn(batch))
                    if progress is not None:
                        progress(batch.n)
            else:
                _run_threaded(batches, fn, consume, threads, progress)
        return
    if engine == "ray":
        _run_ray(dataset, columns, fn, consume, address=address, batch_rows=batch_rows, progress=progress,
                 filter=filter, dictionary=dictionary)
        return
    raise DataError(f"--engine {engine!r}: use local or ray")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters (glibc's malloc.h)
_MMAP_MAX = 32 << 20  # the largest mmap threshold glibc takes (64-bit), and where its dynamic one stops
_AFTER_TRIM = 2 * _MMAP_MAX  # glibc's dynamic trim threshold: twice the mmap threshold
_heap_lock = threading.Lock()
_heap_depth = [0]


def _glibc():
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def reused_heap():
    """While batches are worked on, let glibc's malloc reuse the memory that a batch's arrays freed.

    A batch's partition statistics make tens of MB of NumPy temporaries and free them. With glibc's dynamic
    thresholds the freed top of the heap is handed back to the system (and big arrays get fresh mappings), so
    every batch faulted its memory in afresh: 40% of DR's time at 10^7 rows (350,000 page faults; 54,000 with
    the heap kept). Inside, arrays up to 32 MB come from the heap and up to 1 GB of freed heap is kept for the
    next batch. On leaving, the free memory is returned (``malloc_trim``) and the trim threshold drops to
    64 MB: where glibc's own dynamic thresholds end up in a process that makes and frees large arrays (they
    cannot be switched back on once set; glibc's starting 128 kB would map and fault every array anew).
    Elsewhere than glibc (macOS, musl) this does nothing.
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    with _heap_lock:
        _heap_depth[0] += 1
        if _heap_depth[0] == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    try:
        yield
    finally:
        with _heap_lock:
            _heap_depth[0] -= 1
            if _heap_depth[0] == 0:
                libc.mallopt(_M_TRIM_THRESHOLD, _AFTER_TRIM)
                libc.malloc_trim(0)


def local_threads() -> int:
    """Threads of the local engine: ``LLMCAUSE_THREADS`` when set, else the CPUs this process may use (at most
    8). Partition functions spend most of their time in NumPy and Arrow, which release the GIL, so batches are
    worked on in parallel while the next one is read."""
    env = os.environ.get("LLMCAUSE_THREADS", "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise DataError(f"LLMCAUSE_THREADS={env!r}: give a whole number of threads (1 or more)") from None
        if value < 1:
            raise DataError(f"LLMCAUSE_THREADS={env!r}: give a whole number of threads (1 or more)")
        return value
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def _run_threaded(batches, fn, consume, threads: int, progress) -> None:
    """``fn`` on ``threads`` worker threads while this thread reads the next batch; results consumed in batch
    order (so merges, and the first error raised, are the serial ones). At most ``threads + 1`` batches are
    held at once, so memory stays bounded by a few batches."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="llmcause-scan")
    pending: deque = deque()

    def settle() -> None:
        future, n = pending.popleft()
        consume(future.result())
        if progress is not None:
            progress(n)

    try:
        for batch in batches:
            pending.append((pool.submit(fn, batch), batch.n))
            del batch  # the worker's reference is the only one left
            while len(pending) > threads:
                settle()
        while pending:
            settle()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _run_ray(dataset, columns, fn, consume, *, address, batch_rows, progress, filter, dictionary) -> None:
    try:
        import ray
        import ray.data
    except ImportError:
        raise DataError("--engine ray needs Ray: pip install 'llmcause[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise DataError(f"--address {address}: could not connect to a Ray cluster: "
                            f"{str(exc).splitlines()[0]}") from None
    cols = list(dict.fromkeys(columns))
    total, groups = _row_groups(dataset)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    units = _units(groups, _unit_rows(total, cpus, batch_rows), batch_rows)
    if not units:
        return
    task = _RayTask(fn, units, dataset.schema, cols, list(dictionary), batch_rows, filter, dataset.filesystem)
    # one block, hence one task, per unit (whole blocks: the range and the map fuse into one task); the
    # tasks' results stream back in unit order
    parts = ray.data.range(len(units), override_num_blocks=len(units)).map_batches(
        task, batch_format="pyarrow", batch_size=None)
    parts.context.execution_options.preserve_order = True
    parts.context.enable_progress_bars = False
    # Ray Data reserves part of the cluster for each operator and, with this job's single operator, ran its
    # tasks one at a time on a 2-CPU cluster (measured on Ray 2.60); the outputs are a few kB per batch, so
    # there is nothing for the reservation to protect
    parts.context.op_resource_reservation_enabled = False
    # a task's results are sent back once they fill 1 MiB (Ray Data's default, 128 MiB, would keep a whole
    # task's partition results in the worker); a block per result cost 0.15 s more at 10^7 rows
    parts.context.target_max_block_size = 1 << 20
    try:
        for row in parts.iter_rows():
            consume(pickle.loads(row["part"]))
            if progress is not None:
                progress(int(row["rows"]))
    except Exception as exc:  # a DataError raised in a task arrives wrapped in Ray's own error types
        cause = _data_error_in(exc)
        if cause is not None:
            raise DataError(cause) from None
        raise


def _row_groups(dataset) -> tuple[int, list[tuple[str, int, int, int]]]:
    """Every row group of the dataset as (file, index, first row in the file, rows), in file order, from the
    footers; and the total number of rows."""
    groups, total = [], 0
    for frag in dataset._ds.get_fragments():
        try:
            sizes = [rg.num_rows for rg in frag.row_groups]
        except Exception as exc:
            raise DataError(f"{frag.path}: could not read as Parquet: {str(exc).splitlines()[0]}") from None
        start = 0
        for i, rows in enumerate(sizes):
            if rows:
                groups.append((frag.path, i, start, rows))
            start += rows
        total += start
    return total, groups


def _unit_rows(total: int, cpus: int, batch_rows: int) -> int:
    """Rows per task: one task per CPU (each further Ray Data task cost about 12 ms to launch and collect on
    a 2-core machine, more than a batch's statistic), at least a batch, and at most 64 batches, so a large
    log is still cut into many tasks that a cluster can balance and retry."""
    return int(min(max(-(-total // cpus), batch_rows), 64 * batch_rows))


def _units(groups, target: int, batch_rows: int | None = None) -> list[list[tuple]]:
    """Consecutive row groups packed into units of at most ``target`` rows; a unit is a list of (file, row
    group indices, first row in the file, batches) pieces, batches None for all of them. A row group larger
    than ``target`` is cut, when ``batch_rows`` is given, into about rows/target units of whole batches
    (batches = (first, count), count None for the rest): each such task decodes the row group but works on
    its own batches, so a log of one big row group still keeps every CPU busy."""
    units, unit, rows = [], [], 0
    for path, i, start, n in groups:
        if batch_rows and n > target and n > batch_rows:
            if unit:
                units.append(unit)
                unit, rows = [], 0
            n_batches = -(-n // batch_rows)
            pieces = min(n_batches, -(-n // target))
            per = -(-n_batches // pieces)
            firsts = list(range(0, n_batches, per))
            for k, first in enumerate(firsts):
                units.append([(path, (i,), start, (first, per if k + 1 < len(firsts) else None))])
            continue
        if unit and rows + n > target:
            units.append(unit)
            unit, rows = [], 0
        if unit and unit[-1][0] == path:
            unit[-1] = (path, unit[-1][1] + (i,), unit[-1][2], None)
        else:
            unit.append((path, (i,), start, None))
        rows += n
    if unit:
        units.append(unit)
    return units


class _RayTask:
    """A picklable callable for `map_batches`: reads the units whose numbers it is given with the local engine's
    reader and yields each batch's partition result, pickled into a one-row table."""

    def __init__(self, fn, units, schema, columns, dictionary, batch_rows, filter, filesystem=None):
        self.fn, self.units, self.schema, self.columns = fn, units, schema, columns
        self.dictionary, self.batch_rows, self.filter = dictionary, batch_rows, filter
        self.filesystem = filesystem  # None: local paths, the same on every node

    def __call__(self, table):
        import pyarrow as pa

        with reused_heap():  # as the local engine: a batch's freed arrays serve the next (see `reused_heap`)
            yield from self._results(table, pa)

    def _results(self, table, pa):
        for k in table.column("id").to_pylist():
            for batch in self._batches(self.units[k]):
                try:
                    result = self.fn(batch)
                except DataError as exc:
                    raise RuntimeError(_DATA_ERROR + str(exc)) from None
                # binary stays binary in Arrow (a NumPy bytes array would strip trailing NULs)
                yield pa.table({"part": pa.array([pickle.dumps(result)], pa.binary()),
                                "rows": pa.array([batch.n], pa.int64())})

    def _batches(self, unit):
        try:
            ds = _format_dataset([piece[0] for piece in unit], self.schema, self.columns, self.dictionary,
                                 self.filesystem)
            for frag, (_, ids, start, part) in zip(ds.get_fragments(), unit):
                batches = _fragment_batches(frag.subset(row_group_ids=list(ids)), self.columns, self.batch_rows,
                                            self.filter, start)
                if part is not None:  # some of a big row group's batches (the same as the local engine's)
                    first, count = part
                    batches = itertools.islice(batches, first, None if count is None else first + count)
                yield from batches
        except DataError as exc:
            raise RuntimeError(_DATA_ERROR + str(exc)) from None


_DATA_ERROR = "llmcause data error: "


def _data_error_in(exc: BaseException) -> str | None:
    text = str(exc)
    i = text.find(_DATA_ERROR)
    if i < 0:
        return None
    return text[i + len(_DATA_ERROR):].splitlines()[0]


# --------------------------------------------------------------------------- columns of a batch


def numeric(batch: Batch, col: str, *, allow_missing: bool = False, lower: float | None = None,
            upper: float | None = None, lower_open: bool = False, what: str = "a number") -> np.ndarray:
    """The column as float64 (NaN where missing, when allowed); bad values name file, column and row."""
    import pyarrow as pa
    import pyarrow.types as pt

    arr = batch.columns[col]
    if not (pt.is_integer(arr.type) or pt.is_floating(arr.type) or pt.is_boolean(arr.type) or pt.is_null(arr.type)):
        raise DataError(f"{batch.file}: column {col!r}{batch.row(0)}: values of type {arr.type} are not {what}")
    if pt.is_boolean(arr.type):
        arr = arr.cast(pa.int8())
    values = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=float)  # nulls become NaN
    missing = np.isnan(values)  # a null or a NaN, as pandas counts missing cells
    if not allow_missing and missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: value is missing")
    inf = np.isinf(values)
    if inf.any():
        raise DataError(f"{batch.file}: column {col!r}{batch.row(int(np.flatnonzero(inf)[0]))}: value is infinite")
    if lower is not None:
        bad = (values <= lower) if lower_open else (values < lower)
        bad &= ~np.isnan(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: {values[i]:g} is not {what}")
    if upper is not None:
        bad = (values > upper) & ~np.isnan(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: {values[i]:g} is not {what}")
    return values


def labels(batch: Batch, col: str) -> tuple[np.ndarray, np.ndarray]:
    """The column as (codes, keys): keys are its distinct values as strings in order of first appearance and
    keys[codes] is the column (dictionary encoding in Arrow: no per-row Python strings). A missing value names
    file, column and row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.types as pt

    arr = batch.columns[col]
    if arr.null_count:
        i = int(np.flatnonzero(np.asarray(arr.is_null().to_numpy(zero_copy_only=False)))[0])
        raise DataError(f"{batch.file}: column {col!r}{batch.row(i)}: value is missing")
    if pt.is_dictionary(arr.type) and isinstance(arr, pa.DictionaryArray):
        # read as a dictionary: keep the values present, once each (a dictionary may hold unused ones)
        codes = np.asarray(arr.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        values = np.asarray(arr.dictionary.to_numpy(zero_copy_only=False)).astype(str).astype(object)
        present = np.flatnonzero(np.bincount(codes, minlength=values.shape[0]))
        if present.shape[0] <= 64:  # few labels: first appearances by a comparison each, no sort
            first = np.array([int(np.argmax(codes == c)) for c in present.tolist()], dtype=np.int64)
        else:
            present, first = np.unique(codes, return_index=True)
        order = present[np.argsort(first, kind="stable")]
        keys = values[order]
        if len(set(keys.tolist())) == keys.shape[0]:
            remap = np.zeros(values.shape[0], dtype=np.int64)
            remap[order] = np.arange(order.shape[0])
            return remap[codes], keys
        arr = arr.dictionary_decode()  # a value listed twice in the dictionary: encode it afresh
    enc = pc.dictionary_encode(arr)
    if hasattr(enc, "combine_chunks"):
        enc = enc.combine_chunks()
    codes = np.asarray(enc.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
    keys = np.asarray(enc.dictionary.to_numpy(zero_copy_only=False)).astype(str).astype(object)
    return codes, keys


def label_codes(batch: Batch, col: str) -> tuple[np.ndarray, np.ndarray]:
    """The column as (codes, keys) with keys[codes] the column, like `labels`, but the keys as the dictionary
    holds them: possibly unused or repeated, in no set order (for a caller that maps keys by name). A missing
    value names file, column and row."""
    import pyarrow as pa
    import pyarrow.types as pt

    arr = batch.columns[col]
    if arr.null_count or not (pt.is_dictionary(arr.type) and isinstance(arr, pa.DictionaryArray)):
        return labels(batch, col)
    codes = np.asarray(arr.indices.to_numpy(zero_copy_only=False))
    return codes, np.asarray(arr.dictionary.to_numpy(zero_copy_only=False)).astype(str).astype(object)


def present_labels(batch: Batch, col: str) -> set:
    """The distinct values of a label column in this batch, as strings (a missing value names file, column and
    row); cheaper than `labels` when only the set is needed."""
    codes, keys = label_codes(batch, col)
    return set(keys[np.bincount(codes, minlength=keys.shape[0]) > 0].tolist())


def hash_rows(key: str, *arrays) -> np.ndarray:
    """A uint64 hash per row of the given columns, salted by ``key``: independent of how rows are partitioned.

    A column is an array, or a (codes, keys) pair from `labels` (its keys are hashed once).
    """
    import pandas as pd

    salt = _hash_key(key)
    out, rows = None, 0
    for a in arrays:
        if isinstance(a, tuple):
            rows = len(a[0])
            keys = a[1]
            if len(keys) <= 64:  # the same few labels (a file's name, the models) batch after batch
                h = _hash_keys(salt, tuple(keys.tolist() if isinstance(keys, np.ndarray) else keys))
            else:
                h = pd.util.hash_array(np.asarray(keys, dtype=object), hash_key=salt, categorize=False)
            if h.shape[0] != 1:  # one label (a file's name) stays one hash, broadcast below
                h = h[a[0]]
        else:
            rows = len(a)
            h = pd.util.hash_array(np.asarray(a), hash_key=salt, categorize=False)
        out = h if out is None else (out * np.uint64(0x9E3779B97F4A7C15)) ^ h
    if out is not None and out.shape[0] != rows:
        out = np.full(rows, out[0], dtype=np.uint64)
    return out


@functools.lru_cache(maxsize=4096)
def _hash_keys(salt: str, keys: tuple) -> np.ndarray:
    import pandas as pd

    out = pd.util.hash_array(np.array(keys, dtype=object), hash_key=salt, categorize=False)
    out.flags.writeable = False  # shared by every caller
    return out


def row_place(batch: Batch) -> tuple:
    """Each row's place in the log, as arrays for `hash_rows`: its file (the last two parts of the path, so a
    hive partition such as ``date=2026-01-01/part-0.parquet`` keeps its folder) and its row number there.

    Folds and samples hash this place when no cluster names the unit. Hashing a row's *values* instead would
    put every row with the same values (with 0/1 outcomes, most of the log) in the same fold, so a fold's
    outcome model would never see the outcomes it predicts. The place does not depend on the batch size, the
    engine or where the dataset lives; splitting the files differently changes it (give a cluster or id
    column for a unit that survives that).
    """
    if batch.start is None:
        raise DataError(f"{batch.file}: the rows' places in their file are unknown here; give a cluster column")
    name = "/".join(str(batch.file).replace("\\", "/").rstrip("/").split("/")[-2:])
    return ((np.zeros(batch.n, dtype=np.intp), np.array([name], dtype=object)),
            np.arange(batch.start, batch.start + batch.n, dtype=np.int64))


def _hash_key(key: str) -> str:
    import hashlib

    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
