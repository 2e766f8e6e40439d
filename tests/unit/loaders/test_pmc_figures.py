"""A pmc source with ``figures``: only the figures that records name are fetched, from the bucket's
per-article layout, md5-verified; never a package. Real engine, real loopback mirror (its S3
listing and request log); the registry entry is written by the test."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from collections.abc import Iterator

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, fetch
from medcat_data.loaders.transports.pmc_figures import read_record_ids
from medcat_data.mirror.server import MirrorServer
from tests.unit.loaders.entries import entry, write_registry

BASE = 880000000


def _article(root: Path, number: int, figures: list[str], others: list[str]) -> None:
    """Write one article version: XML, PDF and media files, and its metadata record listing their md5."""
    prefix = f"PMC{number}.1"
    urls = []
    for name in [*figures, *others, f"{prefix}.xml", f"{prefix}.pdf"]:
        data = f"{prefix}/{name}".encode() * 50
        (root / prefix).mkdir(parents=True, exist_ok=True)
        (root / prefix / name).write_bytes(data)
        urls.append(f"s3://pmc-oa-opendata/{prefix}/{name}?md5={hashlib.md5(data).hexdigest()}")
    meta = {"pmcid": f"PMC{number}", "version": 1, "license_code": "CC BY", "xml_url": urls[-2], "pdf_url": urls[-1],
            "media_urls": urls[:-2]}
    (root / "metadata").mkdir(exist_ok=True)
    (root / "metadata" / f"{prefix}.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.fixture
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MirrorServer]:
    """A mirror of its own: the bucket is served at the mirror root, and the shared one is listed whole by pmc-oa."""
    with MirrorServer(tmp_path_factory.mktemp("pmc-figures-mirror")) as server:
        yield server


@pytest.fixture
def figure_set(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    offset = int(hashlib.sha1(mirror_slug.encode()).hexdigest()[:5], 16) * 10
    a, b, c = BASE + offset, BASE + offset + 1, BASE + offset + 2
    _article(mirror.root, a, ["a-f0001.jpg", "a-f0002.jpg"], ["a-f0003.jpg", "a-f0001.gif"])
    _article(mirror.root, b, ["b-g001.jpg"], ["b-g002.jpg"])
    # c is not in the bucket (left the OA subset); b's second figure named below is not listed by b.
    host = mirror.root / mirror_slug
    host.mkdir()
    lines = [
        {"pmc_tar_url": f"https://ftp.example/oa_package/00/00/PMC{a}.tar.gz", "image_file_path": f"PMC{a}/a-f0001.jpg", "pair_id": "1_F1"},
        {"pmc_tar_url": "x", "image_file_path": f"PMC{a}/a-f0002.jpg", "pair_id": "1_F2"},
        {"pmc_tar_url": "x", "image_file_path": f"PMC{b}/b-g001.jpg", "pair_id": "2_F1"},
        {"pmc_tar_url": "x", "image_file_path": f"PMC{b}/b-missing.jpg", "pair_id": "2_F9"},
        {"pmc_tar_url": "x", "image_file_path": f"PMC{c}/c-f1.jpg", "pair_id": "3_F1"},
    ]
    (host / "urls.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    small = [{"id": "1_F1", "image": "1_F1.jpg", "conversations": [{"from": "human", "value": "<image>\nWhat?"}]},
             {"id": "2_F1", "image": "2_F1.jpg", "conversations": []}]
    big: list[dict[str, Any]] = [{"id": p, "image": f"{p}.jpg", "conversations": []} for p in ("1_F2", "2_F9", "3_F1", "9_F9")]
    (host / "small.json").write_text(json.dumps(small), encoding="utf-8")
    (host / "big.json").write_text(json.dumps(big), encoding="utf-8")
    base = f"https://files.example.org/{mirror_slug}"
    sources: list[dict[str, Any]] = [
        {"name": "json", "kind": "urls", "files": [{"url": f"{base}/{n}", "path": n} for n in ("small.json", "big.json", "urls.jsonl")]},
        {"name": "figures", "kind": "pmc", "companion": True, "subdir": "pmc",
         "figures": {"source": "json", "url_list": "urls.jsonl", "records": ["small.json", "big.json"]}},
    ]
    dataset_id = f"figs-{mirror_slug}"[:60]
    monkeypatch.setenv("MEDCAT_REGISTRY", str(write_registry(tmp_path, entry(dataset_id, sources))))
    return dataset_id


def _bucket_gets(mirror: MirrorServer) -> list[str]:
    return sorted(r.path for r in mirror.requests if r.method == "GET" and r.path.startswith("/PMC"))


def test_only_the_figures_of_the_records_are_fetched_never_packages(mirror: MirrorServer, figure_set: str, tmp_path: Path) -> None:
    resolved = resolve(figure_set, load_registry())
    report = fetch(resolved, FetchOptions(mirror=mirror.url, dest=tmp_path / "d", jobs=2))
    assert report.ok
    a = sorted({p.split("/")[1] for p in _bucket_gets(mirror)})
    assert len(a) == 2
    got = sorted(p.rsplit("/", 1)[-1] for p in _bucket_gets(mirror))
    assert got == ["a-f0001.jpg", "a-f0002.jpg", "b-g001.jpg"]  # no .xml/.pdf, no other figure, no thumbnail
    assert not any(r.path.endswith((".tar.gz", ".tgz")) for r in mirror.requests)
    assert (tmp_path / "d" / "pmc" / f"{a[0]}" / "a-f0001.jpg").is_file()
    assert (tmp_path / "d" / "pmc" / "metadata" / f"{a[0]}.json").is_file()


def test_only_and_limit_select_records_and_so_figures(mirror: MirrorServer, figure_set: str, tmp_path: Path) -> None:
    resolved = resolve(figure_set, load_registry())
    report = fetch(resolved, FetchOptions(mirror=mirror.url, dest=tmp_path / "d", only=("small.json",)))
    assert report.ok
    assert sorted(p.rsplit("/", 1)[-1] for p in _bucket_gets(mirror)) == ["a-f0001.jpg", "b-g001.jpg"]
    mirror.clear_log()
    report = fetch(resolved, FetchOptions(mirror=mirror.url, dest=tmp_path / "e", only=("big.json",), limit=1))
    assert report.ok
    assert [p.rsplit("/", 1)[-1] for p in _bucket_gets(mirror)] == ["a-f0002.jpg"]


def test_record_ids_are_read_without_loading_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    # An object of arrays (LLaVA-Med's fig-captions file); a key inside a string value is no key; escapes decode.
    path.write_text('{"ct": [{"pair_id": "1_F1", "text": "a \\"pair_id\\": \\"no\\""}], "mri": [{"pair_id": "2_F\\u0031"}]}')
    assert read_record_ids(path, ["id", "pair_id"]) == ["1_F1", "2_F1"]
    assert read_record_ids(path, ["id", "pair_id"], limit=1) == ["1_F1"]
