"""LLaVA-Med records + PMC figures -> vqa (instruction, alignment, eval-qa50) and image-text (figure captions).

Inputs (``json`` source, fact sheet §5): four JSON arrays of conversation records ``{"id", "image",
"conversations"}`` (instruct 10k, 60k, 60k with inline mentions, alignment 500k);
``llava_med_instruct_fig_captions.json``, an object keyed by domain whose
values are lists of ``{"pair_id", "fig_label", "fig_caption", "in_text_mention"}``;
``llava_med_eval_qa50_qa.jsonl`` holds the evaluation questions. Figures come from the ``figures``
companion (``pmc/``), found by the mapping of the package docstring, through an index built once
per fetch by the survey (a SQLite file under ``.medcat/derived/``: URL-list lines by ``pair_id``,
newest fetched version of each article), so units stay small whatever the URL list's size.

Rows, in upstream order (``--limit N``: the first N records of each file, as the fetch's):

* conversation configs: ``images`` = the figure (its ``path`` is upstream's ``image_file_path``),
  ``question`` / ``answer`` = the first human / gpt turn (the ``<image>`` token and its newline
  dropped from the question), ``answer_type`` null, ``options`` empty, ``answer_idx`` null;
  ``conversations`` = the upstream turns verbatim (``<image>`` kept: it already marks the figure).
* ``instruct-fig-captions``: ``image``, ``caption`` (``fig_caption``), ``inline_mentions`` (each
  mention's ``tokens``), ``figure_label``, ``domain`` (the object key).
* every figure row: ``id`` (upstream id / pair_id), ``article_id``, ``article_version``,
  ``figure_path``, ``license`` (the metadata record's ``license_code``) and ``commercial_use`` (CC BY
  or CC0). ``--option subset=commercial|noncommercial`` keeps rows of those articles only.
* ``eval-qa50`` (split ``test``): ``question`` = ``text``, ``answer`` = ``gpt4_answer``, ``images``
  empty (its pair ids are not in the URL list), ``image_name``, ``pair_id``, ``question_type``,
  ``domains`` (the true keys of ``domain``), ``caption``, ``figure_label``, ``inline_mentions``.

``sample_id`` is ``<id>#<position in the file>`` (``qa50-<question_id>`` for the eval), unique
even if upstream repeats an id. A record without a URL-list line, whose article has no metadata
record (left the Open Access subset, or not fetched), or whose figure the article does not list
or was not fetched is a ``SampleError`` naming the record file, index and ``image_file_path``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.image_index import derived_dir
from medcat_data.converters.jsonarray import ElementRange, element_ranges, read_elements
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import image_text_features, vqa_features
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError
from medcat_data.loaders.transports.pmc import PmcOptions, is_commercial
from medcat_data.loaders.transports.pmc_figures import split_figure_path

__all__ = ["DATASET_ID", "FILES", "RECIPE", "LlavaMed", "LlavaMedUnit", "Survey"]

DATASET_ID = "llava-med"
FILES: Mapping[str, str] = {
    "instruct-10k": "instruct/llava_med_instruct_10k.json",
    "instruct-60k": "instruct/llava_med_instruct_60k.json",
    "instruct-60k-inline-mention": "instruct/llava_med_instruct_60k_inline_mention.json",
    "instruct-fig-captions": "instruct/llava_med_instruct_fig_captions.json",
    "alignment": "alignment/llava_med_alignment_500k.json",
    "eval-qa50": "eval/llava_med_eval_qa50_qa.jsonl",
}
"""The record file of each config, relative to the ``json`` source folder."""

URL_LIST = "llava_med_image_urls.jsonl"
FIGURES_SOURCE = "figures"
CAPTIONS, EVAL = "instruct-fig-captions", "eval-qa50"
UNIT_JSON_BYTES = 256 * 1024
_META = re.compile(r"^(PMC\d+)\.(\d+)\.json$")
_IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class Survey:
    """The figure index (None when the URL list was not fetched) and the bucket folder."""

    index: Path | None
    pmc_dir: Path
    articles: int


@dataclass(frozen=True)
class LlavaMedUnit:
    """A run of records of one file (all of it for the captions and eval files)."""

    config: str
    path: Path
    rel: str
    elements: ElementRange | None
    stop_index: int | None
    index: Path | None
    pmc_dir: Path
    source_tag: str
    image: ImageOptions
    subset: str | None

    @property
    def name(self) -> str:
        return f"{self.config}@{self.elements.first_index if self.elements else 0}"


@dataclass
class _Figures:
    """Resolves a pair id to its figure, per the package docstring's mapping; one per unit."""

    unit: LlavaMedUnit
    db: sqlite3.Connection
    metadata: dict[str, tuple[dict[str, Any], frozenset[str]]] = field(default_factory=dict)

    def find(self, pair_id: str, item: str) -> dict[str, Any] | None:
        """Return the figure columns of a record, or None when ``subset`` leaves its article out.

        Raises:
            SampleError: no URL-list line, no metadata record, a figure unlisted or not fetched.
        """
        hit = self.db.execute("SELECT path FROM urls WHERE pair_id = ?", (pair_id,)).fetchone()
        if hit is None:
            raise SampleError(item, "read", f"{pair_id} has no line in {URL_LIST}")
        figure_path = hit[0]
        named = f"{item} {figure_path}"
        parts = split_figure_path(figure_path)
        if parts is None:
            raise SampleError(named, "parse", f"image_file_path {figure_path!r} is not PMC<id>/<file>")
        pmcid, name = parts
        row = self.db.execute("SELECT version FROM articles WHERE pmcid = ?", (pmcid,)).fetchone()
        if row is None:
            raise SampleError(named, "read", f"{pmcid} has no metadata record in pmc/metadata/: the article left the PMC Open "
                              "Access subset, or its figures were not fetched (`medcat fetch llava-med`)")
        prefix = f"{pmcid}.{row[0]}"
        meta, media = self._metadata(prefix, named)
        code = meta.get("license_code")
        licence = code if isinstance(code, str) and code else None
        commercial = is_commercial(licence) if licence else None
        if self.unit.subset is not None and bool(commercial) != (self.unit.subset == "commercial"):
            return None
        if name not in media:
            raise SampleError(named, "read", f"{prefix} does not list {name}: the figure is missing from the article")
        path = self.unit.pmc_dir / prefix / name
        if not path.is_file():
            raise SampleError(named, "read", f"pmc/{prefix}/{name} was not fetched; run `medcat fetch llava-med`")
        # md5-verified against the metadata record at fetch: the bytes are the bucket's.
        encoded = load_raster(path, self.unit.image, verified=True)
        return {
            "image": {"bytes": encoded.data, "path": figure_path},
            "article_id": pmcid,
            "article_version": int(row[0]),
            "figure_path": figure_path,
            "license": licence,
            "commercial_use": commercial,
        }

    def _metadata(self, prefix: str, item: str) -> tuple[dict[str, Any], frozenset[str]]:
        if prefix not in self.metadata:
            try:
                meta = json.loads((self.unit.pmc_dir / "metadata" / f"{prefix}.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise SampleError(item, "read", f"pmc/metadata/{prefix}.json cannot be read ({err})") from None
            urls = meta.get("media_urls") if isinstance(meta, dict) else None
            names = frozenset(
                urlsplit(u).path.rsplit("/", 1)[-1] for u in (urls if isinstance(urls, list) else []) if isinstance(u, str)
            )
            self.metadata[prefix] = (meta if isinstance(meta, dict) else {}, names)
        return self.metadata[prefix]


class LlavaMed(Recipe[Survey, LlavaMedUnit]):
    """LLaVA-Med's record files with their PMC figures (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = tuple(FILES)
    Options = PmcOptions
    COLUMN_DESCRIPTIONS = {
        "conversations": "The upstream turns verbatim ({from, value}), <image> token included.",
        "figure_path": "Upstream's image_file_path: PMC<id>/<file> inside the article's legacy package.",
        "article_version": "The version of the article whose figure was used (the newest fetched).",
        "commercial_use": "True for CC BY and CC0 articles (PMC's Commercial Use Collection).",
    }

    def survey(self, ctx: RecipeContext) -> Survey:
        """Index the URL list by pair id and the fetched metadata records by article (newest version)."""
        pmc_dir = ctx.companions.get(FIGURES_SOURCE, ctx.root / "pmc")
        urls = ctx.source_dir / URL_LIST
        if not ctx.has(urls):
            return Survey(None, pmc_dir, 0)
        newest: dict[str, int] = {}
        meta_dir = pmc_dir / "metadata"
        for entry in meta_dir.iterdir() if meta_dir.is_dir() else ():
            match = _META.match(entry.name)
            if match and ctx.has(entry):
                newest[match[1]] = max(newest.get(match[1], 0), int(match[2]))
        stat = urls.stat()
        key = hashlib.sha256(json.dumps([stat.st_size, stat.st_mtime_ns, sorted(newest.items())]).encode()).hexdigest()[:16]
        index = derived_dir(ctx.root) / f"{DATASET_ID}-figures-{key}.sqlite"
        if not index.is_file():
            _build_index(index, urls, newest)
        return Survey(index, pmc_dir, len(newest))

    def configs(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Return the configs whose record file was fetched."""
        return [c for c in self.CONFIGS if ctx.has(ctx.source_dir / FILES[c])]

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return vqa (with conversations) or image-text features, with the figure's article columns."""
        self.check_config(config)
        article = {
            "id": Value("string"),
            "article_id": Value("string"),
            "article_version": Value("int32"),
            "figure_path": Value("string"),
            "license": Value("string"),
            "commercial_use": Value("bool"),
        }
        if config == CAPTIONS:
            return image_text_features({
                "id": Value("string"), "domain": Value("string"), "article_version": Value("int32"),
                "figure_path": Value("string"), "commercial_use": Value("bool"),
            })
        if config == EVAL:
            return vqa_features({
                "id": Value("string"), "pair_id": Value("string"), "image_name": Value("string"),
                "question_type": Value("string"), "domains": List(Value("string")), "caption": Value("string"),
                "figure_label": Value("string"), "inline_mentions": List(Value("string")),
            })
        return vqa_features({**article, "conversations": List({"from": Value("string"), "value": Value("string")})})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[LlavaMedUnit]:
        """One unit per run of whole records (conversation files) or per file (captions, eval).

        Raises:
            UsageError: the record file, or (for configs with figures) the URL list, was not fetched.
            JsonArrayError: a conversation file is not one well-formed array.
        """
        self.check_config(config)
        path = ctx.source_dir / FILES[config]
        if not ctx.has(path):
            raise UsageError(f"{DATASET_ID}: {FILES[config]} was not fetched (config {config!r}); run "
                             f"`medcat fetch {DATASET_ID}` (or with --only {FILES[config]}).")
        if config != EVAL and survey.index is None:
            raise UsageError(f"{DATASET_ID}: {URL_LIST} was not fetched, so no figure can be found; run "
                             f"`medcat fetch {DATASET_ID} --only {FILES[config]}` (it fetches the list too).")
        limit = ctx.options.limit

        def unit(elements: ElementRange | None) -> LlavaMedUnit:
            return LlavaMedUnit(config, path, ctx.rel(path), elements, limit, survey.index, survey.pmc_dir, ctx.source_tag,
                                ctx.options.image, ctx.extra(PmcOptions).subset)

        if config in (CAPTIONS, EVAL):
            return Plan(units=[unit(None)])
        ranges = element_ranges(path, target_bytes=UNIT_JSON_BYTES)
        return Plan(units=[unit(r) for r in ranges if limit is None or r.first_index < limit])

    def convert_unit(self, unit: LlavaMedUnit) -> Iterator[Row | SampleError]:
        """Yield the unit's rows; a bad record or a figure that cannot be found is a ``SampleError``."""
        if unit.config == EVAL:
            yield from _eval_rows(unit)
            return
        assert unit.index is not None
        db = sqlite3.connect(f"{unit.index.as_uri()}?mode=ro", uri=True)
        try:
            figures = _Figures(unit, db)
            records = _caption_records(unit) if unit.config == CAPTIONS else _array_records(unit)
            for position, record in records:
                if unit.stop_index is not None and position >= unit.stop_index:
                    break
                item = f"{unit.rel}[{position}]"
                try:
                    if isinstance(record, SampleError):
                        raise record
                    row = _caption_row(unit, item, position, record, figures) if unit.config == CAPTIONS else \
                        _conversation_row(unit, item, position, record, figures)
                except SampleError as err:
                    yield err
                    continue
                if row is not None:
                    yield row
        finally:
            db.close()

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Say where figures come from, which split is for evaluation, and what the columns hold."""
        subset = ctx.extra(PmcOptions).subset
        return [
            f"Figures were read from {survey.articles} fetched PMC article(s): each record's pair id gives its line of "
            f"{URL_LIST} (PMC<id>/<file>), the article's newest metadata record in pmc/metadata/ gives the file "
            "PMC<id>.<v>/<file>, md5-verified at fetch. Records whose article left the Open Access subset, or whose "
            "figure the article does not list, are in errors.jsonl (record file and index named), not in the data.",
            "eval-qa50 (split test) is for evaluation only (GPT-4-scored chat answers); no training config holds its rows. "
            "Its images are not in the URL list, so its images column is empty.",
            "question/answer are the first human/gpt turns (the <image> token dropped from the question); conversations "
            "holds every upstream turn verbatim. answer_type is null, options empty, answer_idx null.",
            "license is each article's own licence (its metadata record's license_code); the records are CC BY-NC 4.0, "
            "research use only." + (f" Only the {subset} subset was kept (--option subset)." if subset else ""),
        ]


RECIPE = LlavaMed()


# ------------------------------------------------------------------------------------------- helpers


def _build_index(index: Path, urls: Path, newest: Mapping[str, int]) -> None:
    """Write the pair-id and article tables to a new SQLite file, then move it into place."""
    partial = index.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    db = sqlite3.connect(partial)
    try:
        db.execute("CREATE TABLE urls (pair_id TEXT PRIMARY KEY, path TEXT NOT NULL)")
        db.execute("CREATE TABLE articles (pmcid TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        with urls.open(encoding="utf-8") as handle:
            rows = (_url_line(line) for line in handle if line.strip())
            db.executemany("INSERT OR IGNORE INTO urls VALUES (?, ?)", (r for r in rows if r is not None))
        db.executemany("INSERT INTO articles VALUES (?, ?)", sorted(newest.items()))
        db.commit()
    finally:
        db.close()
    partial.replace(index)


def _url_line(line: str) -> tuple[str, str] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("pair_id"), str) and isinstance(value.get("image_file_path"), str):
        return value["pair_id"], value["image_file_path"]
    return None


def _array_records(unit: LlavaMedUnit) -> Iterator[tuple[int, Any]]:
    assert unit.elements is not None
    yield from read_elements(unit.path, unit.elements, name=unit.rel)


def _caption_records(unit: LlavaMedUnit) -> Iterator[tuple[int, Any]]:
    """Yield ``(position, (domain, sample))`` in file order over every domain's list."""
    try:
        data = json.loads(unit.path.read_text(encoding="utf-8"))
    except ValueError as err:
        yield 0, SampleError(unit.rel, "parse", f"not valid JSON ({err})")
        return
    if not isinstance(data, dict):
        yield 0, SampleError(unit.rel, "parse", f"expected an object keyed by domain, got {type(data).__name__}")
        return
    position = 0
    for domain, samples in data.items():
        for sample in samples if isinstance(samples, list) else [samples]:
            yield position, (domain, sample)
            position += 1


def _text(record: Mapping[str, Any], key: str, item: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value:
        raise SampleError(item, "parse", f"{key!r} must be a non-empty string, got {value!r}"[:300])
    return value


def _mentions(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    out = []
    for mention in items:
        text = mention.get("tokens") if isinstance(mention, dict) else mention
        if isinstance(text, list):
            text = " ".join(str(t) for t in text)
        if isinstance(text, str):
            out.append(text)
    return out


def _turns(value: Any, item: str) -> tuple[str, str, list[dict[str, str]]]:
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise SampleError(item, "parse", "'conversations' must be a list of {from, value} turns")
    turns = []
    for turn in value:
        who, text = turn.get("from"), turn.get("value")
        if not isinstance(who, str) or not isinstance(text, str):
            raise SampleError(item, "parse", f"a turn needs string 'from' and 'value', got {turn!r}"[:300])
        turns.append({"from": who, "value": text})
    question = next((t["value"] for t in turns if t["from"] == "human"), None)
    answer = next((t["value"] for t in turns if t["from"] == "gpt"), None)
    if question is None or answer is None:
        raise SampleError(item, "parse", "'conversations' needs a 'human' and a 'gpt' turn")
    question = "\n".join(line for line in question.replace(_IMAGE_TOKEN, "").split("\n") if line.strip()).strip()
    return question, answer, turns


def _conversation_row(unit: LlavaMedUnit, item: str, position: int, record: Any, figures: _Figures) -> Row | None:
    if not isinstance(record, dict):
        raise SampleError(item, "parse", f"a record must be a JSON object, got {type(record).__name__}")
    record_id = _text(record, "id", item)
    question, answer, turns = _turns(record.get("conversations"), item)
    figure = figures.find(record_id, item)
    if figure is None:
        return None
    image = figure.pop("image")
    values = {
        "images": [image], "question": question, "answer": answer, "answer_type": None, "options": [], "answer_idx": None,
        "source": unit.source_tag, "sample_id": f"{record_id}#{position}", "split": "train",
        "id": record_id, **figure, "conversations": turns,
    }
    return Row(unit.config, "train", values)


def _caption_row(unit: LlavaMedUnit, item: str, position: int, record: Any, figures: _Figures) -> Row | None:
    domain, sample = record
    if not isinstance(sample, dict):
        raise SampleError(item, "parse", f"a sample must be a JSON object, got {type(sample).__name__}")
    pair_id = _text(sample, "pair_id", item)
    figure = figures.find(pair_id, item)
    if figure is None:
        return None
    label, caption = sample.get("fig_label"), sample.get("fig_caption")
    values = {
        "image": figure["image"], "caption": caption if isinstance(caption, str) else None,
        "inline_mentions": _mentions(sample.get("in_text_mention")), "article_id": figure["article_id"],
        "figure_label": label if isinstance(label, str) else None, "license": figure["license"],
        "source": unit.source_tag, "sample_id": f"{pair_id}#{position}", "split": "train",
        "id": pair_id, "domain": str(domain), "article_version": figure["article_version"],
        "figure_path": figure["figure_path"], "commercial_use": figure["commercial_use"],
    }
    return Row(unit.config, "train", values)


def _eval_rows(unit: LlavaMedUnit) -> Iterator[Row | SampleError]:
    with unit.path.open(encoding="utf-8") as handle:
        position = 0
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if unit.stop_index is not None and position >= unit.stop_index:
                return
            position += 1
            item = f"{unit.rel}:{number}"
            try:
                yield _eval_row(unit, item, json.loads(line))
            except ValueError as err:
                yield SampleError(item, "parse", f"not a JSON line ({err})")
            except SampleError as err:
                yield err


def _eval_row(unit: LlavaMedUnit, item: str, record: Any) -> Row:
    if not isinstance(record, dict):
        raise SampleError(item, "parse", f"a record must be a JSON object, got {type(record).__name__}")
    question_id = record.get("question_id")
    if not isinstance(question_id, (int, str)) or isinstance(question_id, bool):
        raise SampleError(item, "parse", f"'question_id' must be a number or string, got {question_id!r}")
    domain = record.get("domain")
    optional = {k: record.get(k) if isinstance(record.get(k), str) else None for k in ("pair_id", "image", "type", "fig_caption", "fig_label")}
    values = {
        "images": [], "question": _text(record, "text", item), "answer": _text(record, "gpt4_answer", item),
        "answer_type": None, "options": [], "answer_idx": None,
        "source": unit.source_tag, "sample_id": f"qa50-{question_id}", "split": "test",
        "id": str(question_id), "pair_id": optional["pair_id"], "image_name": optional["image"],
        "question_type": optional["type"],
        "domains": sorted(k for k, v in domain.items() if v is True) if isinstance(domain, dict) else [],
        "caption": optional["fig_caption"], "figure_label": optional["fig_label"],
        "inline_mentions": _mentions(record.get("in_text_mention")),
    }
    return Row(unit.config, "test", values)
