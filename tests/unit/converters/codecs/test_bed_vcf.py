"""BED sweeps and VCF record parsing: coordinates, sortedness errors, genotype classes."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pytest

from medcat_data.converters.codecs.bed import RegionCursor, UnsortedInputError, iter_intervals, scan_bed
from medcat_data.converters.codecs.tabix import BgzfWriter
from medcat_data.converters.codecs.vcf import VcfLineError, genotype_class, parse_genotype, parse_record

BED = b"#header\nchr1\t10\t20\nchr1\t15\t40\nchr1\t100\t101\nchr2\t0\t5\nchr10\t7\t9\n"


def _write(tmp_path: Path, kind: str, data: bytes = BED) -> Path:
    if kind == "text":
        path = tmp_path / "r.bed"
        path.write_bytes(data)
    elif kind == "gzip":
        path = tmp_path / "r.bed.gz"
        path.write_bytes(gzip.compress(data))
    else:
        path = tmp_path / "r.bed.gz"
        buffer = io.BytesIO()
        writer = BgzfWriter(buffer)
        for i in range(0, len(data), 7):  # tiny writes; lines still span blocks only at the writer's will
            writer.write(data[i : i + 7])
        writer.close()
        path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize("kind", ["text", "gzip", "bgzf"])
def test_scan_records_each_contig_start_and_cursors_read_only_that_contig(tmp_path: Path, kind: str) -> None:
    index = scan_bed(_write(tmp_path, kind), "r.bed")
    assert index.kind == kind
    assert [(c.name, c.line, c.intervals) for c in index.contigs] == [("chr1", 2, 3), ("chr2", 5, 1), ("chr10", 6, 1)]
    assert list(iter_intervals(index, "chr2")) == [(5, 0, 5)]
    assert list(iter_intervals(index, "chr10")) == [(6, 7, 9)]
    assert list(iter_intervals(index, "chrX")) == []


@pytest.mark.parametrize("kind", ["text", "gzip", "bgzf"])
def test_cursor_uses_half_open_zero_based_intervals_including_overlaps(tmp_path: Path, kind: str) -> None:
    index = scan_bed(_write(tmp_path, kind))
    cursor = RegionCursor(index, "chr1")
    answers = {pos0: cursor.contains(pos0) for pos0 in (9, 10, 19, 20, 39, 40, 99, 100, 101, 5000)}
    assert answers == {9: False, 10: True, 19: True, 20: True, 39: True, 40: False, 99: False, 100: True, 101: False, 5000: False}


def test_a_bgzf_bed_spanning_many_blocks_seeks_to_a_late_contig(tmp_path: Path) -> None:
    lines = b"".join(f"chr1\t{i * 10}\t{i * 10 + 5}\n".encode() for i in range(20000)) + b"chr2\t3\t4\n"
    index = scan_bed(_write(tmp_path, "bgzf", lines))
    chr2 = index.contig("chr2")
    assert chr2 is not None and chr2.seek is not None and chr2.seek >> 16 > 0
    assert list(iter_intervals(index, "chr2")) == [(20001, 3, 4)]


def test_unsorted_starts_are_an_error_naming_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(UnsortedInputError, match=r"strat\.bed:3: start 5 comes after start 30"):
        scan_bed(_write(tmp_path, "text", b"chr1\t10\t20\nchr1\t30\t40\nchr1\t5\t8\n"), "strat.bed")


def test_a_contig_split_in_two_runs_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(UnsortedInputError, match=r"r\.bed:3: chr1 appears again"):
        scan_bed(_write(tmp_path, "text", b"chr1\t1\t2\nchr2\t1\t2\nchr1\t5\t8\n"), "r.bed")


LINE = b"chr1\t12345\trs1\tA\tG,T\t50.5\tPASS\tDP=3\tGT:PS\t1|2:12000\n"


def test_parse_record_keeps_values_as_written() -> None:
    record = parse_record(LINE)
    assert (record.chrom, record.pos, record.id, record.ref, record.alts) == ("chr1", 12345, "rs1", "A", ("G", "T"))
    assert (record.qual, record.filter, record.gt) == (50.5, "PASS", "1|2")
    blank = parse_record(b"chr1\t5\t.\tA\tG\t.\t.\t.\tDP:GT\t7:0/1\n")
    assert (blank.id, blank.qual, blank.filter, blank.gt) == (None, None, None, "0/1")


def test_a_non_numeric_pos_is_a_line_error() -> None:
    with pytest.raises(VcfLineError, match="POS '12a' is not an integer"):
        parse_record(b"chr1\t12a\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\n")


@pytest.mark.parametrize(
    ("gt", "alt_index", "expected", "phased"),
    [
        ("0/1", 1, "het", False),
        ("1|0", 1, "het", True),
        ("1/1", 1, "hom-alt", False),
        ("1/2", 1, "het", False),
        ("1/2", 2, "het", False),
        ("0|2", 1, "hom-ref", True),
        ("2/2", 2, "hom-alt", False),
        ("1", 1, "hom-alt", False),
    ],
)
def test_genotype_class_counts_copies_of_that_alt(gt: str, alt_index: int, expected: str, phased: bool) -> None:
    alleles, is_phased = parse_genotype(gt)
    assert genotype_class(alleles, alt_index) == expected
    assert is_phased is phased


@pytest.mark.parametrize("gt", ["./.", ".|.", "0/.", ".", "", None])
def test_a_missing_genotype_is_a_line_error(gt: str | None) -> None:
    with pytest.raises(VcfLineError):
        parse_genotype(gt)


def test_tag_sweep_equals_one_cursor_per_bed_including_overlaps(tmp_path: Path) -> None:
    import random

    from medcat_data.converters.codecs.bed import TagSweep

    rng = random.Random(5)
    beds = []
    for k in range(4):
        starts = sorted(rng.randint(0, 5000) for _ in range(40))
        text = "".join(f"chr1\t{s}\t{s + rng.randint(1, 400)}\n" for s in starts)
        path = tmp_path / f"b{k}.bed"
        path.write_text(text)
        beds.append((f"b{k}", scan_bed(path)))
    sweep = TagSweep(beds, "chr1")
    cursors = [(name, RegionCursor(index, "chr1")) for name, index in beds]
    for pos0 in sorted(rng.randint(0, 5600) for _ in range(600)):
        assert sweep.tags(pos0) == [name for name, cursor in cursors if cursor.contains(pos0)]


def test_codec_genotype_classes_are_the_schema_class_label_order() -> None:
    from medcat_data.converters.codecs.vcf import GENOTYPE_CLASSES
    from medcat_data.converters.schemas import GENOTYPE_CLASSES as SCHEMA_CLASSES

    assert GENOTYPE_CLASSES == SCHEMA_CLASSES


@pytest.mark.parametrize("kind", ["text", "bgzf"])
def test_a_sweep_from_a_position_seeks_to_a_checkpoint_and_misses_nothing(tmp_path: Path, kind: str) -> None:
    from medcat_data.converters.codecs.bed import CHECKPOINT_EVERY

    lines = [f"chr1\t{i * 10}\t{i * 10 + 5}\n" for i in range(3 * CHECKPOINT_EVERY)]
    lines[CHECKPOINT_EVERY - 1] = f"chr1\t{(CHECKPOINT_EVERY - 1) * 10}\t{(CHECKPOINT_EVERY + 3) * 10}\n"  # reaches past a checkpoint
    index = scan_bed(_write(tmp_path, kind, "".join(lines).encode()))
    entry = index.contig("chr1")
    assert entry is not None and entry.checkpoints and entry.checkpoints[0][0] > CHECKPOINT_EVERY * 10
    for from_pos in (0, CHECKPOINT_EVERY * 10 + 1, 2 * CHECKPOINT_EVERY * 10 + 3, 10**9):
        whole = [iv for iv in iter_intervals(index, "chr1") if iv[2] > from_pos]
        seeked = [iv for iv in iter_intervals(index, "chr1", from_pos) if iv[2] > from_pos]
        assert seeked == whole
    assert len(list(iter_intervals(index, "chr1", 2 * CHECKPOINT_EVERY * 10 + 3))) <= CHECKPOINT_EVERY + 1
