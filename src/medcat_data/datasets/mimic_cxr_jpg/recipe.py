"""MIMIC-CXR-JPG: chest radiograph JPEGs + study-level CheXpert/NegBio labels -> image-classification.

Configs (one row per JPEG; a work unit is one study):

* ``chexpert`` / ``negbio``: the 14 observations of ``mimic-cxr-2.0.0-<labeller>.csv.gz`` as
  ``ClassLabel`` columns (``vocab.chexpert.MENTION``: negative, positive, uncertain, unmentioned),
  selected by name, never by position. A study absent from the label file is *unlabelled*: its 14
  columns are null (never ``unmentioned``) and ``labelled`` is false.
* ``test-labeled``: the radiologist labels of ``mimic-cxr-2.1.0-test-set-labeled.csv`` (2.1.0 only),
  test split only; its ``Airspace Opacity`` column is read as ``Lung Opacity``.

``patient_id`` is ``subject_id``, ``study_id`` upstream's, ``view`` the metadata ``ViewPosition``
(null when blank), ``split`` the official ``mimic-cxr-2.0.0-split.csv.gz`` value mapped by the
registry's ``upstream_splits`` (``validate`` -> ``validation``), ``sample_id`` the ``dicom_id``.
JPEG bytes pass through unless ``--max-size`` asks for a resize (``codecs.raster``); a file that
is no JPEG is a ``SampleError``. The images listed in the metadata but not fetched
(``--only``/``--limit`` fetches) are "not fetched", not errors. The metadata, split and label
files are read once, by the survey, with the readers of ``labels.py`` (shared with the
``mimic-cxr`` recipe).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Features, Value

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import image_classification_features
from medcat_data.converters.splits import map_upstream_split
from medcat_data.converters.units import ErrorUnit, Row
from medcat_data.datasets.mimic_cxr_jpg.labels import (
    LABEL_FILES,
    SPLIT,
    TEST_LABELED,
    LabelFolder,
    LabelTable,
    label_columns,
    mention_values,
    read_label_folder,
)
from medcat_data.errors import SampleError, UsageError

__all__ = ["CONFIGS", "DATASET_ID", "RECIPE", "JpgStudyUnit", "MimicCxrJpg", "convert_unit"]

DATASET_ID = "mimic-cxr-jpg"
CONFIGS: tuple[str, ...] = ("chexpert", "negbio", "test-labeled")


# ------------------------------------------------------------------------------------- units


@dataclass(frozen=True)
class JpgStudyUnit:
    """One study of one config: its fetched JPEGs, labels (or None) and split."""

    config: str
    source_tag: str
    root: str
    subject_id: str
    study_id: str
    images: tuple[tuple[str, str, str | None, str], ...]
    """``(dicom_id, path relative to root, view, split)``."""
    labels: Mapping[str, str | None] | None
    label_error: SampleError | None
    image_options: ImageOptions

    @property
    def name(self) -> str:
        return f"{self.config}@s{self.study_id}"


# ------------------------------------------------------------------------------------- recipe


class MimicCxrJpg(Recipe[LabelFolder, "JpgStudyUnit"]):
    """MIMIC-CXR-JPG: one row per JPEG with its study's labels (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = CONFIGS

    def survey(self, ctx: RecipeContext) -> LabelFolder:
        """Read the metadata, split and every fetched label file once."""
        return read_label_folder(ctx.source_dir, ctx, {**LABEL_FILES, "test-labeled": TEST_LABELED})

    def features(self, config: str, ctx: RecipeContext, survey: LabelFolder) -> Features:
        """Image-classification with the 14 mention columns; extras ``dicom_id`` and ``labelled``."""
        self.check_config(config)
        return image_classification_features(label_columns(), {"dicom_id": Value("string"), "labelled": Value("bool")})

    def plan(self, config: str, ctx: RecipeContext, survey: LabelFolder) -> Plan[JpgStudyUnit]:
        """One unit per study with at least one fetched JPEG; ``--limit`` keeps the first N studies."""
        self.check_config(config)
        table = survey.labels.get(config)
        if table is None:
            name = TEST_LABELED if config == "test-labeled" else LABEL_FILES[config]
            raise UsageError(f"{ctx.dataset_id}: {ctx.source_dir / name} was not fetched (config {config!r}); "
                             f"{'it exists from version 2.1.0 on; ' if config == 'test-labeled' else ''}run `medcat fetch {ctx.dataset_id}`.")
        return _plan(config, ctx, survey, table)

    def convert_unit(self, unit: JpgStudyUnit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: LabelFolder) -> list[str]:
        """State the label semantics, the split mapping and how unlabelled studies appear."""
        notes = [
            "Labels are per study (every image of a study carries them): positive = 1.0, negative = 0.0, "
            "uncertain = -1.0, unmentioned = empty cell. A study absent from the label file is unlabelled: its "
            "14 columns are null and 'labelled' is false (never 'unmentioned').",
            "Split: the official mimic-cxr-2.0.0-split.csv.gz; upstream 'validate' is 'validation' here.",
            "test-labeled: radiologist labels of mimic-cxr-2.1.0-test-set-labeled.csv; its 'Airspace Opacity' "
            "column is the 'lung_opacity' column.",
            "JPEG bytes are passed through unchanged unless --max-size asks for a resize.",
        ]
        for name, table in sorted(survey.labels.items()):
            if name in LABEL_FILES:
                unlabelled = sum(1 for st in survey.studies if st.study_id not in table.values)
                notes.append(f"{LABEL_FILES[name]}: {len(table.values)} labelled studies; {unlabelled} studies of the metadata have no row (unlabelled).")
        return notes


def _plan(config: str, ctx: RecipeContext, survey: LabelFolder, table: LabelTable) -> Plan[JpgStudyUnit]:
    units: list[JpgStudyUnit | ErrorUnit] = []
    not_fetched: list[str] = []
    errors: list[SampleError] = survey.errors_of("metadata", "split", config)
    mapping = ctx.splits_of(config)
    for study in survey.studies:
        if config == "test-labeled" and study.study_id not in table.values:
            continue
        item = f"{study.folder}"
        label_error: SampleError | None = None
        try:
            labels: Mapping[str, str | None] | None = mention_values(table, study.study_id, item)
        except SampleError as err:
            labels, label_error = None, err
        images = []
        for dicom_id, view in study.images:
            path = ctx.source_dir / study.folder / f"{dicom_id}.jpg"
            rel = ctx.rel(path)
            if not ctx.has(path):
                not_fetched.append(rel)
                continue
            if config == "test-labeled":
                split = "test"
            else:
                upstream = survey.split.get(dicom_id)
                if upstream is None:
                    errors.append(SampleError(rel, "split", f"dicom_id {dicom_id} is not in {SPLIT}"))
                    continue
                try:
                    split = map_upstream_split(upstream, mapping, item=rel)
                except SampleError as err:
                    errors.append(err)
                    continue
            images.append((dicom_id, rel, view, split))
        if images:
            units.append(JpgStudyUnit(config, ctx.source_tag, str(ctx.source_dir), study.subject_id, study.study_id,
                                      tuple(images), labels, label_error, ctx.options.image))
    if ctx.options.limit is not None:
        units = units[: ctx.options.limit]
    if errors:
        units.append(ErrorUnit(config, tuple(errors)))
    return Plan(units=units, not_fetched=not_fetched)


def convert_unit(unit: JpgStudyUnit) -> Iterator[Row | SampleError]:
    """Yield one row per JPEG of the study; an unreadable JPEG or bad label value is a ``SampleError``."""
    root = Path(unit.root)
    for dicom_id, rel, view, split in unit.images:
        if unit.label_error is not None:
            yield SampleError(rel, unit.label_error.stage, unit.label_error.reason)
            continue
        try:
            # Every JPEG was checked against the project's SHA256SUMS.txt at fetch: no pixel decode.
            image = load_raster(root / rel, unit.image_options, verified=True)
        except SampleError as err:
            yield SampleError(rel, err.stage, err.reason)
            continue
        values: dict[str, Any] = {
            "image": {"bytes": image.data, "path": rel.rsplit("/", 1)[-1] if image.format == "jpeg" else f"{dicom_id}.{image.format}"},
            **(unit.labels or {}),
            "patient_id": unit.subject_id,
            "study_id": unit.study_id,
            "view": view,
            "laterality": None,
            "modality": None,
            "source": unit.source_tag,
            "sample_id": dicom_id,
            "split": split,
            "dicom_id": dicom_id,
            "labelled": any(v is not None for v in (unit.labels or {}).values()),
        }
        yield Row(unit.config, split, values)


RECIPE = MimicCxrJpg()
