"""Map greyscale DICOM samples to output levels: modality LUT, then VOI, then MONOCHROME1 inversion.

Pure numpy on arrays already decoded; knows the DICOM pixel-value pipeline (PS3.4 N.2) and
nothing about files or encodings. Integer images of at most 16 bits are mapped through a lookup
table built over every possible stored value (at most 65,536 entries), so the per-pixel cost is
one indexing pass with no float copy of the image; wider or float images are mapped directly.

Output levels (``out_max`` is 255 for 8-bit output, 65535 for 16-bit), for a modality value ``m``:

- ``minmax``: ``round((m - min) / (max - min) * out_max)`` with min/max over the image's pixels;
- ``percentile``: the same with min/max replaced by the 0.5th/99.5th percentiles (numpy's
  "linear" definition), values outside clipped;
- window (``auto`` with Window Center/Width): pydicom's ``apply_windowing`` (VOI LUT Function
  LINEAR, LINEAR_EXACT or SIGMOID) as a fraction of its output range, times ``out_max``, rounded;
- VOI LUT (``auto`` with a VOI LUT Sequence): the first LUT's output divided by
  ``2**bits - 1`` (bits from its LUT Descriptor, or the LUT's largest entry if that is larger),
  times ``out_max``, rounded;
- ``none``: ``round(m + offset)`` where ``offset = max(0, -m_lowest)`` and ``m_lowest`` is the
  lowest modality value the file can encode (Bits Stored, Pixel Representation, rescale). For
  unsigned 12-bit CT with intercept -1024 the output is HU + 1024. No inversion is applied, so
  the values keep their meaning; a pixel that does not fit the output depth is an error.

Rounding is numpy's ``rint`` (half to even). MONOCHROME1 output is ``out_max - level`` for every
window except ``none``.
"""

from __future__ import annotations

import logging
from typing import cast

import numpy as np
import pydicom.pixels
from pydicom.dataset import Dataset

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.errors import ConvertError

log = logging.getLogger(__name__)

PERCENTILES = (0.5, 99.5)
_LUT_DTYPES = {np.dtype(t): np.dtype(u) for t, u in ((np.uint8, np.uint8), (np.int8, np.uint8), (np.uint16, np.uint16), (np.int16, np.uint16))}


class PixelValueError(ConvertError):
    """Greyscale values cannot be mapped as asked (bad LUT or window, values that do not fit)."""


def grey_to_display(pixels: np.ndarray, params: Dataset, options: ImageOptions) -> np.ndarray:
    """Return ``pixels`` mapped to full-range ``uint8``/``uint16`` output levels.

    Args:
        pixels: One decoded greyscale frame (stored values), any integer or float dtype.
        params: A dataset with the Image Pixel, Modality LUT and VOI LUT attributes for this frame.
        options: ``window`` and ``bit_depth`` are used.

    Raises:
        PixelValueError: the LUT or window is unusable, or ``none`` values do not fit.
    """
    out_dtype = np.dtype(np.uint8 if options.bit_depth == 8 else np.uint16)
    params = _with_defaults(params, pixels)
    unsigned = _LUT_DTYPES.get(pixels.dtype)
    if unsigned is None:
        return _map_values(pixels, None, params, options.window, out_dtype)
    index = pixels.view(unsigned)
    domain = np.arange(2 ** (8 * unsigned.itemsize), dtype=unsigned).view(pixels.dtype)
    lut = _map_values(domain, _domain_weights(pixels, index, domain, params, options.window), params, options.window, out_dtype)
    return np.take(lut, index)


def _domain_weights(pixels: np.ndarray, index: np.ndarray, domain: np.ndarray, params: Dataset, window: str) -> np.ndarray:
    """Return how often each domain value occurs, or a 0/1 mask of ``[min, max]`` when that suffices.

    A histogram is needed for percentiles and for a Modality LUT Sequence (not monotonic in
    general). Otherwise the modality transform is linear, so the extremes of the image's modality
    values are those of its stored extremes, and two cheap reductions replace a histogram pass
    (and its 8-bytes-per-pixel temporary).
    """
    if window == "percentile" or params.get("ModalityLUTSequence"):
        return np.bincount(index.ravel(), minlength=domain.size)
    low, high = pixels.min(), pixels.max()
    return ((domain >= low) & (domain <= high)).astype(np.int64)


def _with_defaults(params: Dataset, pixels: np.ndarray) -> Dataset:
    """Fill the attributes pydicom's helpers read, for float or sloppy files that lack them."""
    if "BitsStored" not in params:
        params.BitsStored = 8 * pixels.dtype.itemsize
    if "PixelRepresentation" not in params:
        params.PixelRepresentation = int(pixels.dtype.kind == "i")
    return params


def _map_values(
    values: np.ndarray, counts: np.ndarray | None, params: Dataset, window: str, out_dtype: np.dtype
) -> np.ndarray:
    """Map stored ``values`` (weighted by ``counts`` when they are a LUT domain) to output levels."""
    out_max = float(np.iinfo(out_dtype).max)
    modality = pydicom.pixels.apply_modality_lut(values, params)
    present = modality if counts is None else modality[counts > 0]
    if present.size == 0:
        return np.zeros(values.shape, dtype=out_dtype)
    mode = _resolve(window, params)
    if mode == "none":
        lowest = float(present.min()) if values.dtype.kind == "f" else _lowest_modality_value(params)
        return _keep_modality(modality, present, lowest, out_max, out_dtype)
    if mode == "voi_lut":
        fraction = _voi_lut_fraction(modality, params)
    elif mode == "window":
        fraction = _window_fraction(modality, params)
    else:
        if mode == "percentile":
            low, high = _percentiles(modality, counts, PERCENTILES)
        else:
            low, high = float(present.min()), float(present.max())
        if high > low:
            fraction = (modality.astype(np.float64) - low) / (high - low)
        else:
            fraction = np.zeros(modality.shape, dtype=np.float64)
    levels = np.rint(np.clip(fraction, 0.0, 1.0) * out_max).astype(out_dtype)
    if str(params.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        levels = out_dtype.type(out_max) - levels
    return cast(np.ndarray, levels)


def _resolve(window: str, params: Dataset) -> str:
    """Turn ``auto`` into the file's VOI LUT, its first usable window, or min-max."""
    if window != "auto":
        return window
    if params.get("VOILUTSequence"):
        return "voi_lut"
    if params.get("WindowCenter") is not None and params.get("WindowWidth") is not None:
        width = params.WindowWidth
        first = float(width[0] if params["WindowWidth"].VM > 1 else width)
        function = str(params.get("VOILUTFunction", "LINEAR")).strip().upper() or "LINEAR"
        if first >= 1 or (first > 0 and function != "LINEAR"):
            return "window"
        log.debug("window width %s unusable for %s; falling back to min-max", first, function)
    return "minmax"


def _window_fraction(modality: np.ndarray, params: Dataset) -> np.ndarray:
    """Apply pydicom's windowing and return the result as a fraction of its output range."""
    # Two sentinels give the window's floor and ceiling without re-deriving pydicom's y-range.
    padded = np.concatenate([modality.astype(np.float64).ravel(), [-np.inf, np.inf]])
    try:
        out = pydicom.pixels.apply_windowing(padded, params)
    except ValueError as err:
        raise PixelValueError(f"invalid window: {err}") from err
    floor, ceiling = out[-2], out[-1]
    if ceiling == floor:
        raise PixelValueError("invalid window: empty output range")
    return ((out[:-2] - floor) / (ceiling - floor)).reshape(modality.shape)


def _voi_lut_fraction(modality: np.ndarray, params: Dataset) -> np.ndarray:
    """Apply the first VOI LUT and return its output as a fraction of the LUT's nominal range."""
    item = params.VOILUTSequence[0]
    try:
        entries, first, bits = (int(v) for v in item.LUTDescriptor)
    except (AttributeError, TypeError, ValueError) as err:
        raise PixelValueError(f"invalid VOI LUT Descriptor: {err}") from err
    entries = entries or 2**16
    # pydicom's apply_voi indexes a uint16 array, so clip to the LUT's input range first.
    inputs = np.clip(np.rint(modality.astype(np.float64)), first, first + entries - 1).astype(np.int64)
    try:
        table = pydicom.pixels.apply_voi(np.arange(first, first + entries, dtype=np.int64), params)
        out = pydicom.pixels.apply_voi(inputs, params)
    except (NotImplementedError, ValueError, AttributeError, IndexError) as err:
        raise PixelValueError(f"invalid VOI LUT: {err}") from err
    top = max(float(2**bits - 1), float(table.max()))
    return cast(np.ndarray, out.astype(np.float64) / top)


def _percentiles(modality: np.ndarray, counts: np.ndarray | None, qs: tuple[float, float]) -> tuple[float, float]:
    """Return numpy-``linear`` percentiles of the image, from a value histogram when given one."""
    if counts is None:
        low, high = np.percentile(modality, qs)
        return float(low), float(high)
    keep = counts > 0
    values, weights = modality[keep].astype(np.float64), counts[keep]
    order = np.argsort(values, kind="stable")
    values, cumulative = values[order], np.cumsum(weights[order])
    n = int(cumulative[-1])
    result = []
    for q in qs:
        position = q / 100.0 * (n - 1)
        k = int(np.floor(position))
        below = values[np.searchsorted(cumulative, k, side="right")]
        above = values[np.searchsorted(cumulative, min(k + 1, n - 1), side="right")]
        result.append(float(below + (above - below) * (position - k)))
    return result[0], result[1]


def _keep_modality(
    modality: np.ndarray, present: np.ndarray, lowest: float, out_max: float, out_dtype: np.dtype
) -> np.ndarray:
    """``window="none"``: keep modality values, shifted so the lowest encodable one is not negative."""
    offset = max(0.0, -lowest)
    low, high = float(present.min()) + offset, float(present.max()) + offset
    if np.rint(low) < 0 or np.rint(high) > out_max:
        raise PixelValueError(
            f"modality values {low - offset:g}..{high - offset:g} (offset {offset:g}) do not fit "
            f"{int(out_max).bit_length()}-bit output with window 'none'; use bit depth 16 or another window"
        )
    shifted = np.rint(modality.astype(np.float64) + offset)
    return np.clip(shifted, 0, out_max).astype(out_dtype)


def _lowest_modality_value(params: Dataset) -> float:
    """Return the lowest modality value an integer image with these attributes can encode."""
    if params.get("ModalityLUTSequence"):
        return 0.0  # Modality LUT output is unsigned (PS3.3 C.11.1.1.1)
    bits = int(params.BitsStored)
    ends = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] if params.PixelRepresentation else [0, 2**bits - 1])
    return float(np.min(pydicom.pixels.apply_modality_lut(ends, params)))
