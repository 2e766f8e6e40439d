"""Encode small greyscale images as lossless JPEG (ITU T.81 process 14) for synthetic DICOM.

No installed package here can encode JPEG Lossless (DICOM transfer syntaxes 1.2.840.10008.1.2.4.57
and .70), yet hospital archives are full of it, so the synthetic factory needs it. This is a
deliberately plain encoder written from T.81 H.1 and annex H: one component, one scan, no
restart intervals, no point transform, and a fixed Huffman table in which every difference
category 0-16 has a 5-bit code. It is pure Python and meant for test images of a few thousand
pixels, not for speed.
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


def _huffman_table() -> bytes:
    counts = [0] * 16
    counts[_CATEGORY_BITS - 1] = 17
    return bytes((0x00, *counts, *range(17)))  # class 0 (DC/lossless), table 0


def _entropy_coded(differences: list[int]) -> bytes:
    bits: list[str] = []
    for diff in differences:
        category = 16 if diff == 32768 else abs(diff).bit_length()
        bits.append(format(category, f"0{_CATEGORY_BITS}b"))
        if 0 < category < 16:
            extra = diff if diff > 0 else diff + (1 << category) - 1
            bits.append(format(extra, f"0{category}b"))
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)  # pad the last byte with 1-bits (T.81 F.1.2.3)
    raw = int(stream, 2).to_bytes(len(stream) // 8, "big") if stream else b""
    return raw.replace(b"\xff", b"\xff\x00")


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload
