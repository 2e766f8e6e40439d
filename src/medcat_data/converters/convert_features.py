"""The features of ``medcat convert`` outputs, chosen from what the inputs hold (parent process only)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datasets import Features, Image, List, Nifti, Value

from medcat_data.converters.codecs.dicom import DICOM_ATTRIBUTES
from medcat_data.converters.convert_rows import CORE_FROM_DICOM
from medcat_data.converters.schemas import image_classification_features, with_extras

# Types of the DICOM whitelist columns; names not listed here are strings.
_DICOM_TYPES: Mapping[str, Any] = {
    "rows": Value("int32"),
    "columns": Value("int32"),
    "bits_stored": Value("int32"),
    "pixel_spacing": List(Value("float64")),
    "frame_index": Value("int32"),
}

__all__ = ["image_features", "volume_features"]


def image_features(label_names: tuple[str, ...], *, dicom: bool, volumes: bool, masks: bool) -> Features:
    """Return the features of the ``default`` (2D images) config for what the inputs hold.

    Always: image-classification core (``label`` when there are labels) plus ``width``,
    ``height``, ``original_width``, ``original_height``, ``scale``, ``frame_index``. With DICOM
    inputs: the whitelist attributes. With volume slices: ``plane``, ``slice_index``,
    ``pixel_spacing`` and, when masks were found, ``mask``.
    """
    extras: dict[str, Any] = {
        "width": Value("int32"),
        "height": Value("int32"),
        "original_width": Value("int32"),
        "original_height": Value("int32"),
        "scale": Value("float32"),
        "frame_index": Value("int32"),
    }
    if dicom:
        for name in DICOM_ATTRIBUTES:
            if name not in CORE_FROM_DICOM and name not in extras:
                extras[name] = _DICOM_TYPES.get(name, Value("string"))
    if volumes:
        extras.update({"plane": Value("string"), "slice_index": Value("int32")})
        extras.setdefault("pixel_spacing", List(Value("float64")))
        if masks:
            extras["mask"] = Image()
    labels = {"label": list(label_names)} if label_names else None
    return image_classification_features(labels, extras)


def volume_features(label_names: tuple[str, ...], *, masks: bool) -> Features:
    """Return the features of the ``volumes`` config (``--volume whole``): one row per volume.

    ``volume`` is canonical RAS+ NIfTI (gzip) decoded by ``datasets`` with nibabel; ``affine`` is
    the original voxel-to-RAS+ matrix, ``spacing`` in mm along the canonical axes.
    """
    core: dict[str, Any] = {"volume": Nifti()}
    if masks:
        core["mask"] = Nifti()
    if label_names:
        core["label"] = image_classification_features({"label": list(label_names)})["label"]
    core.update(
        {
            "shape": List(Value("int32")),
            "spacing": List(Value("float64")),
            "orientation": Value("string"),
            "affine": List(List(Value("float64"))),
        }
    )
    return with_extras(core, None)
