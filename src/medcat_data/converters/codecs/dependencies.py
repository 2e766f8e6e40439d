"""Say which pixel decoder to use for a DICOM transfer syntax, and what to install when none is.

This is the one place that knows which optional package decodes which encoding. Codecs ask it
before decoding; when nothing installed can decode a transfer syntax it raises
``MissingDependencyError`` naming the packages to install, so the message is written once.
It never decodes anything itself.
"""

from __future__ import annotations

import logging

from pydicom.pixels import get_decoder
from pydicom.uid import (
    HTJ2K,
    UID,
    JPEG2000,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
)

from medcat_data.errors import MissingDependencyError, UnsupportedFormatError

log = logging.getLogger(__name__)

# Decoding plugins of pydicom, fastest first, per transfer syntax. The order was measured on
# 2048x2048 radiographs (bench/convert.py, docs/benchmarks.md): Pillow's libjpeg-turbo decodes
# 8-bit JPEG several times faster than pylibjpeg; for the other syntaxes pylibjpeg's compiled
# codecs are the fastest installed.
DECODER_PREFERENCE: dict[str, tuple[str, ...]] = {
    JPEGBaseline8Bit: ("pillow", "pylibjpeg", "gdcm"),
    JPEGExtended12Bit: ("pylibjpeg", "gdcm", "pillow"),
    JPEGLossless: ("pylibjpeg", "gdcm"),
    JPEGLosslessSV1: ("pylibjpeg", "gdcm"),
    JPEGLSLossless: ("pyjpegls", "pylibjpeg", "gdcm"),
    JPEGLSNearLossless: ("pyjpegls", "pylibjpeg", "gdcm"),
    JPEG2000Lossless: ("pylibjpeg", "gdcm", "pillow"),
    JPEG2000: ("pylibjpeg", "gdcm", "pillow"),
    HTJ2KLossless: ("pylibjpeg",),
    HTJ2KLosslessRPCL: ("pylibjpeg",),
    HTJ2K: ("pylibjpeg",),
    RLELossless: ("pylibjpeg", "pydicom"),
}

# What to `pip install` when no plugin for a syntax is available (medcat's own dependencies).
INSTALL_HINT: dict[str, tuple[str, ...]] = {
    JPEGBaseline8Bit: ("pylibjpeg", "pylibjpeg-libjpeg"),
    JPEGExtended12Bit: ("pylibjpeg", "pylibjpeg-libjpeg"),
    JPEGLossless: ("pylibjpeg", "pylibjpeg-libjpeg"),
    JPEGLosslessSV1: ("pylibjpeg", "pylibjpeg-libjpeg"),
    JPEGLSLossless: ("pylibjpeg", "pylibjpeg-libjpeg"),
    JPEGLSNearLossless: ("pylibjpeg", "pylibjpeg-libjpeg"),
    JPEG2000Lossless: ("pylibjpeg", "pylibjpeg-openjpeg"),
    JPEG2000: ("pylibjpeg", "pylibjpeg-openjpeg"),
    HTJ2KLossless: ("pylibjpeg", "pylibjpeg-openjpeg"),
    HTJ2KLosslessRPCL: ("pylibjpeg", "pylibjpeg-openjpeg"),
    HTJ2K: ("pylibjpeg", "pylibjpeg-openjpeg"),
    RLELossless: ("pylibjpeg", "pylibjpeg-rle"),
}


def installed_decoders(transfer_syntax: str) -> tuple[str, ...]:
    """Return the pydicom decoding plugins usable for ``transfer_syntax`` on this machine.

    Native (uncompressed, deflated, big endian) syntaxes need no plugin and return ``()``.

    Raises:
        UnsupportedFormatError: pydicom has no decoder at all for this syntax (video, JPIP, ...).
    """
    uid = UID(transfer_syntax)
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as err:
        raise UnsupportedFormatError(
            f"transfer syntax {uid} ({uid.name}) has no pixel decoder; medcat cannot read it. "
            "Convert the file to a supported syntax first (for example with dcmtk's dcmdjpeg)."
        ) from err
    return tuple(decoder.available_plugins)


def choose_decoder(transfer_syntax: str) -> str:
    """Return the fastest installed plugin for ``transfer_syntax``, or ``""`` for native syntaxes.

    Raises:
        MissingDependencyError: the syntax is compressed and no installed plugin decodes it; the
            message names the packages to install.
        UnsupportedFormatError: no decoder exists for the syntax at all.
    """
    uid = UID(transfer_syntax)
    available = installed_decoders(uid)
    if not uid.is_encapsulated:
        return ""
    for plugin in DECODER_PREFERENCE.get(uid, ()):
        if plugin in available:
            return plugin
    if available:
        return available[0]
    raise MissingDependencyError(
        f"decoding {uid.name} ({uid}) pixel data",
        INSTALL_HINT.get(uid, ("pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg")),
    )
