"""Zenodo's record API over loopback: the JSON that lists a record's files with their md5 and size.

Replicas write a record's files at ``root/records/<id>/files/<key>``, where the plain tree serves
them at Zenodo's own download path (``/records/<id>/files/<key>?download=1``). This module adds:

* ``GET|HEAD /api/records/<id>``: the record document with ``id``, ``links.self`` / ``links.html``
  and ``files[]``, each with ``key``, ``size``, ``checksum`` (``md5:<hex>``) and ``links.self``
  (``/api/records/<id>/files/<key>/content``), computed from the files' real bytes, so a replica
  stays synthetic yet verifiable;
* ``GET|HEAD /api/records/<id>/files/<key>/content``: the bytes, with Range.

Links name the real host (``https://zenodo.org``), as upstream does. Unknown records answer
Zenodo's JSON 404. Holds no dataset knowledge.
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file
from medcat_data.mirror.tree import local_path

HOST = "https://zenodo.org"
_RECORD = re.compile(r"^/api/records/(?P<record>[0-9]+)/?$")
_CONTENT = re.compile(r"^/api/records/(?P<record>[0-9]+)/files/(?P<key>[^/]+)/content$")
_CHUNK_BYTES = 1 << 20
_MD5_LOCK = threading.Lock()
_MD5S: dict[tuple[str, int, int], str] = {}


def claims(ex: Exchange) -> bool:
    """Tell whether a request is for a Zenodo record document or a file's API content link."""
    return ex.method in ("GET", "HEAD") and bool(_RECORD.match(ex.path) or _CONTENT.match(ex.path))


def serve(ex: Exchange, root: Path) -> None:
    """Answer one Zenodo API request from ``root/records/<id>/files/``."""
    if m := _CONTENT.match(ex.path):
        target = local_path(root, f"records/{m['record']}/files/{m['key']}")
        if target is None or not target.is_file():
            _not_found(ex)
            return
        send_file(ex, target, headers={"Content-Disposition": f'attachment; filename="{target.name}"'})
    elif m := _RECORD.match(ex.path):
        folder = root / "records" / m["record"] / "files"
        if not folder.is_dir():
            _not_found(ex)
            return
        ex.json(200, record_document(m["record"], folder))


def record_document(record: str, folder: Path) -> dict[str, Any]:
    """Return the record JSON for the files directly in ``folder`` (sorted by key)."""
    api = f"{HOST}/api/records/{record}"
    files = [
        {
            "id": hashlib.sha1(f"{record}/{path.name}".encode()).hexdigest(),
            "key": path.name,
            "size": path.stat().st_size,
            "checksum": f"md5:{_md5(path)}",
            "links": {"self": f"{api}/files/{quote(path.name)}/content"},
        }
        for path in sorted(folder.iterdir())
        if path.is_file()
    ]
    return {
        "id": int(record),
        "recid": record,
        "links": {"self": api, "html": f"{HOST}/records/{record}", "files": f"{api}/files"},
        "files": files,
    }


def _md5(path: Path) -> str:
    """Return a file's md5 (cached by path, size and mtime; read in chunks)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _MD5_LOCK:
        cached = _MD5S.get(key)
    if cached is None:
        digest = hashlib.md5()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK_BYTES):
                digest.update(chunk)
        cached = digest.hexdigest()
        with _MD5_LOCK:
            _MD5S[key] = cached
    return cached


def _not_found(ex: Exchange) -> None:
    ex.json(404, {"status": 404, "message": "The persistent identifier does not exist."})
