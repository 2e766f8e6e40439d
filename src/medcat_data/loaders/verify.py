"""Check bytes against what upstream promised: hashes, sizes, magic bytes; and check a dataset folder.

``check_file`` decides on one transferred file; ``verify_dest`` answers ``medcat verify`` from the
manifest alone (never the network). Never decodes content beyond comparing leading bytes.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from medcat_data.loaders.cache import META_DIR, DestLayout, new_hasher
from medcat_data.loaders.fetch_manifest import FileRecord, Manifest

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


def hash_file(path: Path, algorithm: str, size: int | None = None) -> str:
    """Hash a file in 1 MiB chunks (memory does not grow with the file)."""
    hasher = new_hasher(algorithm, size if size is not None else path.stat().st_size)
    buf = bytearray(_CHUNK_BYTES)
    view = memoryview(buf)
    with path.open("rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            hasher.update(view[:n])
    return str(hasher.hexdigest())


def looks_like_html(head: bytes) -> bool:
    """Tell whether leading bytes look like an HTML page (an error or quota page, not data)."""
    text = head.lstrip()[:64].lower()
    return text.startswith((b"<!doctype html", b"<html", b"<head", b"<!--"))


#: File names that say binary: an HTML answer for one of them is never the file. Formats whose
#: first bytes are never plain text (so EDF, MAT, NRRD, MHA and PDF, with text headers, are not
#: here): images and volumes, archives, columnar tables and arrays, genomics.
_BINARY_SUFFIXES = frozenset(
    ".dcm .dicom .png .jpg .jpeg .tif .tiff .bmp .gif .webp .jp2 .nii .svs .ndpi .zip .gz .tgz .bz2 .xz "
    ".zst .7z .tar .parquet .arrow .feather .npy .npz .h5 .hdf5 .pt .pkl .bam .bai .cram .bcf .tbi .csi".split()
)
#: File names that may rightly hold a web page.
_MARKUP_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".xml", ".svg"})
_CONTROL_BYTES = frozenset(set(range(0x20)) - set(b"\t\n\r\f") | {0x7F})


def web_page_instead_of(path: str, content_type: str | None, head: bytes) -> str | None:
    """Describe an answer that is plainly a web page rather than the file at ``path``; else ``None``.

    For a binary name, either sign is enough: the first bytes are an HTML document, or the
    ``Content-Type`` is HTML and the first bytes are text (a binary file that a server merely
    labels ``text/html`` has control bytes early). For other names (``.csv``, ``.txt``, none) both
    signs must agree. Returns the content type and the first bytes, sanitized, for the message.
    """
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in _MARKUP_SUFFIXES:
        return None
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    html_type = ctype in ("text/html", "application/xhtml+xml")
    html_body = looks_like_html(head)
    if suffix in _BINARY_SUFFIXES:
        textual = bool(head) and not _CONTROL_BYTES.intersection(head)
        refused = html_body or (html_type and textual)
    else:
        refused = html_type and html_body
    if not refused:
        return None
    shown = "".join(c if c.isprintable() else "?" for c in " ".join(head[:48].decode("utf-8", "replace").split()))
    return f"{ctype or 'no Content-Type'} beginning {shown!r}"


@dataclass(frozen=True)
class Mismatch:
    """Why a transferred file is not what was expected."""

    what: Literal["size", "hash", "magic", "empty"]
    expected: str
    actual: str

    def __str__(self) -> str:
        if self.what == "hash":
            return f"hash mismatch (expected {self.expected[:12]}..., got {self.actual[:12]}...)"
        return f"{self.what} mismatch (expected {self.expected}, got {self.actual})"


def check_file(
    *,
    size: int,
    digest: str | None,
    expected_size: int | None,
    expected_hash: str | None,
    magic: bytes | None = None,
    head: bytes | None = None,
) -> Mismatch | None:
    """Compare a transferred file with expectations; ``None`` means it passes.

    Order: size first (cheap, and the clearest message for truncation), then the hash, then the
    magic bytes for files verified by content.
    """
    if expected_size is not None and size != expected_size:
        return Mismatch("size", str(expected_size), str(size))
    if expected_hash is not None and digest is not None and digest != expected_hash.lower():
        return Mismatch("hash", expected_hash.lower(), digest)
    if magic is not None:
        if size == 0:
            return Mismatch("empty", ">0 bytes", "0 bytes")
        if head is None or not head.startswith(magic):
            return Mismatch("magic", magic.hex(), (head or b"")[: len(magic)].hex())
    return None


# ---------------------------------------------------------------------------------------------
# medcat verify


@dataclass
class VerifyReport:
    """The verdict on a dataset folder; ``ok`` only when nothing is missing, short or corrupt."""

    dataset_id: str
    version: str
    dest: Path
    full: bool
    checked: int = 0
    verified: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)
    tofu: int = 0
    manifest_found: bool = True

    @property
    def ok(self) -> bool:
        """Tell whether every recorded file is present with the right size (and hash with --full)."""
        return self.manifest_found and not (self.missing or self.truncated or self.corrupt or self.unverified)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "dataset": self.dataset_id,
            "version": self.version,
            "dest": str(self.dest),
            "full": self.full,
            "ok": self.ok,
            "manifest_found": self.manifest_found,
            "checked": self.checked,
            "verified": len(self.verified),
            "trust_on_first_use": self.tofu,
            "missing": self.missing,
            "truncated": self.truncated,
            "corrupt": self.corrupt,
            "unverified": self.unverified,
            "extra": self.extra,
        }


def _walk_files(root: Path) -> Iterator[str]:
    """Yield every file path under ``root`` relative to it, skipping ``.medcat``."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if folder == root and entry.name == META_DIR:
                    continue
                stack.append(Path(entry.path))
            else:
                yield Path(entry.path).relative_to(root).as_posix()


CORRUPT_REASON = "medcat verify --full found its hash differs from the one recorded when it was verified"


def verify_dest(dataset_id: str, version: str, dest: Path, *, full: bool, prefix: str | None = None) -> VerifyReport:
    """Check a dataset folder against its manifest: presence and size, and with ``full`` the hash.

    Files recorded as missing or failed by the last fetch are reported missing; files on disk
    that no manifest entry explains are reported as extra (not an error). ``prefix`` limits the
    check to one sub-folder.
    """

    def wanted(path: str) -> bool:
        return prefix is None or path == prefix or path.startswith(prefix + "/")

    report = VerifyReport(dataset_id, version, dest, full)
    layout = DestLayout(dest)
    manifest = Manifest.open(layout.meta, dataset_id, version, create=False)
    if manifest is None:
        report.manifest_found = False
        return report
    known: set[str] = set()
    damaged: list[tuple[str, FileRecord]] = []
    for path, record in manifest.files():
        known.add(path)
        if not wanted(path):
            continue
        report.checked += 1
        if record.status != "ok":
            (report.corrupt if record.reason == CORRUPT_REASON else report.missing).append(path)
            continue
        final = layout.final(path)
        try:
            st = final.stat()
        except FileNotFoundError:
            report.missing.append(path)
            continue
        if st.st_size != record.size:
            report.truncated.append(path)
            continue
        if record.verified_by == "unverified":
            report.unverified.append(path)
            continue
        if full and record.hash:
            if hash_file(final, record.algorithm, record.size) != record.hash:
                report.corrupt.append(path)
                damaged.append((path, record))
                continue
        if record.verified_by in ("tofu", "magic"):
            report.tofu += 1
        report.verified.append(path)
    for extraction in manifest.extractions():
        for member, size in extraction.members:
            known.add(member)
            if not wanted(member):
                continue
            report.checked += 1
            try:
                st = layout.final(member).lstat()
            except FileNotFoundError:
                report.missing.append(member)
                continue
            if size >= 0 and st.st_size != size:
                report.truncated.append(member)
            else:
                report.verified.append(member)
    report.extra = sorted(p for p in _walk_files(dest) if p not in known and wanted(p))
    # What --full found corrupt is no longer "verified": the next fetch transfers it again
    # (a same-size file is otherwise trusted by its size and mtime).
    for path, record in damaged:
        manifest.record(path, replace(record, status="failed", reason=CORRUPT_REASON))
    if damaged:
        manifest.compact()
    manifest.close()
    return report
