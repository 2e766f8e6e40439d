"""Shared image encoding: lossless PNG for every layout, bit-depth conversion, resize geometry."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from medcat_data.converters.codecs.image import (
    EncodedImage,
    ImageOptions,
    encode_array,
    encode_png,
    resize,
    target_size,
    to_bit_depth,
)


def _random(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)


def _unfilter_png(data: bytes) -> tuple[dict[str, int], np.ndarray]:
    """Decode a PNG written by ``encode_png`` independently of Pillow (filter types 0 and 1)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8].decode()
        payload = data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind.encode() + payload)
        chunks[kind] = chunks.get(kind, b"") + payload
        pos += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks["IHDR"])
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[colour]
    bpp = channels * depth // 8
    rows = np.frombuffer(zlib.decompress(chunks["IDAT"]), np.uint8).reshape(height, width * bpp + 1)
    out = rows[:, 1:].copy()
    for r in range(height):
        assert rows[r, 0] in (0, 1)
        if rows[r, 0] == 1:
            for c in range(bpp, out.shape[1]):
                out[r, c] = (int(out[r, c]) + int(out[r, c - bpp])) % 256
    dtype = np.dtype(">u2") if depth == 16 else np.dtype(np.uint8)
    header = {"width": width, "height": height, "depth": depth, "channels": channels}
    return header, out.view(dtype).reshape(height, width, channels).astype(dtype.newbyteorder("="))


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((7, 5), np.uint8), ((7, 5), np.uint16), ((6, 9, 3), np.uint8), ((4, 3, 4), np.uint8), ((4, 3, 2), np.uint8), ((1, 1), np.uint8)],
)
def test_png_round_trips_exactly_through_pillow(shape: tuple[int, ...], dtype: type) -> None:
    pixels = _random(shape, dtype)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(pixels))))
    assert decoded.dtype == pixels.dtype
    assert np.array_equal(decoded, pixels)


def test_png_16_bit_rgb_round_trips_through_an_independent_decoder() -> None:
    pixels = _random((5, 4, 3), np.uint16, seed=2)
    header, decoded = _unfilter_png(encode_png(pixels))
    assert header == {"width": 4, "height": 5, "depth": 16, "channels": 3}
    assert np.array_equal(decoded, pixels)


def test_png_holds_no_metadata_chunks() -> None:
    data = encode_png(_random((3, 3), np.uint8))
    assert [data[12:16], data[-8:-4]] == [b"IHDR", b"IEND"]
    assert b"tEXt" not in data and b"iTXt" not in data and b"eXIf" not in data


def test_encode_array_returns_geometry_and_converts_bit_depth() -> None:
    pixels = np.array([[0, 128, 255]], dtype=np.uint8)
    image = encode_array(pixels, bit_depth=16, max_size=None)
    assert isinstance(image, EncodedImage)
    assert (image.format, image.width, image.height, image.scale, image.frame_index, dict(image.attributes)) == ("png", 3, 1, 1.0, None, {})
    assert np.asarray(Image.open(io.BytesIO(image.data))).tolist() == [[0, 128 * 257, 65535]]


def test_to_bit_depth_maps_full_ranges() -> None:
    assert to_bit_depth(np.array([0, 1, 255], np.uint8), 16).tolist() == [0, 257, 65535]
    # 16 -> 8 rounds v*255/65535: 128 -> 0.498 -> 0, 129 -> 0.502 -> 1, 32768 -> 127.5 -> 128
    assert to_bit_depth(np.array([0, 128, 129, 32768, 65535], np.uint16), 8).tolist() == [0, 0, 1, 128, 255]


@pytest.mark.parametrize("bad", [np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int16), np.zeros(4, np.uint8)])
def test_encode_array_rejects_arrays_that_are_not_images(bad: np.ndarray) -> None:
    with pytest.raises(TypeError):
        encode_array(bad, bit_depth=8, max_size=None)


@pytest.mark.parametrize(
    ("size", "max_size", "expected"),
    [
        ((100, 200), 50, (25, 50, 0.25)),
        ((200, 100), 50, (50, 25, 0.25)),
        ((300, 300), 100, (100, 100, 1 / 3)),
        ((101, 2000), 100, (5, 100, 0.05)),  # 5.05 rounds to 5
        ((40, 30), 100, (40, 30, 1.0)),  # never enlarged
        ((40, 30), None, (40, 30, 1.0)),
        ((3000, 1), 10, (10, 1, 10 / 3000)),  # the short side never drops below 1
    ],
)
def test_target_size_keeps_aspect_and_never_upscales(size: tuple[int, int], max_size: int | None, expected: tuple) -> None:
    assert target_size(*size, max_size) == pytest.approx(expected)


def test_resize_keeps_dtype_and_16_bit_precision() -> None:
    ramp = np.tile(np.arange(0, 65536, 256, dtype=np.uint16), (64, 1))  # 64 x 256
    small, scale = resize(ramp, max_size=128, resample="bilinear")
    assert small.dtype == np.uint16 and small.shape == (32, 128) and scale == 0.5
    assert len(np.unique(small)) > 120  # not collapsed to 8 bits


def test_nearest_resize_keeps_label_values() -> None:
    mask = np.zeros((40, 40), np.uint8)
    mask[10:30, 10:30] = 3
    small, _ = resize(mask, max_size=20, resample="nearest")
    assert set(np.unique(small).tolist()) == {0, 3}


def test_image_options_defaults() -> None:
    assert ImageOptions() == ImageOptions(window="auto", bit_depth=8, max_size=None, frames="first", output_format=None, resample="lanczos")
