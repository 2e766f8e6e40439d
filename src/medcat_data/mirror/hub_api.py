"""The Hugging Face Hub API subset that ``huggingface_hub`` uses to download a dataset repo.

Endpoints, as called by huggingface_hub 2.4 (``hf_api.py``, ``file_download.py``,
``_snapshot_download.py``):

* ``GET  /api/datasets/<owner>/<name>[/revision/<rev>]``  repo info (``id``, ``sha``, ``siblings``...)
* ``GET  /api/datasets/<owner>/<name>/tree/<rev>[/<path>]?recursive=``  tree listing
* ``POST /api/datasets/<owner>/<name>/paths-info/<rev>``  form field ``paths`` (repeated)
* ``HEAD|GET /datasets/<owner>/<name>/resolve/<rev>/<path>``  file bytes and the metadata headers
  ``X-Repo-Commit``, ``ETag`` (git blob sha1, or sha256 for LFS), ``X-Linked-Etag``/``X-Linked-Size``.

No Xet header or ``xetHash`` field is ever sent, so the client always takes the plain HTTP path.
Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``,
``GatedRepo``) so the client raises its usual exception types.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import yaml

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file
from medcat_data.mirror.hub_repo import RepoFile, RepoIndex, Snapshot

log = logging.getLogger(__name__)

DEFAULT_BRANCH = "main"
_TRUE = {"1", "true", "True", "yes"}


class HubApi:
    """Answers Hub API and ``resolve`` requests from ``root/datasets/<owner>/<name>/``."""

    def __init__(self, index: RepoIndex, tokens: Callable[[], set[str]]) -> None:
        self.index = index
        self.tokens = tokens

    @staticmethod
    def claims(path: str) -> bool:
        """Tell whether a URL path belongs to the Hub API (``/api/datasets/...``, ``/datasets/.../resolve/...``)."""
        parts = path.split("/")
        return path.startswith("/api/datasets/") or (
            path.startswith("/datasets/") and len(parts) > 5 and parts[4] == "resolve"
        )

    def serve(self, ex: Exchange) -> None:
        """Answer one Hub request."""
        parts = [p for p in ex.path.split("/") if p]
        if parts[0] == "api":
            parts = parts[1:]
        if len(parts) < 3:
            _hub_error(ex, 404, "RepoNotFound", "Repository not found")
            return
        repo_id, action, rest = f"{parts[1]}/{parts[2]}", parts[3] if len(parts) > 3 else "", parts[4:]
        snapshot = self.index.snapshot(repo_id)
        if snapshot is None:
            _hub_error(ex, 404, "RepoNotFound", f"Repository Not Found for url: {ex.path}.")
            return
        if self.index.is_gated(repo_id) and not self._authorized(ex):
            _hub_error(ex, 401, "GatedRepo",
                       f"Access to dataset {repo_id} is restricted. You must have access to it and be authenticated to access it. Please log in.")
            return
        revision = rest[0] if rest else DEFAULT_BRANCH
        if revision not in (DEFAULT_BRANCH, snapshot.sha):
            _hub_error(ex, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        inner = "/".join(rest[1:])
        if action in ("", "revision") and ex.method != "POST":
            ex.json(200, _repo_info(repo_id, snapshot, self.index.is_gated(repo_id), self.index))
        elif action == "tree" and ex.method == "GET":
            self._tree(ex, snapshot, inner)
        elif action == "paths-info" and ex.method == "POST":
            ex.json(200, _paths_info(snapshot, _posted_paths(ex)))
        elif action == "resolve" and ex.method in ("GET", "HEAD"):
            self._resolve(ex, repo_id, snapshot, inner)
        else:
            ex.error(404, f"Not Found: {ex.path}")

    def _authorized(self, ex: Exchange) -> bool:
        scheme, _, token = ex.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() in self.tokens()

    def _tree(self, ex: Exchange, snapshot: Snapshot, inner: str) -> None:
        recursive = ex.query.get("recursive", "false") in _TRUE
        entries = _tree_entries(snapshot, inner, recursive=recursive)
        if entries is None:
            _hub_error(ex, 404, "EntryNotFound", f"{inner} does not exist on \"{DEFAULT_BRANCH}\"",
                       {"X-Repo-Commit": snapshot.sha})
            return
        ex.json(200, entries)

    def _resolve(self, ex: Exchange, repo_id: str, snapshot: Snapshot, inner: str) -> None:
        entry = snapshot.file(inner)
        repo_dir = self.index.repo_dir(repo_id)
        if entry is None or repo_dir is None:
            _hub_error(ex, 404, "EntryNotFound", f"Entry not found: {inner}", {"X-Repo-Commit": snapshot.sha})
            return
        headers = {"X-Repo-Commit": snapshot.sha}
        if entry.lfs:
            headers.update({"X-Linked-Etag": f'"{entry.sha256}"', "X-Linked-Size": str(entry.size_bytes)})
        content_type = mimetypes.guess_type(entry.path)[0] or "application/octet-stream"
        send_file(ex, repo_dir / entry.path, headers=headers, content_type=content_type, etag=f'"{entry.etag}"')


def _hub_error(ex: Exchange, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
    ex.json(status, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message, **(headers or {})})


def _lfs_tree(f: RepoFile) -> dict[str, Any] | None:
    return {"oid": f.sha256, "size": f.size_bytes, "pointerSize": f.pointer_size} if f.lfs else None


def _file_entry(f: RepoFile) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "file", "oid": f.blob_id, "size": f.size_bytes, "path": f.path}
    if f.lfs:
        entry["lfs"] = _lfs_tree(f)
    return entry


def _dir_entry(snapshot: Snapshot, path: str) -> dict[str, Any]:
    return {"type": "directory", "oid": snapshot.tree_id(path), "size": 0, "path": path}


def _tree_entries(snapshot: Snapshot, inner: str, *, recursive: bool) -> list[dict[str, Any]] | None:
    """List a directory of the repo like the Hub's tree endpoint (``None`` if it does not exist)."""
    base = inner.strip("/")
    dirs = snapshot.directories()
    if base and base not in dirs:
        return None
    prefix = base + "/" if base else ""

    def wanted(path: str) -> bool:
        if not path.startswith(prefix) or path == base:
            return False
        return recursive or "/" not in path[len(prefix):]

    entries = [_dir_entry(snapshot, d) for d in dirs if wanted(d)]
    entries += [_file_entry(f) for f in snapshot.files if wanted(f.path)]
    return sorted(entries, key=lambda e: (e["type"] != "directory", e["path"]))


def _posted_paths(ex: Exchange) -> list[str]:
    if ex.headers.get("content-type", "").startswith("application/json"):
        paths = json.loads(ex.body or b"{}").get("paths", [])
        return [paths] if isinstance(paths, str) else list(paths)
    return parse_qs(ex.body.decode("utf-8"), keep_blank_values=True).get("paths", [])


def _paths_info(snapshot: Snapshot, paths: list[str]) -> list[dict[str, Any]]:
    dirs = set(snapshot.directories())
    out: list[dict[str, Any]] = []
    for raw in paths:
        path = raw.strip("/")
        entry = snapshot.file(path)
        if entry is not None:
            out.append(_file_entry(entry))
        elif path in dirs:
            out.append(_dir_entry(snapshot, path))
    return out


def _repo_info(repo_id: str, snapshot: Snapshot, gated: bool, index: RepoIndex) -> dict[str, Any]:
    owner = repo_id.split("/")[0]
    info: dict[str, Any] = {
        "_id": snapshot.sha[:24],
        "id": repo_id,
        "author": owner,
        "sha": snapshot.sha,
        "lastModified": snapshot.last_modified,
        "createdAt": snapshot.last_modified,
        "private": False,
        "gated": "manual" if gated else False,
        "disabled": False,
        "downloads": 0,
        "likes": 0,
        "tags": [],
        "siblings": [_sibling(f) for f in snapshot.files],
    }
    card = _card_data(index, repo_id, snapshot)
    if card is not None:
        info["cardData"] = card
    return info


def _sibling(f: RepoFile) -> dict[str, Any]:
    sibling: dict[str, Any] = {"rfilename": f.path, "size": f.size_bytes, "blobId": f.blob_id}
    if f.lfs:
        sibling["lfs"] = {"sha256": f.sha256, "size": f.size_bytes, "pointerSize": f.pointer_size}
    return sibling


def _card_data(index: RepoIndex, repo_id: str, snapshot: Snapshot) -> dict[str, Any] | None:
    """Parse the YAML front matter of the repo's README.md, as the Hub's ``cardData``."""
    repo_dir = index.repo_dir(repo_id)
    if repo_dir is None or snapshot.file("README.md") is None:
        return None
    text = (repo_dir / "README.md").read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    front, sep, _ = text[3:].partition("\n---")
    if not sep:
        return None
    try:
        data = yaml.safe_load(front)
    except yaml.YAMLError:
        log.warning("%s: README.md front matter is not valid YAML; cardData left out", repo_id)
        return None
    return data if isinstance(data, dict) else None

