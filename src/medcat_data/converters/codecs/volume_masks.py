"""Pair volume images with their label masks: by folder convention or by a pairing CSV.

Looks at file names only; never opens a volume (``volume.py`` checks that a mask fits its image).
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from medcat_data.converters.codecs.volume_reader import VOLUME_SUFFIXES
from medcat_data.errors import UsageError

# Folder names that hold masks in the layouts we meet: nnU-Net / Medical Segmentation Decathlon
# and AMOS (imagesTr -> labelsTr, imagesVa -> labelsVa, images -> labels), and the generic
# "masks" / "segmentations". Compared case-insensitively.
MASK_FOLDERS: tuple[str, ...] = ("labelsTr", "labels", "masks", "segmentations")
# Name endings that mark a mask of the same stem: "case1.nii.gz" -> "case1_seg.nii.gz".
MASK_NAME_SUFFIXES: tuple[str, ...] = ("", "_seg", "_mask", "_label", "_labels")
# nnU-Net names image channels "case_0000.nii.gz" while the label is "case.nii.gz".
_CHANNEL_SUFFIX = re.compile(r"_\d{4}$")


def volume_stem(path: Path) -> str:
    """Return the file name without its volume suffix: ``ct.nii.gz`` -> ``ct``."""
    name = path.name
    lower = name.lower()
    for suffix in VOLUME_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def is_mask_path(path: Path) -> bool:
    """Return whether ``path`` sits in a mask folder (``labels*``, ``masks``, ``segmentations``).

    Lets a caller that walks a dataset folder skip masks when it collects images.
    """
    wanted = {f.lower() for f in MASK_FOLDERS}
    return any(part.lower() in wanted or part.lower().startswith("labels") for part in path.parent.parts)


def find_mask(
    image_path: Path,
    *roots: Path | Iterable[Path],
    pairs: Path | Mapping[Path, Path] | None = None,
) -> Path | None:
    """Return the mask file that belongs to ``image_path``, or ``None``.

    With ``pairs`` (a pairing CSV, see ``read_mask_pairs``, or a mapping image -> mask) only the
    pairs are used. Otherwise a mask has the image's stem (an nnU-Net channel suffix ``_0000``
    may be dropped), optionally followed by ``_seg``, ``_mask``, ``_label`` or ``_labels``, with any
    volume suffix, and is searched, first match wins, in:

    1. ``labelsXx`` next to an ``imagesXx`` folder (``imagesTr/a.nii.gz`` -> ``labelsTr/a.nii.gz``);
    2. each of ``MASK_FOLDERS`` next to the image's folder, then inside it;
    3. each folder of ``roots``, and each of ``MASK_FOLDERS`` inside it.

    The image itself is never returned as its own mask.
    """
    if pairs is not None:
        table = read_mask_pairs(pairs) if isinstance(pairs, (str, Path)) else pairs
        return _lookup(table, image_path)
    stem = volume_stem(image_path)
    stems = [stem]
    if _CHANNEL_SUFFIX.search(stem):
        stems.append(_CHANNEL_SUFFIX.sub("", stem))
    for folder in _candidate_folders(image_path, _flatten(roots)):
        for candidate_stem in stems:
            for ending in MASK_NAME_SUFFIXES:
                for suffix in VOLUME_SUFFIXES:
                    candidate = folder / f"{candidate_stem}{ending}{suffix}"
                    if candidate.is_file() and not _same_file(candidate, image_path):
                        return candidate
    return None


def _flatten(roots: tuple[Path | Iterable[Path], ...]) -> Iterator[Path]:
    for root in roots:
        if isinstance(root, (str, Path)):
            yield Path(root)
        else:
            yield from (Path(r) for r in root)


def _candidate_folders(image_path: Path, roots: Iterable[Path]) -> list[Path]:
    parent = image_path.parent
    grand = parent.parent
    folders = []
    if parent.name.lower().startswith("images"):
        folders.append(grand / ("labels" + parent.name[len("images") :]))
    folders += [grand / name for name in MASK_FOLDERS]
    folders += [parent / name for name in MASK_FOLDERS]
    folders.append(parent)
    for root in roots:
        folders.append(root)
        folders += [root / name for name in MASK_FOLDERS]
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique and folder.is_dir():
            unique.append(folder)
    return unique


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return a.resolve() == b.resolve()


def _lookup(table: Mapping[Path, Path], image_path: Path) -> Path | None:
    found = table.get(image_path)
    if found is None:
        found = table.get(image_path.resolve())
    return Path(found) if found is not None else None


def read_mask_pairs(csv_path: Path) -> dict[Path, Path]:
    """Read a pairing CSV with ``image`` and ``mask`` columns into ``{image: mask}``.

    Relative paths are taken relative to the CSV's folder; keys and values are resolved absolute
    paths. Rows with an empty ``mask`` are left out (images without a mask). The result is cached
    per file, size and modification time.

    Raises:
        UsageError: the file is missing or lacks an ``image`` or ``mask`` column.
    """
    csv_path = Path(csv_path)
    try:
        stat = csv_path.stat()
    except OSError as err:
        raise UsageError(f"mask pairing CSV {csv_path} cannot be read ({err.strerror}).") from err
    return dict(_read_pairs_cached(csv_path.resolve(), stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=8)
def _read_pairs_cached(csv_path: Path, size_bytes: int, mtime_ns: int) -> dict[Path, Path]:
    base = csv_path.parent
    pairs: dict[Path, Path] = {}
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or ()}
        if "image" not in columns or "mask" not in columns:
            raise UsageError(
                f"mask pairing CSV {csv_path} needs 'image' and 'mask' columns, "
                f"found {sorted(columns) or 'none'}. Add a header line 'image,mask'."
            )
        for row in reader:
            image, mask = (row.get(columns["image"]) or "").strip(), (row.get(columns["mask"]) or "").strip()
            if image and mask:
                pairs[(base / image).resolve()] = (base / mask).resolve()
    return pairs
