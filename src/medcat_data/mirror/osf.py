"""The OSF API v2 subset that lists a project's storage, and OSF's download links, over loopback.

Replicas live at ``root/osf/<project>/<storage>/<files and folders>`` (names may contain spaces).
Served, with the shapes ``loaders/transports/osf.py`` reads:

* ``GET /v2/nodes/<project>/files/<storage>/[<folder id>/][?page=N]``: a JSON:API page of
  ``files`` resources (10 per page, folders first, then by name) with ``links.first/last/prev/
  next`` and ``meta.total/per_page``. A folder points to its content through
  ``relationships.files.links.related.href``; a file carries ``size``, ``materialized_path``,
  ``extra.hashes.md5/sha256`` and ``links.download``.
* ``GET /download/<file id>/``: a redirect to the file server, as ``osf.io/download/<id>/`` does.
  The target is relative (``/v1/resources/<project>/providers/<storage>/<id>?action=download``):
  upstream names ``files.osf.io`` there, which a loopback mirror cannot.
* ``GET|HEAD /v1/resources/<project>/providers/<storage>/<file id>``: the bytes, with Range.

Links inside the JSON name the real hosts (``https://api.osf.io``, ``https://osf.io``), as
upstream does; clients map them onto the mirror. Ids are stable 24-hex digests of project,
storage and path (OSF's are ObjectIds of the same width). Errors are JSON:API ``errors`` lists.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file

API = "https://api.osf.io"
WEB = "https://osf.io"
FILES = "https://files.osf.io"
PER_PAGE = 10
_LISTING = re.compile(r"^/v2/nodes/(?P<node>[A-Za-z0-9]+)/files/(?P<storage>[A-Za-z0-9_-]+)/(?:(?P<folder>[0-9a-f]{24})/)?$")
_DOWNLOAD = re.compile(r"^/download/(?P<id>[0-9a-f]{24})/?$")
_RESOURCE = re.compile(r"^/v1/resources/(?P<node>[A-Za-z0-9]+)/providers/(?P<storage>[A-Za-z0-9_-]+)/(?P<id>[0-9a-f]{24})$")
_HASH_LOCK = threading.Lock()
_HASHES: dict[tuple[str, int, int], tuple[str, str]] = {}
_CHUNK_BYTES = 1 << 20


def claims(ex: Exchange) -> bool:
    """Tell whether a request is for the OSF API, an OSF download link or the OSF file server."""
    return ex.method in ("GET", "HEAD") and bool(
        _LISTING.match(ex.path) or _DOWNLOAD.match(ex.path) or _RESOURCE.match(ex.path)
    )


def serve(ex: Exchange, root: Path) -> None:
    """Answer one OSF request from ``root/osf/``."""
    if m := _LISTING.match(ex.path):
        _listing(ex, root, m["node"], m["storage"], m["folder"])
    elif m := _DOWNLOAD.match(ex.path):
        found = _find_anywhere(root, m["id"])
        if found is None:
            _not_found(ex)
            return
        node, storage, _ = found
        query = urlencode({"action": "download", "direct": "", "version": "1"})
        ex.redirect(f"/v1/resources/{node}/providers/{storage}/{m['id']}?{query}", status=302)
    elif m := _RESOURCE.match(ex.path):
        storage_dir = root / "osf" / m["node"] / m["storage"]
        target = _index(storage_dir).get(m["id"]) if storage_dir.is_dir() else None
        if target is None or not target.is_file():
            _not_found(ex)
            return
        send_file(ex, target, headers={"Content-Disposition": f"attachment; filename=\"{target.name}\""})


def object_id(node: str, storage: str, relative: str) -> str:
    """Return the stable 24-hex id of a file or folder (``relative`` is its POSIX path in the storage)."""
    return hashlib.sha1(f"{node}/{storage}/{relative}".encode()).hexdigest()[:24]


def _index(storage_dir: Path) -> dict[str, Path]:
    """Map the id of every file and folder of one storage to its path."""
    node, storage = storage_dir.parent.name, storage_dir.name
    found: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(storage_dir):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            path = Path(dirpath) / name
            found[object_id(node, storage, path.relative_to(storage_dir).as_posix())] = path
    return found


def _find_anywhere(root: Path, file_id: str) -> tuple[str, str, Path] | None:
    base = root / "osf"
    if not base.is_dir():
        return None
    for node_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for storage_dir in sorted(p for p in node_dir.iterdir() if p.is_dir()):
            target = _index(storage_dir).get(file_id)
            if target is not None and target.is_file():
                return node_dir.name, storage_dir.name, target
    return None


def _listing(ex: Exchange, root: Path, node: str, storage: str, folder_id: str | None) -> None:
    storage_dir = root / "osf" / node / storage
    if not storage_dir.is_dir():
        _not_found(ex)
        return
    folder = storage_dir if folder_id is None else _index(storage_dir).get(folder_id)
    if folder is None or not folder.is_dir():
        _not_found(ex)
        return
    try:
        page = max(1, int(ex.query.get("page", "1")))
    except ValueError:
        ex.json(400, {"errors": [{"detail": "A valid integer is required.", "source": {"parameter": "page"}}]})
        return
    children = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
    total = len(children)
    last = max(1, math.ceil(total / PER_PAGE))
    if page > last:
        _not_found(ex, "Invalid page.")
        return
    here = f"{API}/v2/nodes/{node}/files/{storage}/" + (f"{folder_id}/" if folder_id else "")

    def page_url(n: int) -> str | None:
        return f"{here}?page={n}" if 1 <= n <= last else None

    data = [_resource(node, storage, storage_dir, p) for p in children[(page - 1) * PER_PAGE : page * PER_PAGE]]
    ex.json(
        200,
        {
            "data": data,
            "links": {
                "first": page_url(1) if page > 1 else None,
                "last": page_url(last) if page < last else None,
                "prev": page_url(page - 1),
                "next": page_url(page + 1),
                "meta": {"total": total, "per_page": PER_PAGE},
            },
            "meta": {"total": total, "per_page": PER_PAGE, "version": "2.0"},
        },
    )


def _resource(node: str, storage: str, storage_dir: Path, path: Path) -> dict[str, Any]:
    relative = path.relative_to(storage_dir).as_posix()
    oid = object_id(node, storage, relative)
    is_dir = path.is_dir()
    attributes: dict[str, Any] = {
        "guid": None,
        "checkout": None,
        "name": path.name,
        "kind": "folder" if is_dir else "file",
        "path": f"/{oid}/" if is_dir else f"/{oid}",
        "size": None if is_dir else path.stat().st_size,
        "provider": storage,
        "materialized_path": f"/{relative}/" if is_dir else f"/{relative}",
        "last_touched": None,
        "date_modified": None if is_dir else "2018-07-10T18:46:02.000000Z",
        "date_created": None if is_dir else "2018-07-10T18:46:02.000000Z",
        "extra": {} if is_dir else {"hashes": _hashes(path), "downloads": 0},
        "tags": [],
        "current_user_can_comment": False,
        "current_version": 1,
        "delete_allowed": False,
    }
    waterbutler = f"{FILES}/v1/resources/{node}/providers/{storage}/{oid}" + ("/" if is_dir else "")
    links: dict[str, Any] = {
        "info": f"{API}/v2/files/{oid}/",
        "move": waterbutler,
        "upload": waterbutler,
        "delete": waterbutler,
        "self": f"{API}/v2/files/{oid}/",
    }
    relationships: dict[str, Any] = {
        "node": {"links": {"related": {"href": f"{API}/v2/nodes/{node}/", "meta": {}}}},
    }
    if is_dir:
        links["new_folder"] = f"{waterbutler}?kind=folder"
        relationships["files"] = {
            "links": {"related": {"href": f"{API}/v2/nodes/{node}/files/{storage}/{oid}/", "meta": {}}}
        }
    else:
        links["download"] = f"{WEB}/download/{oid}/"
        links["html"] = f"{WEB}/{node}/files/{storage}/{oid}"
    return {"id": oid, "type": "files", "attributes": attributes, "relationships": relationships, "links": links}


def _hashes(path: Path) -> dict[str, str]:
    """Return the md5 and sha256 of a file (cached by path, size and mtime; read in chunks)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _HASH_LOCK:
        cached = _HASHES.get(key)
    if cached is None:
        md5, sha256 = hashlib.md5(), hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK_BYTES):
                md5.update(chunk)
                sha256.update(chunk)
        cached = (md5.hexdigest(), sha256.hexdigest())
        with _HASH_LOCK:
            _HASHES[key] = cached
    return {"md5": cached[0], "sha256": cached[1]}


def _not_found(ex: Exchange, detail: str = "Not found.") -> None:
    ex.json(404, {"errors": [{"detail": detail}], "meta": {"version": "2.0"}})
