"""Plain file lists (Mendeley Data, NCBI, Zenodo, GitHub releases) with hashes where published.

Verification, strongest first: a sha256 or md5 pinned in the registry; a hash from a checksum
list published beside the files (``*.md5``, ``md5sum`` lists, ``SHA256SUMS``) or from a Zenodo
record's JSON (``zenodo-record``: each file's md5 and size); else size plus trust on first use.
A file URL matches a listed one exactly or, failing that, without its query string (Zenodo's
``?download=1``).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from medcat_data.catalog.schema import ChecksumFile, PinnedFile, Source, UrlListSource
from medcat_data.errors import FetchError
from medcat_data.loaders.plan import RemoteFile, VerifiedBy, apply_mirror, join_subdir, keep_included
from medcat_data.loaders.transports import Transient, TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel

log = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}


def parse_checksum_list(text: str, algorithm: str) -> Iterator[tuple[str, str]]:
    """Yield (hex digest, path) from a checksum list in any common layout.

    Accepts ``<hash>  <path>`` (coreutils, also with ``*`` for binary mode), ``<hash> <path>``,
    ``<path>  <hash>``, BSD ``MD5 (path) = hash`` and the tab-separated ``current.tree`` of the
    GIAB / 1000 Genomes FTP sites. Paths lose a leading ``./``.
    """
    width = _LENGTHS[algorithm]
    bsd = re.compile(r"^\w+ \((?P<path>.+)\) = (?P<hash>[0-9a-fA-F]+)$")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = raw.split("\t")
        if len(fields) >= 5 and len(fields[4].strip()) == width and _HEX.match(fields[4].strip()):
            # GIAB / 1000 Genomes ``current.tree``: path, type, size, mtime, md5, tab-separated, with
            # paths from the FTP root ``ftp/``, which the HTTPS tree serves without that prefix.
            path = fields[0].strip()
            yield fields[4].strip().lower(), _clean(path[4:] if path.startswith("ftp/") else path)
            continue
        m = bsd.match(line)
        if m and len(m["hash"]) == width:
            yield m["hash"].lower(), _clean(m["path"])
            continue
        first, _, rest = line.partition(" ")
        rest = rest.strip()
        if len(first) == width and _HEX.match(first) and rest:
            yield first.lower(), _clean(rest.lstrip("*"))
            continue
        tokens = line.split()
        if len(tokens) >= 2 and len(tokens[-1]) == width and _HEX.match(tokens[-1]):
            yield tokens[-1].lower(), _clean(" ".join(tokens[:-1]))


def _clean(path: str) -> str:
    while path.startswith("./"):
        path = path[2:]
    return path



@dataclass(frozen=True, slots=True)
class PublishedHash:
    """A hash (and, where the list gives one, the size) that upstream publishes for one file URL."""

    algorithm: str
    digest: str
    verified_by: VerifiedBy
    size: int | None = None


@dataclass(frozen=True, slots=True)
class ZenodoFile:
    """One file of a Zenodo record: its key (name), md5 and size, and its API content link."""

    key: str
    md5: str
    size: int | None
    link: str | None


_ZENODO_API = re.compile(r"^(?P<prefix>.*?)/api/records/(?P<record>[^/]+)/?$")


def parse_zenodo_record(text: str, what: str) -> Iterator[ZenodoFile]:
    """Yield the files of a Zenodo record API document (``GET /api/records/<id>``).

    Each ``files[]`` item gives ``key``, ``size``, ``checksum`` (``md5:<hex>``) and ``links.self``
    (Zenodo's default serialization); InvenioRDM's ``files.entries`` (a mapping by key) is read
    the same way. Items without an md5 are skipped: they are fetched by trust on first use.

    Raises:
        FetchError: the text is not a record document (``what`` names it in the message).
    """
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise FetchError(
            f"{what} is not a Zenodo record (not JSON: {err.msg} at line {err.lineno}). Run the fetch again later; "
            "if it repeats, the record API answers something else (a maintenance or login page)."
        ) from None
    files = record.get("files") if isinstance(record, dict) else None
    if isinstance(files, dict) and isinstance(files.get("entries"), dict):
        files = list(files["entries"].values())
    if not isinstance(files, list):
        raise FetchError(f"{what} is not a Zenodo record (no files list). Check the record id in the registry.")
    for item in files:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        algorithm, _, digest = str(item.get("checksum", "")).partition(":")
        if algorithm != "md5" or len(digest) != _LENGTHS["md5"] or not _HEX.match(digest):
            continue
        size = item.get("size")
        links = item.get("links")
        link = links.get("self") if isinstance(links, dict) else None
        yield ZenodoFile(item["key"], digest.lower(), size if isinstance(size, int) else None,
                         link if isinstance(link, str) else None)


def zenodo_files_base(api_url: str) -> str:
    """Return where a record's files are served, ``https://zenodo.org/records/<id>/files/``, from its API URL."""
    parts = urlsplit(api_url)
    m = _ZENODO_API.match(parts.path)
    if m is None:
        return api_url
    return urlunsplit((parts.scheme, parts.netloc, f"{m['prefix']}/records/{m['record']}/files/", "", ""))


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), unquote(parts.path), "", ""))


def published_for(url: str, published: Mapping[str, PublishedHash]) -> PublishedHash | None:
    """Return what ``published`` says about ``url``: an exact match, else one without the query string."""
    return published.get(url) or published.get(_without_query(url))


def pinned_remote(
    source: Source, pinned: PinnedFile, mirror: str | None, published: Mapping[str, PublishedHash] | None = None
) -> RemoteFile:
    """Return the ``RemoteFile`` of a registry-pinned file, verified by its pinned hash, else by a
    hash published upstream (``published``: url -> ``PublishedHash``), else trusted on first use."""
    algorithm, digest, verified_by, size = "sha256", None, "tofu", pinned.size
    found = published_for(pinned.url, published) if published else None
    if pinned.sha256:
        digest, verified_by = pinned.sha256, "pinned"
    elif pinned.md5:
        algorithm, digest, verified_by = "md5", pinned.md5, "pinned"
    elif found is not None:
        algorithm, digest, verified_by = found.algorithm, found.digest, found.verified_by
        size = size if size is not None else found.size
    return RemoteFile(
        path=join_subdir(source.subdir, pinned.path),
        url=apply_mirror(pinned.url, mirror),
        source=source.name,
        size=size,
        hash=digest,
        algorithm=algorithm,  # type: ignore[arg-type]
        verified_by=verified_by,  # type: ignore[arg-type]
        extract=pinned.extract,
        key=pinned.path,
    )


class UrlListTransport:
    """Download a registry-declared list of URLs."""

    def __init__(self, source: UrlListSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        self.settings = HttpSettings(timeouts=ctx.options.timeouts)

    def _published_hashes(self, channel: UrlChannel) -> dict[str, PublishedHash]:
        """Map upstream file URL (exact, and without its query string) -> the hash published for it."""
        found: dict[str, PublishedHash] = {}
        for checksum in self.source.checksum_files:
            text = self._read_list(channel, checksum)
            for url, hashed in self._listed(checksum, text):
                found[url] = found[_without_query(url)] = hashed
        return found

    def _listed(self, checksum: ChecksumFile, text: str) -> Iterator[tuple[str, PublishedHash]]:
        if checksum.format == "zenodo-record":
            base = checksum.base or zenodo_files_base(checksum.url)
            for item in parse_zenodo_record(text, f"{self.ctx.entry.id}: {checksum.url}"):
                hashed = PublishedHash("md5", item.md5, "zenodo-md5", item.size)
                yield urljoin(base, quote(item.key)), hashed
                if item.link:
                    yield item.link, hashed
            return
        verified_by: VerifiedBy = "md5-list" if checksum.algorithm == "md5" else "sha256sums"
        for digest, path in parse_checksum_list(text, checksum.algorithm):
            yield urljoin(checksum.base or checksum.url, path), PublishedHash(checksum.algorithm, digest, verified_by)

    def _read_list(self, channel: UrlChannel, checksum: ChecksumFile) -> str:
        url = apply_mirror(checksum.url, self.ctx.mirror)
        for attempt in range(self.ctx.options.retry.attempts):
            try:
                return channel.get_bytes(url).decode("utf-8", errors="replace")
            except Transient as err:
                if attempt + 1 >= self.ctx.options.retry.attempts:
                    raise FetchError(f"{self.ctx.entry.id}: checksum list {checksum.url} unavailable ({err.reason}).") from None
            except Unavailable as err:
                raise FetchError(f"{self.ctx.entry.id}: checksum list {checksum.url} unavailable ({err.reason}).") from None
        raise AssertionError("unreachable")

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        channel = UrlChannel(self.settings)
        try:
            published = self._published_hashes(channel) if self.source.checksum_files else {}
        finally:
            channel.close()
        files = []
        for pinned in self.source.files:
            if not keep_included(self.source, pinned.path):
                continue
            files.append(pinned_remote(self.source, pinned, self.ctx.mirror, published))
        return files

    def open_channel(self) -> UrlChannel:
        return UrlChannel(self.settings)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, "")


def make_transport(source: UrlListSource, ctx: TransportContext) -> UrlListTransport:
    return UrlListTransport(source, ctx)
