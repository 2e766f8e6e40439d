"""BED interval files (plain, gzip or BGZF): one checking scan, then per-contig streaming cursors.

``scan_bed`` reads a BED once, checks it is sorted (each contig's lines together, starts
non-decreasing) and records where each contig starts: its first line number and a seek position
(a byte offset in plain text, a virtual offset in BGZF; plain gzip cannot seek, so its cursors
skip lines from the top). ``RegionCursor`` then answers "is this 0-based position inside an
interval?" for non-decreasing positions of one contig with one interval in memory: a sweep, not a
lookup table, so memory does not grow with the BED. Coordinates are BED's: 0-based, half-open.
This module never reads VCF.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from medcat_data.converters.codecs.tabix import is_bgzf, iter_blocks, iter_lines, open_at
from medcat_data.errors import ConvertError

__all__ = ["BedContig", "BedIndex", "RegionCursor", "TagSweep", "UnsortedInputError", "iter_intervals", "scan_bed"]

BedKind = Literal["text", "bgzf", "gzip"]
CHECKPOINT_EVERY = 2048
"""Intervals between two seek checkpoints of a contig (a range sweep reads at most this many extra)."""
_SKIP = (b"#", b"track", b"browser")


class UnsortedInputError(ConvertError):
    """A BED or VCF is not sorted by contig then position, so a one-pass sweep cannot use it."""


@dataclass(frozen=True)
class BedContig:
    """Where one contig's intervals start in a BED."""

    name: str
    line: int
    """1-based line number of the contig's first interval."""
    seek: int | None
    """Byte offset (text) or virtual offset (BGZF) of that line; None for plain gzip."""
    intervals: int
    checkpoints: tuple[tuple[int, int, int], ...] = ()
    """``(start, line, seek)`` every ``CHECKPOINT_EVERY`` intervals where no earlier interval
    reaches past ``start``: a sweep beginning at a position at or after ``start`` may seek there."""


@dataclass(frozen=True)
class BedIndex:
    """A checked BED: its kind and, per contig in file order, where the contig starts."""

    path: Path
    name: str
    """How errors name the file (a path relative to the dataset cache)."""
    kind: BedKind
    contigs: tuple[BedContig, ...]

    def contig(self, name: str) -> BedContig | None:
        return next((c for c in self.contigs if c.name == name), None)

    @property
    def by_name(self) -> Mapping[str, BedContig]:
        return {c.name: c for c in self.contigs}

    def only(self, contig: str) -> BedIndex:
        """Return this index restricted to one contig (what a work unit needs to carry)."""
        return BedIndex(self.path, self.name, self.kind, tuple(c for c in self.contigs if c.name == contig))


def _kind(path: Path) -> BedKind:
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic != b"\x1f\x8b":
        return "text"
    return "bgzf" if is_bgzf(path) else "gzip"


def _positioned_lines(path: Path, kind: BedKind, label: str) -> Iterator[tuple[int | None, bytes]]:
    """Yield ``(seek position, line)`` for every line of the file (position None for plain gzip).

    Raises:
        InputDecodeError: a plain gzip stream is truncated or corrupt (``label:line``).
        UnsupportedFormatError: a BGZF block is truncated or corrupt.
    """
    if kind == "text":
        with open(path, "rb") as handle:
            offset = 0
            for line in handle:
                yield offset, line
                offset += len(line)
    elif kind == "gzip":
        for _, line in iter_lines(path, label):
            yield None, line
    else:
        with open(path, "rb") as handle:
            carry, carry_start = b"", 0
            for coffset, data in iter_blocks(handle, name=label):
                start = 0
                while True:
                    end = data.find(b"\n", start)
                    if end < 0:
                        if start < len(data):
                            if not carry:
                                carry_start = (coffset << 16) | start
                            carry += data[start:]
                        break
                    if carry:
                        yield carry_start, carry + data[start : end + 1]
                        carry = b""
                    else:
                        yield (coffset << 16) | start, data[start : end + 1]
                    start = end + 1
            if carry:
                yield carry_start, carry


def _fields(line: bytes) -> list[bytes] | None:
    if not line.strip() or line.startswith(_SKIP):
        return None
    fields = line.rstrip(b"\r\n").split(b"\t")
    return fields if len(fields) >= 3 else line.split()


def _contig_name(chrom: bytes, name: str, number: int) -> str:
    try:
        return chrom.decode()
    except UnicodeDecodeError as err:
        raise ConvertError(f"{name}:{number}: the contig name {chrom!r} is not valid UTF-8 ({err.reason})") from None


def _interval(fields: list[bytes], name: str, number: int) -> tuple[int, int]:
    try:
        start, end = int(fields[1]), int(fields[2])
    except (IndexError, ValueError):
        raise ConvertError(f"{name}:{number}: a BED line needs chrom, start and end (integers); got {b' '.join(fields[:3])!r}") from None
    if start < 0 or end < start:
        raise ConvertError(f"{name}:{number}: BED interval [{start}, {end}) is empty-negative or reversed")
    return start, end


def scan_bed(path: Path, name: str | None = None) -> BedIndex:
    """Check a BED is sorted and record where each contig starts (one streaming pass).

    Raises:
        UnsortedInputError: a contig's lines are split apart, or starts decrease within a contig;
            the message names file and line.
        ConvertError: a line without integer start and end, or a contig name not valid UTF-8.
        InputDecodeError: a gzip stream that is truncated or corrupt (file and line).
    """
    label = name or path.name
    kind = _kind(path)
    contigs: list[BedContig] = []
    seen: set[bytes] = set()
    current: bytes | None = None
    first_line, first_seek, count, last_start, max_end = 0, None, 0, -1, -1
    checkpoints: list[tuple[int, int, int]] = []
    number = 0
    for seek, line in _positioned_lines(path, kind, label):
        number += 1
        chrom, tab, rest = line.partition(b"\t")
        parts = rest.split(b"\t", 2)
        if chrom == current and len(parts) >= 2 and parts[0].isdigit() and parts[1].strip().isdigit():
            start, end = int(parts[0]), int(parts[1])  # the common line: same contig, integer start and end
            if end < start:
                _interval([chrom, *parts], label, number)
        else:
            fields = _fields(line)
            if fields is None:
                continue
            chrom = fields[0]
            start, end = _interval(fields, label, number)
        if chrom != current:
            _contig_name(chrom, label, number)
            if current is not None:
                contigs.append(BedContig(current.decode(), first_line, first_seek, count, tuple(checkpoints)))
            checkpoints, max_end = [], -1
            if chrom in seen:
                raise UnsortedInputError(
                    f"{label}:{number}: {chrom.decode()} appears again after other contigs; the BED must keep each "
                    "contig's lines together. Sort it (`sort -k1,1 -k2,2n`) and normalize again."
                )
            seen.add(chrom)
            current, first_line, first_seek, count, last_start = chrom, number, seek, 0, -1
        if start < last_start:
            raise UnsortedInputError(
                f"{label}:{number}: start {start} comes after start {last_start} on {chrom.decode()}; the BED is not "
                "sorted. Sort it (`sort -k1,1 -k2,2n`) and normalize again."
            )
        last_start = start
        if count and count % CHECKPOINT_EVERY == 0 and seek is not None and max_end <= start:
            checkpoints.append((start, number, seek))
        max_end = max(max_end, end)
        count += 1
    if current is not None:
        contigs.append(BedContig(current.decode(), first_line, first_seek, count, tuple(checkpoints)))
    return BedIndex(path, label, kind, tuple(contigs))


def iter_intervals(index: BedIndex, contig: str, from_pos: int = 0) -> Iterator[tuple[int, int, int]]:
    """Yield ``(line number, start, end)`` of one contig's intervals, reading only that contig.

    With ``from_pos``, reading starts at the last checkpoint at or before it, so intervals ending
    at or before ``from_pos`` may be skipped (never one that holds ``from_pos`` or later).
    """
    entry = index.contig(contig)
    if entry is None:
        return
    number, seek = entry.line, entry.seek or 0
    for start, line_number, position in entry.checkpoints:
        if start > from_pos:
            break
        number, seek = line_number, position
    with ExitStack() as stack:
        stream: Iterable[bytes]
        if index.kind == "text":
            handle = stack.enter_context(open(index.path, "rb"))
            handle.seek(seek)
            stream = handle
        elif index.kind == "bgzf":
            stream = stack.enter_context(open_at(index.path, seek))
        else:  # plain gzip cannot seek: skip lines from the top; damage names file and line
            stream = (line for n, line in iter_lines(index.path, index.name) if n >= entry.line)
        wanted = contig.encode()
        for line in stream:
            chrom, tab, rest = line.partition(b"\t")
            if chrom == wanted and tab:
                # the scan checked every line: the fast path only splits and converts
                parts = rest.split(b"\t", 2)
                yield number, int(parts[0]), int(parts[1])
            else:
                fields = _fields(line)
                if fields is not None:
                    if fields[0] != wanted:
                        return
                    start, end = _interval(fields, index.name, number)
                    yield number, start, end
            number += 1


class RegionCursor:
    """Answer membership of non-decreasing 0-based positions in one contig of a checked BED."""

    def __init__(self, index: BedIndex, contig: str, from_pos: int = 0) -> None:
        self._intervals = iter_intervals(index, contig, from_pos)
        self._head = self._next()

    def _next(self) -> tuple[int, int] | None:
        item = next(self._intervals, None)
        return None if item is None else (item[1], item[2])

    def contains(self, pos0: int) -> bool:
        """Return whether ``pos0`` lies in an interval; positions must not decrease between calls."""
        head = self._head
        while head is not None and head[1] <= pos0:
            head = self._head = self._next()
        return head is not None and head[0] <= pos0

    def close(self) -> None:
        """Release the file (also done when the cursor is garbage-collected)."""
        close = getattr(self._intervals, "close", None)
        if close is not None:
            close()


class TagSweep:
    """The names of the BEDs holding each position of a non-decreasing sweep over one contig.

    Each BED's answer holds until its next boundary (its head interval's end when inside, its
    start when outside; later intervals start no earlier than the head). A heap of those
    boundaries means a position that crosses none costs one comparison, and the answer list is
    rebuilt only when some BED's answer changes (the same list is returned meanwhile: do not
    mutate it). Memory: one interval per BED.
    """

    def __init__(self, beds: Sequence[tuple[str, BedIndex]], contig: str, from_pos: int = 0) -> None:
        self._names = [name for name, _ in beds]
        self._iters = [iter_intervals(index, contig, from_pos) for _, index in beds]
        self._heads: list[tuple[int, int] | None] = [self._pull(i) for i in range(len(self._iters))]
        self._inside = [False] * len(beds)
        self._heap = [(head[0], i) for i, head in enumerate(self._heads) if head is not None]
        heapq.heapify(self._heap)
        self._current: list[str] = []

    def _pull(self, i: int) -> tuple[int, int] | None:
        item = next(self._iters[i], None)
        return None if item is None else (item[1], item[2])

    def tags(self, pos0: int) -> list[str]:
        """Return the names of the BEDs with an interval holding ``pos0`` (0-based), in BED order."""
        heap = self._heap
        if not heap or heap[0][0] > pos0:
            return self._current
        changed = False
        heads, inside = self._heads, self._inside
        while heap and heap[0][0] <= pos0:
            _, i = heapq.heappop(heap)
            head = heads[i]
            while head is not None and head[1] <= pos0:
                head = heads[i] = self._pull(i)
            now = head is not None and head[0] <= pos0
            if head is not None:
                heapq.heappush(heap, (head[1] if now else head[0], i))
            if now != inside[i]:
                inside[i], changed = now, True
        if changed:
            self._current = [name for name, flag in zip(self._names, inside) if flag]
        return self._current

    def close(self) -> None:
        """Release the files."""
        for intervals in self._iters:
            close = getattr(intervals, "close", None)
            if close is not None:
                close()
