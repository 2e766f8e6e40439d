"""The manifest of a dataset folder: what is there, how it was verified, where it came from.

``.medcat/manifest.sqlite`` is the store: one row per file and per extracted archive, read and
updated a row at a time (stdlib ``sqlite3`` in WAL mode), so memory does not grow with the file
count. Records are written in small batches, one transaction each: a killed fetch loses at most
the last batch (those files are re-verified by hash, not re-downloaded), and a transaction cut
short by a kill is rolled back by SQLite, never half-applied. Two processes fetching the same
dataset (``loaders.processes`` or two ``medcat fetch`` runs) write to the same store and see each
other's committed rows at once; SQLite's own file locks serialize the writes.

``.medcat/manifest.json`` is an export for people and diff tools (one file entry per line),
streamed from the store when a fetch changed something; medcat never reads it, except to
migrate a folder fetched by an earlier version (``manifest.json`` plus its ``manifest.log``
journal), which happens once, on first open. URLs are stored redacted; no credential is ever
written.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medcat_data.errors import redact

log = logging.getLogger(__name__)

FORMAT = "medcat-manifest/1"
STORE_FORMAT = "medcat-manifest-sqlite/1"
STORE_NAME = "manifest.sqlite"
MANIFEST_NAME = "manifest.json"
JOURNAL_NAME = "manifest.log"

FileStatusValue = Literal["ok", "missing", "failed"]

#: Records are written in batches: a killed fetch loses at most this much bookkeeping,
#: and files it loses are re-verified by hash (not re-downloaded) on the next run.
FLUSH_RECORDS = 256
FLUSH_INTERVAL_S = 0.25
#: How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 60.0
#: Rows read per query when iterating (keyset pages: no read transaction stays open).
PAGE_ROWS = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, hash TEXT, algorithm TEXT NOT NULL,
    verified_by TEXT NOT NULL, url TEXT NOT NULL, fetched_at TEXT NOT NULL,
    status TEXT NOT NULL, reason TEXT, mtime_ns INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS extracted (
    archive TEXT PRIMARY KEY, archive_hash TEXT, extracted_at TEXT NOT NULL, members TEXT NOT NULL
) WITHOUT ROWID;
"""
FILE_COLUMNS = "size, hash, algorithm, verified_by, url, fetched_at, status, reason, mtime_ns"


def clean_url(url: str) -> str:
    """Return ``url`` without credentials (fast path: most URLs carry neither userinfo nor a query)."""
    if "@" not in url and "?" not in url:
        return url
    return redact(url)


_NOW: tuple[int, str] = (0, "")


def now_iso() -> str:
    """Return the current UTC time as ``YYYY-MM-DDTHH:MM:SSZ`` (formatted once per second)."""
    global _NOW
    second = int(time.time())
    if _NOW[0] != second:
        _NOW = (second, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second)))
    return _NOW[1]


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One file as the manifest knows it.

    ``status`` is ``ok`` for a verified file at its final path; ``missing`` / ``failed`` record
    files the last fetch selected but could not deliver (with ``reason``). ``mtime_ns`` is the
    file's modification time when it was committed (``None`` in records migrated from the JSON
    manifest): a re-run trusts a file without rehashing only while size and mtime still agree.
    """

    size: int
    hash: str | None
    algorithm: str
    verified_by: str
    url: str
    fetched_at: str
    status: FileStatusValue = "ok"
    reason: str | None = None
    mtime_ns: int | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "size": self.size,
            "hash": self.hash,
            "algorithm": self.algorithm,
            "verified_by": self.verified_by,
            "url": self.url,
            "fetched_at": self.fetched_at,
        }
        if self.status != "ok":
            data["status"] = self.status
            data["reason"] = self.reason
        if self.mtime_ns is not None:
            data["mtime_ns"] = self.mtime_ns
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRecord:
        mtime = data.get("mtime_ns")
        return cls(
            size=int(data.get("size", -1)),
            hash=data.get("hash"),
            algorithm=str(data.get("algorithm", "sha256")),
            verified_by=str(data.get("verified_by", "tofu")),
            url=str(data.get("url", "")),
            fetched_at=str(data.get("fetched_at", "")),
            status=data.get("status", "ok"),
            reason=data.get("reason"),
            mtime_ns=None if mtime is None else int(mtime),
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> FileRecord:
        """Build a record from the store's columns (``FILE_COLUMNS`` order)."""
        return cls(*row)

    def row(self, path: str) -> tuple[Any, ...]:
        return (
            path, self.size, self.hash, self.algorithm, self.verified_by, clean_url(self.url),
            self.fetched_at, self.status, self.reason, self.mtime_ns,
        )


@dataclass(frozen=True)
class ExtractRecord:
    """An archive extracted into the dataset folder: its hash and the members it produced.

    Member sizes are ``-1`` for symbolic links.
    """

    archive: str
    archive_hash: str | None
    members: tuple[tuple[str, int], ...]
    extracted_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "archive_hash": self.archive_hash,
            "extracted_at": self.extracted_at,
            "members": [list(m) for m in self.members],
        }

    @classmethod
    def from_json(cls, archive: str, data: dict[str, Any]) -> ExtractRecord:
        return cls(
            archive=archive,
            archive_hash=data.get("archive_hash"),
            members=tuple((str(p), int(s)) for p, s in data.get("members", [])),
            extracted_at=str(data.get("extracted_at", "")),
        )

    def row(self) -> tuple[Any, ...]:
        return (self.archive, self.archive_hash, self.extracted_at, json.dumps([list(m) for m in self.members]))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> ExtractRecord:
        archive, archive_hash, extracted_at, members = row
        return cls(archive, archive_hash, tuple((str(p), int(s)) for p, s in json.loads(members)), extracted_at)


def connect(path: Path) -> sqlite3.Connection:
    """Open a manifest store for use by several threads (the caller serializes) and processes."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    # WAL is a property of the file: set once. Two processes creating the store at the same moment
    # may get "database is locked" from the mode change without SQLite's busy handler being asked;
    # retry it within the same time budget.
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.05)
    # NORMAL in WAL: a commit survives a killed process; only a power loss may lose the last ones.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class Manifest:
    """The manifest of one dataset folder, shared by threads (one connection, one lock) and by
    processes (each with its own connection to the same store)."""

    def __init__(self, meta_dir: Path, dataset_id: str, version: str) -> None:
        self.meta = Path(meta_dir)
        self.store_path = self.meta / STORE_NAME
        self.path = self.meta / MANIFEST_NAME
        self.journal_path = self.meta / JOURNAL_NAME
        self.dataset_id = dataset_id
        self.version = version
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        # Unwritten records: at most FLUSH_RECORDS, visible to this process's readers at once.
        self._pending: dict[str, FileRecord | None] = {}
        self._pending_extract: dict[str, ExtractRecord] = {}
        self._flushed_at = time.monotonic()
        self._changed = False
        self._forked: list[sqlite3.Connection] = []

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, meta_dir: Path, dataset_id: str, version: str, *, create: bool = True) -> Manifest | None:
        """Open the store (migrating a JSON manifest once); ``None`` when absent and ``create`` is false."""
        manifest = cls(meta_dir, dataset_id, version)
        if not create and not any(p.exists() for p in (manifest.store_path, manifest.path, manifest.journal_path)):
            return None
        manifest.meta.mkdir(parents=True, exist_ok=True)
        manifest._open()
        return manifest

    def _open(self) -> None:
        conn = connect(self.store_path)
        conn.executescript(_SCHEMA)
        conn.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait, then see it done
        try:
            if conn.execute("SELECT value FROM meta WHERE key = 'format'").fetchone() is None:
                migrated = _migrate(conn, self.path, self.journal_path)
                conn.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("format", STORE_FORMAT), ("dataset", self.dataset_id), ("version", self.version)],
                )
                self._changed = migrated
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
        if self.journal_path.exists():
            self.journal_path.unlink(missing_ok=True)  # folded into the store (and the next export)
        self._conn = conn

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return self._conn

    def refresh(self) -> None:
        """Publish our pending records; other processes' committed rows are always visible."""
        self.flush()

    # -- queries -----------------------------------------------------------------------------

    def get(self, path: str) -> FileRecord | None:
        """Return the record of a dataset-relative path, if any."""
        with self._lock:
            if path in self._pending:
                return self._pending[path]
            row = self._db.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE path = ?", (path,)).fetchone()
        return None if row is None else FileRecord.from_row(row)

    def size_of(self, path: str) -> int | None:
        """Return the recorded size of a verified file (the fast path of a no-op re-run)."""
        record = self.get(path)
        return None if record is None or record.status != "ok" else record.size

    def hash_of(self, path: str) -> str | None:
        record = self.get(path)
        return None if record is None else record.hash

    def files(self) -> Iterator[tuple[str, FileRecord]]:
        """Yield every recorded file in path order, a page of rows at a time."""
        self.flush()
        after = ""  # every path is longer than "", so the first page starts at the first path
        while True:
            with self._lock:
                rows = self._db.execute(
                    f"SELECT path, {FILE_COLUMNS} FROM files WHERE path > ? ORDER BY path LIMIT ?", (after, PAGE_ROWS)
                ).fetchall()
            for row in rows:
                yield row[0], FileRecord.from_row(row[1:])
            if len(rows) < PAGE_ROWS:
                return
            after = rows[-1][0]

    def extraction(self, archive: str) -> ExtractRecord | None:
        with self._lock:
            if archive in self._pending_extract:
                return self._pending_extract[archive]
            row = self._db.execute("SELECT * FROM extracted WHERE archive = ?", (archive,)).fetchone()
        return None if row is None else ExtractRecord.from_row(row)

    def extractions(self) -> Iterator[ExtractRecord]:
        self.flush()
        with self._lock:
            archives = [r[0] for r in self._db.execute("SELECT archive FROM extracted ORDER BY archive")]
        for archive in archives:  # archives are few; their member lists are read one at a time
            record = self.extraction(archive)
            if record is not None:
                yield record

    def __len__(self) -> int:
        self.flush()
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM files").fetchone()[0])

    # -- updates -----------------------------------------------------------------------------

    def record(self, path: str, record: FileRecord) -> None:
        """Record a file (written with the next batch)."""
        self._put(path, record)

    def record_verified(
        self, path: str, size: int, digest: str | None, algorithm: str, verified_by: str, url: str, mtime_ns: int | None = None
    ) -> None:
        """Record a verified file: the hot-path form of ``record`` (one per transferred file)."""
        self._put(path, FileRecord(size, digest, algorithm, verified_by, clean_url(url), now_iso(), mtime_ns=mtime_ns))

    def drop(self, path: str) -> None:
        """Forget a file (e.g. it was quarantined after being recorded)."""
        self._put(path, None)

    def record_extraction(self, record: ExtractRecord) -> None:
        with self._lock:
            self._pending_extract[record.archive] = record
        self.flush()

    def _put(self, path: str, record: FileRecord | None) -> None:
        with self._lock:
            self._pending.pop(path, None)  # keep the write order of one path
            self._pending[path] = record
            if len(self._pending) >= FLUSH_RECORDS or time.monotonic() - self._flushed_at >= FLUSH_INTERVAL_S:
                self.flush()

    def flush(self) -> None:
        """Write pending records in one transaction (one commit for many files)."""
        with self._lock:
            self._flushed_at = time.monotonic()
            if not self._pending and not self._pending_extract:
                return
            puts = [r.row(p) for p, r in self._pending.items() if r is not None]
            drops = [(p,) for p, r in self._pending.items() if r is None]
            extracts = [r.row() for r in self._pending_extract.values()]
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", puts)
                db.executemany("DELETE FROM files WHERE path = ?", drops)
                db.executemany("INSERT OR REPLACE INTO extracted VALUES (?, ?, ?, ?)", extracts)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._pending.clear()
            self._pending_extract.clear()
            self._changed = True

    def compact(self) -> None:
        """Write pending records, export ``manifest.json`` if anything changed, checkpoint the WAL."""
        with self._lock:
            self.flush()
            if self._changed or not self.path.exists():
                self._export_json()
                self._changed = False
            self._db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _export_json(self) -> None:
        """Stream the store into ``manifest.json`` (temp file + rename), one entry per line."""
        tmp = self.path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.write(
                f'{{\n"format": {json.dumps(FORMAT)},\n"dataset": {json.dumps(self.dataset_id)},\n'
                f'"version": {json.dumps(self.version)},\n"updated_at": {json.dumps(now_iso())},\n"files": {{'
            )
            _write_entries(out, ((p, r.to_json()) for p, r in self.files()))
            out.write('},\n"extracted": {')
            _write_entries(out, ((r.archive, r.to_json()) for r in self.extractions()))
            out.write("}\n}\n")
        os.replace(tmp, self.path)

    def after_fork(self) -> None:
        """Give a forked child its own connection (a SQLite connection must not cross a fork).

        The parent's connection object is kept, unused and unclosed: closing it in the child
        could touch locks and files the parent still relies on.
        """
        if self._conn is not None:
            self._forked.append(self._conn)
        self._conn = None
        self._pending = {}
        self._pending_extract = {}
        self._lock = threading.RLock()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            self.flush()
            self._conn.close()
            self._conn = None


def _write_entries(out: Any, entries: Iterable[tuple[str, dict[str, Any]]]) -> None:
    sep = "\n"
    for key, data in entries:
        out.write(f"{sep}{json.dumps(key)}: {json.dumps(data, sort_keys=True)}")
        sep = ",\n"
    out.write("\n")


# -- migration from the JSON manifest of earlier versions --------------------------------------


def _migrate(conn: sqlite3.Connection, manifest_json: Path, journal: Path) -> bool:
    """Copy ``manifest.json`` and its journal into the (empty) store, inside the caller's transaction.

    Returns whether anything was found. ``manifest.json`` is read an entry per line when it has
    the layout earlier versions wrote, so even a large one is never held whole.
    """
    found = False
    if manifest_json.exists():
        files, extracted = _legacy_entries(manifest_json)
        conn.executemany(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (FileRecord.from_json(d).row(p) for p, d in files),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO extracted VALUES (?, ?, ?, ?)",
            (ExtractRecord.from_json(a, d).row() for a, d in extracted),
        )
        found = True
    if journal.exists():
        with journal.open("rb") as fh:
            for line in fh:
                if not line.endswith(b"\n") or not line.strip():
                    continue  # a line cut short by a kill was never acknowledged
                try:
                    op = json.loads(line)
                except ValueError:
                    log.warning("skipping a damaged line in %s", journal)
                    continue
                _apply_journal_op(conn, op)
        found = True
    if found:
        log.info("migrated %s to %s", manifest_json, STORE_NAME)
    return found


def _apply_journal_op(conn: sqlite3.Connection, op: dict[str, Any]) -> None:
    kind = op.pop("op", None)
    if kind == "file":
        path = op.pop("path")
        conn.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", FileRecord.from_json(op).row(path))
    elif kind == "drop":
        conn.execute("DELETE FROM files WHERE path = ?", (op["path"],))
    elif kind == "extract":
        archive = op.pop("archive")
        conn.execute("INSERT OR REPLACE INTO extracted VALUES (?, ?, ?, ?)", ExtractRecord.from_json(archive, op).row())


def _legacy_entries(path: Path) -> tuple[Iterator[tuple[str, dict[str, Any]]], list[tuple[str, dict[str, Any]]]]:
    """Return the file entries (streamed) and extraction entries of a JSON manifest."""
    try:
        with path.open(encoding="utf-8") as fh:
            head = [fh.readline() for _ in range(6)]
    except OSError:
        head = []
    if head and head[0] == "{\n" and head[-1] == '"files": {\n':  # exactly as earlier versions wrote it
        return _legacy_lines(path, "files"), list(_legacy_lines(path, "extracted"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))  # a hand-written or reformatted manifest
    except (OSError, ValueError):
        log.warning("%s is unreadable; files will be re-checked", path)
        return iter(()), []
    if not isinstance(data, dict):
        return iter(()), []
    return iter(dict(data.get("files") or {}).items()), list(dict(data.get("extracted") or {}).items())


def _legacy_lines(path: Path, section: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield the ``"key": {...}`` lines of one section of a manifest written an entry per line."""
    inside = False
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            text = line.strip()
            if not inside:
                inside = text == f'"{section}": {{'
                continue
            if text.startswith("}"):
                return
            if not text:
                continue
            try:
                entry = json.loads("{" + text.rstrip(",") + "}")
            except ValueError:
                log.warning("skipping a damaged entry in %s", path)
                continue
            yield from entry.items()
