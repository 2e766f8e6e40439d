"""Decode DICOM files into display-ready PNG images plus a short whitelist of attributes.

Format knowledge only: reads one local file, returns ``EncodedImage`` values, and raises
``SampleError`` for anything wrong with that file. It never writes files, never touches the
network and copies nothing of the header beyond ``DICOM_ATTRIBUTES``.

Greyscale pixels go through the standard order (PS3.4 N.2): modality LUT (Rescale Slope and
Intercept, or the Modality LUT Sequence), then VOI (``ImageOptions.window``), then MONOCHROME1
inversion so that higher output is always brighter. A Modality or VOI LUT Sequence whose item is
incomplete (no item attributes, an empty LUT Descriptor or LUT Data) is ignored with a warning, as
dcmtk does, and the image is mapped with the rescale values resp. the window or min-max. Colour pixels are converted from YBR to RGB
and palette colour is expanded by pydicom. Steps are computed once per distinct stored value
(a lookup table of at most 65,536 entries, built with pydicom's own LUT and windowing helpers)
and then applied to the image in one indexing pass, so the full image is never copied to float.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medcat_data.converters.codecs import dependencies
from medcat_data.converters.codecs.greyscale import grey_to_display
from medcat_data.converters.codecs.image import EncodedImage, ImageOptions, encode_array, to_bit_depth
from medcat_data.errors import MedcatError, SampleError

log = logging.getLogger(__name__)

DICOM_ATTRIBUTES: tuple[str, ...] = (
    "modality",
    "view_position",
    "laterality",
    "photometric_interpretation",
    "rows",
    "columns",
    "pixel_spacing",
    "bits_stored",
    "manufacturer",
    "sop_class_uid",
    "transfer_syntax_uid",
    "frame_index",
)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420", "PALETTE COLOR"}
_GREY = {"MONOCHROME1", "MONOCHROME2"}


def is_dicom(path: Path) -> bool:
    """Return whether ``path`` holds a DICOM file (Part 10 with ``DICM`` at byte 128, or a bare dataset).

    A file without the 128-byte preamble is accepted when it starts with a group 0002 or 0008
    element and pydicom can read a SOP Class UID or a transfer syntax from it.
    """
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    if len(head) == 132 and head[128:132] == b"DICM":
        return True
    if len(head) < 8 or int.from_bytes(head[0:2], "little") not in (0x0002, 0x0008):
        return False
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=True)
    except Exception:  # any parse failure means "not DICOM" here
        return False
    return "SOPClassUID" in ds or "TransferSyntaxUID" in getattr(ds, "file_meta", {})


def decode_dicom(path: Path, options: ImageOptions) -> list[EncodedImage]:
    """Decode ``path`` and return one PNG per frame (``frames="all"``) or the first only.

    Single-frame files give ``frame_index=None``; frames of a multi-frame file carry their
    0-based index, in ``frame_index`` and in the ``frame_index`` attribute.

    Raises:
        SampleError: ``read`` (not DICOM, unreadable header, no pixel data), ``decode`` (no
            installed decoder, corrupt or truncated pixel data), ``pixels`` (invalid LUT or
            window, unsupported photometric interpretation) or ``encode``. A failure inside a
            library says what was being done, the transfer syntax and the original exception type.
    """
    ds = _read(path, stop_before_pixels=False)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise SampleError(path, "read", f"no pixel data ({_sop_class_name(ds)})")
    transfer_syntax = _transfer_syntax(ds)
    try:
        plugin = dependencies.choose_decoder(transfer_syntax)
    except MedcatError as err:
        raise SampleError(path, "decode", str(err)) from err
    n_frames = _frame_count(path, ds)
    _drop_incomplete_luts(path, ds)
    indices = range(n_frames) if options.frames == "all" else range(1)
    images = []
    for index in indices:
        pixels = _decode_frame(path, ds, index, plugin)
        frame_index = index if n_frames > 1 else None
        display = _display_pixels(path, ds, pixels, index, options)
        del pixels
        try:
            encoded = encode_array(display, bit_depth=options.bit_depth, max_size=options.max_size, resample=options.resample)
        except Exception as err:
            what = f"cannot encode frame {index} ({display.shape[1]}x{display.shape[0]} {display.dtype}) as PNG"
            raise SampleError(path, "encode", _failure(what, ds, err)) from err
        try:
            attributes = _attributes(ds, frame_index)
        except Exception as err:  # a malformed header value; the pixels were fine
            raise SampleError(path, "read", f"unreadable attribute: {type(err).__name__}: {err}") from err
        images.append(replace(encoded, frame_index=frame_index, attributes=attributes))
    return images


def _read(path: Path, *, stop_before_pixels: bool) -> Dataset:
    if not is_dicom(path):
        raise SampleError(path, "read", "not a DICOM file (no 'DICM' marker at byte 128 and no DICOM header)")
    try:
        ds = pydicom.dcmread(path, force=True, stop_before_pixels=stop_before_pixels)
    except Exception as err:
        raise SampleError(path, "read", f"unreadable DICOM header: {_exception_text(err)}") from err
    return ds


def _transfer_syntax(ds: Dataset) -> UID:
    """Return the file's transfer syntax, inferring it for bare datasets without file meta."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return UID(meta.TransferSyntaxUID)
    implicit, little = ds.original_encoding
    uid = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
    ds.file_meta = meta if meta is not None else pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = uid
    return uid


def _sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID") or getattr(ds, "file_meta", Dataset()).get("MediaStorageSOPClassUID")
    if not uid:
        return "unknown SOP class"
    uid = UID(str(uid))
    return uid.name if uid.name != str(uid) else f"SOP class {uid}"


def _frame_count(path: Path, ds: Dataset) -> int:
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError) as err:
        raise SampleError(path, "read", f"invalid Number of Frames {ds.get('NumberOfFrames')!r}") from err


def _decode_frame(path: Path, ds: Dataset, index: int, plugin: str) -> np.ndarray:
    """Decode one frame, trying the preferred plugin first and then any other installed one."""
    attempts = [plugin, ""] if plugin else [""]
    last: Exception | None = None
    for attempt in attempts:
        try:
            return pydicom.pixels.pixel_array(ds, index=index, decoding_plugin=attempt)
        except Exception as err:  # pydicom raises ValueError/RuntimeError/KeyError... per plugin
            last = err
    assert last is not None
    raise SampleError(path, "decode", _failure(f"cannot decode frame {index}", ds, last)) from last


def _display_pixels(path: Path, ds: Dataset, pixels: np.ndarray, index: int, options: ImageOptions) -> np.ndarray:
    """Map decoded samples to full-range uint8/uint16 output pixels."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    try:
        if photometric == "PALETTE COLOR":
            rgb = pydicom.pixels.apply_color_lut(pixels, ds)
            return _full_range(rgb, 8 * rgb.dtype.itemsize, options.bit_depth)
        if photometric in _COLOUR or (pixels.ndim == 3 and photometric not in _GREY):
            # pixel_array() already converted YBR_* to RGB (raw=False)
            return _full_range(pixels, int(ds.get("BitsStored", 8 * pixels.dtype.itemsize)), options.bit_depth)
        if photometric not in _GREY:
            raise SampleError(path, "pixels", f"unsupported Photometric Interpretation {photometric!r}")
        return grey_to_display(pixels, _frame_parameters(ds, index), options)
    except MedcatError as err:
        raise SampleError(path, "pixels", err.message if not isinstance(err, SampleError) else err.reason) from err
    except Exception as err:
        what = f"cannot map the {photometric} samples of frame {index} to display levels"
        raise SampleError(path, "pixels", _failure(what, ds, err)) from err


def _failure(what: str, ds: Dataset, err: BaseException) -> str:
    """Describe a failure inside a library: what was being done, the transfer syntax, the original error.

    pydicom and the decoder plugins raise ``TypeError``, ``KeyError`` ... whose text alone
    (``'NoneType' object is not subscriptable``) tells a user nothing.
    """
    uid = getattr(ds, "file_meta", Dataset()).get("TransferSyntaxUID")
    syntax = f"transfer syntax {UID(str(uid)).name}" if uid else "transfer syntax unknown"
    return f"{what} ({syntax}): {_exception_text(err)}"


def _exception_text(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


_LUT_SEQUENCES = (
    ("ModalityLUTSequence", "Modality LUT Sequence", "Rescale Slope/Intercept (or none)"),
    ("VOILUTSequence", "VOI LUT Sequence", "the window or min-max"),
)


def _drop_incomplete_luts(path: Path, ds: Dataset) -> None:
    """Delete a Modality or VOI LUT Sequence whose first item is incomplete, with a warning.

    Real files carry such items (an empty LUT Descriptor or LUT Data); dcmtk ignores them with a
    warning and so do we, mapping the image as it would be mapped without the sequence.
    """
    for keyword, name, fallback in _LUT_SEQUENCES:
        sequence = ds.get(keyword)
        problem = _lut_item_problem(sequence[0]) if sequence else None
        if problem:
            log.warning("%s: ignoring the incomplete %s (%s), as dcmtk does; using %s", path, name, problem, fallback)
            del ds[keyword]


def _lut_item_problem(item: Dataset) -> str | None:
    """Return what makes a LUT item unusable (empty LUT Descriptor or LUT Data), or None."""
    empty = [k for k in ("LUTDescriptor", "LUTData") if k not in item or item[k].is_empty]
    if empty:
        return "empty " + " and ".join(empty)
    if item["LUTDescriptor"].VM != 3:
        return f"LUTDescriptor with {item['LUTDescriptor'].VM} value(s), not 3"
    return None


def _full_range(pixels: np.ndarray, bits_stored: int, bit_depth: int) -> np.ndarray:
    """Scale colour samples of ``bits_stored`` bits to the full range of ``bit_depth`` bits."""
    if pixels.dtype == np.uint8 and bits_stored == 8:
        return to_bit_depth(pixels, bit_depth)
    if pixels.dtype == np.uint16 and bits_stored == 16:
        return to_bit_depth(pixels, bit_depth)
    top = float(2**bits_stored - 1)
    out_max = float(2**bit_depth - 1)
    scaled = np.rint(np.clip(pixels, 0, top).astype(np.float32) * np.float32(out_max / top))
    return scaled.astype(np.uint8 if bit_depth == 8 else np.uint16)


def _frame_parameters(ds: Dataset, index: int) -> Dataset:
    """Return the modality/VOI parameters for frame ``index`` as a small flat dataset.

    Enhanced multi-frame objects keep rescale and window values in the Shared or Per-frame
    Functional Groups (Pixel Value Transformation and Frame VOI LUT macros); those win over the
    top-level attributes, per-frame over shared.
    """
    params = Dataset()
    params.file_meta = getattr(ds, "file_meta", pydicom.dataset.FileMetaDataset())
    params.set_original_encoding(*ds.original_encoding)
    for keyword in (
        "PhotometricInterpretation",
        "BitsStored",
        "BitsAllocated",
        "PixelRepresentation",
        "RescaleSlope",
        "RescaleIntercept",
        "ModalityLUTSequence",
        "WindowCenter",
        "WindowWidth",
        "VOILUTFunction",
        "VOILUTSequence",
    ):
        if keyword in ds:
            params[keyword] = ds[keyword]
    for groups_keyword, item_index in (("SharedFunctionalGroupsSequence", 0), ("PerFrameFunctionalGroupsSequence", index)):
        groups = ds.get(groups_keyword)
        if not groups or item_index >= len(groups):
            continue
        for macro in ("PixelValueTransformationSequence", "FrameVOILUTSequence"):
            item = groups[item_index].get(macro)
            if item:
                for element in item[0]:
                    params[element.tag] = element
    return params


def _attributes(ds: Dataset, frame_index: int | None) -> dict[str, Any]:
    meta = getattr(ds, "file_meta", Dataset())
    spacing = ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")
    sop_class = ds.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID")
    transfer_syntax = meta.get("TransferSyntaxUID")
    return {
        "modality": _text(ds.get("Modality")),
        "view_position": _text(ds.get("ViewPosition")),
        "laterality": _text(ds.get("ImageLaterality") or ds.get("Laterality")),
        "photometric_interpretation": _text(ds.get("PhotometricInterpretation")),
        "rows": _int(ds.get("Rows")),
        "columns": _int(ds.get("Columns")),
        "pixel_spacing": _spacing(spacing),
        "bits_stored": _int(ds.get("BitsStored")),
        "manufacturer": _text(ds.get("Manufacturer")),
        "sop_class_uid": _text(sop_class),
        "transfer_syntax_uid": _text(transfer_syntax),
        "frame_index": frame_index,
    }


def _spacing(value: Any) -> list[float] | None:
    """Return Pixel Spacing as ``[row, column]`` in mm, or ``None`` when absent or malformed."""
    try:
        pair = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return pair if len(pair) == 2 else None


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
