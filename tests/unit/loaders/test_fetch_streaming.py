"""Fetch memory does not grow with the listing: the plan streams, workers pull a bounded window,
and a re-run of present files is a stat per file.

A fake transport stands in for a source that lists 100,000 files: serving that many over loopback
would make the test slow and would test the server, not the engine. Everything else (the engine,
the plan store, the manifest, part files, commits) is real. No timing is measured here; memory is
checked structurally, by counting the ``RemoteFile`` objects alive at chosen moments.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import engine as engine_module
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.engine import Engine, FetchReport
from medcat_data.loaders.options import FetchOptions
from medcat_data.loaders.plan import RemoteFile
from tests.unit.loaders.entries import entry, physionet_source, use_registry

LISTED = 100_000
BODY = b"x"


def _live_remote_files() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is RemoteFile)


def _path(i: int) -> str:
    return f"files/p{i // 1000:03d}/f{i:06d}.dat"


class _Channel:
    def __init__(self, on_download: Callable[[RemoteFile], bytes]) -> None:
        self.on_download = on_download

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        part.write(self.on_download(remote))

    def close(self) -> None:
        pass


class _ListingTransport:
    """Yields ``listed`` files one at a time and notes how many ``RemoteFile``s are alive meanwhile."""

    def __init__(self, source: Any, on_download: Callable[[RemoteFile], bytes], listed: int, lazily: bool) -> None:
        self.source = source
        self.on_download = on_download
        self.listed = listed
        self.lazily = lazily
        self.alive_while_listing: list[int] = []
        self.channels_opened = 0

    def list_files(self, fetch_index: object) -> Iterable[RemoteFile]:
        """Yield the files (``lazily``) or return them as a list, as most transports do."""
        return self._yield() if self.lazily else list(self._yield())

    def _yield(self) -> Iterator[RemoteFile]:
        digest = hashlib.sha256(BODY).hexdigest()
        for i in range(self.listed):
            if i in (self.listed // 2, self.listed - 1):
                self.alive_while_listing.append(_live_remote_files())
            yield RemoteFile(_path(i), f"fake://{i}", self.source.name, size=len(BODY), hash=digest, verified_by="sha256sums")

    def open_channel(self) -> _Channel:
        self.channels_opened += 1
        return _Channel(self.on_download)

    def access_help(self) -> str:
        return ""


@pytest.fixture
def fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[FetchReport, _ListingTransport]]:
    use_registry(monkeypatch, tmp_path, entry("ft-streaming", [physionet_source("streaming")]))
    resolved = resolve("ft-streaming", load_registry())

    def run(
        on_download: Callable[[RemoteFile], bytes], listed: int = 5_000, lazily: bool = False, **options: Any
    ) -> tuple[FetchReport, _ListingTransport]:
        made: list[_ListingTransport] = []

        def make(source: Any, ctx: Any) -> _ListingTransport:
            made.append(_ListingTransport(source, on_download, listed, lazily))
            return made[-1]

        monkeypatch.setattr(engine_module, "make_transport", make)
        opts = FetchOptions(dest=tmp_path / "d", jobs=4, processes=1, **options)
        return Engine(resolved, opts).run(), made[0]

    return run


def test_a_listing_streams_into_the_plan_and_workers_hold_only_a_window(fetch: Callable[..., Any]) -> None:
    alive_while_downloading: list[int] = []

    def download(remote: RemoteFile) -> bytes:
        if remote.path == _path(1000):
            alive_while_downloading.append(_live_remote_files())
        return BODY

    report, transport = fetch(download, listed=LISTED, lazily=True, limit=2000)
    assert report.ok and report.selected == 2000 and report.downloaded == 2000
    # Listing: the engine stored what it had been given before asking for more.
    assert len(transport.alive_while_listing) == 2 and max(transport.alive_while_listing) < LISTED // 20
    # Transfers: the files still to do are read from the plan as workers free up.
    assert alive_while_downloading and alive_while_downloading[0] < 200


def test_a_rerun_of_present_files_is_stat_only_and_never_downloads(fetch: Callable[..., Any], tmp_path: Path) -> None:
    fetch(lambda remote: BODY, limit=300)

    def refuse(remote: RemoteFile) -> bytes:
        raise AssertionError(f"{remote.path} was downloaded again")

    report, transport = fetch(refuse, limit=300)
    assert report.ok and report.present == 300 and report.downloaded == 0
    assert report.verification["sha256sums"] == 300
    assert transport.channels_opened == 1  # the planning channel only: no worker connects


def test_a_changed_mtime_means_a_rehash_and_changed_bytes_a_new_download(fetch: Callable[..., Any], tmp_path: Path) -> None:
    fetch(lambda remote: BODY, limit=3)
    dest = tmp_path / "d"
    touched, damaged = dest / _path(0), dest / _path(1)
    os.utime(touched, ns=(1, 1))  # same bytes, other mtime
    damaged.write_bytes(b"y")  # same size, other bytes: size alone would call it present
    downloaded: list[str] = []

    def note(remote: RemoteFile) -> bytes:
        downloaded.append(remote.path)
        return BODY

    report, _ = fetch(note, limit=3)
    assert report.ok and downloaded == [_path(1)] and report.present == 2
    assert damaged.read_bytes() == BODY


def test_only_and_limit_select_from_the_streamed_listing_in_path_order(fetch: Callable[..., Any]) -> None:
    report, _ = fetch(lambda remote: BODY, lazily=True, only=("files/p003/*",), limit=5, dry_run=True)
    assert [f["path"] for f in report.planned] == [_path(3_000 + i) for i in range(5)]
    assert {f["state"] for f in report.planned} == {"missing"}
