"""Turn one ``medcat convert`` unit (a file or a DICOM series) into rows, in a worker process.

Decoding is the codecs' job; this module only maps what they return onto the output columns:
``image`` plus ``width``/``height``/``original_*``/``scale``/``frame_index``, the DICOM whitelist
(``view_position`` becomes ``view``), the volume slice geometry, the label and the split. Every
failure of a file is a ``SampleError`` with its reason; a file that is not an image says so.
Runs in workers, so it must not import ``datasets`` (see ``units``); the features of these rows
are declared in ``convert_features``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcat_data.converters.codecs.dicom import decode_dicom
from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.codecs.volume import VolumeOptions, iter_volume_slices, load_volume_whole
from medcat_data.converters.convert_inputs import FileUnit
from medcat_data.converters.build_manifest import sha256_file
from medcat_data.converters.units import InputHash, Row
from medcat_data.errors import MedcatError, SampleError

log = logging.getLogger(__name__)

IMAGES_CONFIG = "default"
VOLUMES_CONFIG = "volumes"

# DICOM attributes that fill a core column of the image-classification schema.
CORE_FROM_DICOM: Mapping[str, str] = {"modality": "modality", "laterality": "laterality", "view_position": "view"}

__all__ = ["CORE_FROM_DICOM", "IMAGES_CONFIG", "VOLUMES_CONFIG", "UnitOptions", "convert_file"]


@dataclass(frozen=True)
class UnitOptions:
    """Everything a worker needs besides the unit: picklable codec options."""

    image: ImageOptions
    volume: VolumeOptions
    hash_inputs: bool = True


def convert_file(unit: FileUnit, options: UnitOptions) -> Iterator[Row | SampleError | InputHash]:
    """Yield the rows of one unit, its failures as ``SampleError``, and the sha256 of its files.

    Raises:
        SampleError: the whole unit failed (reported by the executor, never fatal).
    """
    if options.hash_inputs:
        for name, path in _unit_files(unit):
            yield InputHash(name, sha256_file(Path(path)))
    try:
        if unit.kind == "raster":
            yield _image_row(unit, load_raster(Path(unit.path), options.image))
        elif unit.kind == "dicom":
            for image in decode_dicom(Path(unit.path), options.image):
                yield _image_row(unit, image)
        elif unit.kind in ("volume", "series"):
            yield from _volume_rows(unit, options.volume)
        else:
            raise SampleError(unit.name, "detect", "not an image: no known image, DICOM or volume format")
    except SampleError as err:
        raise SampleError(unit.name, err.stage, err.reason) from err
    except MedcatError as err:  # UnsupportedFormatError, MissingDependencyError: about this file
        raise SampleError(unit.name, "decode", str(err)) from err


def _unit_files(unit: FileUnit) -> list[tuple[str, str]]:
    if unit.kind == "series":
        return list(zip(unit.file_names, unit.files))
    files = [(unit.name, unit.path)]
    if unit.mask and unit.mask_name:
        files.append((unit.mask_name, unit.mask))
    return files


def _image_row(unit: FileUnit, image: EncodedImage, **extra: Any) -> Row:
    sample_id = unit.name if image.frame_index is None else f"{unit.name}#frame={image.frame_index}"
    values: dict[str, Any] = {
        "image": {"bytes": image.data, "path": None},
        "sample_id": extra.pop("sample_id", sample_id),
        "width": image.width,
        "height": image.height,
        "original_width": image.original_width,
        "original_height": image.original_height,
        "scale": image.scale,
        "frame_index": image.frame_index,
    }
    if unit.label is not None:
        values["label"] = unit.label
    for name, value in image.attributes.items():
        column = CORE_FROM_DICOM.get(name, name)
        if column not in values or values[column] is None:
            values[column] = value
    values.update(extra)
    return Row(IMAGES_CONFIG, unit.split, values)


def _volume_rows(unit: FileUnit, options: VolumeOptions) -> Iterator[Row]:
    source: Path | list[Path] = [Path(f) for f in unit.files] if unit.kind == "series" else Path(unit.path)
    mask = Path(unit.mask) if unit.mask else None
    if options.mode == "whole":
        whole = load_volume_whole(source, mask=mask)
        values: dict[str, Any] = {
            "volume": {"bytes": whole.nifti_gz, "path": f"{_stem(unit.name)}.nii.gz"},
            "sample_id": unit.name,
            "shape": list(whole.shape),
            "spacing": list(whole.spacing),
            "orientation": whole.orientation,
            "affine": whole.affine,
        }
        if whole.mask_nifti_gz is not None:
            values["mask"] = {"bytes": whole.mask_nifti_gz, "path": f"{_stem(unit.name)}_mask.nii.gz"}
        if unit.label is not None:
            values["label"] = unit.label
        yield Row(VOLUMES_CONFIG, unit.split, values)
        return
    for piece in iter_volume_slices(source, options, mask=mask):
        extra: dict[str, Any] = {
            "sample_id": f"{unit.name}#{piece.plane}={piece.index}",
            "plane": piece.plane,
            "slice_index": piece.index,
            "pixel_spacing": list(piece.spacing),
        }
        if piece.mask is not None:
            extra["mask"] = {"bytes": piece.mask.data, "path": None}
        yield _image_row(unit, piece.image, **extra)


def _stem(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    for suffix in (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base
