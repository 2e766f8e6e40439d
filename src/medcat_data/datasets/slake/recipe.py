"""SLAKE: bilingual radiology VQA -> ``vqa-en`` / ``vqa-zh``; per-image boxes and masks -> ``masks-boxes``.

Both sources hold the same files under different roots, and give the same configs, features and
``sample_id``s:

* ``hf`` (``BoKelvin/SLAKE``): ``train.json``, ``validation.json`` (``validate.json`` before
  2024-02-28), ``test.json`` at the repo root and ``imgs.zip`` with members ``imgs/xmlab<N>/...``,
  read in place (members are read one at a time in the workers, never extracted);
* ``gdrive`` (``Slake.zip``, extracted by the fetch): ``Slake1.0/{train,validate,test}.json`` and
  the loose folders ``Slake1.0/imgs/xmlab<N>/``.

The split files are JSON arrays of question records (``img_id``, ``img_name`` such as
``xmlab102/source.jpg``, ``question``, ``answer``, ``q_lang``, ``location``, ``modality``,
``answer_type``, ``base_type``, ``content_type``, ``triple``, ``qid``), a few MB in all, read once
while surveying. Upstream split names map to ours through the registry (``validate`` and
``validation`` are ``validation``).

``vqa-en`` / ``vqa-zh``: one row per question of that ``q_lang``; the VQA core (``images`` a
one-element list, ``answer`` a string, ``answer_type`` from upstream's ``OPEN``/``CLOSED``, never
guessed; ``options`` empty and ``answer_idx`` null), then ``qid``, ``img_id``, ``img_name``,
``q_lang``, ``content_type``, ``modality``, ``body_part`` (upstream ``location``), ``base_type``
(``vqa`` or ``kvqa``) and ``triple`` (the knowledge-graph triple, a list of strings). A question
in neither language is an error of ``vqa-en``. ``sample_id`` is ``<split>-<qid>`` (``-i<index>``
appended to a repeated qid).

``masks-boxes`` (object-detection schema): one row per image folder with ``source.jpg``, its boxes
from ``detection.json`` (upstream ``[{"<name>": [x, y, w, h]}, ...]`` in source pixels; here
``xyxy`` in output pixels) and ``mask`` (``mask.png`` decoded and, with ``--max-size``, resized
with nearest-neighbour so its labels stay labels). ``category`` is a ClassLabel of the box names
found in this fetch's ``detection.json`` files, sorted (upstream spellings; no closed list is
published). The split is that of the questions on the image; a folder no question references is
left out and counted in the card. ``sample_id`` is the folder name.

A missing or undecodable image, a record lacking question or answer, an unknown ``answer_type``
or a damaged ``detection.json`` is a ``SampleError``. This module reads local files only.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from datasets import Features, Image, List, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster_bytes
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import object_detection_features, vqa_features
from medcat_data.converters.units import Row
from medcat_data.converters.vocab.vqa import upstream_answer_type
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

log = logging.getLogger(__name__)

__all__ = ["RECIPE", "Slake", "Survey", "answer_type", "parse_boxes"]

DATASET_ID = "slake"
VQA_CONFIGS = {"vqa-en": "en", "vqa-zh": "zh"}
GROUNDING = "masks-boxes"
IMAGES_ZIP = "imgs.zip"
IMAGES_DIR = "imgs"
SPLIT_FILES = ("train.json", "validation.json", "validate.json", "test.json")
IMAGE_FILE = "source.jpg"
MASK_FILE = "mask.png"
BOXES_FILE = "detection.json"
UNIT_ITEMS = 64
UNIT_FOLDERS = 16
_CARRIED = ("qid", "img_id", "img_name", "question", "answer", "q_lang", "location", "modality", "answer_type",
            "base_type", "content_type", "triple")
VQA_EXTRAS: dict[str, Any] = {
    "qid": Value("string"),
    "img_id": Value("int64"),
    "img_name": Value("string"),
    "q_lang": Value("string"),
    "content_type": Value("string"),
    "modality": Value("string"),
    "body_part": Value("string"),
    "base_type": Value("string"),
    "triple": List(Value("string")),
}


def answer_type(value: Any) -> str | None:
    """Map upstream's ``OPEN``/``CLOSED`` (any case, stray spaces) to ``open``/``closed``; else None."""
    return upstream_answer_type("slake answer_type", value)


def parse_boxes(data: bytes, label: str) -> list[tuple[str, list[float]]]:
    """Return ``(name, [x, y, w, h])`` pairs of a ``detection.json`` (a list of one-key objects).

    Raises:
        SampleError: not JSON, or not a list of ``{name: [x, y, w, h]}`` objects with numbers.
    """
    try:
        items = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as err:
        raise SampleError(label, "parse", f"not valid JSON ({err})") from err
    boxes: list[tuple[str, list[float]]] = []
    for item in items if isinstance(items, list) else [None]:
        pairs = list(item.items()) if isinstance(item, dict) else []
        for name, box in pairs:
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise SampleError(label, "parse", f"box {name!r} is not [x, y, w, h] numbers: {box!r}")
            boxes.append((str(name).strip(), [float(v) for v in box]))
        if not pairs:
            raise SampleError(label, "parse", f"expected a list of {{name: [x, y, w, h]}} objects, found {item!r}")
    return boxes


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class Images:
    """Where the image folders are: a zip read in place (``hf``) or a loose ``imgs/`` folder (``gdrive``)."""

    zip_path: Path | None
    folder: Path | None
    label: str
    """``imgs.zip`` or ``Slake1.0/imgs``: how messages name the container."""

    def read(self, rel: str, handle: zipfile.ZipFile | None) -> bytes:
        """Return the bytes of ``imgs/<rel>``.

        Raises:
            SampleError: the file or member is absent or unreadable (stage ``read``).
        """
        label = f"{self.label}/{rel}" if self.zip_path is None else f"{self.label}:{IMAGES_DIR}/{rel}"
        try:
            if handle is not None:
                return handle.read(f"{IMAGES_DIR}/{rel}")
            assert self.folder is not None
            return (self.folder / rel).read_bytes()
        except KeyError:
            raise SampleError(label, "read", f"{rel} is not in {self.label}") from None
        except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile) as err:
            detail = getattr(err, "strerror", None) or f"{type(err).__name__}: {err}"
            raise SampleError(label, "read", f"cannot read {rel}: {detail}") from err

    def open(self) -> zipfile.ZipFile | None:
        """Open the zip for one work unit (None for loose folders)."""
        return zipfile.ZipFile(self.zip_path) if self.zip_path is not None else None


# ------------------------------------------------------------------------------------- survey


@dataclass(frozen=True)
class Survey:
    """The split files (read), the image container and the per-folder facts, read once in the parent."""

    root: Path
    images: Images
    items: Mapping[str, list[dict[str, Any]]]
    """Our split name -> the question records of its upstream file, in file order."""
    files: Mapping[str, str]
    """Our split name -> the upstream file name it was read from."""
    folders: tuple[str, ...]
    """Image folders present (``xmlab<N>``), sorted."""
    has_boxes: frozenset[str]
    has_mask: frozenset[str]
    categories: tuple[str, ...]
    """Box names found in the fetched ``detection.json`` files, sorted."""
    damaged_boxes: frozenset[str]


def _find_root(ctx: RecipeContext) -> Path | None:
    """Return the shallowest folder under the source folder holding ``train.json`` (fetched)."""
    found = sorted(
        (Path(d) for d, _, files in os.walk(ctx.source_dir) if "train.json" in files and ctx.has(Path(d) / "train.json")),
        key=lambda p: (len(p.parts), str(p)),
    )
    return found[0] if found else None


def _read_records(ctx: RecipeContext, path: Path) -> list[dict[str, Any]]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except ValueError as err:
        raise UpstreamFormatError(DATASET_ID, ctx.rel(path), f"is not valid JSON ({err})") from err
    if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
        raise UpstreamFormatError(DATASET_ID, ctx.rel(path), "is not a list of question records")
    return data


def _survey_images(ctx: RecipeContext, root: Path) -> tuple[Images, dict[str, set[str]]]:
    """Return the image container and, per folder, the file names it holds."""
    contents: dict[str, set[str]] = {}
    archive = root / IMAGES_ZIP
    if ctx.has(archive):
        try:
            with zipfile.ZipFile(archive) as handle:
                names = handle.namelist()
        except (zipfile.BadZipFile, OSError) as err:
            raise UpstreamFormatError(DATASET_ID, ctx.rel(archive), f"is not a readable zip ({err})") from err
        for name in names:
            parts = PurePosixPath(name).parts
            if len(parts) == 3 and parts[0] == IMAGES_DIR:
                contents.setdefault(parts[1], set()).add(parts[2])
        return Images(archive, None, ctx.rel(archive)), contents
    folder = root / IMAGES_DIR
    if folder.is_dir():
        for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
            contents[sub.name] = {f.name for f in sub.iterdir() if ctx.has(f)}
    return Images(None, folder, ctx.rel(folder)), contents


def _survey(ctx: RecipeContext, root: Path) -> Survey:
    mapping = ctx.splits_of(next(iter(VQA_CONFIGS)))
    items: dict[str, list[dict[str, Any]]] = {}
    files: dict[str, str] = {}
    for name in SPLIT_FILES:
        path = root / name
        split = mapping.get(PurePosixPath(name).stem)
        if split is None or split in items or not ctx.has(path):
            continue
        items[split], files[split] = _read_records(ctx, path), name
    images, contents = _survey_images(ctx, root)
    boxed = {f for f, names in contents.items() if BOXES_FILE in names}
    names: set[str] = set()
    damaged: set[str] = set()
    handle = images.open()
    try:
        for folder in sorted(boxed):
            try:
                names.update(n for n, _ in parse_boxes(images.read(f"{folder}/{BOXES_FILE}", handle), folder))
            except SampleError:
                damaged.add(folder)
    finally:
        if handle is not None:
            handle.close()
    return Survey(
        root, images, items, files, tuple(sorted(contents)), frozenset(boxed),
        frozenset(f for f, n in contents.items() if MASK_FILE in n), tuple(sorted(n for n in names if n)), frozenset(damaged),
    )


# ------------------------------------------------------------------------------------- units


@dataclass(frozen=True)
class VqaUnit:
    """A run of question records: ``(split, file label, fields, sample_id)``."""

    config: str
    source_tag: str
    image: ImageOptions
    images: Images
    items: tuple[tuple[str, str, Mapping[str, Any], str], ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.config}@{self.items[0][1] if self.items else ''}"


@dataclass(frozen=True)
class FolderUnit:
    """A run of image folders with their split and the image facts the questions give."""

    config: str
    source_tag: str
    image: ImageOptions
    images: Images
    categories: tuple[str, ...]
    folders: tuple[tuple[str, str, bool, bool, Mapping[str, Any]], ...] = field(default_factory=tuple)
    """``(folder, split, has detection.json, has mask.png, facts from its questions)``."""

    @property
    def name(self) -> str:
        return f"{self.config}@{self.folders[0][0] if self.folders else ''}"


def _folder_of(record: Mapping[str, Any]) -> str | None:
    name = _text(record.get("img_name"))
    parts = PurePosixPath(name).parts if name else ()
    return parts[0] if len(parts) == 2 else None


def image_splits(survey: Survey) -> tuple[dict[str, str], list[str]]:
    """Return each image folder's split (from the questions on it) and the folders found in several splits."""
    seen: dict[str, set[str]] = {}
    for split, records in survey.items.items():
        for record in records:
            folder = _folder_of(record)
            if folder is not None:
                seen.setdefault(folder, set()).add(split)
    order = {s: i for i, s in enumerate(("train", "validation", "test"))}
    first = {f: min(s, key=lambda x: order.get(x, 9)) for f, s in seen.items()}
    return first, sorted(f for f, s in seen.items() if len(s) > 1)


# ------------------------------------------------------------------------------------- recipe


class Slake(Recipe[Survey, "VqaUnit | FolderUnit"]):
    """SLAKE from either source into ``vqa-en``, ``vqa-zh`` and ``masks-boxes`` (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("vqa-en", "vqa-zh", GROUNDING)
    COLUMN_DESCRIPTIONS = {
        "body_part": "Upstream's location (Abdomen, Lung, Brain...), the body part the image shows.",
        "content_type": "What the question asks about, as upstream labels it (Organ, Position, Abnormality, Modality...).",
        "base_type": "vqa for questions on the image alone, kvqa for questions that need the knowledge graph.",
        "triple": "The knowledge-graph triple behind a kvqa question (['vhead', '_', '_'] style), verbatim.",
        "mask": "The image's segmentation mask (mask.png), pixel values as upstream.",
    }

    def survey(self, ctx: RecipeContext) -> Survey:
        """Read the split files and list the image folders (zip members or loose folders).

        Raises:
            UsageError: no ``train.json`` was fetched.
        """
        root = _find_root(ctx)
        if root is None:
            raise UsageError(
                f"{DATASET_ID}: found no train.json under {ctx.source_dir} (source {ctx.source}). "
                f"Run `medcat fetch {DATASET_ID} --source {ctx.source}` first."
            )
        return _survey(ctx, root)

    def configs(self, ctx: RecipeContext, survey: Survey) -> Sequence[str]:
        """Return the VQA configs, and ``masks-boxes`` when any folder has boxes or a mask."""
        grounded = survey.has_boxes or survey.has_mask
        return [c for c in self.CONFIGS if c != GROUNDING or grounded]

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the VQA schema with SLAKE's labels, or the detection schema with the fetch's box names."""
        self.check_config(config)
        if config in VQA_CONFIGS:
            return vqa_features(VQA_EXTRAS)
        if survey is None or not survey.categories:
            raise UsageError(f"{DATASET_ID}: the box names of {GROUNDING} come from the fetched detection.json files")
        return object_detection_features(
            survey.categories,
            extras={"img_id": Value("int64"), "img_name": Value("string"), "body_part": Value("string"), "mask": Image()},
        )

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[VqaUnit | FolderUnit]:
        """List the work units of a config: runs of questions, or runs of image folders."""
        self.check_config(config)
        if config == GROUNDING:
            return Plan(_plan_folders(config, ctx, survey))
        return Plan(_plan_questions(config, ctx, survey))

    def convert_unit(self, unit: VqaUnit | FolderUnit) -> Iterator[Row | SampleError]:
        if isinstance(unit, FolderUnit):
            yield from _convert_folders(unit)
        else:
            yield from _convert_questions(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        return card_notes(survey)


def _plan_questions(config: str, ctx: RecipeContext, survey: Survey) -> list[VqaUnit]:
    lang = VQA_CONFIGS[config]
    planned: list[tuple[str, str, Mapping[str, Any], str]] = []
    used: set[str] = set()
    for split, records in survey.items.items():
        name = survey.files[split]
        for index, record in enumerate(records):
            # vqa-zh takes the zh questions; vqa-en the rest (a language that is neither fails there).
            if ((_text(record.get("q_lang")) or "").lower() == "zh") != (lang == "zh"):
                continue
            sample_id = f"{split}-{_text(record.get('qid')) or f'i{index}'}"
            if sample_id in used:
                sample_id = f"{sample_id}-i{index}"
            used.add(sample_id)
            planned.append((split, f"{name}#{index}", {k: record.get(k) for k in _CARRIED}, sample_id))
    if ctx.options.limit is not None:
        planned = planned[: ctx.options.limit]
    return [
        VqaUnit(config, ctx.source_tag, ctx.options.image, survey.images, tuple(planned[i : i + UNIT_ITEMS]))
        for i in range(0, len(planned), UNIT_ITEMS)
    ]


def _plan_folders(config: str, ctx: RecipeContext, survey: Survey) -> list[FolderUnit]:
    splits, _ = image_splits(survey)
    facts: dict[str, dict[str, Any]] = {}
    for records in survey.items.values():
        for record in records:
            folder = _folder_of(record)
            english = (_text(record.get("q_lang")) or "") == "en"
            if folder is not None and (folder not in facts or (english and not facts[folder]["en"])):
                facts[folder] = {"en": english, **{k: record.get(k) for k in ("img_id", "modality", "location")}}
    planned = [
        (f, splits[f], f in survey.has_boxes, f in survey.has_mask, facts.get(f, {}))
        for f in sorted(set(survey.folders) | set(splits)) if f in splits
    ]
    if ctx.options.limit is not None:
        planned = planned[: ctx.options.limit]
    return [
        FolderUnit(config, ctx.source_tag, ctx.options.image, survey.images, survey.categories, tuple(planned[i : i + UNIT_FOLDERS]))
        for i in range(0, len(planned), UNIT_FOLDERS)
    ]


def _convert_questions(unit: VqaUnit) -> Iterator[Row | SampleError]:
    handle = unit.images.open()
    try:
        for split, label, record, sample_id in unit.items:
            try:
                values = _question_values(unit, label, record, handle)
            except SampleError as err:
                yield err
                continue
            yield Row(unit.config, split, {**values, "source": unit.source_tag, "sample_id": sample_id, "split": split})
    finally:
        if handle is not None:
            handle.close()


def _question_values(unit: VqaUnit, label: str, record: Mapping[str, Any], handle: zipfile.ZipFile | None) -> dict[str, Any]:
    qid = _text(record.get("qid"))
    question, answer = _text(record.get("question")), _text(record.get("answer"))
    if question is None or answer is None:
        raise SampleError(label, "parse", f"qid {qid}: no question or no answer")
    lang = _text(record.get("q_lang"))
    if (lang or "").lower() not in VQA_CONFIGS.values():
        raise SampleError(label, "parse", f"qid {qid}: q_lang {record.get('q_lang')!r} is neither en nor zh")
    kind = answer_type(record.get("answer_type"))
    if kind is None:
        raise SampleError(label, "parse", f"qid {qid}: answer_type {record.get('answer_type')!r} is neither OPEN nor CLOSED")
    name = _text(record.get("img_name"))
    if name is None or _folder_of(record) is None:
        raise SampleError(label, "parse", f"qid {qid}: img_name {record.get('img_name')!r} is not <folder>/<file>")
    image = _decode(unit.images, name, handle, unit.image)
    triple = record.get("triple")
    return {
        "images": [{"bytes": image.data, "path": name}],
        "question": question,
        "answer": answer,
        "answer_type": kind,
        "options": [],
        "answer_idx": None,
        "qid": qid,
        "img_id": _int(record.get("img_id")),
        "img_name": name,
        "q_lang": lang,
        "content_type": _text(record.get("content_type")),
        "modality": _text(record.get("modality")),
        "body_part": _text(record.get("location")),
        "base_type": _text(record.get("base_type")),
        "triple": [str(t) for t in triple] if isinstance(triple, list) else None,
    }


def _decode(images: Images, rel: str, handle: zipfile.ZipFile | None, options: ImageOptions) -> EncodedImage:
    data = images.read(rel, handle)
    label = f"{images.label}/{rel}" if images.zip_path is None else f"{images.label}:{IMAGES_DIR}/{rel}"
    return load_raster_bytes(data, label, options)


def _convert_folders(unit: FolderUnit) -> Iterator[Row | SampleError]:
    handle = unit.images.open()
    try:
        for folder, split, boxed, masked, facts in unit.folders:
            try:
                values = _folder_values(unit, (folder, boxed, masked), facts, handle)
            except SampleError as err:
                yield err
                continue
            yield Row(unit.config, split, {**values, "source": unit.source_tag, "sample_id": folder, "split": split})
    finally:
        if handle is not None:
            handle.close()


def _folder_values(unit: FolderUnit, what: tuple[str, bool, bool], facts: Mapping[str, Any], handle: zipfile.ZipFile | None) -> dict[str, Any]:
    folder, boxed, masked = what
    image = _decode(unit.images, f"{folder}/{IMAGE_FILE}", handle, unit.image)
    boxes: list[tuple[str, list[float]]] = []
    if boxed:
        boxes = parse_boxes(unit.images.read(f"{folder}/{BOXES_FILE}", handle), f"{unit.images.label}/{folder}/{BOXES_FILE}")
    mask = None
    if masked:
        # Nearest-neighbour keeps a resized mask's pixel values labels (never blends two of them).
        mask_image = _decode(unit.images, f"{folder}/{MASK_FILE}", handle, replace(unit.image, resample="nearest"))
        mask = {"bytes": mask_image.data, "path": f"{folder}/{MASK_FILE}"}
    s = image.scale
    return {
        "image": {"bytes": image.data, "path": f"{folder}/{IMAGE_FILE}"},
        "objects": {
            "bbox": [[x * s, y * s, (x + w) * s, (y + h) * s] for _, (x, y, w, h) in boxes],
            "category": [name for name, _ in boxes],
        },
        "width": image.width,
        "height": image.height,
        "scale": s,
        "patient_id": None,
        "study_id": None,
        "view": None,
        "laterality": None,
        "modality": _text(facts.get("modality")),
        "img_id": _int(facts.get("img_id")),
        "img_name": f"{folder}/{IMAGE_FILE}",
        "body_part": _text(facts.get("location")),
        "mask": mask,
    }


def card_notes(survey: Survey) -> list[str]:
    """Record the evaluation splits, the counts per split and language, and what was left out."""
    langs = {split: Counter(str(r.get("q_lang")) for r in records) for split, records in survey.items.items()}
    splits, crossing = image_splits(survey)
    unreferenced = sorted(set(survey.folders) - set(splits))
    notes = [
        "Evaluation: test is SLAKE's evaluation split and validation its model-selection split; the published "
        "split is kept (no question moves between splits). Most papers report the English test set (vqa-en, test).",
        "Questions per split and language: " + "; ".join(
            f"{split} ({survey.files[split]}) " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())) for split, c in langs.items()
        ) + ".",
        "answer_type is upstream's OPEN/CLOSED as open/closed; options is empty and answer_idx null (SLAKE lists no "
        "answer options). body_part is upstream's location. sample_id is <split>-<qid>.",
        f"masks-boxes: {len(splits)} image folders referenced by questions; box names (ClassLabel, sorted, upstream "
        f"spellings): {', '.join(survey.categories) or 'none'}. Boxes are xyxy in output pixels (upstream x, y, w, h); "
        "mask is mask.png, resized with nearest-neighbour under --max-size.",
    ]
    if unreferenced:
        notes.append(f"{len(unreferenced)} image folder(s) no question references are left out of masks-boxes: {', '.join(unreferenced[:10])}.")
    if crossing:
        notes.append(f"{len(crossing)} image folder(s) have questions in more than one split; masks-boxes puts them in "
                     f"the first of train, validation, test: {', '.join(crossing[:10])}.")
    if survey.damaged_boxes:
        notes.append(f"{len(survey.damaged_boxes)} detection.json file(s) could not be read (see errors.jsonl).")
    notes.append("KG.zip (the knowledge graph) and mask.txt are fetched but not normalized.")
    return notes


RECIPE = Slake()
