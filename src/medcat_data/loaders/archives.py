"""Extract verified archives (zip, tar, tar.gz/tgz/bz2/xz, single-file .gz) safely.

Every member is checked before it is written: no absolute paths, no ``..``, no links that
point outside the target, no device files or FIFOs; and the bytes written are capped in total
and in ratio to the archive's size (bombs). Members are extracted into a staging folder and moved
into place only when the whole archive passed, so a rejected archive leaves nothing behind.
Never interprets member contents.
"""

from __future__ import annotations

import gzip
import logging
import os
import posixpath
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from medcat_data.errors import UnsafeArchiveError

log = logging.getLogger(__name__)

ArchiveKind = Literal["zip", "tar", "gz"]
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ExtractLimits:
    """Caps against archive bombs.

    Attributes:
        max_total_bytes: bytes an archive may expand to.
        max_ratio: expanded / archive size, enforced once more than ``ratio_floor_bytes`` are out
            (small archives of very compressible text are fine; sparse masks reach ~100-1000x).
        max_members: number of members.
    """

    max_total_bytes: int = 4 << 40
    max_ratio: float = 1000.0
    ratio_floor_bytes: int = 1 << 30
    max_members: int = 10_000_000


def archive_kind(path: Path) -> ArchiveKind | None:
    """Guess the archive kind from the name, then from the leading bytes."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return "tar"
    if name.endswith(".gz"):
        return "gz"
    with path.open("rb") as fh:
        head = fh.read(262)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if head.startswith(b"\x1f\x8b"):
        return "tar" if tarfile.is_tarfile(path) else "gz"
    return None


def _member_path(archive: str, name: str) -> str:
    """Normalize a member name to a safe relative POSIX path.

    Raises:
        UnsafeArchiveError: absolute, drive-qualified or escaping with ``..``.
    """
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract.")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeArchiveError(f"{archive}: member {name!r} escapes the target folder with '..'; refusing to extract.")
    return "/".join(parts)


def _check_link(archive: str, member: str, target: str) -> None:
    """Refuse a link whose target resolves outside the extraction folder."""
    clean = target.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: link {member!r} points to the absolute path {target!r}; refusing to extract.")
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(member), clean))
    if joined == ".." or joined.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: link {member!r} points outside the target ({target!r}); refusing to extract.")


class _Budget:
    def __init__(self, archive: str, archive_size: int, limits: ExtractLimits) -> None:
        self.archive = archive
        self.archive_size = max(archive_size, 1)
        self.limits = limits
        self.total = 0
        self.members = 0

    def member(self) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise UnsafeArchiveError(f"{self.archive}: more than {self.limits.max_members} members; refusing to extract.")

    def spend(self, n: int) -> None:
        self.total += n
        if self.total > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"{self.archive}: expands beyond {self.limits.max_total_bytes} bytes; refusing to extract (archive bomb?)."
            )
        if self.total > self.limits.ratio_floor_bytes and self.total / self.archive_size > self.limits.max_ratio:
            raise UnsafeArchiveError(
                f"{self.archive}: expands more than {self.limits.max_ratio:.0f}x its size; refusing to extract (archive bomb?)."
            )


class _Readable(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...


def _copy(src: _Readable, dst: Path, budget: _Budget, declared: int | None) -> int:
    written = 0
    with dst.open("wb") as out:
        while chunk := src.read(_CHUNK_BYTES):
            written += len(chunk)
            if declared is not None and written > declared:
                raise UnsafeArchiveError(f"{budget.archive}: {dst.name} is larger than its header says; refusing to extract.")
            budget.spend(len(chunk))
            out.write(chunk)
    return written


def _extract_zip(path: Path, staging: Path, budget: _Budget) -> Iterator[tuple[str, int]]:
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        # Check every name and type before writing a byte.
        for info in infos:
            rel = _member_path(budget.archive, info.filename)
            mode = info.external_attr >> 16
            # Zips made on Windows (or by writestr) carry permission bits without a file type.
            if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
                raise UnsafeArchiveError(f"{budget.archive}: member {info.filename!r} is a device or FIFO; refusing to extract.")
            if stat.S_ISLNK(mode):
                _check_link(budget.archive, rel, zf.read(info).decode("utf-8", "replace"))
        for info in infos:
            rel = _member_path(budget.archive, info.filename)
            if not rel:
                continue
            budget.member()
            target = staging / rel
            mode = info.external_attr >> 16
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if stat.S_ISLNK(mode):
                os.symlink(zf.read(info).decode("utf-8"), target)
                yield rel, -1
                continue
            with zf.open(info) as src:
                yield rel, _copy(src, target, budget, info.file_size)


def _extract_tar(path: Path, staging: Path, budget: _Budget) -> Iterator[tuple[str, int]]:
    with tarfile.open(path, mode="r:*") as tf:
        for member in tf:
            rel = _member_path(budget.archive, member.name)
            if not rel:
                continue
            budget.member()
            target = staging / rel
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            if member.issym() or member.islnk():
                link_target = member.linkname
                if member.islnk():
                    # Hard links name another member by its archive path.
                    link_target = posixpath.relpath(_member_path(budget.archive, member.linkname), posixpath.dirname(rel) or ".")
                _check_link(budget.archive, rel, link_target)
                target.parent.mkdir(parents=True, exist_ok=True)
                if member.issym():
                    os.symlink(member.linkname, target)
                    yield rel, -1
                else:
                    source = staging / _member_path(budget.archive, member.linkname)
                    if not source.is_file():
                        raise UnsafeArchiveError(f"{budget.archive}: hard link {member.name!r} names a missing member; refusing to extract.")
                    shutil.copyfile(source, target)
                    yield rel, target.stat().st_size
                continue
            if not member.isfile():
                raise UnsafeArchiveError(f"{budget.archive}: member {member.name!r} is a device or FIFO; refusing to extract.")
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            assert src is not None
            with src:
                yield rel, _copy(src, target, budget, member.size)


def _extract_gz(path: Path, staging: Path, budget: _Budget) -> Iterator[tuple[str, int]]:
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name + ".out"
    budget.member()
    with gzip.open(path, "rb") as src:
        yield name, _copy(src, staging / name, budget, None)


def extract(
    archive: Path,
    target: Path,
    staging: Path,
    *,
    label: str | None = None,
    limits: ExtractLimits | None = None,
) -> list[tuple[str, int]]:
    """Extract ``archive`` into ``target`` through ``staging``; return (member path, size) pairs.

    Member paths are relative to ``target``; sizes are ``-1`` for symbolic links. ``label``
    names the archive in messages (its dataset-relative path).

    Raises:
        UnsafeArchiveError: a member is unsafe or a cap is exceeded; nothing is left in ``target``.
    """
    name = label or archive.name
    kind = archive_kind(archive)
    if kind is None:
        raise UnsafeArchiveError(f"{name}: not a zip, tar or gzip archive; cannot extract it.")
    budget = _Budget(name, archive.stat().st_size, limits or ExtractLimits())
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    extractor = {"zip": _extract_zip, "tar": _extract_tar, "gz": _extract_gz}[kind]
    try:
        members = list(extractor(archive, staging, budget))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchiveError(f"{name}: damaged {kind} archive ({type(err).__name__}: {err}).") from err
    except UnsafeArchiveError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _move_into(staging, target)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: extracted %d members", name, len(members))
    return members


def _move_into(staging: Path, target: Path) -> None:
    """Move every staged file and link into ``target``, replacing what is there."""
    for folder, dirnames, filenames in os.walk(staging):
        rel_dir = Path(folder).relative_to(staging)
        dest_dir = target / rel_dir
        dest_dir.mkdir(parents=True, exist_ok=True)
        for name in filenames + [d for d in dirnames if (Path(folder) / d).is_symlink()]:
            dst = dest_dir / name
            if dst.is_dir() and not dst.is_symlink():
                shutil.rmtree(dst)
            os.replace(Path(folder) / name, dst)
