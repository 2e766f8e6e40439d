"""Kaggle's dataset download endpoint: ``GET /api/v1/datasets/download/<owner>/<slug>``.

Serves ``root/kaggle/<owner>/<slug>.zip`` as an attachment. ``?datasetVersionNumber=N`` is
accepted and ignored (a replica has one version). Kaggle authenticates with HTTP Basic
(username + API key) from any client; the server configures that with
``protect("/api/v1/", user, key, user_agents=None)``, checked before this route runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file
from medcat_data.mirror.tree import local_path

log = logging.getLogger(__name__)

PREFIX = "/api/v1/datasets/download/"


def claims(path: str) -> bool:
    """Tell whether a URL path is Kaggle's dataset download endpoint."""
    return path.startswith(PREFIX)


def serve(ex: Exchange, root: Path) -> None:
    """Answer a dataset download with the zip, or Kaggle's 404 JSON."""
    owner, _, slug = ex.path[len(PREFIX):].strip("/").partition("/")
    archive = local_path(root, f"/kaggle/{owner}/{slug}.zip") if owner and slug and "/" not in slug else None
    if archive is None or not archive.is_file():
        ex.json(404, {"code": 404, "message": f"Dataset {owner}/{slug} not found"})
        return
    send_file(
        ex,
        archive,
        content_type="application/zip",
        headers={"Content-Disposition": f"attachment; filename={slug}.zip"},
    )
