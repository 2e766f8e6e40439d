"""Planning: mirrors, source selection, --only / --limit, stable order."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.errors import UsageError
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, select_sources
from medcat_data.loaders.plan_store import PlanStore
from tests.unit.loaders.entries import entry, physionet_source, write_registry


@pytest.mark.parametrize(
    ("url", "mirror", "expected"),
    [
        ("https://physionet.org/files/x/1.0/a.dcm", "http://127.0.0.1:8123", "http://127.0.0.1:8123/files/x/1.0/a.dcm"),
        ("https://physionet.org/files/x/1.0/a.dcm", "http://127.0.0.1:8123/", "http://127.0.0.1:8123/files/x/1.0/a.dcm"),
        ("https://physionet.org/files/x/1.0/a b.dcm", "file:///data/mirror", "file:///data/mirror/files/x/1.0/a b.dcm"),
        ("https://drive.google.com/uc?export=download&id=ab", "http://127.0.0.1:9", "http://127.0.0.1:9/uc?export=download&id=ab"),
        ("https://host/p", "https://mirror.example/prefix", "https://mirror.example/prefix/p"),
        ("https://host/p", None, "https://host/p"),
    ],
)
def test_mirror_replaces_scheme_host_and_port_and_keeps_the_path(url: str, mirror: str | None, expected: str) -> None:
    assert apply_mirror(url, mirror) == expected


def _files(*paths: str) -> list[RemoteFile]:
    return [RemoteFile(path=p, url=f"http://x/{p}", source="s", key=p.split("/", 1)[-1]) for p in paths]


def _select(tmp_path: Path, files: list[RemoteFile], only: tuple[str, ...], limit: int | None) -> list[RemoteFile]:
    store = PlanStore(tmp_path / ".medcat")
    try:
        store.add(iter(files), only)
        store.select(limit)
        return list(store.files())
    finally:
        store.close()


def test_selection_is_sorted_by_path_then_filtered_then_limited(tmp_path: Path) -> None:
    files = _files("b/2.dat", "a/1.dat", "b/1.dat", "c.txt")
    select_files = functools.partial(_select, tmp_path)
    assert [f.path for f in select_files(files, (), None)] == ["a/1.dat", "b/1.dat", "b/2.dat", "c.txt"]
    assert [f.path for f in select_files(files, ("b/*",), None)] == ["b/1.dat", "b/2.dat"]
    assert [f.path for f in select_files(files, ("*.dat",), 2)] == ["a/1.dat", "b/1.dat"]
    assert [f.path for f in select_files(files, ("*.txt", "a/*"), None)] == ["a/1.dat", "c.txt"]


def test_only_glob_also_matches_the_path_inside_the_source(tmp_path: Path) -> None:
    files = [RemoteFile(path="hf/data/train.parquet", url="u", source="hf", key="data/train.parquet")]
    assert _select(tmp_path, files, ("data/*",), None) == files


def test_the_plan_keeps_the_first_listing_of_a_path_and_leaves_no_file_behind(tmp_path: Path) -> None:
    first = RemoteFile(path="a.dat", url="u1", source="s", hash="ab" * 32, magic=b"\x00DICM", extract=True)
    assert _select(tmp_path, [first, RemoteFile(path="a.dat", url="u2", source="s")], (), None) == [first]
    assert list((tmp_path / ".medcat" / "plans").iterdir()) == []


def test_join_subdir() -> None:
    assert join_subdir("", "a/b") == "a/b"
    assert join_subdir("jpg/", "a/b") == "jpg/a/b"


def _resolved(tmp_path, monkeypatch, sources):  # type: ignore[no-untyped-def]
    path = write_registry(tmp_path, entry("fetchtest-sources", sources))
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    return resolve("fetchtest-sources", load_registry())


def test_companions_come_with_the_main_source_and_opt_in_sources_only_when_named(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    resolved = _resolved(
        tmp_path,
        monkeypatch,
        [
            physionet_source("main-a"),
            physionet_source("main-b", name="alt"),
            physionet_source("labels", name="labels", companion=True, subdir="labels"),
            physionet_source("extra", name="extra", companion=True, default_fetch=False, subdir="extra"),
        ],
    )
    assert [s.name for s in select_sources(resolved, None)] == ["physionet", "labels"]
    assert [s.name for s in select_sources(resolved, "alt")] == ["alt", "labels"]
    assert [s.name for s in select_sources(resolved, "extra")] == ["extra"]
    with pytest.raises(UsageError, match="no source 'nope'.*physionet, alt, labels, extra"):
        select_sources(resolved, "nope")
