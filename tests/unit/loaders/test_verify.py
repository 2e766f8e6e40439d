"""Verification of one file, and of a dataset folder against its manifest."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from medcat_data.loaders.fetch_manifest import ExtractRecord, FileRecord, Manifest
from medcat_data.loaders.verify import check_file, hash_file, looks_like_html, verify_dest


def test_git_sha1_matches_git_hash_object(tmp_path: Path) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(b"hello hub\n")
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True).stdout.strip()
    assert hash_file(path, "git-sha1") == expected


def test_check_file_reports_size_before_hash_and_checks_magic() -> None:
    assert check_file(size=3, digest="aa", expected_size=3, expected_hash="AA") is None
    size = check_file(size=2, digest="bb", expected_size=3, expected_hash="aa")
    assert size is not None and size.what == "size" and "expected 3, got 2" in str(size)
    bad = check_file(size=3, digest="bb" * 32, expected_size=None, expected_hash="aa" * 32)
    assert bad is not None and bad.what == "hash" and "expected aaaaaaaaaaaa..., got bbbbbbbbbbbb..." in str(bad)
    assert check_file(size=4, digest=None, expected_size=None, expected_hash=None, magic=b"DICM", head=b"DICM") is None
    magic = check_file(size=4, digest=None, expected_size=None, expected_hash=None, magic=b"DICM", head=b"<htm")
    assert magic is not None and magic.what == "magic"
    empty = check_file(size=0, digest=None, expected_size=None, expected_hash=None, magic=b"PK", head=b"")
    assert empty is not None and empty.what == "empty"


@pytest.mark.parametrize("head", [b"<!DOCTYPE html><html>", b"  <html lang=en>", b"\n<HTML>"])
def test_html_pages_are_recognised(head: bytes) -> None:
    assert looks_like_html(head)
    assert not looks_like_html(b"PK\x03\x04")


def _record(data: bytes, verified_by: str = "sha256sums") -> FileRecord:
    return FileRecord(len(data), hashlib.sha256(data).hexdigest(), "sha256", verified_by, "http://h", "t")


def test_verify_lists_missing_truncated_corrupt_and_extra_files(tmp_path: Path) -> None:
    files = {"ok.bin": b"fine", "gone.bin": b"lost", "short.bin": b"truncated", "flip.bin": b"abcd", "tofu.bin": b"t"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    m = Manifest.open(tmp_path / ".medcat", "ds", "1")
    assert m is not None
    for name, data in files.items():
        m.record(name, _record(data, "tofu" if name == "tofu.bin" else "sha256sums"))
    m.record("never.bin", FileRecord(-1, None, "sha256", "none", "", "t", status="failed", reason="404"))
    m.record_extraction(ExtractRecord("a.zip", None, (("in/a.txt", 3),), "t"))
    m.compact()
    (tmp_path / "gone.bin").unlink()
    (tmp_path / "short.bin").write_bytes(b"trunc")
    (tmp_path / "flip.bin").write_bytes(b"abce")
    (tmp_path / "stray.txt").write_bytes(b"?")
    (tmp_path / "in").mkdir()
    (tmp_path / "in/a.txt").write_bytes(b"abc")

    fast = verify_dest("ds", "1", tmp_path, full=False)
    assert fast.missing == ["gone.bin", "never.bin"]
    assert fast.truncated == ["short.bin"]
    assert fast.corrupt == []  # same size: only a full check sees it
    assert fast.extra == ["stray.txt"]
    assert fast.tofu == 1 and not fast.ok

    full = verify_dest("ds", "1", tmp_path, full=True)
    assert full.corrupt == ["flip.bin"]
    assert sorted(full.verified) == ["in/a.txt", "ok.bin", "tofu.bin"]
    assert full.to_dict()["ok"] is False


def test_verify_of_a_folder_never_fetched_says_so(tmp_path: Path) -> None:
    report = verify_dest("ds", "1", tmp_path, full=False)
    assert not report.manifest_found and not report.ok
