"""Write seeded, valid synthetic DICOM files for tests and dataset replicas; never real patient data.

``make_dicom`` writes a Part 10 file (preamble, ``DICM``, file meta) for any photometric
interpretation and transfer syntax that something installed here can encode: native little
endian (implicit and explicit), explicit big endian, deflated, RLE Lossless (pydicom),
JPEG 2000 lossless and lossy (pylibjpeg-openjpeg), JPEG-LS (pyjpegls, when installed), JPEG
baseline 8-bit (Pillow, wrapped here), and JPEG Extended 12-bit and JPEG Lossless process 14
(small encoders in ``mirror/synth/jpeg.py``). Other syntaxes raise ``UnsupportedFormatError`` naming what is
missing. ``make_sr`` writes a structured report (no pixel data) and the ``write_*`` helpers
make the broken cases a converter must survive.

Pixel values given in ``pixels`` are written as *stored* samples with no conversion: for
``YBR_FULL`` they are Y, Cb, Cr; for ``PALETTE COLOR`` they are indices into the palette.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    UID,
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSNearLossless,
    PYDICOM_IMPLEMENTATION_UID,
)

from medcat_data.errors import UnsupportedFormatError

Photometric = Literal["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR"]

SOP_CLASS_BY_MODALITY: dict[str, str] = {
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image Storage - For Presentation
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "US": "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "OT": "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
}
ULTRASOUND_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"
ECG_WAVEFORM = "1.2.840.10008.5.1.4.1.1.9.1.1"  # 12-lead ECG Waveform Storage
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR
_NATIVE = {ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian}


def seeded_uid(rng: random.Random) -> str:
    """Return a UUID-derived UID (``2.25.<128-bit integer>``) drawn from ``rng``."""
    return f"2.25.{rng.getrandbits(128)}"


def make_dicom(
    path: Path,
    *,
    rows: int = 64,
    columns: int = 48,
    bits_stored: int = 12,
    photometric: Photometric = "MONOCHROME2",
    transfer_syntax: str = ExplicitVRLittleEndian,
    frames: int = 1,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    voi_lut: tuple[int, int, np.ndarray] | None = None,
    modality: str = "DX",
    tags: Mapping[str, Any] | None = None,
    pixels: np.ndarray | None = None,
    signed: bool = False,
    file_meta: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> Path:
    """Write one synthetic DICOM image to ``path`` and return the path.

    Args:
        path: Output file; parent folders are created.
        rows: Image height, ignored when ``pixels`` is given.
        columns: Image width, ignored when ``pixels`` is given.
        bits_stored: Bits per sample (allocated is 8 up to 8 bits, else 16).
        photometric: Photometric Interpretation; colour cases are 8-bit with 3 samples.
        transfer_syntax: UID to write; compressed syntaxes are encoded here (see module docs).
        frames: Number of frames; ``pixels`` then has a leading frame axis.
        rescale: ``(slope, intercept)`` written as Rescale Slope / Intercept.
        window: ``(center, width)`` written as Window Center / Width.
        voi_lut: ``(first_mapped, bits, table)`` written as a one-item VOI LUT Sequence.
        modality: Modality; also picks the SOP Class UID unless ``tags`` sets one.
        tags: Extra attributes by keyword (``ViewPosition``, ``ImageLaterality``, UIDs, ...);
            they win over everything generated.
        pixels: Stored sample values; seeded content when ``None``.
        signed: Pixel Representation 1 (two's complement) for greyscale.
        file_meta: File meta attributes by keyword, applied last (VinDr-Mammo, for one, overwrites
            the Media Storage SOP Class UID and Implementation Class UID with ``1.2.3.4``).
        seed: Seed of the generated UIDs and pixel content.

    Raises:
        UnsupportedFormatError: nothing installed here can encode ``transfer_syntax``.
    """
    rng = random.Random(seed)
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    if (colour and photometric != "PALETTE COLOR") or (photometric == "PALETTE COLOR" and pixels is None):
        bits_stored = 8
    if pixels is None:
        pixels = _content(rows, columns, frames, bits_stored, photometric, signed, seed)
    pixels = np.asarray(pixels)
    frame_shape = pixels.shape[1:] if frames > 1 else pixels.shape
    ds = _base_dataset(rng, modality, frames, transfer_syntax)
    ds.Rows, ds.Columns = int(frame_shape[0]), int(frame_shape[1])
    ds.SamplesPerPixel = 3 if colour and photometric != "PALETTE COLOR" else 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits_stored <= 8 else 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = int(signed)
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if photometric == "PALETTE COLOR":
        _add_palette(ds)
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = (f"{v:g}" for v in rescale)
        ds.RescaleType = "US"
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = (f"{v:g}" for v in window)
    if voi_lut is not None:
        ds.VOILUTSequence = Sequence([_lut_item(*voi_lut)])
    for keyword, value in (tags or {}).items():
        setattr(ds, keyword, value)
    if "SOPClassUID" in (tags or {}):
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    _set_pixels(ds, pixels, UID(transfer_syntax))
    for keyword, value in (file_meta or {}).items():
        setattr(ds.file_meta, keyword, value)
    return _save(ds, Path(path))


def make_sr(path: Path, *, sop_class: str = BASIC_TEXT_SR, seed: int = 0) -> Path:
    """Write a DICOM object without pixel data: a Basic Text SR unless ``sop_class`` says otherwise.

    Use ``RT_PLAN``, ``ECG_WAVEFORM`` or ``MEDIA_STORAGE_DIRECTORY`` (a DICOMDIR, whose dataset
    has no SOP Class UID of its own) for the other kinds of file that hold no image.
    """
    rng = random.Random(seed)
    modality = {RT_PLAN: "RTPLAN", ECG_WAVEFORM: "ECG"}.get(sop_class, "SR")
    ds = _base_dataset(rng, modality, 1, ExplicitVRLittleEndian)
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    if sop_class == MEDIA_STORAGE_DIRECTORY:
        for keyword in ("SOPClassUID", "SOPInstanceUID", "Modality", "PatientID", "PatientName"):
            del ds[keyword]
        ds.FileSetID = "SYNTH"
        ds.DirectoryRecordSequence = Sequence([])
    else:
        ds.SOPClassUID = UID(sop_class)
    if sop_class == BASIC_TEXT_SR:
        ds.ValueType = "CONTAINER"
        ds.CompletionFlag = "COMPLETE"
        ds.VerificationFlag = "UNVERIFIED"
    return _save(ds, Path(path))


def write_truncated(source: Path, path: Path, keep_fraction: float = 0.6) -> Path:
    """Copy ``source`` to ``path`` cut to ``keep_fraction`` of its bytes (pixel data cut short)."""
    data = Path(source).read_bytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data[: max(200, int(len(data) * keep_fraction))])
    return Path(path)


def write_not_dicom(path: Path, text: str = "this is not a DICOM file\n") -> Path:
    """Write plain text under a DICOM-looking name."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text * 20)
    return Path(path)


def write_without_preamble(source: Path, path: Path) -> Path:
    """Copy a Part 10 ``source`` to ``path`` without the 128-byte preamble and ``DICM`` prefix."""
    data = Path(source).read_bytes()
    if data[128:132] != b"DICM":
        raise UnsupportedFormatError(f"{source} is not a Part 10 file with a preamble")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data[132:])
    return Path(path)


def _base_dataset(rng: random.Random, modality: str, frames: int, transfer_syntax: str) -> Dataset:
    sop_class = SOP_CLASS_BY_MODALITY.get(modality, SOP_CLASS_BY_MODALITY["OT"])
    if frames > 1 and modality == "US":
        sop_class = ULTRASOUND_MULTIFRAME
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(sop_class)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(seeded_uid(rng))
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax)
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = seeded_uid(rng)
    ds.SeriesInstanceUID = seeded_uid(rng)
    ds.Modality = modality
    ds.PatientID = f"SYNTH{rng.randrange(10**6):06d}"
    ds.PatientName = "Synthetic^Patient"
    ds.Manufacturer = "medcat synthetic"
    ds.InstanceNumber = 1
    return ds


def _content(rows: int, columns: int, frames: int, bits: int, photometric: str, signed: bool, seed: int) -> np.ndarray:
    """Seeded, smooth-plus-noise content in the stored range (radiograph-like, compresses like one)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    shape = (frames, rows, columns) if frames > 1 else (rows, columns)
    base = 0.5 + 0.3 * np.sin(x / max(columns, 1) * 3.1) * np.cos(y / max(rows, 1) * 2.3)
    base = base + 0.15 * np.exp(-(((x - columns * 0.45) ** 2 + (y - rows * 0.55) ** 2) / (2 * (0.2 * max(rows, columns)) ** 2)))
    if frames > 1:
        base = base[np.newaxis] * np.linspace(0.9, 1.0, frames)[:, np.newaxis, np.newaxis]
    noisy = base + rng.normal(0.0, 0.004, shape)
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        top = 2**bits - 1
        values = np.clip(np.rint(noisy * top), 0, top)
        if signed:
            values -= 2 ** (bits - 1)
        return values.astype(np.int16 if signed else (np.uint8 if bits <= 8 else np.uint16))
    if photometric == "PALETTE COLOR":
        return np.clip(np.rint(noisy * 255), 0, 255).astype(np.uint8)
    rgb = np.stack([noisy, 1 - noisy, np.roll(noisy, columns // 3, axis=-1)], axis=-1)
    rgb = np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        from pydicom.pixels import convert_color_space

        return convert_color_space(rgb, "RGB", "YBR_FULL", per_frame=frames > 1)
    return rgb


def _add_palette(ds: Dataset) -> None:
    """Add a 256-entry, 16-bit palette: red ramps up, green ramps down, blue is constant half."""
    ramp = np.arange(256, dtype=np.uint16) * 257
    tables = {"Red": ramp, "Green": ramp[::-1].copy(), "Blue": np.full(256, 32768, dtype=np.uint16)}
    for colour, table in tables.items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", table.astype("<u2").tobytes())


def _lut_item(first_mapped: int, bits: int, table: np.ndarray) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [len(table) % 65536, first_mapped, bits]
    item["LUTDescriptor"].VR = "US"
    item.LUTData = [int(v) for v in table]
    item["LUTData"].VR = "US"
    item.LUTExplanation = "synthetic"
    return item


def _set_pixels(ds: Dataset, pixels: np.ndarray, transfer_syntax: UID) -> None:
    if transfer_syntax in _NATIVE:
        ds.PixelData = _native_bytes(ds, pixels, transfer_syntax)
        ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
        return
    if transfer_syntax == JPEGBaseline8Bit:
        _set_encapsulated(ds, [_jpeg_baseline(ds, frame) for frame in _frames(ds, pixels)])
        return
    if transfer_syntax == JPEGExtended12Bit:
        from medcat_data.mirror.synth.jpeg import encode_extended_jpeg

        if ds.BitsStored != 12 or ds.SamplesPerPixel != 1 or ds.PixelRepresentation:
            raise UnsupportedFormatError("the synthetic JPEG Extended encoder writes unsigned 12-bit greyscale only")
        _set_encapsulated(ds, [encode_extended_jpeg(frame) for frame in _frames(ds, pixels)])
        return
    if transfer_syntax in (JPEGLossless, JPEGLosslessSV1):
        from medcat_data.mirror.synth.jpeg import encode_lossless_jpeg

        predictor = 1 if transfer_syntax == JPEGLosslessSV1 else 6
        frames = [encode_lossless_jpeg(frame, ds.BitsStored, predictor) for frame in _frames(ds, pixels)]
        _set_encapsulated(ds, frames)
        return
    from pydicom.pixels import get_encoder

    try:
        encoder = get_encoder(transfer_syntax)
    except NotImplementedError as err:
        raise UnsupportedFormatError(f"no encoder here for {transfer_syntax.name}; cannot synthesize it") from err
    if not encoder.is_available:
        raise UnsupportedFormatError(
            f"no installed encoder for {transfer_syntax.name}: {'; '.join(encoder.missing_dependencies)}"
        )
    lossy_settings: dict[str, dict[str, Any]] = {JPEG2000: {"j2k_cr": [20]}, JPEGLSNearLossless: {"jls_error": 2}}
    kwargs = lossy_settings.get(transfer_syntax, {})
    ds.compress(transfer_syntax, pixels, generate_instance_uid=False, **kwargs)


def _frames(ds: Dataset, pixels: np.ndarray) -> list[np.ndarray]:
    return list(pixels) if int(ds.get("NumberOfFrames", 1)) > 1 else [pixels]


def _native_bytes(ds: Dataset, pixels: np.ndarray, transfer_syntax: UID) -> bytes:
    dtype = np.dtype(f"{'i' if ds.PixelRepresentation else 'u'}{ds.BitsAllocated // 8}")
    if ds.PhotometricInterpretation == "YBR_FULL_422":
        return _pack_ybr422(pixels)
    data = pixels.astype(dtype.newbyteorder(">" if transfer_syntax == ExplicitVRBigEndian else "<"))
    raw = data.tobytes()
    return raw + b"\x00" * (len(raw) % 2)


def _pack_ybr422(pixels: np.ndarray) -> bytes:
    """Pack full-resolution YCbCr as YBR_FULL_422 (Y1 Y2 Cb Cr; chroma of the pair's first pixel)."""
    if pixels.shape[-2] % 2:
        raise UnsupportedFormatError("YBR_FULL_422 needs an even number of columns")
    y = pixels[..., 0]
    packed = np.empty(pixels.shape[:-2] + (pixels.shape[-2] // 2, 4), dtype=np.uint8)
    packed[..., 0] = y[..., 0::2]
    packed[..., 1] = y[..., 1::2]
    packed[..., 2] = pixels[..., 0::2, 1]
    packed[..., 3] = pixels[..., 0::2, 2]
    return packed.tobytes()


def _jpeg_baseline(ds: Dataset, frame: np.ndarray) -> bytes:
    """Encode one 8-bit frame with Pillow (libjpeg): greyscale, or RGB stored as YBR_FULL_422."""
    from PIL import Image

    if ds.BitsAllocated != 8:
        raise UnsupportedFormatError("JPEG baseline needs 8-bit samples")
    buffer = io.BytesIO()
    if ds.SamplesPerPixel == 1:
        Image.fromarray(frame.astype(np.uint8)).save(buffer, "JPEG", quality=95)
    elif ds.PhotometricInterpretation == "RGB":
        Image.fromarray(frame.astype(np.uint8)).save(buffer, "JPEG", quality=95, keep_rgb=True, subsampling=0)
    else:
        # Pillow converts RGB to YCbCr with 4:2:2 subsampling, which is what YBR_FULL_422 declares.
        from pydicom.pixels import convert_color_space

        ds.PhotometricInterpretation = "YBR_FULL_422"
        rgb = convert_color_space(frame, "YBR_FULL", "RGB")
        Image.fromarray(rgb).save(buffer, "JPEG", quality=95, subsampling=1)
    return buffer.getvalue()


def _set_encapsulated(ds: Dataset, frames: list[bytes]) -> None:
    ds.PixelData = encapsulate(frames)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.LossyImageCompression = "01" if ds.file_meta.TransferSyntaxUID in (JPEGBaseline8Bit, JPEGExtended12Bit) else "00"


def _save(ds: Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path
