"""VQA-RAD: radiology images with clinician-written questions and answers -> the ``vqa`` schema.

One row per question, from either source, with the same features:

* ``osf`` (the original release): ``VQA_RAD Dataset Public.json``, a list of objects (``qid``,
  ``phrase_type``, ``qid_linked_id``, ``image_name``, ``image_organ``, ``question``,
  ``question_type``, ``answer``, ``answer_type``...) and the JPEGs in ``VQA_RAD Image Folder/``.
  The JSON is one array of a few thousand items (about 1 MB upstream), read once while planning;
  the images are read one at a time in the workers.
* ``hf`` (``flaviagiammarino/vqa-rad``): ``data/{train,test}-*.parquet`` with ``image``
  ({bytes, path}), ``question`` and ``answer`` only: one work unit per row group, read in small
  batches.

Columns: the VQA core of ``schemas.vqa_features`` (``images`` a one-element list, ``question``,
``answer`` always a string: the JSON sometimes holds numbers; ``answer_type`` ``closed``/``open``
from upstream's ``CLOSED``/``OPEN``, null from ``hf``, which has no such field and is never
guessed; ``options`` empty and ``answer_idx`` null, as upstream lists no answer options), then
``qid``, ``qid_linked_id``, ``phrase_type``, ``question_type``, ``image_organ`` (upstream
spellings, strings; null from ``hf``) and ``image_name``.

Splits are upstream's: from ``osf``, a ``phrase_type`` starting with ``test`` (``test_freeform``,
``test_para``) is ``test``, anything else ``train``; from ``hf``, the parquet file's split.
Paraphrases share ``qid_linked_id`` with their original; the official split is kept as published
and any link group found in both splits is counted in the card (and logged), never moved.

``sample_id`` is ``<12 hex of sha1(image bytes)>-<10 hex of sha1(question, case and spaces
folded)>`` in both sources: the Hub copy names no image (its ``image.path`` is null), so the image
is identified by content, and the same question on the same image bytes gets the same id from
either source. A repeat within a dataset gets ``-q<qid>`` (``osf``) or ``-<split><row>`` (``hf``)
appended; an ``osf`` question whose image is missing keys on the image's file stem instead, an
``hf`` row without image bytes is ``<split>-<row>``. Keys are computed while planning (image files
and bytes hashed in chunks and batches, never held).

A missing image (``osf``) or undecodable image bytes are a ``SampleError``; so is an
``answer_type`` that is neither ``CLOSED`` nor ``OPEN``. This module reads local files only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from datasets import Features, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.hub_parquet import RowGroupUnit, split_parquet
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import vqa_features
from medcat_data.converters.units import Row
from medcat_data.converters.vocab.vqa import upstream_answer_type
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

log = logging.getLogger(__name__)

__all__ = ["EXTRA_COLUMNS", "RECIPE", "HfUnit", "OsfUnit", "VqaRad", "answer_type", "image_key", "sample_key"]

DATASET_ID = "vqa-rad"
HfUnit = RowGroupUnit
JSON_NAME = "VQA_RAD Dataset Public.json"
IMAGE_FOLDER = "VQA_RAD Image Folder"
UNIT_ITEMS = 64
_HF_BATCH_ROWS = 32
"""Rows decoded at a time from a parquet row group (images included), bounding a worker's memory."""
EXTRA_COLUMNS: tuple[str, ...] = ("qid", "qid_linked_id", "phrase_type", "question_type", "image_organ", "image_name")
"""Upstream columns kept after the VQA core (strings, upstream spellings)."""

_CARRIED_FIELDS = ("qid", "phrase_type", "qid_linked_id", "image_name", "image_organ", "question_type", "question", "answer", "answer_type")
"""The JSON fields a work unit carries to its worker."""


def answer_type(value: Any) -> str | None:
    """Map upstream's ``CLOSED``/``OPEN`` (any case, stray spaces) to ``closed``/``open``; else None."""
    return upstream_answer_type("vqa-rad answer_type", value)


def image_key(data: bytes) -> str:
    """Return the image part of a ``sample_id``: 12 hex of the sha1 of the encoded image bytes."""
    return hashlib.sha1(data).hexdigest()[:12]


def sample_key(image: str, question: str) -> str:
    """Return a ``sample_id`` before de-duplication: image key + digest of the case/space-folded question."""
    folded = " ".join(question.lower().split())
    return f"{image}-{hashlib.sha1(folded.encode('utf-8')).hexdigest()[:10]}"


def _file_key(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:12]


def _text(value: Any) -> str | None:
    """Return an upstream scalar as a string (numbers included), None for null or empty."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


# ------------------------------------------------------------------------------------- units


@dataclass(frozen=True)
class OsfUnit:
    """A run of JSON items: ``(index, fields, image path or None, split, sample_id)``."""

    config: str
    source_tag: str
    image: ImageOptions
    image_folder: str
    items: tuple[tuple[int, Mapping[str, Any], Path | None, str, str], ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.config}@osf{self.items[0][0] if self.items else 0}"


# ------------------------------------------------------------------------------------- reading


def find_json(ctx: RecipeContext) -> Path | None:
    """Return the fetched ``VQA_RAD Dataset Public.json`` under the source folder (shallowest), if any."""
    found = sorted(
        (Path(d) / JSON_NAME for d, _, files in os.walk(ctx.source_dir) if JSON_NAME in files),
        key=lambda p: (len(p.parts), str(p)),
    )
    return next((p for p in found if ctx.has(p)), None)


def read_items(path: Path, label: str) -> list[dict[str, Any]]:
    """Return the JSON items of the OSF release.

    Raises:
        UpstreamFormatError: the file is not JSON or not a list of question objects.
    """
    try:
        with path.open(encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except ValueError as err:
        raise UpstreamFormatError(DATASET_ID, label, f"is not valid JSON ({err})") from err
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise UpstreamFormatError(DATASET_ID, label, "is not a list of question objects")
    return data


@dataclass(frozen=True)
class OsfSurvey:
    """The OSF release as read once in the parent: its items, images by name, cross-split groups."""

    json_path: Path
    items: list[dict[str, Any]]
    images: dict[str, Path]
    crossing: list[str]


@dataclass(frozen=True)
class Survey:
    """Which layout the source folder holds: the OSF JSON (read) or the Hub's parquet files."""

    osf: OsfSurvey | None
    parquet: Mapping[str, list[Path]]


def _osf_survey(ctx: RecipeContext, json_path: Path) -> OsfSurvey:
    items = read_items(json_path, ctx.rel(json_path))
    folder = json_path.parent / IMAGE_FOLDER
    images = {p.name: p for p in sorted(folder.iterdir()) if ctx.has(p)} if folder.is_dir() else {}
    survey = OsfSurvey(json_path, items, images, crossing_groups(items))
    if survey.crossing:
        log.warning("%s: %d paraphrase group(s) (qid_linked_id) have questions in both official splits; "
                    "the split is kept as published", DATASET_ID, len(survey.crossing))
    return survey


def osf_split(item: Mapping[str, Any]) -> str:
    """Return the official split of a JSON item: ``test`` when ``phrase_type`` starts with ``test``."""
    return "test" if str(item.get("phrase_type") or "").strip().lower().startswith("test") else "train"


def crossing_groups(items: list[dict[str, Any]]) -> list[str]:
    """Return the ``qid_linked_id`` values whose questions fall in both official splits (sorted)."""
    splits: dict[str, set[str]] = defaultdict(set)
    for item in items:
        link = _text(item.get("qid_linked_id"))
        if link is not None:
            splits[link].add(osf_split(item))
    return sorted(link for link, found in splits.items() if len(found) > 1)


# ------------------------------------------------------------------------------------- recipe


class VqaRad(Recipe[Survey, "OsfUnit | HfUnit"]):
    """VQA-RAD from either source into one ``vqa`` config (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("vqa",)

    def survey(self, ctx: RecipeContext) -> Survey:
        """Find the OSF JSON (read it) or else the Hub's parquet files.

        Raises:
            UsageError: neither layout was fetched.
        """
        json_path = find_json(ctx)
        if json_path is not None:
            return Survey(_osf_survey(ctx, json_path), {})
        parquet = split_parquet(ctx, ("train", "test"))
        if parquet:
            return Survey(None, parquet)
        raise UsageError(
            f"{DATASET_ID}: found neither {JSON_NAME!r} (source osf) nor data/train-*.parquet / data/test-*.parquet "
            f"(source hf) under {ctx.source_dir}. Run `medcat fetch {DATASET_ID} --source {ctx.source}` first."
        )

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the VQA schema with the kept upstream columns (strings) as extras, for either source."""
        self.check_config(config)
        return vqa_features({name: Value("string") for name in EXTRA_COLUMNS})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[OsfUnit | HfUnit]:
        """List the work units of whichever layout the source folder holds (OSF JSON or Hub parquet)."""
        self.check_config(config)
        if survey.osf is not None:
            return Plan(_plan_osf(config, ctx, survey.osf))
        return Plan(_plan_hf(config, ctx, survey.parquet))

    def convert_unit(self, unit: OsfUnit | HfUnit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        return card_notes(survey)


def _plan_osf(config: str, ctx: RecipeContext, survey: OsfSurvey) -> list[OsfUnit]:
    json_path = survey.json_path
    items = survey.items[: ctx.options.limit] if ctx.options.limit is not None else survey.items
    used: set[str] = set()
    keys: dict[str, str] = {}
    planned = []
    for index, item in enumerate(items):
        name = _text(item.get("image_name"))
        question = _text(item.get("question")) or ""
        image = survey.images.get(name or "")
        if image is not None and name not in keys:
            keys[name or ""] = _file_key(image)
        stem = PurePosixPath(name).stem if name else f"q{_text(item.get('qid')) or index}"
        sample_id = sample_key(keys.get(name or "", stem), question)
        if sample_id in used:
            sample_id = f"{sample_id}-q{_text(item.get('qid')) or index}"
        used.add(sample_id)
        fields = {k: item.get(k) for k in _CARRIED_FIELDS}
        planned.append((index, fields, image, osf_split(item), sample_id))
    folder = ctx.rel(json_path.parent / IMAGE_FOLDER)
    return [
        OsfUnit(config, ctx.source_tag, ctx.options.image, folder, tuple(planned[i : i + UNIT_ITEMS]))
        for i in range(0, len(planned), UNIT_ITEMS)
    ]


def _plan_hf(config: str, ctx: RecipeContext, parquet: Mapping[str, list[Path]]) -> list[HfUnit]:
    import pyarrow.parquet as pq

    units: list[HfUnit] = []
    used: set[str] = set()
    remaining = ctx.options.limit
    for split in ("train", "test"):
        for path in parquet.get(split, []):
            pf = pq.ParquetFile(path)
            _check_parquet_columns(ctx, pf, path)
            first = 0
            for group in range(pf.num_row_groups):
                if remaining is not None and remaining <= 0:
                    break
                ids: list[str] = []
                batches = pf.iter_batches(batch_size=_HF_BATCH_ROWS, row_groups=[group], columns=["image.bytes", "question"])
                cells = (cell for batch in batches for cell in batch.to_pylist())
                for offset, cell in enumerate(cells):
                    if remaining is not None and len(ids) >= remaining:
                        break
                    row = first + offset
                    data = (cell.get("image") or {}).get("bytes")
                    question = _text(cell.get("question")) or ""
                    sample_id = sample_key(image_key(data), question) if data else f"{split}-{row}"
                    if sample_id in used:
                        sample_id = f"{sample_id}-{split}{row}"
                    used.add(sample_id)
                    ids.append(sample_id)
                if remaining is not None:
                    remaining -= len(ids)
                units.append(HfUnit(config, ctx.source_tag, ctx.options.image, path, ctx.rel(path), split, group, first, tuple(ids)))
                first += pf.metadata.row_group(group).num_rows
    return units


def _check_parquet_columns(ctx: RecipeContext, pf: Any, path: Path) -> None:
    """Check the Hub copy's columns.

    Raises:
        UpstreamFormatError: a column is missing or ``image`` is not the Hub's ``{bytes, path}`` struct.
    """
    import pyarrow as pa

    schema = pf.schema_arrow
    require_columns(ctx, path, schema.names, ("image", "question", "answer"))
    image_type = schema.field("image").type
    if not pa.types.is_struct(image_type) or image_type.get_field_index("bytes") < 0:
        raise UpstreamFormatError(DATASET_ID, ctx.rel(path), f"has an image column of type {image_type}, not the Hub's struct of bytes and path")


def convert_unit(unit: OsfUnit | HfUnit) -> Iterator[Row | SampleError]:
    """Yield one row per question; a missing or undecodable image or a bad field is a ``SampleError``."""
    if isinstance(unit, HfUnit):
        yield from _convert_hf(unit)
        return
    for index, item, image_path, split, sample_id in unit.items:
        name = _text(item.get("image_name")) or ""
        label = f"{unit.image_folder}/{name}"
        try:
            question, answer = _text(item.get("question")), _text(item.get("answer"))
            if question is None or answer is None:
                raise SampleError(f"{JSON_NAME}#{index}", "parse", f"qid {_text(item.get('qid'))}: no question or no answer")
            kind = answer_type(item.get("answer_type"))
            if kind is None:
                raise SampleError(f"{JSON_NAME}#{index}", "parse",
                                  f"qid {_text(item.get('qid'))}: answer_type {item.get('answer_type')!r} is neither CLOSED nor OPEN")
            if image_path is None:
                raise SampleError(label, "read", f"qid {_text(item.get('qid'))}: image {name!r} is not in the fetched {IMAGE_FOLDER!r}")
            image = load_raster(image_path, unit.image)
        except SampleError as err:
            yield err
            continue
        values: dict[str, Any] = {
            "images": [{"bytes": image.data, "path": name}],
            "question": question,
            "answer": answer,
            "answer_type": kind,
            "options": [],
            "answer_idx": None,
            "source": unit.source_tag,
            "sample_id": sample_id,
            "split": split,
        }
        values.update({column: _text(item.get(column)) for column in EXTRA_COLUMNS})
        yield Row(unit.config, split, values)


def _convert_hf(unit: HfUnit) -> Iterator[Row | SampleError]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(unit.path)
    batches = pf.iter_batches(batch_size=_HF_BATCH_ROWS, row_groups=[unit.row_group], columns=["image", "question", "answer"])
    cells = (cell for batch in batches for cell in batch.to_pylist())
    for offset, (sample_id, cell) in enumerate(zip(unit.sample_ids, cells)):
        row = unit.first_row + offset
        label = f"{unit.rel}#{row}"
        image_cell = cell.get("image") or {}
        question, answer = _text(cell.get("question")), _text(cell.get("answer"))
        try:
            if question is None or answer is None:
                raise SampleError(label, "parse", "no question or no answer")
            image = _decode_bytes(image_cell.get("bytes"), label, unit.image)
        except SampleError as err:
            yield err
            continue
        name = _text(image_cell.get("path"))
        values: dict[str, Any] = {
            "images": [{"bytes": image.data, "path": name}],
            "question": question,
            "answer": answer,
            "answer_type": None,
            "options": [],
            "answer_idx": None,
            "source": unit.source_tag,
            "sample_id": sample_id,
            "split": unit.split,
        }
        values.update({column: None for column in EXTRA_COLUMNS})
        values["image_name"] = name
        yield Row(unit.config, unit.split, values)


def _decode_bytes(data: bytes | None, label: str, options: ImageOptions) -> EncodedImage:
    """Check (and, if asked, re-encode) embedded image bytes through the raster codec."""
    if not data:
        raise SampleError(label, "read", "the image cell holds no bytes")
    return load_raster_bytes(data, label, options)


def card_notes(survey: Survey) -> list[str]:
    """Record the split rule, paraphrase groups across splits, and what each source leaves null."""
    notes = [
        "answer_type is upstream's CLOSED/OPEN as closed/open; the Hugging Face copy has no such field, so it "
        "is null there (never guessed from the answer). options is empty and answer_idx null: VQA-RAD lists no "
        "answer options.",
        "sample_id is <sha1 of the image bytes, 12 hex>-<sha1 of the case-folded question, 10 hex>, equal across "
        "the osf and hf sources for the same question on the same image bytes; repeats get -q<qid> (osf) or "
        "-<split><row> (hf).",
    ]
    osf = survey.osf
    if osf is not None:
        splits = Counter(osf_split(i) for i in osf.items)
        phrases = Counter(str(i.get("phrase_type")) for i in osf.items)
        notes.append(
            "Official split from phrase_type (test_* is test): "
            + ", ".join(f"{k} {v}" for k, v in sorted(splits.items()))
            + "; phrase_type counts: " + ", ".join(f"{k} {v}" for k, v in sorted(phrases.items())) + "."
        )
        notes.append(
            f"{len(osf.crossing)} paraphrase group(s) (qid_linked_id) have questions in both splits; the "
            "official split is kept as published. Group by qid_linked_id when re-splitting."
        )
    else:
        notes.append("Source hf: the parquet files' own train/test split; question_type, image_organ, "
                     "phrase_type, qid and qid_linked_id are null (the Hub copy has image, question, answer only).")
    return notes


RECIPE = VqaRad()
