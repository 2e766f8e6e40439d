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
``full_data_images/``), then by file name through an on-disk index (SQLite under the cache's
``.medcat/derived/``, built once at planning) of every image file under the source folder and every
member of its ``*.zip`` files (read in place, never extracted; where the Hub release keeps its
images is unconfirmed). A name found nowhere is a ``SampleError`` for its row.

Work units are byte ranges of one file: JSONL ranges end on a newline (found by seeking; one
streaming pass counts lines so an error names file and line), JSON arrays are cut between
elements. Upstream has no split: every row is ``train``; ``--split-by article_id`` gives a seeded
split grouped by article over all six files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import EncodedImage, ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.recipes.base import Plan, RecipeContext, check_config
from medcat_data.converters.schemas import vqa_features
from medcat_data.converters.splits import grouped_split
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError

__all__ = [
    "CONFIGS",
    "DATASET_ID",
    "FILE_STEMS",
    "ByteRange",
    "M3Unit",
    "card_notes",
    "convert_unit",
    "features",
    "jsonl_ranges",
    "parse_options",
    "plan",
]

log = logging.getLogger(__name__)

DATASET_ID = "m3llm-pmc"
CONFIGS: tuple[str, ...] = ("puretext", "bbox", "single-subimage", "multi-subimage", "subimage-option", "compound-image")

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
COMPOUND_FIRST = frozenset({"bbox", "compound-image"})
NEVER_RESIZED = frozenset({"bbox"})
GENERATED_LICENSE = "CC-BY-NC-SA-4.0"
ARTICLE_LICENSE_KEYS = ("article_license", "article_licence", "license", "licence")
"""Per-article licence fields looked for on a record (the v2 licensing note says records carry one;
its name is unconfirmed)."""
SPLIT_COLUMNS = ("article_id",)
UNIT_BYTES = 1 << 20
"""Target size of a work unit. A unit's rows (with their images) are held in memory until it is
written; at ~5 kB per record and 1-3 figures per row, 1 MiB of records is some tens of MB."""
DETECT_RECORDS = 20

Form = Literal["internvl", "pipeline"]
Kind = Literal["jsonl", "json"]

_ARTICLE = re.compile(r"^(PMC\d+)_")
_PLACEHOLDER = re.compile(r"(?:Image-\d+:\s*)?<image>\s*")
_LETTER = re.compile(r"^\W*(?:(?:correct\s+)?answer\s*(?:is)?\s*[:：]?\s*)?\(?([A-Z])(?:\W|$)", re.IGNORECASE)
_OPTION_START = re.compile(r"(?:^|(?<=[\s;]))\(?([A-H])[.):]\s*")


# ------------------------------------------------------------------------------------- values


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of a file; ``first`` is the first line (1-based) or element index (0-based)."""

    start: int
    end: int
    first: int
    count: int | None = None


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


# ------------------------------------------------------------------------------------- files


def find_files(ctx: RecipeContext) -> dict[str, tuple[Path, list[Path]]]:
    """Return, per config, the annotation file to read and the other candidates left aside.

    A name of ``FILE_STEMS`` with a ``.jsonl`` or ``.json`` extension, anywhere under the source
    folder; the preferred name wins, then the shallowest path.
    """
    found: dict[str, list[tuple[int, int, str, Path]]] = {}
    rank = {stem.lower() + ext: (c, i, e) for c, stems in FILE_STEMS.items() for i, stem in enumerate(stems) for e, ext in enumerate(EXTENSIONS)}
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            hit = rank.get(filename.lower())
            path = Path(dirpath) / filename
            if hit is None or not ctx.has(path):
                continue
            config, preference, ext = hit
            found.setdefault(config, []).append((preference * 2 + ext, len(path.parts), str(path), path))
    chosen: dict[str, tuple[Path, list[Path]]] = {}
    for config, candidates in found.items():
        ordered = [c[3] for c in sorted(candidates)]
        chosen[config] = (ordered[0], ordered[1:])
    return chosen


def file_kind(path: Path) -> Kind:
    """Tell a JSON array from JSON Lines by the first non-blank byte (``[`` means an array)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return "json" if stripped[:1] == b"[" else "jsonl"
    return "jsonl"


def jsonl_ranges(path: Path, target_bytes: int = UNIT_BYTES) -> list[ByteRange]:
    """Cut a JSON Lines file into ranges of about ``target_bytes`` that end on a newline.

    Boundaries are found by seeking to each target offset and reading on to the next newline;
    one streaming pass counts the lines of each range so a unit knows its first line number.
    Memory stays constant whatever the file size.
    """
    size = path.stat().st_size
    ranges: list[ByteRange] = []
    with open(path, "rb") as handle:
        start, line = 0, 1
        while start < size:
            end = min(start + max(target_bytes, 1), size)
            if end < size:
                handle.seek(end)
                while True:
                    block = handle.read(1 << 16)
                    if not block:
                        end = size
                        break
                    cut = block.find(b"\n")
                    if cut >= 0:
                        end += cut + 1
                        break
                    end += len(block)
            handle.seek(start)
            remaining, newlines = end - start, 0
            while remaining > 0:
                block = handle.read(min(remaining, 1 << 20))
                if not block:
                    break
                newlines += block.count(b"\n")
                remaining -= len(block)
            ranges.append(ByteRange(start, end, line))
            start, line = end, line + newlines
    return ranges


def iter_jsonl(path: Path, rel: str, span: ByteRange) -> Iterator[tuple[int, Any] | SampleError]:
    """Yield ``(line number, parsed value)`` for each non-blank line of a range, or its ``SampleError``."""
    with open(path, "rb") as handle:
        handle.seek(span.start)
        position, number = span.start, span.first
        while position < span.end:
            raw = handle.readline()
            if not raw:
                break
            position += len(raw)
            text = raw.strip()
            if text:
                try:
                    yield number, json.loads(text.decode("utf-8"))
                except UnicodeDecodeError as err:
                    yield SampleError(f"{rel}:{number}", "parse", f"not UTF-8 text ({err.reason} at byte {err.start})")
                except json.JSONDecodeError as err:
                    yield SampleError(
                        f"{rel}:{number}",
                        "parse",
                        f"not a complete JSON value ({err.msg} at column {err.colno}); the line looks truncated or damaged",
                    )
            number += 1


def json_ranges(path: Path, target_bytes: int = UNIT_BYTES) -> list[ByteRange]:
    """Cut a JSON array into element ranges (through ``converters.jsonarray``)."""
    from medcat_data.converters import jsonarray

    return [ByteRange(r.start, r.end, r.first_index, r.count) for r in jsonarray.element_ranges(path, target_bytes)]


def iter_json(path: Path, rel: str, span: ByteRange) -> Iterator[tuple[int, Any] | SampleError]:
    """Yield ``(element index, parsed element)`` of a JSON array range; a malformed element is a ``SampleError``."""
    from medcat_data.converters import jsonarray

    rng = jsonarray.ElementRange(start=span.start, end=span.end, first_index=span.first, count=span.count or 0)
    try:
        for index, element in jsonarray.read_elements(path, rng, name=rel):
            if isinstance(element, jsonarray.MalformedElementError):
                yield SampleError(f"{rel}[{index}]", "parse", element.reason)
            else:
                yield index, element
    except jsonarray.JsonArrayError as err:
        yield SampleError(f"{rel}[{span.first}]", "parse", str(err))


def _records(unit: M3Unit) -> Iterator[tuple[int, Any] | SampleError]:
    if unit.kind == "json":
        return iter_json(unit.path, unit.rel, unit.span)
    return iter_jsonl(unit.path, unit.rel, unit.span)


def _ranges(path: Path, kind: Kind) -> list[ByteRange]:
    return json_ranges(path, UNIT_BYTES) if kind == "json" else jsonl_ranges(path, UNIT_BYTES)


def _position(kind: Kind, rel: str, number: int) -> str:
    return f"{rel}[{number}]" if kind == "json" else f"{rel}:{number}"


def record_form(record: Any) -> Form | None:
    """Tell the form of one record: ``internvl`` (has ``conversations``) or ``pipeline`` (``qa_pairs``)."""
    if isinstance(record, dict):
        if "conversations" in record:
            return "internvl"
        if "qa_pairs" in record:
            return "pipeline"
    return None


def detect_form(path: Path, kind: Kind, ranges: Sequence[ByteRange], rel: str) -> Form | None:
    """Return the record form of a file from its first ``DETECT_RECORDS`` parseable records."""
    seen = 0
    for span in ranges:
        for item in (iter_json if kind == "json" else iter_jsonl)(path, rel, span):
            if isinstance(item, SampleError):
                continue
            form = record_form(item[1])
            if form is not None:
                return form
            seen += 1
            if seen >= DETECT_RECORDS:
                return None
    return None


# ------------------------------------------------------------------------------------- fields


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "\n".join(str(v).strip() for v in value if str(v).strip())
    return str(value)


def _first(mapping: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = mapping.get(key)
        if value not in (None, ""):
            return value
    return None


def _names(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value if v not in (None, "")]
    return [str(value)]


def article_id(*names: str | None) -> str | None:
    """Return ``PMC<id>`` from the first figure name (directories ignored) that starts with it."""
    for name in names:
        if name:
            match = _ARTICLE.match(name.replace("\\", "/").rsplit("/", 1)[-1])
            if match:
                return match.group(1)
    return None


def parse_options(value: Any) -> tuple[list[str], list[str]]:
    """Return ``(keys, texts)`` of answer options given as a dict, a list or ``"A. ..\\nB. .."`` text.

    A dict keeps its keys (``{"A": "x"}``); a list gets ``A``, ``B``...; text is cut at option
    letters ``A``-``H`` followed by ``.``, ``)`` or ``:`` that start a line, follow a ``;`` or a
    space, and come in order. Text without such letters gives no options (never guessed).
    """
    if value is None or value == "":
        return [], []
    if isinstance(value, Mapping):
        keys = [str(k).strip() for k in value]
        return keys, [str(v).strip() for v in value.values()]
    if isinstance(value, list):
        texts = [str(v).strip() for v in value]
        return [chr(ord("A") + i) for i in range(len(texts))], texts
    text = str(value)
    starts: list[tuple[int, int, str]] = []
    expected = "A"
    for match in _OPTION_START.finditer(text):
        if match.group(1) == expected:
            starts.append((match.start(), match.end(), expected))
            expected = chr(ord(expected) + 1)
    if len(starts) < 2:
        return [], []
    keys, texts = [], []
    for i, (_, body, key) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        keys.append(key)
        texts.append(text[body:stop].strip().rstrip(";").strip())
    return keys, texts


def answer_letter(value: Any) -> str | None:
    """Return the option letter an answer names (``"B"``, ``"B."``, ``"(B) text"``, ``"Answer: B"``), else None.

    Only a capital letter counts as a letter (``"a"`` alone is not read as option A).
    """
    if value is None:
        return None
    match = _LETTER.match(str(value).strip())
    return match.group(1) if match and match.group(1).isupper() else None


def upstream_answer_type(*sources: Mapping[str, Any]) -> str | None:
    """Return upstream's ``answer_type`` as ``open``/``closed`` (any case), else None."""
    for source in sources:
        value = source.get("answer_type")
        if isinstance(value, str) and value.strip().lower() in ("open", "closed"):
            return value.strip().lower()
    return None


def article_license(*sources: Mapping[str, Any]) -> str | None:
    """Return a record's per-article licence (first of ``ARTICLE_LICENSE_KEYS``), as text."""
    for source in sources:
        value = _first(source, *ARTICLE_LICENSE_KEYS)
        if value is not None:
            return value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return None


@dataclass(frozen=True)
class Draft:
    """One question-answer pair before its images are loaded."""

    k: int
    question: str
    answer: str
    answer_type: str | None
    options: list[str]
    answer_idx: int | None
    answer_key: str | None
    images: list[str]
    extras: Mapping[str, Any]


def pipeline_drafts(config: str, record: Mapping[str, Any]) -> Iterator[Draft | tuple[int, str]]:
    """Yield a ``Draft`` per ``qa_pairs`` item of a pipeline record, or ``(k, reason)`` for a bad one."""
    pairs = record.get("qa_pairs")
    if not isinstance(pairs, list):
        yield -1, "'qa_pairs' is not a list"
        return
    compound = _text(record.get("image")) or None
    record_license = article_license(record)
    for k, pair in enumerate(pairs):
        if not isinstance(pair, Mapping):
            yield k, f"qa_pairs[{k}] is not an object"
            continue
        question = _text(_first(pair, "question", "Question"))
        raw_answer = _first(pair, "answer", "Answer", "correct_answer", "correct answer", "reference_answer")
        if not question or raw_answer is None:
            yield k, f"qa_pairs[{k}] lacks a question or an answer"
            continue
        keys, texts = parse_options(_first(pair, "options", "option", "Options"))
        answer_idx = answer_key = None
        answer = _text(raw_answer) or ""
        if texts:
            letter = answer_letter(raw_answer)
            if letter is None or letter not in keys:
                yield k, f"qa_pairs[{k}]: answer {str(raw_answer)[:40]!r} names none of the options {keys}"
                continue
            answer_idx, answer_key = keys.index(letter), letter
            answer = texts[answer_idx]
        if "draft_context" in pair:
            context, improved = _text(pair.get("draft_context")), _text(pair.get("context"))
        else:
            context, improved = _text(pair.get("context")), _text(_first(pair, "improved context", "improved_context"))
        selected = _names(pair.get("selected_image_paths"))
        if config == "puretext":
            images: list[str] = []
        elif config in COMPOUND_FIRST and compound:
            images = [compound] + [s for s in selected if s != compound]
        else:
            images = selected
        answer_type = upstream_answer_type(pair, record) or ("closed" if texts else None)
        yield Draft(
            k, question, answer, answer_type, texts, answer_idx, answer_key, images,
            {
                "article_id": article_id(compound, *selected),
                "article_license": article_license(pair) or record_license,
                "context": context,
                "improved_context": improved,
                "caption": _text(record.get("caption")),
                "image_index": _names(pair.get("image_index")),
                "record_id": _text(_first(record, "id", "_construction_key")),
            },
        )


def internvl_drafts(config: str, record: Mapping[str, Any]) -> Iterator[Draft | tuple[int, str]]:
    """Yield a ``Draft`` per human->gpt turn pair of an InternVL line, or ``(k, reason)`` for a bad one."""
    turns = record.get("conversations")
    if not isinstance(turns, list):
        yield -1, "'conversations' is not a list"
        return
    images = [] if config == "puretext" else _names(record.get("image"))
    answer_type = upstream_answer_type(record)
    k, pending = 0, None
    for turn in turns:
        if not isinstance(turn, Mapping):
            yield k, "a conversation turn is not an object"
            return
        speaker, value = turn.get("from"), turn.get("value")
        if speaker == "human":
            pending = _PLACEHOLDER.sub("", str(value or "")).strip()
        elif speaker == "gpt" and pending is not None:
            yield Draft(
                k, pending, str(value or "").strip(), answer_type, [], None, None, images,
                {
                    "article_id": article_id(*images, *_names(record.get("image"))),
                    "article_license": article_license(record),
                    "context": None,
                    "improved_context": None,
                    "caption": None,
                    "image_index": [],
                    "record_id": _text(record.get("id")),
                },
            )
            k, pending = k + 1, None
    if pending is not None:
        yield k, f"conversation turn pair {k} has a human turn without a gpt answer"


# ------------------------------------------------------------------------------------- images


_LOOSE_BATCH = 10_000


@dataclass(frozen=True)
class ImageIndex:
    """The on-disk image name indexes of one fetch: loose files and zip members (either may be absent)."""

    loose: Path | None
    zipped: Path | None
    loose_count: int = 0
    zip_parts: tuple[str, ...] = ()


def build_image_index(source_dir: Path, derived: Path) -> ImageIndex:
    """Index every image under ``source_dir`` by file name, on disk: loose files and members of ``*.zip``.

    Loose files go to a small SQLite table (name -> path relative to ``source_dir``; the first in
    sorted walk order wins); zip parts go through ``converters.zipmembers`` (members read in place,
    never extracted). Both files are named by a digest of what was indexed, written under a temporary
    name and renamed, and reused when nothing changed. Memory stays bounded by one batch of names,
    whatever the number of images (PMC-MI has hundreds of thousands).
    """
    from medcat_data.converters.zipmembers import build_index

    derived.mkdir(parents=True, exist_ok=True)
    tmp = derived / f"m3llm-pmc-loose.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    digest = hashlib.sha256(str(source_dir).encode())
    parts: list[Path] = []
    con = sqlite3.connect(tmp)
    try:
        con.execute("CREATE TABLE files (name TEXT PRIMARY KEY, path TEXT) WITHOUT ROWID")
        batch: list[tuple[str, str]] = []
        for dirpath, dirnames, filenames in os.walk(source_dir):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                suffix = path.suffix.lower()
                if suffix == ".zip":
                    parts.append(path)
                elif suffix in IMAGE_SUFFIXES:
                    rel = path.relative_to(source_dir).as_posix()
                    batch.append((filename, rel))
                    digest.update(rel.encode() + b"\0")
                    if len(batch) >= _LOOSE_BATCH:
                        con.executemany("INSERT OR IGNORE INTO files VALUES (?, ?)", batch)
                        batch.clear()
        con.executemany("INSERT OR IGNORE INTO files VALUES (?, ?)", batch)
        con.commit()
        (count,) = con.execute("SELECT COUNT(*) FROM files").fetchone()
    finally:
        con.close()
    loose: Path | None = None
    if count:
        loose = derived / f"m3llm-pmc-loose-{digest.hexdigest()[:16]}.sqlite"
        os.replace(tmp, loose)
    else:
        tmp.unlink(missing_ok=True)
    zipped: Path | None = None
    if parts:
        stats = repr([(p.relative_to(source_dir).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in parts])
        zipped = derived / f"m3llm-pmc-zips-{hashlib.sha256(stats.encode()).hexdigest()[:16]}.sqlite"
        if not zipped.exists():
            log.info("%s: indexing the members of %d zip file(s)", DATASET_ID, len(parts))
            _, unreadable = build_index(parts, source_dir, zipped)
            for rel in unreadable:
                log.warning("%s: %s is not a readable zip; images only it holds will be reported missing", DATASET_ID, rel)
    return ImageIndex(loose, zipped, int(count), tuple(p.relative_to(source_dir).as_posix() for p in parts))


class ImageReader:
    """Resolve and read images for one work unit: InternVL roots, then the loose index, then zip members."""

    def __init__(self, source_dir: Path, index: ImageIndex) -> None:
        from medcat_data.converters.zipmembers import MemberIndex

        self.source_dir = source_dir
        self._loose = sqlite3.connect(f"{index.loose.resolve().as_uri()}?mode=ro", uri=True) if index.loose else None
        self._zips = MemberIndex(index.zipped, source_dir) if index.zipped else None

    def read(self, name: str, options: ImageOptions) -> EncodedImage | None:
        """Return the image an upstream reference names, or None when no fetched file holds it.

        Raises:
            SampleError: the file or member exists but cannot be read or decoded.
        """
        clean = name.replace("\\", "/")
        while clean.startswith("./"):
            clean = clean[2:]
        if not clean.startswith("/") and ".." not in clean.split("/"):
            for root in IMAGE_ROOTS:
                candidate = self.source_dir / root / clean if root else self.source_dir / clean
                if candidate.is_file():
                    return load_raster(candidate, options)
        base = clean.rsplit("/", 1)[-1]
        if self._loose is not None:
            row = self._loose.execute("SELECT path FROM files WHERE name = ?", (base,)).fetchone()
            if row is not None:
                return load_raster(self.source_dir / row[0], options)
        if self._zips is not None:
            ref = self._zips.get(base)
            if ref is not None:
                return load_raster_bytes(self._zips.read(ref), ref.label, options)
        return None

    def close(self) -> None:
        """Close the indexes and any open zip part."""
        if self._loose is not None:
            self._loose.close()
        if self._zips is not None:
            self._zips.close()


def _derived_dir(ctx: RecipeContext) -> Path:
    """Return a writable folder for derived indexes: the cache's ``.medcat/derived``, else a temp folder."""
    folder = ctx.root / ".medcat" / "derived"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return folder
    except OSError:
        return Path(tempfile.gettempdir()) / "medcat-derived"


# ------------------------------------------------------------------------------------- survey


@dataclass(frozen=True)
class _FilePlan:
    config: str
    path: Path
    rel: str
    kind: Kind
    form: Form | None
    ranges: list[ByteRange]
    others: list[str]
    problem: str | None = None


@dataclass(frozen=True)
class _Survey:
    files: Mapping[str, _FilePlan]
    range_splits: Mapping[tuple[str, int], Mapping[str, str]]
    split_description: Mapping[str, object] | None
    images: ImageIndex


_SURVEYS: dict[tuple[Any, ...], _Survey] = {}


def _rel(path: Path, ctx: RecipeContext) -> str:
    try:
        return path.relative_to(ctx.root).as_posix()
    except ValueError:
        return path.name


def _survey(ctx: RecipeContext) -> _Survey:
    """Find the files, cut them into ranges, detect their forms and (``--split-by``) split articles."""
    opts = ctx.options
    if opts.split_by and opts.split_by not in SPLIT_COLUMNS:
        raise UsageError(f"{DATASET_ID}: --split-by {opts.split_by!r} is not supported; use one of {', '.join(SPLIT_COLUMNS)}.")
    found = find_files(ctx)
    stats = tuple((c, str(p), p.stat().st_size, p.stat().st_mtime_ns) for c, (p, _) in sorted(found.items()))
    key = (str(ctx.source_dir), ctx.available, opts.split_by, opts.seed, stats)
    cached = _SURVEYS.get(key)
    if cached is not None:
        return cached
    files: dict[str, _FilePlan] = {}
    for config, (path, others) in found.items():
        kind = file_kind(path)
        rel = _rel(path, ctx)
        problem = None
        try:
            ranges = _ranges(path, kind)
        except (ValueError, OSError) as err:  # JsonArrayError: the array's structure is broken
            ranges, problem = [], str(err)
        form = detect_form(path, kind, ranges, rel)
        if problem is None and form is None and ranges:
            problem = (
                f"none of its first {DETECT_RECORDS} readable records has 'conversations' (InternVL) or "
                "'qa_pairs' (pipeline records); cannot tell how to read it"
            )
        files[config] = _FilePlan(config, path, rel, kind, form, ranges, [_rel(o, ctx) for o in others], problem)
    range_splits: dict[tuple[str, int], Mapping[str, str]] = {}
    description: Mapping[str, object] | None = None
    if opts.split_by:
        per_range: dict[tuple[str, int], set[str]] = {}
        for config, fp in files.items():
            if fp.problem is not None:
                continue
            for i, span in enumerate(fp.ranges):
                groups = per_range.setdefault((config, i), set())
                unit = M3Unit(config, fp.path, fp.rel, fp.kind, fp.form, span, "", ctx.source_dir, opts.image)
                for item in _records(unit):
                    if isinstance(item, SampleError) or not isinstance(item[1], Mapping):
                        continue
                    drafts = internvl_drafts if fp.form == "internvl" else pipeline_drafts
                    for draft in drafts(config, item[1]):
                        if isinstance(draft, Draft) and draft.extras["article_id"]:
                            groups.add(draft.extras["article_id"])
        split = grouped_split(sorted(set().union(*per_range.values())) if per_range else [], seed=opts.seed)
        range_splits = {k: {g: split.of(g) for g in sorted(v)} for k, v in per_range.items()}
        description = {"column": opts.split_by, **split.describe()}
    survey = _Survey(files, range_splits, description, build_image_index(ctx.source_dir, _derived_dir(ctx)))
    _SURVEYS[key] = survey
    return survey


# ------------------------------------------------------------------------------------- protocol


def features(config: str, ctx: RecipeContext) -> Features:
    """Return the VQA schema (``schemas.vqa_features``) with this dataset's extras after it."""
    check_config(DATASET_ID, CONFIGS, config)
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


def plan(config: str, ctx: RecipeContext) -> Plan:
    """Return the byte-range units of the config's file (one unit from the start under ``--limit``)."""
    check_config(DATASET_ID, CONFIGS, config)
    survey = _survey(ctx)
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


def convert_unit(unit: M3Unit) -> Iterator[Row | SampleError]:
    """Yield a row per question-answer pair of the unit's records; bad records and missing images are ``SampleError``s."""
    if unit.errors:
        yield from unit.errors
        return
    reader = ImageReader(unit.source_dir, unit.index) if unit.index is not None else None
    try:
        yield from _convert(unit, reader)
    finally:
        if reader is not None:
            reader.close()


def _convert(unit: M3Unit, reader: ImageReader | None) -> Iterator[Row | SampleError]:
    rows = 0
    drafts_of = internvl_drafts if unit.form == "internvl" else pipeline_drafts
    for item in _records(unit):
        if unit.max_rows is not None and rows >= unit.max_rows:
            return
        if isinstance(item, SampleError):
            yield item
            continue
        number, record = item
        where = _position(unit.kind, unit.rel, number)
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
                images = [_load(name, reader, unit, where) for name in draft.images]
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


def _load(name: str, reader: ImageReader | None, unit: M3Unit, where: str) -> dict[str, Any]:
    try:
        encoded = reader.read(name, unit.image) if reader is not None else None
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


def card_notes(ctx: RecipeContext) -> list[str]:
    """Record the files and record forms read, the licences, the answer-type rule, bbox sizing and the split."""
    survey = _survey(ctx)
    notes = []
    for config in CONFIGS:
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
        + (f" and the members of {len(survey.images.zip_parts)} zip file(s) (read in place, never extracted)" if survey.images.zip_parts else "")
        + ".",
    ]
    if survey.split_description:
        notes.append(f"Split: seeded, grouped by article over all configs (rows without an article id are train): {survey.split_description}.")
    else:
        notes.append("Split: upstream has none; every row is train. `--split-by article_id` gives a seeded split grouped by article.")
    return notes
