"""The plan of one fetch, kept on disk so that memory does not grow with the file count.

Transports yield ``RemoteFile`` values as they parse a checksum list or a listing; they go
straight into a scratch SQLite file in ``.medcat/plans/`` (``--only`` applied on the way, the
first listing of a path wins), and come back out sorted by path with ``--limit`` applied, a
row at a time. The engine marks the files that still need work (``mark_todo``); worker
processes read their interleaved shares of those from the same file. Nothing here fetches,
verifies or knows a source kind. The file is deleted when the fetch ends; one left by a killed
fetch is deleted by the next fetch of the folder.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from medcat_data.loaders.fetch_manifest import FILE_COLUMNS, FileRecord
from medcat_data.loaders.plan import RemoteFile, wanted_by_only

log = logging.getLogger(__name__)

PLANS_DIR = "plans"
#: Rows written per ``executemany`` while a listing streams in.
BATCH_ROWS = 2000

_COLUMNS = "path, url, source, size, hash, algorithm, verified_by, magic, magic_offset, extract, key, idx"
_SCHEMA = f"""
CREATE TABLE plan (
    path TEXT PRIMARY KEY, url TEXT NOT NULL, source TEXT NOT NULL, size INTEGER, hash TEXT,
    algorithm TEXT NOT NULL, verified_by TEXT NOT NULL, magic BLOB, magic_offset INTEGER NOT NULL,
    extract INTEGER NOT NULL, key TEXT, idx INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE todo (seq INTEGER PRIMARY KEY, path TEXT NOT NULL);
CREATE VIEW selected AS SELECT {_COLUMNS} FROM plan ORDER BY path;
"""


def _row(f: RemoteFile) -> tuple[Any, ...]:
    return (
        f.path, f.url, f.source, f.size, f.hash, f.algorithm, f.verified_by, f.magic, f.magic_offset,
        int(f.extract), f.key, int(f.index),
    )


def _remote(row: Sequence[Any]) -> RemoteFile:
    return RemoteFile(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], bool(row[9]), row[10], bool(row[11])
    )


class PlanStore:
    """The sorted, selected files of one fetch in a scratch SQLite file (one per run)."""

    def __init__(self, meta_dir: Path) -> None:
        folder = Path(meta_dir) / PLANS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        _remove_stale(folder)
        self.path = folder / f"plan-{os.getpid()}-{id(self):x}.sqlite"
        self.path.unlink(missing_ok=True)
        self._forked: sqlite3.Connection | None = None
        self._conn: sqlite3.Connection | None = self._connect()
        self._conn.executescript(_SCHEMA)
        self._attached = False
        self._limit = -1
        self.selected = 0
        self.todo = 0

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # A scratch file: nothing to recover after a crash, so no journal and no fsync.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        return conn

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    # -- planning ----------------------------------------------------------------------------

    def add(self, files: Iterable[RemoteFile], only: Sequence[str]) -> int:
        """Store the files of one listing that ``--only`` keeps; return how many were listed."""
        listed = 0
        it = iter(files)
        db = self._db
        db.execute("BEGIN")
        while True:
            batch = list(islice(it, BATCH_ROWS))
            if not batch:
                break
            listed += len(batch)
            db.executemany(
                f"INSERT OR IGNORE INTO plan ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (_row(f) for f in batch if not only or wanted_by_only(f, only)),
            )
        db.execute("COMMIT")
        return listed

    def select(self, limit: int | None) -> int:
        """Keep the first ``limit`` files by path (all with ``None``); return how many are selected."""
        self._limit = -1 if limit is None else limit
        count = self._db.execute("SELECT count(*) FROM plan").fetchone()[0]
        self.selected = count if limit is None else min(count, limit)
        return self.selected

    def known_bytes(self) -> int | None:
        """Return the selected files' total size, or ``None`` when a size is unknown."""
        total, sized = self._db.execute(
            "SELECT sum(size), count(size) FROM (SELECT size FROM selected LIMIT ?)", (self._limit,)
        ).fetchone()
        return int(total or 0) if sized == self.selected else None

    def files(self) -> Iterator[RemoteFile]:
        """Yield the selected files in path order."""
        for row in self._db.execute("SELECT * FROM selected LIMIT ?", (self._limit,)):
            yield _remote(row)

    def with_records(self, manifest_store: Path) -> Iterator[tuple[RemoteFile, FileRecord | None]]:
        """Yield the selected files in path order with their manifest records (one join, no lookups)."""
        db = self._db
        if not self._attached:  # attached for good: a DETACH inside mark_todo's transaction fails
            db.execute("ATTACH DATABASE ? AS manifest", (str(manifest_store),))
            self._attached = True
        prefixed = ", ".join(f"m.{c.strip()}" for c in FILE_COLUMNS.split(","))
        rows = db.execute(
            f"SELECT p.*, m.path IS NOT NULL, {prefixed} FROM (SELECT * FROM selected LIMIT ?) p "
            "LEFT JOIN manifest.files m ON m.path = p.path ORDER BY p.path",
            (self._limit,),
        )
        for row in rows:
            yield _remote(row), (FileRecord.from_row(row[13:]) if row[12] else None)

    # -- the work left -----------------------------------------------------------------------

    def mark_todo(self, paths: Iterable[str]) -> None:
        """Append files that need work (in the order given); ``todo`` counts them."""
        db = self._db
        db.execute("BEGIN")
        it = iter(paths)
        while batch := list(islice(it, BATCH_ROWS)):
            db.executemany("INSERT INTO todo (seq, path) VALUES (?, ?)", enumerate(batch, start=self.todo))
            self.todo += len(batch)
        db.execute("COMMIT")

    def todo_sources(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT p.source FROM todo t JOIN plan p ON p.path = t.path")]

    def share(self, shares: int, index: int) -> int:
        """Return how many of the todo files share ``index`` of ``shares`` holds."""
        return len(range(index, self.todo, shares))

    def todo_files(
        self, shares: int = 1, index: int = 0, reported: bytearray | None = None
    ) -> Iterator[tuple[int, RemoteFile]]:
        """Yield (seq, file) of share ``index`` of ``shares`` (every ``shares``-th todo file), in order.

        ``reported`` (one byte per file of the share, ``seq // shares``) skips files already done.
        """
        rows = self._db.execute(
            "SELECT t.seq, p.* FROM todo t JOIN plan p ON p.path = t.path WHERE t.seq % ? = ? ORDER BY t.seq",
            (shares, index),
        )
        for row in rows:
            if reported is None or not reported[row[0] // shares]:
                yield row[0], _remote(row[1:])

    # -- processes and cleanup ---------------------------------------------------------------

    def after_fork(self) -> None:
        """Give a forked child its own connection; the parent's is left alone (not closed)."""
        self._forked = self._conn  # kept referenced: never closed (or collected) in the child
        self._conn = None
        self._attached = False

    def close(self) -> None:
        """Close and delete the scratch file."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.path.unlink(missing_ok=True)


def _remove_stale(folder: Path) -> None:
    """Delete plan files whose fetch process is gone (killed runs)."""
    for path in folder.glob("plan-*.sqlite"):
        try:
            pid = int(path.name.split("-")[1])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except PermissionError:
            pass

