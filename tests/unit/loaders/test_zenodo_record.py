"""Zenodo record API as a checksum source: parsing ``files[]``, matching file URLs without their query
string, the registry rule (md5 only), the mirror's record document, and a URL list fetched and verified
against it over loopback (``zenodo-md5``), with a file the record does not list left to trust on first use."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from pydantic import ValidationError

from medcat_data.catalog.schema import ChecksumFile, PinnedFile, UrlListSource
from medcat_data.errors import FetchError
from medcat_data.loaders.transports.urls import PublishedHash, parse_zenodo_record, pinned_remote, zenodo_files_base
from medcat_data.mirror.server import MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

M1, M2 = "0123456789abcdef" * 2, "fedcba9876543210" * 2


def test_a_record_yields_each_files_key_md5_size_and_content_link() -> None:
    record = {"id": 7, "files": [
        {"key": "a b.csv", "size": 12, "checksum": f"md5:{M1.upper()}", "links": {"self": "https://zenodo.org/api/records/7/files/a%20b.csv/content"}},
        {"key": "b.zip", "size": 3, "checksum": f"md5:{M2}"},
        {"key": "c.bin", "size": 1, "checksum": "sha256:" + "0" * 64},
        {"key": "d.bin", "checksum": "md5:nothex"},
    ]}
    files = list(parse_zenodo_record(json.dumps(record), "x"))
    assert [(f.key, f.md5, f.size) for f in files] == [("a b.csv", M1, 12), ("b.zip", M2, 3)]
    assert files[0].link == "https://zenodo.org/api/records/7/files/a%20b.csv/content" and files[1].link is None


def test_the_invenio_rdm_files_entries_mapping_is_read_too() -> None:
    record = {"files": {"enabled": True, "entries": {"b.zip": {"key": "b.zip", "size": 3, "checksum": f"md5:{M2}"}}}}
    assert [(f.key, f.md5, f.size) for f in parse_zenodo_record(json.dumps(record), "x")] == [("b.zip", M2, 3)]


@pytest.mark.parametrize(("text", "why"), [("<html>login</html>", "not JSON"), ('{"hits": []}', "no files list"), ("[]", "no files list")])
def test_a_document_that_is_not_a_record_is_a_fetch_error_naming_it(text: str, why: str) -> None:
    with pytest.raises(FetchError, match=rf"ds: https://zenodo.org/api/records/7 is not a Zenodo record \({why}"):
        list(parse_zenodo_record(text, "ds: https://zenodo.org/api/records/7"))


def test_the_files_base_is_the_records_download_path() -> None:
    assert zenodo_files_base("https://zenodo.org/api/records/10821435") == "https://zenodo.org/records/10821435/files/"
    assert zenodo_files_base("https://sandbox.zenodo.org/api/records/5/") == "https://sandbox.zenodo.org/records/5/files/"


def test_a_file_url_matches_the_record_without_its_query_string_and_takes_its_size() -> None:
    source = UrlListSource(name="zenodo", kind="urls", subdir="z", files=[
        PinnedFile(url="https://zenodo.org/records/7/files/a%20b.csv?download=1", path="a b.csv")])
    published = {"https://zenodo.org/records/7/files/a b.csv": PublishedHash("md5", M1, "zenodo-md5", 12)}
    remote = pinned_remote(source, source.files[0], "http://127.0.0.1:9", published)
    assert (remote.hash, remote.algorithm, remote.verified_by, remote.size) == (M1, "md5", "zenodo-md5", 12)
    assert remote.url == "http://127.0.0.1:9/records/7/files/a%20b.csv?download=1"
    pinned = PinnedFile(url="https://zenodo.org/records/7/files/a%20b.csv?download=1", path="a b.csv", sha256="ab" * 32)
    assert pinned_remote(source, pinned, None, published).verified_by == "pinned"


def test_a_zenodo_record_checksum_source_must_be_md5() -> None:
    with pytest.raises(ValidationError, match="expected algorithm md5, got sha256"):
        ChecksumFile(url="https://zenodo.org/api/records/7", algorithm="sha256", format="zenodo-record")


def _record_id(slug: str) -> str:
    return str(int(hashlib.sha1(slug.encode()).hexdigest()[:8], 16))


@pytest.mark.integration
def test_the_mirror_serves_a_record_document_with_the_files_real_md5_and_size(mirror: MirrorServer, mirror_slug: str) -> None:
    record = _record_id(mirror_slug)
    folder = mirror_root(mirror, f"records/{record}/files")
    data = payload(3, 5000)
    (folder / "x y.bin").write_bytes(data)
    with urlopen(f"{mirror.url}/api/records/{record}") as response:
        document = json.load(response)
    (item,) = document["files"]
    assert item["key"] == "x y.bin" and item["size"] == 5000 and item["checksum"] == f"md5:{hashlib.md5(data).hexdigest()}"
    assert document["links"]["html"] == f"https://zenodo.org/records/{record}"
    with urlopen(item["links"]["self"].replace("https://zenodo.org", mirror.url)) as response:
        assert response.read() == data
    with pytest.raises(HTTPError, match="404"):
        urlopen(f"{mirror.url}/api/records/1{record}")


@pytest.mark.integration
def test_a_url_list_is_verified_against_the_zenodo_record(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = _record_id(mirror_slug)
    folder = mirror_root(mirror, f"records/{record}/files")
    files = {"data.csv": b"id,label\n1,a\n", "images.zip": payload(4, 20_000)}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    extra = mirror_root(mirror, f"extra/{mirror_slug}")
    (extra / "README.txt").write_bytes(b"not in the record\n")
    ident = dataset_id(mirror_slug)
    source = {
        "name": "zenodo", "kind": "urls",
        "files": [{"url": f"https://zenodo.org/records/{record}/files/{n}?download=1", "path": n} for n in files]
        + [{"url": f"https://example.org/extra/{mirror_slug}/README.txt", "path": "README.txt"}],
        "checksum_files": [{"url": f"https://zenodo.org/api/records/{record}", "algorithm": "md5", "format": "zenodo-record"}],
    }
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"] == {"zenodo-md5": 2, "tofu": 1}
    manifest = json.loads((tmp_path / "d/.medcat/manifest.json").read_text())
    assert manifest["files"]["images.zip"]["hash"] == hashlib.md5(files["images.zip"]).hexdigest()
    assert manifest["files"]["images.zip"]["verified_by"] == "zenodo-md5"
