"""Write each exported image once, named by its content, under ``conversations/images/``.

A name is ``images/<first two hex digits>/<sha256 of the bytes>.<ext>``: equal images shared by
many rows (or by several formats) are written once, the name never depends on row order, and a
re-run produces the same names. Two hex digits of fan-out keep folders small at PMC scale (10^6
images -> about 4k files a folder). The extension comes from the image's magic bytes (the bytes are
the normalized ones, after ``--max-size``), else from the stored file name.

The store writes into a staging folder that the exporter publishes atomically (so no temp name per
file); an image already present in the previously published folder is hard-linked instead of
rewritten. This module writes files only; it never decodes pixels.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["IMAGES_DIR", "ImageStore", "MissingImage", "StagedImage", "image_suffix"]

IMAGES_DIR = "images"

# Magic numbers of the raster formats the writer stores (PNG after decoding, JPEG passed through, ...).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"\xffO\xffQ", ".j2k"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", ".jp2"),
)


class MissingImage(Exception):
    """A row's image holds no bytes (internal signal: the exporter skips and counts the row)."""


@dataclass(frozen=True)
class StagedImage:
    """An image whose name is known but which is not written yet."""

    name: str
    data: bytes


def image_suffix(data: bytes, stored_path: str | None) -> str:
    """Return the file extension for image ``data``: by magic bytes, else the stored name's, else ``.img``."""
    for magic, suffix in _MAGIC:
        if data.startswith(magic):
            return suffix
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    suffix = PurePosixPath(stored_path or "").suffix.lower()
    return suffix if 1 < len(suffix) <= 6 and suffix[1:].isalnum() else ".img"


def stage(image: Mapping[str, Any] | None) -> StagedImage:
    """Name one image value of a parquet row (``{"bytes", "path"}``) by its content.

    Raises:
        MissingImage: the value is null or holds no bytes.
    """
    data = image.get("bytes") if image else None
    if not data:
        raise MissingImage()
    digest = hashlib.sha256(data).hexdigest()
    suffix = image_suffix(data, image.get("path") if image else None)
    return StagedImage(f"{IMAGES_DIR}/{digest[:2]}/{digest}{suffix}", data)


class ImageStore:
    """Content-addressed image files in ``root`` (a staging folder), reusing ``previous`` when possible."""

    def __init__(self, root: Path, previous: Path | None = None) -> None:
        self.root = Path(root)
        self.previous = Path(previous) if previous is not None else None
        self.written = 0
        self.linked = 0
        self._folders: set[str] = set()

    @property
    def count(self) -> int:
        """Return how many distinct images the store holds."""
        return self.written + self.linked

    def write(self, image: StagedImage) -> None:
        """Write ``image`` unless a file of that name exists (same name, same bytes)."""
        target = self.root / image.name
        if target.exists():
            return
        folder = image.name.rsplit("/", 1)[0]
        if folder not in self._folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)  # at most 256 fan-out folders
        if self.previous is not None and _link(self.previous / image.name, target, len(image.data)):
            self.linked += 1
            return
        # No temp name per file: the whole staging folder is published atomically.
        with open(target, "wb") as fh:
            fh.write(image.data)
        self.written += 1


def _link(source: Path, target: Path, size_bytes: int) -> bool:
    """Hard-link a previously published image of the same name and size; False when not possible."""
    try:
        if source.stat().st_size != size_bytes:
            return False
        os.link(source, target)
    except OSError:
        return False
    return True
