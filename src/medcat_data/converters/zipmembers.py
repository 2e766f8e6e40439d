"""Read members of large multi-part zip archives in place, through an on-disk name index.

PMC-derived instruction sets ship their images as a few dozen zip parts of several GB each
(PubMedVision: ``images_0.zip`` ... ``images_19.zip``, about 1M JPEGs), meant to be unpacked
flat (``unzip -j``). Extracting doubles the disk needed, and opening every part with
``zipfile.ZipFile`` in every work unit re-parses all central directories each time. Instead the
central directories are read once, into a small SQLite file that maps a member's *base name* to
its part and the offsets needed to read it (:func:`build_index`); a worker then opens the index
read-only (:class:`MemberIndex`) and reads each member straight from its local header
(:func:`read_member`), so it never holds the bytes of members other than the one asked for.

Only stored (0) and deflated (8) members are read; encryption is refused. This module reads
archives and writes only its index file; it knows no dataset and decodes no image.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from medcat_data.errors import SampleError

log = logging.getLogger(__name__)

__all__ = ["MemberIndex", "MemberRef", "build_index", "read_member", "unreadable_parts"]

_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_MAGIC = b"PK\x03\x04"
_STORED, _DEFLATED = 0, 8
_BATCH = 10_000


@dataclass(frozen=True)
class MemberRef:
    """Where one member is: its part (relative to the index's base folder) and central-directory facts."""

    part: str
    member: str
    offset: int
    compressed_size: int
    size: int
    method: int
    crc: int

    @property
    def label(self) -> str:
        """Name the member as ``part:member`` for messages."""
        return f"{self.part}:{self.member}"


def build_index(parts: Sequence[Path], base: Path, index_path: Path) -> tuple[int, list[str]]:
    """Write ``index_path``: every member's base name -> its ``MemberRef``, from the central directories.

    Parts are read in the given order; when a base name repeats, the first part wins (as a
    flat ``unzip -j`` that does not overwrite would keep). Directories are skipped. The file is
    written under a temporary name and renamed, so a half-built index is never used. Memory holds
    one part's central directory at a time.

    Returns:
        The number of indexed names and the parts that could not be read as zips (their members
        are then simply absent; callers report the rows that need them).
    """
    index_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_path.with_name(index_path.name + f".{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    unreadable: list[str] = []
    con = sqlite3.connect(tmp)
    try:
        con.execute(
            "CREATE TABLE members (name TEXT PRIMARY KEY, part TEXT, member TEXT, offset INTEGER,"
            " csize INTEGER, size INTEGER, method INTEGER, crc INTEGER) WITHOUT ROWID"
        )
        con.execute("CREATE TABLE unreadable (part TEXT)")
        for part in parts:
            rel = part.relative_to(base).as_posix()
            try:
                with zipfile.ZipFile(part) as archive:
                    rows = [
                        (PurePosixPath(info.filename).name, rel, info.filename, info.header_offset,
                         info.compress_size, info.file_size, info.compress_type, info.CRC)
                        for info in archive.infolist()
                        if not info.is_dir()
                    ]
            except (OSError, zipfile.BadZipFile) as err:
                log.warning("%s: not a readable zip (%s); its members are treated as absent", rel, err)
                unreadable.append(rel)
                con.execute("INSERT INTO unreadable VALUES (?)", (rel,))
                continue
            for start in range(0, len(rows), _BATCH):
                con.executemany("INSERT OR IGNORE INTO members VALUES (?,?,?,?,?,?,?,?)", rows[start:start + _BATCH])
        con.commit()
        (count,) = con.execute("SELECT COUNT(*) FROM members").fetchone()
    finally:
        con.close()
    os.replace(tmp, index_path)
    return int(count), unreadable


def unreadable_parts(index_path: Path) -> list[str]:
    """Return the parts that :func:`build_index` could not read as zips (recorded in the index)."""
    con = sqlite3.connect(f"{index_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [part for (part,) in con.execute("SELECT part FROM unreadable ORDER BY rowid")]
    finally:
        con.close()


class MemberIndex:
    """A read-only view of an index written by :func:`build_index`; open per work unit, then close.

    Part files are opened on first use and kept open until :meth:`close`, so a unit reading many
    members of one part seeks in one handle.
    """

    def __init__(self, index_path: Path, base: Path) -> None:
        self.base = base
        self._con = sqlite3.connect(f"{index_path.resolve().as_uri()}?mode=ro", uri=True)
        self._handles: dict[str, BinaryIO] = {}

    def get(self, name: str) -> MemberRef | None:
        """Return where the member with base name ``name`` is, or None when no part holds it."""
        row = self._con.execute(
            "SELECT part, member, offset, csize, size, method, crc FROM members WHERE name = ?", (name,)
        ).fetchone()
        return MemberRef(*row) if row else None

    def read(self, ref: MemberRef) -> bytes:
        """Return the bytes of one member (see :func:`read_member`).

        Raises:
            SampleError: the member cannot be read (stage ``read``), named ``part:member``.
        """
        handle = self._handles.get(ref.part)
        if handle is None:
            try:
                handle = self._handles[ref.part] = open(self.base / ref.part, "rb")
            except OSError as err:
                raise SampleError(ref.label, "read", f"cannot open the zip part {ref.part}: {err.strerror or type(err).__name__}") from err
        return read_member(handle, ref)

    def close(self) -> None:
        """Close the index and every part handle."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()
        self._con.close()

    def __enter__(self) -> MemberIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_member(handle: BinaryIO, ref: MemberRef) -> bytes:
    """Read one member from an open part: local header, then its data, inflated and CRC-checked.

    Sizes come from the central directory (``ref``), which is authoritative also for zip64 and
    for members written with a data descriptor.

    Raises:
        SampleError: a bad local header, an unsupported method, encryption, truncated or
            corrupt data, or a CRC mismatch (stage ``read``).
    """
    try:
        handle.seek(ref.offset)
        header = handle.read(_LOCAL_HEADER.size)
        if len(header) != _LOCAL_HEADER.size:
            raise SampleError(ref.label, "read", "the zip part ends inside a local header (truncated?)")
        magic, _, flags, _, _, _, _, _, _, name_len, extra_len = _LOCAL_HEADER.unpack(header)
        if magic != _LOCAL_MAGIC:
            raise SampleError(ref.label, "read", f"no local file header at byte {ref.offset}; the zip is corrupt")
        if flags & 0x1:
            raise SampleError(ref.label, "read", "the member is encrypted")
        handle.seek(name_len + extra_len, os.SEEK_CUR)
        raw = handle.read(ref.compressed_size)
    except OSError as err:
        raise SampleError(ref.label, "read", f"cannot read the zip part: {err}") from err
    if len(raw) != ref.compressed_size:
        raise SampleError(ref.label, "read", "the zip part ends inside the member's data (truncated?)")
    if ref.method == _STORED:
        data = raw
    elif ref.method == _DEFLATED:
        try:
            data = zlib.decompress(raw, -15)
        except zlib.error as err:
            raise SampleError(ref.label, "read", f"corrupt deflate data: {err}") from err
    else:
        raise SampleError(ref.label, "read", f"compression method {ref.method} is not supported (stored and deflate are)")
    if len(data) != ref.size or zlib.crc32(data) != ref.crc:
        raise SampleError(ref.label, "read", "CRC or size mismatch: the member's data is corrupt")
    return data
