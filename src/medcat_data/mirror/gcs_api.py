"""The Google Cloud Storage JSON API subset that gcsfs uses to list and read a bucket.

Buckets are folders ``root/gcs/<bucket>/``; an object's name is its path inside. Endpoints, as
called by gcsfs 2026 (``core.py``: ``_do_list_objects``, ``_get_object``, ``_cat_file``):

* ``GET /storage/v1/b/<bucket>/o?prefix=&delimiter=&maxResults=&pageToken=``: ``storage#objects``
  with ``items`` (name, size as a string, ``md5Hash`` and ``crc32c`` base64, ``generation``,
  ``etag``, ``updated``), ``prefixes`` and ``nextPageToken``;
* ``GET /storage/v1/b/<bucket>/o/<object>``: one object's metadata;
* ``GET /download/storage/v1/b/<bucket>/o/<object>?alt=media``: the bytes, with ``Range``
  (the tree's file sender, so the mirror's body faults apply to the download path).

A bucket holding the flag file ``.requester-pays`` answers 400 to any request without a
``userProject`` parameter, as GCS does for requester-pays buckets. ``crc32c`` is sent only when
``google_crc32c`` (installed with gcsfs) is importable. Holds no dataset knowledge.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file
from medcat_data.mirror.pmc import _keys
from medcat_data.mirror.tree import local_path

log = logging.getLogger(__name__)

BUCKETS_DIR = "gcs"
REQUESTER_PAYS_FLAG = ".requester-pays"
PAGE_SIZE = 1000
"""gcsfs asks for 1000 items per page; so does this server when asked for none."""

_META = "/storage/v1/b/"
_MEDIA = "/download/storage/v1/b/"


def claims(ex: Exchange) -> bool:
    """Tell whether a request is for the GCS JSON API (metadata, listing or media download)."""
    return ex.path.startswith(_META) or ex.path.startswith(_MEDIA)


def serve(ex: Exchange, root: Path) -> None:
    """Answer one GCS JSON API request from ``root/gcs/<bucket>/``."""
    media = ex.path.startswith(_MEDIA)
    rest = ex.path[len(_MEDIA if media else _META) :]
    bucket, _, tail = rest.partition("/")
    folder = local_path(root, f"{BUCKETS_DIR}/{bucket}") if bucket else None
    if folder is None or not folder.is_dir():
        _error(ex, 404, f"The specified bucket does not exist: {bucket}")
        return
    if (folder / REQUESTER_PAYS_FLAG).exists() and not ex.query.get("userProject"):
        _error(ex, 400, "Bucket is a requester pays bucket but no user project provided.")
        return
    if tail == "o" and not media:
        _list(ex, bucket, folder)
        return
    if not tail.startswith("o/"):
        _error(ex, 404, "Not Found")
        return
    name = tail[2:]
    path = local_path(folder, name) if name and name != REQUESTER_PAYS_FLAG else None
    if path is None or not path.is_file():
        _error(ex, 404, f"No such object: {bucket}/{name}")
        return
    if media:
        send_file(ex, path, headers={"x-goog-generation": str(path.stat().st_mtime_ns)})
    else:
        ex.json(200, object_resource(bucket, name, path))


def object_resource(bucket: str, name: str, path: Path) -> dict[str, Any]:
    """Return the ``storage#object`` resource of one file (md5 and, when available, crc32c)."""
    data = path.read_bytes()
    st = path.stat()
    updated = datetime.fromtimestamp(st.st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    resource: dict[str, Any] = {
        "kind": "storage#object",
        "id": f"{bucket}/{name}/{st.st_mtime_ns}",
        "name": name,
        "bucket": bucket,
        "generation": str(st.st_mtime_ns),
        "metageneration": "1",
        "contentType": "application/octet-stream",
        "size": str(len(data)),
        "md5Hash": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
        "etag": f"{st.st_mtime_ns:x}",
        "timeCreated": updated,
        "updated": updated,
    }
    crc = _crc32c(data)
    if crc is not None:
        resource["crc32c"] = crc
    return resource


def _crc32c(data: bytes) -> str | None:
    try:
        import google_crc32c  # the checksum gcsfs itself uses; absent without the cloud extra
    except ImportError:
        return None
    return base64.b64encode(int(google_crc32c.value(data)).to_bytes(4, "big")).decode()


def _list(ex: Exchange, bucket: str, folder: Path) -> None:
    prefix = ex.query.get("prefix", "")
    delimiter = ex.query.get("delimiter", "")
    try:
        size = max(1, min(PAGE_SIZE, int(ex.query.get("maxResults") or PAGE_SIZE)))
    except ValueError:
        _error(ex, 400, "Invalid value for maxResults")
        return
    after = ex.query.get("pageToken", "")
    items: list[dict[str, Any]] = []
    prefixes: list[str] = []
    token = None
    for key, path in _keys(folder, prefix):
        if key == REQUESTER_PAYS_FLAG or key <= after:
            continue
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common not in prefixes:
                    prefixes.append(common)
                continue
        if len(items) >= size:
            token = items[-1]["name"]
            break
        items.append(object_resource(bucket, key, path))
    page: dict[str, Any] = {"kind": "storage#objects", "items": items}
    if prefixes:
        page["prefixes"] = prefixes
    if token is not None:
        page["nextPageToken"] = token
    ex.json(200, page)


def _error(ex: Exchange, status: int, message: str) -> None:
    ex.json(status, {"error": {"code": status, "message": message, "errors": [{"message": message}]}})
