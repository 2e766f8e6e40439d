"""Manifest: the SQLite store, its JSON export, migration, sharing between processes, crashes, no credentials."""

from __future__ import annotations

import json
from pathlib import Path

from medcat_data.loaders.fetch_manifest import ExtractRecord, FileRecord, Manifest


def _rec(size: int = 3, url: str = "http://h/a") -> FileRecord:
    return FileRecord(size=size, hash="ab" * 32, algorithm="sha256", verified_by="sha256sums", url=url, fetched_at="t")


def test_journaled_records_survive_a_crash_before_compaction(tmp_path: Path) -> None:
    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None
    m.record("a.txt", _rec())
    m.flush()  # batches are flushed every 0.25 s or 256 records
    # no compact(), no close(): the process "dies"
    again = Manifest.open(tmp_path, "ds", "1")
    assert again is not None and again.get("a.txt") == _rec()


def test_a_full_batch_is_written_without_waiting(tmp_path: Path) -> None:
    from medcat_data.loaders.fetch_manifest import FLUSH_RECORDS

    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None
    for i in range(FLUSH_RECORDS):
        m.record(f"f{i}", _rec())
    again = Manifest.open(tmp_path, "ds", "1")
    assert again is not None and len(again) == FLUSH_RECORDS


def test_compaction_exports_one_json_document_atomically(tmp_path: Path) -> None:
    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None
    m.record("b/x.bin", _rec(5))
    m.record("a.txt", _rec())
    m.record_extraction(ExtractRecord("b/x.zip", "cd" * 32, (("b/in/1.txt", 2), ("b/in/link", -1)), "t"))
    m.compact()
    data = json.loads((tmp_path / "manifest.json").read_text())
    assert data["format"] == "medcat-manifest/1" and data["dataset"] == "ds"
    assert list(data["files"]) == ["a.txt", "b/x.bin"]
    assert data["files"]["b/x.bin"]["size"] == 5
    assert data["extracted"]["b/x.zip"]["members"] == [["b/in/1.txt", 2], ["b/in/link", -1]]
    assert not (tmp_path / "manifest.log").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    reloaded = Manifest.open(tmp_path, "ds", "1")
    assert reloaded is not None and reloaded.size_of("b/x.bin") == 5
    assert reloaded.extraction("b/x.zip") is not None


def test_two_manifests_of_one_folder_see_each_others_records(tmp_path: Path) -> None:
    first = Manifest.open(tmp_path, "ds", "1")
    second = Manifest.open(tmp_path, "ds", "1")
    assert first is not None and second is not None
    first.record("one", _rec())
    second.record("two", _rec())
    second.flush()
    first.refresh()
    assert first.get("two") is not None
    second.compact()
    first.record("three", _rec())
    first.compact()
    final = Manifest.open(tmp_path, "ds", "1")
    assert final is not None and {p for p, _ in final.files()} == {"one", "two", "three"}


def test_urls_are_stored_without_credentials(tmp_path: Path) -> None:
    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None
    m.record("a", _rec(url="https://alice:s3cr3t-Pa55-XYZ@h/a?token=abc123"))
    m.compact()
    text = (tmp_path / "manifest.json").read_text()
    assert "s3cr3t" not in text and "abc123" not in text and "alice" not in text


def test_failed_records_keep_their_reason_and_drop_forgets(tmp_path: Path) -> None:
    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None
    m.record("bad", FileRecord(-1, None, "sha256", "none", "", "t", status="failed", reason="HTTP 404"))
    m.record("gone", _rec())
    m.drop("gone")
    m.compact()
    again = Manifest.open(tmp_path, "ds", "1")
    assert again is not None
    bad = again.get("bad")
    assert bad is not None and bad.status == "failed" and bad.reason == "HTTP 404"
    assert again.size_of("bad") is None and again.get("gone") is None


def test_open_without_create_returns_none_for_a_fresh_folder(tmp_path: Path) -> None:
    assert Manifest.open(tmp_path / "nothing", "ds", "1", create=False) is None
