"""Extract verified archives (zip, tar, tar.gz/tgz/bz2/xz, single-file .gz) safely.

Policy: nothing is ever written outside the target folder, whatever the archive holds.

- Member names are relative, UTF-8, unique after normalization (``a\\b``, ``a/./b`` and ``a/b`` are
  one name), and free of ``..``. Link targets are UTF-8 too.
- A symbolic link is recreated only when its target, resolved through the links already
  extracted, stays inside the folder; it is written in that resolved form (``../`` climbs, then
  names). No member is ever written *through* a link: a member whose parent folder is a link, in
  staging or in the target, is refused.
- A hard link (tar) becomes a copy of a regular file member extracted before it; nothing else.
- Devices, FIFOs and encrypted zip members are refused. Permission bits are not restored.
- Bombs: the declared sizes (zip central directory before any byte is written; each tar header
  before its member is written) are capped in total and in ratio to the archive's size, and so is
  the member count; a member that holds more bytes than its header says is refused. A single-file
  .gz declares no trustworthy size: its ratio is checked while it streams, above a low floor.

Every write is judged by the real path of what is on disk (``os.path.realpath``, files opened with
``O_EXCL | O_NOFOLLOW``), never by the text of a member name. Members go to a fresh staging folder
and are moved into the target only when the whole archive passed; a refusal removes the staging
folder and leaves the target untouched. Never interprets member contents.
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

from medcat_data.errors import FetchError, UnsafeArchiveError

log = logging.getLogger(__name__)

ArchiveKind = Literal["zip", "tar", "gz"]
_CHUNK_BYTES = 1 << 20
_MAX_LINK_BYTES = 4096  # PATH_MAX on Linux: a longer link target is not a path.
_ZIP_UTF8_FLAG = 0x800  # general purpose bit 11 (APPNOTE 4.4.4): names are UTF-8.
_ZIP_ENCRYPTED_FLAG = 0x1
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ExtractLimits:
    """Caps against archive bombs.

    Attributes:
        max_total_bytes: bytes an archive may expand to (declared sizes, and bytes written).
        max_ratio: expanded / archive size, enforced once more than ``ratio_floor_bytes`` are
            declared (small archives of very compressible text are fine; sparse masks reach
            ~100-1000x).
        ratio_floor_bytes: see ``max_ratio``.
        stream_ratio_floor_bytes: a single-file .gz declares no size; its ratio is checked on the
            bytes written once more than this many are out.
        max_members: number of members.
    """

    max_total_bytes: int = 4 << 40
    max_ratio: float = 1000.0
    ratio_floor_bytes: int = 1 << 30
    stream_ratio_floor_bytes: int = 64 << 20
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


def _refuse(archive: str, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: member {member!r} {why}; refusing to extract.")


def _member_path(archive: str, name: str) -> str:
    """Normalize a member name to a safe relative POSIX path.

    Raises:
        UnsafeArchiveError: absolute, drive-qualified or escaping with ``..``.
    """
    clean = name.replace("\\", "/")
    if clean.startswith("/") or (len(clean) > 1 and clean[1] == ":"):
        raise _refuse(archive, name, "has an absolute path")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise _refuse(archive, name, "escapes the target folder with '..'")
    return "/".join(parts)


def _raw(text: str) -> bytes:
    """The bytes behind text decoded as UTF-8 with ``surrogateescape``."""
    return text.encode("utf-8", "surrogateescape")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # surrogates stand for bytes that were not UTF-8
        return False
    return True


def _resolve(path: Path) -> Path:
    """Resolve every link in ``path`` that exists; ``normpath`` then folds any ``..`` left after a loop."""
    return Path(os.path.normpath(os.path.realpath(path)))


def _not_utf8_name(archive: str, raw: bytes) -> UnsafeArchiveError:
    return UnsafeArchiveError(f"{archive}: member {raw!r} has a name that is not valid UTF-8; refusing to extract.")


class _Budget:
    """Counts members and bytes against ``ExtractLimits``."""

    def __init__(self, archive: str, archive_size: int, limits: ExtractLimits) -> None:
        self.archive = archive
        self.archive_size = max(archive_size, 1)
        self.limits = limits
        self.declared = 0
        self.streamed = 0
        self.members = 0

    def member(self, name: str) -> None:
        self.members += 1
        if self.members > self.limits.max_members:
            raise _refuse(self.archive, name, f"is one more than the {self.limits.max_members} members allowed")

    def declare(self, name: str, size: int) -> None:
        """Account for a member's declared size before any of its bytes are written."""
        self.declared += size
        self._check(name, self.declared, self.limits.ratio_floor_bytes, "declared")

    def stream(self, name: str, size: int) -> None:
        """Account for bytes written of a member whose size was never declared (single .gz)."""
        self.streamed += size
        self._check(name, self.streamed, self.limits.stream_ratio_floor_bytes, "written")

    def _check(self, name: str, total: int, floor: int, how: str) -> None:
        if total > self.limits.max_total_bytes:
            raise _refuse(self.archive, name, f"makes the archive expand beyond {self.limits.max_total_bytes} bytes ({how}; archive bomb?)")
        if total > floor and total / self.archive_size > self.limits.max_ratio:
            raise _refuse(
                self.archive, name, f"makes the archive expand more than {self.limits.max_ratio:.0f}x its size ({how}; archive bomb?)"
            )


class _Readable(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...


class _Stage:
    """The staging folder as it fills: every write is judged against its real path.

    Staging starts empty and only this class writes to it, so a folder checked once stays a
    real folder (duplicates are refused, nothing is ever replaced).
    """

    def __init__(self, root: Path, budget: _Budget) -> None:
        self.root = Path(os.path.realpath(root))
        self.budget = budget
        self.archive = budget.archive
        self.names: set[str] = set()
        self.files: dict[str, int] = {}  # regular files written: member path -> size
        self.folders: set[str] = {""}

    def claim(self, member: str, rel: str) -> None:
        if rel in self.names:
            raise _refuse(self.archive, member, "appears twice in the archive")
        self.names.add(rel)

    def folder(self, member: str, rel: str) -> Path:
        """Create ``rel`` (and its parents) as real folders; refuse to go through a link."""
        path, done = self.root, ""
        for part in rel.split("/") if rel else []:
            path, done = path / part, f"{done}/{part}" if done else part
            if done in self.folders:
                continue
            try:
                os.mkdir(path)
            except FileExistsError:
                pass
            if os.path.islink(path) or Path(os.path.realpath(path)) != path:
                raise _refuse(self.archive, member, f"would be written through the link {done!r}")
            if not path.is_dir():
                raise _refuse(self.archive, member, f"needs a folder where the member {done!r} is a file")
            self.folders.add(done)
        return path

    def directory(self, member: str, rel: str) -> None:
        self.claim(member, rel)
        self.folder(member, rel)

    def file(self, member: str, rel: str, src: _Readable, declared: int | None) -> int:
        """Stream ``src`` to a new file; ``declared`` is the header's size (None: unknown)."""
        self.claim(member, rel)
        dst = self.folder(member, posixpath.dirname(rel)) / posixpath.basename(rel)
        try:
            fd = os.open(dst, _CREATE, 0o666)
        except FileExistsError:
            raise _refuse(self.archive, member, "collides with an earlier member") from None
        written = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := src.read(_CHUNK_BYTES):
                written += len(chunk)
                if declared is None:
                    self.budget.stream(member, len(chunk))
                elif written > declared:
                    raise _refuse(self.archive, member, f"holds more bytes than the {declared} its header declares")
                out.write(chunk)
        self.files[rel] = written
        return written

    def symlink(self, member: str, rel: str, target: str) -> None:
        """Recreate a link whose target, resolved through the links already made, stays inside."""
        self.claim(member, rel)
        if not target or "\0" in target:
            raise _refuse(self.archive, member, "is a link with an empty or invalid target")
        if target.startswith(("/", "\\")) or (len(target) > 1 and target[1] == ":"):
            raise _refuse(self.archive, member, f"is a link to the absolute path {target!r}")
        folder = self.folder(member, posixpath.dirname(rel))
        resolved = _resolve(folder / target)
        if not resolved.is_relative_to(self.root):
            raise _refuse(self.archive, member, f"is a link that points outside the target ({target!r})")
        try:
            os.symlink(os.path.relpath(resolved, folder), folder / posixpath.basename(rel))
        except FileExistsError:
            raise _refuse(self.archive, member, "collides with an earlier member") from None

    def hardlink(self, member: str, rel: str, source: str) -> int:
        """Copy the regular file member ``source``, extracted before, to ``rel``."""
        size = self.files.get(source)
        if size is None:
            raise _refuse(self.archive, member, f"is a hard link to {source!r}, which is not a regular file extracted before it")
        self.budget.declare(member, size)
        fd = os.open(self.root / source, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as src:
            return self.file(member, rel, src, size)


def _zip_name(archive: str, info: zipfile.ZipInfo) -> str:
    """The member name as UTF-8: flagged names were decoded strictly by ``zipfile``.

    Unflagged names were decoded as cp437 by ``zipfile``; many tools write UTF-8 without the
    flag, so non-ASCII unflagged names are read as UTF-8, and refused when they are not.
    """
    if info.flag_bits & _ZIP_UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _not_utf8_name(archive, raw) from None


def _extract_zip(path: Path, stage: _Stage) -> Iterator[tuple[str, int]]:
    budget, archive = stage.budget, stage.archive
    try:
        zf = zipfile.ZipFile(path)
    except UnicodeDecodeError as err:  # a name flagged UTF-8 that is not
        raise _not_utf8_name(archive, err.object) from None
    with zf:
        # The central directory is complete: check every name, type, duplicate and declared size
        # before writing a byte.
        plan: list[tuple[zipfile.ZipInfo, str, str, Literal["file", "dir", "link"]]] = []
        seen: set[str] = set()
        for info in zf.infolist():
            name = _zip_name(archive, info)
            rel = _member_path(archive, name)
            mode = info.external_attr >> 16
            kind: Literal["file", "dir", "link"]
            if stat.S_ISLNK(mode):
                kind = "link"
            elif info.is_dir() or stat.S_ISDIR(mode):
                kind = "dir"
            elif stat.S_IFMT(mode) in (0, stat.S_IFREG):  # Windows zips and writestr carry no file type.
                kind = "file"
            else:
                raise _refuse(archive, name, "is a device or FIFO")
            if info.flag_bits & _ZIP_ENCRYPTED_FLAG:
                raise _refuse(archive, name, "is encrypted")
            if not rel:
                continue
            if rel in seen:
                raise _refuse(archive, name, "appears twice in the archive")
            seen.add(rel)
            budget.member(name)
            budget.declare(name, info.file_size)
            plan.append((info, name, rel, kind))
        for info, name, rel, kind in plan:
            if kind == "dir":
                stage.directory(name, rel)
            elif kind == "link":
                with zf.open(info) as src:
                    raw = src.read(_MAX_LINK_BYTES + 1)
                try:
                    target = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise _refuse(archive, name, f"is a link whose target {raw!r} is not valid UTF-8") from None
                if len(raw) > _MAX_LINK_BYTES:
                    raise _refuse(archive, name, "is a link with an overlong target")
                stage.symlink(name, rel, target)
                yield rel, -1
            else:
                with zf.open(info) as src:
                    yield rel, stage.file(name, rel, src, info.file_size)


def _extract_tar(path: Path, stage: _Stage) -> Iterator[tuple[str, int]]:
    budget, archive = stage.budget, stage.archive
    # A tar is a stream: each header is checked before its member's bytes are written.
    with tarfile.open(path, mode="r:*", encoding="utf-8", errors="surrogateescape") as tf:
        for member in tf:
            name = member.name
            if not _is_utf8(name):
                raise _not_utf8_name(archive, _raw(name))
            if not _is_utf8(member.linkname):
                raise _refuse(archive, name, f"is a link whose target {_raw(member.linkname)!r} is not valid UTF-8")
            rel = _member_path(archive, name)
            if not rel:
                continue
            budget.member(name)
            if member.isdir():
                stage.directory(name, rel)
            elif member.issym():
                stage.symlink(name, rel, member.linkname)
                yield rel, -1
            elif member.islnk():
                # Hard links name another member by its archive path.
                yield rel, stage.hardlink(name, rel, _member_path(archive, member.linkname))
            elif member.isfile():
                budget.declare(name, member.size)
                src = tf.extractfile(member)
                assert src is not None  # isfile() members always have a reader
                with src:
                    yield rel, stage.file(name, rel, src, member.size)
            else:
                raise _refuse(archive, name, "is a device or FIFO")


def _extract_gz(path: Path, stage: _Stage) -> Iterator[tuple[str, int]]:
    # gzip's ISIZE trailer is the size modulo 4 GiB and anyone can write it: nothing is declared,
    # so the ratio is checked on the bytes as they are written (ExtractLimits.stream_ratio_floor_bytes).
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name + ".out"
    rel = _member_path(stage.archive, name) or "data"
    stage.budget.member(rel)
    with gzip.open(path, "rb") as src:
        yield rel, stage.file(rel, rel, src, None)


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
    names the archive in messages (its dataset-relative path). No member may land on or replace
    ``archive``, ``staging`` or the top folder of ``target`` that holds ``staging`` (the cache's
    ``.medcat``, when the archive sits at the dataset root).

    Raises:
        UnsafeArchiveError: a member is unsafe or a cap is exceeded; the staging folder is removed
            and nothing is left in ``target``.
        FetchError: the file system refused to move the extracted members into ``target``.
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
        members = list(extractor(archive, _Stage(staging, budget)))
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, gzip.BadGzipFile, NotImplementedError, UnicodeDecodeError, OSError) as err:
        shutil.rmtree(staging, ignore_errors=True)
        raise UnsafeArchiveError(f"{name}: damaged {kind} archive ({type(err).__name__}: {err}).") from err
    except UnsafeArchiveError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        _move(_plan_moves(staging, target, name, (archive, staging, *_holders(staging, target))))
    except OSError as err:
        raise FetchError(
            f"{name}: could not move the extracted members into {target} ({err}). Free space or fix permissions, then fetch again."
        ) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: extracted %d members", name, len(members))
    return members


def _holders(staging: Path, target: Path) -> tuple[Path, ...]:
    """The top folder of ``target`` that holds ``staging``, if any: medcat's own (e.g. ``.medcat``)."""
    try:
        parts = Path(os.path.realpath(staging)).relative_to(os.path.realpath(target)).parts
    except ValueError:
        return ()
    return (target / parts[0],) if parts else ()


_Move = tuple[Path, Path, bool]  # source in staging, destination in target, is a folder


def _plan_moves(staging: Path, target: Path, archive: str, protected: tuple[Path, ...]) -> list[_Move]:
    """Check every destination in ``target`` before anything moves; return the moves, parents first.

    A destination folder that exists must be a real folder (nothing is written through a link
    in the target, e.g. one left by an earlier extraction or made by the user); a link must still
    resolve inside ``target`` from its final place; nothing may land on, inside, or (replacing a
    folder) above a protected path.

    Raises:
        UnsafeArchiveError: naming the member and the destination.
    """
    target.mkdir(parents=True, exist_ok=True)
    root = Path(os.path.realpath(target))
    guarded = [Path(os.path.realpath(p)) for p in protected]
    moves: list[_Move] = []
    for folder, dirnames, filenames in os.walk(staging):
        here = Path(folder)
        dest_dir = root / here.relative_to(staging)
        if here != staging:
            member = here.relative_to(staging).as_posix()
            if os.path.islink(dest_dir) or (dest_dir.exists() and Path(os.path.realpath(dest_dir)) != dest_dir):
                raise _refuse(archive, member, f"would be written through the link {dest_dir}; remove that link and fetch again")
            if any(dest_dir == g or dest_dir.is_relative_to(g) for g in guarded):
                raise _refuse(archive, member, f"would write into {dest_dir}, which medcat keeps for itself")
            moves.append((here, dest_dir, True))
        for entry in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            src, dst = here / entry, dest_dir / entry
            member = src.relative_to(staging).as_posix()
            if any(dst == g or dst.is_relative_to(g) or g.is_relative_to(dst) for g in guarded):
                raise _refuse(archive, member, f"would overwrite {dst}, which medcat keeps for itself")
            if src.is_symlink() and not _resolve(dest_dir / os.readlink(src)).is_relative_to(root):
                raise _refuse(archive, member, f"is a link that would point outside {root} from there")
            moves.append((src, dst, False))
    return moves


def _move(moves: list[_Move]) -> None:
    """Make the planned folders and move files and links in, replacing what is there."""
    for src, dst, is_folder in moves:
        if is_folder:
            if os.path.lexists(dst) and not dst.is_dir():
                dst.unlink()
            dst.mkdir(exist_ok=True)
            continue
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        os.replace(src, dst)
