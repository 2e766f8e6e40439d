"""One transport module per source kind, behind one small interface.

A ``Transport`` lists the files of one registry source (``list_files``) and opens per-worker
``Channel`` objects that move one file's bytes into a ``PartFile`` (``download``). Transports
never verify or commit: the engine does, the same way for every kind. Kinds are registered by
module path so that optional clients (``huggingface_hub``) load only when used.

A transport module exports ``make_transport(source, ctx)`` and may export ``OPTIONS``, the typed
options class (``medcat_data.typed_options``) of its kind: ``medcat fetch ID --option KEY=VALUE``
reaches the transport as ``ctx.kind_options``, an instance of it. The engine knows no kind's options.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Protocol

from medcat_data.catalog.schema import Entry, Source
from medcat_data.errors import AccessDeniedError, FetchError, UsageError, redact
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.options import FetchOptions
from medcat_data.loaders.plan import RemoteFile
from medcat_data.progress import Progress
from medcat_data.typed_options import NoOptions, option_fields, parse_options

KIND_MODULES: dict[str, str] = {
    "physionet": "medcat_data.loaders.transports.physionet",
    "hf": "medcat_data.loaders.transports.hf_hub",
    "kaggle": "medcat_data.loaders.transports.kaggle",
    "urls": "medcat_data.loaders.transports.urls",
    "gdrive": "medcat_data.loaders.transports.gdrive",
    "osf": "medcat_data.loaders.transports.osf",
    "pmc": "medcat_data.loaders.transports.pmc",
    "tcia": "medcat_data.loaders.transports.tcia",
    "gcs": "medcat_data.loaders.transports.gcs",
    "s3": "medcat_data.loaders.transports.s3",
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


def kind_options_class(kind: str) -> type:
    """Return the options class a source kind declares (its module's ``OPTIONS``), else ``NoOptions``."""
    module = _transport_module(kind)
    options: type = getattr(module, "OPTIONS", NoOptions)
    return options


def parse_source_options(entry: Entry, sources: Sequence[Source], given: Mapping[str, str]) -> dict[str, object]:
    """Return each selected source kind's options, built from the ``KEY=VALUE`` texts given.

    A key goes to every selected kind that declares it and to no other. Called before any
    licence question or network use, so that a misplaced option is the first thing reported.

    Raises:
        UsageError: a key that no selected source's kind declares (the message names the keys
            that are), or a value that does not convert (a bad choice, a missing file).
    """
    kinds: list[str] = list(dict.fromkeys(s.kind for s in sources))
    declared: dict[str, list[str]] = {kind: [f.name for f in option_fields(kind_options_class(kind))] for kind in kinds}
    unknown = [key for key in given if not any(key in names for names in declared.values())]
    if unknown:
        raise UsageError(_misplaced(entry, kinds, declared, unknown))
    return {
        kind: parse_options(
            kind_options_class(kind), {k: v for k, v in given.items() if k in declared[kind]}, f"{entry.id} (kind {kind})"
        )
        for kind in kinds
    }


def _misplaced(entry: Entry, kinds: list[str], declared: dict[str, list[str]], unknown: list[str]) -> str:
    """Word the refusal of options that no selected source takes."""
    keys = ", ".join(unknown)
    offered = "; ".join(f"{', '.join(names)} (kind {kind})" for kind, names in declared.items() if names)
    if offered:
        return f"{entry.id}: no source of this fetch takes the option {keys}; options: {offered}."
    every_kind: list[str] = list(dict.fromkeys(s.kind for s in entry.sources))
    if any(option_fields(kind_options_class(kind)) for kind in every_kind):
        return (
            f"{entry.id}: the sources of this fetch ({_kinds(kinds)}) take no options, so not {keys}; "
            "another source of the entry does: pick it with --source."
        )
    return (
        f"{entry.id}: its sources ({_kinds(every_kind)}) take no options, so not {keys}. "
        "Use --only GLOB or --limit N to fetch part of it."
    )


def _kinds(kinds: list[str]) -> str:
    return f"kind{'s' if len(kinds) > 1 else ''} {', '.join(kinds)}"


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

    def list_files(self, fetch_index: IndexFetcher) -> Iterable[RemoteFile]:
        """Return or yield the source's files (``include`` applied), fetching index files if needed.

        Yielding is preferred for long listings: the engine stores them on disk as they come
        (``plan_store``) and never holds the whole list.
        """

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
    kind_options: object = NoOptions()
    """The options of this transport's kind (an instance of its module's ``OPTIONS``)."""

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


def denied_error(dataset_id: str, transport: Transport, status: int, url: str, scrub: Callable[[str], str]) -> AccessDeniedError:
    """Build the error of a 401/403: the transport's reason and steps when it words them, else its access help.

    A transport words a refusal by defining ``denial(status) -> (reason, steps)`` (PhysioNet does:
    it knows the user it sent and the project's access tier).
    """
    wording = getattr(transport, "denial", None)
    if wording is None:
        return AccessDeniedError(dataset_id, scrub(url), status, scrub(transport.access_help()))
    reason, steps = wording(status)
    return AccessDeniedError(dataset_id, scrub(url), status, reason=scrub(reason), steps=[scrub(s) for s in steps])


def access_steps(entry: Entry, credentials_hint: str) -> str:
    """Word the access steps of an entry for an ``AccessDeniedError``."""
    steps = " ".join(s.rstrip(".") + "." for s in entry.access_info.steps)
    dua = f" Data use agreement: {entry.access_info.dua_url}." if entry.access_info.dua_url else ""
    return f"To get access: {steps}{dua} Project page: {entry.homepage}. {credentials_hint}".strip()
