"""Load PNG, JPEG, TIFF and BMP files: pass their bytes through, or re-encode when asked to.

Format knowledge only: reads one local file and returns one ``EncodedImage``; anything wrong
with the file raises ``SampleError``. The bytes are kept verbatim (no re-encoding, no quality
loss, EXIF kept as is) unless ``ImageOptions`` asks for a smaller size or another format. When
re-encoding, the EXIF orientation is applied first, so the output is upright and sizes and
``scale`` refer to the upright image. The source bit depth is kept (16-bit PNG/TIFF stay 16-bit
in PNG output); ``ImageOptions.bit_depth`` and ``window`` apply to DICOM only.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions, encode_array, resize, target_size, to_bit_depth
from medcat_data.errors import SampleError

log = logging.getLogger(__name__)

# The formats medcat accepts as images, by extension (lower case). Frozen: the writer stores
# these formats as they are, and Hugging Face's Image feature decodes all of them with Pillow.
RASTER_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
_PIL_FORMATS = {"PNG": "png", "JPEG": "jpeg", "MPO": "jpeg", "TIFF": "tiff", "BMP": "bmp"}
JPEG_QUALITY = 95


def load_raster(path: Path, options: ImageOptions, *, verified: bool = False) -> EncodedImage:
    """Return the image in ``path``, verbatim or re-encoded as ``options`` asks.

    The pixels are decoded once (JPEG at reduced scale) so that a truncated or corrupt file is
    reported here rather than when the dataset is read. ``verified=True`` says the bytes are
    known to be upstream's (checked against a published checksum at fetch): a passed-through
    JPEG or PNG then gets a structural check only (header parsed, end marker present), which
    catches a file that is no image or was cut short without paying for entropy decoding.

    Raises:
        SampleError: ``read`` (not an image, unsupported format), ``decode`` (corrupt or
            truncated data) or ``encode``.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:  # strerror: the exception's text would repeat the (absolute) path
        raise SampleError(path, "read", f"not a readable image: {err.strerror or type(err).__name__}") from err
    return load_raster_bytes(data, path, options, verified=verified)


def load_raster_bytes(data: bytes, label: str | Path, options: ImageOptions, *, verified: bool = False) -> EncodedImage:
    """Return the image held in ``data`` (e.g. a zip member), verbatim or re-encoded; see ``load_raster``.

    ``label`` names the image in errors (a path, or ``archive.zip:member``); messages name it by
    its file name, never by the in-memory buffer Pillow read (whose repr changes from run to run).

    Raises:
        SampleError: as ``load_raster``.
    """
    path = label
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        shown = Path(label).name if Path(label).is_absolute() else str(label)
        raise SampleError(path, "read", f"not a readable image: cannot identify image file {shown!r}") from None
    except OSError as err:
        raise SampleError(path, "read", f"not a readable image: {err}") from err
    fmt = _PIL_FORMATS.get(image.format or "")
    if fmt is None:
        raise SampleError(path, "read", f"unsupported image format {image.format!r}; expected PNG, JPEG, TIFF or BMP")
    width, height = image.size
    # Pillow raises many exception types on damaged files (OSError, struct.error, EOFError, ...):
    # anything raised while reading the pixels is this file's fault, so it becomes a SampleError.
    try:
        # Without --max-size nothing is resized, so the EXIF orientation (which makes Pillow
        # read a PNG to its end) is only needed when re-encoding.
        scale = 1.0 if options.max_size is None else target_size(*_upright_size(image), options.max_size)[2]
        wanted = options.output_format or fmt
        if scale == 1.0 and wanted == fmt:
            if not (verified and _ends_whole(data, fmt)):
                _check_decodes(image, fmt)
            return EncodedImage(data, fmt, width, height, width, height, 1.0)
        image.load()
        upright = ImageOps.exif_transpose(image)
    except Exception as err:
        raise SampleError(path, "decode", f"corrupt or truncated image data: {type(err).__name__}: {err}") from err
    try:
        return _reencode(upright, wanted, options)
    except Exception as err:
        raise SampleError(path, "encode", f"{type(err).__name__}: {err}") from err


def _upright_size(image: Image.Image) -> tuple[int, int]:
    """Return the size after EXIF orientation (5-8 swap width and height)."""
    orientation = image.getexif().get(0x0112, 1)
    width, height = image.size
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _ends_whole(data: bytes, fmt: str) -> bool:
    """Tell whether a JPEG or PNG ends with its end marker (a little padding after it allowed).

    ``False`` for other formats and for a missing marker: the caller then decodes, which names the
    damage precisely.
    """
    tail = data[-64:]
    if fmt == "jpeg":
        return b"\xff\xd9" in tail
    if fmt == "png":
        return b"IEND\xaeB`\x82" in tail
    return False


def _check_decodes(image: Image.Image, fmt: str) -> None:
    """Decode the pixels to prove the file is whole; JPEG at 1/8 scale, which still reads every byte."""
    if fmt == "jpeg":
        image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
    image.load()


def _reencode(image: Image.Image, fmt: str, options: ImageOptions) -> EncodedImage:
    width, height = image.size
    pixels = _as_array(image)
    if fmt == "png":
        bit_depth = 16 if pixels.dtype == np.uint16 else 8
        return encode_array(pixels, bit_depth=bit_depth, max_size=options.max_size, resample=options.resample)
    small, scale = resize(pixels, max_size=options.max_size, resample=options.resample)
    small = to_bit_depth(small, 8)
    if small.ndim == 3:  # JPEG has no alpha: keep grey or RGB and drop the alpha channel
        small = small[..., 0] if small.shape[2] == 2 else small[..., :3]
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=JPEG_QUALITY)
    return EncodedImage(buffer.getvalue(), "jpeg", small.shape[1], small.shape[0], width, height, scale)


def _as_array(image: Image.Image) -> np.ndarray:
    """Return the image as a uint8/uint16 array with 1-4 channels, keeping 16-bit precision."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(image)
    if mode in ("I;16", "I;16B", "I;16L"):
        return np.asarray(image).astype(np.uint16)
    if mode in ("I", "F"):
        values = np.asarray(image)
        return np.clip(np.rint(values), 0, 65535).astype(np.uint16)
    if mode == "1":
        return np.asarray(image.convert("L"))
    has_alpha = mode in ("PA",) or (mode == "P" and "transparency" in image.info)
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))
