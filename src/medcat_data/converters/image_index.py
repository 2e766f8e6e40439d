"""Find an image by file name among loose files and zip members, through on-disk indexes.

PMC-derived sets and some imaging sets reference images by file name while the fetch holds them
as loose files, as members of zip parts, or both (upstream ships zips; a user may have unzipped
some). :func:`build_image_index` is called once per fetch (in a recipe's survey, in the parent):
loose files go into a small SQLite table (base name -> path relative to the index's base
folder; the first in the given order wins) and zip parts through ``converters.zipmembers``
(central directories read once, members read in place, never extracted). The result,
:class:`ImageIndex`, is a small picklable value that work units carry; a worker opens it
(:meth:`ImageIndex.open`) and looks names up: loose files first, then zip members.

Index files are named by a digest of what they index, written under a temporary name and
renamed, and reused while nothing changed. Memory stays bounded by one batch of names whatever
the number of images. This module reads file names and archives; it decodes no image and knows
no dataset (the caller chooses which files and parts to index).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from medcat_data.converters.zipmembers import MemberIndex, MemberRef, build_index, unreadable_parts

log = logging.getLogger(__name__)

__all__ = ["DERIVED_DIR", "ImageIndex", "ImageLookup", "LooseImage", "MemberRef", "build_image_index", "derived_dir", "walk_files"]

DERIVED_DIR = Path(".medcat") / "derived"
"""Where derived indexes go, relative to the dataset's raw folder (next to the fetch state)."""
_BATCH = 10_000


@dataclass(frozen=True)
class LooseImage:
    """A loose image file: its path relative to the index's base folder, and its local path."""

    rel: str
    path: Path

    @property
    def label(self) -> str:
        """Name the file for messages: its relative path, never an absolute one."""
        return self.rel


@dataclass(frozen=True)
class ImageIndex:
    """The image indexes of one fetch (either may be absent); carried by work units, opened in workers.

    ``parts`` are the indexed zip parts and ``unreadable`` those that are not readable zips (their
    members are absent), both relative to ``base``.
    """

    base: Path
    loose: Path | None = None
    zipped: Path | None = None
    loose_count: int = 0
    parts: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()

    def open(self) -> ImageLookup:
        """Open the indexes read-only for lookups (one per work unit; close it after)."""
        return ImageLookup(self)


class ImageLookup:
    """Read-only lookups in an :class:`ImageIndex`: loose files first, then zip members."""

    def __init__(self, index: ImageIndex) -> None:
        self.index = index
        self._loose = sqlite3.connect(f"{index.loose.resolve().as_uri()}?mode=ro", uri=True) if index.loose else None
        self._zips = MemberIndex(index.zipped, index.base) if index.zipped else None

    def find(self, name: str) -> LooseImage | MemberRef | None:
        """Return where the image with base name ``name`` is, or None when no indexed file or member holds it."""
        if self._loose is not None:
            row = self._loose.execute("SELECT path FROM files WHERE name = ?", (name,)).fetchone()
            if row is not None:
                return LooseImage(row[0], self.index.base / row[0])
        return self._zips.get(name) if self._zips is not None else None

    def read_member(self, ref: MemberRef) -> bytes:
        """Return the bytes of a zip member found by :meth:`find`.

        Raises:
            SampleError: the member cannot be read (named ``part:member``).
        """
        assert self._zips is not None, "a member ref comes from this index's zips"
        return self._zips.read(ref)

    def close(self) -> None:
        """Close the indexes and any open zip part."""
        if self._loose is not None:
            self._loose.close()
        if self._zips is not None:
            self._zips.close()

    def __enter__(self) -> ImageLookup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def walk_files(folder: Path, usable: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield the files under ``folder`` in sorted walk order, skipping folders whose name starts with ``.``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if usable is None or usable(path):
                yield path


def derived_dir(root: Path) -> Path:
    """Return a writable folder for derived indexes: ``<root>/.medcat/derived``, else a temporary folder."""
    folder = root / DERIVED_DIR
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return folder
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "medcat-derived"
        fallback.mkdir(parents=True, exist_ok=True)
        log.warning("%s is not writable; image indexes go to %s", folder, fallback)
        return fallback


def build_image_index(base: Path, derived: Path, *, prefix: str, loose: Iterable[Path] = (), parts: Sequence[Path] = ()) -> ImageIndex:
    """Index loose image files and the members of zip parts by base name, on disk under ``derived``.

    ``loose`` and ``parts`` are chosen by the caller (all under ``base``), in the order that decides
    which of two files with one name wins. ``prefix`` starts the index file names (the dataset id).
    """
    derived.mkdir(parents=True, exist_ok=True)
    loose_path, count = _index_loose(base, derived, prefix, loose)
    zipped: Path | None = None
    unreadable: tuple[str, ...] = ()
    if parts:
        stats = repr([(p.relative_to(base).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in parts])
        zipped = derived / f"{prefix}-zips-{hashlib.sha256(f'{base}{stats}'.encode()).hexdigest()[:16]}.sqlite"
        if not zipped.exists():
            log.info("%s: indexing the members of %d zip file(s)", prefix, len(parts))
            build_index(parts, base, zipped)
        unreadable = tuple(unreadable_parts(zipped))
        for rel in unreadable:
            log.warning("%s: %s is not a readable zip; images only it holds will be reported missing", prefix, rel)
    return ImageIndex(base, loose_path, zipped, count, tuple(p.relative_to(base).as_posix() for p in parts), unreadable)


def _index_loose(base: Path, derived: Path, prefix: str, files: Iterable[Path]) -> tuple[Path | None, int]:
    """Write the loose-file table (name -> relative path) in batches; return its file and row count."""
    tmp = derived / f"{prefix}-loose.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    digest = hashlib.sha256(str(base).encode())
    con = sqlite3.connect(tmp)
    try:
        con.execute("CREATE TABLE files (name TEXT PRIMARY KEY, path TEXT) WITHOUT ROWID")
        batch: list[tuple[str, str]] = []
        for path in files:
            rel = path.relative_to(base).as_posix()
            batch.append((path.name, rel))
            digest.update(rel.encode() + b"\0")
            if len(batch) >= _BATCH:
                con.executemany("INSERT OR IGNORE INTO files VALUES (?, ?)", batch)
                batch.clear()
        con.executemany("INSERT OR IGNORE INTO files VALUES (?, ?)", batch)
        con.commit()
        (count,) = con.execute("SELECT COUNT(*) FROM files").fetchone()
    finally:
        con.close()
    if not count:
        tmp.unlink(missing_ok=True)
        return None, 0
    final = derived / f"{prefix}-loose-{digest.hexdigest()[:16]}.sqlite"
    os.replace(tmp, final)
    return final, int(count)
