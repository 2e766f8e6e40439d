"""PAD-UFES-20: smartphone skin-lesion photos + clinical metadata -> image-classification (``diagnosis``).

One row per ``metadata.csv`` row (one image). ``diagnosis`` is the six-class ``diagnostic`` code
through ``vocab.skin.DIAGNOSIS``; ``is_cancer`` marks BCC, MEL and SCC. The other 25 upstream
columns are kept under their upstream spellings (``fitspatrick``, ``biopsed``, ``diagnostic``),
with declared types read through ``codecs.table``: ``True``/``False`` -> bool, integers -> int64
(``55.0`` included), measurements -> float64, the rest strings; an empty cell is null. ``UNK``
(seen in the symptom flags) is kept distinct from empty: the typed column is null and the column
name is listed in ``unk_columns``. A value a typed column cannot hold is a ``SampleError`` naming
column and value; a ``metadata.csv`` lacking one of the 26 columns is an ``UpstreamFormatError``.

Images are read where the fetch left them: loose ``PAT_*.png`` files when the inner zips were
extracted, else straight out of ``images/imgs_part_{1,2,3}.zip`` with ``zipfile`` (never
extracted to disk). The top folder of the outer zip is unconfirmed, so ``metadata.csv`` is
looked up anywhere under the source folder. An ``img_id`` without its PNG is a ``SampleError``.

Splits are seeded, grouped by ``patient_id`` and stratified by each patient's most frequent
diagnosis (``splits.grouped_split``); the card records seed, fractions and groups per split.
A work unit is a run of ``UNIT_ROWS`` metadata rows.
"""

from __future__ import annotations

import csv
import os
import zipfile
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.codecs.table import parse_cell
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import image_classification_features
from medcat_data.converters.splits import GroupedSplit, grouped_split
from medcat_data.converters.units import ErrorUnit, Row
from medcat_data.converters.vocab.skin import CANCERS, DIAGNOSIS
from medcat_data.errors import SampleError, UsageError

__all__ = ["COLUMNS", "RECIPE", "ImageRef", "PadUfes20", "PadUnit", "Survey"]

DATASET_ID = "pad-ufes-20"
UNIT_ROWS = 64
MODALITY = "XC"
"""DICOM modality code of external-camera photography."""

COLUMNS: tuple[str, ...] = (
    "patient_id", "lesion_id", "smoke", "drink", "background_father", "background_mother", "age", "pesticide",
    "gender", "skin_cancer_history", "cancer_history", "has_piped_water", "has_sewage_system", "fitspatrick",
    "region", "diameter_1", "diameter_2", "diagnostic", "itch", "grew", "hurt", "changed", "bleed", "elevation",
    "img_id", "biopsed",
)
"""The exact 26-column header of ``metadata.csv`` (fact sheet §5.3)."""

BOOL_COLUMNS = frozenset({
    "smoke", "drink", "pesticide", "skin_cancer_history", "cancer_history", "has_piped_water",
    "has_sewage_system", "itch", "grew", "hurt", "changed", "bleed", "elevation", "biopsed",
})
INT_COLUMNS = frozenset({"lesion_id", "age"})
FLOAT_COLUMNS = frozenset({"fitspatrick", "diameter_1", "diameter_2"})
UNKNOWN = "UNK"


def _dtype(column: str) -> str:
    if column in BOOL_COLUMNS:
        return "bool"
    if column in INT_COLUMNS:
        return "int64"
    if column in FLOAT_COLUMNS:
        return "float64"
    return "string"


@dataclass(frozen=True)
class ImageRef:
    """Where one PNG is: a file (``member`` None) or a member of an inner zip.

    ``rel`` is ``path`` relative to the dataset's raw folder: errors name it, never the absolute path.
    """

    path: Path
    member: str | None = None
    rel: str = ""

    @property
    def label(self) -> str:
        """How errors name the image: ``<rel>`` or ``<rel of the zip>:<member>``."""
        rel = self.rel or self.path.name
        return f"{rel}:{self.member}" if self.member is not None else rel


@dataclass(frozen=True)
class PadUnit:
    """A run of metadata rows: ``(line, values)`` pairs with their image and split."""

    config: str
    metadata: str
    source_tag: str
    image: ImageOptions
    rows: tuple[tuple[int, Mapping[str, str], ImageRef | None, str], ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.config}@{self.rows[0][0] if self.rows else 0}"


# ------------------------------------------------------------------------------------- reading


def find_metadata(ctx: RecipeContext) -> Path:
    """Return ``metadata.csv`` (shallowest first) under the source folder.

    Raises:
        UsageError: no fetched ``metadata.csv``.
    """
    found = sorted(
        (Path(d) / "metadata.csv" for d, _, files in os.walk(ctx.source_dir) if "metadata.csv" in files),
        key=lambda p: (len(p.parts), str(p)),
    )
    for path in found:
        if ctx.has(path):
            return path
    raise UsageError(f"{ctx.dataset_id}: no metadata.csv under {ctx.source_dir}; was the outer zip extracted?")


def index_images(ctx: RecipeContext) -> dict[str, ImageRef]:
    """Map PNG file names to loose files or inner-zip members (loose files win)."""
    loose: dict[str, ImageRef] = {}
    zipped: dict[str, ImageRef] = {}
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if d != ".medcat")
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            lower = filename.lower()
            if lower.endswith(".png") and ctx.has(path):
                loose.setdefault(filename, ImageRef(path, rel=ctx.rel(path)))
            elif lower.startswith("imgs_part_") and lower.endswith(".zip") and ctx.has(path):
                try:
                    with zipfile.ZipFile(path) as archive:
                        for info in archive.infolist():
                            base = info.filename.rsplit("/", 1)[-1]
                            if not info.is_dir() and base.lower().endswith(".png"):
                                zipped.setdefault(base, ImageRef(path, info.filename, ctx.rel(path)))
                except zipfile.BadZipFile:
                    continue  # its images are then reported missing, row by row
    return {**zipped, **loose}


def read_metadata(ctx: RecipeContext, path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[SampleError]]:
    """Return ``(line, row)`` pairs and the ragged rows of ``metadata.csv``.

    Raises:
        UpstreamFormatError: the header lacks some of the 26 upstream columns.
    """
    rows: list[tuple[int, dict[str, str]]] = []
    errors: list[SampleError] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        require_columns(ctx, path, header, COLUMNS)
        line = reader.line_num + 1
        for fields in reader:
            if len(fields) != len(header):
                errors.append(SampleError(f"metadata.csv:{line}", "parse", f"{len(fields)} fields, the header has {len(header)}"))
            elif any(f.strip() for f in fields):
                rows.append((line, dict(zip(header, fields))))
            line = reader.line_num + 1
    return rows, errors


def _patient_split(rows: list[tuple[int, dict[str, str]]], seed: int) -> GroupedSplit:
    per_patient: dict[str, Counter[str]] = defaultdict(Counter)
    for _, row in rows:
        per_patient[row["patient_id"].strip()][row["diagnostic"].strip()] += 1
    labels = {p: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for p, c in per_patient.items()}
    return grouped_split(list(per_patient), labels=labels, seed=seed)


@dataclass(frozen=True)
class Survey:
    """``metadata.csv`` read once, where every PNG is, and the patient split."""

    metadata: Path
    rows: list[tuple[int, dict[str, str]]]
    ragged: list[SampleError]
    images: dict[str, ImageRef]
    split: GroupedSplit


# ------------------------------------------------------------------------------------- recipe


class PadUfes20(Recipe[Survey, PadUnit]):
    """PAD-UFES-20 into the ``diagnosis`` config (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("diagnosis",)

    def survey(self, ctx: RecipeContext) -> Survey:
        """Read ``metadata.csv``, index the PNGs (loose and zipped) and split the patients."""
        metadata = find_metadata(ctx)
        rows, ragged = read_metadata(ctx, metadata)
        return Survey(metadata, rows, ragged, index_images(ctx), _patient_split(rows, ctx.options.seed))

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the image-classification schema with the 25 typed upstream columns as extras."""
        self.check_config(config)
        extras: dict[str, Any] = {"is_cancer": Value("bool")}
        extras.update({c: Value(_dtype(c)) for c in COLUMNS if c != "patient_id"})
        extras["unk_columns"] = List(Value("string"))
        return image_classification_features({"diagnosis": DIAGNOSIS.labels}, extras)

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[PadUnit]:
        """Return runs of ``UNIT_ROWS`` rows with their image and split (``--limit`` keeps the first N)."""
        self.check_config(config)
        rows = survey.rows[: ctx.options.limit] if ctx.options.limit is not None else survey.rows
        planned = [
            (line, row, survey.images.get(row["img_id"].strip()), survey.split.of(row["patient_id"].strip()))
            for line, row in rows
        ]
        rel = ctx.rel(survey.metadata)
        units = [
            PadUnit(config, rel, ctx.source_tag, ctx.options.image, tuple(planned[i : i + UNIT_ROWS]))
            for i in range(0, len(planned), UNIT_ROWS)
        ]
        errors = [ErrorUnit(config, tuple(survey.ragged))] if survey.ragged else []
        return Plan(units=[*units, *errors])

    def convert_unit(self, unit: PadUnit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        return card_notes(survey)


def convert_unit(unit: PadUnit) -> Iterator[Row | SampleError]:
    """Yield one row per metadata row; a missing or unreadable image or a bad value is a ``SampleError``."""
    archives: dict[Path, zipfile.ZipFile] = {}
    try:
        for line, raw, ref, split in unit.rows:
            img_id = raw["img_id"].strip()
            item = f"{unit.metadata}:{line} {img_id}"
            try:
                values = _values(raw, item)
                if ref is None:
                    raise SampleError(item, "read", f"img_id {img_id!r} has no PNG in the images folder or its inner zips")
                image = _load(ref, archives, unit.image)
            except SampleError as err:
                yield err
                continue
            values.update(
                image={"bytes": image.data, "path": img_id},
                study_id=None,
                view=None,
                laterality=None,
                modality=MODALITY,
                source=unit.source_tag,
                sample_id=img_id.rsplit(".", 1)[0],
                split=split,
            )
            yield Row(unit.config, split, values)
    finally:
        for archive in archives.values():
            archive.close()


def _values(raw: Mapping[str, str], item: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    unk: list[str] = []
    for column in COLUMNS:
        text = raw[column].strip()
        if text == UNKNOWN:
            values[column] = None
            unk.append(column)
            continue
        values[column] = _typed(column, text, item)
    label = DIAGNOSIS.map("pad-ufes-20 diagnostic", values["diagnostic"], item=item, column="diagnostic")
    values["diagnosis"] = label
    values["is_cancer"] = label in CANCERS
    values["unk_columns"] = unk
    return values


def _typed(column: str, text: str, item: str) -> Any:
    """Return a cell as its column's declared type; an ``int64`` cell may be written ``3.0``."""
    dtype = _dtype(column)
    try:
        return parse_cell(text, dtype, integral_floats=True)
    except (KeyError, ValueError):
        raise SampleError(item, "parse", f"{column}: unexpected value {text!r} for a {dtype} column") from None


def _load(ref: ImageRef, archives: dict[Path, zipfile.ZipFile], options: ImageOptions) -> EncodedImage:
    """Read one PNG; errors name it by ``ref.label`` (a truncated or corrupt zip member included)."""
    label = ref.label
    if ref.member is None:
        try:
            return load_raster(ref.path, options)
        except SampleError as err:
            raise SampleError(label, err.stage, err.reason) from err
    try:
        archive = archives.get(ref.path)
        if archive is None:
            archive = archives[ref.path] = zipfile.ZipFile(ref.path)
        data = archive.read(ref.member)
    except OSError as err:
        raise SampleError(label, "read", f"cannot read the member from its zip: {err.strerror or err}") from err
    except (KeyError, zipfile.BadZipFile) as err:
        raise SampleError(label, "read", f"cannot read the member from its zip: {err}") from err
    except (EOFError, zlib.error) as err:
        raise SampleError(label, "read", f"the zip member is truncated or corrupt: {err}") from err
    return load_raster_bytes(data, label, options)


def card_notes(survey: Survey) -> list[str]:
    """Record the split, the UNK convention and where the images were read from."""
    zipped = sum(1 for ref in survey.images.values() if ref.member is not None)
    classes = Counter(row["diagnostic"].strip() for _, row in survey.rows)
    return [
        f"Split: seeded, grouped by patient_id, stratified by each patient's most frequent diagnosis: {survey.split.describe()}.",
        "Booleans were written True/False upstream and are bool columns; an empty cell is null. 'UNK' is kept "
        "distinct from empty: the typed column is null and the column name is listed in 'unk_columns'.",
        "Column spellings are upstream's ('fitspatrick', 'biopsed', 'diagnostic'); 'diagnosis' is the "
        "vocabulary label and 'is_cancer' is true for BCC, MEL and SCC.",
        f"{len(survey.images)} PNG(s) found, {zipped} read directly from the inner imgs_part_*.zip archives.",
        "metadata.csv rows per diagnostic: " + ", ".join(f"{k} {v}" for k, v in sorted(classes.items())) + ".",
    ]


RECIPE = PadUfes20()
