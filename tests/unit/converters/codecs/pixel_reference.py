"""Pixel-reference table for the DICOM codec: synthetic inputs and hand-computed outputs.

Each ``Reference`` names the ``make_dicom`` arguments of one small synthetic file, the
``ImageOptions`` to decode it with, and expected output values at chosen ``(row, column)``
coordinates. Every expectation is worked out by hand in the comment beside it (formulas in
``converters/codecs/greyscale.py``; rounding is half to even), and the values are chosen so that
skipping a pipeline step (rescale, modality LUT, VOI LUT, window function, MONOCHROME1
inversion, YBR->RGB, palette) changes them. ``GREY_SYNTAXES`` repeats the first two cases over
every transfer syntax that can be encoded here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from medcat_data.converters.codecs.image import ImageOptions


@dataclass(frozen=True)
class Reference:
    """One synthetic file, how to decode it, and what must come out."""

    name: str
    make: dict[str, Any]
    expected: dict[tuple[int, int], int | tuple[int, int, int]]
    options: ImageOptions = field(default_factory=ImageOptions)
    tolerance: int = 0  # lossy syntaxes only


# 32x32 (the smallest size the JPEG 2000 encoder accepts), 12-bit stored values, all 100 except
# the top-left 2x4 corner; min 100, max 4000 (range 3900).
MINMAX_PIXELS = np.full((32, 32), 100, dtype=np.uint16)
MINMAX_PIXELS[:2, :4] = [[100, 4000, 1000, 2000], [3000, 100, 100, 100]]
MINMAX_EXPECTED = {
    (0, 0): 0,  # the minimum
    (0, 1): 255,  # the maximum
    (0, 2): 59,  # (1000-100)/3900*255 = 58.85
    (0, 3): 124,  # (2000-100)/3900*255 = 124.23
    (1, 0): 190,  # (3000-100)/3900*255 = 189.62
}
MONOCHROME1_EXPECTED = {  # 255 - the MONOCHROME2 levels: higher stored value is darker
    (0, 0): 255,
    (0, 1): 0,
    (0, 2): 196,
    (0, 3): 131,
    (1, 0): 65,
}

# 10x20 stored values 0, 10, ..., 1990: numpy-linear percentiles 0.5 -> 9.95, 99.5 -> 1980.05.
PERCENTILE_PIXELS = (np.arange(200, dtype=np.uint16) * 10).reshape(10, 20)

# CT, rescale slope 1 intercept -1024 (HU = stored - 1024), window centre 40 width 400 (LINEAR:
# c' = 39.5, w' = 399, lower edge -160, upper edge 239).
CT_PIXELS = np.array([[1024, 1064, 824], [1264, 1224, 1024]], dtype=np.uint16)


def _modality_lut_item() -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [4, 0, 16]
    item["LUTDescriptor"].VR = "US"
    item.LUTData = [0, 1000, 3000, 4000]
    item["LUTData"].VR = "US"
    item.ModalityLUTType = "US"
    return item


def _enhanced_groups() -> dict[str, Any]:
    """Shared rescale (slope 1, intercept -1024) and a different window per frame."""
    shared = Dataset()
    transform = Dataset()
    transform.RescaleSlope, transform.RescaleIntercept, transform.RescaleType = "1", "-1024", "HU"
    shared.PixelValueTransformationSequence = Sequence([transform])
    frames = []
    for center, width in ((0, 200), (100, 200)):
        group, voi = Dataset(), Dataset()
        voi.WindowCenter, voi.WindowWidth = str(center), str(width)
        group.FrameVOILUTSequence = Sequence([voi])
        frames.append(group)
    return {"SharedFunctionalGroupsSequence": Sequence([shared]), "PerFrameFunctionalGroupsSequence": Sequence(frames)}


REFERENCES: tuple[Reference, ...] = (
    Reference("mono2-minmax", {"pixels": MINMAX_PIXELS}, MINMAX_EXPECTED),
    Reference("mono1-minmax", {"pixels": MINMAX_PIXELS, "photometric": "MONOCHROME1"}, MONOCHROME1_EXPECTED),
    Reference(
        "mono2-minmax-16bit",
        {"pixels": MINMAX_PIXELS},
        {(0, 0): 0, (0, 1): 65535, (0, 2): 15123},  # (1000-100)/3900*65535 = 15123.46
        ImageOptions(bit_depth=16),
    ),
    Reference(
        "ct-rescale-window",
        {"pixels": CT_PIXELS, "modality": "CT", "rescale": (1, -1024), "window": (40, 400)},
        {
            (0, 0): 102,  # HU 0: ((0-39.5)/399+0.5)*255 = 102.26; without rescale it would be 255
            (0, 1): 128,  # HU 40: ((40-39.5)/399+0.5)*255 = 127.82
            (0, 2): 0,  # HU -200 <= -160
            (1, 0): 255,  # HU 240 > 239
            (1, 1): 230,  # HU 200: ((200-39.5)/399+0.5)*255 = 230.08
        },
    ),
    Reference(
        "ct-rescale-none-16bit",
        # slope 2, intercept -1000: lowest encodable value 0*2-1000 = -1000, so offset 1000.
        {"pixels": CT_PIXELS, "modality": "CT", "rescale": (2, -1000), "window": (40, 400)},
        {(0, 0): 2048, (0, 2): 1648, (1, 0): 2528},  # stored*2-1000+1000 = 2*stored
        ImageOptions(window="none", bit_depth=16),
    ),
    Reference(
        "window-sigmoid",
        {"pixels": np.array([[2560, 1536, 2048 + 1024]], dtype=np.uint16), "window": (2048, 1024), "tags": {"VOILUTFunction": "SIGMOID"}},
        {
            (0, 0): 225,  # 255/(1+exp(-4*512/1024)) = 224.60
            (0, 1): 30,  # 255/(1+exp(4*512/1024)) = 30.40
            (0, 2): 250,  # 255/(1+exp(-4)) = 250.42
        },
    ),
    Reference(
        "window-linear-exact",
        {"pixels": np.array([[99, 100, 101, 500]], dtype=np.uint16), "window": (100, 2), "tags": {"VOILUTFunction": "LINEAR_EXACT"}},
        # (x-100)/2+0.5: 99 -> 0, 100 -> 0.5*255 = 127.5 -> 128 (LINEAR would give 255), 101 -> 255
        {(0, 0): 0, (0, 1): 128, (0, 2): 255, (0, 3): 255},
    ),
    Reference(
        "window-linear-narrow",
        {"pixels": np.array([[99, 100, 101, 500]], dtype=np.uint16), "window": (100, 2)},
        # LINEAR: c' = 99.5, w' = 1: 99 <= 99 -> 0; 100 -> (0.5/1+0.5)*255 = 255
        {(0, 0): 0, (0, 1): 255, (0, 2): 255},
    ),
    Reference(
        "voi-lut-after-rescale",
        {
            "pixels": np.array([[993, 990, 1000, 2000, 500]], dtype=np.uint16),
            "rescale": (1, 10),
            # VOI LUT: first mapped 1000, 10-bit, entries 0, 100, ..., 1000; top = 1023.
            "voi_lut": (1000, 10, np.arange(11) * 100),
            "window": (1005, 10),  # present but the VOI LUT wins in "auto"
        },
        {
            (0, 0): 75,  # 993+10 = 1003 -> 300 -> 300/1023*255 = 74.78; without rescale: 0
            (0, 1): 0,  # 1000 -> entry 0
            (0, 2): 249,  # 1010 -> 1000 -> 249.27
            (0, 3): 249,  # beyond the table: last entry
            (0, 4): 0,  # below the first mapped value: first entry
        },
    ),
    Reference(
        "modality-lut-sequence",
        {"pixels": np.array([[0, 1, 2, 3]], dtype=np.uint16), "tags": {"ModalityLUTSequence": Sequence([_modality_lut_item()])}},
        # modality values 0, 1000, 3000, 4000 then min-max; without the LUT stored 1 -> 85
        {(0, 0): 0, (0, 1): 64, (0, 2): 191, (0, 3): 255},  # 63.75, 191.25
    ),
    Reference(
        "percentile",
        {"pixels": PERCENTILE_PIXELS},
        {
            (0, 0): 0,  # below the 0.5th percentile: clipped
            (0, 2): 1,  # (20-9.95)/1970.1*255 = 1.30; min-max would give 2.56 -> 3
            (9, 17): 254,  # (1970-9.95)/1970.1*255 = 253.70; min-max: 252.44 -> 252
            (9, 19): 255,  # above the 99.5th: clipped
        },
        ImageOptions(window="percentile"),
    ),
    Reference(
        "signed-ct-none-16bit",
        {"pixels": np.array([[-1000, 0, 2000]], dtype=np.int16), "bits_stored": 16, "signed": True, "modality": "CT", "rescale": (1, 0)},
        {(0, 0): 31768, (0, 1): 32768, (0, 2): 34768},  # lowest encodable -32768: offset 32768
        ImageOptions(window="none", bit_depth=16),
    ),
    Reference(
        "signed-minmax",
        {"pixels": np.array([[-1000, 0, 2000]], dtype=np.int16), "bits_stored": 16, "signed": True},
        {(0, 0): 0, (0, 1): 85, (0, 2): 255},  # 1000/3000*255 = 85
    ),
    Reference(
        "rgb",
        {"photometric": "RGB", "pixels": np.array([[[10, 200, 30], [255, 0, 128]]], dtype=np.uint8)},
        {(0, 0): (10, 200, 30), (0, 1): (255, 0, 128)},
    ),
    Reference(
        "ybr-full",
        # stored Y, Cb, Cr; R = Y + 1.402(Cr-128), G = Y - 0.344136(Cb-128) - 0.714136(Cr-128),
        # B = Y + 1.772(Cb-128)
        {"photometric": "YBR_FULL", "pixels": np.array([[[128, 128, 128], [76, 85, 255]]], dtype=np.uint8)},
        {(0, 0): (128, 128, 128), (0, 1): (254, 0, 0)},  # (254.05, 0.10, -0.20 -> 0)
    ),
    Reference(
        "ybr-full-422",
        # two pixel pairs; each pair shares its chroma (the factory keeps the first pixel's)
        {"photometric": "YBR_FULL_422", "pixels": np.array([[[76, 85, 255], [100, 85, 255], [150, 44, 21], [150, 44, 21]]], dtype=np.uint8)},
        {
            (0, 0): (254, 0, 0),
            (0, 1): (255, 24, 24),  # Y 100: R 278.05 -> 255, G 24.10, B 23.80
            (0, 2): (0, 255, 1),  # Y 150, Cb 44, Cr 21: R -0.01 -> 0, G 255.32 -> 255, B 1.15 -> 1
        },
    ),
    Reference(
        "palette",
        # 16-bit palette: red = i*257, green = (255-i)*257, blue = 32768 -> 8-bit i, 255-i, 128
        {"photometric": "PALETTE COLOR", "pixels": np.array([[10, 200]], dtype=np.uint8), "bits_stored": 8},
        {(0, 0): (10, 245, 128), (0, 1): (200, 55, 128)},
    ),
    Reference(
        "jpeg-baseline-blocks",
        # 8x8-aligned flat blocks survive JPEG exactly enough: 50 -> 0, 200 -> 255 after min-max
        {
            "pixels": np.repeat(np.repeat(np.array([[50, 200], [200, 50]], dtype=np.uint8), 8, axis=0), 8, axis=1),
            "bits_stored": 8,
            "transfer_syntax": JPEGBaseline8Bit,
        },
        {(3, 3): 0, (3, 12): 255, (12, 3): 255, (12, 12): 0},
        tolerance=2,
    ),
    Reference(
        "jpeg-extended-12bit",
        # DCT with a quantiser of ones: stored values come back within a level or two
        {"pixels": MINMAX_PIXELS, "transfer_syntax": JPEGExtended12Bit},
        MINMAX_EXPECTED,
        tolerance=1,
    ),
)

# Every syntax that can be encoded here, for the MONOCHROME2 and MONOCHROME1 min-max cases.
GREY_SYNTAXES: tuple[str, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLosslessSV1,
    JPEGLossless,
)
LOSSY_GREY_SYNTAXES: tuple[str, ...] = (JPEG2000, JPEGLSNearLossless, JPEGExtended12Bit)
