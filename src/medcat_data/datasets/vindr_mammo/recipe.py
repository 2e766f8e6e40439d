"""VinDr-Mammo: breast-level BI-RADS and finding boxes -> image-classification / object-detection.

Configs (fact sheet §3):

* ``birads``: one row per ``breast-level_annotations.csv`` row (one image): ``birads`` (BI-RADS
  0-6, shared with CBIS-DDSM), ``density`` (A-D), ``laterality`` and ``view``.
* ``findings``: one row per image of ``finding_annotations.csv`` (its rows grouped by
  ``image_id``): a ``No Finding`` image has no objects; every other row is one box, its
  ``finding_categories`` read with ``ast.literal_eval`` and all kept (``category`` is the first,
  ``categories`` the full list), an empty ``finding_birads`` is ``unassessed``. Boxes are scaled
  by the codec's ``scale`` into output pixels and clipped to the image.

The CSV ``height``/``width`` must equal the decoded Rows/Columns, else the image is a
``SampleError``. ``patient_id`` is null (removed by the de-identification); ``study_id`` groups
the four views and never crosses splits (the official split is per study). ``training`` is read
as ``train`` through the registry's ``upstream_splits``. ``metadata.csv`` is not read (its header
is unconfirmed). A work unit is one study; ``--limit`` keeps the first N studies.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from datasets import Features, Value

from medcat_data.converters.codecs.dicom import decode_dicom
from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import MultiLabel, image_classification_features, label_feature, object_detection_features
from medcat_data.converters.splits import map_upstream_split
from medcat_data.converters.units import ErrorUnit, Row
from medcat_data.converters.vocab.mammography import BIRADS, DENSITY, FINDING_BIRADS, LATERALITY, VIEW, VINDR_FINDINGS
from medcat_data.errors import SampleError, UsageError

__all__ = ["CONFIGS", "DATASET_ID", "RECIPE", "SharedStudyUnit", "Source", "StudyUnit", "VindrMammo", "convert_unit"]

DATASET_ID = "vindr-mammo"
CONFIGS: tuple[str, ...] = ("birads", "findings")
MODALITY = "MG"
NO_FINDING = "No Finding"
CSV_FILES = {"birads": "breast-level_annotations.csv", "findings": "finding_annotations.csv"}
IDENTITY = ("study_id", "series_id", "image_id", "laterality", "view_position", "height", "width", "breast_birads", "breast_density", "split")
BOX = ("finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax")

Box = tuple[int, tuple[str, ...], str, tuple[str, str, str, str]]
"""``(CSV line, categories, finding_birads, (xmin, ymin, xmax, ymax) as written)``."""


@dataclass(frozen=True, slots=True)
class ImageItem:
    """One image of a study: its CSV identity (repeated values interned) and, for ``findings``, its box rows."""

    line: int
    study_id: str
    series_id: str
    image_id: str
    laterality: str
    view_position: str
    height: str
    width: str
    breast_birads: str
    breast_density: str
    split: str
    boxes: tuple[Box, ...] = ()

    @property
    def path(self) -> str:
        """Relative to the dataset root (``images/<study>/<image>.dicom``)."""
        return f"images/{self.study_id}/{self.image_id}.dicom"

    def with_box(self, box: Box) -> ImageItem:
        return ImageItem(self.line, self.study_id, self.series_id, self.image_id, self.laterality, self.view_position,
                         self.height, self.width, self.breast_birads, self.breast_density, self.split, self.boxes + (box,))


@dataclass(frozen=True)
class Source:
    """What every unit of one config's plan reads from: one object per plan, shared by its units."""

    config: str
    root: Path
    csv_name: str
    source_tag: str
    image: ImageOptions


@dataclass(frozen=True, slots=True)
class StudyUnit:
    """One study: its images, read with ``source.image`` options from ``source.root``."""

    source: Source
    study_id: str
    images: tuple[ImageItem, ...]

    @property
    def config(self) -> str:
        return self.source.config

    @property
    def name(self) -> str:
        return f"{self.config}/{self.study_id}"


@dataclass(frozen=True)
class SharedStudyUnit:
    """One study for several configs at once, so that each of its DICOMs is decoded once."""

    parts: tuple[StudyUnit, ...]

    @property
    def name(self) -> str:
        return f"{'+'.join(p.config for p in self.parts)}/{self.parts[0].study_id}"


Unit = Union[StudyUnit, SharedStudyUnit]


# ------------------------------------------------------------------------------------- reading


def _csv_path(config: str, ctx: RecipeContext) -> Path:
    path = ctx.source_dir / CSV_FILES[config]
    if not ctx.has(path):
        raise UsageError(f"{DATASET_ID}: {CSV_FILES[config]} is missing under {ctx.source_dir}; run `medcat fetch {DATASET_ID}`.")
    return path


def read_rows(ctx: RecipeContext, path: Path, wanted: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` of an annotation CSV (stripped values).

    Raises:
        UpstreamFormatError: the header lacks an upstream column.
    """
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        require_columns(ctx, path, header, wanted)
        reader.fieldnames = header
        line = reader.line_num + 1
        for row in reader:
            yield line, {k: (v or "").strip() for k, v in row.items() if k is not None}
            line = reader.line_num + 1


# ------------------------------------------------------------------------------------- recipe


class VindrMammo(Recipe[None, Unit]):
    """VinDr-Mammo: ``birads`` and ``findings``, one study per unit (see the module docstring).

    No survey: each config reads its own CSV in ``plan`` and again as its units are taken.
    """

    DATASET_ID = DATASET_ID
    CONFIGS = CONFIGS

    def features(self, config: str, ctx: RecipeContext, survey: None) -> Features:
        """Return the image-classification (``birads``) or object-detection (``findings``) schema."""
        self.check_config(config)
        ids = {"series_id": Value("string"), "image_id": Value("string")}
        if config == "birads":
            return image_classification_features({"birads": BIRADS.labels, "density": DENSITY.labels}, ids)
        return object_detection_features(
            VINDR_FINDINGS.labels,
            object_extras={"categories": label_feature(MultiLabel(VINDR_FINDINGS.labels)), "birads": label_feature(FINDING_BIRADS.labels)},
            extras={"birads": label_feature(BIRADS.labels), "density": label_feature(DENSITY.labels), **ids},
        )

    def plan(self, config: str, ctx: RecipeContext, survey: None) -> Plan[Unit]:
        """Return one unit per study in CSV order; images whose DICOM was not fetched are ``not_fetched``.

        The CSV is read once here (errors, what was fetched, how many units); the units are made as
        they are taken, reading it again (``_Units``), unless its studies are not contiguous.
        """
        self.check_config(config)
        return _plan(config, ctx)

    def combine_units(self, plans: Mapping[str, Plan[Unit]]) -> Iterable[Unit | ErrorUnit]:
        """Merge the configs' study units into one unit per study (first-seen order), errors last.

        ``birads`` and ``findings`` read the same images: run together they decode each DICOM once
        instead of once per config. Rows still go to their own config. Plans listing the same
        studies in the same order (the upstream CSVs do) are merged as they stream; others in memory.
        """
        streams = [plan.units for plan in plans.values()]
        units = [u for u in streams if isinstance(u, _Units)]
        if len(units) == len(streams) > 1 and len({u.digest for u in units}) == 1 and len({u.count for u in units}) == 1:
            return _Combined(units)
        by_study: dict[str, list[StudyUnit]] = {}
        reports: list[Unit | ErrorUnit] = []
        for plan in plans.values():
            for unit in plan.units:
                if isinstance(unit, StudyUnit):
                    by_study.setdefault(unit.study_id, []).append(unit)
                else:
                    reports.append(unit)
        merged: list[Unit | ErrorUnit] = [SharedStudyUnit(tuple(parts)) if len(parts) > 1 else parts[0] for parts in by_study.values()]
        return merged + reports

    def convert_unit(self, unit: Unit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: None) -> list[str]:
        """State the conventions a user of the output must know."""
        return [
            "Upstream split 'training' is 'train'; the split is per study (study_id never crosses splits).",
            "patient_id is null: the de-identification removed it. study_id groups the four views of an exam.",
            "findings: boxes are xyxy in output pixels (original coordinates times 'scale'), clipped to the image; "
            "'category' is the first listed finding category and 'categories' all of them; an empty finding "
            "BI-RADS is 'unassessed'; a 'No Finding' image has no objects.",
            "BI-RADS labels are shared with CBIS-DDSM ('BI-RADS 0' ... 'BI-RADS 6'); density is A-D.",
            "An image whose CSV height/width differ from its DICOM Rows/Columns is reported in errors.jsonl, not converted.",
        ]


def _plan(config: str, ctx: RecipeContext) -> Plan[Unit]:
    path = _csv_path(config, ctx)
    reading = _Reading(Source(config, ctx.source_dir, path.name, ctx.source_tag, ctx.options.image), ctx, path, ctx.splits_of(config))
    try:
        return _scan(reading, scattered=False)
    except _Scattered:  # a study met in two places: its units are grouped in memory
        return _scan(reading, scattered=True)


def _scan(reading: _Reading, scattered: bool) -> Plan[Unit]:
    """Read the CSV once: its errors, the images not fetched, how many units it makes and a digest of their studies.

    Raises:
        _Scattered: not ``scattered`` and a study's rows are not one run of the CSV.
    """
    ctx = reading.ctx
    errors: list[SampleError] = []
    grouped: dict[str, dict[str, ImageItem]] | None = None
    if scattered:
        grouped = _grouped(reading, errors)
        studies: Iterable[tuple[str, dict[str, ImageItem]]] = grouped.items()
    else:
        studies = _runs(reading, errors, seen=set())
    skipped: list[str] = []
    count, digest = 0, hashlib.blake2b(digest_size=16)
    for study, images in studies:
        kept = 0
        for item in images.values():
            if ctx.has(ctx.source_dir / item.path):
                kept += 1
            else:
                skipped.append(item.path)
        if kept and (ctx.options.limit is None or count < ctx.options.limit):
            count += 1
            digest.update(study.encode() + b"\n")
    units = _Units(reading, frozenset(skipped), grouped, tuple(errors), count, digest.digest())
    return Plan(units=units, not_fetched=skipped)


class _Scattered(Exception):
    """A study's rows are not one run of the CSV."""


@dataclass(frozen=True)
class _Reading:
    """One config's annotation CSV and how its rows become images."""

    source: Source
    ctx: RecipeContext
    path: Path
    mapping: Mapping[str, str]

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        return read_rows(self.ctx, self.path, IDENTITY + (BOX if self.source.config == "findings" else ()))

    def add(self, images: dict[str, ImageItem], study: str, line: int, row: dict[str, str], errors: list[SampleError]) -> None:
        """Add one CSV row to its study's images: a new image (its split mapped), or one more box of it."""
        image = row["image_id"]
        item = images.get(image)
        if item is None:
            try:
                split = map_upstream_split(row["split"], self.mapping, item=f"{self.path.name}:{line}")
            except SampleError as err:
                errors.append(err)
                return
            lat, view, height, width, birads, density = [sys.intern(row[c]) for c in SHARED]
            series, image = sys.intern(row["series_id"]), sys.intern(image)  # the other config's unit of the study shares them
            item = ImageItem(line, study, series, image, lat, view, height, width, birads, density, sys.intern(split))
        if self.source.config == "findings":
            where = f"{self.path.name}:{line}"
            categories = tuple(sys.intern(c) for c in _categories(row["finding_categories"], where))
            box: Box = (line, categories, sys.intern(row["finding_birads"]), (row["xmin"], row["ymin"], row["xmax"], row["ymax"]))
            item = item.with_box(box)
        images[image] = item


SHARED = ("laterality", "view_position", "height", "width", "breast_birads", "breast_density")
"""The identity columns with few distinct values: interned, so images share them (ids are interned too:
a study's units of both configs, made together, share them)."""


def _runs(reading: _Reading, errors: list[SampleError], seen: set[str] | None = None) -> Iterator[tuple[str, dict[str, ImageItem]]]:
    """Yield each run of one study's rows as ``(study, images by id)``, in CSV order.

    Raises:
        _Scattered: a study is met again while ``seen`` (the studies met so far) is given; no row
            of its second run has been read, so what was read is grouped the same either way.
    """
    study: str | None = None
    images: dict[str, ImageItem] = {}
    for line, row in reading.rows():
        if row["study_id"] != study:
            if study is not None:
                yield study, images
            study, images = sys.intern(row["study_id"]), {}
            if seen is not None:
                if study in seen:
                    raise _Scattered(study)
                seen.add(study)
        reading.add(images, study, line, row, errors)
    if study is not None:
        yield study, images


def _grouped(reading: _Reading, errors: list[SampleError]) -> dict[str, dict[str, ImageItem]]:
    """Group the CSV's rows by study in first-seen order (a CSV whose studies are not contiguous)."""
    studies: dict[str, dict[str, ImageItem]] = {}
    for line, row in reading.rows():
        reading.add(studies.setdefault(row["study_id"], {}), row["study_id"], line, row, errors)
    return studies


class _Units:
    """One config's study units, made as they are taken (``--limit`` keeps N); its error unit last. Has a length.

    ``count`` is the number of study units, ``digest`` hashes their study ids in order: plans whose
    digests match list the same studies in the same order and are merged by zipping them.
    """

    def __init__(self, reading: _Reading, missing: frozenset[str], grouped: dict[str, dict[str, ImageItem]] | None,
                 errors: tuple[SampleError, ...], count: int, digest: bytes) -> None:
        self.reading, self.missing, self.grouped, self.errors = reading, missing, grouped, errors
        self.count, self.digest = count, digest

    def studies(self) -> Iterator[StudyUnit]:
        studies = self.grouped.items() if self.grouped is not None else _runs(self.reading, [])
        made = 0
        for study, images in studies:
            if made >= self.count:
                return
            kept = tuple(item for item in images.values() if item.path not in self.missing)
            if kept:
                made += 1
                yield StudyUnit(self.reading.source, study, kept)

    def error_unit(self) -> ErrorUnit | None:
        return ErrorUnit(self.reading.source.config, self.errors) if self.errors else None

    def __iter__(self) -> Iterator[Unit | ErrorUnit]:
        yield from self.studies()
        last = self.error_unit()
        if last is not None:
            yield last

    def __len__(self) -> int:
        return self.count + bool(self.errors)


class _Combined:
    """Plans listing the same studies in the same order, merged per study as they stream; error units last."""

    def __init__(self, streams: Sequence[_Units]) -> None:
        self.streams = streams

    def __iter__(self) -> Iterator[Unit | ErrorUnit]:
        for parts in zip(*(s.studies() for s in self.streams)):
            yield SharedStudyUnit(parts)
        for stream in self.streams:
            last = stream.error_unit()
            if last is not None:
                yield last

    def __len__(self) -> int:
        return self.streams[0].count + sum(bool(s.errors) for s in self.streams)


def convert_unit(unit: Unit) -> Iterator[Row | SampleError]:
    """Yield one row per image of the study; an undecodable image or a bad value is a ``SampleError``."""
    decoded: dict[str, EncodedImage | SampleError] = {}
    for part in unit.parts if isinstance(unit, SharedStudyUnit) else (unit,):
        for item in part.images:
            try:
                yield _row(part, item, decoded)
            except SampleError as err:
                yield err.at(part.config, item.split)


def _row(unit: StudyUnit, item: ImageItem, decoded: dict[str, EncodedImage | SampleError]) -> Row:
    where = f"{unit.source.csv_name}:{item.line}"
    image_id = item.image_id
    laterality = LATERALITY.map("vindr-mammo laterality", item.laterality, item=where, column="laterality")
    view = VIEW.map("vindr-mammo view_position", item.view_position, item=where, column="view_position")
    birads = BIRADS.map("vindr-mammo breast_birads", item.breast_birads, item=where, column="breast_birads")
    density = DENSITY.map("vindr-mammo breast_density", item.breast_density, item=where, column="breast_density")
    encoded = _decode(unit, item, decoded)
    values: dict[str, Any] = {
        "image": {"bytes": encoded.data, "path": f"{image_id}.png"},
        "birads": birads,
        "density": density,
        "patient_id": None,
        "study_id": item.study_id,
        "view": view,
        "laterality": laterality,
        "modality": MODALITY,
        "source": unit.source.source_tag,
        "sample_id": image_id,
        "split": item.split,
        "series_id": item.series_id,
        "image_id": image_id,
    }
    if unit.config == "findings":
        values.update(
            objects=_objects(unit.source.csv_name, item.boxes, encoded),
            width=encoded.width,
            height=encoded.height,
            scale=encoded.scale,
        )
    return Row(unit.config, item.split, values)


def _decode(unit: StudyUnit, item: ImageItem, decoded: dict[str, EncodedImage | SampleError]) -> EncodedImage:
    """Decode an image once per unit (``decoded`` caches it across configs), then check its size."""
    result = decoded.get(item.path)
    if result is None:
        try:
            (result,) = decode_dicom(unit.source.root / item.path, unit.source.image)[:1]
        except SampleError as err:
            result = SampleError(item.path, err.stage, err.reason)
        decoded[item.path] = result
    if isinstance(result, SampleError):
        raise result
    encoded = result
    try:
        height, width = int(item.height), int(item.width)
    except ValueError:
        raise SampleError(f"{unit.source.csv_name}:{item.line}", "parse", f"height/width {item.height!r}/{item.width!r} are not integers") from None
    if (encoded.original_height, encoded.original_width) != (height, width):
        raise SampleError(
            item.path, "size",
            f"CSV height x width {height} x {width} differs from the DICOM's Rows x Columns "
            f"{encoded.original_height} x {encoded.original_width}; the boxes would be misplaced",
        )
    return encoded


def _categories(text: str, where: str) -> tuple[str, ...]:
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SampleError(where, "parse", f"finding_categories: {text!r} is not a list of names")
    return tuple(v.strip() for v in value)


def _objects(csv_name: str, boxes: tuple[Box, ...], encoded: EncodedImage) -> dict[str, list[Any]]:
    objects: dict[str, list[Any]] = {"bbox": [], "category": [], "categories": [], "birads": []}
    for line, categories, finding_birads, coords in boxes:
        where = f"{csv_name}:{line}"
        names = [VINDR_FINDINGS.map("vindr-mammo finding_categories", c, item=where, column="finding_categories")
                 for c in categories if c != NO_FINDING]
        if not names:
            continue  # a No Finding row: no object
        try:
            x0, y0, x1, y1 = (float(c) for c in coords)
        except ValueError:
            raise SampleError(where, "parse", f"box {coords!r} of {list(categories)} is not four numbers") from None
        s = encoded.scale
        w, h = float(encoded.width), float(encoded.height)
        box = [min(max(x0 * s, 0.0), w), min(max(y0 * s, 0.0), h), min(max(x1 * s, 0.0), w), min(max(y1 * s, 0.0), h)]
        objects["bbox"].append(box)
        objects["category"].append(names[0])
        objects["categories"].append(names)
        objects["birads"].append(
            FINDING_BIRADS.map("vindr-mammo finding_birads", finding_birads, item=where, column="finding_birads")
        )
    return objects


RECIPE = VindrMammo()
