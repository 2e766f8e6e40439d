"""Google Drive's download flow: ``/uc?export=download&id=`` and ``/download?id=...&confirm=``.

Files live at ``root/gdrive/<id>/<filename>``. ``/uc`` redirects (303) to ``/download`` as
docs.google.com does to drive.usercontent.google.com. Files above 100 kB need a confirmation:
without ``confirm`` the answer is a 200 HTML "virus scan warning" page whose form
(``id="download-form"``, action ``/download``) carries the hidden inputs ``id``, ``export``,
``confirm`` and ``uuid``. With ``quota_exceeded`` every download gets Drive's quota page, also
200 HTML, which is how clients meet it in the wild.
"""

from __future__ import annotations

import html
import logging
import uuid
from pathlib import Path
from urllib.parse import urlencode

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file
from medcat_data.mirror.tree import local_path

log = logging.getLogger(__name__)

#: Files above this size get the virus-scan interstitial (Drive scans files up to ~100 MB; a
#: small threshold lets tiny replicas exercise the confirmation step).
CONFIRM_THRESHOLD_BYTES = 100_000

#: Drive's own wording; clients (gdown and ours) recognise the quota page by it.
QUOTA_MESSAGE = (
    "Too many users have viewed or downloaded this file recently. Please try accessing the file "
    "again later. If the file you are trying to access is particularly large or is shared with many "
    "people, it may take up to 24 hours to be able to view or download the file."
)


def claims(path: str, query: dict[str, str]) -> bool:
    """Tell whether a request is a Drive download (``/uc`` or ``/download`` with an ``id``)."""
    return path in ("/uc", "/download") and "id" in query


def serve(ex: Exchange, root: Path, *, quota_exceeded: bool) -> None:
    """Answer a Drive download: redirect, quota page, interstitial or the file."""
    file_id = ex.query["id"]
    if ex.path == "/uc":
        ex.redirect("/download?" + urlencode({"id": file_id, "export": "download", **_confirm(ex)}), status=303)
        return
    target = _find(root, file_id)
    if target is None:
        ex.html(404, "<html><body><p>Sorry, the file you have requested does not exist.</p></body></html>")
        return
    if quota_exceeded:
        ex.html(200, _page("Google Drive - Quota exceeded", f"<p>{html.escape(QUOTA_MESSAGE)}</p>"))
        return
    if not ex.query.get("confirm") and target.stat().st_size > CONFIRM_THRESHOLD_BYTES:
        ex.html(200, _interstitial(file_id, target))
        return
    send_file(
        ex,
        target,
        headers={"Content-Disposition": f'attachment; filename="{target.name}"'},
    )


def _confirm(ex: Exchange) -> dict[str, str]:
    return {k: ex.query[k] for k in ("confirm", "uuid") if k in ex.query}


def _find(root: Path, file_id: str) -> Path | None:
    folder = local_path(root, f"/gdrive/{file_id}")
    if folder is None or "/" in file_id or not folder.is_dir():
        return None
    files = sorted(p for p in folder.iterdir() if p.is_file())
    return files[0] if files else None


def _interstitial(file_id: str, target: Path) -> str:
    token = str(uuid.uuid5(uuid.NAMESPACE_URL, f"medcat-mirror/gdrive/{file_id}"))
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in (("id", file_id), ("export", "download"), ("confirm", "t"), ("uuid", token))
    )
    size_mb = target.stat().st_size / 1_000_000
    body = (
        "<p>Google Drive can't scan this file for viruses.</p>"
        f"<p>{html.escape(target.name)} ({size_mb:.1f}M) is too large for Google to scan for viruses. "
        "Would you still like to download this file?</p>"
        f'<form id="download-form" action="/download" method="get">{hidden}'
        '<input type="submit" id="uc-download-link" value="Download anyway"></form>'
    )
    return _page("Google Drive - Virus scan warning", body)


def _page(title: str, body: str) -> str:
    return f"<!DOCTYPE html><html><head><title>{html.escape(title)}</title></head><body>{body}</body></html>"
