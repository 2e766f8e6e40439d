"""MIMIC-CXR (DICOM + reports) -> report-generation (``reports``) and image-classification (``chexpert``, ``negbio``).

A work unit is one study of ``cxr-record-list.csv.gz`` (the source's file index, upstream order).

* ``reports``: one row per study: its DICOMs decoded to PNG (``codecs.dicom``, first frame) in
  record-list order with their metadata ``ViewPosition`` in ``views``; ``findings`` and
  ``impression`` are the report's ``FINDINGS:`` and ``IMPRESSION:`` sections with whitespace
  collapsed ("" when the report has no such section, null when the study has no report); ``labels``
  the study's 14 CheXpert mention states (null when the study is unlabelled). An undecodable DICOM
  is a ``SampleError`` and the study keeps its other images; a study left with none has no row.
* ``chexpert`` / ``negbio``: one row per DICOM with the study's labels, as ``mimic-cxr-jpg``.

Labels, views and the official split come from the companion ``mimic-cxr-jpg-labels`` (the
``mimic-cxr-2.0.0-*.csv.gz`` files of MIMIC-CXR-JPG), joined on ``study_id`` / ``dicom_id``, read
once by the survey with the ``mimic-cxr-jpg`` kit's readers (``labels.py``); upstream split values are mapped by
the registry's ``upstream_splits``. Reports are read from the loose
``files/pXX/p<subject>/s<study>.txt`` (paths from ``cxr-study-list.csv.gz``) when fetched, else in
place from ``mimic-cxr-reports.zip`` (the member whose name ends in ``p<subject>/s<study>.txt``; the
zip's top folder is unconfirmed). DICOMs listed but not fetched are "not fetched", not errors.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from datasets import Features, List, Value

from medcat_data.converters.codecs.dicom import decode_dicom
from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import image_classification_features, report_generation_features
from medcat_data.converters.splits import map_upstream_split
from medcat_data.converters.units import ErrorUnit, Row
from medcat_data.datasets.mimic_cxr_jpg.labels import (
    LABEL_FILES,
    SPLIT,
    LabelFolder,
    csv_header,
    csv_rows,
    label_columns,
    mention_values,
    read_label_folder,
)
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

__all__ = ["CONFIGS", "DATASET_ID", "RECIPE", "DicomStudyUnit", "MimicCxr", "SharedStudyUnit", "Survey", "report_sections"]

DATASET_ID = "mimic-cxr"
CONFIGS: tuple[str, ...] = ("reports", "chexpert", "negbio")
COMPANION = "mimic-cxr-jpg-labels"
RECORD_LIST = "cxr-record-list.csv.gz"
STUDY_LIST = "cxr-study-list.csv.gz"
REPORTS_ZIP = "mimic-cxr-reports.zip"
REPORT_LABELS = "chexpert"
"""The labeller whose labels the ``reports`` config carries."""

_HEADING = re.compile(r"^\s*([A-Z][A-Z ()/&-]*[A-Z)]):")


def report_sections(text: str) -> dict[str, str]:
    """Split a report into its upper-case ``HEADING:`` sections (text after the colon, whitespace collapsed).

    A heading is an upper-case phrase at the start of a line followed by a colon (``FINDINGS:``,
    ``IMPRESSION:``, ``WET READ:``); text before the first heading is dropped. A repeated heading keeps
    its first occurrence.
    """
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            name = match.group(1).strip()
            current = [] if name in sections else sections.setdefault(name, [])
            line = line[match.end():]
        if current is not None:
            current.append(line)
    return {name: " ".join(" ".join(parts).split()) for name, parts in sections.items()}


@dataclass(frozen=True)
class DicomStudyUnit:
    """One study of one config: its fetched DICOMs, labels, split and report location."""

    config: str
    source_tag: str
    root: str
    subject_id: str
    study_id: str
    images: tuple[tuple[str, str, str | None], ...]
    """``(dicom_id, path relative to root, view)``."""
    split: str | None
    split_error: SampleError | None
    labels: Mapping[str, str | None] | None
    label_error: SampleError | None
    report: tuple[str, str | None] | None
    """``(path relative to root, zip member or None)``; None when the study has no report."""
    image_options: ImageOptions

    @property
    def name(self) -> str:
        return f"{self.config}@s{self.study_id}"


@dataclass(frozen=True)
class SharedStudyUnit:
    """One study for several configs at once, so that each of its DICOMs is decoded once."""

    parts: tuple[DicomStudyUnit, ...]

    @property
    def name(self) -> str:
        return f"{'+'.join(p.config for p in self.parts)}@s{self.parts[0].study_id}"


Unit = Union[DicomStudyUnit, SharedStudyUnit]


@dataclass(frozen=True)
class Survey:
    """What every config reads: the record list (checked) and the companion's label folder."""

    record_list: Path
    labels: LabelFolder


@dataclass(frozen=True)
class _Reports:
    loose: Mapping[str, str]
    """study_id -> report path relative to the source folder (from the study list)."""
    members: Mapping[str, str]
    """``p<subject>/s<study>.txt`` -> member name in the reports zip."""
    zip_path: Path | None
    errors: tuple[SampleError, ...] = ()
    """Damaged lines of the study list."""


# ------------------------------------------------------------------------------------- recipe


class MimicCxr(Recipe[Survey, Unit]):
    """MIMIC-CXR: studies and DICOMs with the companion's labels (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = CONFIGS

    def survey(self, ctx: RecipeContext) -> Survey:
        """Check the record list, then read the companion's metadata, split and label files once.

        Raises:
            UsageError: the record list or the companion's files were not fetched.
            UpstreamFormatError: the record list lacks a column read.
        """
        record_list = ctx.source_dir / RECORD_LIST
        if not ctx.has(record_list):
            raise UsageError(f"{ctx.dataset_id}: {record_list} was not fetched; run `medcat fetch {ctx.dataset_id}`.")
        require_columns(ctx, record_list, csv_header(record_list), ("subject_id", "study_id", "dicom_id", "path"))
        folder = ctx.companions.get(COMPANION)
        if folder is None:
            raise UsageError(f"{ctx.dataset_id}: the companion source {COMPANION!r} (labels, split, metadata) is not configured.")
        return Survey(record_list, read_label_folder(folder, ctx, LABEL_FILES))

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Report-generation (``reports``) or image-classification with the 14 CheXpert mention columns."""
        self.check_config(config)
        if config == "reports":
            return report_generation_features(label_columns(), {"dicom_ids": List(Value("string")), "labelled": Value("bool")})
        return image_classification_features(label_columns(), {"dicom_id": Value("string"), "labelled": Value("bool")})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[Unit]:
        """One unit per study of the record list with at least one fetched DICOM; ``--limit`` keeps N studies."""
        self.check_config(config)
        return _plan(config, ctx, survey)

    def combine_units(self, plans: Mapping[str, Plan[Unit]]) -> Iterable[Unit | ErrorUnit]:
        """Merge the configs' units into one unit per study (first-seen order); error units stay apart, last.

        ``reports``, ``chexpert`` and ``negbio`` read the same DICOMs: together they decode each once
        instead of once per config (three times for a full run). Rows still go to their own config.
        """
        by_study: dict[str, list[DicomStudyUnit]] = {}
        apart: list[Unit | ErrorUnit] = []
        for plan in plans.values():
            for unit in plan.units:
                if isinstance(unit, DicomStudyUnit):
                    by_study.setdefault(unit.study_id, []).append(unit)
                else:
                    apart.append(unit)
        merged: list[Unit | ErrorUnit] = [SharedStudyUnit(tuple(parts)) if len(parts) > 1 else parts[0] for parts in by_study.values()]
        return merged + apart

    def convert_unit(self, unit: Unit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """State where labels, split and reports come from and how missing sections appear."""
        return [
            f"Labels, views and the official split come from the {COMPANION!r} companion (MIMIC-CXR-JPG's "
            "mimic-cxr-2.0.0-*.csv.gz), joined on study_id / dicom_id; upstream 'validate' is 'validation' here.",
            "Labels are per study: positive = 1.0, negative = 0.0, uncertain = -1.0, unmentioned = empty. A study "
            "absent from the label file is unlabelled: null labels and 'labelled' false (never 'unmentioned').",
            "reports: 'findings'/'impression' are the FINDINGS:/IMPRESSION: sections, whitespace collapsed; \"\" "
            "when the report has no such section, null when no report was found. Labels are the CheXpert labeller's.",
            "DICOMs are decoded to PNG (first frame, VOI/window as in --window). The DICOMs are not covered by "
            "SHA256SUMS.txt upstream; they were checked by size and the DICM magic at fetch (trust on first use).",
        ]


def _reports(ctx: RecipeContext) -> _Reports:
    """Index the loose reports (study list) and the members of the reports zip; only ``reports`` reads them.

    Raises:
        UpstreamFormatError: the reports zip is not a readable zip.
    """
    study_list = ctx.source_dir / STUDY_LIST
    archive = ctx.source_dir / REPORTS_ZIP
    loose: dict[str, str] = {}
    errors: list[SampleError] = []
    if ctx.has(study_list) and "path" in csv_header(study_list):
        loose = {row["study_id"].strip(): row["path"].strip() for _, row in csv_rows(study_list, errors)}
    members: dict[str, str] = {}
    zip_path = archive if ctx.has(archive) else None
    if zip_path is not None:
        try:
            with zipfile.ZipFile(zip_path) as handle:
                for name in handle.namelist():
                    if name.endswith(".txt"):
                        members["/".join(name.split("/")[-2:])] = name
        except zipfile.BadZipFile as err:
            raise UpstreamFormatError(ctx.dataset_id, ctx.rel(zip_path), f"is not a readable zip ({err})") from err
    return _Reports(loose, members, zip_path, tuple(errors))


def _report_ref(ctx: RecipeContext, reports: _Reports, subject: str, study: str) -> tuple[str, str | None] | None:
    rel = reports.loose.get(study) or f"files/p{subject[:2]}/p{subject}/s{study}.txt"
    path = ctx.source_dir / rel
    if ctx.has(path):
        return ctx.rel(path), None
    member = reports.members.get(f"p{subject}/s{study}.txt")
    if member is not None and reports.zip_path is not None:
        return ctx.rel(reports.zip_path), member
    return None


def _plan(config: str, ctx: RecipeContext, survey: Survey) -> Plan[Unit]:
    labeller = REPORT_LABELS if config == "reports" else config
    s = survey.labels
    table = s.labels.get(labeller)
    if table is None:
        raise UsageError(f"{ctx.dataset_id}: {LABEL_FILES[labeller]} of the {COMPANION!r} companion was not fetched; "
                         f"run `medcat fetch {ctx.dataset_id}`.")
    views = {dicom_id: view for st in s.studies for dicom_id, view in st.images}
    reports = _reports(ctx) if config == "reports" else None
    mapping = ctx.splits_of(config)

    # Damaged lines of the index files: one errors.jsonl line each; the rest of each file is used.
    errors = s.errors_of("metadata", "split", labeller) + list(reports.errors if reports is not None else ())
    order: list[tuple[str, str]] = []
    studies: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for _, row in csv_rows(survey.record_list, errors):
        key = (row["subject_id"].strip(), row["study_id"].strip())
        if key not in studies:
            studies[key] = []
            order.append(key)
        studies[key].append((row["dicom_id"].strip(), row["path"].strip()))

    units: list[Unit | ErrorUnit] = []
    not_fetched: list[str] = []
    for subject, study in order:
        images = []
        for dicom_id, rel_path in studies[(subject, study)]:
            path = ctx.source_dir / rel_path
            if not ctx.has(path):
                not_fetched.append(ctx.rel(path))
                continue
            images.append((dicom_id, ctx.rel(path), views.get(dicom_id)))
        if not images:
            continue
        item = f"files/p{subject[:2]}/p{subject}/s{study}"
        split: str | None = None
        split_error: SampleError | None = None
        upstream = s.split.get(images[0][0])
        try:
            if upstream is None:
                raise SampleError(images[0][1], "split", f"dicom_id {images[0][0]} is not in {SPLIT}")
            split = map_upstream_split(upstream, mapping, item=item)
        except SampleError as err:
            split_error = err
        label_error: SampleError | None = None
        labels: Mapping[str, str | None] | None
        try:
            labels = mention_values(table, study, item)
        except SampleError as err:
            labels, label_error = None, err
        report = _report_ref(ctx, reports, subject, study) if reports is not None else None
        units.append(DicomStudyUnit(config, ctx.source_tag, str(ctx.source_dir), subject, study, tuple(images), split,
                                    split_error, labels, label_error, report, ctx.options.image))
    if ctx.options.limit is not None:
        units = units[: ctx.options.limit]
    if errors:
        units.append(ErrorUnit(config, tuple(errors)))
    return Plan(units=units, not_fetched=not_fetched)


# ------------------------------------------------------------------------------------- converting


def _read_report(root: Path, ref: tuple[str, str | None], item: str) -> str:
    rel, member = ref
    where = f"{rel}:{member}" if member else rel
    try:
        if member is None:
            data = (root / rel).read_bytes()
        else:
            with zipfile.ZipFile(root / rel) as archive:
                data = archive.read(member)
    except OSError as err:
        raise SampleError(item, "read", f"cannot read the report {where}: {err.strerror or err}") from err
    except (KeyError, zipfile.BadZipFile) as err:
        raise SampleError(item, "read", f"cannot read the report {where}: {err}") from err
    except (EOFError, zlib.error) as err:
        raise SampleError(item, "read", f"the report {where} is a truncated or corrupt zip member ({err})") from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SampleError(item, "read", f"the report {where} has bytes not valid UTF-8 at byte {err.start} ({err.reason})") from None


Decoded = dict[str, Union[EncodedImage, SampleError]]
"""Decoded images of one unit by relative path (a failure is kept and re-raised per config)."""


def convert_unit(unit: Unit) -> Iterator[Row | SampleError]:
    """Yield the study's row (``reports``) or one row per DICOM; failures are ``SampleError``s."""
    decoded: Decoded = {}
    for part in unit.parts if isinstance(unit, SharedStudyUnit) else (unit,):
        for out in _convert_study(part, decoded):
            yield out.at(part.config, part.split) if isinstance(out, SampleError) else out


def _decode_once(root: Path, rel: str, options: ImageOptions, decoded: Decoded) -> EncodedImage:
    result = decoded.get(rel)
    if result is None:
        try:
            result = decode_dicom(root / rel, options)[0]
        except SampleError as err:
            result = SampleError(rel, err.stage, err.reason)
        decoded[rel] = result
    if isinstance(result, SampleError):
        raise result
    return result


def _convert_study(unit: DicomStudyUnit, cache: Decoded) -> Iterator[Row | SampleError]:
    root = Path(unit.root)
    problem = unit.split_error or unit.label_error
    if problem is not None:
        for _, rel, _ in unit.images:
            yield SampleError(rel, problem.stage, problem.reason)
        return
    assert unit.split is not None
    labels = dict(unit.labels or {})
    labelled = any(v is not None for v in labels.values())
    decoded: list[tuple[str, str | None, Any]] = []
    for dicom_id, rel, view in unit.images:
        try:
            image = _decode_once(root, rel, unit.image_options, cache)
        except SampleError as err:
            yield err
            continue
        png = {"bytes": image.data, "path": f"{dicom_id}.{image.format}"}
        if unit.config != "reports":
            yield Row(unit.config, unit.split, {
                "image": png, **labels, "patient_id": unit.subject_id, "study_id": unit.study_id, "view": view,
                "laterality": None, "modality": image.attributes.get("modality"), "source": unit.source_tag,
                "sample_id": dicom_id, "split": unit.split, "dicom_id": dicom_id, "labelled": labelled,
            })
        else:
            decoded.append((dicom_id, view, png))
    if unit.config != "reports" or not decoded:
        return
    item = f"files/p{unit.subject_id[:2]}/p{unit.subject_id}/s{unit.study_id}.txt"
    findings: str | None = None
    impression: str | None = None
    if unit.report is not None:
        try:
            sections = report_sections(_read_report(root, unit.report, item))
        except SampleError as err:
            yield err
            return
        findings, impression = sections.get("FINDINGS", ""), sections.get("IMPRESSION", "")
    yield Row(unit.config, unit.split, {
        "images": [png for _, _, png in decoded], "views": [view for _, view, _ in decoded],
        "findings": findings, "impression": impression, "labels": labels if labelled else None,
        "patient_id": unit.subject_id, "study_id": unit.study_id, "source": unit.source_tag,
        "sample_id": f"s{unit.study_id}", "split": unit.split, "dicom_ids": [d for d, _, _ in decoded],
        "labelled": labelled,
    })


RECIPE = MimicCxr()
