"""The one progress protocol that fetch and normalize (and convert) report through.

A run announces how many things it will finish (files for a fetch, work units for a conversion)
and, when known, how many bytes they hold; then it counts bytes as they move and each thing as it
finishes, with the items it covered and how many of them failed; then it finishes. The runner
(the fetch engine, the conversion executor) calls ``start`` and ``finish``; whoever displays
progress supplies the implementation: a terminal bar, plain log lines, a test's recorder, or
``NullProgress``. Nothing here renders; implementations never see a URL or a credential, only
relative names and counts.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Progress(Protocol):
    """What a running fetch or conversion tells its display.

    Implementations must be thread-safe and cheap: a fetch calls ``advance`` from its worker
    threads for every received chunk.
    """

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        """Announce ``total`` things to finish (files, work units; ``None``: a streamed plan of unknown length) and the bytes they hold."""

    def advance(self, n_bytes: int) -> None:
        """Count ``n_bytes`` more bytes moved (negative when a transfer starts again from zero)."""

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        """Count one of the ``total`` as finished: it covered ``items`` items, ``errors`` of which failed."""

    def finish(self) -> None:
        """Stop rendering; called once by the runner, also when the run stops on an error."""


class NullProgress:
    """Report nothing (``--quiet``, ``--json`` and library use)."""

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        pass

    def advance(self, n_bytes: int) -> None:
        pass

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        pass

    def finish(self) -> None:
        pass
