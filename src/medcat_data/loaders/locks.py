"""Let several processes fetch one dataset folder together without stepping on each other.

Each file is *claimed* before its bytes are touched: a POSIX byte-range lock on one byte of
``.medcat/claims`` (the byte's offset is derived from the file's path). A claim costs one
system call, needs no file per claimed path, and the kernel releases it when a process dies,
so a killed fetch never leaves a stale lock. A second ``medcat fetch`` of the same dataset
skips files the first one holds and comes back to them once released, finding them done.
Where ``fcntl`` is missing (Windows) one ``filelock`` on the whole folder makes the second
fetch wait instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from medcat_data.errors import LockTimeoutError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

CLAIMS_NAME = "claims"
_OFFSET_BITS = 48


def claim_offset(rel: str) -> int:
    """Return the byte of the claims file that stands for a dataset-relative path."""
    return int.from_bytes(hashlib.blake2b(rel.encode(), digest_size=6).digest(), "big") % (1 << _OFFSET_BITS)


class _SharedTable:
    """One open claims file per process and folder (closing any descriptor of a file drops
    every POSIX lock the process holds on it, so the descriptor is shared and reference-counted)."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self.owned: set[int] = set()
        self.lock = threading.Lock()
        self.users = 0


_TABLES: dict[str, _SharedTable] = {}
_TABLES_LOCK = threading.Lock()


class ClaimTable:
    """Claims on the files of one dataset folder, for this process."""

    def __init__(self, meta_dir: Path) -> None:
        self.meta = Path(meta_dir)
        self.meta.mkdir(parents=True, exist_ok=True)
        self._path = self.meta / CLAIMS_NAME
        self._table: _SharedTable | None = None
        if fcntl is not None:
            key = str(self._path.resolve())
            with _TABLES_LOCK:
                table = _TABLES.get(key)
                if table is None:
                    table = _TABLES[key] = _SharedTable(self._path)
                table.users += 1
            self._table = table
            self._key = key

    def try_claim(self, rel: str) -> bool:
        """Claim a file without waiting; ``False`` when another worker or process holds it."""
        table = self._table
        if table is None:
            return True
        offset = claim_offset(rel)
        with table.lock:
            if offset in table.owned:
                return False
            try:
                fcntl.lockf(table.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset, os.SEEK_SET)
            except OSError:
                return False
            table.owned.add(offset)
        return True

    def release(self, rel: str) -> None:
        """Release a claim taken with ``try_claim``."""
        table = self._table
        if table is None:
            return
        offset = claim_offset(rel)
        with table.lock:
            if offset in table.owned:
                fcntl.lockf(table.fd, fcntl.LOCK_UN, 1, offset, os.SEEK_SET)
                table.owned.discard(offset)

    @contextmanager
    def hold(self, rel: str, *, poll_s: float = 0.1, timeout_s: float | None = None) -> Iterator[bool]:
        """Claim a file, waiting while someone else holds it; yields whether we had to wait.

        Raises:
            LockTimeoutError: still held by another process after ``timeout_s``.
        """
        waited = False
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.try_claim(rel):
            if not waited:
                log.info("waiting for another medcat process working on %s", rel)
            waited = True
            if deadline is not None and time.monotonic() > deadline:
                raise LockTimeoutError(
                    f"{rel} in {self.meta.parent} is held by another medcat process for over "
                    f"{timeout_s:.0f} s. Let it finish or stop it, then run the fetch again."
                )
            time.sleep(poll_s)
        try:
            yield waited
        finally:
            self.release(rel)

    @contextmanager
    def whole_folder(self, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the folder-wide lock where byte-range claims are unavailable (else a no-op)."""
        if self._table is not None:
            yield
            return
        lock = FileLock(str(self.meta / "lock"))
        try:
            lock.acquire(timeout=-1 if timeout_s is None else timeout_s)
        except Timeout as err:
            raise LockTimeoutError(
                f"another medcat process holds {self.meta.parent}; wait for it or stop it."
            ) from err
        try:
            yield
        finally:
            lock.release()

    def after_fork(self) -> None:
        """Reset per-process state in a forked child (POSIX record locks are not inherited)."""
        if self._table is not None:
            self._table.owned = set()
            self._table.lock = threading.Lock()

    def close(self) -> None:
        table = self._table
        if table is None:
            return
        self._table = None
        with _TABLES_LOCK:
            table.users -= 1
            if table.users == 0:
                _TABLES.pop(self._key, None)
                os.close(table.fd)
