"""A fetch reports through the one progress protocol: files and bytes in, one line per file, one finish."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, fetch
from medcat_data.mirror.server import Fault, MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, physionet_source, use_registry, write_physionet_project

pytestmark = pytest.mark.integration


class RecordingProgress:
    """A Progress that remembers every call except byte counts, which it sums (a fake of the CLI's bar)."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.bytes = 0
        self._lock = threading.Lock()

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        self.calls.append(("start", total, total_bytes))

    def advance(self, n_bytes: int) -> None:
        with self._lock:
            self.bytes += n_bytes

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        with self._lock:
            self.calls.append(("item_done", name, items, errors))

    def finish(self) -> None:
        self.calls.append(("finish",))


def test_a_fetch_reports_every_file_with_its_failure_and_finishes_once(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"d/{i}.bin": payload(i, 5_000) for i in range(3)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)]))
    mirror.add_fault(Fault(f"/files/{mirror_slug}/1.0.0/d/1.bin", kind="corrupt", times=None))
    progress = RecordingProgress()
    report = fetch(resolve(ident, load_registry()), FetchOptions(dest=tmp_path / "d", mirror=mirror.url), progress)
    assert [f.path for f in report.failed] == ["d/1.bin"]
    assert progress.calls[0] == ("start", 3, None)  # PhysioNet's SHA256SUMS.txt lists no sizes
    assert sorted(c[1:] for c in progress.calls[1:-1]) == [("d/0.bin", 1, 0), ("d/1.bin", 1, 1), ("d/2.bin", 1, 0)]
    assert progress.calls[-1] == ("finish",)
    assert progress.bytes >= 2 * 5_000


def test_the_progress_total_of_a_physionet_fetch_is_the_published_size(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"d/{i}.bin": payload(i, 5_000) for i in range(3)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)], size={"bytes": 15_000, "approximate": ["bytes"]}))
    progress = RecordingProgress()
    report = fetch(resolve(ident, load_registry()), FetchOptions(dest=tmp_path / "d", mirror=mirror.url), progress)
    assert report.ok and progress.calls[0] == ("start", 3, 15_000)
