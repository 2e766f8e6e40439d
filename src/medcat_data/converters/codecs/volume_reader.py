"""Read volume files into canonical RAS+ arrays, keeping spacing and the original affine.

NIfTI through nibabel; NRRD/NHDR, MetaImage (MHA/MHD) and DICOM series through SimpleITK. Every
volume is reoriented (axes permuted and flipped, never resampled) so that array index ``i``
increases towards the patient's Right, ``j`` Anterior and ``k`` Superior: nibabel's RAS+, as
``nibabel.as_closest_canonical`` does it. ITK formats and DICOM store LPS+ geometry; it is
converted to RAS+ first (x and y negated). An oblique volume, whose axes are not parallel to the
world axes, goes to the *closest* canonical orientation without resampling: voxels keep their
values and ``Volume.canonical_affine`` keeps the residual rotation.

Never encodes images and never touches the network; ``volume.py`` turns volumes into rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medcat_data.converters.codecs.dicom_series import find_dicom_series
from medcat_data.errors import SampleError, UnsupportedFormatError

if TYPE_CHECKING:
    import SimpleITK as sitk

log = logging.getLogger(__name__)

# Suffixes read by this codec, longest first so ".nii.gz" wins over ".gz". ".nhdr"/".mhd" are
# headers whose pixels sit in a separate file next to them.
VOLUME_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
_NIFTI_SUFFIXES = (".nii.gz", ".nii")
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Volume:
    """A volume in canonical RAS+ orientation.

    Attributes:
        data: ``(X, Y, Z)`` array, index increasing towards Right, Anterior, Superior; modality
            values (HU for CT) with the file's scaling applied.
        spacing: Voxel size in mm along the canonical axes.
        affine: The file's original voxel-to-RAS+ affine (4x4; for ITK formats and DICOM, their
            LPS+ geometry converted to RAS+).
        canonical_affine: The voxel-to-RAS+ affine of ``data``.
        source_orientation: Axis codes of the original affine, e.g. ``"LPS"``.
        oblique: True when the original axes were not parallel to the world axes.
    """

    data: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    canonical_affine: np.ndarray
    source_orientation: str
    oblique: bool


def is_volume_path(path: Path) -> bool:
    """Return whether ``path`` has a volume suffix (case-insensitive)."""
    return volume_suffix(path) is not None


def volume_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in VOLUME_SUFFIXES if name.endswith(s)), None)


def load_volume(path: Path | Sequence[Path]) -> Volume:
    """Read a volume and reorient it to canonical RAS+ without resampling.

    Args:
        path: A NIfTI, NRRD/NHDR or MHA/MHD file; a folder holding exactly one DICOM series; or a
            sequence of DICOM files forming one series (in any order: they are sorted along the
            slice normal by ``find_dicom_series``).

    Raises:
        UnsupportedFormatError: the suffix is not one of ``VOLUME_SUFFIXES``.
        SampleError: the file is missing, truncated or unreadable, holds more than three
            dimensions or several components, or the files do not form exactly one series.
    """
    if isinstance(path, (str, Path)) and not Path(path).is_dir():
        source = Path(path)
        if not source.is_file():
            raise SampleError(source, "read", "file not found")
        suffix = volume_suffix(source)
        if suffix is None:
            raise UnsupportedFormatError(
                f"{source}: not a volume; the volume codec reads {', '.join(VOLUME_SUFFIXES)} files "
                "and DICOM series (a folder or a list of .dcm files)."
            )
        array, affine = _read_nifti(source) if suffix in _NIFTI_SUFFIXES else _read_itk(source)
    else:
        files = [Path(path)] if isinstance(path, (str, Path)) else [Path(p) for p in path]
        source, array, affine = _read_dicom_series(files)
    return _canonical(array, affine, source)


def _read_nifti(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib
    from nibabel.arrayproxy import ArrayProxy
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError, SpatialImage

    try:
        image = nib.load(path)
        if not isinstance(image, SpatialImage):
            raise SampleError(path, "read", f"{type(image).__name__} is not a NIfTI volume")
        proxy = image.dataobj
        if isinstance(proxy, ArrayProxy):
            raw = np.asarray(proxy.get_unscaled())
            array = _apply_scaling(raw, float(proxy.slope), float(proxy.inter))
        else:
            array = np.asarray(proxy)
        affine = np.asarray(image.affine, dtype=np.float64)
    except (ImageFileError, HeaderDataError, OSError, EOFError, ValueError) as err:
        raise SampleError(path, "read", f"unreadable NIfTI ({type(err).__name__}: {err})") from err
    return array, affine


def _apply_scaling(raw: np.ndarray, slope: float, inter: float) -> np.ndarray:
    """Apply NIfTI ``scl_slope``/``scl_inter``; integer scaling of integers stays integer."""
    if slope == 1.0 and inter == 0.0:
        return raw
    if raw.dtype.kind in "iu" and slope.is_integer() and inter.is_integer() and raw.size:
        ends = (int(raw.min()) * int(slope) + int(inter), int(raw.max()) * int(slope) + int(inter))
        out = raw.astype(_smallest_signed(min(ends), max(ends)))
        out *= int(slope)
        out += int(inter)
        return out
    return raw.astype(np.result_type(raw.dtype, np.float32)) * slope + inter


def _smallest_signed(low: int, high: int) -> type[np.signedinteger]:
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return dtype
    return np.int64


def _read_itk(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        reason = f"unreadable {volume_suffix(path)} file ({_itk_reason(err)})"
        raise SampleError(path, "read", reason) from err
    return _itk_array_affine(image, path)


def _read_dicom_series(files: list[Path]) -> tuple[Path, np.ndarray, np.ndarray]:
    import SimpleITK as sitk

    label = _common_folder(files)
    series = find_dicom_series(files)
    if len(series) != 1:
        found = "no DICOM image with a SeriesInstanceUID" if not series else f"{len(series)} series"
        reason = f"{found} among {len(files)} path(s); a volume is exactly one series"
        raise SampleError(label, "read", reason)
    ordered = next(iter(series.values()))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(p) for p in ordered])
    try:
        image = reader.Execute()
    except RuntimeError as err:
        raise SampleError(label, "read", f"unreadable DICOM series ({_itk_reason(err)})") from err
    return label, *_itk_array_affine(image, label)


def _common_folder(files: list[Path]) -> Path:
    if len(files) == 1:
        return files[0]
    parents = {p.parent for p in files}
    return parents.pop() if len(parents) == 1 else Path(*_common_parts([p.parts for p in files]))


def _common_parts(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    common: list[str] = []
    for items in zip(*parts):
        if len(set(items)) != 1:
            break
        common.append(items[0])
    return tuple(common) or (".",)


def _itk_reason(err: RuntimeError) -> str:
    """Keep the one informative line of an ITK exception (they are long, multi-line C++ traces)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    wanted = [line for line in lines if "ERROR" in line or "Reason" in line or "trouble" in line]
    text = (wanted or lines or ["unknown ITK error"])[-1]
    return text[:300]


def _itk_array_affine(image: sitk.Image, source: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return the ``(i, j, k)`` array and voxel-to-RAS+ affine of a SimpleITK image."""
    import SimpleITK as sitk

    components = image.GetNumberOfComponentsPerPixel()
    if components != 1:
        reason = f"{components} components per voxel; only scalar volumes are supported"
        raise SampleError(source, "read", reason)
    dimension = image.GetDimension()
    if dimension not in (2, 3):
        reason = f"{dimension}-dimensional image; only 2D and 3D volumes are supported"
        raise SampleError(source, "read", reason)
    array = sitk.GetArrayFromImage(image).T  # ITK arrays are (k, j, i)
    lps = np.eye(4)
    direction = np.asarray(image.GetDirection(), dtype=np.float64).reshape(dimension, dimension)
    lps[:dimension, :dimension] = direction * np.asarray(image.GetSpacing(), dtype=np.float64)
    lps[:dimension, 3] = image.GetOrigin()
    if array.dtype.kind in "iu" and array.dtype.itemsize > 2 and array.size:
        array = array.astype(_smallest_signed(int(array.min()), int(array.max())), copy=False)
    return array, _LPS_TO_RAS @ lps


def _canonical(array: np.ndarray, affine: np.ndarray, source: Path) -> Volume:
    import nibabel as nib

    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    while array.ndim > 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3:
        reason = f"shape {array.shape}: only 3D volumes are supported (4D series are not)"
        raise SampleError(source, "read", reason)
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        reason = "the affine is singular or not finite, so the orientation is unknown"
        raise SampleError(source, "read", reason)
    canonical = nib.as_closest_canonical(nib.Nifti1Image(array, affine, dtype=array.dtype))
    unit_axes = np.abs(affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0))
    oblique = bool(np.any(unit_axes.max(axis=0) < 1 - 1e-6))
    if oblique:
        log.debug("%s: oblique affine, reoriented to the closest canonical axes (not resampled)", source)
    canonical_affine = np.asarray(canonical.affine, dtype=np.float64)
    spacing = np.linalg.norm(canonical_affine[:3, :3], axis=0)
    return Volume(
        data=np.asanyarray(canonical.dataobj),
        spacing=(float(spacing[0]), float(spacing[1]), float(spacing[2])),
        affine=affine,
        canonical_affine=canonical_affine,
        source_orientation="".join(nib.aff2axcodes(affine)),
        oblique=oblique,
    )
