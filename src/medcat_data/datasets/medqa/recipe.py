"""MedQA: JSON Lines exam questions -> text-qa (seven configs); English textbooks -> one row per paragraph.

Question configs (fact sheet §1), read from JSONL files under the folder ``questions/`` wherever
the zip put it (``data_clean/questions``, or ``data_clean/data_clean/questions`` after a double
extraction: the folder is searched for, shallowest first):

===================== ========================================================= =======
config                files under ``questions/`` (``<s>`` = train, dev, test)   options
===================== ========================================================= =======
``us``                ``US/<s>.jsonl``                                          A-E
``us-4options``       ``US/4_options/phrases_no_exclude_<s>.jsonl`` (+ MetaMap) A-D
``mainland``          ``Mainland/<s>.jsonl``                                    A-E
``mainland-4options`` ``Mainland/4_options/<s>.jsonl``                          A-D
``taiwan``            ``Taiwan/<s>.jsonl``                                      A-D
``taiwan-en``         ``Taiwan/tw_translated_jsonl/en/<s>-2en.jsonl``           A-D
``taiwan-zh``         ``Taiwan/tw_translated_jsonl/zh/<s>-2zh.jsonl``           A-D
===================== ========================================================= =======

Splits come from the registry's ``upstream_splits`` (upstream ``dev`` is our ``validation``). The ``*_qbank.jsonl`` files (the union of the splits)
are not converted. Each line is parsed as a JSON object (key order differs between regions, so
never by position). Columns: ``question``; ``options`` as a list of ``{key, text}`` in the
object's order; ``answer_idx`` the 0-based position of the upstream letter in that list;
``answer`` the text of that option; ``explanation`` and ``subject`` null (MedQA has neither);
``meta_info`` verbatim (US ``step1`` / ``step2&3``, Mainland chapter names, Taiwan
``taiwanese_test_Q``); ``region`` (``US``, ``Mainland``, ``Taiwan``) and ``language`` (BCP 47:
``en``, ``zh-Hans``, ``zh-Hant``); ``upstream_answer`` holds upstream's ``answer`` only when it
differs from the option's text (null otherwise), so no disagreement is hidden; ``us-4options``
adds ``metamap_phrases``. ``sample_id`` is ``<config>/<upstream split>/<line>``.

A line that is not valid JSON, not an object, lacks ``question``/``options``/``answer_idx``, or
whose ``answer_idx`` is no option key is a ``SampleError`` naming file and line; the run goes on.

``textbooks-en`` (tabular): one row per paragraph of ``textbooks/en/*.txt``. A paragraph is a
run of non-blank lines; one or more blank (or whitespace-only) lines separate paragraphs (the split
third-party users of the corpus apply; upstream does not define one). Its lines are kept
verbatim, joined with ``\\n``, trailing whitespace of each line removed. Columns: ``book`` (file
stem, upstream spelling such as ``Obstentrics_Williams``), ``paragraph_index`` (0-based within the
book), ``line`` (1-based line of the paragraph's first line), ``text``. A paragraph with bytes
that are not UTF-8 is a ``SampleError`` (book and line). ``sample_id`` is ``<book>/<index>``.
One ``train`` split: upstream has none. The Chinese textbooks are not converted.

Files are streamed line by line; memory holds one line (one paragraph for textbooks). A work
unit is a span of ``UNIT_LINES`` lines (``UNIT_PARAGRAPHS`` paragraphs) of one file, found by a
plain scan while planning, so no unit holds a whole 22 MB book. ``--limit N`` keeps the first N
non-blank lines of each question file and the first N paragraphs of each book.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.line_spans import WHOLE_FILE, Span, line_spans, paragraph_spans, span_lines
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import tabular_features, text_qa_features
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError

log = logging.getLogger(__name__)

__all__ = [
    "QA_CONFIGS",
    "RECIPE",
    "MedQA",
    "QaFile",
    "QaUnit",
    "Span",
    "Survey",
    "TextbookUnit",
    "find_folder",
    "iter_paragraphs",
    "line_spans",
    "paragraph_spans",
    "parse_question",
    "span_lines",
]

DATASET_ID = "medqa"
TEXTBOOKS_CONFIG = "textbooks-en"


@dataclass(frozen=True)
class QaFile:
    """Where one question config's files are and what their rows say about themselves."""

    pattern: str
    """Path under ``questions/`` with ``{split}`` for the upstream split name."""
    region: str
    language: str


QA_CONFIGS: Mapping[str, QaFile] = {
    "us": QaFile("US/{split}.jsonl", "US", "en"),
    "us-4options": QaFile("US/4_options/phrases_no_exclude_{split}.jsonl", "US", "en"),
    "mainland": QaFile("Mainland/{split}.jsonl", "Mainland", "zh-Hans"),
    "mainland-4options": QaFile("Mainland/4_options/{split}.jsonl", "Mainland", "zh-Hans"),
    "taiwan": QaFile("Taiwan/{split}.jsonl", "Taiwan", "zh-Hant"),
    "taiwan-en": QaFile("Taiwan/tw_translated_jsonl/en/{split}-2en.jsonl", "Taiwan", "en"),
    "taiwan-zh": QaFile("Taiwan/tw_translated_jsonl/zh/{split}-2zh.jsonl", "Taiwan", "zh-Hans"),
}
COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "meta_info": "Upstream's meta_info, verbatim: US step1 / step2&3, Mainland chapter names, Taiwan taiwanese_test_Q.",
    "region": "Exam region: US, Mainland or Taiwan.",
    "language": "Language of the question (BCP 47): en, zh-Hans or zh-Hant.",
    "upstream_answer": "Upstream's answer field when it differs from the text of the option answer_idx names; null otherwise.",
    "metamap_phrases": "Phrases MetaMap extracted from the question (4-option US files only), verbatim.",
    "book": "Textbook file name without .txt, upstream spelling (e.g. Obstentrics_Williams).",
    "paragraph_index": "0-based position of the paragraph in its book.",
    "line": "1-based line of the book file where the paragraph starts.",
    "text": "The paragraph: its lines joined with a newline, trailing whitespace removed.",
    "options.text": "Option text.",  # the dotted name wins over "text" above, which is the textbook column
}
"""Descriptions of this recipe's own columns, for the catalog pages."""
METAMAP_CONFIGS = frozenset({"us-4options"})
_REGIONS = ("US", "Mainland", "Taiwan")


UNIT_LINES = 2000
"""Non-blank JSONL lines per work unit (a few MB of questions)."""
UNIT_PARAGRAPHS = 2000
"""Paragraphs per work unit (InternalMed_Harrison alone is ~22 MB: split, so no unit holds a whole book)."""




@dataclass(frozen=True)
class QaUnit:
    """A span of one JSONL file of one question config."""

    config: str
    path: Path
    rel: str
    upstream_split: str
    split: str
    source_tag: str
    span: Span = WHOLE_FILE

    @property
    def name(self) -> str:
        return f"{self.config}/{self.upstream_split}@{self.span.first_line}"


@dataclass(frozen=True)
class TextbookUnit:
    """A span of one English textbook file."""

    config: str
    path: Path
    rel: str
    source_tag: str
    span: Span = WHOLE_FILE

    @property
    def name(self) -> str:
        return f"{self.config}/{self.path.stem}@{self.span.first_line}"


# ------------------------------------------------------------------------------------- finding


def find_folder(ctx: RecipeContext, name: str, children: tuple[str, ...]) -> Path | None:
    """Return the shallowest folder called ``name`` under the source folder holding one of ``children``.

    The zip's top folder (and a doubled ``data_clean/data_clean``) is not fixed, so the folder is
    searched for rather than assumed at a depth; the cache's ``.medcat`` folder is skipped.
    """
    found: list[Path] = []
    for dirpath, dirnames, _ in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if d != ".medcat")
        if name in dirnames and any((Path(dirpath) / name / c).is_dir() for c in children):
            found.append(Path(dirpath) / name)
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


@dataclass(frozen=True)
class Survey:
    """Where the zip put ``questions/`` (with a region folder) and ``textbooks/`` (with ``en/``), if anywhere."""

    questions: Path | None
    textbooks: Path | None


# ------------------------------------------------------------------------------------- recipe


class MedQA(Recipe[Survey, "QaUnit | TextbookUnit"]):
    """MedQA's question files and English textbooks (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = (*QA_CONFIGS, TEXTBOOKS_CONFIG)
    COLUMN_DESCRIPTIONS = COLUMN_DESCRIPTIONS

    def survey(self, ctx: RecipeContext) -> Survey:
        """Find the ``questions/`` and ``textbooks/`` folders wherever the zip was extracted."""
        return Survey(find_folder(ctx, "questions", _REGIONS), find_folder(ctx, "textbooks", ("en",)))

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return text-qa with ``meta_info``/``region``/``language``/``upstream_answer``, or the textbook table."""
        self.check_config(config)
        if config == TEXTBOOKS_CONFIG:
            return tabular_features(
                {"book": Value("string"), "paragraph_index": Value("int32"), "line": Value("int32"), "text": Value("string")}
            )
        extras: dict[str, Any] = {
            "meta_info": Value("string"),
            "region": Value("string"),
            "language": Value("string"),
            "upstream_answer": Value("string"),
        }
        if config in METAMAP_CONFIGS:
            extras["metamap_phrases"] = List(Value("string"))
        return text_qa_features(extras)

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[QaUnit | TextbookUnit]:
        """Return the units of a config: spans of its files in the registry's split order (books by name).

        Planning reads each file once without parsing it, to cut it at line (paragraph) boundaries
        and to stop at ``--limit``.

        Raises:
            UsageError: none of the config's files was fetched.
        """
        self.check_config(config)
        if config == TEXTBOOKS_CONFIG:
            return Plan(_plan_textbooks(config, ctx, survey.textbooks))
        return Plan(_plan_questions(config, ctx, survey.questions))

    def convert_unit(self, unit: QaUnit | TextbookUnit) -> Iterator[Row | SampleError]:
        """Yield the rows of one file; a bad line (paragraph) is a ``SampleError`` and the file goes on."""
        if isinstance(unit, TextbookUnit):
            return _textbook_rows(unit)
        return _question_rows(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Record the conventions a user of the normalized dataset must know."""
        splits = ", ".join(f"{upstream}.jsonl -> {ours}" for upstream, ours in ctx.splits_of(next(iter(QA_CONFIGS))).items())
        return [
            f"Splits are upstream's official ones: {splits}; "
            "the *_qbank.jsonl files (all questions of a region) are not converted.",
            "answer_idx is 0-based into options (upstream's answer_idx is a letter; options keep upstream's keys and order); "
            "answer is the text of that option. upstream_answer is upstream's 'answer' field when it differs from "
            "that text, null otherwise.",
            "meta_info is upstream's verbatim (US: step1 / step2&3; Mainland: chapter names; Taiwan: taiwanese_test_Q). "
            "explanation and subject are null: MedQA has neither.",
            "textbooks-en: one row per paragraph of textbooks/en/*.txt; a paragraph is a run of non-blank lines "
            "(blank lines separate paragraphs), lines joined with a newline. One train split (upstream has none).",
        ]


def _plan_textbooks(config: str, ctx: RecipeContext, folder: Path | None) -> list[TextbookUnit]:
    books = sorted(p for p in (folder / "en").glob("*.txt") if ctx.has(p)) if folder else []
    if not books:
        raise UsageError(f"{DATASET_ID}: no textbooks/en/*.txt under {ctx.source_dir}; run `medcat fetch {DATASET_ID}`.")
    return [
        TextbookUnit(config, p, ctx.rel(p), ctx.source_tag, span)
        for p in books
        for span in paragraph_spans(p, UNIT_PARAGRAPHS, ctx.options.limit)
    ]


def _plan_questions(config: str, ctx: RecipeContext, questions: Path | None) -> list[QaUnit]:
    if questions is None:
        raise UsageError(
            f"{DATASET_ID}: no questions/ folder (with US/, Mainland/ or Taiwan/) under {ctx.source_dir}; "
            f"was data_clean.zip fetched and extracted? Run `medcat fetch {DATASET_ID}`."
        )
    spec = QA_CONFIGS[config]
    units: list[QaUnit] = []
    missing: list[str] = []
    for upstream, split in ctx.splits_of(config).items():
        path = questions / spec.pattern.format(split=upstream)
        if ctx.has(path):
            rel = ctx.rel(path)
            units += [
                QaUnit(config, path, rel, upstream, split, ctx.source_tag, span)
                for span in line_spans(path, UNIT_LINES, ctx.options.limit)
            ]
        else:
            missing.append(spec.pattern.format(split=upstream))
    if not units:
        raise UsageError(
            f"{DATASET_ID}: config {config} has none of its files under {questions}: {', '.join(missing)}. "
            f"Run `medcat fetch {DATASET_ID}`, or build the other configs with --config."
        )
    for rel in missing:
        log.warning("%s: %s has no questions/%s; its split is left out", DATASET_ID, config, rel)
    return units


def _question_rows(unit: QaUnit) -> Iterator[Row | SampleError]:
    metamap = unit.config in METAMAP_CONFIGS
    spec = QA_CONFIGS[unit.config]
    for number, raw in span_lines(unit.path, unit.span):
        if not raw.strip():
            continue
        item = f"{unit.rel}:{number}"
        try:
            values = parse_question(raw, item, metamap=metamap)
        except SampleError as err:
            yield err
            continue
        values.update(
            region=spec.region,
            language=spec.language,
            source=unit.source_tag,
            sample_id=f"{unit.config}/{unit.upstream_split}/{number}",
            split=unit.split,
        )
        yield Row(unit.config, unit.split, values)


# ------------------------------------------------------------------------------------- questions


def parse_question(raw: bytes | str, item: str, *, metamap: bool = False) -> dict[str, Any]:
    """Return the text-qa values of one upstream JSONL line.

    Raises:
        SampleError: not UTF-8 or not JSON, not an object, a missing or mistyped field, or an
            ``answer_idx`` that is no key of ``options``.
    """
    try:
        record = json.loads(raw)
    except UnicodeDecodeError as err:
        raise SampleError(item, "parse", f"the line is not UTF-8 text: {err}") from None
    except json.JSONDecodeError as err:
        raise SampleError(item, "parse", f"malformed JSON at column {err.colno}: {err.msg}") from None
    if not isinstance(record, dict):
        raise SampleError(item, "parse", f"expected a JSON object, got {type(record).__name__}")
    missing = [k for k in ("question", "options", "answer_idx") if k not in record]
    if missing:
        raise SampleError(item, "parse", f"missing key(s) {missing}; the line has {sorted(record)}")
    options = record["options"]
    if not isinstance(options, dict) or not options:
        raise SampleError(item, "parse", f"'options' must be a non-empty object of letter -> text, got {options!r:.80}")
    if any(not isinstance(v, (str, int, float)) or isinstance(v, bool) for v in options.values()):
        raise SampleError(item, "parse", "every option text must be a string")
    keys = [str(k) for k in options]
    letter = record["answer_idx"]
    if not isinstance(letter, str) or letter not in options:
        raise SampleError(item, "parse", f"answer_idx {letter!r} is not an option key ({', '.join(keys)})")
    index = keys.index(letter)
    text = str(options[letter])
    upstream = record.get("answer")
    values: dict[str, Any] = {
        "question": _text(record["question"], "question", item),
        "options": [{"key": k, "text": str(v)} for k, v in options.items()],
        "answer_idx": index,
        "answer": text,
        "explanation": None,
        "subject": None,
        "meta_info": None if record.get("meta_info") is None else str(record["meta_info"]),
        "upstream_answer": None if upstream is None or str(upstream) == text else str(upstream),
    }
    if metamap:
        phrases = record.get("metamap_phrases")
        if phrases is not None and (not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases)):
            raise SampleError(item, "parse", "'metamap_phrases' must be a list of strings")
        values["metamap_phrases"] = phrases
    return values


def _text(value: object, key: str, item: str) -> str:
    if not isinstance(value, str):
        raise SampleError(item, "parse", f"{key!r} must be a string, got {type(value).__name__}")
    return value


# ------------------------------------------------------------------------------------- textbooks


def iter_paragraphs(path: Path, span: Span = WHOLE_FILE) -> Iterator[tuple[int, bytes]]:
    """Yield ``(first line number, raw bytes)`` of each paragraph of a span, 1-based line numbers.

    A paragraph is a run of lines that are not blank; whitespace-only lines count as blank.
    Lines keep their bytes (trailing whitespace removed) so that decoding, and its failure, is
    the caller's per-paragraph decision.
    """
    lines: list[bytes] = []
    first = 0
    for number, raw in span_lines(path, span):
        line = raw.rstrip()
        if not line:
            if lines:
                yield first, b"\n".join(lines)
                lines = []
            continue
        if not lines:
            first = number
        lines.append(line)
    if lines:
        yield first, b"\n".join(lines)


def _textbook_rows(unit: TextbookUnit) -> Iterator[Row | SampleError]:
    book = unit.path.stem
    index = unit.span.first_index
    for line, data in iter_paragraphs(unit.path, unit.span):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            yield SampleError(f"{unit.rel}:{line}", "decode", f"paragraph is not UTF-8 ({err.reason} at byte {err.start})")
            index += 1
            continue
        values = {
            "book": book,
            "paragraph_index": index,
            "line": line,
            "text": text,
            "source": unit.source_tag,
            "sample_id": f"{book}/{index}",
            "split": "train",
        }
        index += 1
        yield Row(unit.config, "train", values)


RECIPE = MedQA()
