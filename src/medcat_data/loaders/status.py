"""What a dataset folder holds according to its fetch manifest: usable files and broken ones.

Stats files only (no hashing): the fast check normalize runs before any work. ``medcat verify
--full`` is the rehashing check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from medcat_data.catalog.schema import Source
from medcat_data.loaders.cache import META_DIR
from medcat_data.loaders.fetch_manifest import Manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FetchedState:
    """Verified relative paths present at their recorded size, and the paths that are not."""

    available: frozenset[str] | None
    bad: list[str] = field(default_factory=list)


def _in_sources(path: str, sources: Sequence[Source]) -> bool:
    """Return whether a path lies in one of the sources' folders (a root source holds everything)."""
    if any(not s.subdir for s in sources):
        return True
    return any(path.startswith(s.subdir.strip("/") + "/") for s in sources)


def fetched_files(root: Path, sources: Sequence[Source]) -> FetchedState:
    """Return the manifest's verified files under ``root`` that belong to ``sources``.

    A file recorded as verified but now absent or of another size is ``bad``, as is a file the
    last fetch could not deliver (missing/failed). Without a manifest every file on disk counts
    as available (a folder laid out by hand); ``medcat verify`` says more.
    """
    manifest = Manifest.open(root / META_DIR, "", "", create=False)
    if manifest is None:
        log.warning("%s has no fetch manifest; its files are used as they are, unverified", root)
        return FetchedState(None, [])
    available: set[str] = set()
    bad: list[str] = []
    try:
        for rel, record in manifest.files():
            if not _in_sources(rel, sources):
                continue
            if record.status != "ok":
                bad.append(f"{rel} ({record.status}: {record.reason or 'not verified'})")
                continue
            path = root / rel
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                bad.append(f"{rel} (missing)")
                continue
            if record.size >= 0 and size != record.size:
                bad.append(f"{rel} (size {size}, expected {record.size})")
                continue
            available.add(rel)
        for extraction in manifest.extractions():
            for member, _size in extraction.members:
                if (root / member).exists():
                    available.add(member)
    finally:
        manifest.close()
    return FetchedState(frozenset(available), sorted(bad))
