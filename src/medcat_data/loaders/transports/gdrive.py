"""Google Drive files: the large-file confirmation step, and the quota page detected, never kept.

``/uc?export=download&id=<id>`` answers small files directly and large ones with an HTML page
("can't scan this file for viruses") holding a form whose target carries ``confirm=t``; we read
that form and follow it. When the file was downloaded too often Drive answers ``200`` with an
HTML quota page instead of the file: it is recognised (HTML where data was expected), the bytes
are dropped, and the user is told to retry within 24 h or to download by hand and use a
``file://`` mirror. Drive publishes no checksum: files are checked by magic bytes and their
sha256 is recorded (trust on first use).
"""

from __future__ import annotations

import html
import logging
import re
from pathlib import Path
from urllib.parse import urlencode, urljoin, urlsplit

from medcat_data.catalog.schema import GoogleDriveSource
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, mirror_is_local
from medcat_data.loaders.transports import TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel, copy_local, origin_of
from medcat_data.loaders.verify import looks_like_html

log = logging.getLogger(__name__)

_PAGE_LIMIT_BYTES = 2 << 20
_FORM = re.compile(r"<form[^>]*\bid=[\"']download-form[\"'][^>]*>(?P<body>.*?)</form>", re.S | re.I)
_ACTION = re.compile(r"\baction=[\"'](?P<url>[^\"']+)[\"']", re.I)
_INPUT = re.compile(r"<input[^>]*>", re.I)
_ATTR = re.compile(r"\b(?P<k>name|value|type)=[\"'](?P<v>[^\"']*)[\"']", re.I)
_CONFIRM_HREF = re.compile(r"href=[\"'](?P<url>[^\"']*confirm=[^\"']*)[\"']", re.I)


def quota_message(source: GoogleDriveSource, dataset_id: str) -> str:
    """Word the quota-exceeded failure: what happened and the two ways forward."""
    return (
        f"Google Drive refuses to serve {source.filename} right now (download quota exceeded: too many "
        f"users downloaded it recently). Retry within 24 h, or download it by hand from "
        f"https://drive.google.com/uc?export=download&id={source.file_id}, save it as DIR/{source.filename} "
        f"and run `medcat fetch {dataset_id} --mirror file://DIR`."
    )


def confirm_url(page: str, page_url: str) -> str | None:
    """Find the download target in Drive's confirmation page (form or ``confirm=`` link)."""
    form = _FORM.search(page)
    if form is not None:
        head = page[form.start() : form.start() + 2000]
        action = _ACTION.search(head)
        params: list[tuple[str, str]] = []
        for tag in _INPUT.findall(form["body"]):
            attrs = {m["k"].lower(): html.unescape(m["v"]) for m in _ATTR.finditer(tag)}
            if attrs.get("type", "hidden").lower() == "hidden" and "name" in attrs:
                params.append((attrs["name"], attrs.get("value", "")))
        if action is not None:
            target = urljoin(page_url, html.unescape(action["url"]))
            return target + ("&" if "?" in target else "?") + urlencode(params) if params else target
    link = _CONFIRM_HREF.search(page)
    if link is not None:
        return urljoin(page_url, html.unescape(link["url"]))
    return None


def _is_quota_page(page: str) -> bool:
    low = page.lower()
    return "quota" in low or "too many users" in low


def _not_in_local_mirror(filename: str, candidates: list[Path]) -> str:
    """Word a missing hand-downloaded file, naming same-type files the browser may have renamed."""
    folder = candidates[0].parent
    suffix = Path(filename).suffix.lower()
    try:
        others = sorted(p.name for p in folder.iterdir() if p.is_file() and suffix and p.suffix.lower() == suffix)
    except OSError:
        others = []
    hint = f" {folder} holds {', '.join(others[:5])}: if one of them is the download, rename it to {filename}." if others else ""
    return f"{filename} is not in the local mirror (looked for {candidates[0]}).{hint}"


class DriveChannel:
    """Download one Drive file through the confirmation step."""

    def __init__(self, transport: GoogleDriveTransport) -> None:
        self.t = transport
        self.http = UrlChannel(transport.settings)

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        if self.t.local_candidates:
            for candidate in self.t.local_candidates:
                if candidate.is_file():
                    copy_local(candidate, part)
                    return
            raise Unavailable(_not_in_local_mirror(self.t.source.filename, self.t.local_candidates))
        target = self._resolve(remote.url)
        self.http.download_url(target, part)
        if part.offset and looks_like_html(part.head):
            part.restart()
            raise Unavailable(quota_message(self.t.source, self.t.ctx.entry.id))

    def _resolve(self, url: str) -> str:
        """Return the URL that serves the bytes: the page's confirm target, or ``url`` itself."""
        resp = self.http.open(url)
        ctype = (resp.header("Content-Type") or "").lower()
        if "text/html" not in ctype:
            resp.close()
            return resp.url
        page = resp.read(_PAGE_LIMIT_BYTES).decode("utf-8", errors="replace")
        resp.close(reusable=True)
        if _is_quota_page(page) and _FORM.search(page) is None:
            raise Unavailable(quota_message(self.t.source, self.t.ctx.entry.id))
        target = confirm_url(page, resp.url)
        if target is None:
            raise Unavailable(
                f"Google Drive answered an unexpected page for {self.t.source.filename} instead of the file; "
                + quota_message(self.t.source, self.t.ctx.entry.id)
            )
        # The form points at Drive's download host: map it onto the mirror like every other URL.
        return apply_mirror(target, self.t.ctx.mirror)

    def close(self) -> None:
        self.http.close()


class GoogleDriveTransport:
    """A single file that lives only on Google Drive."""

    def __init__(self, source: GoogleDriveSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        upstream = f"{source.base_url.rstrip('/')}/uc?export=download&id={source.file_id}"
        self.url = apply_mirror(upstream, ctx.mirror)
        self.local_candidates: list[Path] = []
        if mirror_is_local(ctx.mirror):
            root = Path(urlsplit(ctx.mirror or "").path)
            self.local_candidates = [root / source.filename, root / "gdrive" / source.file_id / source.filename]
        self.settings = HttpSettings(timeouts=ctx.options.timeouts)
        log.debug("drive file %s at %s", source.file_id, origin_of(self.url)[1])

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        magic = bytes.fromhex(self.source.magic) if self.source.magic else None
        return [
            RemoteFile(
                path=join_subdir(self.source.subdir, self.source.filename),
                url=self.url,
                source=self.source.name,
                verified_by="magic" if magic else "tofu",
                magic=magic,
                extract=self.source.extract,
                key=self.source.filename,
            )
        ]

    def open_channel(self) -> DriveChannel:
        return DriveChannel(self)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, "")


def make_transport(source: GoogleDriveSource, ctx: TransportContext) -> GoogleDriveTransport:
    return GoogleDriveTransport(source, ctx)
