"""Serve one file the way a real static host does: validators, conditional GETs and byte ranges.

Used by every route that hands out file bytes (plain tree, Hub ``resolve``, Kaggle, Drive).
Reads the file in chunks through ``Exchange.stream``; never loads it whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

from medcat_data.mirror.exchange import Exchange

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Validators:
    """What identifies one version of a file: size, mtime and the derived HTTP validators."""

    size_bytes: int
    mtime_s: int
    etag: str
    last_modified: str

    @classmethod
    def of(cls, path: Path) -> Validators:
        """Compute a strong ETag from size and ``mtime_ns`` and the ``Last-Modified`` date."""
        st = path.stat()
        return cls(
            size_bytes=st.st_size,
            mtime_s=int(st.st_mtime),
            etag=f'"{st.st_size:x}-{st.st_mtime_ns:x}"',
            last_modified=formatdate(st.st_mtime, usegmt=True),
        )


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range ``start..end`` of a file."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1


class Unsatisfiable(Exception):
    """A ``Range`` header that no byte of the file satisfies (answered with 416)."""


def parse_range(header: str | None, size_bytes: int) -> ByteRange | None:
    """Parse a single ``bytes=N-``, ``bytes=N-M`` or ``bytes=-S`` range.

    Returns ``None`` when the header is absent, malformed or asks for several ranges: the whole
    file is then sent with 200, as many servers do.

    Raises:
        Unsatisfiable: the range starts past the end of the file.
    """
    if not header or not header.strip().startswith("bytes=") or "," in header:
        return None
    first, _, last = header.strip()[len("bytes="):].partition("-")
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0:
                raise Unsatisfiable(header)
            return ByteRange(max(0, size_bytes - suffix), size_bytes - 1)
        start = int(first)
        end = int(last) if last else size_bytes - 1
    except ValueError:
        return None
    if start >= size_bytes:
        raise Unsatisfiable(header)
    if end < start:
        return None
    return ByteRange(start, min(end, size_bytes - 1))


def if_range_holds(header: str | None, v: Validators) -> bool:
    """Tell whether an ``If-Range`` validator (ETag or date) still names the current file."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith('"') or header.startswith("W/"):
        return header == v.etag
    try:
        return int(parsedate_to_datetime(header).timestamp()) == v.mtime_s
    except (TypeError, ValueError):
        return False


def not_modified(ex: Exchange, v: Validators) -> bool:
    """Tell whether ``If-None-Match`` / ``If-Modified-Since`` allow answering 304."""
    inm = ex.headers.get("if-none-match")
    if inm is not None:
        return v.etag in {t.strip() for t in inm.split(",")} or inm.strip() == "*"
    ims = ex.headers.get("if-modified-since")
    if ims is not None:
        try:
            return v.mtime_s <= int(parsedate_to_datetime(ims).timestamp())
        except (TypeError, ValueError):
            return False
    return False


def send_file(
    ex: Exchange,
    path: Path,
    *,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/octet-stream",
    etag: str | None = None,
) -> None:
    """Answer a GET or HEAD for ``path`` with 200, 206, 304 or 416.

    ``etag`` replaces the size+mtime ETag (the Hub sends content hashes); ``headers`` are added
    to every answer.
    """
    v = Validators.of(path)
    if etag is not None:
        v = Validators(v.size_bytes, v.mtime_s, etag, v.last_modified)
    base = {"ETag": v.etag, "Last-Modified": v.last_modified, "Accept-Ranges": "bytes"}
    base.update(headers or {})
    if not_modified(ex, v):
        ex.start(304, base)
        return
    try:
        wanted = parse_range(ex.headers.get("range"), v.size_bytes)
    except Unsatisfiable:
        ex.respond(416, b"", {**base, "Content-Range": f"bytes */{v.size_bytes}"})
        return
    if wanted is not None and not if_range_holds(ex.headers.get("if-range"), v):
        wanted = None
    status, start, length = 200, 0, v.size_bytes
    if wanted is not None:
        status, start, length = 206, wanted.start, wanted.length
        base["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{v.size_bytes}"
    ex.start(status, {"Content-Type": content_type, "Content-Length": str(length), **base})
    if ex.is_head:
        return
    with path.open("rb") as fh:
        if start:
            fh.seek(start, os.SEEK_SET)
        ex.stream(fh, length)
