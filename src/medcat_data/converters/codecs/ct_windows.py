"""CT windows by name and the linear mapping of volume intensities to 8/16-bit pixels.

Pure numpy: knows nothing of file formats and never reads a file.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from medcat_data.errors import UsageError

# name -> (center, width) in Hounsfield units. The usual presets as tabulated by Radiopaedia,
# "Windowing (CT)" (https://radiopaedia.org/articles/windowing-ct): brain W80 L40, subdural
# W130-300 L50-100 (we take the middle, W215 L75), stroke W40 L40, temporal bones W2800 L600,
# lungs W1500 L-600, mediastinum W350 L50, liver W150 L30, bone W1800 L400. "ct-soft-tissue" is the
# common W400 L40 body soft-tissue preset. Frozen: renaming or retuning one changes every dataset
# converted with it, so add new names rather than edit these.
CT_WINDOWS: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "ct-soft-tissue": (40.0, 400.0),
        "ct-lung": (-600.0, 1500.0),
        "ct-bone": (400.0, 1800.0),
        "ct-brain": (40.0, 80.0),
        "ct-subdural": (75.0, 215.0),
        "ct-stroke": (40.0, 40.0),
        "ct-temporal-bone": (600.0, 2800.0),
        "ct-mediastinum": (50.0, 350.0),
        "ct-liver": (30.0, 150.0),
    }
)

MINMAX = "minmax"


def resolve_window(window: str | tuple[float, float] | None) -> tuple[float, float] | None:
    """Return ``(center, width)`` for a window name, a ``"center,width"`` string or a pair.

    ``None`` and ``"minmax"`` mean no window (min-max over the volume) and return ``None``.

    Raises:
        UsageError: the name is unknown (with close matches) or the width is not positive.
    """
    if window is None or window == MINMAX:
        return None
    if isinstance(window, str):
        if window in CT_WINDOWS:
            return CT_WINDOWS[window]
        pair = _parse_pair(window)
        if pair is None:
            close = difflib.get_close_matches(window, list(CT_WINDOWS), n=2)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UsageError(
                f"unknown CT window {window!r}.{hint} Use one of {', '.join(CT_WINDOWS)}, "
                f"{MINMAX!r}, or 'CENTER,WIDTH' in HU (e.g. '40,400')."
            )
        window = pair
    center, width = (float(v) for v in window)
    if not (math.isfinite(center) and math.isfinite(width) and width > 0):
        raise UsageError(f"a CT window needs a finite center and a positive width, got ({center}, {width}).")
    return center, width


def _parse_pair(text: str) -> tuple[float, float] | None:
    parts = text.split(",")
    if len(parts) != 2:
        return None
    try:
        return float(parts[0]), float(parts[1])
    except ValueError:
        return None


def intensity_bounds(data: np.ndarray, window: tuple[float, float] | None) -> tuple[float, float]:
    """Return the values that map to black and white: the window's edges, else the volume's range.

    A window ``(center, width)`` gives ``(center - width / 2, center + width / 2)``. Without one,
    the minimum and maximum over every finite voxel of ``data`` (the whole volume, so that every
    slice of it uses the same mapping and slices stay comparable). An all-NaN volume gives (0, 0).
    """
    if window is not None:
        center, width = window
        return center - width / 2, center + width / 2
    if data.dtype.kind == "f":
        finite = data[np.isfinite(data)]
        if finite.size == 0:
            return 0.0, 0.0
        return float(finite.min()), float(finite.max())
    if data.size == 0:
        return 0.0, 0.0
    return float(data.min()), float(data.max())


def scale_to_bits(values: np.ndarray, bounds: tuple[float, float], bit_depth: int) -> np.ndarray:
    """Map ``values`` linearly so that ``bounds`` become 0 and full scale, clip, round to nearest.

    Returns ``uint8`` (0-255) or ``uint16`` (0-65535). Values at or below ``bounds[0]`` become 0,
    at or above ``bounds[1]`` full scale; non-finite values become 0. A flat range maps to 0.
    """
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    full_scale = float(np.iinfo(dtype).max)
    low, high = bounds
    if high <= low:
        return np.zeros(values.shape, dtype=dtype)
    scaled = (values.astype(np.float64) - low) * (full_scale / (high - low))
    np.clip(scaled, 0.0, full_scale, out=scaled)
    if values.dtype.kind == "f":
        scaled[~np.isfinite(values)] = 0.0
    return np.rint(scaled).astype(dtype)
