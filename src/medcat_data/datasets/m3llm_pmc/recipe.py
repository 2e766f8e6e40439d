"""M3LLM / PMC-MI instruction data -> VQA: six configs, one row per question-answer pair.

Files (fact sheet §7a): ``puretext``, ``boundingboxVQA``, ``single_subimage``, ``multiple_subimage``
or ``multi_subimage``, ``subimage_option`` and ``compound_image``, as ``.jsonl`` or as a ``.json``
array, found by name anywhere under the source folder (the InternVL README's ``stage5_*`` names are
accepted too). Two record forms are told apart per file from its first records:

* **InternVL lines** (``id``, ``image`` str or list, ``conversations``): a row per ``human`` turn
  followed by a ``gpt`` turn; ``<image>`` placeholders (and ``Image-N:`` labels before them) are
  removed from the question, the row carries every image of the line.
* **Pipeline records** (``image``, ``caption``, ``qa_pairs`` ...): a row per ``qa_pairs`` item with
  ``question``, ``answer``, ``context`` and ``improved context`` (v2 snake_case: ``draft_context``
  is the first draft and ``context`` the refined one; they land in ``context`` /
  ``improved_context`` so the columns mean the same for both), ``selected_image_paths`` as the
  images, ``image_index``; ``option`` (``"A. ..\\nB. .."``) or ``options`` (``{"A": ..}``) become
  ``options`` and the answer letter ``answer_idx`` (``answer`` is then the option's text and
  ``answer_key`` the letter). ``bbox`` and ``compound-image`` rows put the compound figure
  (``image``, "Fig-0") first.

``answer_type`` is upstream's (``open``/``closed``, any case) or ``closed`` where a row has options;
otherwise null, never guessed. ``article_id`` is the ``PMC<id>`` prefix of the figure name. The
generated text is CC BY-NC-SA 4.0 (``license``); a per-article licence field, where a record has
one, is kept in ``article_license``. ``bbox`` questions speak of pixel points of the original
figure, so those images are never resized (``--max-size`` is ignored for that config).

Images are resolved against the InternVL roots (the source folder, ``images/``,
``full_data_images/``), then by file name through ``converters.image_index`` (built once per
fetch by the survey) of every image file under the source folder and every member of its
``*.zip`` files (read in place, never extracted; where the Hub release keeps its images is
unconfirmed). A name found nowhere is a ``SampleError`` for its row. Reading records and their
fields is ``records.py``.

Work units are byte ranges of one file: JSONL ranges end on a newline (found by seeking; one
streaming pass counts lines so an error names file and line), JSON arrays are cut between
elements. Upstream has no split: every row is ``train``; ``--split-by article_id`` gives a seeded
split grouped by article over all six files.
"""


from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.image_index import ImageIndex, ImageLookup, LooseImage, build_image_index, derived_dir, walk_files
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import vqa_features
from medcat_data.converters.splits import grouped_split
from medcat_data.converters.units import Row
from medcat_data.datasets.m3llm_pmc.records import (
    DETECT_RECORDS,
    ByteRange,
    Draft,
    Form,
    Kind,
    detect_form,
    file_kind,
    internvl_drafts,
    iter_records,
    pipeline_drafts,
    position,
    ranges_of,
    record_form,
)
from medcat_data.errors import SampleError, UsageError

__all__ = ["DATASET_ID", "FILE_STEMS", "RECIPE", "M3llmPmc", "M3Unit", "Survey"]

DATASET_ID = "m3llm-pmc"

FILE_STEMS: Mapping[str, tuple[str, ...]] = {
    "puretext": ("puretext", "stage5_puretext_new"),
    "bbox": ("boundingboxVQA", "stage4_boundingboxVQA_v1"),
    "single-subimage": ("single_subimage", "stage5_single_subimage"),
    "multi-subimage": ("multiple_subimage", "multi_subimage", "stage5_multi_subimage_new"),
    "subimage-option": ("subimage_option", "stage5_subimage_option"),
    "compound-image": ("compound_image", "stage5_compound_image"),
}
"""File names (without extension) per config, preferred first: PMC-data.json's, the Hub card's
(``multi_subimage``) and the InternVL README's ``stage*`` names (fact sheet §7a)."""

EXTENSIONS = (".jsonl", ".json")
IMAGE_ROOTS = ("", "images", "full_data_images")
"""Where InternVL's meta file roots images (``your_data_path/images/``; the README also names
``full_data_images/``), relative to the source folder."""
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
NEVER_RESIZED = frozenset({"bbox"})
GENERATED_LICENSE = "CC-BY-NC-SA-4.0"
SPLIT_COLUMNS = ("article_id",)
UNIT_BYTES = 1 << 20
"""Target size of a work unit. A unit's rows (with their images) are held in memory until it is
written; at ~5 kB per record and 1-3 figures per row, 1 MiB of records is some tens of MB."""


@dataclass(frozen=True)
class M3Unit:
    """One byte range of one annotation file, with everything its worker needs."""

    config: str
    path: Path
    rel: str
    kind: Kind
    form: Form | None
    span: ByteRange
    source_tag: str
    source_dir: Path
    image: ImageOptions
    max_rows: int | None = None
    index: ImageIndex | None = None
    splits: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[SampleError, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.config}@{self.rel}:{self.span.first}"


@dataclass(frozen=True)
class FilePlan:
    """The annotation file of one config: its kind, record form, ranges and the candidates left aside."""

    config: str
    path: Path
    rel: str
    kind: Kind
    form: Form | None
    ranges: list[ByteRange]
    others: list[str]
    problem: str | None = None


@dataclass(frozen=True)
class Survey:
    """The files of every config, the ``--split-by`` split per range, and the image index."""

    files: Mapping[str, FilePlan]
    range_splits: Mapping[tuple[str, int], Mapping[str, str]]
    split_description: Mapping[str, object] | None
    images: ImageIndex


# ------------------------------------------------------------------------------------- surveying


def find_files(ctx: RecipeContext) -> dict[str, tuple[Path, list[Path]]]:
    """Return, per config, the annotation file to read and the other candidates left aside.

    A name of ``FILE_STEMS`` with a ``.jsonl`` or ``.json`` extension, anywhere under the source
    folder; the preferred name wins, then the shallowest path.
    """
    found: dict[str, list[tuple[int, int, str, Path]]] = {}
    rank = {stem.lower() + ext: (c, i, e) for c, stems in FILE_STEMS.items() for i, stem in enumerate(stems) for e, ext in enumerate(EXTENSIONS)}
    for path in walk_files(ctx.source_dir):
        hit = rank.get(path.name.lower())
        if hit is None or not ctx.has(path):
            continue
        config, preference, ext = hit
        found.setdefault(config, []).append((preference * 2 + ext, len(path.parts), str(path), path))
    return {config: (ordered[0], ordered[1:]) for config, ordered in ((c, [x[3] for x in sorted(v)]) for c, v in found.items())}


def _root_rel(path: Path, ctx: RecipeContext) -> str:
    """Name an annotation file relative to the dataset folder (``hf/puretext.jsonl``), as errors.jsonl always has."""
    try:
        return path.relative_to(ctx.root).as_posix()
    except ValueError:
        return path.name


def _file_plan(config: str, path: Path, others: list[Path], ctx: RecipeContext) -> FilePlan:
    kind = file_kind(path)
    rel = _root_rel(path, ctx)
    problem = None
    try:
        ranges = ranges_of(path, kind, UNIT_BYTES)
    except (ValueError, OSError) as err:  # JsonArrayError: the array's structure is broken
        ranges, problem = [], str(err)
    form = detect_form(path, kind, ranges, rel)
    if problem is None and form is None and ranges:
        problem = (
            f"none of its first {DETECT_RECORDS} readable records has 'conversations' (InternVL) or "
            "'qa_pairs' (pipeline records); cannot tell how to read it"
        )
    return FilePlan(config, path, rel, kind, form, ranges, [_root_rel(o, ctx) for o in others], problem)


def _range_articles(fp: FilePlan, span: ByteRange) -> set[str]:
    """Return the article ids of the records of one range."""
    articles: set[str] = set()
    drafts = internvl_drafts if fp.form == "internvl" else pipeline_drafts
    for item in iter_records(fp.path, fp.kind, fp.rel, span):
        if isinstance(item, SampleError) or not isinstance(item[1], Mapping):
            continue
        for draft in drafts(fp.config, item[1]):
            if isinstance(draft, Draft) and draft.extras["article_id"]:
                articles.add(draft.extras["article_id"])
    return articles


def index_images(ctx: RecipeContext) -> ImageIndex:
    """Index every image file under the source folder and every member of its ``*.zip`` files, in one walk."""
    parts: list[Path] = []

    def loose() -> Iterator[Path]:
        for path in walk_files(ctx.source_dir):
            suffix = path.suffix.lower()
            if suffix == ".zip":
                parts.append(path)
            elif suffix in IMAGE_SUFFIXES:
                yield path

    return build_image_index(ctx.source_dir, derived_dir(ctx.root), prefix=DATASET_ID, loose=loose(), parts=parts)


# ------------------------------------------------------------------------------------- recipe


class M3llmPmc(Recipe[Survey, M3Unit]):
    """M3LLM-PMC's six annotation files into six VQA configs (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("puretext", "bbox", "single-subimage", "multi-subimage", "subimage-option", "compound-image")

    def survey(self, ctx: RecipeContext) -> Survey:
        """Find the files, cut them into ranges, detect their forms, (``--split-by``) split articles, index images.

        Raises:
            UsageError: ``--split-by`` names a column other than ``article_id``.
        """
        opts = ctx.options
        if opts.split_by and opts.split_by not in SPLIT_COLUMNS:
            raise UsageError(f"{DATASET_ID}: --split-by {opts.split_by!r} is not supported; use one of {', '.join(SPLIT_COLUMNS)}.")
        files = {config: _file_plan(config, path, others, ctx) for config, (path, others) in find_files(ctx).items()}
        range_splits: dict[tuple[str, int], Mapping[str, str]] = {}
        description: Mapping[str, object] | None = None
        if opts.split_by:
            per_range = {
                (config, i): _range_articles(fp, span)
                for config, fp in files.items() if fp.problem is None
                for i, span in enumerate(fp.ranges)
            }
            split = grouped_split(sorted(set().union(*per_range.values())) if per_range else [], seed=opts.seed)
            range_splits = {k: {g: split.of(g) for g in sorted(v)} for k, v in per_range.items()}
            description = {"column": opts.split_by, **split.describe()}
        return Survey(files, range_splits, description, index_images(ctx))

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the VQA schema (``schemas.vqa_features``) with this dataset's extras after it."""
        self.check_config(config)
        return vqa_features(
            {
                "article_id": Value("string"),
                "license": Value("string"),
                "article_license": Value("string"),
                "context": Value("string"),
                "improved_context": Value("string"),
                "caption": Value("string"),
                "image_index": List(Value("string")),
                "answer_key": Value("string"),
                "record_form": Value("string"),
                "record_id": Value("string"),
            }
        )

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[M3Unit]:
        """Return the byte-range units of the config's file (one unit from the start under ``--limit``)."""
        self.check_config(config)
        fp = survey.files.get(config)
        if fp is None:
            return Plan(units=[])
        image = ctx.options.image
        if config in NEVER_RESIZED:
            image = dataclasses.replace(image, max_size=None)
        common: dict[str, Any] = dict(
            config=config, path=fp.path, rel=fp.rel, kind=fp.kind, form=fp.form,
            source_tag=ctx.source_tag, source_dir=ctx.source_dir, image=image, index=survey.images,
        )
        if fp.problem is not None:
            return Plan(units=[M3Unit(**common, span=ByteRange(0, 0, 0), errors=(SampleError(fp.rel, "parse", fp.problem),))])
        if not fp.ranges:
            return Plan(units=[])
        if ctx.options.limit is not None:
            whole = ByteRange(fp.ranges[0].start, fp.ranges[-1].end, fp.ranges[0].first)
            merged: dict[str, str] = {}
            for i in range(len(fp.ranges)):
                merged.update(survey.range_splits.get((config, i), {}))
            return Plan(units=[M3Unit(**common, span=whole, max_rows=ctx.options.limit, splits=merged)])
        return Plan(
            units=[M3Unit(**common, span=span, splits=survey.range_splits.get((config, i), {})) for i, span in enumerate(fp.ranges)]
        )

    def convert_unit(self, unit: M3Unit) -> Iterator[Row | SampleError]:
        """Yield a row per question-answer pair of the unit's records; bad records and missing images are ``SampleError``s."""
        if unit.errors:
            yield from unit.errors
            return
        lookup = unit.index.open() if unit.index is not None else None
        try:
            yield from _convert(unit, lookup)
        finally:
            if lookup is not None:
                lookup.close()

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Record the files and record forms read, the licences, the answer-type rule, bbox sizing and the split."""
        return card_notes(survey)


RECIPE = M3llmPmc()


# ------------------------------------------------------------------------------------- converting


def _convert(unit: M3Unit, lookup: ImageLookup | None) -> Iterator[Row | SampleError]:
    rows = 0
    drafts_of = internvl_drafts if unit.form == "internvl" else pipeline_drafts
    for item in iter_records(unit.path, unit.kind, unit.rel, unit.span):
        if unit.max_rows is not None and rows >= unit.max_rows:
            return
        if isinstance(item, SampleError):
            yield item
            continue
        number, record = item
        where = position(unit.kind, unit.rel, number)
        if record_form(record) != unit.form:
            expected = "'conversations' (InternVL)" if unit.form == "internvl" else "'qa_pairs' (pipeline record)"
            yield SampleError(where, "parse", f"not a record of this file's form: expected an object with {expected}")
            continue
        for draft in drafts_of(unit.config, record):
            if unit.max_rows is not None and rows >= unit.max_rows:
                return
            if not isinstance(draft, Draft):
                yield SampleError(where, "parse", draft[1])
                continue
            try:
                images = [_load(name, lookup, unit, where) for name in draft.images]
            except SampleError as err:
                yield err
                continue
            article = draft.extras["article_id"]
            split = unit.splits.get(article, "train") if article else "train"
            yield Row(
                unit.config,
                split,
                {
                    "images": images,
                    "question": draft.question,
                    "answer": draft.answer,
                    "answer_type": draft.answer_type,
                    "options": draft.options,
                    "answer_idx": draft.answer_idx,
                    **draft.extras,
                    "license": GENERATED_LICENSE,
                    "answer_key": draft.answer_key,
                    "record_form": unit.form,
                    "source": unit.source_tag,
                    "sample_id": f"{Path(unit.rel).stem}:{number}:{draft.k}",
                    "split": split,
                },
            )
            rows += 1


def read_image(name: str, source_dir: Path, lookup: ImageLookup | None, options: ImageOptions) -> EncodedImage | None:
    """Return the image an upstream reference names (InternVL roots, then the index by file name), or None.

    Raises:
        SampleError: the file or member exists but cannot be read or decoded.
    """
    clean = name.replace("\\", "/")
    while clean.startswith("./"):
        clean = clean[2:]
    if not clean.startswith("/") and ".." not in clean.split("/"):
        for root in IMAGE_ROOTS:
            candidate = source_dir / root / clean if root else source_dir / clean
            if candidate.is_file():
                return load_raster(candidate, options)
    found = lookup.find(clean.rsplit("/", 1)[-1]) if lookup is not None else None
    if found is None or lookup is None:
        return None
    if isinstance(found, LooseImage):
        return load_raster(found.path, options)
    return load_raster_bytes(lookup.read_member(found), found.label, options)


def _load(name: str, lookup: ImageLookup | None, unit: M3Unit, where: str) -> dict[str, Any]:
    try:
        encoded = read_image(name, unit.source_dir, lookup, unit.image)
    except SampleError as err:
        raise SampleError(where, err.stage, f"image {name!r}: {err.reason}") from err
    if encoded is None:
        raise SampleError(
            where,
            "read",
            f"image {name!r} is not in the fetched files (looked under {', '.join(r + '/' for r in IMAGE_ROOTS if r)}, "
            "then by file name among every image and zip member of the source folder); fetch the images or check the name",
        )
    return {"bytes": encoded.data, "path": Path(name).name}


def card_notes(survey: Survey) -> list[str]:
    """Return the card notes of a survey (see ``M3llmPmc.card_notes``)."""
    notes = []
    for config in M3llmPmc.CONFIGS:
        fp = survey.files.get(config)
        if fp is None:
            notes.append(f"{config}: no annotation file fetched (looked for {', '.join(s + '.jsonl/.json' for s in FILE_STEMS[config])}).")
            continue
        form = {"internvl": "InternVL conversation lines (a row per human->gpt pair)", "pipeline": "pipeline records (a row per qa_pairs item)", None: "an unrecognised record form"}[fp.form]
        others = f"; also present and not read: {', '.join(fp.others)}" if fp.others else ""
        notes.append(f"{config}: {fp.rel} ({'JSON array' if fp.kind == 'json' else 'JSON Lines'}, {form}, {len(fp.ranges)} work unit(s)){others}.")
    notes += [
        "Licences: the generated questions, answers, options and labels are CC BY-NC-SA 4.0 ('license'); images, "
        "captions and article text keep their per-article PMC licences ('article_license' where a record carries one, "
        "else null: check the article's licence before reuse).",
        "answer_type is upstream's where a record has one, 'closed' where a row has options, else null (never guessed). "
        "For options, answer is the correct option's text, answer_key its letter and answer_idx its 0-based index.",
        "bbox: questions refer to pixel points of the original compound figure, so its images are never resized "
        "(--max-size is ignored for this config); bbox and compound-image rows list the compound figure first.",
        "context / improved_context: the pair's draft context and the rewritten one without answer leakage "
        "('context' / 'improved context' in v1 records, 'draft_context' / 'context' in v2 records).",
        "InternVL lines: '<image>' placeholders and 'Image-N:' labels are removed from questions; every image of the line "
        "is on each of its rows; options written inside the question text are not parsed.",
        f"Images are found under the source folder, images/ and full_data_images/, then by file name through an on-disk "
        f"index of {survey.images.loose_count} image file(s)"
        + (f" and the members of {len(survey.images.parts)} zip file(s) (read in place, never extracted)" if survey.images.parts else "")
        + ".",
    ]
    if survey.split_description:
        notes.append(f"Split: seeded, grouped by article over all configs (rows without an article id are train): {survey.split_description}.")
    else:
        notes.append("Split: upstream has none; every row is train. `--split-by article_id` gives a seeded split grouped by article.")
    return notes
