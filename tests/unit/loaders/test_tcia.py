"""The TCIA transport's offline parts: Retriever folder names, dates, metadata.csv, zip checks."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest

from medcat_data.loaders.transports.tcia import (
    METADATA_HEADER,
    check_series_zip,
    metadata_csv,
    retriever_date,
    safe_name,
    series_folders,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2016-07-20", "07-20-2016"), ("2016-07-20 00:00:00.0", "07-20-2016"), ("07-20-2016", "07-20-2016"),
     ("20160720", "07-20-2016"), ("07/20/2016", "07-20-2016"), ("", ""), (None, ""), ("soon", "")],
)
def test_dates_become_the_retrievers_month_day_year(value: object, expected: str) -> None:
    assert retriever_date(value) == expected


def test_names_from_the_api_cannot_become_paths() -> None:
    assert safe_name("../../etc") == "_.._etc"
    assert safe_name("a/b\\c") == "a_b_c"
    assert safe_name("..") == "NA" and safe_name("", "") == ""
    assert safe_name("cropped images") == "cropped images"


def test_series_are_placed_in_retriever_folders_and_never_share_one() -> None:
    base = {"StudyInstanceUID": "1.2.3.99999", "PatientID": "Mass-Test_P_00001_LEFT_CC", "StudyDate": "07-20-2016",
            "StudyDesc": "DDSM", "SeriesDescription": "full mammogram images", "SeriesNumber": "1"}
    placed = series_folders("CBIS-DDSM", [
        {**base, "SeriesInstanceUID": "1.2.3.4.12345"},
        {**base, "SeriesInstanceUID": "9.12345"},  # same last five digits: another folder
        {**base, "SeriesInstanceUID": "not a uid"},  # skipped
    ])
    assert [s.folder for s in placed] == [
        "CBIS-DDSM/Mass-Test_P_00001_LEFT_CC/07-20-2016-DDSM-99999/1.000000-full mammogram images-12345",
        "CBIS-DDSM/Mass-Test_P_00001_LEFT_CC/07-20-2016-DDSM-99999/1.000000-full mammogram images-12345-9.12345",
    ]


def test_metadata_csv_has_the_retriever_header_and_relative_locations() -> None:
    placed = series_folders("C", [{"SeriesInstanceUID": "1.2", "PatientID": "S", "ImageCount": "2", "FileSize": 2_500_000}])
    rows = list(csv.reader(metadata_csv("C", placed, "2024-01-01T00:00:00.000").decode().splitlines()))
    assert tuple(rows[0]) == METADATA_HEADER
    row = dict(zip(rows[0], rows[1]))
    assert row["File Location"] == f"./{placed[0].folder}" == "./C/S/NA/NA.000000-1.2"
    assert row["Number of Images"] == "2" and row["File Size"] == "2.50 MB" and row["Collection"] == "C"


def test_a_zip_is_checked_against_image_count_and_dicom_bytes(tmp_path: Path) -> None:
    path = tmp_path / "s.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("1-1.dcm", b"x" * 10)
        zf.writestr("1-2.dcm", b"y" * 5)
    (ok,) = series_folders("C", [{"SeriesInstanceUID": "1.2", "ImageCount": 2, "FileSize": 15}])
    assert check_series_zip(str(path), ok) is None
    (short,) = series_folders("C", [{"SeriesInstanceUID": "1.2", "ImageCount": 2, "FileSize": 16}])
    assert check_series_zip(str(path), short) == "series 1.2: 15 bytes of DICOM in the zip, the API lists 16"
    (unknown,) = series_folders("C", [{"SeriesInstanceUID": "1.2"}])
    assert check_series_zip(str(path), unknown) is None  # nothing listed: nothing to compare
    (tmp_path / "bad.zip").write_bytes(b"PK not really")
    assert "not a readable zip" in str(check_series_zip(str(tmp_path / "bad.zip"), ok))
