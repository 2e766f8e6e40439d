"""The manifest of a dataset folder: what is there, how it was verified, where it came from.

``.medcat/manifest.json`` is the compacted state, written atomically (temp file + rename), one
file entry per line so that it diffs well. ``.medcat/manifest.log`` is an append-only journal of
JSON lines written as files are committed, so an interrupted fetch loses nothing and two
processes fetching the same dataset see each other's work. Appends and compaction hold an
exclusive ``flock`` on the journal. URLs are stored redacted; no credential is ever written.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medcat_data.errors import redact

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

FORMAT = "medcat-manifest/1"
MANIFEST_NAME = "manifest.json"
JOURNAL_NAME = "manifest.log"

FileStatusValue = Literal["ok", "missing", "failed"]

#: Journal lines are written in batches: a killed fetch loses at most this much bookkeeping,
#: and files it loses are re-verified by hash (not re-downloaded) on the next run.
FLUSH_RECORDS = 256
FLUSH_INTERVAL_S = 0.25


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


@dataclass(frozen=True)
class FileRecord:
    """One file as the manifest knows it.

    ``status`` is ``ok`` for a verified file at its final path; ``missing`` / ``failed`` record
    files the last fetch selected but could not deliver (with ``reason``).
    """

    size: int
    hash: str | None
    algorithm: str
    verified_by: str
    url: str
    fetched_at: str
    status: FileStatusValue = "ok"
    reason: str | None = None

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
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileRecord:
        return cls(
            size=int(data.get("size", -1)),
            hash=data.get("hash"),
            algorithm=str(data.get("algorithm", "sha256")),
            verified_by=str(data.get("verified_by", "tofu")),
            url=str(data.get("url", "")),
            fetched_at=str(data.get("fetched_at", "")),
            status=data.get("status", "ok"),
            reason=data.get("reason"),
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


class Manifest:
    """The manifest of one dataset folder, shared by threads (and processes, via the journal)."""

    def __init__(self, meta_dir: Path, dataset_id: str, version: str) -> None:
        self.meta = Path(meta_dir)
        self.path = self.meta / MANIFEST_NAME
        self.journal_path = self.meta / JOURNAL_NAME
        self.dataset_id = dataset_id
        self.version = version
        self._files: dict[str, dict[str, Any]] = {}
        self._extracted: dict[str, dict[str, Any]] = {}
        self._lock = threading.RLock()
        self._journal_fd: int | None = None
        self._journal_offset = 0
        self._pending: list[str] = []
        self._flushed_at = time.monotonic()

    # -- opening -----------------------------------------------------------------------------

    @classmethod
    def open(cls, meta_dir: Path, dataset_id: str, version: str, *, create: bool = True) -> Manifest | None:
        """Load the manifest and its journal; ``None`` when absent and ``create`` is false."""
        manifest = cls(meta_dir, dataset_id, version)
        if not create and not manifest.path.exists() and not manifest.journal_path.exists():
            return None
        manifest._load_all()
        return manifest

    def _load_all(self) -> None:
        with self._lock:
            self._files, self._extracted = {}, {}
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                data = {}
            except ValueError:
                log.warning("%s is unreadable; files will be re-checked", self.path)
                data = {}
            if isinstance(data, dict):
                self._files = dict(data.get("files") or {})
                self._extracted = dict(data.get("extracted") or {})
            self._journal_offset = 0
            self._read_journal()

    def _read_journal(self) -> None:
        """Apply journal lines past the last offset (another process may have appended)."""
        if self._journal_fd is not None:
            size = os.fstat(self._journal_fd).st_size
            if size == self._journal_offset:
                return
            if size < self._journal_offset:  # compacted by another process: start over
                self._load_all()
                return
            data = os.pread(self._journal_fd, size - self._journal_offset, self._journal_offset)
        else:
            try:
                with self.journal_path.open("rb") as fh:
                    fh.seek(self._journal_offset)
                    data = fh.read()
            except FileNotFoundError:
                return
        end = data.rfind(b"\n") + 1
        for line in data[:end].splitlines():
            if line.strip():
                try:
                    self._apply(json.loads(line))
                except ValueError:
                    log.warning("skipping a damaged line in %s", self.journal_path)
        self._journal_offset += end

    def _apply(self, op: dict[str, Any]) -> None:
        kind = op.pop("op", None)
        if kind == "file":
            self._files[op.pop("path")] = op
        elif kind == "drop":
            self._files.pop(op["path"], None)
        elif kind == "extract":
            self._extracted[op.pop("archive")] = op

    def refresh(self) -> None:
        """Pick up entries other processes appended to the journal (and publish ours)."""
        with self._lock:
            self.flush()
            with _flock(self._journal_lock_fd(), shared=True):
                self._read_journal()

    # -- queries -----------------------------------------------------------------------------

    def get(self, path: str) -> FileRecord | None:
        """Return the record of a dataset-relative path, if any."""
        data = self._files.get(path)
        return None if data is None else FileRecord.from_json(data)

    def size_of(self, path: str) -> int | None:
        """Return the recorded size of a verified file (the fast path of a no-op re-run)."""
        data = self._files.get(path)
        if data is None or data.get("status", "ok") != "ok":
            return None
        return int(data["size"])

    def hash_of(self, path: str) -> str | None:
        data = self._files.get(path)
        return None if data is None else data.get("hash")

    def files(self) -> Iterator[tuple[str, FileRecord]]:
        """Yield every recorded file in path order."""
        with self._lock:
            items = sorted(self._files.items())
        for path, data in items:
            yield path, FileRecord.from_json(data)

    def extraction(self, archive: str) -> ExtractRecord | None:
        data = self._extracted.get(archive)
        return None if data is None else ExtractRecord.from_json(archive, data)

    def extractions(self) -> Iterator[ExtractRecord]:
        with self._lock:
            items = sorted(self._extracted.items())
        for archive, data in items:
            yield ExtractRecord.from_json(archive, data)

    def __len__(self) -> int:
        return len(self._files)

    # -- updates -----------------------------------------------------------------------------

    def record(self, path: str, record: FileRecord) -> None:
        """Record a file (journaled at once, compacted later)."""
        data = record.to_json()
        data["url"] = clean_url(data["url"])
        self._append({"op": "file", "path": path, **data})

    def record_verified(self, path: str, size: int, digest: str | None, algorithm: str, verified_by: str, url: str) -> None:
        """Record a verified file: the hot-path form of ``record`` (one per transferred file)."""
        self._append(
            {
                "op": "file",
                "path": path,
                "size": size,
                "hash": digest,
                "algorithm": algorithm,
                "verified_by": verified_by,
                "url": clean_url(url),
                "fetched_at": now_iso(),
            }
        )

    def drop(self, path: str) -> None:
        """Forget a file (e.g. it was quarantined after being recorded)."""
        self._append({"op": "drop", "path": path})

    def record_extraction(self, record: ExtractRecord) -> None:
        self._append({"op": "extract", "archive": record.archive, **record.to_json()})

    def _append(self, op: dict[str, Any]) -> None:
        line = json.dumps(op, separators=(",", ":")) + "\n"
        with self._lock:
            self._apply(dict(op))
            self._pending.append(line)
            now = time.monotonic()
            if len(self._pending) >= FLUSH_RECORDS or now - self._flushed_at >= FLUSH_INTERVAL_S:
                self.flush()

    def flush(self) -> None:
        """Append pending records to the journal (one locked write for many files)."""
        with self._lock:
            self._flushed_at = time.monotonic()
            if not self._pending:
                return
            data = "".join(self._pending).encode()
            self._pending.clear()
            fd = self._journal_fd_open()
            with _flock(fd):
                # Lines other processes appended since our last read come first.
                self._read_journal()
                os.write(fd, data)
                self._journal_offset += len(data)

    def compact(self) -> None:
        """Fold the journal into ``manifest.json`` atomically and empty the journal."""
        with self._lock:
            self.meta.mkdir(parents=True, exist_ok=True)
            self.flush()
            fd = self._journal_fd_open()
            with _flock(fd):
                self._load_all()
                self._write_json()
                os.ftruncate(fd, 0)
                self._journal_offset = 0

    def _write_json(self) -> None:
        lines = [
            "{",
            f'"format": {json.dumps(FORMAT)},',
            f'"dataset": {json.dumps(self.dataset_id)},',
            f'"version": {json.dumps(self.version)},',
            f'"updated_at": {json.dumps(now_iso())},',
            '"files": {',
        ]
        items = sorted(self._files.items())
        for i, (path, data) in enumerate(items):
            comma = "," if i < len(items) - 1 else ""
            lines.append(f"{json.dumps(path)}: {json.dumps(data, sort_keys=True)}{comma}")
        lines.append("},")
        lines.append('"extracted": {')
        ex_items = sorted(self._extracted.items())
        for i, (archive, data) in enumerate(ex_items):
            comma = "," if i < len(ex_items) - 1 else ""
            lines.append(f"{json.dumps(archive)}: {json.dumps(data, sort_keys=True)}{comma}")
        lines.append("}")
        lines.append("}")
        tmp = self.path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)

    def _journal_fd_open(self) -> int:
        if self._journal_fd is None:
            self.meta.mkdir(parents=True, exist_ok=True)
            self._journal_fd = os.open(self.journal_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        return self._journal_fd

    def _journal_lock_fd(self) -> int | None:
        if self._journal_fd is None and not self.journal_path.exists():
            return None
        return self._journal_fd_open()

    def after_fork(self) -> None:
        """Give a forked child its own journal descriptor (``flock`` is per open file)."""
        if self._journal_fd is not None:
            os.close(self._journal_fd)
        self._journal_fd = None
        self._pending = []
        self._lock = threading.RLock()
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        with self._lock:
            self.flush()
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None


class _flock:
    """Hold ``flock`` on a descriptor (exclusive unless ``shared``); a no-op without ``fcntl``."""

    def __init__(self, fd: int | None, shared: bool = False) -> None:
        self.fd = fd
        self.shared = shared

    def __enter__(self) -> None:
        if self.fd is not None and fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None and fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
