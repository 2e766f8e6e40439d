"""Fault switches of the mirror server: which request misbehaves, how, and how many times.

Faults are data. ``FaultBook`` decides which faults a request meets and counts them down; the
bytes themselves are mangled by ``exchange.Exchange.stream``. Nothing here touches a socket.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

FaultKind = Literal["drop", "status", "corrupt", "slow", "unauthorized"]

#: Faults that replace the whole response; they apply to GET and HEAD alike.
RESPONSE_KINDS: frozenset[str] = frozenset({"status", "unauthorized"})
#: Faults that change a response body; they apply to GET only.
BODY_KINDS: frozenset[str] = frozenset({"drop", "corrupt", "slow"})


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the mirror, matched by an ``fnmatch`` glob on the URL path.

    Attributes:
        path: glob on the decoded URL path, e.g. ``"/files/demo/1.0.0/*.dcm"``.
        kind: ``drop`` (close the connection after ``after_bytes`` body bytes), ``status`` (answer
            ``status`` with an optional ``Retry-After``), ``corrupt`` (right length, every byte
            flipped), ``slow`` (sleep ``delay_s`` before the body and between chunks, and/or
            throttle to ``bytes_per_s``) or ``unauthorized`` (401 with a Basic challenge).
        times: how many matching requests meet the fault; ``None`` means every one.
        after_bytes: for ``drop``, body bytes sent before the connection is closed.
        status: for ``status``, the HTTP status code (429, 500, 503, ...).
        retry_after: for ``status``, seconds sent in ``Retry-After`` (``1.0`` -> ``"1"``).
        delay_s: for ``slow``, seconds slept before the body and between chunks.
        bytes_per_s: for ``slow``, the body's throughput cap.
    """

    path: str
    kind: FaultKind
    times: int | None = 1
    after_bytes: int = 0
    status: int = 503
    retry_after: float | None = None
    delay_s: float = 0.0
    bytes_per_s: int | None = None

    def matches(self, url_path: str) -> bool:
        """Tell whether this fault's glob matches a decoded URL path."""
        return fnmatch.fnmatchcase(url_path, self.path)


@dataclass
class _Armed:
    fault: Fault
    remaining: int | None


class FaultBook:
    """The armed faults of one server, consumed thread-safely as requests meet them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def add(self, fault: Fault) -> None:
        """Arm a fault; faults added first are met first."""
        if fault.times is not None and fault.times < 1:
            return
        with self._lock:
            self._armed.append(_Armed(fault, fault.times))
        log.debug("armed fault %s", fault)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._armed.clear()

    def take_response_fault(self, url_path: str) -> Fault | None:
        """Consume and return the first armed ``status``/``unauthorized`` fault for a path."""
        taken = self._take(url_path, RESPONSE_KINDS, first_only=True)
        return taken[0] if taken else None

    def take_body_faults(self, url_path: str) -> list[Fault]:
        """Consume and return every armed body fault (``drop``, ``corrupt``, ``slow``) for a path."""
        return self._take(url_path, BODY_KINDS, first_only=False)

    def _take(self, url_path: str, kinds: frozenset[str], *, first_only: bool) -> list[Fault]:
        taken: list[Fault] = []
        seen_kinds: set[str] = set()
        with self._lock:
            for armed in self._armed:
                fault = armed.fault
                if fault.kind not in kinds or fault.kind in seen_kinds or not fault.matches(url_path):
                    continue
                if armed.remaining is not None:
                    if armed.remaining <= 0:
                        continue
                    armed.remaining -= 1
                taken.append(fault)
                seen_kinds.add(fault.kind)
                if first_only:
                    break
        for fault in taken:
            log.debug("fault %s hits %s", fault.kind, url_path)
        return taken
