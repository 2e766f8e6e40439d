"""PathVQA: pathology images with open-ended and yes/no questions -> the ``vqa`` schema.

One row per question, from either source, with the same features and ``sample_id``s:

* ``hf`` (``flaviagiammarino/path-vqa``): ``data/{train,validation,test}-*.parquet`` with
  ``image`` ({bytes, path}), ``question`` and ``answer``, built from the authors' files by the
  repo's ``scripts/processing.py`` (text lower-cased, spaces collapsed, `` ?`` written ``?``,
  duplicate triplets dropped). One work unit per row group, read in small batches.
* ``gdrive`` (``pvqa.zip``, extracted by the fetch): ``pvqa/qas/<s>/<s>_qa.pkl`` (``<s>`` = train,
  val, test), a pickled list of ``{image, question, answer}`` with ``image`` the stem of
  ``pvqa/images/<s>/<image>.jpg``. Pickles are read by an unpickler that refuses every global
  (class or function), so only lists, dicts, strings and numbers load and no upstream code runs;
  a file that needs more is an ``UpstreamFormatError``. Exact duplicate triplets within a split are
  dropped, as the Hub build does, and counted in the card.

Columns: the VQA core of ``schemas.vqa_features`` (``images`` a one-element list; ``answer`` as
the source wrote it; ``answer_type`` ``closed`` when the answer is yes or no, case and spaces
folded, else ``open``: PathVQA's two question kinds; ``options`` empty, ``answer_idx`` null), then
``image_name`` (upstream's stem from ``gdrive``, the Hub's ``image.path`` or null from ``hf``).
Splits come from the registry's ``upstream_splits`` (``val`` is ``validation``).

``sample_id`` is ``<12 hex of sha1(image bytes)>-<10 hex of sha1(folded question)>`` where the
question is folded as the Hub build folds it (lower case, runs of spaces as one, `` ?`` as ``?``),
so the same question on the same image bytes has the same id in both sources; the n-th repeat
within the dataset gets ``-<n>``. Keys are computed once while surveying (images hashed in
chunks and batches, never held). A missing or undecodable image, or a record without question or
answer, is a ``SampleError``. This module reads local files only.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, Value

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.hub_parquet import RowGroupUnit, split_parquet
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import vqa_features
from medcat_data.converters.units import Row
from medcat_data.converters.vocab.vqa import upstream_answer_type
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

log = logging.getLogger(__name__)

__all__ = ["RECIPE", "PathVqa", "answer_type", "fold_question", "load_data_pickle", "question_key", "sample_key"]

DATASET_ID = "pathvqa"
HubUnit = RowGroupUnit
CONFIG = "vqa"
TOP = "pvqa"
UPSTREAM_SPLITS = ("train", "val", "test")
UNIT_ITEMS = 64
_HF_BATCH_ROWS = 32


def fold_question(text: str) -> str:
    """Fold a question as the Hub build does: lower case, runs of spaces as one, `` ?`` as ``?``."""
    return re.sub(" +", " ", " ".join(text.lower().split())).replace(" ?", "?").strip()


def question_key(question: str) -> str:
    """Return the question part of a ``sample_id``: 10 hex of the sha1 of the folded question."""
    return hashlib.sha1(fold_question(question).encode("utf-8")).hexdigest()[:10]


def sample_key(image: bytes, question: str) -> str:
    """Return a ``sample_id`` before numbering repeats: 12 hex of the image's sha1 + the question key."""
    return f"{hashlib.sha1(image).hexdigest()[:12]}-{question_key(question)}"


def answer_type(answer: str) -> str:
    """Return ``closed`` for a yes/no answer (case and spaces folded), else ``open``."""
    return upstream_answer_type("pathvqa answer", " ".join(answer.split())) or "open"


class _DataOnly(pickle.Unpickler):
    """An unpickler that loads plain data only: any global (class, function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only lists, dicts, strings and numbers are read")


def load_data_pickle(path: Path, label: str) -> Any:
    """Return the plain data in a pickle file without running any code it names.

    Raises:
        UpstreamFormatError: the file is no pickle, is damaged, or needs a class or function.
    """
    try:
        with path.open("rb") as handle:
            return _DataOnly(handle).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, OSError) as err:
        raise UpstreamFormatError(DATASET_ID, label, f"is not a plain-data pickle ({err})") from err


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _file_digest(path: Path) -> bytes:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


# ------------------------------------------------------------------------------------- survey


@dataclass(frozen=True)
class Item:
    """One question to convert: where it is, its split and its ``sample_id``."""

    split: str
    label: str
    sample_id: str
    image_key: str
    image_name: str | None = None
    image_path: Path | None = None
    image_rel: str = ""
    question: str | None = None
    answer: str | None = None


@dataclass(frozen=True)
class Survey:
    """Every question of the fetch with its ``sample_id`` (gdrive items carry their text), and counts."""

    layout: str
    items: Mapping[str, list[Item]]
    """Per split; hf items are in parquet row order, one per row."""
    parquet: Mapping[str, list[Path]] = field(default_factory=dict)
    dropped: Mapping[str, int] = field(default_factory=dict)
    """Exact duplicate triplets dropped per split (gdrive)."""


def _find_pvqa(ctx: RecipeContext) -> Path | None:
    found = sorted(
        (Path(d) for d, dirs, _ in os.walk(ctx.source_dir) if Path(d).name == TOP and "qas" in dirs),
        key=lambda p: (len(p.parts), str(p)),
    )
    return found[0] if found else None


def _find_parquet(ctx: RecipeContext, mapping: Mapping[str, str]) -> dict[str, list[Path]]:
    """Return the Hub copy's parquet files per split (upstream prefixes mapped by the registry)."""
    found: dict[str, list[Path]] = {}
    for prefix, paths in split_parquet(ctx, mapping).items():
        found.setdefault(mapping[prefix], []).extend(paths)
    return found


class _Numbering:
    """Number repeated keys: the first keeps the key, the n-th gets ``-<n>``."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    def __call__(self, key: str) -> str:
        self.seen[key] += 1
        return key if self.seen[key] == 1 else f"{key}-{self.seen[key]}"


def _survey_gdrive(ctx: RecipeContext, top: Path, mapping: Mapping[str, str]) -> Survey:
    number = _Numbering()
    digests: dict[Path, str] = {}
    items: dict[str, list[Item]] = {}
    dropped: dict[str, int] = {}
    for upstream in UPSTREAM_SPLITS:
        path = top / "qas" / upstream / f"{upstream}_qa.pkl"
        split = mapping.get(upstream)
        if split is None or not ctx.has(path):
            continue
        label = ctx.rel(path)
        records = load_data_pickle(path, label)
        if not isinstance(records, list):
            raise UpstreamFormatError(DATASET_ID, label, f"holds a {type(records).__name__}, not a list of question records")
        seen: set[tuple[str, str, str]] = set()
        items[split], dropped[split] = [], 0
        for index, record in enumerate(records):
            fields = record if isinstance(record, dict) else {}
            name, question, answer = (_text(fields.get(k)) for k in ("image", "question", "answer"))
            triplet = (str(fields.get("image")), str(fields.get("question")), str(fields.get("answer")))
            if isinstance(record, dict) and triplet in seen:
                dropped[split] += 1
                continue
            seen.add(triplet)
            wanted = top / "images" / upstream / f"{name}.jpg"
            image = wanted if name and ctx.has(wanted) else None
            if image is not None and image not in digests:
                digests[image] = _file_digest(image).hex()
            key = digests[image] if image is not None else hashlib.sha1((name or f"#{index}").encode()).hexdigest()
            sample_id = number(f"{key[:12]}-{question_key(question or '')}")
            items[split].append(Item(split, f"{label}#{index}", sample_id, key[:12], name, image, ctx.rel(wanted), question, answer))
    return Survey("gdrive", items, {}, dropped)


def _survey_hf(ctx: RecipeContext, parquet: Mapping[str, list[Path]]) -> Survey:
    import pyarrow.parquet as pq

    number = _Numbering()
    items: dict[str, list[Item]] = {}
    for split in ("train", "validation", "test"):
        for path in parquet.get(split, []):
            pf = pq.ParquetFile(path)
            _check_columns(ctx, pf, path)
            batches = pf.iter_batches(batch_size=_HF_BATCH_ROWS, columns=["image.bytes", "question"])
            for row, cell in enumerate(cell for batch in batches for cell in batch.to_pylist()):
                data = (cell.get("image") or {}).get("bytes") or b""
                key = sample_key(data, _text(cell.get("question")) or "")
                items.setdefault(split, []).append(Item(split, f"{ctx.rel(path)}#{row}", number(key), key.split("-")[0]))
    return Survey("hf", items, parquet)


def _check_columns(ctx: RecipeContext, pf: Any, path: Path) -> None:
    import pyarrow as pa

    schema = pf.schema_arrow
    require_columns(ctx, path, schema.names, ("image", "question", "answer"))
    kind = schema.field("image").type
    if not pa.types.is_struct(kind) or kind.get_field_index("bytes") < 0:
        raise UpstreamFormatError(DATASET_ID, ctx.rel(path), f"has an image column of type {kind}, not the Hub's struct of bytes and path")


# ------------------------------------------------------------------------------------- units


@dataclass(frozen=True)
class DriveUnit:
    """A run of questions of the Drive release, with their texts and image paths."""

    config: str
    source_tag: str
    image: ImageOptions
    items: tuple[Item, ...]

    @property
    def name(self) -> str:
        return f"{self.config}@{self.items[0].label if self.items else ''}"


# ------------------------------------------------------------------------------------- recipe


class PathVqa(Recipe[Survey, "DriveUnit | HubUnit"]):
    """PathVQA from either source into one ``vqa`` config (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = (CONFIG,)
    COLUMN_DESCRIPTIONS = {"image_name": "Upstream's image stem (train_0000...) from the Drive release; the Hub's image.path from the hf copy."}

    def survey(self, ctx: RecipeContext) -> Survey:
        """Read the Drive release's pickles or the Hub's parquet questions, keying every question once.

        Raises:
            UsageError: neither layout was fetched.
        """
        mapping = ctx.splits_of(CONFIG)
        top = _find_pvqa(ctx)
        if top is not None:
            return _survey_gdrive(ctx, top, mapping)
        parquet = _find_parquet(ctx, mapping)
        if parquet:
            return _survey_hf(ctx, parquet)
        raise UsageError(
            f"{DATASET_ID}: found neither pvqa/qas/ (source gdrive) nor data/{{train,validation,test}}-*.parquet "
            f"(source hf) under {ctx.source_dir}. Run `medcat fetch {DATASET_ID} --source {ctx.source}` first."
        )

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the VQA schema with ``image_name``, for either source."""
        self.check_config(config)
        return vqa_features({"image_name": Value("string")})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[DriveUnit | HubUnit]:
        """List the work units of whichever layout the source folder holds."""
        self.check_config(config)
        if survey.layout == "gdrive":
            items = [i for split in ("train", "validation", "test") for i in survey.items.get(split, [])]
            items = items[: ctx.options.limit] if ctx.options.limit is not None else items
            return Plan([DriveUnit(config, ctx.source_tag, ctx.options.image, tuple(items[i : i + UNIT_ITEMS]))
                         for i in range(0, len(items), UNIT_ITEMS)])
        return Plan(_plan_hub(config, ctx, survey))

    def convert_unit(self, unit: DriveUnit | HubUnit) -> Iterator[Row | SampleError]:
        return _convert_hub(unit) if isinstance(unit, HubUnit) else _convert_drive(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        return card_notes(survey)


def _plan_hub(config: str, ctx: RecipeContext, survey: Survey) -> list[DriveUnit | HubUnit]:
    import pyarrow.parquet as pq

    units: list[DriveUnit | HubUnit] = []
    remaining = ctx.options.limit
    for split in ("train", "validation", "test"):
        ids = iter(survey.items.get(split, []))
        for path in survey.parquet.get(split, []):
            metadata = pq.ParquetFile(path).metadata
            first = 0
            for group in range(metadata.num_row_groups):
                rows = metadata.row_group(group).num_rows
                take = rows if remaining is None else min(rows, remaining)
                if take <= 0:
                    break
                sample_ids = tuple(next(ids).sample_id for _ in range(rows))[:take]
                units.append(HubUnit(config, ctx.source_tag, ctx.options.image, path, ctx.rel(path), split, group, first, sample_ids))
                first += rows
                remaining = None if remaining is None else remaining - take
    return units


def _row(unit_config: str, source_tag: str, split: str, sample_id: str, values: dict[str, Any]) -> Row:
    return Row(unit_config, split, {**values, "options": [], "answer_idx": None, "source": source_tag, "sample_id": sample_id, "split": split})


def _convert_drive(unit: DriveUnit) -> Iterator[Row | SampleError]:
    for item in unit.items:
        try:
            if item.question is None or item.answer is None:
                raise SampleError(item.label, "parse", "no question or no answer")
            if item.image_path is None:
                raise SampleError(item.image_rel, "read", f"{item.label}: image {item.image_name!r} is not in the fetched images folder")
            image = load_raster(item.image_path, unit.image)
        except SampleError as err:
            yield err
            continue
        yield _row(unit.config, unit.source_tag, item.split, item.sample_id, {
            "images": [{"bytes": image.data, "path": f"{item.image_name}.jpg"}],
            "question": item.question,
            "answer": item.answer,
            "answer_type": answer_type(item.answer),
            "image_name": item.image_name,
        })


def _convert_hub(unit: HubUnit) -> Iterator[Row | SampleError]:
    import pyarrow.parquet as pq

    batches = pq.ParquetFile(unit.path).iter_batches(batch_size=_HF_BATCH_ROWS, row_groups=[unit.row_group],
                                                      columns=["image", "question", "answer"])
    cells = (cell for batch in batches for cell in batch.to_pylist())
    for offset, (sample_id, cell) in enumerate(zip(unit.sample_ids, cells)):
        label = f"{unit.rel}#{unit.first_row + offset}"
        image_cell = cell.get("image") or {}
        question, answer = _text(cell.get("question")), _text(cell.get("answer"))
        try:
            if question is None or answer is None:
                raise SampleError(label, "parse", "no question or no answer")
            if not image_cell.get("bytes"):
                raise SampleError(label, "read", "the image cell holds no bytes")
            image = load_raster_bytes(image_cell["bytes"], label, unit.image)
        except SampleError as err:
            yield err
            continue
        name = _text(image_cell.get("path"))
        yield _row(unit.config, unit.source_tag, unit.split, sample_id, {
            "images": [{"bytes": image.data, "path": name}],
            "question": question,
            "answer": answer,
            "answer_type": answer_type(answer),
            "image_name": name,
        })


def card_notes(survey: Survey) -> list[str]:
    """Record the evaluation splits, the answer-type rule, dropped duplicates and images shared by splits."""
    counts = {split: len(items) for split, items in survey.items.items()}
    splits_of: dict[str, set[str]] = defaultdict(set)
    for split, items in survey.items.items():
        for item in items:
            splits_of[item.image_key].add(split)
    shared = sum(1 for found in splits_of.values() if len(found) > 1)
    notes = [
        "Evaluation: test is PathVQA's evaluation split (closed: yes/no accuracy; open: answer recall) and validation "
        "its model-selection split; the official split is kept as published.",
        "Questions per split: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ".",
        "answer_type is closed when the answer is yes or no (case and spaces folded), open otherwise; options is empty "
        "and answer_idx null.",
        f"{shared} image(s) (by the sha1 of their bytes) hold questions in more than one split; nothing is moved. "
        "Group by image when re-splitting.",
        "sample_id is <sha1 of the image bytes, 12 hex>-<sha1 of the folded question, 10 hex>, equal across the hf and "
        "gdrive sources; the n-th repeat gets -<n>.",
    ]
    if survey.layout == "gdrive":
        notes.append("Source gdrive: exact duplicate (image, question, answer) triplets dropped within a split, as the "
                     "Hub build does: " + ", ".join(f"{k} {v}" for k, v in survey.dropped.items()) + ".")
    else:
        notes.append("Source hf: questions and answers as the Hub build wrote them (lower-cased, spaces collapsed); "
                     "image_name is the Hub's image.path.")
    return notes


RECIPE = PathVqa()
