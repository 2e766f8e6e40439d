"""Damaged bytes met by the recipes: each is one ``errors.jsonl`` line naming file, line and what is wrong.

A truncated gzip CSV, bytes not valid UTF-8 in a table or an index file, a damaged zip member:
never a replacement character, never a bare ``EOFError`` (``Aborted!``), never the end of the
run for one bad line. ``errors.jsonl`` names inputs relative to the dataset's folder and carries
no object reprs, so it is byte-identical from run to run. Inputs are written by hand here (a few
rows each) so that the damage sits exactly where the test says.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from medcat_data.converters.codecs.bed import scan_bed
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.conversations import ExportOptions, export_conversations
from medcat_data.errors import InputDecodeError, SampleError
from tests.unit.converters.test_conversations_data import write_toy_dataset


def _truncated_gzip(text: str) -> bytes:
    data = gzip.compress(text.encode(), mtime=0)
    return data[: len(data) // 2]


# ------------------------------------------------------------------------------ codecs


def test_raster_error_messages_name_the_label_never_an_object_repr_and_are_the_same_each_run(tmp_path: Path) -> None:
    first = pytest.raises(SampleError, load_raster_bytes, b"not an image", "imgs.zip:x.png", ImageOptions())
    second = pytest.raises(SampleError, load_raster_bytes, b"not an image", "imgs.zip:x.png", ImageOptions())
    assert first.value.reason == second.value.reason == "not a readable image: cannot identify image file 'imgs.zip:x.png'"
    with pytest.raises(SampleError) as missing:
        load_raster(tmp_path / "absent.png", ImageOptions())
    assert str(tmp_path) not in missing.value.reason and "object at 0x" not in missing.value.reason


def test_a_truncated_gzip_bed_names_file_and_line_not_eof_error(tmp_path: Path) -> None:
    path = tmp_path / "regions.bed.gz"
    path.write_bytes(_truncated_gzip("".join(f"chr1\t{i * 100}\t{i * 100 + 50 + i % 7}\n" for i in range(4000))))
    with pytest.raises(InputDecodeError, match=r"regions\.bed\.gz:\d+: read: the gzip stream ends early"):
        scan_bed(path)


# ------------------------------------------------------------------------------ conversations export


def test_export_puts_back_a_previous_export_a_killed_run_left_aside(tmp_path: Path) -> None:
    toy = write_toy_dataset(tmp_path / "toy")
    export_conversations(toy, ExportOptions(("llava",)))
    before = {p.relative_to(toy).as_posix(): p.read_bytes() for p in (toy / "conversations").rglob("*") if p.is_file()}
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    (toy / "conversations").rename(toy / f".conversations.medcat-old-{dead.pid}")  # killed between the renames
    again = export_conversations(toy, ExportOptions(("llava",)))
    assert again.skipped_up_to_date
    assert {p.relative_to(toy).as_posix(): p.read_bytes() for p in (toy / "conversations").rglob("*") if p.is_file()} == before
    assert not list(toy.glob(".conversations.medcat-*"))
