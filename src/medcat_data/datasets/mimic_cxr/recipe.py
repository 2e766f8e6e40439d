"""MIMIC-CXR (DICOM + reports) -> report-generation (``reports``) and image-classification (``chexpert``, ``negbio``).

A work unit is one study of ``cxr-record-list.csv.gz`` (the source's file index, upstream order).
Plans stream: the survey's one pass over the record list finds what was not fetched and the
damaged lines, and units are made as the executor takes them, each referring to its study's raw
label tuple in the survey (the worker maps it to mention names). A record list whose studies are
not contiguous (never upstream) is grouped in memory first, as before.

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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    LabelTable,
    csv_header,
    csv_rows,
    label_columns,
    mention_names,
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
    raw_labels: tuple[str, ...] | None
    """The study's 14 raw values (the survey's tuple; None: unlabelled), mapped to mention names in the worker."""
    label_file: str
    label_source: str
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


Group = tuple[str, str, Sequence[tuple[str, str]]]
"""``(subject_id, study_id, [(dicom_id, path relative to the source folder)])`` of the record list."""


@dataclass(frozen=True)
class _Records:
    """What one pass over the record list found, before any unit is made (shared by every config's plan)."""

    missing: frozenset[str]
    """Record-list paths of the DICOMs not fetched."""
    not_fetched: tuple[str, ...]
    errors: tuple[SampleError, ...]
    """Damaged lines of the record list."""
    studies: int
    """Studies with at least one fetched DICOM."""
    grouped: tuple[Group, ...] | None
    """The studies, grouped in memory, when the record list's are not contiguous (else streamed again)."""


@dataclass(frozen=True)
class Survey:
    """What every config reads: the record list (checked), the companion's label folder and its views."""

    record_list: Path
    labels: LabelFolder
    views: Mapping[str, str | None] = field(default_factory=dict)
    """dicom_id -> the metadata's ViewPosition (the label folder's, shared with its split)."""
    _passes: list[tuple[RecipeContext, _Records]] = field(default_factory=list, compare=False, repr=False)

    def records(self, ctx: RecipeContext) -> _Records:
        """Return the record-list pass for ``ctx`` (made by the first plan, reused by the others)."""
        for seen, found in self._passes:
            if seen == ctx:
                return found
        found = _scan_records(ctx, self.record_list)
        self._passes.append((ctx, found))
        return found


class _Reports:
    """Where each study's report is: the study list's loose paths, else a member of the reports zip.

    Only what cannot be derived is held: a study-list path that is upstream's
    ``files/pXX/p<subject>/s<study>.txt`` of the subject the metadata gives the study is one flag
    per study (``listed``), and the zip's member names are read only when a loose report is missing.
    """

    def __init__(self, ctx: RecipeContext, labels: LabelFolder) -> None:
        study_list = ctx.source_dir / STUDY_LIST
        archive = ctx.source_dir / REPORTS_ZIP
        self.ctx = ctx
        self.labels = labels
        self.loose: dict[str, str] = {}
        """study_id -> report path relative to the source folder, where it is not the derived one."""
        self.subjects: dict[str, str] = {}
        """study_id -> subject_id of a study-list line whose path is the derived one, where the metadata does not say that subject."""
        self.listed = bytearray(len(labels.studies))
        """1 at the position of a metadata study whose study-list line has the derived path of the metadata's subject."""
        errors: list[SampleError] = []
        if ctx.has(study_list) and "path" in csv_header(study_list):
            for _, row in csv_rows(study_list, errors):
                study, path = row["study_id"].strip(), row["path"].strip()
                subject = (row.get("subject_id") or "").strip()
                self.loose.pop(study, None)
                self.subjects.pop(study, None)
                known = labels.study(study)
                if known is not None:
                    self.listed[labels.index[study]] = 0
                if subject and path == _report_path(subject, study):
                    if known is not None and known.subject_id == subject:
                        self.listed[labels.index[study]] = 1
                    else:
                        self.subjects[study] = subject
                else:
                    self.loose[study] = path
        self.errors = tuple(errors)
        """Damaged lines of the study list."""
        self.zip_path = archive if ctx.has(archive) else None
        self._members: dict[str, str] | None = None
        if self.zip_path is not None:
            try:
                with zipfile.ZipFile(self.zip_path):
                    pass
            except zipfile.BadZipFile as err:
                raise UpstreamFormatError(ctx.dataset_id, ctx.rel(self.zip_path), f"is not a readable zip ({err})") from err

    def loose_path(self, subject: str, study: str) -> str:
        if study in self.loose:
            return self.loose[study] or _report_path(subject, study)
        listed = self.subjects.get(study)
        if listed is None:
            known = self.labels.study(study)
            if known is not None and self.listed[self.labels.index[study]]:
                listed = known.subject_id
        return _report_path(listed or subject, study)

    def member(self, key: str) -> str | None:
        """Return the zip member whose name ends in ``key`` (``p<subject>/s<study>.txt``)."""
        if self.zip_path is None:
            return None
        if self._members is None:
            self._members = {}
            with zipfile.ZipFile(self.zip_path) as handle:
                for name in handle.namelist():
                    if name.endswith(".txt"):
                        self._members["/".join(name.split("/")[-2:])] = name
        return self._members.get(key)


def _report_path(subject: str, study: str) -> str:
    return f"files/p{subject[:2]}/p{subject}/s{study}.txt"


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
        labels = read_label_folder(folder, ctx, LABEL_FILES)
        return Survey(record_list, labels, labels.views)

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Report-generation (``reports``) or image-classification with the 14 CheXpert mention columns."""
        self.check_config(config)
        if config == "reports":
            return report_generation_features(label_columns(), {"dicom_ids": List(Value("string")), "labelled": Value("bool")})
        return image_classification_features(label_columns(), {"dicom_id": Value("string"), "labelled": Value("bool")})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[Unit]:
        """One unit per study of the record list with at least one fetched DICOM; ``--limit`` keeps N studies.

        The units are made lazily (``_Units``), as the executor takes them.
        """
        self.check_config(config)
        return _plan(config, ctx, survey)

    def combine_units(self, plans: Mapping[str, Plan[Unit]]) -> Iterable[Unit | ErrorUnit]:
        """Merge the configs' units into one unit per study (first-seen order); error units stay apart, last.

        ``reports``, ``chexpert`` and ``negbio`` read the same DICOMs: together they decode each once
        instead of once per config (three times for a full run). Rows still go to their own config.
        Plans of this recipe over one contiguous record list are merged as they stream (one walk
        over the record list); others are merged in memory.
        """
        streams = [plan.units for plan in plans.values()]
        if streams and all(isinstance(u, _Units) for u in streams):
            units = [u for u in streams if isinstance(u, _Units)]
            if all(u.records is units[0].records and u.records.grouped is None for u in units):
                return _Combined(units)
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


def _record_runs(record_list: Path, errors: list[SampleError]) -> Iterator[Group]:
    """Yield the record list's contiguous runs of one ``(subject_id, study_id)``, in file order."""
    key: tuple[str, str] | None = None
    images: list[tuple[str, str]] = []
    for _, row in csv_rows(record_list, errors):
        here = (row["subject_id"].strip(), row["study_id"].strip())
        if here != key:
            if key is not None:
                yield key[0], key[1], images
            key, images = here, []
        images.append((row["dicom_id"].strip(), row["path"].strip()))
    if key is not None:
        yield key[0], key[1], images


def _scan_records(ctx: RecipeContext, record_list: Path) -> _Records:
    """Read the record list once: which DICOMs were not fetched, its damaged lines, whether studies are contiguous."""
    errors: list[SampleError] = []
    missing: set[str] = set()
    seen: set[str] = set()
    contiguous = True
    for _, study, images in _record_runs(record_list, errors):
        if study in seen:
            contiguous = False  # a study met again, or one id under two subjects: group in memory
        seen.add(study)
        for _, rel_path in images:
            if rel_path not in missing and not ctx.has(ctx.source_dir / rel_path):
                missing.add(rel_path)
    del seen
    grouped: tuple[Group, ...] | None = None
    if not contiguous:
        grouped = _grouped(record_list)
        groups: Iterable[Group] = grouped
    else:
        groups = _record_runs(record_list, [])
    not_fetched: list[str] = []
    studies = 0
    for _, _, images in groups:
        fetched = 0
        for _, rel_path in images:
            if rel_path in missing:
                not_fetched.append(ctx.rel(ctx.source_dir / rel_path))
            else:
                fetched += 1
        studies += fetched > 0
    return _Records(frozenset(missing), tuple(not_fetched), tuple(errors), studies, grouped)


def _grouped(record_list: Path) -> tuple[Group, ...]:
    """Group the record list by ``(subject_id, study_id)`` in first-seen order (a list whose studies are not contiguous)."""
    studies: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for subject, study, images in _record_runs(record_list, []):
        studies.setdefault((subject, study), []).extend(images)
    return tuple((subject, study, tuple(images)) for (subject, study), images in studies.items())


@dataclass(frozen=True)
class _Maker:
    """What one config's units are made from: made once per plan and shared by its units."""

    config: str
    ctx: RecipeContext
    survey: Survey
    source_tag: str
    root: str
    table: LabelTable
    mapping: Mapping[str, str]
    reports: _Reports | None

    def unit(self, subject: str, study: str, images: Sequence[tuple[str, str]], missing: frozenset[str]) -> DicomStudyUnit | None:
        """Return the unit of one study, or None when none of its DICOMs was fetched."""
        ctx, views = self.ctx, self.survey.views
        fetched = tuple(
            (dicom_id, ctx.rel(ctx.source_dir / rel_path), views.get(dicom_id)) for dicom_id, rel_path in images if rel_path not in missing
        )
        if not fetched:
            return None
        item = f"files/p{subject[:2]}/p{subject}/s{study}"
        split: str | None = None
        split_error: SampleError | None = None
        upstream = self.survey.labels.split.get(fetched[0][0])
        try:
            if upstream is None:
                raise SampleError(fetched[0][1], "split", f"dicom_id {fetched[0][0]} is not in {SPLIT}")
            split = map_upstream_split(upstream, self.mapping, item=item)
        except SampleError as err:
            split_error = err
        report = _report_ref(ctx, self.reports, subject, study) if self.reports is not None else None
        return DicomStudyUnit(self.config, self.source_tag, self.root, subject, study, fetched, split, split_error,
                              self.table.values.get(study), self.table.file, self.table.source, report, ctx.options.image)


class _Units:
    """One config's units, made as they are taken; error units (damaged index lines) last. Has a length."""

    def __init__(self, maker: _Maker, records: _Records, errors: Sequence[SampleError]) -> None:
        self.maker, self.records, self.errors = maker, records, tuple(errors)

    def studies(self) -> Iterator[DicomStudyUnit]:
        records, limit = self.records, self.maker.ctx.options.limit
        groups = records.grouped if records.grouped is not None else _record_runs(self.maker.survey.record_list, [])
        made = 0
        for subject, study, images in groups:
            if limit is not None and made >= limit:
                return
            unit = self.maker.unit(subject, study, images, records.missing)
            if unit is not None:
                made += 1
                yield unit

    def error_unit(self) -> ErrorUnit | None:
        return ErrorUnit(self.maker.config, self.errors) if self.errors else None

    def __iter__(self) -> Iterator[Unit | ErrorUnit]:
        yield from self.studies()
        last = self.error_unit()
        if last is not None:
            yield last

    def study_count(self) -> int:
        limit = self.maker.ctx.options.limit
        return self.records.studies if limit is None else min(limit, self.records.studies)

    def __len__(self) -> int:
        return self.study_count() + bool(self.errors)


class _Combined:
    """The units of several configs' plans merged per study as they stream: one walk over the record list."""

    def __init__(self, streams: Sequence[_Units]) -> None:
        self.streams = streams

    def __iter__(self) -> Iterator[Unit | ErrorUnit]:
        first = self.streams[0]
        records, limit = first.records, first.maker.ctx.options.limit
        made = 0
        for subject, study, images in _record_runs(first.maker.survey.record_list, []):
            if limit is not None and made >= limit:
                break
            parts = [u.maker.unit(subject, study, images, records.missing) for u in self.streams]
            fetched = [p for p in parts if p is not None]
            if fetched:
                made += 1
                yield SharedStudyUnit(tuple(fetched)) if len(fetched) > 1 else fetched[0]
        for stream in self.streams:
            last = stream.error_unit()
            if last is not None:
                yield last

    def __len__(self) -> int:
        return self.streams[0].study_count() + sum(bool(u.errors) for u in self.streams)


def _report_ref(ctx: RecipeContext, reports: _Reports, subject: str, study: str) -> tuple[str, str | None] | None:
    path = ctx.source_dir / reports.loose_path(subject, study)
    if ctx.has(path):
        return ctx.rel(path), None
    member = reports.member(f"p{subject}/s{study}.txt")
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
    reports = _Reports(ctx, s) if config == "reports" else None
    records = survey.records(ctx)
    # Damaged lines of the index files: one errors.jsonl line each; the rest of each file is used.
    errors = s.errors_of("metadata", "split", labeller) + list(reports.errors if reports is not None else ()) + list(records.errors)
    maker = _Maker(config, ctx, survey, ctx.source_tag, str(ctx.source_dir), table, ctx.splits_of(config), reports)
    return Plan(units=_Units(maker, records, errors), not_fetched=records.not_fetched)


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
    problem = unit.split_error
    labels: dict[str, str | None] = {}
    if problem is None:
        item = f"files/p{unit.subject_id[:2]}/p{unit.subject_id}/s{unit.study_id}"
        try:
            labels = mention_names(unit.raw_labels, unit.label_file, unit.label_source, item)
        except SampleError as err:
            problem = err
    if problem is not None:
        for _, rel, _ in unit.images:
            yield SampleError(rel, problem.stage, problem.reason)
        return
    assert unit.split is not None
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
