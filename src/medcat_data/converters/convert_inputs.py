"""Find the files behind ``medcat convert PATH...``, sort them, and decide each one's kind, label and split.

Files are found in a stable order (sorted relative paths), so the same folder always gives the
same units in the same order. Each file is recorded relative to the *root*: the common folder of
every argument (a folder argument is its own root; a file argument's root is its folder). This
module reads at most a file's first bytes (to recognise DICOM without an extension); it never
decodes an image.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from medcat_data.converters.codecs.dicom import is_dicom
from medcat_data.converters.codecs.raster import RASTER_EXTENSIONS
from medcat_data.converters.codecs.volume import find_dicom_series, find_mask, is_mask_path, is_volume_path
from medcat_data.errors import UsageError

log = logging.getLogger(__name__)

Kind = Literal["raster", "dicom", "volume", "series", "other"]

# Always-ignored names: desktop litter and our own output files, never inputs.
_IGNORED_NAMES = frozenset({"Thumbs.db", "desktop.ini", "README.md", "medcat-manifest.json", "errors.jsonl"})
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
_SPLIT_NAME = re.compile(r"^\w+$")

__all__ = ["FileUnit", "Inventory", "LabelTable", "discover", "read_label_table"]


@dataclass(frozen=True)
class FileUnit:
    """One work unit of ``medcat convert``: a file (or a DICOM series), named by path.

    ``name`` is the path relative to the root (posix), also the ``sample_id`` stem and the path
    reported in ``errors.jsonl``. ``path`` is the local path; ``files`` lists a series' slices in
    order (``file_names`` their relative names); ``mask`` is a volume's mask file. Picklable, holds no handle.
    """

    name: str
    path: str
    kind: Kind
    label: str | None = None
    split: str = "train"
    files: tuple[str, ...] = ()
    file_names: tuple[str, ...] = ()
    mask: str | None = None
    mask_name: str | None = None


@dataclass(frozen=True)
class Inventory:
    """Every file found: the units to convert and the inputs (units' files, masks, label CSV)."""

    root: Path
    units: tuple[FileUnit, ...]
    inputs: tuple[tuple[str, Path], ...]
    label_names: tuple[str, ...] = ()
    kinds: frozenset[str] = field(default_factory=frozenset)
    has_masks: bool = False


@dataclass(frozen=True)
class LabelTable:
    """Labels (and optionally splits) read from a CSV, keyed by the id column's values."""

    path: Path
    labels: Mapping[str, str]
    splits: Mapping[str, str]

    def lookup(self, name: str) -> tuple[str | None, str | None]:
        """Return ``(label, split)`` for a relative path: matched as given, by file name, then by stem."""
        base = name.rsplit("/", 1)[-1]
        for key in (name, base, _strip_suffixes(base)):
            if key in self.labels or key in self.splits:
                return self.labels.get(key), self.splits.get(key)
        return None, None


def read_label_table(path: Path, id_column: str, label_column: str | None, split_column: str | None) -> LabelTable:
    """Read ``--labels CSV``: the id column matches a file's relative path, name or stem.

    Raises:
        UsageError: unreadable file, a missing column (the message lists the columns found), or
            an invalid split name.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            for column in (id_column, label_column, split_column):
                if column is not None and column not in columns:
                    raise UsageError(f"{path}: no column {column!r}; columns are {columns}. Check --id-column/--label-column/--split-column.")
            labels: dict[str, str] = {}
            splits: dict[str, str] = {}
            for row in reader:
                key = (row.get(id_column) or "").strip()
                if not key:
                    continue
                if label_column and (row.get(label_column) or "").strip():
                    labels[key] = row[label_column].strip()
                if split_column and (row.get(split_column) or "").strip():
                    splits[key] = check_split_name(row[split_column].strip(), f"{path}, row {reader.line_num}")
    except OSError as err:
        raise UsageError(f"cannot read the labels file {path}: {err.strerror or err}.") from err
    return LabelTable(path, labels, splits)


def check_split_name(name: str, where: str = "--split") -> str:
    """Return ``name`` when it is a valid split name (letters, digits, underscore).

    Raises:
        UsageError: anything else (Hugging Face split names are word characters only).
    """
    if not _SPLIT_NAME.match(name):
        raise UsageError(f"{where}: invalid split name {name!r}; use letters, digits and '_' (e.g. train, validation, test).")
    return name


def discover(
    paths: Sequence[Path],
    *,
    split: str = "train",
    labels: LabelTable | None = None,
    group_series: bool = False,
    exclude: Sequence[Path] = (),
) -> Inventory:
    """Find every file under ``paths`` and turn it into units in sorted order.

    Labels come from ``labels`` when given, else from the parent folder name (the imagefolder
    convention) when every image file sits in a sub-folder directly below the root and there are
    at least two such folders (other files, which only become errors, do not count). Volume masks (in ``labels*``/``masks``/``segmentations`` folders)
    are paired with their image and are not units themselves. With ``group_series``, DICOM files
    of one series with several files become one ``series`` unit.

    Raises:
        UsageError: a path does not exist, or nothing was found.
    """
    files = _walk(paths, exclude)
    if not files:
        raise UsageError(f"no files found in {', '.join(str(p) for p in paths)}.")
    root = _root(paths)
    named = sorted(((Path(os.path.relpath(f, root)).as_posix(), f) for f in files), key=lambda item: item[0])
    kinds = {name: _kind(path) for name, path in named}
    masks = {name for name, path in named if kinds[name] == "volume" and is_mask_path(path)}
    series = _series(named, kinds) if group_series else {}
    in_series = {name for members in series.values() for name in members}
    images = [n for n, kind in kinds.items() if n not in masks and kind != "other"]
    folder_labels = labels is None and _folder_labels_apply(images)
    by_name = dict(named)
    units: list[FileUnit] = []
    for name, path in named:
        if name in masks or name in in_series:
            continue
        units.append(_unit(name, path, kinds[name], split, labels, folder_labels, root, paths))
    for series_name, members in series.items():
        first = members[0]
        units.append(
            FileUnit(name=series_name, path=str(by_name[first]), kind="series", split=split,
                     label=_label(series_name, labels, False)[0] or None,
                     files=tuple(str(by_name[m]) for m in members), file_names=tuple(members))
        )  # fmt: skip
    units.sort(key=lambda u: u.name)
    inputs = list(named)
    if labels is not None:
        inputs.append((f"<labels>/{labels.path.name}", labels.path))
    label_names = tuple(sorted({u.label for u in units if u.label is not None}))
    return Inventory(
        root=root,
        units=tuple(units),
        inputs=tuple(inputs),
        label_names=label_names,
        kinds=frozenset(u.kind for u in units),
        has_masks=any(u.mask for u in units),
    )


def _unit(
    name: str, path: Path, kind: Kind, split: str, labels: LabelTable | None, folder_labels: bool, root: Path, roots: Sequence[Path]
) -> FileUnit:
    label, row_split = _label(name, labels, folder_labels and kind != "other")
    mask = mask_name = None
    if kind == "volume":
        found = find_mask(path, *[r for r in roots if r.is_dir()])
        if found is not None:
            mask, mask_name = str(found), Path(os.path.relpath(found, root)).as_posix()
    return FileUnit(name=name, path=str(path), kind=kind, label=label, split=row_split or split, mask=mask, mask_name=mask_name)


def _label(name: str, labels: LabelTable | None, folder_labels: bool) -> tuple[str | None, str | None]:
    if labels is not None:
        return labels.lookup(name)
    if folder_labels and "/" in name:
        return name.split("/")[0], None
    return None, None


def _folder_labels_apply(names: Iterable[str]) -> bool:
    parts = [n.split("/") for n in names]
    return bool(parts) and all(len(p) == 2 for p in parts) and len({p[0] for p in parts}) >= 2


def _walk(paths: Sequence[Path], exclude: Sequence[Path]) -> list[Path]:
    skip = {p.resolve() for p in exclude}
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path} does not exist.")
        if path.is_file():
            found.append(path)
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            here = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in skip)
            found.extend(here / f for f in sorted(filenames) if not f.startswith(".") and f not in _IGNORED_NAMES)
    # Overlapping arguments (``a`` and ``a/b.png``) name a file once; two symlinks to one file
    # are two inputs, as they are two entries of the user's folder.
    unique: dict[str, Path] = {}
    for f in found:
        if f.resolve() not in skip:
            unique.setdefault(os.path.abspath(f), f)
    return list(unique.values())


def _root(paths: Sequence[Path]) -> Path:
    folders = [p.resolve() if p.is_dir() else p.resolve().parent for p in paths]
    return Path(os.path.commonpath([str(f) for f in folders]))


def _kind(path: Path) -> Kind:
    """Decide a file's codec by extension, then by content (DICOM files often have no extension)."""
    lower = path.name.lower()
    if is_volume_path(path):
        return "volume"
    if lower.endswith(RASTER_EXTENSIONS):
        return "raster"
    if lower.endswith(_DICOM_SUFFIXES) or is_dicom(path):
        return "dicom"
    return "other"


def _series(named: Sequence[tuple[str, Path]], kinds: Mapping[str, Kind]) -> dict[str, list[str]]:
    """Group DICOM files into series of two or more files, named ``<folder>/series-<uid hash>``."""
    dicoms = {path: name for name, path in named if kinds[name] == "dicom"}
    groups: dict[str, list[str]] = {}
    for uid, members in find_dicom_series(list(dicoms)).items():
        if len(members) < 2:
            continue
        names = [dicoms[m] for m in members]
        folder = os.path.commonpath([n.rsplit("/", 1)[0] if "/" in n else "." for n in names])
        # A hash, not the UID itself: UIDs can carry dates and site prefixes.
        tag = hashlib.sha256(uid.encode()).hexdigest()[:12]
        groups[f"{folder}/series-{tag}" if folder not in ("", ".") else f"series-{tag}"] = names
    return groups


def _strip_suffixes(name: str) -> str:
    lower = name.lower()
    for suffix in (".nii.gz", ".tar.gz"):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name.rsplit(".", 1)[0] if "." in name else name
