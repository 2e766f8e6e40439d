"""Cut big line-based files (JSONL, paragraph text) into byte spans that work units read by seeking.

A span starts at a line boundary and knows the 1-based number of its first line (and, for
paragraph text, how many paragraphs precede it), so line numbers and indices in rows and errors do
not depend on how a file was cut. Shared by the text QA kits (MedQA, MedMCQA).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WHOLE_FILE", "Span", "line_spans", "paragraph_spans", "span_lines"]


@dataclass(frozen=True)
class Span:
    """A byte range ``[start, stop)`` of a file beginning at a line (paragraph) boundary.

    ``first_line`` is the 1-based line number at ``start``; ``first_index`` the number of
    paragraphs before it (textbooks). Spans let a work unit read part of a big file by seeking,
    with line numbers and paragraph indices that do not depend on how the file was cut.
    """

    start: int
    stop: int
    first_line: int = 1
    first_index: int = 0


WHOLE_FILE = Span(0, 1 << 62)


def line_spans(path: Path, every: int, limit: int | None = None) -> list[Span]:
    """Cut a JSONL file into spans of ``every`` non-blank lines; stop after ``limit`` of them."""
    spans: list[Span] = []
    start, first_line, items, pos = 0, 1, 0, 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if raw.strip():
                if limit is not None and items >= limit:
                    break
                if items and items % every == 0:
                    spans.append(Span(start, pos, first_line))
                    start, first_line = pos, number
                items += 1
            pos += len(raw)
    spans.append(Span(start, pos, first_line))
    return spans


def paragraph_spans(path: Path, every: int, limit: int | None = None) -> list[Span]:
    """Cut a text file into spans of ``every`` paragraphs (see ``iter_paragraphs``); stop after ``limit``."""
    spans: list[Span] = []
    start, first_line, first_index, count, pos, inside = 0, 1, 0, 0, 0, False
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            blank = not raw.strip()
            if not blank and not inside:  # a paragraph starts on this line
                if limit is not None and count >= limit:
                    break
                if count and count % every == 0:
                    spans.append(Span(start, pos, first_line, first_index))
                    start, first_line, first_index = pos, number, count
                count += 1
            inside = not blank
            pos += len(raw)
    spans.append(Span(start, pos, first_line, first_index))
    return spans


def span_lines(path: Path, span: Span) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, raw line)`` of the lines in ``span``, numbered from ``span.first_line``."""
    with open(path, "rb") as handle:
        handle.seek(span.start)
        pos = span.start
        for number, raw in enumerate(handle, span.first_line):
            if pos >= span.stop:
                return
            pos += len(raw)
            yield number, raw
