"""PubMedVision: GPT-4V-reformatted PubMed figure conversations -> vqa (``alignment``, ``instruction``).

Upstream (fact sheet §7b) is one JSON array per config (``PubMedVision_Alignment_VQA.json``,
``PubMedVision_InstructionTuning_VQA.json``, ~700 MB each) whose records hold ``id``, ``image``
(a list of 1-29 paths ``images/pmc_<n>_<k>.jpg``), ``conversations`` (a ``human`` turn, then a
``gpt`` turn), ``modality`` and ``body_part``; the images ship as ``images_0.zip`` ...
``images_19.zip``, meant to be unpacked flat.

One row per record, in upstream order:

* ``images``: every image of the record, in order (multi-image rows keep all of them), read in
  place from the zip parts through an index of their central directories
  (``converters.zipmembers``; built once per fetch under the cache's ``.medcat/derived/``),
  never extracted. Loose files under ``images/`` (a user who already ran ``unzip -j``) are used
  first. Each image's ``path`` is the upstream relative path, verbatim. An image found nowhere is
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
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.jsonarray import ElementRange, MalformedElementError, element_ranges, read_elements
from medcat_data.converters.recipes.base import Plan, RecipeContext, check_config
from medcat_data.converters.schemas import vqa_features
from medcat_data.converters.splits import DEFAULT_FRACTIONS, SPLITS
from medcat_data.converters.units import Row
from medcat_data.converters.zipmembers import MemberIndex, build_index, unreadable_parts
from medcat_data.errors import SampleError, UsageError

log = logging.getLogger(__name__)

__all__ = ["CONFIGS", "DATASET_ID", "JSON_FILES", "PubMedVisionUnit", "card_notes", "convert_unit", "features", "plan"]

DATASET_ID = "pubmedvision"
CONFIGS: tuple[str, ...] = ("alignment", "instruction")
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

_PART = re.compile(r"^images_(\d+)\.zip$")
_HUMAN, _GPT = "human", "gpt"


@dataclass(frozen=True)
class PubMedVisionUnit:
    """A run of whole records of one JSON file, and where their images are."""

    config: str
    json_path: Path
    json_rel: str
    elements: ElementRange
    stop_index: int | None
    source_dir: Path
    index_path: Path | None
    parts: tuple[str, ...]
    loose_dir: Path | None
    source_tag: str
    image: ImageOptions
    split_by: str | None
    seed: int

    @property
    def name(self) -> str:
        return f"{self.config}@{self.elements.first_index}"


# ------------------------------------------------------------------------------------- surveying


@dataclass(frozen=True)
class _Images:
    parts: tuple[str, ...]
    index_path: Path | None
    unreadable: tuple[str, ...]
    loose_dir: Path | None


_IMAGES: dict[tuple[Any, ...], _Images] = {}
_RANGES: dict[tuple[Any, ...], list[ElementRange]] = {}


def _json_path(ctx: RecipeContext, config: str) -> Path:
    path = ctx.source_dir / JSON_FILES[config]
    if not ctx.has(path):
        raise UsageError(
            f"{ctx.dataset_id}: {JSON_FILES[config]} was not fetched (config {config!r}); run "
            f"`medcat fetch {ctx.dataset_id}` (or with --only {JSON_FILES[config]})."
        )
    return path


def _ranges(path: Path) -> list[ElementRange]:
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _RANGES:
        _RANGES[key] = element_ranges(path, target_bytes=UNIT_JSON_BYTES)
    return _RANGES[key]


def _images(ctx: RecipeContext) -> _Images:
    """Find the fetched zip parts and index their members (once per set of parts)."""
    parts = sorted(
        (p for p in ctx.source_dir.glob("images_*.zip") if _PART.match(p.name) and ctx.has(p)),
        key=lambda p: int(_PART.match(p.name).group(1)),  # type: ignore[union-attr]
    )
    loose = ctx.source_dir / "images"
    loose_dir = loose if loose.is_dir() else None
    stats = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in parts)
    key = (str(ctx.source_dir), stats)
    cached = _IMAGES.get(key)
    if cached is not None and (cached.index_path is None or cached.index_path.exists()):
        return cached
    index_path: Path | None = None
    unreadable: tuple[str, ...] = ()
    if parts:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        index_path = _derived_dir(ctx) / f"pubmedvision-images-{digest}.sqlite"
        if not index_path.exists():
            log.info("%s: indexing the members of %d zip part(s)", ctx.dataset_id, len(parts))
            count, _ = build_index(parts, ctx.source_dir, index_path)
            log.info("%s: %d image names indexed", ctx.dataset_id, count)
        unreadable = tuple(unreadable_parts(index_path))
    cached = _Images(tuple(p.name for p in parts), index_path, unreadable, loose_dir)
    _IMAGES[key] = cached
    return cached


def _derived_dir(ctx: RecipeContext) -> Path:
    """Return a writable folder for derived indexes: the cache's ``.medcat/derived``, else a temp folder."""
    folder = ctx.root / ".medcat" / "derived"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-test"
        probe.touch()
        probe.unlink()
        return folder
    except OSError:
        fallback = Path(tempfile.gettempdir()) / "medcat-derived"
        fallback.mkdir(parents=True, exist_ok=True)
        log.warning("%s is not writable; the image index goes to %s", folder, fallback)
        return fallback


# ------------------------------------------------------------------------------------- protocol


def features(config: str, ctx: RecipeContext) -> Features:
    """Return the VQA schema with ``id``, ``modality``, ``body_part`` and ``conversations`` as extras."""
    check_config(DATASET_ID, CONFIGS, config)
    return vqa_features(
        {
            "id": Value("string"),
            "modality": Value("string"),
            "body_part": Value("string"),
            "conversations": List({"from": Value("string"), "value": Value("string")}),
        }
    )


def plan(config: str, ctx: RecipeContext) -> Plan:
    """Scan the config's JSON once for runs of whole records; one unit per run (``--limit`` keeps the first N).

    Raises:
        UsageError: the JSON was not fetched, or ``--split-by`` names no known key.
        JsonArrayError: the JSON is not one well-formed array (file and byte offset named).
    """
    check_config(DATASET_ID, CONFIGS, config)
    split_by = ctx.options.split_by
    if split_by is not None and split_by not in SPLIT_KEYS:
        raise UsageError(f"{DATASET_ID}: --split-by takes one of {', '.join(SPLIT_KEYS)}; got {split_by!r}.")
    path = _json_path(ctx, config)
    images = _images(ctx)
    limit = ctx.options.limit
    units = []
    for rng in _ranges(path):
        if limit is not None and rng.first_index >= limit:
            break
        units.append(
            PubMedVisionUnit(
                config=config,
                json_path=path,
                json_rel=path.name,
                elements=rng,
                stop_index=limit,
                source_dir=ctx.source_dir,
                index_path=images.index_path,
                parts=images.parts,
                loose_dir=images.loose_dir,
                source_tag=ctx.source_tag,
                image=ctx.options.image,
                split_by=split_by,
                seed=ctx.options.seed,
            )
        )
    return Plan(units=units)


def convert_unit(unit: PubMedVisionUnit) -> Iterator[Row | SampleError]:
    """Yield one row per record of the unit; a malformed record or a missing image is a ``SampleError``."""
    index = MemberIndex(unit.index_path, unit.source_dir) if unit.index_path is not None else None
    try:
        for position, record in read_elements(unit.json_path, unit.elements, name=unit.json_rel):
            if unit.stop_index is not None and position >= unit.stop_index:
                break
            if isinstance(record, MalformedElementError):
                yield record
                continue
            try:
                yield _row(unit, position, record, index)
            except SampleError as err:
                yield err
    finally:
        if index is not None:
            index.close()


# ------------------------------------------------------------------------------------- one record


def _row(unit: PubMedVisionUnit, position: int, record: Any, index: MemberIndex | None) -> Row:
    item = f"{unit.json_rel}[{position}]"
    if not isinstance(record, dict):
        raise SampleError(item, "parse", f"a record must be a JSON object, got {type(record).__name__}")
    record_id = record.get("id")
    if not isinstance(record_id, str) or not record_id:
        raise SampleError(item, "parse", f"'id' must be a non-empty string, got {record_id!r}")
    paths = _image_paths(record.get("image"), item)
    question, answer, conversations = _turns(record.get("conversations"), item)
    images = [_image(unit, item, path, index) for path in paths]
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


def _image(unit: PubMedVisionUnit, item: str, path: str, index: MemberIndex | None) -> dict[str, Any]:
    name = PurePosixPath(path).name
    encoded: EncodedImage
    if unit.loose_dir is not None and (unit.loose_dir / name).is_file():
        try:
            encoded = load_raster(unit.loose_dir / name, unit.image)
        except SampleError as err:  # named as the record names it, never by its absolute path
            raise SampleError(f"{item} {path}", err.stage, err.reason) from err
    else:
        ref = index.get(name) if index is not None else None
        if ref is None or index is None:
            where = f"the {len(unit.parts)} fetched zip part(s) ({_span(unit.parts)})" if unit.parts else "no fetched zip part"
            raise SampleError(
                f"{item} {path}", "read",
                f"{path} is in {where}{' nor under images/' if unit.loose_dir else ''}; upstream lists a few such gaps, "
                "or the part holding it was not fetched (`medcat verify` lists missing files)",
            )
        # The zip part matched the Hub's LFS sha256 at fetch and the member its CRC on reading:
        # the bytes are upstream's, so only their structure is checked, not decoded.
        encoded = load_raster_bytes(index.read(ref), ref.label, unit.image, verified=True)
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


def card_notes(ctx: RecipeContext) -> list[str]:
    """Record where the images were read from, the split, and the column conventions."""
    images = _images(ctx)
    where = (
        f"Images were read in place from {len(images.parts)} zip part(s) ({_span(images.parts)}) through an index "
        "of their central directories, never extracted"
        if images.parts
        else "No image zip part was fetched"
    )
    if images.loose_dir is not None:
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
