"""Encode small greyscale JPEGs that no installed package can write, for synthetic DICOM.

Hospital archives are full of JPEG Lossless (process 14, DICOM 1.2.840.10008.1.2.4.57 and .70) and
12-bit JPEG Extended (process 4, .51), yet no encoder installed here writes either, so the
synthetic factory carries two deliberately plain encoders written from ITU T.81: one component,
one scan, no restart intervals, and fixed Huffman tables in which every symbol has a code of the
same length (valid, just not optimal). They are pure Python and meant for test images of a few
thousand pixels, not for speed.

- ``encode_lossless_jpeg``: annex H (predictors 1-7, point transform 0); exact.
- ``encode_extended_jpeg``: annex F sequential DCT with 12-bit samples, a quantisation table of
  ones, so decoded values are within a level or two of the input.
"""

from __future__ import annotations

import struct

import numpy as np

_CATEGORY_BITS = 5  # 17 categories (0-16), all with 5-bit codes: valid and never all ones


def encode_lossless_jpeg(pixels: np.ndarray, precision: int, predictor: int = 1) -> bytes:
    """Return a complete lossless JPEG codestream for 2-D unsigned ``pixels``.

    Args:
        pixels: ``(rows, columns)`` unsigned integers below ``2**precision``.
        precision: Sample precision P in bits, 2 to 16.
        predictor: Selection value 1-7 (1 is DICOM's "First-Order Prediction", SV1).

    Raises:
        ValueError: bad arguments (a bug in the caller; this is test-data tooling).
    """
    if pixels.ndim != 2 or not 2 <= precision <= 16 or predictor not in range(1, 8):
        raise ValueError(f"need 2-D pixels, precision 2-16 and predictor 1-7, got {pixels.shape}, {precision}, {predictor}")
    values = pixels.astype(np.int64)
    if values.min() < 0 or values.max() >= 2**precision:
        raise ValueError(f"pixel values must fit {precision} unsigned bits")
    differences = (values - _predictions(values, precision, predictor)) % 65536
    differences = np.where(differences > 32768, differences - 65536, differences)
    rows, columns = values.shape
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xC3, struct.pack(">BHHB", precision, rows, columns, 1) + bytes((1, 0x11, 0))),
            _segment(0xC4, _huffman_table()),
            _segment(0xDA, bytes((1, 1, 0x00, predictor, 0, 0))),
            _entropy_coded(differences.ravel().tolist()),
            b"\xff\xd9",
        )
    )


def _predictions(x: np.ndarray, precision: int, predictor: int) -> np.ndarray:
    """Return the prediction for every sample (T.81 H.1.2.1, including the first row and column)."""
    ra = np.zeros_like(x)
    rb = np.zeros_like(x)
    rc = np.zeros_like(x)
    ra[:, 1:] = x[:, :-1]
    rb[1:, :] = x[:-1, :]
    rc[1:, 1:] = x[:-1, :-1]
    formulas = {
        1: ra,
        2: rb,
        3: rc,
        4: ra + rb - rc,
        5: ra + ((rb - rc) >> 1),
        6: rb + ((ra - rc) >> 1),
        7: (ra + rb) >> 1,
    }
    prediction = formulas[predictor].copy()
    prediction[0, 1:] = x[0, :-1]  # first line: the sample to the left
    prediction[1:, 0] = x[:-1, 0]  # first column: the sample above
    prediction[0, 0] = 2 ** (precision - 1)
    return prediction


def _huffman_table(table_class: int = 0, symbols: tuple[int, ...] = tuple(range(17)), bits: int = _CATEGORY_BITS) -> bytes:
    """Return a DHT payload giving every symbol a ``bits``-long code (class 0 DC/lossless, 1 AC)."""
    counts = [0] * 16
    counts[bits - 1] = len(symbols)
    return bytes((table_class << 4, *counts, *symbols))


def _entropy_coded(differences: list[int]) -> bytes:
    bits: list[str] = []
    for diff in differences:
        category = 16 if diff == 32768 else abs(diff).bit_length()
        bits.append(format(category, f"0{_CATEGORY_BITS}b"))
        if 0 < category < 16:
            bits.append(_extra_bits(diff, category))
    return _pack(bits)


def _extra_bits(value: int, size: int) -> str:
    """Return the ``size`` additional bits of a coded value (T.81 F.1.2.1.1: negatives offset)."""
    return format(value if value > 0 else value + (1 << size) - 1, f"0{size}b")


def _pack(bits: list[str]) -> bytes:
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad the last byte with 1-bits (T.81 F.1.2.3)
    raw = int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""
    return raw.replace(b"\xff", b"\xff\x00")


# Sequential DCT, 12-bit (process 4) ----------------------------------------------------------

_AC_SYMBOLS = (0x00, 0xF0, *((run << 4) | size for run in range(16) for size in range(1, 15)))
_AC_CODE = {symbol: format(i, "08b") for i, symbol in enumerate(_AC_SYMBOLS)}  # 226 codes < 0xFF
_DC_BITS = 5  # 16 DC categories (0-15), 5-bit codes


def _zigzag() -> list[tuple[int, int]]:
    cells = [(r, c) for r in range(8) for c in range(8)]
    return sorted(cells, key=lambda rc: (rc[0] + rc[1], rc[0] if (rc[0] + rc[1]) % 2 else rc[1]))


_ZIGZAG = _zigzag()
_DCT = np.array([[np.sqrt((1 if u == 0 else 2) / 8) * np.cos((2 * x + 1) * u * np.pi / 16) for x in range(8)] for u in range(8)])


def encode_extended_jpeg(pixels: np.ndarray) -> bytes:
    """Return a 12-bit sequential DCT JPEG (SOF1) codestream for 2-D ``pixels`` in 0-4095.

    Raises:
        ValueError: not 2-D or values outside 12 bits (a bug in the caller).
    """
    if pixels.ndim != 2 or pixels.min() < 0 or pixels.max() > 4095:
        raise ValueError("need 2-D pixels in 0..4095")
    rows, columns = pixels.shape
    padded = np.pad(pixels.astype(np.float64) - 2048, ((0, -rows % 8), (0, -columns % 8)), mode="edge")
    bits: list[str] = []
    previous_dc = 0
    for top in range(0, padded.shape[0], 8):
        for left in range(0, padded.shape[1], 8):
            block = _DCT @ padded[top : top + 8, left : left + 8] @ _DCT.T  # quantiser of ones
            coefficients = [int(np.clip(np.rint(block[r, c]), -16383, 16383)) for r, c in _ZIGZAG]
            diff = coefficients[0] - previous_dc
            previous_dc = coefficients[0]
            size = abs(diff).bit_length()
            bits.append(format(size, f"0{_DC_BITS}b") + (_extra_bits(diff, size) if size else ""))
            _code_ac(coefficients[1:], bits)
    return b"".join(
        (
            b"\xff\xd8",
            _segment(0xDB, bytes((0,)) + bytes([1] * 64)),
            _segment(0xC1, struct.pack(">BHHB", 12, rows, columns, 1) + bytes((1, 0x11, 0))),
            _segment(0xC4, _huffman_table(0, tuple(range(16)), _DC_BITS)),
            _segment(0xC4, _huffman_table(1, _AC_SYMBOLS, 8)),
            _segment(0xDA, bytes((1, 1, 0x00, 0, 63, 0))),
            _pack(bits),
            b"\xff\xd9",
        )
    )


def _code_ac(coefficients: list[int], bits: list[str]) -> None:
    run = 0
    for value in coefficients:
        if value == 0:
            run += 1
            continue
        while run > 15:
            bits.append(_AC_CODE[0xF0])
            run -= 16
        size = abs(value).bit_length()
        bits.append(_AC_CODE[(run << 4) | size] + _extra_bits(value, size))
        run = 0
    if run:
        bits.append(_AC_CODE[0x00])


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload
