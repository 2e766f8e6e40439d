"""Plain file lists (Mendeley Data, NCBI, Zenodo, GitHub releases) with hashes where published.

Verification, strongest first: a sha256 or md5 pinned in the registry; a hash from a checksum
list published beside the files (``*.md5``, ``md5sum`` lists, ``SHA256SUMS``); else size plus
trust on first use.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from urllib.parse import urljoin

from medcat_data.catalog.schema import ChecksumFile, PinnedFile, Source, UrlListSource
from medcat_data.errors import FetchError
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, keep_included
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



def pinned_remote(
    source: Source, pinned: PinnedFile, mirror: str | None, published: Mapping[str, tuple[str, str]] | None = None
) -> RemoteFile:
    """Return the ``RemoteFile`` of a registry-pinned file, verified by its pinned hash, else by a
    published checksum list (``published``: url -> (algorithm, digest)), else trusted on first use."""
    algorithm, digest, verified_by = "sha256", None, "tofu"
    if pinned.sha256:
        digest, verified_by = pinned.sha256, "pinned"
    elif pinned.md5:
        algorithm, digest, verified_by = "md5", pinned.md5, "pinned"
    elif published and pinned.url in published:
        algorithm, digest = published[pinned.url]
        verified_by = "md5-list" if algorithm == "md5" else "sha256sums"
    return RemoteFile(
        path=join_subdir(source.subdir, pinned.path),
        url=apply_mirror(pinned.url, mirror),
        source=source.name,
        size=pinned.size,
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

    def _published_hashes(self, channel: UrlChannel) -> dict[str, tuple[str, str]]:
        """Map absolute upstream URL -> (algorithm, hash) from the declared checksum lists."""
        found: dict[str, tuple[str, str]] = {}
        for checksum in self.source.checksum_files:
            text = self._read_list(channel, checksum)
            for digest, path in parse_checksum_list(text, checksum.algorithm):
                base = checksum.base or checksum.url
                found[urljoin(base, path)] = (checksum.algorithm, digest)
        return found

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
