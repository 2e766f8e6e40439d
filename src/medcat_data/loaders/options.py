"""The knobs of one fetch, as frozen values the CLI builds and the engine reads.

Holds data only: no I/O, no defaults that depend on the environment except where a field says so.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Asked for a username and password when none is found; returns ``None`` to give up.
#: The CLI supplies one on a TTY; the library never reads stdin itself.
CredentialPrompt = Callable[[str], "tuple[str, str] | None"]


def default_jobs() -> int:
    """Return the default number of parallel transfers: two per core, between 2 and 8.

    Transfers wait on the network and the disk, so more transfers than cores pay off; but on a
    small machine fetching many small files every extra thread costs context switches (measured
    on 2 cores: 3-4 threads beat 8 by a third), hence the cap tied to the core count.
    """
    return min(8, max(2, 2 * (os.cpu_count() or 1)))


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transfer that failed for a transient reason.

    Delays grow exponentially from ``base_s`` up to ``max_s`` with full jitter; a server's
    ``Retry-After`` replaces the computed delay (capped at ``max_retry_after_s``).
    """

    attempts: int = 6
    base_s: float = 0.5
    max_s: float = 30.0
    max_retry_after_s: float = 600.0

    def delay_s(self, attempt: int, retry_after_s: float | None, rng: random.Random) -> float:
        """Return the seconds to wait before retry number ``attempt`` (0-based)."""
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_retry_after_s)
        ceiling = min(self.max_s, self.base_s * (2**attempt))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Timeouts:
    """Network timeouts in seconds: establishing a connection, and silence while reading."""

    connect_s: float = 20.0
    read_s: float = 60.0


@dataclass(frozen=True)
class FetchOptions:
    """What to fetch, where to, and how.

    Attributes:
        dest: dataset folder; ``None`` = ``$MEDCAT_HOME/raw/<id>/<version>/``.
        jobs: parallel workers; ``None`` = ``default_jobs()``.
        mirror: replaces scheme, host and port of upstream URLs (``http(s)://`` or ``file://``).
        only: globs on relative paths; a file is kept when any matches.
        limit: keep the first N files of the stable (path-sorted) order.
        accept_license: record acceptance of a DUA / credentialed licence.
        dry_run: plan and compare with what is on disk; transfer nothing.
        force: re-transfer files that are already present and verified.
        source: pick one source of the entry by name (its companions come along).
        hash_while_streaming: compute hashes while streaming; off only for benchmarks (files
            are then recorded as unverified).
        interactive: allow ``prompt`` to ask for credentials.
        prompt: asks for credentials on a TTY; see ``CredentialPrompt``.
        lock_poll_s: how often to look again at a file another process is fetching.
        processes: worker processes sharing the transfers (``None``: automatic, see
            ``loaders.processes.process_count``); ``jobs`` is split between them.
        source_options: ``KEY=VALUE`` texts for the selected sources' kinds (``--option``); each
            kind's transport declares the keys it takes (its module's ``OPTIONS``).
    """

    dest: Path | None = None
    jobs: int | None = None
    mirror: str | None = None
    only: tuple[str, ...] = ()
    limit: int | None = None
    accept_license: bool = False
    dry_run: bool = False
    force: bool = False
    source: str | None = None
    hash_while_streaming: bool = True
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    interactive: bool = False
    prompt: CredentialPrompt | None = None
    lock_poll_s: float = 0.1
    processes: int | None = None
    source_options: Mapping[str, str] = field(default_factory=dict)

    @property
    def workers(self) -> int:
        """Return the number of worker threads to run."""
        return max(1, self.jobs or default_jobs())

    @property
    def mirror_url(self) -> str | None:
        """Return the mirror URL from the option or ``$MEDCAT_MIRROR``, without a trailing slash."""
        value = self.mirror or os.environ.get("MEDCAT_MIRROR") or None
        return value.rstrip("/") if value else None
