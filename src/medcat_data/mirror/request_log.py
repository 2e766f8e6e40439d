"""The mirror's record of every request it saw, so tests can assert what was (not) transferred."""

from __future__ import annotations

import fnmatch
import logging
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class RequestRecord:
    """One request as the mirror saw it.

    The record enters the log when the request arrives; ``status`` is set when the status line is
    sent and ``bytes_sent`` grows as the body streams, so a client that has its answer always
    finds its request in the log.

    Attributes:
        method: ``GET``, ``HEAD`` or ``POST``.
        path: the decoded URL path, without the query.
        query: query parameters; a bare key (``?download``) maps to ``""``.
        headers: request headers with lowercase names (``headers["range"]``).
        status: the HTTP status answered (0 while not yet answered).
        bytes_sent: body bytes written to the socket.
        user_agent: the ``User-Agent`` header, ``""`` when absent.
    """

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    bytes_sent: int = 0
    user_agent: str = ""


class RequestLog(list[RequestRecord]):
    """A list of ``RequestRecord`` with a lock for appends, counting and clearing."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def record(self, entry: RequestRecord) -> RequestRecord:
        """Append one record (thread-safe) and return it for later updates."""
        with self._lock:
            self.append(entry)
        return entry

    def count_path(self, path: str, method: str | None = None) -> int:
        """Count requests whose path equals ``path`` (or matches it as a glob), optionally by method."""
        with self._lock:
            entries = list(self)
        return sum(
            1
            for e in entries
            if (e.path == path or fnmatch.fnmatchcase(e.path, path))
            and (method is None or e.method == method.upper())
        )

    def reset(self) -> None:
        """Forget every record, keeping this list object (fixtures may hold a reference)."""
        with self._lock:
            self.clear()
