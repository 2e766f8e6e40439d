"""Serve a directory tree at the same URL paths as upstream: files, slash redirects, HTML listings.

``root/files/<slug>/<version>/...`` answers PhysioNet's ``/files/<slug>/<version>/...``;
``root/ReferenceSamples/giab/...`` answers the NCBI path, and so on. Listings look like the
autoindex pages that ``wget -r`` parses.
"""

from __future__ import annotations

import html
import logging
import mimetypes
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file

log = logging.getLogger(__name__)

#: Flag files that configure the mirror and are never served (``.gated`` marks a gated Hub repo).
CONTROL_FILES = frozenset({".gated"})


def local_path(root: Path, url_path: str) -> Path | None:
    """Map a decoded URL path to a path under ``root``, or ``None`` if it would leave ``root``."""
    parts = [p for p in PurePosixPath(url_path).parts if p not in ("/", "")]
    if any(p in ("..", ".") or "\\" in p or p in CONTROL_FILES for p in parts):
        return None
    candidate = root.joinpath(*parts)
    try:
        candidate.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    return candidate


def serve_tree(ex: Exchange, root: Path) -> None:
    """Answer a GET/HEAD for a file or directory of the served tree (404 when absent)."""
    target = local_path(root, ex.path)
    if target is None or not target.exists():
        ex.error(404, f"Not Found: {ex.path}")
        return
    if target.is_dir():
        if not ex.path.endswith("/"):
            ex.redirect(quote(ex.path) + "/")
            return
        ex.html(200, render_listing(ex.path, target))
        return
    content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    send_file(ex, target, content_type=content_type)


def render_listing(url_path: str, directory: Path) -> str:
    """Render an autoindex-style listing: a parent link, then ``sub/`` and file anchors."""
    title = html.escape(f"Index of {url_path}")
    lines = ['<a href="../">../</a>'] if url_path != "/" else []
    entries = sorted(directory.iterdir(), key=lambda p: (not p.is_dir(), p.name))
    for entry in entries:
        if entry.name in CONTROL_FILES:
            continue
        st = entry.stat()
        when = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).strftime("%d-%b-%Y %H:%M")
        name = entry.name + ("/" if entry.is_dir() else "")
        size = "-" if entry.is_dir() else str(st.st_size)
        label = html.escape(name)
        pad = " " * max(1, 51 - len(name))
        lines.append(f'<a href="{html.escape(quote(name))}">{label}</a>{pad}{when} {size:>19}')
    body = "\n".join(lines)
    return (
        f"<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1><hr><pre>"
        f"{body}\n</pre><hr></body>\n</html>\n"
    )
