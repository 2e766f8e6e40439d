"""Split one fetch across processes so that thousands of small files use every core.

With many small files the per-request CPU (HTTP framing, hashing, file creation) is the
bottleneck, and one Python process runs its threads' Python code on one core at a time. Forked
worker processes take interleaved shares of the files left to do, which they read from the
fetch's on-disk plan (``plan_store``); they cooperate through the same claims and manifest store
two independent ``medcat fetch`` runs use, and report every file's
outcome to the parent over a pipe (one JSON line each), so the parent's report and progress stay
the single source of truth. Used on Linux only (``fork``), for URL-based sources, and for lists
long enough to repay a fork (see ``process_count``). A child dies with its parent.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medcat_data.loaders.engine import Engine, FileOutcome
    from medcat_data.loaders.plan_store import PlanStore

log = logging.getLogger(__name__)

#: Below this many files one process's threads keep up; a fork is not worth it.
MIN_FILES = 512
#: Source kinds whose transports hold no state that a fork could break (the Hub client keeps
#: a process-wide HTTP pool and is left to its own threads).
FORKABLE_KINDS = frozenset({"physionet", "urls"})
#: More processes than this stop paying off (the server and the disk become the limit).
MAX_PROCESSES = 4
_BYTES_EVERY = 1 << 20


def process_count(n_files: int, kinds: Sequence[str], requested: int | None) -> int:
    """Decide how many processes share a fetch: ``requested``, or automatically.

    Automatic: one per core (at most ``MAX_PROCESSES``) for ``MIN_FILES`` files or more of
    forkable kinds on Linux; else one.
    """
    if not (sys.platform.startswith("linux") and hasattr(os, "fork")):
        return 1
    if any(kind not in FORKABLE_KINDS for kind in kinds):
        return 1
    if requested is not None:
        return max(1, min(requested, n_files or 1))
    if n_files < MIN_FILES:
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))


class PipeProgress:
    """The progress of a child process: byte counts go to the parent in batches."""

    def __init__(self, emit: Any) -> None:
        self.emit = emit
        self._pending = 0
        self._lock = threading.Lock()

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        pass

    def advance(self, n_bytes: int) -> None:
        with self._lock:
            self._pending += n_bytes
            if abs(self._pending) < _BYTES_EVERY:
                return
            n, self._pending = self._pending, 0
        self.emit({"a": n})

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        pass  # outcomes reach the parent as messages of their own (``outcome_message``)

    def finish(self) -> None:
        with self._lock:
            n, self._pending = self._pending, 0
        if n:
            self.emit({"a": n})


@dataclass
class Shard:
    """A child process working on share ``index`` of ``shares`` of the plan's todo files.

    ``reported`` holds one byte per file of the share (``seq // shares``), set as its outcome
    arrives: the parent knows which files a dead child left without keeping their names.
    """

    pid: int
    index: int
    shares: int
    fd: int
    reported: bytearray = field(default_factory=bytearray)
    reader: threading.Thread | None = None
    fatal: dict[str, Any] | None = None
    exit_code: int | None = None

    def unreported_count(self) -> int:
        """Count the files the child never reported (it died): the parent does them."""
        return self.reported.count(0)


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to stop this child when its parent dies (Linux ``PR_SET_PDEATHSIG``)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


def start(engine: Engine, plan: PlanStore, shares: int, index: int) -> Shard:
    """Fork a child that fetches share ``index`` of ``shares`` of the plan's todo files; return its handle.

    Must be called before the parent starts any thread (worker, progress display, the
    readers of other shards): ``listen`` starts the readers once every child is forked.
    """
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        code = 1
        try:
            os.close(read_fd)
            _die_with_parent(parent)
            code = _child(engine, plan, shares, index, write_fd)
        except BaseException:  # noqa: BLE001 - a child reports through its exit code
            code = 130
        finally:
            os._exit(code)
    os.close(write_fd)
    return Shard(pid, index, shares, read_fd, bytearray(plan.share(shares, index)))


def listen(engine: Engine, shards: Sequence[Shard]) -> None:
    """Start one reader thread per child: outcomes and progress flow into ``engine``."""
    for shard in shards:
        shard.reader = threading.Thread(target=_read, args=(engine, shard), name=f"medcat-shard-{shard.pid}", daemon=True)
        shard.reader.start()


def _child(engine: Engine, plan: PlanStore, shares: int, index: int, fd: int) -> int:
    lock = threading.Lock()

    def emit(message: dict[str, Any]) -> None:
        data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
        with lock:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]

    engine.become_shard(emit, PipeProgress(emit))
    try:
        engine.run_pool(plan.todo_files(shares, index), plan.share(shares, index))
    except BaseException as err:  # a fatal error (access denied) goes to the parent
        emit({"fatal": describe_fatal(err)})
        return 2
    finally:
        engine.progress.finish()
        engine.manifest.flush()
    return 0


def describe_fatal(err: BaseException) -> dict[str, Any]:
    """Describe an error that stopped a child so the parent can raise its equivalent."""
    from medcat_data.errors import AccessDeniedError

    if isinstance(err, AccessDeniedError):
        return {"kind": "access", "url": err.url, "status": err.status}
    return {"kind": type(err).__name__, "message": str(err)}


def outcome_message(outcome: FileOutcome, seq: int) -> dict[str, Any]:
    """Encode one file's outcome (``seq``: its place in the plan's todo list) as a pipe message."""
    return {
        "i": seq,
        "f": outcome.path,
        "s": outcome.status,
        "v": outcome.verified_by,
        "r": outcome.reason,
        "b": outcome.bytes_transferred,
        "x": outcome.extracted,
    }


def _read(engine: Engine, shard: Shard) -> None:
    """Turn a child's messages into outcomes and progress in the parent, until it exits."""
    from medcat_data.loaders.engine import FileOutcome

    with os.fdopen(shard.fd, "rb") as stream:
        for line in stream:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "a" in message:
                engine.progress.advance(int(message["a"]))
            elif "f" in message:
                shard.reported[int(message["i"]) // shard.shares] = 1
                engine.count(
                    FileOutcome(
                        message["f"], message["s"], message["v"], message["r"], int(message["b"]), bool(message["x"])
                    )
                )
            elif "fatal" in message:
                shard.fatal = message["fatal"]
    _, status = os.waitpid(shard.pid, 0)
    shard.exit_code = os.waitstatus_to_exitcode(status)


def stop(shards: Sequence[Shard]) -> None:
    """Terminate children still running (the parent was interrupted)."""
    for shard in shards:
        if shard.exit_code is None:
            try:
                os.kill(shard.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def join(shards: Sequence[Shard]) -> None:
    for shard in shards:
        if shard.reader is not None:
            while shard.reader.is_alive():
                shard.reader.join(timeout=0.5)
