"""The S3 ``ListObjectsV2`` answer of the PMC Cloud Service bucket (``pmc-oa-opendata``).

The bucket is reached virtual-hosted style (``https://pmc-oa-opendata.s3.amazonaws.com/<key>``);
on the mirror the key space is the served root itself, so ``GET /PMC123.1/PMC123.1.xml`` is a plain
file of the tree (``mirror.tree``) and only the listing needs this module:
``GET /?list-type=2&prefix=...&delimiter=...&max-keys=...&continuation-token=...&start-after=...``
answers S3's ``ListBucketResult`` XML (namespace ``http://s3.amazonaws.com/doc/2006-03-01/``):
keys in UTF-8 byte order, ``CommonPrefixes`` when a delimiter is given, at most ``max-keys``
(default and cap 1000) entries per page, ``IsTruncated`` and an opaque ``NextContinuationToken``.

Holds no dataset knowledge and never lists outside the served root. ``ETag`` is the file's md5,
quoted, as S3 gives for objects uploaded in one part.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from xml.sax.saxutils import escape

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.tree import CONTROL_FILES

log = logging.getLogger(__name__)

S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
BUCKET = "pmc-oa-opendata"
MAX_KEYS = 1000
"""S3's default and largest page size for ListObjectsV2."""


def claims(ex: Exchange) -> bool:
    """Tell whether a request is a bucket listing (``GET /?list-type=2``)."""
    return ex.path == "/" and ex.query.get("list-type") == "2"


def serve(ex: Exchange, root: Path) -> None:
    """Answer one ``ListObjectsV2`` page for the keys under ``root``."""
    prefix = ex.query.get("prefix", "")
    delimiter = ex.query.get("delimiter", "")
    try:
        max_keys = max(0, min(MAX_KEYS, int(ex.query.get("max-keys", str(MAX_KEYS)))))
    except ValueError:
        _s3_error(ex, 400, "InvalidArgument", "max-keys must be an integer")
        return
    token = ex.query.get("continuation-token")
    after = ex.query.get("start-after", "")
    if token is not None:
        try:
            after = max(after, base64.urlsafe_b64decode(token.encode()).decode())
        except (ValueError, UnicodeDecodeError):
            _s3_error(ex, 400, "InvalidArgument", "The continuation token provided is incorrect")
            return

    contents: list[tuple[str, Path]] = []
    prefixes: list[str] = []
    last = ""
    truncated = False
    for key, path in _keys(root, prefix):
        if key <= after:
            continue
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common <= after or (prefixes and prefixes[-1] == common):
                    continue
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                prefixes.append(common)
                # Skip the rest of this common prefix in the next page too.
                last = common + "\U0010ffff"
                continue
        if len(contents) + len(prefixes) >= max_keys:
            truncated = True
            break
        contents.append((key, path))
        last = key
    ex.respond(200, _render(prefix, delimiter, max_keys, token, after if token is None else "", contents, prefixes,
                            truncated, last).encode(), content_type="application/xml")


def _keys(root: Path, prefix: str) -> Iterator[tuple[str, Path]]:
    """Yield ``(key, path)`` of every served file whose key starts with ``prefix``, in byte order.

    Only the directory named by the prefix's folder part is walked, so listing ``metadata/PMC1``
    never visits the rest of the mirror.
    """
    folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    start = root.joinpath(*[p for p in folder.split("/") if p]) if folder else root
    if any(p in ("..", ".") for p in folder.split("/")) or not start.is_dir():
        return
    found: list[tuple[bytes, str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(start):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        base = Path(dirpath)
        rel_dir = base.relative_to(root).as_posix()
        for name in filenames:
            if name in CONTROL_FILES or name.endswith(".part"):
                continue
            key = name if rel_dir == "." else f"{rel_dir}/{name}"
            if key.startswith(prefix):
                found.append((key.encode("utf-8"), key, base / name))
    found.sort()
    for _, key, path in found:
        yield key, path


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _render(prefix: str, delimiter: str, max_keys: int, token: str | None, start_after: str,
            contents: list[tuple[str, Path]], prefixes: list[str], truncated: bool, last: str) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<ListBucketResult xmlns="{S3_NAMESPACE}">',
        f"<Name>{BUCKET}</Name>",
        f"<Prefix>{escape(prefix)}</Prefix>",
    ]
    if delimiter:
        lines.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
    if token is not None:
        lines.append(f"<ContinuationToken>{escape(token)}</ContinuationToken>")
    if start_after:
        lines.append(f"<StartAfter>{escape(start_after)}</StartAfter>")
    lines += [
        f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount>",
        f"<MaxKeys>{max_keys}</MaxKeys>",
        f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
    ]
    if truncated:
        next_token = base64.urlsafe_b64encode(last.encode()).decode()
        lines.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
    for key, path in contents:
        st = path.stat()
        modified = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(
            f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
            f"<ETag>&quot;{_md5(path)}&quot;</ETag><Size>{st.st_size}</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents>"
        )
    for common in prefixes:
        lines.append(f"<CommonPrefixes><Prefix>{escape(common)}</Prefix></CommonPrefixes>")
    lines.append("</ListBucketResult>")
    return "\n".join(lines) + "\n"


def _s3_error(ex: Exchange, status: int, code: str, message: str) -> None:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>\n"
    )
    ex.respond(status, body.encode(), content_type="application/xml")
