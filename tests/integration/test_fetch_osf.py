"""OSF project storages through the OSF API v2 subset of the mirror: listing, hashes, faults, local copies."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from medcat_data.loaders.transports.osf import clean_path
from medcat_data.mirror.server import Fault, MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration


def _project(slug: str) -> str:
    """An OSF-like project id (short, alphanumeric) unique to the test."""
    return "p" + hashlib.sha1(slug.encode()).hexdigest()[:8]


def _storage(root: Path) -> dict[str, bytes]:
    """Write a storage with spaces in names, a sub-folder of 23 files (three API pages) and a nested folder."""
    files = {
        "Data Public.json": b'[{"qid": 1}]\n',
        "Readme.docx": payload(1, 3_000),
        "Image Folder/nested/deep one.jpg": payload(2, 500),
    }
    files.update({f"Image Folder/img{i:02d}.jpg": payload(10 + i, 200 + i) for i in range(23)})
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _register(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, slug: str, **changes: object) -> str:
    ident = dataset_id(slug)
    source: dict[str, object] = {"name": "osf", "kind": "osf", "project": _project(slug), "subdir": "osf"}
    source.update(changes)
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    return ident


def test_a_storage_is_listed_page_by_page_and_verified_with_osf_hashes(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(mirror_slug)
    files = _storage(mirror_root(mirror, f"osf/{project}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug)
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"] == {"osf-meta": len(files)}
    for rel, data in files.items():
        assert (dest / "osf" / rel).read_bytes() == data
    # The folder of 24 entries took three API pages; files came through download links + redirects.
    paths = [r.path for r in mirror.requests]
    pages = [r for r in mirror.requests if r.path.startswith(f"/v2/nodes/{project}/files/osfstorage/")]
    assert sorted(r.query.get("page", "1") for r in pages).count("3") == 1
    assert sum(p.startswith("/download/") for p in paths) == len(files)
    assert sum(p.startswith(f"/v1/resources/{project}/providers/osfstorage/") for p in paths) == len(files)
    manifest = json.loads((dest / ".medcat/manifest.json").read_text())
    assert manifest["files"]["osf/Image Folder/nested/deep one.jpg"]["verified_by"] == "osf-meta"
    mirror.clear_log()
    code, out, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0 and json.loads(out)["present"] == len(files)


def test_include_globs_and_only_select_by_storage_path(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _storage(mirror_root(mirror, f"osf/{_project(mirror_slug)}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug, include=["Image Folder/*", "*.json"])
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--only", "Image Folder/img0*", "--json")
    assert code == 0, err
    got = sorted(p.relative_to(dest / "osf").as_posix() for p in (dest / "osf").rglob("*") if p.is_file())
    assert got == [f"Image Folder/img{i:02d}.jpg" for i in range(10)]


def test_wrong_bytes_are_caught_by_the_sha256_of_the_file_metadata(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(mirror_slug)
    _storage(mirror_root(mirror, f"osf/{project}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug, include=["Readme.docx"])
    mirror.add_fault(Fault(f"/v1/resources/{project}/providers/osfstorage/*", kind="corrupt", times=None))
    code, out, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1
    (failed,) = json.loads(out)["failed"]
    assert failed["status"] == "quarantined" and "sha256 mismatch" in failed["reason"]
    assert not (tmp_path / "d/osf/Readme.docx").exists()


def test_a_busy_api_is_retried_and_a_missing_project_is_explained(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(mirror_slug)
    _storage(mirror_root(mirror, f"osf/{project}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug, include=["*.json"])
    mirror.add_fault(Fault(f"/v2/nodes/{project}/files/osfstorage/", kind="status", status=503, retry_after=0, times=2))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert mirror.count(f"/v2/nodes/{project}/files/osfstorage/") == 3

    missing = _register(monkeypatch, tmp_path, mirror_slug + "-gone")
    code, _, err = run_cli("fetch", missing, "--mirror", mirror.url, "--dest", str(tmp_path / "e"))
    assert code == 1
    assert f"OSF project {_project(mirror_slug + '-gone')} (osfstorage) cannot be listed: HTTP 404" in err
    assert "Check the project id" in err


def test_a_local_copy_of_the_storage_zip_serves_as_file_mirror(mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = _storage(tmp_path / "download" / "osfstorage-archive")
    ident = _register(monkeypatch, tmp_path, mirror_slug)
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", (tmp_path / "download").as_uri(), "--dest", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"] == {"tofu": len(files)}
    assert (dest / "osf/Image Folder/nested/deep one.jpg").read_bytes() == files["Image Folder/nested/deep one.jpg"]


@pytest.mark.parametrize(
    ("materialized", "expected"),
    [
        ("/VQA_RAD Image Folder/synpic1.jpg", "VQA_RAD Image Folder/synpic1.jpg"),
        ("/a b/c.txt", "a b/c.txt"),
        ("/../escape.txt", None),
        ("/a/./b.txt", None),
        ("/folder/", None),
        ("", None),
    ],
)
def test_only_paths_inside_the_dataset_folder_are_accepted(materialized: str, expected: str | None) -> None:
    assert clean_path(materialized) == expected


def test_a_dropped_download_resumes_through_the_redirect_with_a_range(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(mirror_slug)
    files = _storage(mirror_root(mirror, f"osf/{project}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug, include=["Readme.docx"])
    mirror.add_fault(Fault(f"/v1/resources/{project}/providers/osfstorage/*", kind="drop", after_bytes=1_000))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert (tmp_path / "d/osf/Readme.docx").read_bytes() == files["Readme.docx"]
    served = [r for r in mirror.requests if r.path.startswith(f"/v1/resources/{project}/")]
    assert len(served) == 2 and served[1].headers.get("range") == "bytes=1000-"


def test_dry_run_lists_the_storage_with_sizes_and_transfers_nothing(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(mirror_slug)
    files = _storage(mirror_root(mirror, f"osf/{project}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug)
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--dry-run", "--json")
    assert code == 0, err
    planned = json.loads(out)["files"]
    assert len(planned) == len(files) and sum(f["size"] for f in planned) == sum(len(d) for d in files.values())
    assert {f["verified_by"] for f in planned} == {"osf-meta"} and {f["state"] for f in planned} == {"missing"}
    assert not any(r.path.startswith(("/download/", "/v1/resources/")) for r in mirror.requests)


def test_a_private_project_is_reported_as_refused_with_the_access_steps(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(mirror_slug)
    _storage(mirror_root(mirror, f"osf/{project}/osfstorage"))
    ident = _register(monkeypatch, tmp_path, mirror_slug)
    mirror.add_fault(Fault(f"/v2/nodes/{project}/files/osfstorage/", kind="status", status=403, times=None))
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"))
    assert code == 1
    assert "access denied (HTTP 403)" in err and "may be private" in err and "Public OSF projects need no account" in err
    assert mirror.count(f"/v2/nodes/{project}/files/osfstorage/") == 1  # refused is not retried
