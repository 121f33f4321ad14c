"""A SQLite run store (WAL mode) keyed by each run's content hash.

Tables:
- ``runs``: one row per run identity (key): function, parameters, status
  (``done`` or ``failed``), result (JSON), error, seconds, finish time, worker.
  A ``done`` row is never overwritten.
- ``tasks``: the runs a campaign asked for, in order, with free-form labels
  (e.g. arm and seed), so an analysis can rebuild its design from the store.
- ``meta``: the application id and schema version.

Every result is committed in its own transaction as soon as it arrives. In
WAL mode with ``synchronous=NORMAL`` a committed transaction survives the
process being killed at any moment, so a killed campaign loses no finished
run (an operating-system crash or power cut may roll back the last few
commits, which are then simply run again; the file stays consistent). WAL
mode plus a busy timeout let several processes write at once.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

__all__ = ["RunStore", "StoreError", "APPLICATION"]

APPLICATION = "llmcause-runs"
SCHEMA_VERSION = "1"
_BUSY_TIMEOUT_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('done', 'failed')),
    result TEXT,
    error TEXT,
    seconds REAL,
    finished_at REAL,
    worker TEXT,
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS tasks (
    campaign TEXT NOT NULL,
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    labels TEXT NOT NULL,
    PRIMARY KEY (campaign, position)
);
CREATE INDEX IF NOT EXISTS tasks_key ON tasks (key);
"""


class StoreError(ValueError):
    """The file is not a usable run store (corrupt, another kind of database, unwritable)."""


class RunStore:
    """A run store at ``path`` (created if missing); ``":memory:"`` for a throwaway store.

    Parameters
    ----------
    path : the SQLite file.
    create : create the file when it does not exist (otherwise StoreError).
    read_only : open the file read-only (an SQLite ``mode=ro`` connection) and
        check its schema before anything else; nothing is ever written, so a
        file that is not a run store is left byte for byte as it was.
    """

    def __init__(self, path: str | os.PathLike, create: bool = True, read_only: bool = False):
        self.path = str(path)
        self.read_only = read_only
        memory = self.path == ":memory:"
        if not memory:
            p = Path(self.path)
            if p.is_dir():
                raise StoreError(f"{self.path}: is a directory, not a run store")
            if not p.exists() and (not create or read_only):
                raise StoreError(f"{self.path}: no such run store")
            if p.exists() and p.stat().st_size > 0:
                _check_header(p)
            elif read_only:
                raise StoreError(f"{self.path}: the file is empty, not a run store")
        try:
            if read_only and not memory:
                uri = Path(self.path).resolve().as_uri() + "?mode=ro"
                self._conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                                             check_same_thread=False)
                self._conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
                self._check_schema()
                return
            self._conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT_S * 1000)}")
            if not memory:
                # Check what the file holds before switching it to WAL, which rewrites its header.
                self._check_schema(allow_empty=True)
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"{self.path}: could not switch the store to WAL mode (got {mode})")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._init_schema()
        except StoreError:
            self._close_quietly()
            raise
        except sqlite3.DatabaseError as exc:
            self._close_quietly()
            raise StoreError(f"{self.path}: not a usable run store ({exc})") from None

    # ------------------------------------------------------------------ setup

    def _check_schema(self, allow_empty: bool = False) -> None:
        """Raise StoreError unless the database is a run store of this schema (or, if allowed, has no tables)."""
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and allow_empty:
            return
        missing = {"meta", "runs", "tasks"} - tables
        if missing:
            listed = ", ".join(sorted(tables)) or "none"
            raise StoreError(f"{self.path}: an SQLite database, but not a run store (its tables: {listed})")
        meta = dict(self._conn.execute("SELECT name, value FROM meta").fetchall())
        if meta.get("application") != APPLICATION:
            raise StoreError(f"{self.path}: an SQLite database, but not a run store")
        if meta.get("schema") != SCHEMA_VERSION:
            raise StoreError(f"{self.path}: run store schema {meta.get('schema')} is not supported "
                             f"(this version reads {SCHEMA_VERSION})")

    def _init_schema(self) -> None:
        with self._transaction():
            tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "meta" not in tables:
                raise StoreError(f"{self.path}: an SQLite database, but not a run store "
                                 f"(it has tables {', '.join(sorted(tables))})")
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._conn.execute(stmt)
            meta = dict(self._conn.execute("SELECT name, value FROM meta").fetchall())
            if not meta:
                self._conn.execute("INSERT INTO meta VALUES ('application', ?), ('schema', ?)",
                                   (APPLICATION, SCHEMA_VERSION))
            elif meta.get("application") != APPLICATION:
                raise StoreError(f"{self.path}: an SQLite database, but not a run store")
            elif meta.get("schema") != SCHEMA_VERSION:
                raise StoreError(f"{self.path}: run store schema {meta.get('schema')} is not supported "
                                 f"(this version reads {SCHEMA_VERSION})")

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        self._close_quietly()

    def _close_quietly(self) -> None:
        conn = getattr(self, "_conn", None)
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass
            self._conn = None

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ writing

    def record(self, key: str, function: str, params_json: str, *, result: Any = None, error: str | None = None,
               seconds: float | None = None, worker: str | None = None) -> bool:
        """Store one finished run (``error`` given: a failure). Returns False if a result was already stored."""
        status = "failed" if error is not None else "done"
        payload = None if error is not None else json.dumps(result, sort_keys=True, allow_nan=True)
        with self._guard(), self._transaction():
            row = self._conn.execute("SELECT status FROM runs WHERE key = ?", (key,)).fetchone()
            if row is not None and row[0] == "done":
                return False
            if row is None:
                self._conn.execute(
                    "INSERT INTO runs (key, function, params, status, result, error, seconds, finished_at, worker) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (key, function, params_json, status, payload, error, seconds, time.time(), worker))
            else:
                self._conn.execute(
                    "UPDATE runs SET status = ?, result = ?, error = ?, seconds = ?, finished_at = ?, worker = ?, "
                    "attempts = attempts + 1 WHERE key = ?",
                    (status, payload, error, seconds, time.time(), worker, key))
        return True

    def register(self, campaign: str, keys: Sequence[str], labels: Sequence[dict]) -> None:
        """Record which runs a campaign asked for (replacing that campaign's earlier list)."""
        if len(keys) != len(labels):
            raise ValueError("one label dict per key")
        rows = [(campaign, i, k, json.dumps(lab, sort_keys=True, default=str)) for i, (k, lab) in
                enumerate(zip(keys, labels))]
        with self._guard(), self._transaction():
            self._conn.execute("DELETE FROM tasks WHERE campaign = ?", (campaign,))
            self._conn.executemany("INSERT INTO tasks (campaign, position, key, labels) VALUES (?, ?, ?, ?)", rows)

    # ------------------------------------------------------------------ reading

    def done_keys(self, keys: Iterable[str] | None = None) -> set[str]:
        """Keys (among ``keys``, or all) whose result is stored."""
        with self._guard():
            stored = {r[0] for r in self._conn.execute("SELECT key FROM runs WHERE status = 'done'")}
        return stored if keys is None else stored & set(keys)

    def results(self, keys: Sequence[str]) -> dict[str, Any]:
        """The stored results of those of ``keys`` that are done, decoded: ``{key: result}``."""
        out: dict[str, Any] = {}
        keys = list(keys)
        with self._guard():
            for i in range(0, len(keys), 500):  # SQLite bounds the number of parameters per statement
                chunk = keys[i:i + 500]
                marks = ",".join("?" * len(chunk))
                for key, result in self._conn.execute(
                        f"SELECT key, result FROM runs WHERE status = 'done' AND key IN ({marks})", chunk):
                    out[key] = json.loads(result)
        return out

    def get(self, key: str) -> dict | None:
        """The stored row of one run (params and result decoded), or None."""
        with self._guard():
            cur = self._conn.execute("SELECT * FROM runs WHERE key = ?", (key,))
            row = cur.fetchone()
            cols = [c[0] for c in cur.description]
        return None if row is None else _decode(dict(zip(cols, row)))

    def runs(self, status: str | None = "done") -> list[dict]:
        """All stored runs (by default the finished ones), oldest first."""
        query = "SELECT * FROM runs" + (" WHERE status = ?" if status else "") + " ORDER BY finished_at, key"
        with self._guard():
            cur = self._conn.execute(query, (status,) if status else ())
            cols = [c[0] for c in cur.description]
            return [_decode(dict(zip(cols, r))) for r in cur.fetchall()]

    def campaigns(self) -> list[str]:
        with self._guard():
            return [r[0] for r in self._conn.execute("SELECT DISTINCT campaign FROM tasks ORDER BY campaign")]

    def tasks(self, campaign: str | None = None) -> list[dict]:
        """Tasks joined with their runs: campaign, position, key, labels, status, params, result."""
        query = ("SELECT t.campaign, t.position, t.key, t.labels, r.status, r.params, r.result, r.seconds "
                 "FROM tasks t LEFT JOIN runs r ON r.key = t.key")
        args: tuple = ()
        if campaign is not None:
            query += " WHERE t.campaign = ?"
            args = (campaign,)
        query += " ORDER BY t.campaign, t.position"
        with self._guard():
            rows = self._conn.execute(query, args).fetchall()
        out = []
        for camp, pos, key, labels, status, params, result, seconds in rows:
            out.append({"campaign": camp, "position": pos, "key": key, "labels": json.loads(labels),
                        "status": status, "params": None if params is None else json.loads(params),
                        "result": None if result is None else json.loads(result), "seconds": seconds})
        return out

    def counts(self) -> dict[str, int]:
        with self._guard():
            rows = self._conn.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        return {"done": 0, "failed": 0, **{s: int(n) for s, n in rows}}

    @contextmanager
    def _guard(self) -> Iterator[None]:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: run store error ({exc})") from None


def _decode(row: dict) -> dict:
    for field in ("params", "result"):
        if row.get(field) is not None:
            row[field] = json.loads(row[field])
    return row


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read ({exc.strerror})") from None
    if head != b"SQLite format 3\x00":
        raise StoreError(f"{path}: not a run store (the file is not an SQLite database)")
