"""Damaged input bytes: a truncated gzip, a corrupt BGZF block, bytes not valid UTF-8.

Each is reported with the file, the line where there is one and what is wrong; never a silent
replacement character, never a bare ``EOFError`` (which click prints as ``Aborted!``). Every
failed item of a unit names the config (and split) it belongs to.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from datasets import Features, Value

from medcat_data.converters.codecs.tabix import BgzfWriter, TabixWriter, iter_blocks, iter_lines, read_tbi
from medcat_data.converters.codecs.vcf import iter_data_lines
from medcat_data.converters.executor import convert_units
from medcat_data.converters.units import ErrorRecord, Row, RowEncoder
from medcat_data.errors import InputDecodeError, SampleError, UnsupportedFormatError

FEATURES = Features({"value": Value("int64"), "source": Value("string"), "sample_id": Value("string"), "split": Value("string")})
ENCODER = RowEncoder("toy@1", {"default": FEATURES})


def _truncated_gzip(path: Path, lines: int = 2000) -> Path:
    text = "".join(f"chr1\t{i + 1}\t.\tA\tC\t30\tPASS\t.\tGT\t0/1\n" for i in range(lines)).encode()
    data = gzip.compress(text, mtime=0)
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_gzip_yields_the_lines_before_and_names_the_file_and_the_line_it_stopped_at(tmp_path: Path) -> None:
    path = _truncated_gzip(tmp_path / "calls.vcf.gz")
    seen: list[int] = []
    with pytest.raises(InputDecodeError) as caught:
        for number, _ in iter_lines(path):
            seen.append(number)
    err = caught.value
    assert seen and seen == list(range(1, len(seen) + 1))
    assert (err.path, err.stage, err.line) == (f"calls.vcf.gz:{len(seen) + 1}", "read", len(seen) + 1)
    assert "truncated" in err.reason


def test_vcf_data_lines_of_a_truncated_gzip_end_in_a_sample_error_not_an_eof_error(tmp_path: Path) -> None:
    path = _truncated_gzip(tmp_path / "query.vcf.gz")
    with pytest.raises(SampleError, match=r"query\.vcf\.gz:\d+: read: the gzip stream ends early"):
        list(iter_data_lines(path))


def test_a_gzip_damaged_in_place_is_corrupt_data_with_file_and_line(tmp_path: Path) -> None:
    """Same size as fetched (so normalize's size check passes): the second half is zeros."""
    path = _truncated_gzip(tmp_path / "calls.vcf.gz")
    data = gzip.compress(b"".join(b"line %d\n" % i for i in range(5000)), mtime=0)
    half = len(data) // 2
    path.write_bytes(data[:half] + bytes(len(data) - half))
    with pytest.raises(InputDecodeError, match=r"calls\.vcf\.gz:\d+"):
        list(iter_lines(path))


def _bgzf(data: bytes) -> bytes:
    buffer = io.BytesIO()
    writer = BgzfWriter(buffer)
    writer.write(data)
    writer.close()
    return buffer.getvalue()


def test_a_bgzf_block_whose_data_is_damaged_is_refused_not_returned(tmp_path: Path) -> None:
    block = bytearray(_bgzf(b"chr1\t1\n" * 1000))
    block[30] ^= 0xFF  # inside the first block's deflate data
    with pytest.raises(UnsupportedFormatError, match="byte 0"):
        list(iter_blocks(io.BytesIO(bytes(block)), name="calls.vcf.gz"))


def test_a_tabix_contig_name_that_is_not_utf8_is_refused_not_replaced(tmp_path: Path) -> None:
    index = TabixWriter()
    index.add("chrQ", 0, 10, 0, 100)
    raw = gzip.decompress(index.to_bytes()).replace(b"chrQ", b"chr\xff")
    path = tmp_path / "calls.vcf.gz.tbi"
    path.write_bytes(_bgzf(raw))
    with pytest.raises(UnsupportedFormatError, match="not UTF-8"):
        read_tbi(path)


# Units and convert functions live at module level, as the executor's workers import them by name.
@dataclass(frozen=True)
class FileUnit:
    name: str
    path: str
    config: str = "default"
    split: str = "train"


def read_whole(unit: FileUnit) -> Iterator[Row | SampleError]:
    """Read a file as a recipe that did not name the file would: bare ``gzip``/``open`` calls."""
    yield Row("default", "train", {"value": 1, "sample_id": unit.name})
    opener = gzip.open if unit.path.endswith(".gz") else open
    with opener(unit.path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        handle.read()


def test_damage_escaping_a_unit_is_a_read_error_that_says_what_is_wrong(tmp_path: Path) -> None:
    bad_text = tmp_path / "notes.txt"
    bad_text.write_bytes("caf\u00e9\n".encode("latin-1"))
    units = [FileUnit("gz", str(_truncated_gzip(tmp_path / "t.csv.gz"))), FileUnit("txt", str(bad_text))]
    records = [e for result in convert_units(units, read_whole, ENCODER) for e in result.errors]
    assert [(e.path, e.stage, e.type) for e in records] == [("gz", "read", "EOFError"), ("txt", "read", "UnicodeDecodeError")]
    assert "the file is truncated" in records[0].message
    assert "bytes not valid utf-8 at byte 3" in records[1].message and "\ufffd" not in records[1].message


def fail_in_unit(unit: FileUnit) -> Iterator[Row | SampleError]:
    yield SampleError(unit.path, "decode", "bad pixels")
    yield Row("default", "train", {"value": "not a number", "sample_id": unit.name})


def test_every_failed_item_names_the_config_and_split_of_its_unit() -> None:
    units = [FileUnit("a", "a.dcm", config="default", split="test")]
    records = [e for result in convert_units(units, fail_in_unit, ENCODER) for e in result.errors]
    assert [(e.stage, e.config, e.split) for e in records] == [("decode", "default", "test"), ("encode", "default", "train")]
    assert records[0].to_json() == {
        "path": "a.dcm", "stage": "decode", "type": "SampleError", "message": "bad pixels", "config": "default", "split": "test",
    }  # fmt: skip


def test_a_record_keeps_the_config_it_has_and_takes_one_where_it_has_none() -> None:
    record = ErrorRecord("x", "read", "SampleError", "m")
    assert record.placed("tables").config == "tables"
    assert record.placed("tables").placed("other").config == "tables"
