"""The on-disk layout of a dataset folder and the ``.part`` files bytes stream into.

A dataset folder holds the upstream files at their relative paths plus ``.medcat/``:
``manifest.sqlite`` (+ its ``manifest.json`` export), ``plans/`` (the plan of a running fetch),
``partial/`` (``<key>.part`` and an optional ``<key>.json`` resume record), ``quarantine/``
(bytes that failed verification twice) and ``claims`` (the byte-range lock file of cooperating
processes). Nothing at a final path is ever written in
place: bytes go to a part file and are renamed only after verification.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import threading
import time
from pathlib import Path
from typing import Any

from medcat_data.errors import redact
from medcat_data.errors import UsageError
from medcat_data.progress import Progress

log = logging.getLogger(__name__)

META_DIR = ".medcat"
#: A resume record is written once a transfer has lasted this long or received this much;
#: shorter transfers are cheaper to restart than to book-keep (a small file costs one
#: extra file creation, about as much as the transfer itself).
RESUME_RECORD_AFTER_S = 1.0
RESUME_RECORD_AFTER_BYTES = 4 << 20
_SEED_CHUNK_BYTES = 1 << 20


def safe_relative(path: str) -> str:
    """Normalize a dataset-relative POSIX path, refusing absolute paths and ``..``.

    Raises:
        UsageError: the path would leave the dataset folder.
    """
    if not path or path.startswith("/") or "\\" in path or (len(path) > 1 and path[1] == ":"):
        raise UsageError(f"refusing unsafe relative path {path!r} (absolute or with backslashes)")
    norm = posixpath.normpath(path)
    if norm == "." or norm.startswith("../") or norm == ".." or norm.split("/", 1)[0] == META_DIR:
        raise UsageError(f"refusing unsafe relative path {path!r} (outside the dataset folder)")
    return norm


def new_hasher(algorithm: str, size: int | None = None) -> Any:
    """Return a hashlib object for ``algorithm``; ``git-sha1`` is git's blob id (needs ``size``)."""
    if algorithm == "git-sha1":
        return hashlib.sha1(b"blob %d\0" % (size or 0))
    return hashlib.new(algorithm)


class DestLayout:
    """Paths inside one dataset folder; creates folders on demand and remembers which exist.

    Hot paths use the ``*_str`` variants: thousands of small files make ``pathlib`` overhead
    visible next to the transfer itself.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.meta = self.root / META_DIR
        self.partial = self.meta / "partial"
        self.quarantine_dir = self.meta / "quarantine"
        self._root = os.fspath(self.root)
        self._partial = os.fspath(self.partial)
        self._made: set[str] = set()
        self._lock = threading.Lock()

    def final(self, rel: str) -> Path:
        """Return the final path of a dataset-relative file."""
        return self.root / safe_relative(rel)

    def final_str(self, rel: str) -> str:
        """Return the final path of a dataset-relative file as a string (hot path)."""
        return os.path.join(self._root, safe_relative(rel))

    @staticmethod
    def key(rel: str) -> str:
        """Return the flat file-name stem used for a file's part and resume record."""
        return hashlib.blake2b(rel.encode(), digest_size=10).hexdigest()

    def part(self, rel: str) -> Path:
        return self.partial / f"{self.key(rel)}.part"

    def part_paths(self, rel: str) -> tuple[str, str, str]:
        """Return (key, part path, resume-record path) as strings."""
        key = self.key(rel)
        return key, os.path.join(self._partial, key + ".part"), os.path.join(self._partial, key + ".json")

    def ensure_dir(self, folder: Path | str) -> None:
        """Create ``folder`` (and parents) once per process."""
        text = os.fspath(folder)
        if text in self._made:
            return
        os.makedirs(text, exist_ok=True)
        with self._lock:
            self._made.add(text)

    def ensure_parent(self, path: Path | str) -> None:
        self.ensure_dir(os.path.dirname(os.fspath(path)))

    def quarantine_path(self, rel: str) -> Path:
        """Return a fresh ``.medcat/quarantine/<rel>.bad`` path (numbered if taken)."""
        base = self.quarantine_dir / (safe_relative(rel) + ".bad")
        candidate, n = base, 1
        while candidate.exists():
            candidate = base.with_name(f"{base.name}.{n}")
            n += 1
        return candidate


class PartFile:
    """A ``.part`` file receiving one file's bytes, hashing them as they stream.

    ``open`` decides whether earlier bytes can be resumed: a part may continue when a resume
    record holds the server's validator (for ``If-Range``) or when the file has an expected
    hash (a stale prefix then fails verification and is retried from zero).
    """

    def __init__(
        self,
        layout: DestLayout,
        rel: str,
        url: str,
        *,
        algorithm: str | None,
        expected_size: int | None,
        expected_hash: str | None,
        progress: Progress,
    ) -> None:
        self.layout = layout
        self.rel = rel
        self.url = url
        self.key, self.path, self.record_path = layout.part_paths(rel)
        self.algorithm = algorithm
        self.expected_size = expected_size
        self.expected_hash = expected_hash
        self.progress = progress
        self.offset = 0
        self.validator: str | None = None
        self.total: int | None = None
        #: The ``Content-Type`` the bytes came with (``None`` for local copies), for content checks.
        self.content_type: str | None = None
        self.head = b""
        self._fd: int | None = None
        self._hasher: Any = None
        self._record_written = False
        self._session_bytes = 0
        self._opened_at = 0.0

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, resume: bool) -> int:
        """Open the part, resuming earlier bytes when allowed; return the offset to request from."""
        self.layout.ensure_dir(self.layout.partial)
        try:  # the common case, a new part: no size to look up
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            size = 0
        except FileExistsError:
            fd = os.open(self.path, os.O_WRONLY)
            size = os.fstat(fd).st_size
        self._fd = fd
        self._opened_at = time.monotonic()
        self._session_bytes = 0
        # A resume record only matters for earlier bytes; a fresh part costs no extra look-up.
        record = self._read_record() if size else {}
        can_resume = (
            resume
            and size > 0
            and (record.get("validator") or self.expected_hash)
            and (self.expected_size is None or size <= self.expected_size)
        )
        if can_resume:
            self.validator = record.get("validator")
            self.offset = size
            self._record_written = bool(record)
            self._hasher = self._new_hasher()
            self._seed(size)
            os.lseek(fd, size, os.SEEK_SET)
            log.debug("%s: resuming at byte %d", self.rel, size)
        else:
            self._record_written = bool(record)  # a stale record is dropped by the reset
            self._reset(truncate=size > 0)
        return self.offset

    def restart(self) -> None:
        """Drop the bytes received so far and start again from byte 0."""
        if self._fd is None:
            self.open(resume=False)
            return
        if self.offset:
            self.progress.advance(-self.offset)
        self._reset()

    def _reset(self, truncate: bool = True) -> None:
        assert self._fd is not None
        if truncate:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
        self.offset = 0
        self.validator = None
        self.content_type = None
        self.head = b""
        self._hasher = self._new_hasher()
        if self._record_written:
            self._drop_record()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        """Close and delete the part and its resume record."""
        self.close()
        for p in (self.path, self.record_path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
        self._record_written = False

    def commit(self, final: Path | str) -> None:
        """Move the verified part to its final path (atomic rename)."""
        self.close()
        self.layout.ensure_parent(final)
        os.replace(self.path, final)
        if self._record_written:
            self._drop_record()

    def quarantine(self) -> Path:
        """Move the part aside under ``.medcat/quarantine/`` and return where it went."""
        self.close()
        target = self.layout.quarantine_path(self.rel)
        self.layout.ensure_parent(target)
        os.replace(self.path, target)
        if self._record_written:
            self._drop_record()
        return target

    # -- bytes -------------------------------------------------------------------------------

    def write(self, data: memoryview | bytes) -> None:
        """Append bytes: hash them, write them, count them."""
        assert self._fd is not None
        n = len(data)
        if n == 0:
            return
        if self._hasher is not None:
            self._hasher.update(data)
        if self.offset < 64:
            self.head = (self.head + bytes(data[: 64 - self.offset]))[:64]
        written = os.write(self._fd, data)
        while written < n:
            written += os.write(self._fd, data[written:])
        self.offset += n
        self._session_bytes += n
        self.progress.advance(n)
        if not self._record_written and (
            self._session_bytes >= RESUME_RECORD_AFTER_BYTES
            or time.monotonic() - self._opened_at >= RESUME_RECORD_AFTER_S
        ):
            self._write_record()

    def adopt(self, path: Path | str) -> None:
        """Take over a file another client downloaded completely (the Hub client), hashing it.

        The file's bytes were already counted by that client's progress, so they are not
        counted again.
        """
        self.close()
        os.replace(path, self.path)
        self._fd = os.open(self.path, os.O_WRONLY)
        size = os.fstat(self._fd).st_size
        self.head = b""
        self._hasher = self._new_hasher()
        self._seed(size)
        self.offset = size
        self.total = size

    def set_validator(self, validator: str | None) -> None:
        """Remember the server's validator (strong ETag or Last-Modified) for a later resume."""
        if validator == self.validator:
            return
        self.validator = validator
        if self._record_written:
            self._write_record()

    def digest(self) -> str | None:
        """Return the hex digest of every byte written (``None`` when hashing is off)."""
        return None if self._hasher is None else str(self._hasher.hexdigest())

    def read_at(self, offset: int, length: int) -> bytes:
        """Read bytes back from the part (magic checks beyond the first 64 bytes)."""
        with open(self.path, "rb", buffering=0) as fh:
            fh.seek(offset)
            return fh.read(length)

    # -- internals ---------------------------------------------------------------------------

    def _new_hasher(self) -> Any:
        if self.algorithm is None:
            return None
        return new_hasher(self.algorithm, self.expected_size)

    def _seed(self, size: int) -> None:
        """Feed the bytes already in the part to the hasher (and the head buffer)."""
        buf = bytearray(_SEED_CHUNK_BYTES)
        view = memoryview(buf)
        with open(self.path, "rb", buffering=0) as fh:
            done = 0
            while done < size:
                n = fh.readinto(buf)
                if not n:
                    break
                if self._hasher is not None:
                    self._hasher.update(view[:n])
                if done < 64:
                    self.head = (self.head + bytes(view[: 64 - done]))[:64]
                done += n

    def _read_record(self) -> dict[str, Any]:
        try:
            with open(self.record_path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (FileNotFoundError, ValueError, OSError):
            return {}
        if not isinstance(data, dict) or data.get("path") != self.rel:
            return {}
        return data

    def _write_record(self) -> None:
        payload = {"path": self.rel, "url": redact(self.url), "validator": self.validator}
        tmp = self.record_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)
        os.replace(tmp, self.record_path)
        self._record_written = True

    def _drop_record(self) -> None:
        try:
            os.unlink(self.record_path)
        except FileNotFoundError:
            pass
        self._record_written = False
