"""Parsers of checksum lists and file indexes."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from medcat_data.errors import FetchError
from medcat_data.loaders.transports.physionet import parse_sha256sums, read_file_index
from medcat_data.loaders.transports.urls import parse_checksum_list

H1 = "a" * 64
H2 = "0123456789abcdef" * 4


def test_sha256sums_splits_on_the_first_space_and_keeps_spaces_in_paths() -> None:
    lines = [f"{H1} LICENSE.txt\n", f"{H2} files/p10/a b.dcm\n", "\n", "garbage line\n", f"{H1.upper()} x.csv.gz\r\n"]
    assert list(parse_sha256sums(iter(lines))) == [
        (H1, "LICENSE.txt"),
        (H2, "files/p10/a b.dcm"),
        (H1, "x.csv.gz"),
    ]


def test_sha256sums_accepts_the_coreutils_forms() -> None:
    lines = [f"{H1}  two-spaces.txt", f"{H1} *binary.bin", f"{H1} ./dotted/x"]
    assert [p for _, p in parse_sha256sums(iter(lines))] == ["two-spaces.txt", "binary.bin", "dotted/x"]


def test_sha256sums_skips_lines_whose_hash_is_not_hex() -> None:
    assert list(parse_sha256sums(iter(["z" * 64 + " a"]))) == []


def test_file_index_reads_a_gzipped_csv_column(tmp_path: Path) -> None:
    path = tmp_path / "cxr-record-list.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("subject_id,study_id,dicom_id,path\n1,2,3,files/p10/p1/s2/3.dcm\n1,2,4,files/p10/p1/s2/4.dcm\n")
    assert list(read_file_index(path, "path")) == ["files/p10/p1/s2/3.dcm", "files/p10/p1/s2/4.dcm"]


def test_file_index_with_a_missing_column_says_which_columns_exist(tmp_path: Path) -> None:
    path = tmp_path / "list.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(FetchError, match=r"no column 'path' \(columns: \['a', 'b'\]\)"):
        list(read_file_index(path, "path"))


def test_file_index_without_a_column_is_one_path_per_line(tmp_path: Path) -> None:
    path = tmp_path / "IMAGE_FILENAMES"
    path.write_text("files/a.jpg\n\nfiles/b.jpg\n", encoding="utf-8")
    assert list(read_file_index(path, None)) == ["files/a.jpg", "files/b.jpg"]


M = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.mark.parametrize(
    "line",
    [f"{M}  data/x.vcf.gz", f"{M} *data/x.vcf.gz", f"{M} ./data/x.vcf.gz", f"data/x.vcf.gz\t{M}", f"MD5 (data/x.vcf.gz) = {M}"],
)
def test_md5_lists_in_every_common_layout(line: str) -> None:
    assert list(parse_checksum_list(line + "\n# comment\n", "md5")) == [(M, "data/x.vcf.gz")]
