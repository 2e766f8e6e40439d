"""Read a top-level JSON object ``{key: value, ...}`` one member at a time, with bounded memory.

PubMedQA's original files are single JSON objects keyed by PMID (``ori_pqaa.json`` holds 211k
members, hundreds of MB); ``json.load`` would hold all of it. This reader keeps one chunk of text
plus the member being decoded. It reads local files only and knows nothing of PubMedQA's fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = ["MalformedJson", "iter_members"]

CHUNK_CHARS = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")


class MalformedJson(Exception):
    """The file is not one JSON object of members (internal: the caller records it)."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"malformed JSON at character {offset}: {reason}")
        self.offset = offset


class _Reader:
    def __init__(self, handle: TextIO, chunk_chars: int) -> None:
        self.handle, self.chunk_chars = handle, chunk_chars
        self.buf, self.pos, self.base, self.eof = "", 0, 0, False

    def fill(self) -> None:
        chunk = self.handle.read(self.chunk_chars)
        self.eof = not chunk
        self.base += self.pos
        self.buf, self.pos = self.buf[self.pos:] + chunk, 0

    def peek(self) -> str:
        """Skip whitespace and return the next character ('' at the end of the file)."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos : self.pos + 1]
            self.fill()

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise MalformedJson(self.base + self.pos, f"expected {char!r}, found {self.peek()!r}")
        self.pos += 1

    def value(self, decoder: json.JSONDecoder) -> Any:
        """Decode one value, reading more text while the buffer ends inside it."""
        while True:
            try:
                value, end = decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self.eof:
                    raise MalformedJson(self.base + err.pos, err.msg) from None
                self.fill()
                continue
            if end == len(self.buf) and not self.eof:  # a number may go on in the next chunk
                self.fill()
                continue
            self.pos = end
            return value


def iter_members(path: Path, *, chunk_chars: int = CHUNK_CHARS) -> Iterator[tuple[str, Any]]:
    """Yield ``(key, value)`` of the top-level object of a UTF-8 JSON file, in file order.

    Raises:
        MalformedJson: the file is not a JSON object (the members before the fault were yielded).
        UnicodeDecodeError: the file is not UTF-8.
    """
    decoder = json.JSONDecoder()
    with path.open(encoding="utf-8-sig") as handle:
        reader = _Reader(handle, chunk_chars)
        reader.expect("{")
        if reader.peek() == "}":
            return
        while True:
            key = reader.value(decoder)
            if not isinstance(key, str):
                raise MalformedJson(reader.base + reader.pos, "an object key must be a string")
            reader.expect(":")
            reader.peek()
            yield key, reader.value(decoder)
            if reader.peek() == "}":
                return
            reader.expect(",")
            reader.peek()
