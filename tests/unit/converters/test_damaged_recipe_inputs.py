"""Damaged bytes met by the recipes: each is one ``errors.jsonl`` line naming file, line and what is wrong.

A truncated gzip CSV, bytes not valid UTF-8 in a table or an index file, a damaged zip member:
never a replacement character, never a bare ``EOFError`` (``Aborted!``), never the end of the
run for one bad line. ``errors.jsonl`` names inputs relative to the dataset's folder and carries
no object reprs, so it is byte-identical from run to run. Inputs are written by hand here (a few
rows each) so that the damage sits exactly where the test says.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset
from PIL import Image

from medcat_data.converters.codecs.bed import scan_bed
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.conversations import ExportOptions, export_conversations
from medcat_data.converters.recipes import mimic_cxr, mimic_cxr_jpg
from medcat_data.converters.recipes.base import RecipeContext, read_text_lines
from medcat_data.converters.vocab.chexpert import OBSERVATIONS
from medcat_data.errors import InputDecodeError, SampleError
from tests.unit.converters.recipes.recipe_run import read_errors, run_recipe
from tests.unit.converters.test_conversations_data import write_toy_dataset


def _context(root: Path, dataset_id: str) -> RecipeContext:
    return RecipeContext(dataset_id, "1", root, "test", root)


def _truncated_gzip(text: str) -> bytes:
    data = gzip.compress(text.encode(), mtime=0)
    return data[: len(data) // 2]


# ------------------------------------------------------------------------------ read_text_lines


def test_read_text_lines_reports_bytes_not_utf8_with_file_and_line_and_keeps_the_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"a,b\r\nx,y\rz,w\nbad,\xff\nlast,1\n")
    errors: list[SampleError] = []
    assert list(read_text_lines(path, errors=errors)) == [(1, "a,b\r\n"), (2, "x,y\r"), (3, "z,w\n"), (5, "last,1\n")]
    assert [(e.path, e.stage) for e in errors] == [("labels.csv:4", "read")]
    assert "bytes not valid utf-8 at column 5" in errors[0].reason
    with pytest.raises(InputDecodeError, match=r"labels\.csv:4: read: bytes not valid utf-8"):
        list(read_text_lines(path))


# ------------------------------------------------------------------------------ mimic-cxr-jpg


def _mimic_labels_folder(root: Path, studies: int = 1500) -> None:
    """Metadata, split and CheXpert files of ``studies`` one-image studies; the first study has its JPEG."""
    meta = "dicom_id,subject_id,study_id,ViewPosition\n" + "".join(
        f"d{i:05d}x{i * 7919 % 100003},{10000000 + i},{50000000 + i},PA\n" for i in range(studies)
    )
    (root / mimic_cxr_jpg.METADATA).write_bytes(_truncated_gzip(meta))
    split = "dicom_id,study_id,subject_id,split\n" + "".join(
        f"d{i:05d}x{i * 7919 % 100003},{50000000 + i},{10000000 + i},train\n" for i in range(3)
    )
    split = split.replace("d00002", "d\xe900002")  # one line in Latin-1, not UTF-8
    (root / mimic_cxr_jpg.SPLIT).write_bytes(gzip.compress(split.encode("latin-1"), mtime=0))
    labels = f"subject_id,study_id,{','.join(OBSERVATIONS)}\n{10000000},{50000000},{',' * (len(OBSERVATIONS) - 1)}1.0\n"
    (root / mimic_cxr_jpg.LABEL_FILES["chexpert"]).write_bytes(gzip.compress(labels.encode(), mtime=0))
    jpeg = root / "files/p10/p10000000/s50000000/d00000x0.jpg"
    jpeg.parent.mkdir(parents=True)
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 90).save(buffer, "JPEG")
    jpeg.write_bytes(buffer.getvalue())


def test_mimic_cxr_jpg_a_truncated_metadata_gzip_and_a_bad_split_line_are_lines_in_errors(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    _mimic_labels_folder(root)
    out = tmp_path / "out"
    run_recipe(mimic_cxr_jpg, _context(root, "mimic-cxr-jpg"), ["chexpert"], out)
    errors = {e["path"].split(":")[0]: e for e in read_errors(out)}
    truncated = errors[mimic_cxr_jpg.METADATA]
    assert truncated["stage"] == "read" and "the file is truncated" in truncated["message"]
    assert int(truncated["path"].split(":")[1]) > 2
    assert errors[mimic_cxr_jpg.SPLIT]["path"] == f"{mimic_cxr_jpg.SPLIT}:4"
    assert "bytes not valid utf-8" in errors[mimic_cxr_jpg.SPLIT]["message"]
    assert load_dataset(str(out), "chexpert")["train"]["sample_id"] == ["d00000x0"]


def test_mimic_cxr_report_with_bytes_not_utf8_is_an_error_not_replacement_characters(tmp_path: Path) -> None:
    report = tmp_path / "files/p10/p10000000/s50000000.txt"
    report.parent.mkdir(parents=True)
    report.write_bytes("FINDINGS: caf\u00e9 clear.\n".encode("latin-1"))
    with pytest.raises(SampleError, match=r"s50000000\.txt has bytes not valid UTF-8 at byte 13") as caught:
        mimic_cxr._read_report(tmp_path, ("files/p10/p10000000/s50000000.txt", None), "s50000000")
    assert str(tmp_path) not in str(caught.value)


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
