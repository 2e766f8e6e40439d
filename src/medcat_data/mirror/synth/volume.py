"""Seeded synthetic volumes with known geometry: NIfTI, NRRD/MHA/MHD and DICOM CT series.

Every generator writes only the files it is asked for and returns what it wrote together with
the ground truth (voxel array and affine), so tests can say where each voxel must land after
reorientation. Affines here follow nibabel's convention: voxel ``(i, j, k)`` to RAS+ world
millimetres (x towards the patient's right, y anterior, z superior). DICOM and ITK formats store
LPS+; the writers convert. Nothing here reads real data, touches the network or uses global RNG.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# RAS+ world axis and sign for each orientation letter (nibabel's axis codes).
_AXIS_OF = {"R": (0, 1.0), "L": (0, -1.0), "A": (1, 1.0), "P": (1, -1.0), "S": (2, 1.0), "I": (2, -1.0)}
_LPS_FROM_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

_HU_OFFSET = 1024  # DICOM pixels are stored as HU + 1024 (uint16) with RescaleIntercept -1024


@dataclass(frozen=True, eq=False)
class SynthVolume:
    """A synthetic volume as stored in a file.

    Attributes:
        data: Voxel array in file order ``(i, j, k)``; HU for CT (``int16``).
        affine: 4x4 voxel-to-RAS+ world affine in mm.
        mask: Label volume on the same grid (``uint8``), or ``None``.
    """

    data: np.ndarray
    affine: np.ndarray
    mask: np.ndarray | None = None


def make_affine(
    shape: Sequence[int],
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    *,
    axcodes: str = "RAS",
    oblique_deg: float = 0.0,
) -> np.ndarray:
    """Return a voxel-to-RAS+ affine whose axes point along ``axcodes``, centred on the origin.

    ``axcodes`` names, for each voxel axis, the direction it increases towards (``"LPS"`` is the
    DICOM/ITK layout, ``"PIR"`` a permuted one). ``oblique_deg`` then rotates the grid about the
    z axis by that angle and about the x axis by half of it, so no voxel axis stays parallel to a
    world axis; keep it under 45 degrees so the closest canonical axis stays unambiguous.
    """
    columns = np.zeros((3, 3))
    for voxel_axis, letter in enumerate(axcodes.upper()):
        world_axis, sign = _AXIS_OF[letter]
        columns[world_axis, voxel_axis] = sign * float(spacing[voxel_axis])
    if sorted(int(np.argmax(np.abs(columns[:, a]))) for a in range(3)) != [0, 1, 2]:
        raise ValueError(f"axcodes {axcodes!r} must name each of R/L, A/P, S/I once")
    theta, phi = np.deg2rad(oblique_deg), np.deg2rad(oblique_deg / 2)
    rot_z = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    rot_x = np.array([[1, 0, 0], [0, np.cos(phi), -np.sin(phi)], [0, np.sin(phi), np.cos(phi)]])
    linear = rot_x @ rot_z @ columns
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ ((np.asarray(shape[:3], dtype=float) - 1) / 2)
    return affine


def ct_phantom(shape: Sequence[int], *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return an ``int16`` HU volume and its ``uint8`` label mask, seeded.

    Air is -1000 HU; an ellipsoidal body is soft tissue (40 HU with noise, label 1) and holds a
    bone block (700 HU, label 2). Shapes as small as 4 voxels per side work.
    """
    rng = np.random.default_rng(seed)
    grid = np.indices(tuple(shape[:3]), dtype=float)
    centre = (np.asarray(shape[:3], dtype=float) - 1) / 2
    radii = np.maximum(np.asarray(shape[:3], dtype=float) * 0.4, 1.0)
    inside = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0
    ct = np.full(tuple(shape[:3]), -1000, dtype=np.int16)
    noise = rng.integers(-20, 21, size=ct.shape)
    ct[inside] = (40 + noise[inside]).astype(np.int16)
    mask = inside.astype(np.uint8)
    lo = [int(c - r / 3) for c, r in zip(centre, radii)]
    hi = [int(c + r / 3) + 1 for c, r in zip(centre, radii)]
    bone = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
    ct[bone] = 700
    mask[bone] = 2
    return ct, mask


def synth_volume(
    shape: Sequence[int] = (12, 10, 8),
    *,
    seed: int = 0,
    spacing: Sequence[float] = (0.8, 1.0, 2.5),
    axcodes: str = "RAS",
    oblique_deg: float = 0.0,
    with_mask: bool = True,
) -> SynthVolume:
    """Return a seeded CT phantom with an affine along ``axcodes`` (see ``make_affine``)."""
    ct, mask = ct_phantom(shape, seed=seed)
    affine = make_affine(shape, spacing, axcodes=axcodes, oblique_deg=oblique_deg)
    return SynthVolume(data=ct, affine=affine, mask=mask if with_mask else None)


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write ``data`` with ``affine`` (sform and qform, scanner code) as ``.nii`` or ``.nii.gz``."""
    import nibabel as nib

    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))
    return path


def write_itk(path: Path, data: np.ndarray, affine: np.ndarray) -> Path:
    """Write ``data`` as NRRD, MHA or MHD (by suffix) through SimpleITK, geometry in LPS+.

    The affine's columns must be orthogonal (ITK stores spacing and a rotation, no shear). An
    ``.mhd`` is written with its ``.raw`` next to it, uncompressed; the others are compressed.
    """
    import SimpleITK as sitk

    lps = _LPS_FROM_RAS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in lps[:3, 3]])
    image.SetDirection([float(v) for v in (lps[:3, :3] / spacing).ravel()])
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), path.suffix != ".mhd")
    return path


def write_dicom_series(
    folder: Path,
    data: np.ndarray,
    affine: np.ndarray,
    *,
    seed: int,
    shuffle: bool = True,
    reverse_instance_numbers: bool = False,
) -> list[Path]:
    """Write ``data`` as a CT series, one file per ``k`` slice, and return the paths in ``k`` order.

    Geometry comes from ``affine``: ImageOrientationPatient holds the ``i`` (row) and ``j``
    (column) directions in LPS, ImagePositionPatient the world position of voxel ``(0, 0, k)``,
    PixelSpacing ``[j spacing, i spacing]``. Pixels are HU + 1024 as ``uint16`` with
    RescaleIntercept -1024. With ``shuffle`` the file names are random hex, so neither names nor
    directory order reveal the slice order; ``reverse_instance_numbers`` numbers instances
    against the position order, so a reader that trusts InstanceNumber alone gets it wrong.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = random.Random(seed)
    lps = _LPS_FROM_RAS @ affine
    spacing = np.linalg.norm(lps[:3, :3], axis=0)
    row_dir, col_dir = lps[:3, 0] / spacing[0], lps[:3, 1] / spacing[1]
    study_uid = generate_uid(entropy_srcs=[f"medcat-synth-study-{seed}"])
    series_uid = generate_uid(entropy_srcs=[f"medcat-synth-series-{seed}"])
    n_slices = data.shape[2]
    names = [f"{rng.getrandbits(64):016x}.dcm" if shuffle else f"slice{k:04d}.dcm" for k in range(n_slices)]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n_slices):
        sop_uid = generate_uid(entropy_srcs=[f"medcat-synth-sop-{seed}-{k}"])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.Modality = "CT"
        ds.PatientID = f"SYNTH{seed:04d}"
        ds.SeriesNumber = 1
        ds.InstanceNumber = (n_slices - k) if reverse_instance_numbers else (k + 1)
        ds.ImagePositionPatient = [round(float(v), 6) for v in lps[:3, :3] @ [0, 0, k] + lps[:3, 3]]
        ds.ImageOrientationPatient = [round(float(v), 8) for v in (*row_dir, *col_dir)]
        ds.PixelSpacing = [round(float(spacing[1]), 6), round(float(spacing[0]), 6)]
        ds.SliceThickness = round(float(spacing[2]), 6)
        ds.RescaleIntercept = -_HU_OFFSET
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = int(data.shape[1]), int(data.shape[0])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        stored = np.ascontiguousarray(data[:, :, k].T.astype(np.int32) + _HU_OFFSET).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        path = folder / names[k]
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths
