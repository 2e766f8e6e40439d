"""Zip members read in place through the on-disk central-directory index."""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

import pytest

from medcat_data.converters.zipmembers import MemberIndex, build_index, read_member, unreadable_parts
from medcat_data.errors import SampleError


def _zip(path: Path, members: dict[str, bytes], compression: int) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    return [
        _zip(tmp_path / "images_0.zip", {"images/": b"", "images/a.jpg": b"A" * 1000, "images/dup.jpg": b"first"}, zipfile.ZIP_STORED),
        _zip(tmp_path / "images_1.zip", {"deep/er/b.jpg": b"B" * 5000 + b"tail", "dup.jpg": b"second"}, zipfile.ZIP_DEFLATED),
    ]


def test_members_are_found_by_base_name_and_read_from_stored_and_deflated_parts(tmp_path: Path, parts: list[Path]) -> None:
    count, unreadable = build_index(parts, tmp_path, tmp_path / "idx" / "members.sqlite")
    assert (count, unreadable) == (3, [])  # the directory entry is skipped, the duplicate kept once
    with MemberIndex(tmp_path / "idx" / "members.sqlite", tmp_path) as index:
        a, b, dup = index.get("a.jpg"), index.get("b.jpg"), index.get("dup.jpg")
        assert a and b and dup and index.get("absent.jpg") is None
        assert (a.part, a.member, b.part, b.member) == ("images_0.zip", "images/a.jpg", "images_1.zip", "deep/er/b.jpg")
        assert index.read(a) == b"A" * 1000 and index.read(b) == b"B" * 5000 + b"tail"
        assert index.read(dup) == b"first"  # the first part wins, as a non-overwriting unzip -j keeps


def test_an_unreadable_part_is_reported_and_its_members_are_absent(tmp_path: Path, parts: list[Path]) -> None:
    bad = tmp_path / "images_2.zip"
    bad.write_bytes(b"not a zip at all")
    count, unreadable = build_index([*parts, bad], tmp_path, tmp_path / "m.sqlite")
    assert count == 3 and unreadable == ["images_2.zip"]
    assert unreadable_parts(tmp_path / "m.sqlite") == ["images_2.zip"]  # remembered for a reused index


def test_corrupt_member_data_is_a_sample_error_naming_part_and_member(tmp_path: Path, parts: list[Path]) -> None:
    build_index(parts, tmp_path, tmp_path / "m.sqlite")
    with MemberIndex(tmp_path / "m.sqlite", tmp_path) as index:
        ref = index.get("a.jpg")
        assert ref is not None
    data = bytearray(parts[0].read_bytes())
    start = data.index(b"A" * 1000)
    data[start + 10] = ord("Z")
    parts[0].write_bytes(bytes(data))
    with open(parts[0], "rb") as handle, pytest.raises(SampleError) as info:
        read_member(handle, ref)
    assert info.value.path == "images_0.zip:images/a.jpg" and "CRC" in info.value.reason
    with open(parts[0], "rb") as handle, pytest.raises(SampleError, match="no local file header"):
        read_member(handle, dataclasses.replace(ref, offset=ref.offset + 1))
    with open(parts[0], "rb") as handle, pytest.raises(SampleError, match="method 12 is not supported"):
        read_member(handle, dataclasses.replace(ref, method=12))


def test_a_truncated_part_is_a_sample_error(tmp_path: Path, parts: list[Path]) -> None:
    build_index(parts, tmp_path, tmp_path / "m.sqlite")
    with MemberIndex(tmp_path / "m.sqlite", tmp_path) as index:
        ref = index.get("b.jpg")
        assert ref is not None
        parts[1].write_bytes(parts[1].read_bytes()[: ref.offset + 40])
        with pytest.raises(SampleError, match="truncated"):
            index.read(ref)
