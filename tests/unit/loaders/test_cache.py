"""Part files: resume only when safe, hash across resumes, never commit outside the folder."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from medcat_data.errors import UsageError
from medcat_data.loaders.cache import DestLayout, PartFile, safe_relative
from medcat_data.progress import NullProgress


def _part(layout: DestLayout, *, expected_hash: str | None = None) -> PartFile:
    return PartFile(layout, "d/f.bin", "http://h/d/f.bin", algorithm="sha256", expected_size=None,
                    expected_hash=expected_hash, progress=NullProgress())


def test_resume_continues_the_hash_of_the_earlier_bytes(tmp_path: Path) -> None:
    layout = DestLayout(tmp_path)
    data = b"0123456789" * 1000
    first = _part(layout, expected_hash=hashlib.sha256(data).hexdigest())
    assert first.open(resume=True) == 0
    first.write(memoryview(data[:4000]))
    first.close()
    second = _part(layout, expected_hash=hashlib.sha256(data).hexdigest())
    assert second.open(resume=True) == 4000
    second.write(memoryview(data[4000:]))
    assert second.digest() == hashlib.sha256(data).hexdigest()
    assert second.head == data[:64]
    second.commit(layout.final("d/f.bin"))
    assert (tmp_path / "d/f.bin").read_bytes() == data
    assert not layout.part("d/f.bin").exists()


def test_without_validator_or_expected_hash_a_part_restarts_from_zero(tmp_path: Path) -> None:
    layout = DestLayout(tmp_path)
    first = _part(layout)
    first.open(resume=True)
    first.write(b"stale")
    first.close()
    again = _part(layout)
    assert again.open(resume=True) == 0
    assert layout.part("d/f.bin").stat().st_size == 0


def test_a_resume_record_keeps_the_validator_of_long_transfers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("medcat_data.loaders.cache.RESUME_RECORD_AFTER_BYTES", 10)
    layout = DestLayout(tmp_path)
    part = _part(layout)
    part.open(resume=True)
    part.set_validator('"etag-1"')
    part.write(b"x" * 20)
    part.close()
    _, _, record_path = layout.part_paths("d/f.bin")
    record = json.loads(Path(record_path).read_text())
    assert record == {"path": "d/f.bin", "url": "http://h/d/f.bin", "validator": '"etag-1"'}
    resumed = _part(layout)
    assert resumed.open(resume=True) == 20 and resumed.validator == '"etag-1"'
    resumed.restart()
    assert resumed.offset == 0 and not Path(record_path).exists()


def test_quarantine_keeps_the_bytes_under_their_relative_path(tmp_path: Path) -> None:
    layout = DestLayout(tmp_path)
    part = _part(layout)
    part.open(resume=False)
    part.write(b"bad")
    kept = part.quarantine()
    assert kept == tmp_path / ".medcat/quarantine/d/f.bin.bad" and kept.read_bytes() == b"bad"
    again = _part(layout)
    again.open(resume=False)
    assert again.quarantine().name == "f.bin.bad.1"


@pytest.mark.parametrize("bad", ["/etc/passwd", "../up", "a/../../up", ".medcat/manifest.json", "a\\b", "C:x", ""])
def test_unsafe_relative_paths_are_refused(bad: str) -> None:
    with pytest.raises(UsageError):
        safe_relative(bad)
