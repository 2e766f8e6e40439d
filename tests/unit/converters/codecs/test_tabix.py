"""BGZF and tabix: our writer's output reads back through the index, byte-exact, across blocks."""

from __future__ import annotations

import gzip
import io
import random
import struct
from pathlib import Path

import pytest

from medcat_data.converters.codecs.tabix import (
    BGZF_EOF,
    BLOCK_DATA,
    BgzfWriter,
    TabixWriter,
    is_bgzf,
    iter_blocks,
    lines_before,
    open_at,
    read_tbi,
    reg2bin,
)
from medcat_data.errors import UnsupportedFormatError


def _vcf(tmp_path: Path, contigs: dict[str, int], seed: int = 0) -> tuple[Path, dict[str, list[tuple[int, int, bytes]]]]:
    """Write a BGZF VCF-like file with its .tbi; return per contig (voffset, line number, line)."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    writer = BgzfWriter(buffer)
    index = TabixWriter()
    writer.write(b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS\n")
    number = 2
    written: dict[str, list[tuple[int, int, bytes]]] = {}
    for contig, count in contigs.items():
        pos = 1
        for _ in range(count):
            pos += rng.randint(1, 3000)
            line = f"{contig}\t{pos}\t.\tA\tG\t50\tPASS\tDP={rng.randint(1, 99)};PAD={'x' * rng.randint(0, 80)}\tGT\t0/1\n".encode()
            start = writer.tell()
            writer.write(line)
            number += 1
            index.add(contig, pos - 1, pos, start, writer.tell())
            written.setdefault(contig, []).append((start, number, line))
    writer.close()
    path = tmp_path / "x.vcf.gz"
    path.write_bytes(buffer.getvalue())
    (tmp_path / "x.vcf.gz.tbi").write_bytes(index.to_bytes())
    return path, written


def test_bgzf_output_is_gzip_readable_and_ends_with_the_eof_block(tmp_path: Path) -> None:
    data = bytes(random.Random(1).randbytes(3 * BLOCK_DATA + 17))
    buffer = io.BytesIO()
    writer = BgzfWriter(buffer)
    writer.write(data)
    writer.close()
    raw = buffer.getvalue()
    assert gzip.decompress(raw) == data
    assert raw.endswith(BGZF_EOF)
    blocks = list(iter_blocks(io.BytesIO(raw)))
    assert [len(b) for _, b in blocks] == [BLOCK_DATA] * 3 + [17, 0]
    assert all(len(raw[o : o + 18]) == 18 and raw[o + 12 : o + 14] == b"BC" for o, _ in blocks)


def test_tabix_gives_each_contig_its_first_record_and_seeking_there_reads_it(tmp_path: Path) -> None:
    path, written = _vcf(tmp_path, {"chr1": 3000, "chr2": 5, "chr10": 1200})
    index = read_tbi(tmp_path / "x.vcf.gz.tbi")
    assert [c.name for c in index.contigs] == ["chr1", "chr2", "chr10"]
    assert (index.fmt, index.col_seq, index.col_beg, index.meta) == (2, 1, 2, "#")
    for contig in index.contigs:
        first_voffset, _, first_line = written[contig.name][0]
        assert contig.first == first_voffset
        with open_at(path, contig.first) as stream:
            assert stream.readline() == first_line


def test_the_linear_index_points_at_or_before_every_record_of_its_window(tmp_path: Path) -> None:
    path, written = _vcf(tmp_path, {"chr1": 4000})
    contig = read_tbi(tmp_path / "x.vcf.gz.tbi").contigs[0]
    assert len(contig.linear) > 100
    for voffset, _, line in written["chr1"][::97]:
        pos0 = int(line.split(b"\t")[1]) - 1
        window_start = contig.linear[pos0 >> 14]
        assert window_start <= voffset
        with open_at(path, window_start) as stream:
            for candidate in stream:
                if candidate == line:
                    break
            else:
                pytest.fail("record not found after its window's linear-index offset")


def test_lines_before_turns_a_virtual_offset_into_a_file_line_number(tmp_path: Path) -> None:
    path, written = _vcf(tmp_path, {"chr1": 2500, "chr2": 2500})
    for voffset, number, _ in written["chr1"][::250] + written["chr2"][::250]:
        assert lines_before(path, voffset) + 1 == number


def test_reg2bin_follows_the_ucsc_binning_scheme() -> None:
    assert reg2bin(0, 1) == 4681
    assert reg2bin(16383, 16385) == 585  # crosses a 16 kbp boundary: next level up
    assert reg2bin(0, 1 << 26) == 1
    assert reg2bin(0, 1 << 29) == 0


def test_plain_gzip_is_not_mistaken_for_bgzf(tmp_path: Path) -> None:
    plain = tmp_path / "plain.gz"
    plain.write_bytes(gzip.compress(b"chr1\t1\t2\n"))
    assert not is_bgzf(plain)
    with pytest.raises(UnsupportedFormatError, match="bgzip"):
        list(iter_blocks(open(plain, "rb"), name="plain.gz"))


def test_a_file_that_is_not_a_tabix_index_is_refused_with_its_name(tmp_path: Path) -> None:
    fake = tmp_path / "x.tbi"
    fake.write_bytes(gzip.compress(b"CSI\x01" + struct.pack("<i", 0)))
    with pytest.raises(UnsupportedFormatError, match="x.tbi"):
        read_tbi(fake)
