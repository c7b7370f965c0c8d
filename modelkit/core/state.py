"""The build state in ``.modelkit/state.db``: what each target was built from, and file digests.

sqlite from the standard library gives crash-safe, atomic updates (WAL journal) without a server.
Three tables: ``targets`` holds, per target, the action key it was last built with, the canonical
record behind that key (so a stale target can say *what* changed) and its outputs' digests;
``files`` is the stat cache (device, inode, size, mtime, ctime -> digest) that lets a no-op build
skip reading file contents, as git's index does; ``facts`` keeps values derived from files'
contents by their digests (:mod:`modelkit.core.facts`), so that a no-op reads none of them.

A state file that cannot be read (corrupt, or written by a newer modelkit) is moved aside and
started afresh: the worst outcome is a rebuild, never a crash or a wrongly fresh target.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class TargetRecord:
    """What a target was last built from, and what it produced."""

    key: str
    record: dict[str, Any]
    outputs: dict[str, str]  # output path (relative to the project root) -> digest
    built_at: float


@dataclass(frozen=True)
class FileStat:
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStat:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class State:
    """The project's state store. One instance per build, shared by the engine's threads: every
    statement runs under one lock, so concurrent steps' records and stat-cache entries never
    interleave on the connection (sqlite's own locking keeps other processes out)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.notice: str | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "state.db"
        self._lock = threading.Lock()
        try:
            self._db = self._open()
        except (sqlite3.DatabaseError, _NewerState) as e:
            aside = self.path.with_name(f"state.db.unreadable-{int(time.time())}")
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self.notice = f"{self.path} could not be read ({e}); moved it to {aside.name} and started afresh"
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            db.close()
            raise _NewerState(f"written by a newer modelkit (state version {version})")
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS targets (
                name TEXT PRIMARY KEY, key TEXT NOT NULL, record TEXT NOT NULL,
                outputs TEXT NOT NULL, built_at REAL NOT NULL);
            CREATE TABLE IF NOT EXISTS files (
                path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER, size INTEGER,
                mtime_ns INTEGER, ctime_ns INTEGER, digest TEXT NOT NULL, recorded_ns INTEGER);
            CREATE TABLE IF NOT EXISTS facts (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        # Reading every table once proves the file is a database and not garbage.
        db.execute("SELECT count(*) FROM targets").fetchone()
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        with self._lock:
            return self._db.execute(sql, args).fetchone()

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: tuple[Any, ...] = ()) -> None:
        with self._lock:
            self._db.execute(sql, args)

    # -- targets ---------------------------------------------------------------------------

    def target(self, name: str) -> TargetRecord | None:
        row = self._one("SELECT key, record, outputs, built_at FROM targets WHERE name=?", (name,))
        if row is None:
            return None
        try:
            return TargetRecord(row[0], json.loads(row[1]), json.loads(row[2]), row[3])
        except (ValueError, TypeError):
            return None

    def set_target(self, name: str, key: str, record: dict[str, Any], outputs: dict[str, str]) -> None:
        self._write(
            "INSERT OR REPLACE INTO targets (name, key, record, outputs, built_at) VALUES (?,?,?,?,?)",
            (name, key, json.dumps(record, sort_keys=True), json.dumps(outputs, sort_keys=True), time.time()))

    def forget_target(self, name: str) -> None:
        self._write("DELETE FROM targets WHERE name=?", (name,))

    def target_names(self) -> list[str]:
        return [r[0] for r in self._all("SELECT name FROM targets ORDER BY name")]

    # -- stat cache --------------------------------------------------------------------------

    def cached_digest(self, path: str, stat: FileStat) -> str | None:
        """The digest recorded for ``path`` if the file has not changed since, else None.

        An entry recorded within a timestamp tick of the file's mtime is "racy" (the file could
        have changed again within the same tick without its stat changing), so it is not trusted,
        as git does with racily clean index entries.
        """
        row = self._one(
            "SELECT dev, ino, size, mtime_ns, ctime_ns, digest, recorded_ns FROM files WHERE path=?", (path,))
        if row is None or FileStat(*row[:5]) != stat:
            return None
        if row[6] is not None and stat.mtime_ns >= row[6] - _RACY_NS:
            return None
        return str(row[5])

    def set_digest(self, path: str, stat: FileStat, digest: str, trusted: bool = False) -> None:
        """Record a digest; ``trusted`` for files modelkit itself just wrote under the project lock,
        which nothing else can have changed within the same timestamp tick."""
        recorded = None if trusted else time.time_ns()
        self._write(
            "INSERT OR REPLACE INTO files (path, dev, ino, size, mtime_ns, ctime_ns, digest, recorded_ns)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (path, stat.dev, stat.ino, stat.size, stat.mtime_ns, stat.ctime_ns, digest, recorded))

    # -- facts derived from files ----------------------------------------------------------------

    def fact(self, key: str) -> Any | None:
        """The JSON value kept under ``key``, or None."""
        row = self._one("SELECT value FROM facts WHERE key=?", (key,))
        try:
            return json.loads(row[0]) if row is not None else None
        except ValueError:
            return None

    def set_fact(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO facts (key, value) VALUES (?,?)", (key, json.dumps(value, sort_keys=True)))


_RACY_NS = 50_000_000  # 50 ms: coarser than any filesystem timestamp tick in practice


class _NewerState(Exception):
    pass
