"""BGZF (blocked gzip) and tabix ``.tbi`` indexes in pure Python: read, seek, and write.

BGZF is a series of gzip members, each holding at most 64 KiB of data and carrying a ``BC``
extra subfield with the member's compressed size, ended by a fixed empty member. A *virtual
offset* ``(coffset << 16) | uoffset`` names a byte of the decompressed stream: the file offset
of its block and the offset inside that block. A tabix index (itself BGZF-compressed) lists, per
contig, bins of chunks of virtual offsets plus a linear index of 16 kbp windows; with it a
reader seeks straight to a contig or a region without decompressing what lies before.

No pysam/htslib: the reader needs only the contig table, the chunk starts and the linear index,
and the writer exists for synthetic replicas and benchmarks. This module knows formats only: it
never interprets VCF or BED records.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from medcat_data.errors import InputDecodeError, UnsupportedFormatError

__all__ = [
    "BGZF_EOF",
    "BLOCK_DATA",
    "BgzfWriter",
    "ContigIndex",
    "TabixIndex",
    "TabixWriter",
    "is_bgzf",
    "iter_blocks",
    "iter_lines",
    "lines_before",
    "open_at",
    "read_tbi",
    "reg2bin",
]

BLOCK_DATA = 0xFF00
"""Bytes of data per block, as bgzip writes them: compressed, a block always fits in 64 KiB."""

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
"""The empty block that ends every BGZF file (SAM/BAM specification §4.1.2)."""

_HEADER = struct.Struct("<4BI2BH")  # ID1 ID2 CM FLG MTIME XFL OS XLEN
_PSEUDO_BIN = 37450
"""Tabix's pseudo-bin holding per-contig offsets and counts (not a genomic bin)."""
_LINEAR_SHIFT = 14
"""Linear-index windows are 16 kbp (2**14)."""


def is_bgzf(path: Path) -> bool:
    """Return whether ``path`` starts with a BGZF block header (gzip with a ``BC`` extra field)."""
    with open(path, "rb") as handle:
        head = handle.read(18)
    return len(head) == 18 and head[:4] == b"\x1f\x8b\x08\x04" and head[12:14] == b"BC"


def iter_blocks(handle: BinaryIO, start: int = 0, name: str = "") -> Iterator[tuple[int, bytes]]:
    """Yield ``(file offset, decompressed data)`` of each BGZF block from ``start`` on.

    Raises:
        UnsupportedFormatError: a member is not a BGZF block (plain gzip), is truncated, or its
            data is corrupt (does not inflate, or fails its CRC).
    """
    handle.seek(start)
    offset = start
    while True:
        head = handle.read(_HEADER.size)
        if not head:
            return
        if len(head) < _HEADER.size:
            raise UnsupportedFormatError(f"{name}: truncated BGZF block header at byte {offset}")
        id1, id2, cm, flg, _, _, _, xlen = _HEADER.unpack(head)
        if (id1, id2, cm) != (31, 139, 8) or not flg & 4:
            raise UnsupportedFormatError(
                f"{name}: byte {offset} does not start a BGZF block (plain gzip?); recompress it with `bgzip`"
            )
        extra = handle.read(xlen)
        bsize = _block_size(extra)
        if bsize is None:
            raise UnsupportedFormatError(f"{name}: gzip member at byte {offset} has no BC field; recompress it with `bgzip`")
        rest = handle.read(bsize + 1 - _HEADER.size - xlen)
        if len(rest) != bsize + 1 - _HEADER.size - xlen:
            raise UnsupportedFormatError(f"{name}: truncated BGZF block at byte {offset}")
        try:
            data = zlib.decompress(rest[:-8], -15)
        except zlib.error as err:
            raise UnsupportedFormatError(f"{name}: corrupt BGZF block at byte {offset} ({err}); fetch the file again") from err
        if zlib.crc32(data) != struct.unpack_from("<I", rest, len(rest) - 8)[0]:
            raise UnsupportedFormatError(f"{name}: BGZF block at byte {offset} fails its CRC check; fetch the file again")
        yield offset, data
        offset += bsize + 1


def iter_lines(path: Path, name: str | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)`` of a plain, gzip or BGZF file, 1-based, line ends kept.

    Gzip is recognised by its magic bytes, not its name. A stream that ends early or whose data
    is corrupt stops the iteration with an error naming the file and the line it stopped at (the
    lines before it have been yielded); ``gzip`` alone would raise a bare ``EOFError``.

    Raises:
        InputDecodeError: the gzip stream is truncated or corrupt (``name``, default the file name).
    """
    shown = name if name is not None else path.name
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    number = 0
    with gzip.open(path, "rb") if gzipped else open(path, "rb") as stream:
        try:
            for line in stream:
                number += 1
                yield number, line
        except EOFError:
            raise InputDecodeError(shown, "the gzip stream ends early: the file is truncated", number + 1) from None
        except (gzip.BadGzipFile, zlib.error) as err:
            raise InputDecodeError(shown, f"corrupt gzip data ({err})", number + 1) from None


def _block_size(extra: bytes) -> int | None:
    pos = 0
    while pos + 4 <= len(extra):
        si1, si2, slen = extra[pos], extra[pos + 1], struct.unpack_from("<H", extra, pos + 2)[0]
        if si1 == 66 and si2 == 67 and slen == 2:
            return int(struct.unpack_from("<H", extra, pos + 4)[0])
        pos += 4 + slen
    return None


@contextmanager
def open_at(path: Path, voffset: int = 0) -> Iterator[io.BufferedReader]:
    """Open a BGZF file as a decompressed stream positioned at virtual offset ``voffset``.

    The stream continues across block boundaries to the end of the file (``gzip`` reads
    concatenated members), so memory stays at one block whatever is read. The outer buffer makes
    line iteration run in C (``GzipFile.readline`` is a Python call per line).
    """
    with open(path, "rb") as raw:
        raw.seek(voffset >> 16)
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            skip = voffset & 0xFFFF
            if skip:
                stream.read(skip)
            yield io.BufferedReader(stream, 1 << 16)  # type: ignore[arg-type]


def lines_before(path: Path, voffset: int) -> int:
    """Return how many newlines the decompressed stream holds before virtual offset ``voffset``.

    Used to turn a position found through the index into a 1-based file line number; it reads
    every block before ``voffset`` (so callers use it only when they must report a line).
    """
    target, within = voffset >> 16, voffset & 0xFFFF
    count = 0
    with open(path, "rb") as handle:
        for offset, data in iter_blocks(handle, name=path.name):
            if offset >= target:
                if offset == target:
                    count += data.count(b"\n", 0, within)
                break
            count += data.count(b"\n")
    return count


class BgzfWriter:
    """Write a BGZF stream to a binary handle; ``tell()`` gives the virtual offset of the next byte."""

    def __init__(self, handle: BinaryIO, level: int = 6) -> None:
        self._out = handle
        self._level = level
        self._buffer = bytearray()
        self._coffset = 0

    def tell(self) -> int:
        """Return the virtual offset at which the next written byte will be."""
        return (self._coffset << 16) | len(self._buffer)

    def write(self, data: bytes) -> None:
        """Append ``data``, emitting full blocks as they fill."""
        self._buffer += data
        while len(self._buffer) >= BLOCK_DATA:
            self._emit(bytes(self._buffer[:BLOCK_DATA]))
            del self._buffer[:BLOCK_DATA]

    def close(self) -> None:
        """Emit the last partial block and the EOF block (the handle stays open)."""
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()
        self._out.write(BGZF_EOF)
        self._coffset += len(BGZF_EOF)

    def _emit(self, data: bytes) -> None:
        packer = zlib.compressobj(self._level, zlib.DEFLATED, -15)
        cdata = packer.compress(data) + packer.flush()
        bsize = _HEADER.size + 6 + len(cdata) + 8
        header = _HEADER.pack(31, 139, 8, 4, 0, 0, 255, 6) + struct.pack("<2BHH", 66, 67, 2, bsize - 1)
        block = header + cdata + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))
        self._out.write(block)
        self._coffset += len(block)


# ------------------------------------------------------------------------------------- tabix


def reg2bin(beg: int, end: int) -> int:
    """Return the smallest UCSC/tabix bin holding the 0-based half-open region ``[beg, end)``."""
    end -= 1
    for shift, offset in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1)):
        if beg >> shift == end >> shift:
            return offset + (beg >> shift)
    return 0


@dataclass(frozen=True)
class ContigIndex:
    """What a reader needs of one contig: its first record's virtual offset and the linear index."""

    name: str
    first: int
    """Virtual offset of the contig's first record."""
    linear: tuple[int, ...] = ()
    """Per 16 kbp window, the smallest virtual offset of a record overlapping it (0 = none)."""


@dataclass(frozen=True)
class TabixIndex:
    """A parsed ``.tbi``: column layout and the contigs in file order."""

    fmt: int
    col_seq: int
    col_beg: int
    col_end: int
    meta: str
    skip: int
    contigs: tuple[ContigIndex, ...]

    def contig(self, name: str) -> ContigIndex | None:
        """Return the index of contig ``name`` or None when the file has none of its records."""
        return next((c for c in self.contigs if c.name == name), None)


def read_tbi(path: Path) -> TabixIndex:
    """Parse a tabix index (the size of the index, never of the data, is held in memory).

    Raises:
        UnsupportedFormatError: not a tabix index, or truncated.
    """
    try:
        data = gzip.decompress(path.read_bytes())
    except (OSError, EOFError, zlib.error) as err:
        raise UnsupportedFormatError(f"{path.name}: not a gzip-compressed tabix index ({err})") from err
    if data[:4] != b"TBI\x01":
        raise UnsupportedFormatError(f"{path.name}: no TBI magic; is it a .csi or a BAM index?")
    try:
        n_ref, fmt, col_seq, col_beg, col_end, meta, skip, l_nm = struct.unpack_from("<8i", data, 4)
        pos = 36
        names = data[pos : pos + l_nm].split(b"\0")[:n_ref]
        pos += l_nm
        contigs = []
        for ref in range(n_ref):
            (n_bin,) = struct.unpack_from("<i", data, pos)
            pos += 4
            first: int | None = None
            for _ in range(n_bin):
                bin_id, n_chunk = struct.unpack_from("<Ii", data, pos)
                pos += 8
                chunks = struct.unpack_from(f"<{2 * n_chunk}Q", data, pos)
                pos += 16 * n_chunk
                if bin_id == _PSEUDO_BIN or not chunks:
                    continue
                low = min(chunks[0::2])
                first = low if first is None else min(first, low)
            (n_intv,) = struct.unpack_from("<i", data, pos)
            pos += 4
            linear = struct.unpack_from(f"<{n_intv}Q", data, pos)
            pos += 8 * n_intv
            if first is None:
                first = next((v for v in linear if v), 0)
            contigs.append(ContigIndex(names[ref].decode("utf-8"), first, tuple(linear)))
    except struct.error as err:
        raise UnsupportedFormatError(f"{path.name}: truncated tabix index ({err})") from err
    except UnicodeDecodeError as err:
        raise UnsupportedFormatError(f"{path.name}: a contig name is not UTF-8 ({err.reason}); the index is corrupt") from err
    return TabixIndex(fmt, col_seq, col_beg, col_end, chr(meta), skip, tuple(contigs))


@dataclass
class _ContigBins:
    name: str
    bins: dict[int, list[list[int]]] = field(default_factory=dict)
    linear: list[int] = field(default_factory=list)
    first: int = -1
    last: int = 0
    records: int = 0


class TabixWriter:
    """Collect ``(contig, beg, end, voffset start, voffset end)`` per record; ``to_bytes`` gives a ``.tbi``.

    Records must arrive sorted (contigs contiguous); ``fmt``/columns default to the VCF preset
    (``tabix -p vcf``: format 2, columns 1/2/0, meta ``#``).
    """

    def __init__(self, fmt: int = 2, col_seq: int = 1, col_beg: int = 2, col_end: int = 0, meta: str = "#", skip: int = 0) -> None:
        self._head = (fmt, col_seq, col_beg, col_end, ord(meta), skip)
        self._contigs: list[_ContigBins] = []

    def add(self, contig: str, beg: int, end: int, vstart: int, vend: int) -> None:
        """Index one record covering ``[beg, end)`` (0-based) stored between ``vstart`` and ``vend``."""
        if not self._contigs or self._contigs[-1].name != contig:
            self._contigs.append(_ContigBins(contig))
        entry = self._contigs[-1]
        chunks = entry.bins.setdefault(reg2bin(beg, max(end, beg + 1)), [])
        if chunks and chunks[-1][1] == vstart:
            chunks[-1][1] = vend
        else:
            chunks.append([vstart, vend])
        last_window = (max(end, beg + 1) - 1) >> _LINEAR_SHIFT
        if len(entry.linear) <= last_window:
            entry.linear.extend([0] * (last_window + 1 - len(entry.linear)))
        for window in range(beg >> _LINEAR_SHIFT, last_window + 1):
            if entry.linear[window] == 0:
                entry.linear[window] = vstart
        if entry.first < 0:
            entry.first = vstart
        entry.last = vend
        entry.records += 1

    def to_bytes(self) -> bytes:
        """Return the BGZF-compressed index."""
        names = b"".join(c.name.encode() + b"\0" for c in self._contigs)
        out = bytearray(b"TBI\x01")
        out += struct.pack("<8i", len(self._contigs), *self._head, len(names))
        out += names
        for contig in self._contigs:
            bins = sorted(contig.bins.items())
            out += struct.pack("<i", len(bins) + 1)
            for bin_id, chunks in bins:
                out += struct.pack("<Ii", bin_id, len(chunks))
                for vstart, vend in chunks:
                    out += struct.pack("<QQ", vstart, vend)
            out += struct.pack("<IiQQQQ", _PSEUDO_BIN, 2, contig.first, contig.last, contig.records, 0)
            linear = _filled(contig.linear)
            out += struct.pack(f"<i{len(linear)}Q", len(linear), *linear)
        out += struct.pack("<Q", 0)
        buffer = io.BytesIO()
        writer = BgzfWriter(buffer)
        writer.write(bytes(out))
        writer.close()
        return buffer.getvalue()


def _filled(linear: Sequence[int]) -> list[int]:
    """Fill empty windows with the next non-empty offset (a reader may start there safely)."""
    filled = list(linear)
    following = 0
    for i in range(len(filled) - 1, -1, -1):
        if filled[i]:
            following = filled[i]
        else:
            filled[i] = following
    return filled
