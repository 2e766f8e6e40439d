"""Reading M3LLM-PMC annotation files: byte-range work units, the two record forms, their fields.

JSON Lines files are cut into ranges that end on a newline and JSON arrays between elements
(``converters.jsonarray``), so a worker parses its own records and nothing holds a whole file.
A record is an InternVL line (``conversations``) or a pipeline record (``qa_pairs``); each gives
``Draft``s, one per question-answer pair, before images are loaded. Reads local files only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from medcat_data.errors import SampleError

Form = Literal["internvl", "pipeline"]
Kind = Literal["jsonl", "json"]

COMPOUND_FIRST = frozenset({"bbox", "compound-image"})
ARTICLE_LICENSE_KEYS = ("article_license", "article_licence", "license", "licence")
"""Per-article licence fields looked for on a record (the v2 licensing note says records carry one;
its name is unconfirmed)."""
DETECT_RECORDS = 20

_ARTICLE = re.compile(r"^(PMC\d+)_")
_PLACEHOLDER = re.compile(r"(?:Image-\d+:\s*)?<image>\s*")
_LETTER = re.compile(r"^\W*(?:(?:correct\s+)?answer\s*(?:is)?\s*[:：]?\s*)?\(?([A-Z])(?:\W|$)", re.IGNORECASE)
_OPTION_START = re.compile(r"(?:^|(?<=[\s;]))\(?([A-H])[.):]\s*")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``[start, end)`` of a file; ``first`` is the first line (1-based) or element index (0-based)."""

    start: int
    end: int
    first: int
    count: int | None = None




# ------------------------------------------------------------------------------------- files


def file_kind(path: Path) -> Kind:
    """Tell a JSON array from JSON Lines by the first non-blank byte (``[`` means an array)."""
    with open(path, "rb") as handle:
        while chunk := handle.read(4096):
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                return "json" if stripped[:1] == b"[" else "jsonl"
    return "jsonl"


def jsonl_ranges(path: Path, target_bytes: int) -> list[ByteRange]:
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


def json_ranges(path: Path, target_bytes: int) -> list[ByteRange]:
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


def iter_records(path: Path, kind: Kind, rel: str, span: ByteRange) -> Iterator[tuple[int, Any] | SampleError]:
    """Yield ``(position, parsed record)`` of a range of either file kind, or a ``SampleError`` per bad record."""
    return iter_json(path, rel, span) if kind == "json" else iter_jsonl(path, rel, span)


def ranges_of(path: Path, kind: Kind, target_bytes: int) -> list[ByteRange]:
    """Cut a file of either kind into ranges of about ``target_bytes``."""
    return json_ranges(path, target_bytes) if kind == "json" else jsonl_ranges(path, target_bytes)


def position(kind: Kind, rel: str, number: int) -> str:
    """Name a record for messages: ``file[index]`` in a JSON array, ``file:line`` in JSON Lines."""
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
        for item in iter_records(path, kind, rel, span):
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
