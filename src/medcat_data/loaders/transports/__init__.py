"""One transport module per source kind, behind one small interface.

A ``Transport`` lists the files of one registry source (``list_files``) and opens per-worker
``Channel`` objects that move one file's bytes into a ``PartFile`` (``download``). Transports
never verify or commit: the engine does, the same way for every kind. Kinds are registered by
module path so that optional clients (``huggingface_hub``) load only when used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Protocol

from medcat_data.catalog.schema import Entry, Source
from medcat_data.errors import FetchError, redact
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.options import FetchOptions
from medcat_data.loaders.plan import RemoteFile
from medcat_data.loaders.progress import Progress

KIND_MODULES: dict[str, str] = {
    "physionet": "medcat_data.loaders.transports.physionet",
    "hf": "medcat_data.loaders.transports.hf_hub",
    "kaggle": "medcat_data.loaders.transports.kaggle",
    "urls": "medcat_data.loaders.transports.urls",
    "gdrive": "medcat_data.loaders.transports.gdrive",
    "osf": "medcat_data.loaders.transports.osf",
    "pmc": "medcat_data.loaders.transports.pmc",
    "tcia": "medcat_data.loaders.transports.tcia",
}


def _transport_module(kind: str) -> ModuleType | None:
    """Import the transport module of a kind, or return None when this version has none."""
    name = KIND_MODULES.get(kind)
    if name is None:
        return None
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name != name:
            raise
        return None


class Transient(Exception):
    """A failure worth retrying (connection lost, timeout, 429/5xx); carries ``Retry-After``.

    Internal signal between transports and the engine; never shown to users as such.
    """

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


class Denied(Exception):
    """The server refused access (401/403): retrying will not help; the whole source stops."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.url = url


class Unavailable(Exception):
    """This one file cannot be had (404, 410, another 4xx, a quota page); others may."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Channel(Protocol):
    """One worker's connection(s) to a source."""

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        """Move the file's bytes into ``part`` from ``part.offset`` on.

        Raises:
            Transient: retry later (the part keeps what arrived).
            Denied: 401/403.
            Unavailable: the file cannot be had.
        """

    def close(self) -> None:
        """Release connections."""


#: Fetch one planning file (an index) through the engine and return its verified final path.
IndexFetcher = Callable[[RemoteFile], Path]


class Transport(Protocol):
    """Everything one source kind needs: list the files, open channels."""

    source: Source

    def list_files(self, fetch_index: IndexFetcher) -> list[RemoteFile]:
        """Return the source's files (``include`` applied), fetching index files if needed."""

    def open_channel(self) -> Channel:
        """Open a channel for one worker thread."""

    def access_help(self) -> str:
        """Return what to tell a user who was denied access (steps, where credentials are read)."""


@dataclass
class SecretBook:
    """Every secret seen during a fetch, so anything shown or written can be scrubbed of them."""

    values: set[str] = field(default_factory=set)

    def add(self, *secrets: str | None) -> None:
        for s in secrets:
            if s and len(s) >= 3:
                self.values.add(s)

    def scrub(self, text: str) -> str:
        """Redact URLs' userinfo, secret query values, auth headers and every known secret."""
        return redact(text, sorted(self.values, key=len, reverse=True))


@dataclass
class TransportContext:
    """What transports share within one fetch."""

    entry: Entry
    version: str
    dest: Path
    options: FetchOptions
    secrets: SecretBook
    progress: Progress

    @property
    def mirror(self) -> str | None:
        return self.options.mirror_url


def make_transport(source: Source, ctx: TransportContext) -> Transport:
    """Build the transport of a source by its kind.

    Raises:
        FetchError: no transport for this kind in this version of medcat.
    """
    module = _transport_module(source.kind)
    if module is None:
        others = [
            s.name for s in ctx.entry.sources if s.name != source.name and _transport_module(s.kind) is not None
        ]
        hint = f" Try another source with --source ({', '.join(others)})." if others else ""
        raise FetchError(
            f"{ctx.entry.id}: source {source.name!r} is of kind {source.kind!r}, which medcat cannot "
            f"fetch yet.{hint}"
        )
    transport: Transport = module.make_transport(source, ctx)
    return transport


def access_steps(entry: Entry, credentials_hint: str) -> str:
    """Word the access steps of an entry for an ``AccessDeniedError``."""
    steps = " ".join(s.rstrip(".") + "." for s in entry.access_info.steps)
    dua = f" Data use agreement: {entry.access_info.dua_url}." if entry.access_info.dua_url else ""
    return f"To get access: {steps}{dua} Project page: {entry.homepage}. {credentials_hint}".strip()
