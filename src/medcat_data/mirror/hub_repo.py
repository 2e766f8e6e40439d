"""A Hugging Face dataset repo as the mirror sees it: files on disk, their git/LFS ids, one revision.

A repo lives at ``root/datasets/<owner>/<name>/`` with its files at a single revision. Its commit
sha is a deterministic 40-hex digest of the file list and contents, recomputed only when a file's
size or mtime changes. Nothing here speaks HTTP; ``hub_api`` turns these records into JSON.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

#: Files above this size are stored as LFS pointers, like a repo pushed with the Hub's default
#: ``.gitattributes`` would store them. Kept small (10 kB) so tiny replicas exercise the LFS path.
LFS_THRESHOLD_BYTES = 10_000
#: Extensions the Hub's default ``.gitattributes`` tracks with LFS whatever their size (subset).
LFS_EXTENSIONS = frozenset(
    {".parquet", ".arrow", ".zip", ".gz", ".tar", ".tgz", ".jpg", ".jpeg", ".png", ".npy", ".npz", ".bin", ".nii", ".dcm"}
)
#: Flag file: a repo holding it is gated (needs a bearer token the server knows).
GATED_FLAG = ".gated"
#: Flag file: a repo holding it reports the 40-hex commit sha written in it instead of a computed
#: one, so a replica can stand in for a registry source pinned to an upstream commit.
REVISION_FLAG = ".revision"
_HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class RepoFile:
    """One file of a repo: its path, size, git blob id and, for LFS files, sha256 and pointer size."""

    path: str
    size_bytes: int
    blob_id: str
    sha256: str
    lfs: bool
    pointer_size: int
    mtime_s: float

    @property
    def etag(self) -> str:
        """The id the Hub reports as ETag: the sha256 for LFS files, the git blob sha1 otherwise."""
        return self.sha256 if self.lfs else self.blob_id


@dataclass(frozen=True)
class Snapshot:
    """Every file of a repo at its single revision, sorted by path."""

    sha: str
    files: tuple[RepoFile, ...]

    def file(self, path: str) -> RepoFile | None:
        """Return the file at ``path``, if any."""
        return next((f for f in self.files if f.path == path), None)

    def directories(self) -> list[str]:
        """Every directory path that holds a file, sorted."""
        dirs = {str(parent) for f in self.files for parent in PurePosixPath(f.path).parents if str(parent) != "."}
        return sorted(dirs)

    def tree_id(self, directory: str) -> str:
        """A deterministic id for a directory (a digest of the blob ids under it)."""
        prefix = directory.rstrip("/") + "/"
        digest = hashlib.sha1(prefix.encode())
        for f in self.files:
            if f.path.startswith(prefix):
                digest.update(f"{f.path}\0{f.blob_id}\n".encode())
        return digest.hexdigest()

    @property
    def last_modified(self) -> str:
        """The newest file mtime as the Hub's ISO format (``2024-01-31T12:00:00.000Z``)."""
        newest = max((f.mtime_s for f in self.files), default=0.0)
        return datetime.fromtimestamp(newest, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _is_lfs(path: str, size_bytes: int) -> bool:
    return size_bytes > LFS_THRESHOLD_BYTES or PurePosixPath(path).suffix.lower() in LFS_EXTENSIONS


def lfs_pointer(sha256: str, size_bytes: int) -> bytes:
    """The git-lfs pointer text stored in git for an LFS file."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size_bytes}\n".encode()


def _hash_file(path: Path, size_bytes: int) -> tuple[str, str]:
    """Return (git blob sha1, sha256) of a file, reading it in chunks."""
    blob = hashlib.sha1(b"blob %d\0" % size_bytes)
    sha256 = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_HASH_CHUNK_BYTES):
            blob.update(chunk)
            sha256.update(chunk)
    return blob.hexdigest(), sha256.hexdigest()


class RepoIndex:
    """Snapshots of the repos under a root, cached per file by (size, mtime_ns)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._hashes: dict[Path, tuple[int, int, str, str]] = {}

    def repo_dir(self, repo_id: str) -> Path | None:
        """Return ``root/datasets/<owner>/<name>`` if that repo exists."""
        owner, _, name = repo_id.partition("/")
        if not owner or not name or any(p in ("", ".", "..") or "/" in p for p in (owner, name)):
            return None
        path = self.root / "datasets" / owner / name
        return path if path.is_dir() else None

    def is_gated(self, repo_id: str) -> bool:
        """Tell whether the repo carries the ``.gated`` flag file."""
        repo = self.repo_dir(repo_id)
        return repo is not None and (repo / GATED_FLAG).is_file()

    def snapshot(self, repo_id: str) -> Snapshot | None:
        """Describe every file of a repo and its revision sha (``None`` if the repo does not exist)."""
        repo = self.repo_dir(repo_id)
        if repo is None:
            return None
        files = tuple(self._describe(repo, p) for p in sorted(_walk(repo), key=lambda p: p.relative_to(repo).as_posix()))
        pinned = _pinned_revision(repo)
        if pinned is not None:
            return Snapshot(sha=pinned, files=files)
        digest = hashlib.sha1(f"medcat-mirror\0{repo_id}\n".encode())
        for f in files:
            digest.update(f"{f.path}\0{f.blob_id}\n".encode())
        return Snapshot(sha=digest.hexdigest(), files=files)

    def _describe(self, repo: Path, path: Path) -> RepoFile:
        st = path.stat()
        with self._lock:
            cached = self._hashes.get(path)
        if cached is None or cached[:2] != (st.st_size, st.st_mtime_ns):
            blob_id, sha256 = _hash_file(path, st.st_size)
            cached = (st.st_size, st.st_mtime_ns, blob_id, sha256)
            with self._lock:
                self._hashes[path] = cached
        rel = path.relative_to(repo).as_posix()
        sha256 = cached[3]
        lfs = _is_lfs(rel, st.st_size)
        pointer = lfs_pointer(sha256, st.st_size)
        blob_id = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest() if lfs else cached[2]
        return RepoFile(rel, st.st_size, blob_id, sha256, lfs, len(pointer) if lfs else 0, st.st_mtime)


def _pinned_revision(repo: Path) -> str | None:
    """Return the commit sha a repo's ``.revision`` flag pins (40 lower-case hex), if it has a valid one."""
    flag = repo / REVISION_FLAG
    if not flag.is_file():
        return None
    sha = flag.read_text(encoding="ascii", errors="replace").strip().lower()
    if len(sha) != 40 or any(c not in "0123456789abcdef" for c in sha):
        log.warning("%s does not hold a 40-hex commit sha; using the computed one", flag)
        return None
    return sha


def _walk(repo: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            if Path(dirpath) == repo and name in (GATED_FLAG, REVISION_FLAG):
                continue
            found.append(Path(dirpath) / name)
    return found
