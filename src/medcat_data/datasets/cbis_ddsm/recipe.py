"""CBIS-DDSM: case-description CSVs + ROI crops/masks -> image-classification / object-detection.

Configs (fact sheet §4), identical for the ``tcia`` and ``kaggle`` sources:

* ``mass``, ``calc``: one row per CSV row (one abnormality): the cropped ROI image,
  ``pathology`` (3 classes), ``birads`` (from ``assessment``; the BI-RADS labels VinDr-Mammo uses),
  ``density`` (both column spellings, 1-4 -> A-D; any other value, such as the 0 of two upstream
  calc rows, is null and listed in the card, the row kept), ``subtlety`` and the two descriptors split on
  ``-`` into lists (``N/A`` or empty -> null).
* ``mass-roi``, ``calc-roi``: one row per full mammogram with a box per abnormality, computed from
  its ROI mask resized nearest-neighbour to the output size (``bbox`` xyxy, end exclusive); each
  object keeps its binarized mask, pathology, BI-RADS, subtlety and abnormality id.

Files are found by SeriesInstanceUID, the third component of each CSV path (the CSV paths name
folders nobody has on disk): through the NBIA retriever's ``metadata.csv`` (``Series UID`` ->
``File Location``) for ``tcia``, through ``csv/dicom_info.csv`` (``SeriesInstanceUID`` ->
``image_path`` with ``CBIS-DDSM/`` replaced by the local folder) for ``kaggle``. Which file of a
crop/mask pair is the mask is decided by content: the mask is binary (and, where the mammogram is
known, of its size); file names and series descriptions are not trusted. The last CSV field's
quoted trailing newline is stripped. A row whose series is absent is a ``SampleError`` (in the
``-roi`` config the whole mammogram is, so that no box goes silently missing).

``sample_id`` comes from CSV identities only, so both sources give the same ids:
``<Mass|Calc>-<Training|Test>_<patient_id>_<side>_<view>`` (the TCIA subject id of the image set)
plus ``_<abnormality id>`` for the per-abnormality configs. The split is the official one from the
CSV file name (``Training``/``Test``, mapped by the registry's ``upstream_splits``); ``patient_id`` is ``P_xxxxx``. A work unit is one full
mammogram image set with its abnormality rows; ``--limit`` keeps the first N per config.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Features, Image, List, Value

from medcat_data.converters.codecs.dicom import decode_dicom
from medcat_data.converters.codecs.image import EncodedImage, ImageOptions, encode_png
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import image_classification_features, label_feature, object_detection_features
from medcat_data.converters.splits import map_upstream_split
from medcat_data.converters.units import ErrorUnit, Row
from medcat_data.converters.vocab.mammography import BIRADS, CBIS_PATHOLOGY, DENSITY, LATERALITY, VIEW
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

__all__ = ["CONFIGS", "DATASET_ID", "RECIPE", "CbisDdsm", "ImageSetUnit", "Survey", "convert_unit", "read_case_csv"]

DATASET_ID = "cbis-ddsm"
CONFIGS: tuple[str, ...] = ("mass", "calc", "mass-roi", "calc-roi")
MODALITY = "MG"
CATEGORIES = ("mass", "calcification")
DESCRIPTORS = {"mass": ("mass shape", "mass margins"), "calc": ("calc type", "calc distribution")}
DENSITY_COLUMNS = ("breast_density", "breast density")
DENSITY_SOURCE = "cbis-ddsm breast_density"
CSV_SPLITS = {"train": "Training", "test": "Test"}
REQUIRED = (
    "patient_id", "left or right breast", "image view", "abnormality id", "abnormality type", "assessment",
    "pathology", "subtlety", "image file path", "cropped image file path", "ROI mask file path",
)
MISSING_DESCRIPTOR = ("", "N/A", "NA")
STATE_DIR = ".medcat"


@dataclass(frozen=True)
class Abnormality:
    """One CSV row: its line, values, id and the files of its crop/mask series (or why none)."""

    line: int
    values: tuple[tuple[str, str], ...]
    sample_id: str
    candidates: tuple[Path, ...]
    missing: str | None = None

    def get(self, column: str) -> str:
        return dict(self.values)[column]


@dataclass(frozen=True)
class ImageSetUnit:
    """One full mammogram image set (a TCIA subject) with its abnormality rows."""

    config: str
    kind: str
    csv_name: str
    split: str
    set_id: str
    study_id: str
    full: tuple[Path, ...]
    full_missing: str | None
    abnormalities: tuple[Abnormality, ...]
    source_tag: str
    image: ImageOptions

    @property
    def name(self) -> str:
        return f"{self.config}/{self.set_id}"


# ------------------------------------------------------------------------------------- reading


def _walk(ctx: RecipeContext, filename: str) -> Path | None:
    """Return the shallowest fetched ``filename`` under the source folder."""
    found = []
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in (STATE_DIR, "jpeg", "CBIS-DDSM"))
        if filename in filenames:
            found.append(Path(dirpath) / filename)
    for path in sorted(found, key=lambda p: (len(p.parts), str(p))):
        if ctx.has(path):
            return path
    return None


def _series_uid(path: str) -> str:
    parts = path.strip().replace("\\", "/").split("/")
    return parts[2] if len(parts) >= 4 else ""


def read_case_csv(ctx: RecipeContext, path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` with every value stripped (the quoted trailing newline included).

    Raises:
        UpstreamFormatError: the header lacks an upstream column (or both density spellings).
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        require_columns(ctx, path, header, REQUIRED)
        if not any(c in header for c in DENSITY_COLUMNS):
            raise UpstreamFormatError(DATASET_ID, ctx.rel(path), f"lacks a density column ({' or '.join(DENSITY_COLUMNS)})")
        line = reader.line_num + 1
        for fields in reader:
            if any(f.strip() for f in fields):
                yield line, {h: f.strip() for h, f in zip(header, fields)}
            line = reader.line_num + 1


def index_series(ctx: RecipeContext) -> tuple[dict[str, tuple[Path, ...]], str]:
    """Map SeriesInstanceUID -> its image files, from ``dicom_info.csv`` (kaggle) or NBIA ``metadata.csv``.

    Raises:
        UsageError: neither index was fetched.
    """
    order = ("dicom_info.csv", "metadata.csv") if ctx.source == "kaggle" else ("metadata.csv", "dicom_info.csv")
    for name in order:
        path = _walk(ctx, name)
        if path is None:
            continue
        index: dict[str, list[Path]] = {}
        with open(path, encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                if name == "dicom_info.csv":
                    series, image = (row.get("SeriesInstanceUID") or "").strip(), (row.get("image_path") or "").strip()
                    if series and image:
                        rel = image.split("/", 1)[1] if image.startswith("CBIS-DDSM/") else image
                        index.setdefault(series, []).append(path.parent.parent / rel)
                else:
                    series, location = (row.get("Series UID") or "").strip(), (row.get("File Location") or "").strip()
                    if series and location:
                        folder = path.parent / location.removeprefix("./")
                        index.setdefault(series, []).extend(sorted(folder.glob("*.dcm")) if folder.is_dir() else [])
        return {k: tuple(sorted(set(v))) for k, v in index.items()}, f"{name} ({path.parent.name or '.'})"
    raise UsageError(
        f"{DATASET_ID}: no series index under {ctx.source_dir}: the tcia source needs the NBIA retriever's "
        "metadata.csv, the kaggle source csv/dicom_info.csv."
    )


def case_csv_name(kind: str, part: str) -> str:
    """Return the name of a case-description CSV (``mass``/``calc``, ``train``/``test``)."""
    return f"{kind}_case_description_{part}_set.csv"


@dataclass(frozen=True)
class Survey:
    """What every config reads, once: the series index and the fetched case-description CSVs."""

    index: Mapping[str, tuple[Path, ...]]
    """SeriesInstanceUID -> its image files."""
    index_name: str
    """Which index file was read (for the card)."""
    cases: Mapping[str, tuple[tuple[int, dict[str, str]], ...]]
    """Case CSV file name -> its ``(line, row)`` pairs, for the CSVs that were fetched."""


def _survey(ctx: RecipeContext) -> Survey:
    index, index_name = index_series(ctx)
    cases = {}
    for kind in DESCRIPTORS:
        for part in CSV_SPLITS:
            path = _walk(ctx, case_csv_name(kind, part))
            if path is not None:
                cases[path.name] = tuple(read_case_csv(ctx, path))
    return Survey(index, index_name, cases)


# ------------------------------------------------------------------------------------- recipe


class CbisDdsm(Recipe[Survey, ImageSetUnit]):
    """CBIS-DDSM from either source into four configs (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = CONFIGS

    def survey(self, ctx: RecipeContext) -> Survey:
        """Index the series (``metadata.csv`` or ``dicom_info.csv``) and read the fetched case CSVs.

        Raises:
            UsageError: neither series index was fetched.
            UpstreamFormatError: a case CSV lacks a column read.
        """
        return _survey(ctx)

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the image-classification (``mass``, ``calc``) or object-detection (``-roi``) schema."""
        self.check_config(config)
        return _features(config)

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[ImageSetUnit]:
        """Return one unit per full-mammogram image set, train CSV first; unfetched files are ``not_fetched``."""
        self.check_config(config)
        return _plan(config, ctx, survey)

    def convert_unit(self, unit: ImageSetUnit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """State how files were found, the label conventions and the rows whose density is off the scale."""
        return card_notes(survey)


def _features(config: str) -> Features:
    kind = config.split("-")[0]
    if not config.endswith("-roi"):
        extras: dict[str, Any] = {
            "abnormality_id": Value("int32"),
            "abnormality_type": Value("string"),
            "subtlety": Value("int32"),
        }
        for column in DESCRIPTORS[kind]:
            extras[column.replace(" ", "_")] = List(Value("string"))
        extras["image_set_id"] = Value("string")
        return image_classification_features(
            {"pathology": CBIS_PATHOLOGY.labels, "birads": BIRADS.labels, "density": DENSITY.labels}, extras
        )
    return object_detection_features(
        CATEGORIES,
        object_extras={
            "abnormality_id": Value("int32"),
            "pathology": label_feature(CBIS_PATHOLOGY.labels),
            "birads": label_feature(BIRADS.labels),
            "subtlety": Value("int32"),
            "mask": Image(),
        },
        extras={"density": label_feature(DENSITY.labels)},
    )


def _plan(config: str, ctx: RecipeContext, survey: Survey) -> Plan[ImageSetUnit]:
    kind = config.split("-")[0]
    roi = config.endswith("-roi")
    index = survey.index
    mapping = ctx.splits_of(config)
    units: list[ImageSetUnit | ErrorUnit] = []
    not_fetched: list[str] = []
    errors: list[SampleError] = []
    for part, upstream in CSV_SPLITS.items():
        name = case_csv_name(kind, part)
        rows_of_csv = survey.cases.get(name)
        if rows_of_csv is None:
            raise UsageError(f"{DATASET_ID}: {name} is missing under {ctx.source_dir}; run `medcat fetch {DATASET_ID}`.")
        try:
            split = map_upstream_split(upstream, mapping, item=name)
        except SampleError as err:
            errors.append(err)
            continue
        prefix = f"{kind.capitalize()}-{upstream}"
        sets: dict[str, list[tuple[int, dict[str, str]]]] = {}
        for line, row in rows_of_csv:
            set_id = f"{prefix}_{row['patient_id']}_{row['left or right breast']}_{row['image view']}"
            sets.setdefault(set_id, []).append((line, row))
        for set_id, rows in sets.items():
            abns = []
            skip = False
            for line, row in rows:
                series = dict.fromkeys(_series_uid(row[c]) for c in ("cropped image file path", "ROI mask file path"))
                files, missing = _resolve(tuple(series), index, ctx)
                sample_id = f"{set_id}_{row['abnormality id']}"
                if files is None:
                    not_fetched.append(sample_id)
                    skip = True
                    continue
                abns.append(Abnormality(line, tuple(row.items()), sample_id, files, missing))
            full_series = _series_uid(rows[0][1]["image file path"])
            full: tuple[Path, ...] | None = ()
            full_missing = None
            if roi:
                full, full_missing = _resolve((full_series,), index, ctx)
                if full is None or skip:
                    not_fetched.append(set_id)
                    continue
            if abns:
                study = rows[0][1]["image file path"].replace("\\", "/").split("/")
                units.append(ImageSetUnit(
                    config, kind, name, split, set_id, study[1] if len(study) > 1 else "", full or (), full_missing,
                    tuple(abns), ctx.source_tag, ctx.options.image,
                ))
    if ctx.options.limit is not None:
        units = units[: ctx.options.limit]
    if errors:
        units.append(ErrorUnit(config, tuple(errors)))
    return Plan(units=units, not_fetched=not_fetched)


def _resolve(series: tuple[str, ...], index: Mapping[str, tuple[Path, ...]], ctx: RecipeContext) -> tuple[tuple[Path, ...] | None, str | None]:
    """Return ``(files, None)``, ``((), why)`` when a series is absent, or ``(None, None)`` when not fetched."""
    absent = [s or "(no series in path)" for s in series if s not in index]
    if absent:
        return (), f"series {', '.join(absent)} is absent from the series index"
    files = tuple(p for s in series for p in index[s])
    # A series the index lists but whose files are not on disk (a partial fetch) is not fetched.
    if not all(index[s] for s in series) or not all(ctx.has(p) for p in files):
        return None, None
    return files, None


def convert_unit(unit: ImageSetUnit) -> Iterator[Row | SampleError]:
    """Yield the rows of one image set: a row per abnormality, or one detection row for ``-roi``."""
    if unit.config.endswith("-roi"):
        try:
            yield _roi_row(unit)
        except SampleError as err:
            yield err
        return
    for abn in unit.abnormalities:
        try:
            yield _abnormality_row(unit, abn)
        except SampleError as err:
            yield err


def _item(unit: ImageSetUnit, abn: Abnormality) -> str:
    return f"{unit.csv_name}:{abn.line} {abn.sample_id}"


def _labels(unit: ImageSetUnit, abn: Abnormality) -> dict[str, Any]:
    item = _item(unit, abn)
    density_column = next(c for c in DENSITY_COLUMNS if c in dict(abn.values))
    values: dict[str, Any] = {
        "pathology": CBIS_PATHOLOGY.map("cbis-ddsm pathology", abn.get("pathology"), item=item, column="pathology"),
        "birads": BIRADS.map("cbis-ddsm assessment", abn.get("assessment"), item=item, column="assessment"),
        "density": _density(abn.get(density_column)),
        "view": VIEW.map("cbis-ddsm image view", abn.get("image view"), item=item, column="image view"),
        "laterality": LATERALITY.map("cbis-ddsm left or right breast", abn.get("left or right breast"), item=item, column="left or right breast"),
    }
    for column in ("abnormality id", "subtlety"):
        try:
            values[column.replace(" ", "_")] = int(abn.get(column))
        except ValueError:
            raise SampleError(item, "parse", f"{column}: {abn.get(column)!r} is not an integer") from None
    return values


def _density(value: str) -> str | None:
    """Map the BI-RADS density 1-4 onto A-D; any other value is null (``card_notes`` lists those rows).

    Upstream has rows with density 0, outside the scale: their abnormality, pathology and images
    are sound, so the row is kept rather than lost over one unknown breast-level label.
    """
    return DENSITY.mappings[DENSITY_SOURCE].get(value.strip())


def _abnormality_row(unit: ImageSetUnit, abn: Abnormality) -> Row:
    item = _item(unit, abn)
    values = _labels(unit, abn)
    if abn.missing:
        raise SampleError(item, "read", abn.missing)
    (crop_path, crop), _ = _crop_and_mask(abn, unit.image, None, item)
    if crop.scale != 1.0 and unit.image.resample != "nearest":
        crop = _decode(crop_path, unit.image, item)  # decoded nearest-neighbour for the content test
    for column in DESCRIPTORS[unit.kind]:
        text = abn.get(column)
        values[column.replace(" ", "_")] = None if text in MISSING_DESCRIPTOR else [p.strip() for p in text.split("-") if p.strip()]
    values.update(
        image={"bytes": crop.data, "path": f"{abn.sample_id}.{crop.format}"},
        abnormality_type=abn.get("abnormality type"),
        patient_id=abn.get("patient_id"),
        study_id=unit.study_id,
        modality=MODALITY,
        source=unit.source_tag,
        sample_id=abn.sample_id,
        split=unit.split,
        image_set_id=unit.set_id,
    )
    return Row(unit.config, unit.split, values)


def _roi_row(unit: ImageSetUnit) -> Row:
    first = unit.abnormalities[0]
    set_item = f"{unit.csv_name}:{first.line} {unit.set_id}"
    if unit.full_missing:
        raise SampleError(set_item, "read", f"full mammogram: {unit.full_missing}")
    for abn in unit.abnormalities:  # report a missing mask before decoding anything
        if abn.missing:
            raise SampleError(_item(unit, abn), "read", f"{abn.missing}; the mammogram {unit.set_id} is left out so no box goes missing")
    if len(unit.full) != 1:
        raise SampleError(set_item, "read", f"the full-mammogram series holds {len(unit.full)} files, expected 1")
    full = _decode(unit.full[0], unit.image, set_item)
    objects: dict[str, list[Any]] = {k: [] for k in ("bbox", "category", "abnormality_id", "pathology", "birads", "subtlety", "mask")}
    density = None
    for abn in unit.abnormalities:
        item = _item(unit, abn)
        labels = _labels(unit, abn)
        density = density or labels["density"]
        _, (mask, binary) = _crop_and_mask(abn, unit.image, (full.original_width, full.original_height), item)
        if (mask.width, mask.height) != (full.width, full.height):
            raise SampleError(item, "content", f"mask output size {mask.width}x{mask.height} differs from the mammogram's {full.width}x{full.height}")
        ys, xs = np.nonzero(binary)
        if not len(xs):
            raise SampleError(item, "content", "the ROI mask is empty after resizing")
        objects["bbox"].append([float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)])
        objects["category"].append("mass" if unit.kind == "mass" else "calcification")
        objects["abnormality_id"].append(labels["abnormality_id"])
        objects["pathology"].append(labels["pathology"])
        objects["birads"].append(labels["birads"])
        objects["subtlety"].append(labels["subtlety"])
        objects["mask"].append({"bytes": encode_png(np.where(binary, 255, 0).astype(np.uint8)), "path": f"{abn.sample_id}_mask.png"})
    labels0 = _labels(unit, first)
    values: dict[str, Any] = {
        "image": {"bytes": full.data, "path": f"{unit.set_id}.{full.format}"},
        "objects": objects,
        "width": full.width,
        "height": full.height,
        "scale": full.scale,
        "patient_id": first.get("patient_id"),
        "study_id": unit.study_id,
        "view": labels0["view"],
        "laterality": labels0["laterality"],
        "modality": MODALITY,
        "source": unit.source_tag,
        "sample_id": unit.set_id,
        "split": unit.split,
        "density": density,
    }
    return Row(unit.config, unit.split, values)


# ------------------------------------------------------------------------------------- pixels


def _decode(path: Path, options: ImageOptions, item: str) -> EncodedImage:
    try:
        if path.suffix.lower() in (".dcm", ".dicom"):
            encoded = decode_dicom(path, options)[0]
        else:
            encoded = load_raster(path, options)
    except SampleError as err:
        raise SampleError(item, err.stage, f"{path.name}: {err.reason}") from err
    return encoded


def _grey(encoded: EncodedImage) -> np.ndarray:
    from PIL import Image as PILImage

    with PILImage.open(io.BytesIO(encoded.data)) as image:
        return np.asarray(image.convert("L"))


def _is_binary(pixels: np.ndarray) -> bool:
    """A mask: almost every pixel near black or white (JPEG copies ring a little at edges), some white."""
    if pixels.size == 0:
        return False
    between = np.count_nonzero((pixels > 32) & (pixels < 223)) / pixels.size
    return bool(between < 0.02 and (pixels > 127).any())


def _crop_and_mask(
    abn: Abnormality, options: ImageOptions, full_size: tuple[int, int] | None, item: str
) -> tuple[tuple[Path, EncodedImage], tuple[EncodedImage, np.ndarray]]:
    """Tell crop from mask by content; return the crop and the mask with its binarized pixels."""
    nearest = replace(options, resample="nearest")
    masks: list[tuple[EncodedImage, np.ndarray]] = []
    crops: list[tuple[Path, EncodedImage]] = []
    for path in abn.candidates:
        encoded = _decode(path, nearest, item)
        pixels = _grey(encoded)
        size_ok = full_size is None or (encoded.original_width, encoded.original_height) == full_size
        if _is_binary(pixels) and size_ok:
            masks.append((encoded, pixels > 127))
        else:
            crops.append((path, encoded))
    if len(masks) != 1 or len(crops) != 1:
        raise SampleError(
            item, "content",
            f"expected one binary full-size mask and one crop among {len(abn.candidates)} file(s) of the ROI "
            f"series, found {len(masks)} mask(s) and {len(crops)} other image(s)",
        )
    return crops[0], masks[0]


def _densities_outside_scale(survey: Survey) -> list[str]:
    """Return ``<csv>:<line> <sample_id> ('<value>')`` for each case row whose density is not 1-4."""
    found = []
    for kind in DESCRIPTORS:
        for part, upstream in CSV_SPLITS.items():
            name = case_csv_name(kind, part)
            prefix = f"{kind.capitalize()}-{upstream}"
            for line, row in survey.cases.get(name, ()):
                value = next(row[c] for c in DENSITY_COLUMNS if c in row)
                if _density(value) is None:
                    sample_id = f"{prefix}_{row['patient_id']}_{row['left or right breast']}_{row['image view']}_{row['abnormality id']}"
                    found.append(f"{name}:{line} {sample_id} ({value!r})")
    return found


def card_notes(survey: Survey) -> list[str]:
    """State how files were found, the label conventions and the rows whose density is off the scale."""
    index_name = survey.index_name
    outside = _densities_outside_scale(survey)
    density_notes = [
        f"{len(outside)} abnormality row(s) have a breast density outside 1-4; their density is null (also in the "
        f"-roi row of their mammogram) and every other label and image is kept: {'; '.join(outside)}."
    ] if outside else []
    return [
        f"Files were resolved by SeriesInstanceUID (third component of the CSV paths) through {index_name}.",
        "Crop and mask were told apart by content (the mask is binary and of the mammogram's size), not by file name.",
        "Split: the official Training/Test of the CSV file names. patient_id is P_xxxxx; sample_id is the TCIA "
        "subject id of the image set (plus _<abnormality id> for mass/calc), equal for the tcia and kaggle sources.",
        "density maps the CBIS 1-4 (columns 'breast_density' for masses, 'breast density' for calcifications) onto A-D; "
        "birads is the 'assessment' with the BI-RADS labels VinDr-Mammo uses.",
        "-roi configs: boxes come from the ROI masks resized nearest-neighbour to the output size (xyxy, end exclusive).",
        *density_notes,
    ]


RECIPE = CbisDdsm()
