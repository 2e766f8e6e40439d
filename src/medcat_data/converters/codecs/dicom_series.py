"""Group DICOM files into series and order each series' slices along the patient axis.

Reads headers only (never pixel data) with pydicom. The volume codec reads the ordered files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_HEADER_TAGS = [
    "SeriesInstanceUID",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "InstanceNumber",
    "Rows",
]
_POSITION_DECIMALS = 4  # positions equal to 0.1 micrometre are the same slice: InstanceNumber decides
_NO_INSTANCE = 2**63  # files without InstanceNumber sort after numbered ones


@dataclass(frozen=True)
class _SliceHeader:
    path: Path
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    instance: int | None


def find_dicom_series(paths: Iterable[Path]) -> dict[str, list[Path]]:
    """Group DICOM image files by SeriesInstanceUID, each list sorted along the slice normal.

    ``paths`` may mix files and folders (searched recursively). Within a series, files are sorted
    by their position along the slice normal (ImagePositionPatient dotted with the cross product
    of the two ImageOrientationPatient directions, taken from the series' first file), so the
    order is right whatever the file names, the order on disk or the InstanceNumbers; equal
    positions are ordered by InstanceNumber, then by path. A series in which some file lacks
    position or orientation is sorted by InstanceNumber, then path. Files that are not DICOM, or
    hold no image (no Rows) or no SeriesInstanceUID, are left out (logged at debug level).

    Returns:
        ``{series_uid: [path, ...]}``, series in UID order.
    """
    groups: dict[str, list[_SliceHeader]] = {}
    for path in _expand(paths):
        found = _read_header(path)
        if found is not None:
            uid, header = found
            groups.setdefault(uid, []).append(header)
    return {uid: _sorted_paths(groups[uid]) for uid in sorted(groups)}


def _expand(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        path = Path(path)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


def _read_header(path: Path) -> tuple[str, _SliceHeader] | None:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError) as err:
        log.debug("not a DICOM file, left out of series grouping: %s (%s)", path, err)
        return None
    uid = str(ds.get("SeriesInstanceUID", "") or "")
    if not uid or "Rows" not in ds:
        log.debug("DICOM without SeriesInstanceUID or image, left out of series grouping: %s", path)
        return None
    return uid, _SliceHeader(
        path=path,
        position=_floats(ds.get("ImagePositionPatient"), 3),  # type: ignore[arg-type]
        orientation=_floats(ds.get("ImageOrientationPatient"), 6),
        instance=_int(ds.get("InstanceNumber")),
    )


def _floats(value: object, count: int) -> tuple[float, ...] | None:
    try:
        numbers = tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and all(np.isfinite(numbers)) else None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _sorted_paths(headers: list[_SliceHeader]) -> list[Path]:
    normal = _slice_normal(headers)

    def instance(h: _SliceHeader) -> int:
        return h.instance if h.instance is not None else _NO_INSTANCE

    if normal is not None and all(h.position is not None for h in headers):

        def along(h: _SliceHeader) -> float:
            return round(float(np.dot(h.position or (0.0, 0.0, 0.0), normal)), _POSITION_DECIMALS)

        ordered = sorted(headers, key=lambda h: (along(h), instance(h), str(h.path)))
    else:
        ordered = sorted(headers, key=lambda h: (instance(h), str(h.path)))
    return [h.path for h in ordered]


def _slice_normal(headers: list[_SliceHeader]) -> np.ndarray | None:
    for header in headers:
        if header.orientation is not None:
            row, col = np.asarray(header.orientation[:3]), np.asarray(header.orientation[3:])
            normal = np.cross(row, col)
            return normal if np.linalg.norm(normal) > 0 else None
    return None
