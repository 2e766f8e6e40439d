"""Volume codec: orientation, windowing, masks, DICOM series, ITK formats, whole volumes, broken files.

Every volume is made here with the seeded generators of ``medcat_data.mirror.synth.volume`` and
read back with the real nibabel, SimpleITK and pydicom. Expected pixel positions are derived from
the affine and anatomical directions, not from the code under test.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from medcat_data.converters.codecs.image import EncodedImage
from medcat_data.converters.codecs.volume import (
    CT_WINDOWS,
    VOLUME_SUFFIXES,
    VolumeOptions,
    find_dicom_series,
    find_mask,
    is_mask_path,
    iter_volume_slices,
    load_volume,
    load_volume_whole,
    read_mask_pairs,
)
from medcat_data.errors import SampleError, UnsupportedFormatError, UsageError
from medcat_data.mirror.synth.volume import (
    make_affine,
    synth_volume,
    write_dicom_series,
    write_itk,
    write_nifti,
)

PLANES = ("axial", "coronal", "sagittal")


def decode(image: EncodedImage) -> np.ndarray:
    """Decode a PNG with Pillow (a reader independent of the encoder)."""
    with Image.open(io.BytesIO(image.data)) as opened:
        return np.asarray(opened)


def write_volume(tmp_path: Path, fmt: str, data: np.ndarray, affine: np.ndarray, name: str = "vol") -> Path:
    """Write ``data`` in ``fmt`` (a suffix, or ``dicom`` for a series folder); return what to load."""
    if fmt == "dicom":
        folder = tmp_path / f"{name}-series"
        write_dicom_series(folder, data, affine, seed=7)
        return folder
    path = tmp_path / f"{name}{fmt}"
    if fmt.startswith(".nii"):
        return write_nifti(path, data, affine)
    return write_itk(path, data, affine)


def slice_at(path: Path, plane: str, index: int, **options: object) -> np.ndarray:
    for item in iter_volume_slices(path, VolumeOptions(plane=plane, **options)):  # type: ignore[arg-type]
        if item.index == index:
            return decode(item.image)
    raise AssertionError(f"no {plane} slice {index}")


def closest_canonical_index(
    affine: np.ndarray, shape: tuple[int, ...], voxel: tuple[int, ...]
) -> tuple[int, ...]:
    """Where a file voxel must land in RAS+ order: each file axis goes to its dominant world axis,
    flipped when it points Left, Posterior or Inferior."""
    out = [0, 0, 0]
    for axis in range(3):
        column = affine[:3, axis]
        world = int(np.argmax(np.abs(column)))
        out[world] = voxel[axis] if column[world] > 0 else shape[axis] - 1 - voxel[axis]
    return tuple(out)


def display_position(
    plane: str, index: tuple[int, ...], shape: tuple[int, ...]
) -> tuple[int, tuple[int, int]]:
    """The documented display convention: (slice index, (row, column)) of a canonical voxel.

    Axial: top anterior, image left = patient right. Coronal: top superior, image left = patient
    right. Sagittal: top superior, image left = anterior.
    """
    (x, y, z), (i, j, k) = shape, index
    return {
        "axial": (k, (y - 1 - j, x - 1 - i)),
        "coronal": (j, (z - 1 - k, x - 1 - i)),
        "sagittal": (i, (z - 1 - k, y - 1 - j)),
    }[plane]


# --- orientation -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [".nii.gz", ".nrrd", ".mha", "dicom"])
@pytest.mark.parametrize("axcodes", ["RAS", "LPS", "PIR", "SLA"])
def test_slices_show_right_anterior_superior_in_radiological_convention(
    tmp_path: Path, fmt: str, axcodes: str
) -> None:
    """Markers 4 mm right, anterior and superior of the centre land where a radiologist expects."""
    shape = (9, 7, 5)
    affine = make_affine(shape, (2.0, 2.0, 2.0), axcodes=axcodes)
    data = np.zeros(shape, dtype=np.int16)
    markers = {"right": ((4.0, 0, 0), 1000), "anterior": ((0, 4.0, 0), 2000), "superior": ((0, 0, 4.0), 3000)}
    to_voxel = np.linalg.inv(affine)
    for world, value in markers.values():
        voxel = np.rint(to_voxel @ [*world, 1.0])[:3].astype(int)
        data[tuple(voxel)] = value
    path = write_volume(tmp_path, fmt, data, affine)
    canonical_shape = load_volume(path).data.shape
    pixel = {"right": 85, "anterior": 170, "superior": 255}  # min-max 0..3000 -> 0..255

    def where(image: np.ndarray, name: str) -> tuple[int, int]:
        found = np.argwhere(image == pixel[name])
        assert len(found) == 1, f"{name} marker found {len(found)} times"
        return int(found[0][0]), int(found[0][1])

    centre = [n // 2 for n in canonical_shape]
    axial = slice_at(path, "axial", centre[2])
    rows, cols = axial.shape
    assert where(axial, "right") == (rows // 2, cols // 2 - 2)  # patient right on image left
    assert where(axial, "anterior") == (rows // 2 - 2, cols // 2)  # anterior at the top
    coronal = slice_at(path, "coronal", centre[1])
    rows, cols = coronal.shape
    assert where(coronal, "right") == (rows // 2, cols // 2 - 2)
    assert where(coronal, "superior") == (rows // 2 - 2, cols // 2)  # superior at the top
    sagittal = slice_at(path, "sagittal", centre[0])
    rows, cols = sagittal.shape
    assert where(sagittal, "anterior") == (rows // 2, cols // 2 - 2)  # anterior on image left
    assert where(sagittal, "superior") == (rows // 2 - 2, cols // 2)


@pytest.mark.parametrize("fmt", [".nii.gz", "dicom", ".mha"])
@pytest.mark.parametrize(("axcodes", "degrees"), [("LPS", 20.0), ("RAS", -30.0), ("PIR", 15.0)])
def test_oblique_volume_goes_to_closest_canonical_axes_without_resampling(
    tmp_path: Path, fmt: str, axcodes: str, degrees: float
) -> None:
    shape = (7, 6, 5)
    affine = make_affine(shape, (0.8, 1.0, 2.5), axcodes=axcodes, oblique_deg=degrees)
    data = np.random.default_rng(3).integers(-1000, 2000, size=shape).astype(np.int16)
    volume = load_volume(write_volume(tmp_path, fmt, data, affine))

    assert volume.oblique
    assert volume.source_orientation == "".join(nib.aff2axcodes(affine))
    np.testing.assert_allclose(volume.affine, affine, atol=1e-4)
    for voxel in np.ndindex(shape):
        target = closest_canonical_index(affine, shape, voxel)
        assert volume.data[target] == data[voxel]
        # the voxel keeps its world position: nothing moved, nothing was resampled
        np.testing.assert_allclose(volume.canonical_affine @ [*target, 1], affine @ [*voxel, 1], atol=1e-3)
    assert volume.spacing == pytest.approx(sorted_spacing(affine), abs=1e-5)


def sorted_spacing(affine: np.ndarray) -> tuple[float, ...]:
    spacing = [0.0, 0.0, 0.0]
    for axis in range(3):
        spacing[int(np.argmax(np.abs(affine[:3, axis])))] = float(np.linalg.norm(affine[:3, axis]))
    return tuple(spacing)


@pytest.mark.parametrize("fmt", [".nii.gz", "dicom"])
@pytest.mark.parametrize("plane", PLANES)
def test_bright_voxel_in_oblique_lps_volume_lands_at_documented_pixel(
    tmp_path: Path, fmt: str, plane: str
) -> None:
    shape = (8, 6, 5)
    affine = make_affine(shape, (1.0, 1.2, 2.0), axcodes="LPS", oblique_deg=20.0)
    data = np.zeros(shape, dtype=np.int16)
    voxel = (1, 4, 3)
    data[voxel] = 500
    path = write_volume(tmp_path, fmt, data, affine)
    canonical_shape = (8, 6, 5)  # LPS keeps the axis order
    target = closest_canonical_index(affine, shape, voxel)
    index, (row, col) = display_position(plane, target, canonical_shape)
    image = slice_at(path, plane, index)
    assert image[row, col] == 255
    assert np.count_nonzero(image) == 1


# --- intensity -------------------------------------------------------------------------------


def row_volume(tmp_path: Path, values: list[int]) -> Path:
    """A one-row RAS volume whose axial slice 0 shows ``values`` from image right to left."""
    data = np.zeros((len(values), 1, 2), dtype=np.int16)
    data[:, 0, 0] = values
    data[:, 0, 1] = values
    return write_nifti(tmp_path / "row.nii.gz", data, np.eye(4))


@pytest.mark.parametrize(
    ("window", "bit_depth", "expected"),
    [
        # ct-soft-tissue: center 40, width 400 -> -160 is black, 240 white; 0 -> 160/400*255 = 102
        ("ct-soft-tissue", 8, [0, 0, 102, 191, 255, 255]),
        ("ct-soft-tissue", 16, [0, 0, 26214, 49151, 65535, 65535]),  # 0.4*65535, 0.75*65535 rounded
        ((40, 400), 8, [0, 0, 102, 191, 255, 255]),
        ("40,400", 8, [0, 0, 102, 191, 255, 255]),
    ],
)
def test_ct_window_maps_hounsfield_units_by_hand_computed_values(
    tmp_path: Path, window: object, bit_depth: int, expected: list[int]
) -> None:
    path = row_volume(tmp_path, [-1000, -160, 0, 140, 240, 1000])
    image = slice_at(path, "axial", 0, window=window, bit_depth=bit_depth)
    assert image.dtype == (np.uint8 if bit_depth == 8 else np.uint16)
    assert image[0, ::-1].tolist() == expected  # image left is patient right, i.e. the last voxel


def test_lung_window_by_name() -> None:
    assert CT_WINDOWS["ct-lung"] == (-600.0, 1500.0)
    assert CT_WINDOWS["ct-bone"] == (400.0, 1800.0)
    assert CT_WINDOWS["ct-brain"] == (40.0, 80.0)


def test_lung_window_pixels(tmp_path: Path) -> None:
    # -1350 black, 150 white; -750 -> 600/1500*255 = 102
    path = row_volume(tmp_path, [-2000, -1350, -750, 150])
    assert slice_at(path, "axial", 0, window="ct-lung")[0, ::-1].tolist() == [0, 0, 102, 255]


def test_minmax_is_over_the_whole_volume_so_slices_are_comparable(tmp_path: Path) -> None:
    data = np.zeros((2, 1, 2), dtype=np.int16)
    data[:, 0, 0] = [0, 20]  # slice 0 alone spans 0..20
    data[:, 0, 1] = [20, 100]  # the volume spans 0..100
    path = write_nifti(tmp_path / "mm.nii.gz", data, np.eye(4))
    first, second = (decode(s.image) for s in iter_volume_slices(path, VolumeOptions()))
    assert first[0, ::-1].tolist() == [0, 51]  # 20/100*255, not stretched to 255 per slice
    assert second[0, ::-1].tolist() == [51, 255]


def test_nifti_scaling_is_applied_before_windowing(tmp_path: Path) -> None:
    import nibabel as nib

    raw = np.zeros((3, 1, 1), dtype=np.int16)
    raw[:, 0, 0] = [0, 1024, 1164]  # stored values; HU = stored - 1024
    image = nib.Nifti1Image(raw, np.eye(4))
    image.header.set_slope_inter(1.0, -1024.0)
    path = tmp_path / "scaled.nii.gz"
    nib.save(image, str(path))
    volume = load_volume(path)
    assert volume.data.dtype == np.int16
    assert volume.data[:, 0, 0].tolist() == [-1024, 0, 140]
    assert slice_at(path, "axial", 0, window="ct-soft-tissue")[0, ::-1].tolist() == [0, 102, 191]


# --- slice geometry and options --------------------------------------------------------------


def test_slices_follow_plane_and_stride_and_report_spacing(tmp_path: Path) -> None:
    vol = synth_volume((12, 10, 8), spacing=(0.8, 1.0, 2.5), axcodes="RAS", with_mask=False)
    path = write_nifti(tmp_path / "ct.nii.gz", vol.data, vol.affine)
    expectations = {  # plane -> (count with stride 3, (rows, cols), (row mm, col mm))
        "axial": (3, (10, 12), (1.0, 0.8)),
        "coronal": (4, (8, 12), (2.5, 0.8)),
        "sagittal": (4, (8, 10), (2.5, 1.0)),
    }
    for plane, (count, size, spacing) in expectations.items():
        options = VolumeOptions(plane=plane, stride=3)  # type: ignore[arg-type]
        slices = list(iter_volume_slices(path, options))
        assert [s.index for s in slices] == list(range(0, 3 * count, 3))
        assert all(s.plane == plane and s.shape == (12, 10, 8) and s.mask is None for s in slices)
        assert decode(slices[0].image).shape == size
        assert slices[0].spacing == pytest.approx(spacing, abs=1e-6)


def test_max_size_keeps_aspect_and_records_scale(tmp_path: Path) -> None:
    vol = synth_volume((12, 10, 8), axcodes="RAS", with_mask=False)
    path = write_nifti(tmp_path / "ct.nii.gz", vol.data, vol.affine)
    first = next(iter_volume_slices(path, VolumeOptions(max_size=6)))
    assert (first.image.width, first.image.height, first.image.original_width) == (6, 5, 12)
    assert first.image.scale == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, "stride"),
        ({"plane": "transverse"}, "plane"),
        ({"bit_depth": 12}, "bit_depth"),
        ({"window": "ct-lungs"}, "'ct-lung'"),
        ({"window": (40, 0)}, "positive width"),
        ({"max_size": 0}, "max size"),
    ],
)
def test_bad_options_raise_usage_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        VolumeOptions(**kwargs)  # type: ignore[arg-type]


# --- masks -----------------------------------------------------------------------------------


def labelled_pair(
    tmp_path: Path, labels: list[int], *, image_axcodes: str, mask_axcodes: str
) -> tuple[Path, Path]:
    """An image whose HU value is ``10 * label`` everywhere, and its mask, maybe stored in another
    voxel order on the same grid, so a misaligned slice shows up as a label/pixel disagreement."""
    shape = (7, 6, 5)
    rng = np.random.default_rng(11)
    label_ras = rng.choice(np.asarray(labels), size=shape)
    ras = make_affine(shape, (1.0, 1.5, 2.0), axcodes="RAS")

    def stored(values: np.ndarray, axcodes: str, dtype: type) -> tuple[np.ndarray, np.ndarray]:
        ornt = nib.orientations.axcodes2ornt(axcodes)
        data = nib.orientations.apply_orientation(values, ornt)
        return data.astype(dtype), ras @ nib.orientations.inv_ornt_aff(ornt, shape)

    image, image_affine = stored(label_ras * 10, image_axcodes, np.int32)
    mask, mask_affine = stored(label_ras, mask_axcodes, np.uint16 if max(labels) > 255 else np.uint8)
    return (
        write_nifti(tmp_path / "imagesTr" / "case.nii.gz", image, image_affine),
        write_nifti(tmp_path / "labelsTr" / "case.nii.gz", mask, mask_affine),
    )


@pytest.mark.parametrize("plane", PLANES)
@pytest.mark.parametrize(("labels", "mask_bits"), [([0, 1, 2, 7, 255], 8), ([0, 3, 300, 1000], 16)])
def test_mask_slices_stay_aligned_with_exact_labels(
    tmp_path: Path, plane: str, labels: list[int], mask_bits: int
) -> None:
    image_path, mask_path = labelled_pair(tmp_path, labels, image_axcodes="LPS", mask_axcodes="ASL")
    options = VolumeOptions(plane=plane, bit_depth=16)  # type: ignore[arg-type]
    slices = list(iter_volume_slices(image_path, options, mask=mask_path))
    assert slices
    seen: set[int] = set()
    top = 10 * max(labels)
    for item in slices:
        assert item.mask is not None
        image, mask = decode(item.image), decode(item.mask)
        assert mask.dtype == (np.uint8 if mask_bits == 8 else np.uint16)
        assert image.shape == mask.shape
        # image = 10 * label, min-max over 0..top in 16 bits: undo the mapping to read labels back
        np.testing.assert_array_equal(np.rint(image.astype(float) * top / 65535 / 10), mask)
        seen |= set(np.unique(mask).tolist())
    assert seen == set(labels)


def test_resized_mask_uses_nearest_labels_only(tmp_path: Path) -> None:
    image_path, mask_path = labelled_pair(tmp_path, [0, 5, 9], image_axcodes="RAS", mask_axcodes="RAS")
    for item in iter_volume_slices(image_path, VolumeOptions(max_size=4), mask=mask_path):
        assert item.mask is not None
        assert (item.mask.width, item.mask.height) == (item.image.width, item.image.height)
        assert set(np.unique(decode(item.mask)).tolist()) <= {0, 5, 9}


def test_mask_on_another_grid_is_a_sample_error(tmp_path: Path) -> None:
    vol = synth_volume((6, 5, 4), axcodes="RAS")
    assert vol.mask is not None
    image = write_nifti(tmp_path / "ct.nii.gz", vol.data, vol.affine)
    shifted = vol.affine.copy()
    shifted[0, 3] += 1.0
    wrong_grid = write_nifti(tmp_path / "shifted.nii.gz", vol.mask, shifted)
    wrong_shape = write_nifti(tmp_path / "cropped.nii.gz", vol.mask[:-1], vol.affine)
    for mask in (wrong_grid, wrong_shape):
        with pytest.raises(SampleError) as caught:
            iter_volume_slices(image, VolumeOptions(), mask=mask)
        assert caught.value.stage == "mask" and caught.value.path == str(mask)
        with pytest.raises(SampleError):
            load_volume_whole(image, mask=mask)


@pytest.mark.parametrize("bad", [np.array([0.0, 0.5]), np.array([0, -1])])
def test_mask_labels_that_png_cannot_keep_are_a_sample_error(tmp_path: Path, bad: np.ndarray) -> None:
    image = write_nifti(tmp_path / "ct.nii.gz", np.zeros((2, 1, 1), dtype=np.int16), np.eye(4))
    mask = write_nifti(tmp_path / "m.nii.gz", bad.reshape(2, 1, 1).astype(np.float32), np.eye(4))
    with pytest.raises(SampleError, match="mask|labels"):
        iter_volume_slices(image, VolumeOptions(), mask=mask)


# --- finding masks ---------------------------------------------------------------------------


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_find_mask_by_folder_convention(tmp_path: Path) -> None:
    amos = touch(tmp_path / "amos" / "imagesVa" / "amos_0008.nii.gz")
    assert find_mask(amos) is None
    label = touch(tmp_path / "amos" / "labelsVa" / "amos_0008.nii.gz")
    assert find_mask(amos) == label
    nnunet = touch(tmp_path / "nn" / "imagesTr" / "case_001_0000.nii.gz")
    nnunet_label = touch(tmp_path / "nn" / "labelsTr" / "case_001.nii.gz")
    assert find_mask(nnunet) == nnunet_label
    plain = touch(tmp_path / "plain" / "images" / "knee.nrrd")
    plain_mask = touch(tmp_path / "plain" / "masks" / "knee_seg.nii.gz")
    assert find_mask(plain) == plain_mask
    loose = touch(tmp_path / "loose" / "scan.mha")
    root = tmp_path / "elsewhere"
    assert find_mask(loose, root) is None
    assert find_mask(loose, [root]) is None
    mask = touch(root / "segmentations" / "scan.mha")
    assert find_mask(loose, root) == mask
    assert find_mask(loose, [root]) == mask
    assert is_mask_path(label) and is_mask_path(mask) and not is_mask_path(amos)


def test_find_mask_from_pairing_csv(tmp_path: Path) -> None:
    image = touch(tmp_path / "data" / "a.nii.gz")
    mask = touch(tmp_path / "ann" / "a-liver.nii.gz")
    touch(tmp_path / "data" / "labels" / "a.nii.gz")  # the folder convention is not consulted
    csv_path = tmp_path / "pairs.csv"
    csv_path.write_text("image,mask\ndata/a.nii.gz,ann/a-liver.nii.gz\ndata/b.nii.gz,\n", encoding="utf-8")
    assert read_mask_pairs(csv_path) == {image.resolve(): mask.resolve()}
    assert find_mask(image, pairs=csv_path) == mask.resolve()
    assert find_mask(tmp_path / "data" / "b.nii.gz", pairs=csv_path) is None
    bad = tmp_path / "bad.csv"
    bad.write_text("img,seg\n", encoding="utf-8")
    with pytest.raises(UsageError, match="'image' and 'mask'"):
        find_mask(image, pairs=bad)


# --- DICOM series ----------------------------------------------------------------------------


def test_series_are_grouped_and_sorted_by_position_not_names_or_instance_numbers(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    head = synth_volume((6, 5, 4), seed=1, axcodes="LPS")
    feet = synth_volume((6, 5, 3), seed=2, axcodes="LPI", oblique_deg=10.0)  # k runs head to feet
    head_files = write_dicom_series(folder, head.data, head.affine, seed=1, reverse_instance_numbers=True)
    feet_files = write_dicom_series(folder, feet.data, feet.affine, seed=2)
    touch(folder / "README.txt").write_text("not DICOM", encoding="utf-8")
    write_nifti(folder / "stray.nii.gz", head.data, head.affine)

    series = find_dicom_series([folder])
    assert len(series) == 2
    uids = {str(pydicom.dcmread(files[0]).SeriesInstanceUID): files for files in (head_files, feet_files)}
    assert series[next(u for u, f in uids.items() if f is head_files)] == head_files  # inferior first
    assert series[next(u for u, f in uids.items() if f is feet_files)] == feet_files[::-1]

    with pytest.raises(SampleError, match="2 series"):
        load_volume(folder)
    reference = load_volume(write_nifti(tmp_path / "head.nii.gz", head.data, head.affine))
    for source in (head_files[::-1], sorted(head_files)):
        volume = load_volume(source)
        np.testing.assert_array_equal(volume.data, reference.data)  # HU after rescale, same order
        np.testing.assert_allclose(volume.canonical_affine, reference.canonical_affine, atol=1e-4)


def test_series_without_positions_falls_back_to_instance_number(tmp_path: Path) -> None:
    vol = synth_volume((4, 3, 5), seed=4, axcodes="LPS")
    files = write_dicom_series(tmp_path, vol.data, vol.affine, seed=4, reverse_instance_numbers=True)
    for path in files:
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path)
    assert find_dicom_series(files) == {str(pydicom.dcmread(files[0]).SeriesInstanceUID): files[::-1]}


def test_truncated_file_in_series_is_a_sample_error(tmp_path: Path) -> None:
    vol = synth_volume((6, 5, 4), seed=5, axcodes="LPS")
    files = write_dicom_series(tmp_path / "s", vol.data, vol.affine, seed=5)
    files[2].write_bytes(files[2].read_bytes()[:-40])
    with pytest.raises(SampleError) as caught:
        load_volume(tmp_path / "s")
    assert caught.value.stage == "read"


# --- other formats and whole volumes ---------------------------------------------------------


@pytest.mark.parametrize("suffix", [".nrrd", ".nhdr", ".mha", ".mhd", ".nii"])
def test_itk_formats_load_like_nifti(tmp_path: Path, suffix: str) -> None:
    vol = synth_volume((6, 5, 4), seed=6, spacing=(0.7, 0.9, 3.0), axcodes="LPS", oblique_deg=12.0)
    reference = load_volume(write_nifti(tmp_path / "ref.nii.gz", vol.data, vol.affine))
    volume = load_volume(write_volume(tmp_path, suffix, vol.data, vol.affine))
    np.testing.assert_array_equal(volume.data, reference.data)
    assert volume.spacing == pytest.approx(reference.spacing, abs=1e-5)
    np.testing.assert_allclose(volume.affine, vol.affine, atol=1e-5)
    assert suffix in VOLUME_SUFFIXES


def test_whole_volume_round_trips_through_nibabel(tmp_path: Path) -> None:
    vol = synth_volume((7, 6, 5), seed=8, spacing=(0.8, 1.0, 2.5), axcodes="LPS", oblique_deg=20.0)
    assert vol.mask is not None
    image = write_nifti(tmp_path / "ct.nii.gz", vol.data, vol.affine)
    mask = write_nifti(tmp_path / "labels" / "ct.nii.gz", vol.mask, vol.affine)
    whole = load_volume_whole(image, mask=mask)
    reference = load_volume(image)

    loaded = nib.Nifti1Image.from_bytes(gzip.decompress(whole.nifti_gz))
    assert whole.shape == loaded.shape == (7, 6, 5)
    assert whole.orientation == "".join(nib.aff2axcodes(loaded.affine)) == "RAS"
    assert loaded.header.get_zooms() == pytest.approx(whole.spacing, abs=1e-5)
    assert whole.spacing == pytest.approx((0.8, 1.0, 2.5), abs=1e-5)
    np.testing.assert_allclose(loaded.affine, reference.canonical_affine, atol=1e-4)
    np.testing.assert_allclose(whole.affine, vol.affine, atol=1e-5)  # the original affine, kept
    np.testing.assert_array_equal(np.asarray(loaded.dataobj), reference.data)
    assert np.asarray(loaded.dataobj).dtype == np.int16

    assert whole.mask_nifti_gz is not None
    labels = nib.Nifti1Image.from_bytes(gzip.decompress(whole.mask_nifti_gz))
    assert np.asarray(labels.dataobj).dtype == np.uint8
    assert set(np.unique(np.asarray(labels.dataobj)).tolist()) == {0, 1, 2}
    np.testing.assert_allclose(labels.affine, loaded.affine)

    again = load_volume_whole(image, mask=mask)
    assert again.nifti_gz == whole.nifti_gz and again.mask_nifti_gz == whole.mask_nifti_gz
    assert whole.nifti_gz[4:8] == b"\0\0\0\0"  # gzip mtime fixed


# --- broken input ----------------------------------------------------------------------------


def truncate(path: Path, keep: float = 0.5) -> Path:
    payload = path.read_bytes()
    path.write_bytes(payload[: int(len(payload) * keep)])
    return path


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_truncated_volume_is_a_sample_error_not_a_crash(tmp_path: Path, suffix: str) -> None:
    vol = synth_volume((16, 12, 10), seed=9, with_mask=False)
    path = truncate(write_volume(tmp_path, suffix, vol.data, vol.affine))
    for read in (load_volume, load_volume_whole, lambda p: iter_volume_slices(p, VolumeOptions())):
        with pytest.raises(SampleError) as caught:
            read(path)
        assert caught.value.path == str(path) and caught.value.stage == "read"


@pytest.mark.parametrize(
    "name", ["garbage.nii.gz", "garbage.nii", "garbage.nrrd", "garbage.mha", "empty.nii"]
)
def test_garbage_or_empty_volume_is_a_sample_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"" if name.startswith("empty") else b"not a volume at all\n" * 40)
    with pytest.raises(SampleError):
        load_volume(path)


def test_missing_file_and_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(SampleError, match="not found"):
        load_volume(tmp_path / "absent.nii.gz")
    other = touch(tmp_path / "photo.png")
    with pytest.raises(UnsupportedFormatError, match=".nii.gz"):
        load_volume(other)


def test_four_dimensional_volume_is_a_sample_error(tmp_path: Path) -> None:
    path = write_nifti(tmp_path / "fmri.nii.gz", np.zeros((3, 3, 3, 2), dtype=np.int16), np.eye(4))
    with pytest.raises(SampleError, match="3D"):
        load_volume(path)
