"""Manifest: the SQLite store, its JSON export, migration, sharing between processes, crashes, no credentials."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from medcat_data.loaders import fetch_manifest
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


LEGACY = Path(__file__).parent / "data" / "legacy_manifest"


def _legacy_expected() -> dict[str, FileRecord]:
    """The entries an earlier version meant: manifest.json, then its journal's complete lines."""
    data = json.loads((LEGACY / "manifest.json").read_text())
    files = {p: FileRecord.from_json(d) for p, d in data["files"].items()}
    for line in (LEGACY / "manifest.log").read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            continue  # cut short by a kill
        op = json.loads(line)
        if op.pop("op") == "file":
            files[op.pop("path")] = FileRecord.from_json(op)
        else:
            files.pop(op["path"])
    return files


def test_a_json_manifest_and_journal_of_an_earlier_version_migrate_into_the_store(tmp_path: Path) -> None:
    # manifest.json and manifest.log in tests/unit/loaders/data were written by the JSON-journal
    # manifest this store replaces (the journal ends with a line a kill cut short).
    shutil.copytree(LEGACY, tmp_path, dirs_exist_ok=True)
    m = Manifest.open(tmp_path, "legacy-ds", "1.0.0")
    assert m is not None
    assert dict(m.files()) == _legacy_expected() and len(_legacy_expected()) == 4
    extraction = m.extraction("data.zip")
    assert extraction is not None and extraction.members == (("in/1.txt", 2), ("in/link", -1))
    m.close()
    assert (tmp_path / "manifest.sqlite").is_file() and not (tmp_path / "manifest.log").exists()
    (tmp_path / "manifest.json").unlink()  # the store holds everything now; the JSON is an export
    again = Manifest.open(tmp_path, "legacy-ds", "1.0.0", create=False)
    assert again is not None and dict(again.files()) == _legacy_expected()


def test_a_reformatted_json_manifest_migrates_too(tmp_path: Path) -> None:
    data = json.loads((LEGACY / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps(data, indent=2))
    m = Manifest.open(tmp_path, "legacy-ds", "1.0.0")
    assert m is not None and {p: r for p, r in m.files()} == {
        p: FileRecord.from_json(d) for p, d in data["files"].items()
    }
    assert sqlite3.connect(tmp_path / "manifest.sqlite").execute("SELECT count(*) FROM files").fetchone() == (4,)


def _in_child(work: Callable[[], None]) -> int:
    """Run ``work`` in a forked child process; return its pid (the child never returns)."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def test_two_processes_recording_at_once_lose_no_record(tmp_path: Path) -> None:
    Manifest.open(tmp_path, "ds", "1").close()  # type: ignore[union-attr]
    start = tmp_path / "go"

    def writer(name: str) -> Callable[[], None]:
        def work() -> None:
            m = Manifest.open(tmp_path, "ds", "1")
            assert m is not None
            while not start.exists():
                time.sleep(0.001)
            for i in range(1500):
                m.record(f"{name}/{i:05d}", _rec(i))
            m.close()

        return work

    pids = [_in_child(writer("one")), _in_child(writer("two"))]
    start.touch()
    assert all(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 for pid in pids)
    db = sqlite3.connect(tmp_path / "manifest.sqlite")
    assert db.execute("SELECT count(*) FROM files").fetchone() == (3000,)
    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None and m.size_of("two/01499") == 1499 and m.size_of("one/00000") == 0


def test_a_writer_killed_mid_write_leaves_a_readable_store_of_whole_batches(tmp_path: Path) -> None:
    Manifest.open(tmp_path, "ds", "1").close()  # type: ignore[union-attr]

    def endless() -> None:
        fetch_manifest.FLUSH_INTERVAL_S = 1e9  # batches by count only, so whole batches are countable
        m = Manifest.open(tmp_path, "ds", "1")
        assert m is not None
        i = 0
        while True:
            m.record(f"f/{i:08d}", _rec(i))
            i += 1

    pid = _in_child(endless)
    try:
        db = sqlite3.connect(tmp_path / "manifest.sqlite", timeout=30)
        deadline = time.monotonic() + 60
        while db.execute("SELECT count(*) FROM files").fetchone()[0] < 5 * fetch_manifest.FLUSH_RECORDS:
            assert time.monotonic() < deadline, "the child wrote nothing"
            time.sleep(0.01)
        db.close()
    finally:
        os.kill(pid, signal.SIGKILL)  # never leave the endless writer behind
        os.waitpid(pid, 0)
    m = Manifest.open(tmp_path, "ds", "1")
    assert m is not None
    rows = list(m.files())
    assert len(rows) % fetch_manifest.FLUSH_RECORDS == 0
    assert [p for p, _ in rows] == [f"f/{i:08d}" for i in range(len(rows))]
    check = sqlite3.connect(tmp_path / "manifest.sqlite").execute("PRAGMA integrity_check").fetchone()
    assert check == ("ok",)


def _open_store(args: tuple[str, float]) -> str | None:
    """Open (and so create) a manifest store at an agreed moment; return the error, if any."""
    import time

    from medcat_data.loaders.fetch_manifest import connect

    path, start = args
    while time.time() < start:
        pass
    try:
        connect(Path(path)).close()
    except Exception as err:  # noqa: BLE001 - reported back to the test
        return f"{type(err).__name__}: {err}"
    return None


def test_processes_creating_one_store_at_the_same_moment_all_open_it(tmp_path: Path) -> None:
    """Two fetches of one dataset may create its store together: switching a new file to WAL then
    answered "database is locked" to some of them (CI saw it; 10 of 320 openings here before the fix)."""
    import multiprocessing
    import time

    errors: list[str] = []
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        for round_ in range(25):
            start = time.time() + 0.15
            errors += [e for e in pool.map(_open_store, [(str(tmp_path / f"{round_}.sqlite"), start)] * 6) if e]
    assert errors == []
