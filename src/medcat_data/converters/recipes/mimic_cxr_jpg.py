"""MIMIC-CXR-JPG: chest radiograph JPEGs + study-level CheXpert/NegBio labels -> image-classification.

Configs (one row per JPEG; a work unit is one study):

* ``chexpert`` / ``negbio``: the 14 observations of ``mimic-cxr-2.0.0-<labeller>.csv.gz`` as
  ``ClassLabel`` columns (``vocab.chexpert.MENTION``: negative, positive, uncertain, unmentioned),
  selected by name, never by position. A study absent from the label file is *unlabelled*: its 14
  columns are null (never ``unmentioned``) and ``labelled`` is false.
* ``test-labeled``: the radiologist labels of ``mimic-cxr-2.1.0-test-set-labeled.csv`` (2.1.0 only),
  test split only; its ``Airspace Opacity`` column is read as ``Lung Opacity``.

``patient_id`` is ``subject_id``, ``study_id`` upstream's, ``view`` the metadata ``ViewPosition``
(null when blank), ``split`` the official ``mimic-cxr-2.0.0-split.csv.gz`` value (``validate`` ->
``validation``), ``sample_id`` the ``dicom_id``. JPEG bytes pass through unless ``--max-size`` asks
for a resize (``codecs.raster``); a file that is no JPEG is a ``SampleError``. The images listed
in the metadata but not fetched (``--only``/``--limit`` fetches) are "not fetched", not errors.
The CSV readers here are shared with the ``mimic-cxr`` (DICOM) recipe.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Features, Value

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.recipes.base import Plan, RecipeContext, check_config, read_text_lines
from medcat_data.converters.schemas import image_classification_features
from medcat_data.converters.splits import map_upstream_split
from medcat_data.converters.units import Row
from medcat_data.converters.vocab.chexpert import COLUMN_ALIASES, MENTION, OBSERVATIONS, column_name
from medcat_data.errors import SampleError, UsageError

__all__ = [
    "CONFIGS", "DATASET_ID", "JpgStudyUnit", "LabelTable", "StudyImages", "card_notes", "convert_unit",
    "features", "label_columns", "plan",
]

DATASET_ID = "mimic-cxr-jpg"
CONFIGS: tuple[str, ...] = ("chexpert", "negbio", "test-labeled")

METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
LABEL_FILES = {"chexpert": "mimic-cxr-2.0.0-chexpert.csv.gz", "negbio": "mimic-cxr-2.0.0-negbio.csv.gz"}
TEST_LABELED = "mimic-cxr-2.1.0-test-set-labeled.csv"
"""File names keep their 2.0.0 spelling in 2.1.0 (fact sheet §1.9): never derived from the version."""
LABEL_SOURCE = "mimic-cxr-jpg chexpert/negbio"
TEST_SOURCE = "mimic-cxr-jpg test-set-labeled"
UPSTREAM_SPLITS = {"train": "train", "validate": "validation", "test": "test"}


def label_columns() -> dict[str, tuple[str, ...]]:
    """The 14 label columns (``column_name(obs)``) with the mention-state class names."""
    return {column_name(obs): MENTION.labels for obs in OBSERVATIONS}


# ------------------------------------------------------------------------------------- reading


def _csv_rows(path: Path, errors: list[SampleError] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` of a (gzip) CSV; the header is stripped of spaces and a BOM.

    With ``errors``, damaged lines (bytes not UTF-8, a truncated gzip) are appended there as
    ``<file name>:<line>`` errors instead of being raised (see ``read_text_lines``).
    """
    lines = read_text_lines(path, errors=errors)
    header_line = next(lines, None)
    if header_line is None:
        return
    header = [h.strip().lstrip("\ufeff") for h in next(csv.reader([header_line[1]]))]
    for number, line in lines:
        if not line.strip():
            continue
        fields = next(csv.reader(io.StringIO(line)))
        yield number, dict(zip(header, fields))


def _header(path: Path) -> list[str]:
    for _, line in read_text_lines(path):
        return [h.strip().lstrip("\ufeff") for h in next(csv.reader([line]))]
    return []


@dataclass(frozen=True)
class LabelTable:
    """One label file: study_id -> the 14 raw values in ``OBSERVATIONS`` order."""

    file: str
    source: str
    values: Mapping[str, tuple[str, ...]]


def read_labels(path: Path, source: str, rel: str, errors: list[SampleError] | None = None) -> LabelTable:
    """Read a label file, selecting the 14 observation columns by name (aliases applied).

    With ``errors``, its damaged lines are appended there instead of being raised.

    Raises:
        UsageError: the header lacks ``study_id`` or one of the 14 observations.
    """
    header = _header(path)
    names = {COLUMN_ALIASES.get(h, h): h for h in header}
    missing = [c for c in ("study_id", *OBSERVATIONS) if c not in names]
    if missing:
        raise UsageError(f"{rel}: the label file lacks the columns {missing}; header: {header}")
    values: dict[str, tuple[str, ...]] = {}
    for _, row in _csv_rows(path, errors):
        study = (row.get("study_id") or "").strip()
        if study:
            values[study] = tuple((row.get(names[obs]) or "").strip() for obs in OBSERVATIONS)
    return LabelTable(rel, source, values)


@dataclass(frozen=True)
class StudyImages:
    """One study's images from the metadata file, in upstream order."""

    subject_id: str
    study_id: str
    images: tuple[tuple[str, str | None], ...]
    """``(dicom_id, ViewPosition or None)`` pairs."""

    @property
    def folder(self) -> str:
        return f"files/p{self.subject_id[:2]}/p{self.subject_id}/s{self.study_id}"


@dataclass(frozen=True)
class Survey:
    """What planning reads once per label folder: studies, splits and the label tables."""

    studies: tuple[StudyImages, ...]
    split: Mapping[str, str]
    """dicom_id -> upstream split value."""
    labels: Mapping[str, LabelTable]
    errors: Mapping[str, tuple[SampleError, ...]]
    """Damaged lines met while reading, by file key (``metadata``, ``split``, a label key)."""

    def errors_of(self, *keys: str) -> list[SampleError]:
        """Return the damaged lines of these files (the ones one config's rows depend on)."""
        return [err for key in keys for err in self.errors.get(key, ())]


_SURVEYS: dict[tuple[Any, ...], Survey] = {}


def survey(folder: Path, ctx: RecipeContext, label_files: Mapping[str, str]) -> Survey:
    """Read metadata, split and label files under ``folder`` (cached on their stats).

    A damaged line (bytes not UTF-8, a truncated gzip) is kept in ``errors``, not raised: the
    plans report it in ``errors.jsonl`` and the rest of the file is used.

    Raises:
        UsageError: the metadata or split file was not fetched, or a header is not upstream's.
        InputDecodeError: a header line is damaged.
    """
    needed = {"metadata": folder / METADATA, "split": folder / SPLIT}
    for what, path in needed.items():
        if not ctx.has(path):
            raise UsageError(f"{ctx.dataset_id}: {path} ({what}) was not fetched; run `medcat fetch {ctx.dataset_id}`.")
    present = {k: folder / name for k, name in label_files.items() if ctx.has(folder / name)}
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in (*needed.values(), *present.values()))
    key = (stats, ctx.available is None)
    cached = _SURVEYS.get(key)
    if cached is not None:
        return cached
    errors: dict[str, list[SampleError]] = {key: [] for key in (*needed, *present)}
    order: list[tuple[str, str]] = []
    images: dict[tuple[str, str], list[tuple[str, str | None]]] = {}
    meta_cols = _header(needed["metadata"])
    for column in ("dicom_id", "subject_id", "study_id", "ViewPosition"):
        if column not in meta_cols:
            raise UsageError(f"{needed['metadata']}: no column {column!r}; header: {meta_cols}")
    for _, row in _csv_rows(needed["metadata"], errors["metadata"]):
        key2 = (row["subject_id"].strip(), row["study_id"].strip())
        if key2 not in images:
            images[key2] = []
            order.append(key2)
        images[key2].append((row["dicom_id"].strip(), row["ViewPosition"].strip() or None))
    split_cols = _header(needed["split"])
    if "dicom_id" not in split_cols or "split" not in split_cols:
        raise UsageError(f"{needed['split']}: expected columns dicom_id and split; header: {split_cols}")
    split = {row["dicom_id"].strip(): row["split"].strip() for _, row in _csv_rows(needed["split"], errors["split"])}
    source = {k: (TEST_SOURCE if k == "test-labeled" else LABEL_SOURCE) for k in present}
    labels = {k: read_labels(p, source[k], p.name, errors[k]) for k, p in present.items()}
    studies = tuple(StudyImages(s, t, tuple(images[(s, t)])) for s, t in order)
    result = Survey(studies, split, labels, {k: tuple(v) for k, v in errors.items() if v})
    _SURVEYS[key] = result
    return result


def mention_values(table: LabelTable | None, study_id: str, item: str) -> dict[str, str | None]:
    """The 14 label columns of a study: mention names, or all null when the study is unlabelled.

    Raises:
        SampleError: a value outside the vocabulary (stage ``labels``).
    """
    raw = table.values.get(study_id) if table is not None else None
    if raw is None:
        return {column_name(obs): None for obs in OBSERVATIONS}
    assert table is not None
    return {
        column_name(obs): MENTION.map(table.source, value, item=item, column=f"{table.file}:{obs}")
        for obs, value in zip(OBSERVATIONS, raw)
    }


# ------------------------------------------------------------------------------------- protocol


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


@dataclass(frozen=True)
class _ErrorUnit:
    config: str
    errors: tuple[SampleError, ...]

    @property
    def name(self) -> str:
        return f"{self.config}@errors"


def features(config: str, ctx: RecipeContext) -> Features:
    """Image-classification with the 14 mention columns; extras ``dicom_id`` and ``labelled``."""
    check_config(DATASET_ID, CONFIGS, config)
    return image_classification_features(label_columns(), {"dicom_id": Value("string"), "labelled": Value("bool")})


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def plan(config: str, ctx: RecipeContext) -> Plan:
    """One unit per study with at least one fetched JPEG; ``--limit`` keeps the first N studies."""
    check_config(DATASET_ID, CONFIGS, config)
    files = {config: TEST_LABELED} if config == "test-labeled" else {config: LABEL_FILES[config]}
    folder = ctx.source_dir
    s = survey(folder, ctx, files)
    table = s.labels.get(config)
    if table is None:
        raise UsageError(f"{ctx.dataset_id}: {folder / files[config]} was not fetched (config {config!r}); "
                         f"{'it exists from version 2.1.0 on; ' if config == 'test-labeled' else ''}run `medcat fetch {ctx.dataset_id}`.")
    units: list[Any] = []
    not_fetched: list[str] = []
    errors: list[SampleError] = s.errors_of("metadata", "split", config)
    for study in s.studies:
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
            path = folder / study.folder / f"{dicom_id}.jpg"
            rel = _rel(path, ctx.root)
            if not ctx.has(path):
                not_fetched.append(rel)
                continue
            if config == "test-labeled":
                split = "test"
            else:
                upstream = s.split.get(dicom_id)
                if upstream is None:
                    errors.append(SampleError(rel, "split", f"dicom_id {dicom_id} is not in {SPLIT}"))
                    continue
                try:
                    split = map_upstream_split(upstream, UPSTREAM_SPLITS, item=rel)
                except SampleError as err:
                    errors.append(err)
                    continue
            images.append((dicom_id, rel, view, split))
        if images:
            units.append(JpgStudyUnit(config, ctx.source_tag, str(ctx.root), study.subject_id, study.study_id,
                                      tuple(images), labels, label_error, ctx.options.image))
    if ctx.options.limit is not None:
        units = units[: ctx.options.limit]
    if errors:
        units.append(_ErrorUnit(config, tuple(errors)))
    return Plan(units=units, not_fetched=not_fetched)


def convert_unit(unit: JpgStudyUnit | _ErrorUnit) -> Iterator[Row | SampleError]:
    """Yield one row per JPEG of the study; an unreadable JPEG or bad label value is a ``SampleError``."""
    if isinstance(unit, _ErrorUnit):
        yield from unit.errors
        return
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


def card_notes(ctx: RecipeContext) -> list[str]:
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
    try:
        s = survey(ctx.source_dir, ctx, LABEL_FILES)
    except UsageError:
        return notes
    for name, table in sorted(s.labels.items()):
        unlabelled = sum(1 for st in s.studies if st.study_id not in table.values)
        notes.append(f"{LABEL_FILES[name]}: {len(table.values)} labelled studies; {unlabelled} studies of the metadata have no row (unlabelled).")
    return notes
