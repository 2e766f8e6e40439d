"""Find and read the elements of a top-level JSON array without loading the file.

Instruction sets built from PMC (PubMedVision, M3LLM-PMC) ship one JSON array of 10^5-10^6
records in files of several hundred MB. ``json.load`` would hold the whole file and every parsed
record at once. This module instead makes one streaming pass over the bytes (a small state machine:
strings with escapes, nesting depth, whitespace) that records where each top-level element starts
and ends, and groups consecutive elements into :class:`ElementRange` runs of about ``target_bytes``:
the work units of a recipe. A worker then reads one range with :func:`read_elements` and parses its
elements one by one. Memory depends on ``target_bytes`` and the largest element, never on the file
size.

The scan is fast because it never loops over bytes in Python: compiled regular expressions
consume whole strings (escapes included); between elements Python sees brackets, commas and bare
literals, and inside an element only brackets.

Error policy (documented contract):

- A file that is not one well-formed top-level array *structurally* (unbalanced or mismatched
  brackets, an unterminated string, a missing or doubled comma, text after the closing bracket,
  truncation) raises :class:`JsonArrayError` from :func:`element_ranges`, naming the file and the
  byte offset. Element boundaries cannot be trusted past such a point, so this is fatal to the
  file.
- An element whose brackets balance but whose content is not valid JSON (``{"a": tru}``, a bad
  escape, invalid UTF-8) is one broken item: :func:`read_elements` *yields*
  ``(index, MalformedElementError)`` in its place and goes on with the next element. The error is a
  :class:`~medcat_data.errors.SampleError` naming the file, the 0-based element index and its byte
  offset, ready for ``errors.jsonl``. A parsed JSON value is never an exception instance, so
  callers test ``isinstance(value, MalformedElementError)``.

This module only reads local files; it knows nothing of any dataset.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from medcat_data.errors import ConvertError, SampleError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_TARGET_BYTES",
    "ElementRange",
    "JsonArrayError",
    "MalformedElementError",
    "element_ranges",
    "read_elements",
]

#: Default size of one run of elements (a work unit): large enough that per-unit costs vanish,
#: small enough that a worker holds only a few MB of raw JSON at a time.
DEFAULT_TARGET_BYTES = 8 * 1024 * 1024

_CHUNK_BYTES = 8 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"

# One token: a whole string (group 1 is the closing quote; None when the buffer ends inside the
# string), an opening/closing bracket, a comma, or a run of other non-space bytes (numbers,
# true/false/null, or garbage). Colons and whitespace are skipped by the regex engine itself.
_TOKEN = re.compile(rb'"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+(")?|[\[\]{},]|[^\s"\[\]{},:]++')
# Inside an element (depth >= 2): everything up to the next bracket, whole strings included; stops
# at a bracket, at the opening quote of a string the buffer cuts, or at the buffer's end.
_INNER = re.compile(rb'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+")*+')
_QUOTE, _LBRACK, _RBRACK, _LBRACE, _RBRACE, _COMMA = b'"[]{},'
_CLOSER = {_RBRACK: _LBRACK, _RBRACE: _LBRACE}


class JsonArrayError(ConvertError, ValueError):
    """A file is not one well-formed top-level JSON array; names the file and the byte offset."""

    def __init__(self, path: str | Path, offset: int, reason: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        super().__init__(
            f"{self.path}: not a well-formed JSON array at byte {offset}: {reason}. The file is "
            "probably truncated or corrupt: fetch it again (`medcat fetch` re-verifies it)."
        )


class MalformedElementError(SampleError):
    """One element of the array is not valid JSON (its brackets balance); one broken item."""

    def __init__(self, path: str | Path, index: int, offset: int, reason: str) -> None:
        self.index = index
        self.offset = offset
        super().__init__(path, "parse", f"element {index} (byte {offset}) is not valid JSON: {reason}")


@dataclass(frozen=True)
class ElementRange:
    """A run of ``count`` consecutive whole elements of a top-level JSON array.

    ``start`` is the byte offset of the first element's first byte, ``end`` one past the last
    element's last byte (the bytes between hold elements, commas and whitespace only);
    ``first_index`` is the 0-based index of the first element in the array.
    """

    start: int
    end: int
    first_index: int
    count: int

    @property
    def size_bytes(self) -> int:
        return self.end - self.start


class _Scanner:
    """The state machine: feed it buffers, it yields ``(start, end)`` byte spans of depth-1 elements.

    ``inside=True`` starts inside the array (depth 1), as when rescanning one range.
    """

    def __init__(self, path: str | Path, *, inside: bool = False) -> None:
        self.path = path
        self.stack: list[int] = [_LBRACK] if inside else []
        self.opened = inside
        self.closed = False
        self.count = 0
        self.elem_start = -1  # absolute offset of the current element's first byte, -1 if none yet
        self.elem_end = -1  # absolute offset one past the current element's last byte so far

    def _fail(self, offset: int, reason: str) -> JsonArrayError:
        return JsonArrayError(self.path, offset, reason)

    def feed(self, buf: bytes, base: int, final: bool) -> tuple[list[tuple[int, int]], int]:
        """Scan ``buf`` (absolute offset ``base``); return complete spans and how many bytes were used.

        Bytes not used (a string or literal cut by the buffer's end) must be fed again, prefixed
        to the next buffer. With ``final`` nothing may be left over.
        """
        spans: list[tuple[int, int]] = []
        stack = self.stack
        n = len(buf)
        pos = 0
        while pos < n:
            if len(stack) >= 2:
                # Inside an element only brackets matter: the regex engine skips strings,
                # literals, commas and colons; Python sees one bracket at a time.
                pos = _INNER.match(buf, pos).end()  # type: ignore[union-attr]  # matches empty at worst
                if pos >= n:
                    break
                tok = buf[pos]
                if tok == _QUOTE:  # a string the skip could not close: cut by the buffer's end
                    if not final:
                        return spans, pos
                    raise self._fail(base + pos, "unterminated string")
                if tok == _LBRACK or tok == _LBRACE:
                    stack.append(tok)
                else:
                    if stack[-1] != _CLOSER[tok]:
                        raise self._fail(base + pos, f"unbalanced {chr(tok)!r}")
                    stack.pop()
                    if len(stack) == 1:
                        self.elem_end = base + pos + 1
                pos += 1
                continue
            m = _TOKEN.search(buf, pos)
            if m is None:
                break
            pos = m.end()
            tok = buf[m.start()]
            depth = len(stack)
            if tok == _QUOTE or tok not in b"[]{},":
                if tok == _QUOTE and m.group(1) is None:
                    # The regex stops short of a closing quote only at the buffer's end (or on a
                    # backslash that is its last byte): the string goes on in the next buffer.
                    if not final:
                        return spans, m.start()
                    raise self._fail(base + m.start(), "unterminated string")
                if not final and m.end() == n and tok != _QUOTE:
                    return spans, m.start()  # a literal cut by the buffer's end
                if depth == 1:
                    self._content(base + m.start(), base + m.end())
                else:
                    raise self._fail(base + m.start(), "expected '[' at the top level" if not self.closed else "text after the closing ']'")
            elif tok == _COMMA:
                if depth == 1:
                    spans.append(self._end_element(base + m.start(), "','"))
                else:
                    raise self._fail(base + m.start(), "',' outside the array")
            elif tok == _LBRACK or tok == _LBRACE:
                if depth == 0:
                    if self.closed or tok == _LBRACE:
                        raise self._fail(base + m.start(), "text after the closing ']'" if self.closed else "the top level is an object, not an array")
                    self.opened = True
                else:
                    self._content(base + m.start(), -1)
                stack.append(tok)
            else:
                if depth == 0 or stack[-1] != _CLOSER[tok]:
                    raise self._fail(base + m.start(), f"unbalanced {chr(tok)!r}")
                stack.pop()
                if self.elem_start >= 0 or self.count:
                    spans.append(self._end_element(base + m.start(), "']'"))
                self.closed = True
        return spans, n

    def _content(self, start: int, end: int) -> None:
        if self.elem_start >= 0:
            raise self._fail(start, "missing ',' between two elements")
        self.elem_start = start
        self.elem_end = end

    def _end_element(self, offset: int, delimiter: str) -> tuple[int, int]:
        if self.elem_start < 0:
            raise self._fail(offset, f"empty element before {delimiter} (doubled or trailing comma)")
        span = (self.elem_start, self.elem_end)
        self.elem_start = self.elem_end = -1
        self.count += 1
        return span

    def finish(self, end_offset: int, *, inside: bool = False) -> list[tuple[int, int]]:
        """Check the end of input; in ``inside`` mode close the last element of a range."""
        if inside:
            if len(self.stack) != 1:
                raise self._fail(end_offset, "the range ends inside an element")
            return [self._end_element(end_offset, "the range end")] if self.elem_start >= 0 else []
        if not self.opened:
            raise self._fail(end_offset, "no '[' found: the file is empty or not a JSON array")
        if not self.closed:
            raise self._fail(end_offset, "the file ends before the array's closing ']' (truncated?)")
        return []


def _iter_spans(f: BinaryIO, path: str | Path) -> Iterator[tuple[int, int]]:
    """Yield the byte spans of the top-level elements of the array read from ``f``, in chunks."""
    scanner = _Scanner(path)
    base = 0
    carry = b""
    chunk = f.read(_CHUNK_BYTES)
    if chunk.startswith(_BOM):
        chunk = chunk[len(_BOM):]
        base = len(_BOM)
    while True:
        final = not chunk
        buf = carry + chunk if carry else chunk
        spans, used = scanner.feed(buf, base, final)
        yield from spans
        if final:
            break
        carry = buf[used:]
        base += used
        chunk = f.read(_CHUNK_BYTES)
    yield from scanner.finish(base + len(carry))


def element_ranges(path: str | Path, target_bytes: int = DEFAULT_TARGET_BYTES) -> list[ElementRange]:
    """Scan ``path`` once and return consecutive runs of whole elements of about ``target_bytes``.

    A run closes as soon as it spans at least ``target_bytes`` (so one huge element is a run of
    its own); an empty array gives no run. Memory is one read chunk plus the list of runs.

    Raises:
        JsonArrayError: the file is not one well-formed top-level JSON array (file, byte offset).
        FileNotFoundError: ``path`` does not exist.
    """
    if target_bytes < 1:
        raise ValueError(f"target_bytes must be positive, got {target_bytes}")
    ranges: list[ElementRange] = []
    run_start = -1
    run_first = 0
    run_count = 0
    index = 0
    end = 0
    with open(path, "rb") as f:
        for start, end in _iter_spans(f, path):
            if run_start < 0:
                run_start, run_first, run_count = start, index, 0
            run_count += 1
            index += 1
            if end - run_start >= target_bytes:
                ranges.append(ElementRange(run_start, end, run_first, run_count))
                run_start = -1
        if run_start >= 0:
            ranges.append(ElementRange(run_start, end, run_first, run_count))
    log.debug("%s: %d elements in %d ranges", path, index, len(ranges))
    return ranges


def read_elements(path: str | Path, rng: ElementRange, *, name: str | None = None) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, element)`` for each element of ``rng``, parsed one at a time.

    A malformed element yields ``(index, MalformedElementError)`` instead (see the module
    docstring); ``name`` is the file name shown in errors (default ``str(path)``). Only the bytes
    of ``rng`` are read, at once: memory is about ``rng.size_bytes`` plus one parsed element.

    Raises:
        JsonArrayError: the bytes of ``rng`` no longer hold ``rng.count`` whole elements (the
            file changed since it was scanned).
    """
    shown = name if name is not None else str(path)
    with open(path, "rb") as f:
        f.seek(rng.start)
        buf = f.read(rng.size_bytes)
    scanner = _Scanner(shown, inside=True)
    if len(buf) == rng.size_bytes:
        spans, _ = scanner.feed(buf, rng.start, True)
        spans += scanner.finish(rng.end, inside=True)
    else:
        spans = []
    if len(spans) != rng.count:
        raise JsonArrayError(
            shown, rng.start,
            f"expected {rng.count} elements in bytes {rng.start}..{rng.end}, found {len(spans)}; "
            "the file changed since it was scanned",
        )
    for k, (start, end) in enumerate(spans):
        index = rng.first_index + k
        try:
            value: Any = json.loads(buf[start - rng.start:end - rng.start])
        except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
            offset = start + err.pos if isinstance(err, json.JSONDecodeError) else start
            value = MalformedElementError(shown, index, offset, str(err))
        yield index, value
