"""The survey of the MIMIC-CXR-JPG index files held compactly: packed label codes, metadata grouped as it streams, one dict per image."""

from __future__ import annotations

from medcat_data.converters.vocab.chexpert import OBSERVATIONS
from medcat_data.datasets.mimic_cxr_jpg.labels import ImageFacts, PackedLabels, StudyImages, _StudyGroups

_N = len(OBSERVATIONS)


def test_packed_labels_give_back_every_raw_value_and_know_which_studies_have_a_row() -> None:
    index = {"s1": 0, "s2": 1, "s3": 2}  # the metadata's studies; the label file has s1, s3 and one more
    table = PackedLabels(index)
    first = ("1.0", "0.0", "-1.0", "", *("",) * (_N - 4))
    table.add("s1", first)
    table.add("s3", ("0.0",) * _N)
    table.add("s9", ("-1.0",) * _N)
    assert table["s1"] == first and table.get("s3") == ("0.0",) * _N and table["s9"] == ("-1.0",) * _N
    assert "s2" not in table and table.get("s2") is None and len(table) == 3 and list(table) == ["s1", "s3", "s9"]
    assert index["s9"] == 3  # a study of the label file only gets a slot in the shared index
    table.add("s1", ("1.0",) * _N)  # a later row of a study replaces the earlier one, as a dict did
    assert table["s1"] == ("1.0",) * _N and len(table) == 3


def test_packed_labels_keep_rows_of_a_file_with_more_spellings_than_a_code_holds() -> None:
    table = PackedLabels({})
    rows = {f"s{i}": tuple(f"{i}.{k}" for k in range(_N)) for i in range(3)}  # 42 distinct spellings, bad values included
    for study, raw in rows.items():
        table.add(study, raw)
    assert {study: table[study] for study in table} == rows and len(table) == 3
    table.add("s0", ("1.0",) * _N)  # packable again: the kept tuple is dropped
    assert table["s0"] == ("1.0",) * _N and len(table) == 3


def test_metadata_rows_group_by_study_in_first_seen_order_also_when_a_study_comes_back() -> None:
    groups = _StudyGroups()
    for subject, study, dicom, view in [
        ("10", "s1", "d1", "PA"), ("10", "s1", "d2", "LATERAL"), ("11", "s2", "d3", None),
        ("10", "s1", "d4", "AP"),  # s1 again, later: merged into its first entry
        ("12", "s2", "d5", "PA"),  # the id s2 under another subject: a study of its own
        ("12", "s2", "d6", None),
    ]:
        groups.add(subject, study, dicom, view)
    studies, index = groups.finish()
    assert studies == (
        StudyImages("10", "s1", ("d1", "d2", "d4"), ("PA", "LATERAL", "AP")),
        StudyImages("11", "s2", ("d3",), (None,)),
        StudyImages("12", "s2", ("d5", "d6"), ("PA", None)),
    )
    assert index == {"s1": 0, "s2": 1}


def test_split_and_views_are_two_columns_of_one_dict_with_none_absent() -> None:
    facts: dict[str, tuple[str | None, str | None]] = {"d1": ("train", "PA"), "d2": (None, "AP"), "d3": ("test", None)}
    split, views = ImageFacts(facts, 0), ImageFacts(facts, 1)
    assert dict(split) == {"d1": "train", "d3": "test"} and len(split) == 2 and split.get("d2") is None
    assert dict(views) == {"d1": "PA", "d2": "AP"} and views.get("d3") is None and "d9" not in views
