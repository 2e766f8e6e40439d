"""OSF project storage: files listed through the OSF API v2, downloaded through their download links.

Listing walks ``GET <api>/v2/nodes/<project>/files/<storage>/`` (JSON:API): each page holds
``data`` (files and folders) and ``links.next`` (the next page, ``null`` on the last). A folder's
content is at ``relationships.files.links.related.href``; a file carries ``attributes.kind ==
"file"``, ``materialized_path`` (``/VQA_RAD Image Folder/synpic1.jpg``: names may contain
spaces), ``size`` and ``extra.hashes`` (``sha256`` and ``md5`` for osfstorage files). Bytes come
from ``links.download`` (``osf.io/download/<id>/``, which redirects to the file server). Every
URL the API returns is mapped onto ``--mirror`` like any other upstream URL.

Verification: the sha256 (else md5) from the file's metadata (``osf-meta``); a file without
hashes is checked by size and trust on first use. A ``file://`` mirror is a local copy of the
storage tree (for instance OSF's "download as zip" extracted, whose top folder
``osfstorage-archive/`` is recognised): its files are listed from disk, by size and trust on
first use. Transfers and verification are the engine's.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from medcat_data.catalog.schema import OsfSource
from medcat_data.errors import AccessDeniedError, FetchError
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, keep_included, mirror_is_local
from medcat_data.loaders.transports import Denied, Transient, TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel

log = logging.getLogger(__name__)

#: Top folder of the zip OSF builds when a whole storage is downloaded at once.
ARCHIVE_TOP = "osfstorage-archive"
#: An API page is small JSON (10 entries by default); anything larger is not an API answer.
_PAGE_LIMIT_BYTES = 16 << 20
#: Guard against a server whose ``links.next`` never ends.
_MAX_PAGES = 100_000


def storage_url(source: OsfSource) -> str:
    """Return the upstream API URL that lists the top folder of a project's storage."""
    return f"{source.base_url.rstrip('/')}/v2/nodes/{source.project}/files/{source.storage}/"


def clean_path(materialized: str) -> str | None:
    """Return a storage-relative POSIX path, or ``None`` when it would leave the dataset folder."""
    path = materialized.strip().lstrip("/")
    if not path or path.endswith("/"):
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or "\\" in path or "\0" in path:
        return None
    return path


class OsfTransport:
    """List and download the files of one OSF project storage."""

    def __init__(self, source: OsfSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        self.settings = HttpSettings(timeouts=ctx.options.timeouts)

    # -- listing ---------------------------------------------------------------------------

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        """Return every file of the storage (``include`` applied), walking folders and pages.

        Raises:
            FetchError: the API cannot be read (after retries) or answers something that is not
                an OSF file listing.
        """
        if mirror_is_local(self.ctx.mirror):
            return self._list_local(Path(urlsplit(self.ctx.mirror or "").path))
        files: list[RemoteFile] = []
        channel = UrlChannel(self.settings)
        try:
            for entry in self._walk(channel, storage_url(self.source)):
                remote = self._remote(entry)
                if remote is not None:
                    files.append(remote)
        finally:
            channel.close()
        if not files:
            log.warning("%s: the OSF storage of project %s lists no files", self.ctx.entry.id, self.source.project)
        return files

    def _walk(self, channel: UrlChannel, url: str) -> Iterator[dict[str, Any]]:
        """Yield the file entries under a folder URL, depth first, following ``links.next``."""
        folders = [url]
        seen: set[str] = set()
        while folders:
            page_url: str | None = folders.pop(0)
            pages = 0
            while page_url is not None:
                if page_url in seen:
                    break
                seen.add(page_url)
                pages += 1
                if pages > _MAX_PAGES:
                    raise FetchError(f"{self.ctx.entry.id}: the OSF listing at {url} does not end; giving up.")
                page = self._get_json(channel, page_url)
                for entry in page.get("data") or []:
                    attributes = entry.get("attributes") or {}
                    if attributes.get("kind") == "folder":
                        href = _dig(entry, "relationships", "files", "links", "related", "href")
                        if isinstance(href, str):
                            folders.append(href)
                        else:
                            log.warning("%s: OSF folder %r has no files link; skipped", self.ctx.entry.id, attributes.get("materialized_path"))
                    elif attributes.get("kind") == "file":
                        yield entry
                nxt = _dig(page, "links", "next")
                page_url = nxt if isinstance(nxt, str) and nxt else None

    def _get_json(self, channel: UrlChannel, upstream: str) -> dict[str, Any]:
        url = apply_mirror(upstream, self.ctx.mirror)
        policy = self.ctx.options.retry
        rng = random.Random()
        for attempt in range(policy.attempts):
            try:
                body = channel.get_bytes(url, limit=_PAGE_LIMIT_BYTES)
                break
            except Transient as err:
                if attempt + 1 >= policy.attempts:
                    raise FetchError(f"{self.ctx.entry.id}: the OSF API did not answer for {upstream} ({err.reason}); try again later.") from None
                time.sleep(policy.delay_s(attempt, err.retry_after_s, rng))
            except Denied as err:
                raise AccessDeniedError(
                    self.ctx.entry.id, upstream, err.status, f"The OSF project may be private. {self.access_help()}"
                ) from None
            except Unavailable as err:
                raise FetchError(
                    f"{self.ctx.entry.id}: OSF project {self.source.project} ({self.source.storage}) cannot be listed: "
                    f"{err.reason} for {upstream}. Check the project id in the registry."
                ) from None
        try:
            page = json.loads(body)
        except ValueError as err:
            raise FetchError(f"{self.ctx.entry.id}: the OSF API answered {upstream} with something that is not JSON ({err}).") from None
        if not isinstance(page, dict) or not isinstance(page.get("data"), list):
            raise FetchError(f"{self.ctx.entry.id}: the OSF API answered {upstream} without a JSON:API 'data' list.")
        return page

    def _remote(self, entry: dict[str, Any]) -> RemoteFile | None:
        attributes = entry.get("attributes") or {}
        materialized = str(attributes.get("materialized_path") or attributes.get("name") or "")
        relative = clean_path(materialized)
        download = _dig(entry, "links", "download")
        if relative is None or not isinstance(download, str):
            log.warning("%s: OSF entry %r skipped (unsafe path or no download link)", self.ctx.entry.id, materialized)
            return None
        if not keep_included(self.source, relative):
            return None
        hashes = _dig(entry, "attributes", "extra", "hashes") or {}
        size = attributes.get("size")
        algorithm, digest, verified_by = "sha256", None, "tofu"
        if _is_hex(hashes.get("sha256"), 64):
            algorithm, digest, verified_by = "sha256", hashes["sha256"].lower(), "osf-meta"
        elif _is_hex(hashes.get("md5"), 32):
            algorithm, digest, verified_by = "md5", hashes["md5"].lower(), "osf-meta"
        return RemoteFile(
            path=join_subdir(self.source.subdir, relative),
            url=apply_mirror(download, self.ctx.mirror),
            source=self.source.name,
            size=size if isinstance(size, int) and size >= 0 else None,
            hash=digest,
            algorithm=algorithm,  # type: ignore[arg-type]
            verified_by=verified_by,  # type: ignore[arg-type]
            key=relative,
        )

    def _list_local(self, root: Path) -> list[RemoteFile]:
        """List a local copy of the storage tree (``file://`` mirror), by size and trust on first use."""
        if (root / ARCHIVE_TOP).is_dir():
            root = root / ARCHIVE_TOP
        if not root.is_dir():
            raise FetchError(f"{self.ctx.entry.id}: the local mirror {root} is not a folder; give the folder holding the OSF files.")
        files: list[RemoteFile] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                relative = posixpath.join(*path.relative_to(root).parts)
                if name.startswith(".") or not keep_included(self.source, relative):
                    continue
                files.append(
                    RemoteFile(
                        path=join_subdir(self.source.subdir, relative),
                        url=path.as_uri(),
                        source=self.source.name,
                        size=path.stat().st_size,
                        key=relative,
                    )
                )
        return files

    # -- transfer --------------------------------------------------------------------------

    def open_channel(self) -> UrlChannel:
        return UrlChannel(self.settings)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, "Public OSF projects need no account.")


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _is_hex(value: Any, width: int) -> bool:
    return isinstance(value, str) and len(value) == width and all(c in "0123456789abcdefABCDEF" for c in value)


def make_transport(source: OsfSource, ctx: TransportContext) -> OsfTransport:
    """Build the transport of an OSF source."""
    return OsfTransport(source, ctx)
