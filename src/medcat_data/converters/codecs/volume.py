"""Turn 3D medical volumes (and their label masks) into 2D slice images or whole-volume rows.

Format knowledge only: reading is ``volume_reader`` (NIfTI through nibabel; NRRD, MetaImage and
DICOM series through SimpleITK), pairing masks by name is ``volume_masks``, CT windows are
``ct_windows``; this module is the public face of all of them. Never touches the network and
never decides labels, splits or dataset layout.

Conventions, fixed for every output:

* **Canonical orientation** (``volume_reader``): volumes are reoriented to RAS+ without
  resampling; array index ``i`` increases towards the patient's Right, ``j`` Anterior, ``k``
  Superior. Oblique volumes go to the closest canonical orientation, also without resampling.
* **Slice display** (radiological convention, as on a reading-room screen):

  ============ =================== ====================== ===============================
  plane        image top           image left             image right
  ============ =================== ====================== ===============================
  axial        anterior            patient right          patient left (seen from feet)
  coronal      superior            patient right          patient left (seen from front)
  sagittal     superior            anterior               posterior (seen from the left)
  ============ =================== ====================== ===============================

* **Slice index** is 0-based along the canonical axis: axial 0 is the most inferior slice,
  coronal 0 the most posterior, sagittal 0 the patient's leftmost.
* **Intensity.** A CT window (``ct_windows.CT_WINDOWS`` by name, or ``(center, width)`` in HU)
  maps ``center - width/2`` to black and ``center + width/2`` to white. Without one, the minimum
  and maximum over the *whole volume* map to black and white, so a voxel value gives the same
  pixel value in every slice of that volume (slices are comparable; per-slice stretching would
  not be).
* **Masks** share the image's voxel grid exactly (compared after canonical reorientation); they
  are never windowed or interpolated, resized with nearest neighbour only, and label values are
  kept exactly: 8-bit PNG when every label is at most 255, else 16-bit.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from medcat_data.converters.codecs.ct_windows import (
    CT_WINDOWS,
    intensity_bounds,
    resolve_window,
    scale_to_bits,
)
from medcat_data.converters.codecs.dicom_series import find_dicom_series
from medcat_data.converters.codecs.image import EncodedImage, encode_array
from medcat_data.converters.codecs.volume_masks import find_mask, is_mask_path, read_mask_pairs
from medcat_data.converters.codecs.volume_reader import VOLUME_SUFFIXES, Volume, is_volume_path, load_volume
from medcat_data.errors import SampleError, UsageError

log = logging.getLogger(__name__)

__all__ = [
    "CT_WINDOWS",
    "VOLUME_SUFFIXES",
    "Volume",
    "VolumeOptions",
    "VolumeSlice",
    "WholeVolume",
    "find_dicom_series",
    "find_mask",
    "is_mask_path",
    "is_volume_path",
    "iter_volume_slices",
    "load_volume",
    "load_volume_whole",
    "read_mask_pairs",
]

Plane = Literal["axial", "coronal", "sagittal"]
_PLANE_AXIS: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}
_AFFINE_TOLERANCE_MM = 1e-2  # mask and image grids closer than this are the same grid
_GZIP_LEVEL = 6


@dataclass(frozen=True)
class VolumeOptions:
    """How a volume becomes output rows.

    Attributes:
        mode: ``slices`` (one 2D image per slice; ``iter_volume_slices``) or ``whole`` (one row
            per volume; ``load_volume_whole``). The caller dispatches on it.
        plane: ``axial``, ``coronal`` or ``sagittal``; see the module docstring for display.
        stride: Keep every ``stride``-th slice, starting at index 0.
        window: A ``CT_WINDOWS`` name, ``"center,width"``, a ``(center, width)`` pair in HU, or
            ``None``/``"minmax"`` for min-max over the whole volume.
        bit_depth: 8 or 16 bits per sample in the slice PNGs (masks choose their own, see above).
        max_size: Longest side of a slice image in pixels; ``None`` keeps the voxel grid.

    Raises:
        UsageError: on construction, for an unknown value, a stride below 1, an unknown window
            name or a non-positive ``max_size``.
    """

    mode: Literal["slices", "whole"] = "slices"
    plane: Plane = "axial"
    stride: int = 1
    window: str | tuple[float, float] | None = None
    bit_depth: Literal[8, 16] = 8
    max_size: int | None = None

    def __post_init__(self) -> None:
        closed_sets = (("mode", ("slices", "whole")), ("plane", get_args(Plane)), ("bit_depth", (8, 16)))
        for name, allowed in closed_sets:
            if getattr(self, name) not in allowed:
                choices = ", ".join(repr(a) for a in allowed)
                raise UsageError(f"volume {name} must be one of {choices}, got {getattr(self, name)!r}.")
        if not isinstance(self.stride, int) or self.stride < 1:
            raise UsageError(f"volume stride must be a whole number >= 1, got {self.stride!r}.")
        if self.max_size is not None and self.max_size < 1:
            raise UsageError(f"max size must be at least 1 pixel, got {self.max_size!r}.")
        resolve_window(self.window)


@dataclass(frozen=True)
class VolumeSlice:
    """One slice of a volume as an image, with its mask slice when a mask was given.

    Attributes:
        image: The slice, windowed and encoded (PNG).
        mask: The same slice of the mask, labels exact, or ``None``.
        plane: ``axial``, ``coronal`` or ``sagittal``.
        index: 0-based slice index along the canonical axis (see the module docstring).
        spacing: ``(row, column)`` pixel spacing in mm of the slice before any resize; divide
            by ``image.scale`` for output pixels.
        shape: The canonical volume shape ``(X, Y, Z)``.
    """

    image: EncodedImage
    mask: EncodedImage | None
    plane: str
    index: int
    spacing: tuple[float, float]
    shape: tuple[int, int, int]


@dataclass(frozen=True)
class WholeVolume:
    """A whole volume as one row.

    Attributes:
        nifti_gz: The canonical RAS+ volume as a gzip-compressed NIfTI-1 file (its header holds
            ``canonical_affine``); byte-identical for identical input.
        shape: Canonical shape ``(X, Y, Z)``.
        spacing: Voxel size in mm along the canonical axes.
        orientation: Axis codes of ``nifti_gz``: always ``"RAS"``.
        affine: The ORIGINAL voxel-to-RAS+ affine of the input, rows of a 4x4 matrix.
        mask_nifti_gz: The mask on the same grid (``uint8``/``uint16`` labels), or ``None``.
    """

    nifti_gz: bytes
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    orientation: str
    affine: list[list[float]]
    mask_nifti_gz: bytes | None


def _slice_view(data: np.ndarray, plane: str, index: int) -> np.ndarray:
    """Return slice ``index`` of a canonical array as a ``(rows, columns)`` display image."""
    if plane == "axial":  # rows anterior -> posterior, columns patient right -> left
        return data[::-1, ::-1, index].T
    if plane == "coronal":  # rows superior -> inferior, columns patient right -> left
        return data[::-1, index, ::-1].T
    return data[index, ::-1, ::-1].T  # sagittal: rows superior -> inferior, columns anterior -> posterior


def _slice_spacing(spacing: tuple[float, float, float], plane: str) -> tuple[float, float]:
    x, y, z = spacing
    return {"axial": (y, x), "coronal": (z, x), "sagittal": (z, y)}[plane]


@dataclass(frozen=True, eq=False)
class _Labels:
    data: np.ndarray  # canonical, uint8 or uint16
    bit_depth: Literal[8, 16]


def _load_mask(mask: Path, image: Volume) -> _Labels:
    """Load ``mask`` and check that it lies on ``image``'s voxel grid; keep labels exact."""
    labels = load_volume(mask)
    same_grid = labels.data.shape == image.data.shape and np.allclose(
        labels.canonical_affine, image.canonical_affine, rtol=0, atol=_AFFINE_TOLERANCE_MM
    )
    if not same_grid:
        raise SampleError(
            mask,
            "mask",
            f"mask grid (shape {labels.data.shape}, {labels.source_orientation}) does not match its image "
            f"(shape {image.data.shape}, {image.source_orientation}) within {_AFFINE_TOLERANCE_MM} mm; "
            "masks are never resampled, so pair each image with a mask on the same voxel grid",
        )
    data = labels.data
    if data.dtype.kind == "f" and not np.all(np.isfinite(data) & (data == np.round(data))):
        raise SampleError(mask, "mask", "mask holds non-integer values; labels must be whole numbers")
    low, high = (int(data.min()), int(data.max())) if data.size else (0, 0)
    if low < 0 or high > 65535:
        reason = f"labels {low}..{high} do not fit 0..65535, so a PNG cannot keep them exactly"
        raise SampleError(mask, "mask", reason)
    if high <= 255:
        return _Labels(data=data.astype(np.uint8, copy=False), bit_depth=8)
    return _Labels(data=data.astype(np.uint16, copy=False), bit_depth=16)


def iter_volume_slices(
    path: Path | Sequence[Path],
    options: VolumeOptions = VolumeOptions(),
    mask: Path | None = None,
) -> Iterator[VolumeSlice]:
    """Read a volume (and its mask) and return an iterator over its slices along ``options.plane``.

    The volume and mask are read and checked before this returns, so a bad file raises here
    rather than on the first ``next()``. Slices are indices ``0, stride, 2*stride, ...``; see the
    module docstring for orientation and intensity mapping (min-max is over the whole volume).

    Raises:
        UnsupportedFormatError: ``path`` is not a volume.
        SampleError: the volume or mask is unreadable, or the mask is not on the image's grid or
            holds labels that an 8/16-bit PNG cannot keep exactly.
    """
    volume = load_volume(path)
    labels = _load_mask(mask, volume) if mask is not None else None
    bounds = intensity_bounds(volume.data, resolve_window(options.window))
    return _iter_slices(volume, labels, bounds, options)


def _iter_slices(
    volume: Volume, labels: _Labels | None, bounds: tuple[float, float], options: VolumeOptions
) -> Iterator[VolumeSlice]:
    shape = (int(volume.data.shape[0]), int(volume.data.shape[1]), int(volume.data.shape[2]))
    spacing = _slice_spacing(volume.spacing, options.plane)
    for index in range(0, shape[_PLANE_AXIS[options.plane]], options.stride):
        pixels = scale_to_bits(_slice_view(volume.data, options.plane, index), bounds, options.bit_depth)
        image = encode_array(pixels, bit_depth=options.bit_depth, max_size=options.max_size)
        mask_image = None
        if labels is not None:
            mask_image = encode_array(
                np.ascontiguousarray(_slice_view(labels.data, options.plane, index)),
                bit_depth=labels.bit_depth,
                max_size=options.max_size,
                resample="nearest",
            )
        yield VolumeSlice(
            image=image, mask=mask_image, plane=options.plane, index=index, spacing=spacing, shape=shape
        )


def load_volume_whole(path: Path | Sequence[Path], mask: Path | None = None) -> WholeVolume:
    """Read a volume (and its mask) as one row: canonical RAS+ NIfTI bytes plus its geometry.

    The NIfTI is deterministic (gzip mtime 0, no timestamps in the header), so identical input
    gives identical bytes. Its header affine is the canonical one; the original affine is in
    ``WholeVolume.affine``.

    Raises:
        UnsupportedFormatError: ``path`` is not a volume.
        SampleError: as for ``iter_volume_slices``.
    """
    volume = load_volume(path)
    labels = _load_mask(mask, volume) if mask is not None else None
    return WholeVolume(
        nifti_gz=_nifti_gz(volume.data, volume.canonical_affine),
        shape=tuple(int(n) for n in volume.data.shape),
        spacing=volume.spacing,
        orientation="RAS",
        affine=[[float(v) for v in row] for row in volume.affine],
        mask_nifti_gz=_nifti_gz(labels.data, volume.canonical_affine) if labels is not None else None,
    )


def _nifti_gz(data: np.ndarray, affine: np.ndarray) -> bytes:
    import nibabel as nib

    image = nib.Nifti1Image(data, affine, dtype=data.dtype)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm")
    return gzip.compress(image.to_bytes(), compresslevel=_GZIP_LEVEL, mtime=0)
