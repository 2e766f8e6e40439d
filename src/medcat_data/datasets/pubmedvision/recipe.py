"""PubMedVision: GPT-4V-reformatted PubMed figure conversations -> vqa (``alignment``, ``instruction``).

Upstream (fact sheet §7b) is one JSON array per config (``PubMedVision_Alignment_VQA.json``,
``PubMedVision_InstructionTuning_VQA.json``, ~700 MB each) whose records hold ``id``, ``image``
(a list of 1-29 paths ``images/pmc_<n>_<k>.jpg``), ``conversations`` (a ``human`` turn, then a
``gpt`` turn), ``modality`` and ``body_part``; the images ship as ``images_0.zip`` ...
``images_19.zip``, meant to be unpacked flat.

One row per record, in upstream order:

* ``images``: every image of the record, in order (multi-image rows keep all of them), read in
  place from the zip parts through ``converters.image_index`` (built once per fetch by the
  survey, under the cache's ``.medcat/derived/``), never extracted. Loose files under
  ``images/`` (a user who already ran ``unzip -j``) are used first. Each image's ``path`` is the upstream relative path, verbatim. An image found nowhere is
  a ``SampleError`` (upstream has a handful of such gaps).
* ``question`` / ``answer``: the first ``human`` / ``gpt`` turn, verbatim. ``answer_type`` comes
  from upstream and PubMedVision has none, so it is null (never guessed); ``options`` is empty
  and ``answer_idx`` null.
* extras ``id``, ``modality``, ``body_part`` (strings, verbatim: the class lists are not
  published as such) and ``conversations``: null when the record's conversation is exactly
  ``[{"from": "human", "value": question}, {"from": "gpt", "value": answer}]`` (so it is rebuilt
  from the two columns), otherwise the upstream turns verbatim (their ``from``/``value``).
  ``sample_id`` is the upstream ``id``.

The JSON is never loaded whole: a first streaming pass (``converters.jsonarray``) finds runs of
whole elements of about ``UNIT_JSON_BYTES``; each run is a work unit that parses its records one
by one. Splits: one ``train`` split (upstream has none); ``--split-by`` (``id``, ``image`` = the
first image path, ``modality`` or ``body_part``) gives a seeded grouped split by hashing the
group key, so it needs no global state and one image lands in the same split in both configs.
"""


from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.image_index import ImageIndex, ImageLookup, LooseImage, build_image_index, derived_dir
from medcat_data.converters.jsonarray import ElementRange, MalformedElementError, element_ranges, read_elements
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import vqa_features
from medcat_data.converters.splits import DEFAULT_FRACTIONS, SPLITS
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError

log = logging.getLogger(__name__)

__all__ = ["DATASET_ID", "JSON_FILES", "RECIPE", "PubMedVision", "PubMedVisionUnit", "Survey", "hashed_split"]

DATASET_ID = "pubmedvision"
JSON_FILES: Mapping[str, str] = {
    "alignment": "PubMedVision_Alignment_VQA.json",
    "instruction": "PubMedVision_InstructionTuning_VQA.json",
}
"""The upstream JSON array of each config (fact sheet §7b)."""

UNIT_JSON_BYTES = 256 * 1024
"""JSON bytes per work unit: about 230 records. A unit's rows, images included, stay in memory
until the parent encodes them, so units are kept small (real figures are ~0.1 MB each)."""

SPLIT_KEYS = ("id", "image", "modality", "body_part")
"""What ``--split-by`` may group on."""

LOOSE_FOLDER = "images"
"""Where a user who ran ``unzip -j`` has the images, relative to the source folder."""

_PART = re.compile(r"^images_(\d+)\.zip$")
_HUMAN, _GPT = "human", "gpt"


@dataclass(frozen=True)
class Survey:
    """Where the images are: the index of loose files and zip parts, and whether ``images/`` exists."""

    images: ImageIndex
    loose_folder: bool


@dataclass(frozen=True)
class PubMedVisionUnit:
    """A run of whole records of one JSON file, and where their images are."""

    config: str
    json_path: Path
    json_rel: str
    elements: ElementRange
    stop_index: int | None
    images: ImageIndex
    loose_folder: bool
    source_tag: str
    image: ImageOptions
    split_by: str | None
    seed: int

    @property
    def name(self) -> str:
        return f"{self.config}@{self.elements.first_index}"


class PubMedVision(Recipe[Survey, PubMedVisionUnit]):
    """PubMedVision's two JSON arrays into two VQA configs (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("alignment", "instruction")

    def survey(self, ctx: RecipeContext) -> Survey:
        """Index the loose files under ``images/`` and the members of the fetched ``images_<n>.zip`` parts."""
        parts = sorted(
            (p for p in ctx.source_dir.glob("images_*.zip") if _PART.match(p.name) and ctx.has(p)),
            key=lambda p: int(_PART.match(p.name).group(1)),  # type: ignore[union-attr]
        )
        folder = ctx.source_dir / LOOSE_FOLDER
        loose = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        index = build_image_index(ctx.source_dir, derived_dir(ctx.root), prefix=DATASET_ID, loose=loose, parts=parts)
        return Survey(index, folder.is_dir())

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the VQA schema with ``id``, ``modality``, ``body_part`` and ``conversations`` as extras."""
        self.check_config(config)
        return vqa_features(
            {
                "id": Value("string"),
                "modality": Value("string"),
                "body_part": Value("string"),
                "conversations": List({"from": Value("string"), "value": Value("string")}),
            }
        )

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[PubMedVisionUnit]:
        """Scan the config's JSON once for runs of whole records; one unit per run (``--limit`` keeps the first N).

        Raises:
            UsageError: the JSON was not fetched, or ``--split-by`` names no known key.
            JsonArrayError: the JSON is not one well-formed array (file and byte offset named).
        """
        self.check_config(config)
        split_by = ctx.options.split_by
        if split_by is not None and split_by not in SPLIT_KEYS:
            raise UsageError(f"{DATASET_ID}: --split-by takes one of {', '.join(SPLIT_KEYS)}; got {split_by!r}.")
        path = ctx.source_dir / JSON_FILES[config]
        if not ctx.has(path):
            raise UsageError(
                f"{ctx.dataset_id}: {JSON_FILES[config]} was not fetched (config {config!r}); run "
                f"`medcat fetch {ctx.dataset_id}` (or with --only {JSON_FILES[config]})."
            )
        limit = ctx.options.limit
        units = []
        for rng in element_ranges(path, target_bytes=UNIT_JSON_BYTES):
            if limit is not None and rng.first_index >= limit:
                break
            units.append(
                PubMedVisionUnit(
                    config=config,
                    json_path=path,
                    json_rel=ctx.rel(path),
                    elements=rng,
                    stop_index=limit,
                    images=survey.images,
                    loose_folder=survey.loose_folder,
                    source_tag=ctx.source_tag,
                    image=ctx.options.image,
                    split_by=split_by,
                    seed=ctx.options.seed,
                )
            )
        return Plan(units=units)

    def convert_unit(self, unit: PubMedVisionUnit) -> Iterator[Row | SampleError]:
        """Yield one row per record of the unit; a malformed record or a missing image is a ``SampleError``."""
        with unit.images.open() as lookup:
            for position, record in read_elements(unit.json_path, unit.elements, name=unit.json_rel):
                if unit.stop_index is not None and position >= unit.stop_index:
                    break
                if isinstance(record, MalformedElementError):
                    yield record
                    continue
                try:
                    yield _row(unit, position, record, lookup)
                except SampleError as err:
                    yield err

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Record where the images were read from, the split, and the column conventions."""
        images = survey.images
        where = (
            f"Images were read in place from {len(images.parts)} zip part(s) ({_span(images.parts)}) through an index "
            "of their central directories, never extracted"
            if images.parts
            else "No image zip part was fetched"
        )
        if survey.loose_folder:
            where += "; loose files under images/ were used first"
        if images.unreadable:
            where += f"; unreadable parts (their images are reported missing): {', '.join(images.unreadable)}"
        split_by = ctx.options.split_by
        split = (
            f"Split: seeded ({ctx.options.seed}) grouped split on {split_by!r} by hashing the key "
            f"(fractions {dict(zip(SPLITS, DEFAULT_FRACTIONS))} on average; one key never in two splits)."
            if split_by
            else "Split: upstream has none, so every row is in 'train'; --split-by gives a seeded grouped split."
        )
        return [
            where + ". Each image's path is the upstream relative path; multi-image rows keep every image in order.",
            split,
            "question/answer are the human/gpt turns verbatim. answer_type is null: PubMedVision gives none and it is "
            "never guessed; options is empty and answer_idx null.",
            "conversations is null when the record is exactly one human turn (the question) then one gpt turn (the "
            "answer); otherwise it holds the upstream turns verbatim. sample_id is the upstream id.",
        ]


RECIPE = PubMedVision()


# ------------------------------------------------------------------------------------- one record


def _row(unit: PubMedVisionUnit, position: int, record: Any, lookup: ImageLookup) -> Row:
    item = f"{unit.json_rel}[{position}]"
    if not isinstance(record, dict):
        raise SampleError(item, "parse", f"a record must be a JSON object, got {type(record).__name__}")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise SampleError(item, "parse", f"'id' must be a non-empty string, got {record_id!r}")
    paths = _image_paths(record.get("image"), item)
    question, answer, conversations = _turns(record.get("conversations"), item)
    images = [_image(unit, item, path, lookup) for path in paths]
    split = _split(unit, record, record_id, paths)
    values = {
        "images": images,
        "question": question,
        "answer": answer,
        "answer_type": None,
        "options": [],
        "answer_idx": None,
        "source": unit.source_tag,
        "sample_id": record_id,
        "split": split,
        "id": record_id,
        "modality": _text(record.get("modality"), "modality", item),
        "body_part": _text(record.get("body_part"), "body_part", item),
        "conversations": conversations,
    }
    return Row(unit.config, split, values)


def _image_paths(value: Any, item: str) -> list[str]:
    paths = [value] if isinstance(value, str) else value
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p for p in paths):
        raise SampleError(item, "parse", f"'image' must be a non-empty list of paths, got {value!r}"[:300])
    return paths


def _turns(value: Any, item: str) -> tuple[str, str, list[dict[str, str]] | None]:
    """Return question, answer and the verbatim turns (None when the two columns rebuild them)."""
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise SampleError(item, "parse", "'conversations' must be a list of {from, value} turns")
    question = next((t.get("value") for t in value if t.get("from") == _HUMAN), None)
    answer = next((t.get("value") for t in value if t.get("from") == _GPT), None)
    if not isinstance(question, str) or not isinstance(answer, str):
        raise SampleError(item, "parse", "'conversations' needs a 'human' and a 'gpt' turn with text")
    canonical = [{"from": _HUMAN, "value": question}, {"from": _GPT, "value": answer}]
    if value == canonical and question and answer:  # an empty turn is kept verbatim: nothing to rebuild from
        return question, answer, None
    turns = []
    for turn in value:
        who, text = turn.get("from"), turn.get("value")
        if not isinstance(who, str) or not isinstance(text, str):
            raise SampleError(item, "parse", f"a turn needs string 'from' and 'value', got {turn!r}"[:300])
        turns.append({"from": who, "value": text})
    return question, answer, turns


def _text(value: Any, field: str, item: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise SampleError(item, "parse", f"{field!r} must be a string, got {value!r}"[:300])


def _image(unit: PubMedVisionUnit, item: str, path: str, lookup: ImageLookup) -> dict[str, Any]:
    found = lookup.find(PurePosixPath(path).name)
    encoded: EncodedImage
    if isinstance(found, LooseImage):
        try:
            encoded = load_raster(found.path, unit.image)
        except SampleError as err:  # named as the record names it, never by its absolute path
            raise SampleError(f"{item} {path}", err.stage, err.reason) from err
    elif found is None:
        parts = unit.images.parts
        where = f"the {len(parts)} fetched zip part(s) ({_span(parts)})" if parts else "no fetched zip part"
        raise SampleError(
            f"{item} {path}", "read",
            f"{path} is in {where}{' nor under images/' if unit.loose_folder else ''}; upstream lists a few such gaps, "
            "or the part holding it was not fetched (`medcat verify` lists missing files)",
        )
    else:
        # The zip part matched the Hub's LFS sha256 at fetch and the member its CRC on reading:
        # the bytes are upstream's, so only their structure is checked, not decoded.
        encoded = load_raster_bytes(lookup.read_member(found), found.label, unit.image, verified=True)
    return {"bytes": encoded.data, "path": path}


def _span(parts: tuple[str, ...]) -> str:
    return parts[0] if len(parts) == 1 else f"{parts[0]} ... {parts[-1]}"


def _split(unit: PubMedVisionUnit, record: Mapping[str, Any], record_id: str, paths: list[str]) -> str:
    """Return ``train``, or with ``--split-by`` the split its group key hashes to (seeded)."""
    if unit.split_by is None:
        return "train"
    key = {"id": record_id, "image": paths[0]}.get(unit.split_by)
    if key is None:
        key = str(record.get(unit.split_by) or "")
    return hashed_split(key, unit.seed)


def hashed_split(key: str, seed: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """Return the split of a group key: a seeded sha256 of the key, read as a uniform number in [0, 1).

    Needs no global state (each unit decides alone) and never puts one key in two splits; the
    split sizes follow ``fractions`` on average rather than exactly.
    """
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return SPLITS[0]
    return SPLITS[1] if u < fractions[0] + fractions[1] else SPLITS[2]
