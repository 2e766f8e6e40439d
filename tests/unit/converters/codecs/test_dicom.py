"""DICOM codec: pixel pipeline against the reference table, every syntax, broken files, attributes."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as PydicomSequence
from pydicom.uid import JPEG2000Lossless, JPEGBaseline8Bit, JPEGLSLossless, RLELossless

from medcat_data.converters.codecs import dependencies
from medcat_data.converters.codecs.dicom import DICOM_ATTRIBUTES, decode_dicom, is_dicom
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.errors import MissingDependencyError, SampleError, UnsupportedFormatError
from tests.fixtures.synth import DicomFactory
from tests.unit.converters.codecs.pixel_reference import (
    GREY_SYNTAXES,
    LOSSY_GREY_SYNTAXES,
    MINMAX_EXPECTED,
    MINMAX_PIXELS,
    MONOCHROME1_EXPECTED,
    REFERENCES,
    Reference,
)


def pixels_of(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def assert_matches(out: np.ndarray, expected: dict, tolerance: int = 0) -> None:
    for (row, col), value in expected.items():
        got = out[row, col]
        want = np.array(value)
        assert np.all(np.abs(got.astype(int) - want) <= tolerance), f"at ({row}, {col}): got {got}, expected {value}"


@pytest.mark.parametrize("ref", REFERENCES, ids=[r.name for r in REFERENCES])
def test_pixels_match_hand_computed_reference(ref: Reference, dicom_factory: DicomFactory) -> None:
    path = dicom_factory(f"ref-{ref.name}", **ref.make)
    [image] = decode_dicom(path, ref.options)
    out = pixels_of(image.data)
    assert out.dtype == (np.uint16 if ref.options.bit_depth == 16 else np.uint8)
    assert_matches(out, ref.expected, ref.tolerance)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
@pytest.mark.parametrize("syntax", GREY_SYNTAXES, ids=lambda uid: pydicom.uid.UID(uid).name)
def test_every_lossless_syntax_gives_the_same_pixels(syntax: str, photometric: str, dicom_factory: DicomFactory) -> None:
    path = dicom_factory(f"syntax-{syntax}-{photometric}", pixels=MINMAX_PIXELS, photometric=photometric, transfer_syntax=syntax)
    assert str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID) == syntax
    [image] = decode_dicom(path, ImageOptions())
    assert_matches(pixels_of(image.data), MINMAX_EXPECTED if photometric == "MONOCHROME2" else MONOCHROME1_EXPECTED)
    assert image.attributes["transfer_syntax_uid"] == syntax


@pytest.mark.parametrize("syntax", LOSSY_GREY_SYNTAXES, ids=lambda uid: pydicom.uid.UID(uid).name)
def test_lossy_syntaxes_stay_close_to_the_lossless_decode(syntax: str, dicom_factory: DicomFactory) -> None:
    reference = dicom_factory("lossy-reference", rows=64, columns=64, seed=11)
    lossy = dicom_factory(f"lossy-{syntax}", rows=64, columns=64, seed=11, transfer_syntax=syntax)
    options = ImageOptions(window="none", bit_depth=16)
    expected = pixels_of(decode_dicom(reference, options)[0].data).astype(int)
    got = pixels_of(decode_dicom(lossy, options)[0].data).astype(int)
    assert np.abs(got - expected).mean() < 20  # half a percent of the 12-bit range (ratio 20 / error 2)


def test_uncompressed_minmax_equals_the_plain_pydicom_loop(dicom_factory: DicomFactory) -> None:
    """The fast lookup-table path is pixel-identical to min-max computed in float64 per pixel."""
    path = dicom_factory("plain-loop", rows=96, columns=80, seed=3)
    stored = pydicom.dcmread(path).pixel_array.astype(np.float64)
    plain = np.rint((stored - stored.min()) / (stored.max() - stored.min()) * 255.0).astype(np.uint8)
    [image] = decode_dicom(path, ImageOptions(window="minmax"))
    assert np.array_equal(pixels_of(image.data), plain)


def test_monochrome1_is_inverted_but_none_keeps_values(dicom_factory: DicomFactory) -> None:
    path = dicom_factory("mono1-none", pixels=MINMAX_PIXELS, photometric="MONOCHROME1")
    [image] = decode_dicom(path, ImageOptions(window="none", bit_depth=16))
    assert np.array_equal(pixels_of(image.data), MINMAX_PIXELS)


def test_none_window_that_does_not_fit_8_bits_is_a_pixels_error(dicom_factory: DicomFactory) -> None:
    path = dicom_factory("none-8bit", pixels=MINMAX_PIXELS)
    with pytest.raises(SampleError) as err:
        decode_dicom(path, ImageOptions(window="none"))
    assert err.value.stage == "pixels" and "bit depth 16" in err.value.reason


def test_unusable_window_width_falls_back_to_minmax_in_auto(dicom_factory: DicomFactory) -> None:
    path = dicom_factory("zero-width", pixels=MINMAX_PIXELS, window=(2000, 0))
    [image] = decode_dicom(path, ImageOptions())
    assert_matches(pixels_of(image.data), MINMAX_EXPECTED)


def test_multiframe_first_or_all_with_frame_index(dicom_factory: DicomFactory) -> None:
    frames = np.stack([MINMAX_PIXELS + 10 * k for k in range(3)]).astype(np.uint16)
    path = dicom_factory("multiframe", pixels=frames, frames=3, window=(2050, 3900), transfer_syntax=RLELossless)
    first = decode_dicom(path, ImageOptions())
    every = decode_dicom(path, ImageOptions(frames="all"))
    assert [i.frame_index for i in first] == [0]
    assert [i.frame_index for i in every] == [0, 1, 2]
    assert [i.attributes["frame_index"] for i in every] == [0, 1, 2]
    # LINEAR c' = 2049.5, w' = 3899: stored 1000 + 10k -> ((1000+10k-2049.5)/3899 + 0.5) * 255
    assert [int(pixels_of(i.data)[0, 2]) for i in every] == [59, 60, 60]  # 58.86, 59.51, 60.17


def test_enhanced_multiframe_uses_functional_group_rescale_and_window(dicom_factory: DicomFactory) -> None:
    from tests.unit.converters.codecs.pixel_reference import _enhanced_groups

    frames = np.full((2, 2, 2), 1024 + 50, dtype=np.uint16)  # HU 50 in both frames
    path = dicom_factory("enhanced", pixels=frames, frames=2, modality="CT", tags=_enhanced_groups())
    values = [int(pixels_of(i.data)[0, 0]) for i in decode_dicom(path, ImageOptions(frames="all"))]
    # frame 0: c 0 w 200 -> ((50+0.5)/199+0.5)*255 = 192.21; frame 1: c 100 -> ((50-99.5)/199+0.5)*255 = 64.07
    assert values == [192, 64]


def test_max_size_keeps_aspect_and_records_scale(dicom_factory: DicomFactory) -> None:
    path = dicom_factory("resize", rows=200, columns=100, seed=4)
    [image] = decode_dicom(path, ImageOptions(max_size=50))
    assert (image.width, image.height, image.original_width, image.original_height) == (25, 50, 100, 200)
    assert image.scale == 0.25
    assert pixels_of(image.data).shape == (50, 25)


def test_attributes_are_the_whitelist_only(dicom_factory: DicomFactory) -> None:
    tags = {"ViewPosition": "CC", "ImageLaterality": "L", "PixelSpacing": [0.1, 0.1], "Manufacturer": "ACME"}
    path = dicom_factory("attributes", modality="MG", tags=tags, seed=5)
    [image] = decode_dicom(path, ImageOptions())
    assert tuple(image.attributes) == DICOM_ATTRIBUTES
    assert image.attributes == {
        "modality": "MG",
        "view_position": "CC",
        "laterality": "L",
        "photometric_interpretation": "MONOCHROME2",
        "rows": 64,
        "columns": 48,
        "pixel_spacing": [0.1, 0.1],
        "bits_stored": 12,
        "manufacturer": "ACME",
        "sop_class_uid": "1.2.840.10008.5.1.4.1.1.1.2",
        "transfer_syntax_uid": "1.2.840.10008.1.2.1",
        "frame_index": None,
    }
    header = pydicom.dcmread(path, stop_before_pixels=True)
    assert str(header.PatientID).encode() not in image.data


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # VinDr's hashed UIDs are not valid UIDs
def test_vindr_style_file_meta_keeps_the_real_sop_class(dicom_factory: DicomFactory) -> None:
    uid = "1.2.840.10008.5.1.4.1.1.1.2"
    hashed = {"SOPInstanceUID": "0a1b2c3d4e5f60718293a4b5c6d7e8f9", "StudyInstanceUID": "f" * 32}
    path = dicom_factory(
        "vindr-like",
        modality="MG",
        photometric="MONOCHROME1",
        tags={**hashed, "SOPClassUID": uid},
        file_meta={"MediaStorageSOPClassUID": "1.2.3.4", "ImplementationClassUID": "1.2.3.4"},
        voi_lut=(0, 12, np.linspace(0, 4095, 4096).astype(int)),
    )
    [image] = decode_dicom(path, ImageOptions())
    assert image.attributes["sop_class_uid"] == uid
    assert image.attributes["photometric_interpretation"] == "MONOCHROME1"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("structured-report", "no pixel data (Basic Text SR Storage)"),
        ("rt-plan", "no pixel data (RT Plan Storage)"),
        ("waveform", "no pixel data (12-lead ECG Waveform Storage)"),
        ("dicomdir", "no pixel data (Media Storage Directory Storage)"),
        ("not-dicom", "not a DICOM file"),
        ("empty", "not a DICOM file"),
    ],
)
def test_files_without_an_image_are_read_errors_with_a_reason(case: str, reason: str, broken_dicoms: dict[str, Path]) -> None:
    with pytest.raises(SampleError) as err:
        decode_dicom(broken_dicoms[case], ImageOptions())
    assert err.value.stage == "read"
    assert reason in err.value.reason
    assert err.value.path == str(broken_dicoms[case])


def test_every_broken_case_is_a_sample_error_never_a_crash(broken_dicoms: dict[str, Path]) -> None:
    for name, path in broken_dicoms.items():
        with pytest.raises(SampleError) as err:
            decode_dicom(path, ImageOptions(frames="all"))
        assert err.value.stage in ("read", "decode") and err.value.reason, name


def test_truncated_pixel_data_is_a_decode_error(broken_dicoms: dict[str, Path]) -> None:
    with pytest.raises(SampleError) as err:
        decode_dicom(broken_dicoms["truncated"], ImageOptions())
    assert err.value.stage == "decode"


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEGLSLossless, JPEGBaseline8Bit])
def test_truncated_compressed_data_is_a_decode_error(syntax: str, dicom_factory: DicomFactory, tmp_path: Path) -> None:
    from medcat_data.mirror.synth.dicom import write_truncated

    bits = 8 if syntax == JPEGBaseline8Bit else 12
    whole = dicom_factory(f"trunc-{syntax}", rows=64, columns=64, bits_stored=bits, transfer_syntax=syntax)
    with pytest.raises(SampleError) as err:
        decode_dicom(write_truncated(whole, tmp_path / "cut.dcm", keep_fraction=0.7), ImageOptions())
    assert err.value.stage in ("read", "decode")


def test_dicom_without_preamble_is_recognised_and_decoded(no_preamble_dicom: Path, broken_dicoms: dict[str, Path]) -> None:
    assert is_dicom(no_preamble_dicom)
    assert not is_dicom(broken_dicoms["not-dicom"])
    [image] = decode_dicom(no_preamble_dicom, ImageOptions())
    assert (image.width, image.height) == (12, 16)


def test_missing_decoder_names_the_package_to_install(dicom_factory: DicomFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Availability is controlled by replacing the installed-plugin lookup, as if none were installed."""
    path = dicom_factory("j2k-missing", pixels=MINMAX_PIXELS, transfer_syntax=JPEG2000Lossless)
    monkeypatch.setattr(dependencies, "installed_decoders", lambda uid: ())
    with pytest.raises(SampleError) as err:
        decode_dicom(path, ImageOptions())
    assert err.value.stage == "decode"
    assert "pip install pylibjpeg pylibjpeg-openjpeg" in err.value.reason


def test_choose_decoder_prefers_the_measured_fastest_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dependencies.choose_decoder(JPEGBaseline8Bit) == "pillow"
    assert dependencies.choose_decoder(JPEG2000Lossless) == "pylibjpeg"
    assert dependencies.choose_decoder(JPEGLSLossless) == "pyjpegls"
    assert dependencies.choose_decoder("1.2.840.10008.1.2.1") == ""
    monkeypatch.setattr(dependencies, "installed_decoders", lambda uid: ("pylibjpeg",))
    assert dependencies.choose_decoder(JPEGLSLossless) == "pylibjpeg"
    monkeypatch.setattr(dependencies, "installed_decoders", lambda uid: ())
    with pytest.raises(MissingDependencyError, match="pylibjpeg-rle"):
        dependencies.choose_decoder(RLELossless)


def test_transfer_syntax_without_any_decoder_is_unsupported(dicom_factory: DicomFactory, tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="MPEG"):
        dependencies.installed_decoders("1.2.840.10008.1.2.4.102")  # MPEG-4 AVC/H.264
    source = dicom_factory("video-source", pixels=MINMAX_PIXELS)
    ds = pydicom.dcmread(source)
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"
    ds.PixelData = pydicom.encaps.encapsulate([b"\x00\x00\x00\x01" * 4])
    ds["PixelData"].is_undefined_length = True
    video = tmp_path / "video.dcm"
    ds.save_as(video, enforce_file_format=True)
    with pytest.raises(SampleError) as err:
        decode_dicom(video, ImageOptions())
    assert err.value.stage == "decode" and "no pixel decoder" in err.value.reason


def test_a_failing_preferred_plugin_falls_back_to_the_others(dicom_factory: DicomFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    path = dicom_factory("fallback", pixels=MINMAX_PIXELS, transfer_syntax=JPEG2000Lossless)
    monkeypatch.setattr(dependencies, "choose_decoder", lambda uid: "no-such-plugin")
    [image] = decode_dicom(path, ImageOptions())
    assert_matches(pixels_of(image.data), MINMAX_EXPECTED)


def _with_lut_item(source: Path, target: Path, keyword: str, descriptor: list[int] | None, data: list[int] | None) -> Path:
    """Copy ``source`` adding a one-item LUT sequence; ``None`` writes that attribute with an empty value."""
    ds = pydicom.dcmread(source)
    item = Dataset()
    item.add_new("LUTDescriptor", "US", descriptor)
    item.add_new("LUTData", "US", data)
    if keyword == "ModalityLUTSequence":
        item.ModalityLUTType = "HU"
    ds[keyword] = pydicom.DataElement(keyword, "SQ", PydicomSequence([item]))
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.mark.parametrize("keyword", ["ModalityLUTSequence", "VOILUTSequence"])
@pytest.mark.parametrize("empty", ["LUTDescriptor", "LUTData", "both"])
def test_an_incomplete_lut_item_is_ignored_with_a_warning_as_dcmtk_does(
    keyword: str, empty: str, dicom_factory: DicomFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Real files carry LUT items with an empty LUT Descriptor or LUT Data; the image converts as without them."""
    source = dicom_factory("lut-source", pixels=MINMAX_PIXELS, rescale=(2, -100), window=(150, 400))
    table = list(range(0, 4096, 16))
    descriptor = None if empty in ("LUTDescriptor", "both") else [len(table), 0, 16]
    data = None if empty in ("LUTData", "both") else table
    broken = _with_lut_item(source, tmp_path / f"{keyword}-{empty}.dcm", keyword, descriptor, data)
    assert keyword in pydicom.dcmread(broken)
    with caplog.at_level(logging.WARNING, logger="medcat_data.converters.codecs.dicom"):
        [image] = decode_dicom(broken, ImageOptions())
    [plain] = decode_dicom(source, ImageOptions())
    assert np.array_equal(pixels_of(image.data), pixels_of(plain.data))  # rescale and window still apply
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert broken.name in warning and "incomplete" in warning and ("LUTDescriptor" in warning or "LUTData" in warning)


def test_library_failures_say_what_failed_the_transfer_syntax_and_the_original_type(
    dicom_factory: DicomFactory, broken_dicoms: dict[str, Path], tmp_path: Path
) -> None:
    source = dicom_factory("lut-bits-source", pixels=MINMAX_PIXELS)
    # A complete Modality LUT with a 12-bit nominal depth (PS3.3 allows 8 or 16): pydicom fails inside.
    odd = _with_lut_item(source, tmp_path / "lut-12-bit.dcm", "ModalityLUTSequence", [256, 0, 12], list(range(256)))
    with pytest.raises(SampleError) as err:
        decode_dicom(odd, ImageOptions())
    assert err.value.stage == "pixels" and err.value.path == str(odd)
    assert err.value.reason.startswith("cannot map the MONOCHROME2 samples of frame 0")
    assert "transfer syntax Explicit VR Little Endian" in err.value.reason and "TypeError: " in err.value.reason
    with pytest.raises(SampleError) as err:
        decode_dicom(broken_dicoms["truncated"], ImageOptions())
    assert err.value.stage == "decode" and err.value.reason.startswith("cannot decode frame 0 (transfer syntax ")
    assert not err.value.reason.split(": ")[0].endswith(("Error", "Exception"))  # never a bare exception text
