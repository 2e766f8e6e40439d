"""Kaggle zips, URL lists with published md5s, Google Drive, file:// mirrors, and unsafe archives."""

from __future__ import annotations

import hashlib
import io
import json
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration


def _zip_bytes(members: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


CSV = {"csv/meta.csv": b"id,label\n1,benign\n", "jpeg/1.2.3/1-1.jpg": b"\xff\xd8\xff" + payload(3, 5000)}


def _kaggle(mirror: MirrorServer, slug: str, archive: bytes) -> dict[str, object]:
    folder = mirror_root(mirror, f"kaggle/{slug}")
    (folder / "set.zip").write_bytes(archive)
    return {"name": "kaggle", "kind": "kaggle", "owner": slug, "slug": "set", "subdir": "kaggle", "base_url": "https://www.kaggle.com"}


def test_kaggle_zip_is_fetched_with_the_api_token_and_extracted_once(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_kaggle(mirror, mirror_slug, _zip_bytes(CSV))]))
    mirror.protect("/api/v1/", "kuser", "kaggle-key-9876", user_agents=None)
    monkeypatch.setenv("KAGGLE_USERNAME", "kuser")
    monkeypatch.setenv("KAGGLE_KEY", "kaggle-key-9876")
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["extracted_archives"] == 1 and report["trust_on_first_use"] == 1
    for rel, data in CSV.items():
        assert (dest / "kaggle" / rel).read_bytes() == data
    assert mirror.requests[0].path == f"/api/v1/datasets/download/{mirror_slug}/set"
    manifest = json.loads((dest / ".medcat/manifest.json").read_text())
    assert sorted(m for m, _ in manifest["extracted"]["kaggle/set.zip"]["members"]) == sorted(f"kaggle/{p}" for p in CSV)
    (dest / "kaggle/csv/meta.csv").write_bytes(b"edited by the user\n")
    code, out, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0 and json.loads(out)["extracted_archives"] == 0  # recorded: not redone
    assert (dest / "kaggle/csv/meta.csv").read_bytes() == b"edited by the user\n"
    code, out, _ = run_cli("verify", ident, "--dest", str(dest), "--json")
    assert code == 1 and json.loads(out)["truncated"] == ["kaggle/csv/meta.csv"]


def test_kaggle_without_a_token_says_where_tokens_are_read(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_kaggle(mirror, mirror_slug, _zip_bytes(CSV))]))
    mirror.protect("/api/v1/", "kuser", "kaggle-key-9876", user_agents=None)
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"))
    assert code == 1 and "access denied (HTTP 401)" in err and "kaggle.json" in err


@pytest.mark.parametrize(
    ("members", "links", "why"),
    [
        ({"ok.txt": b"1", "../../escaped.txt": b"pwned"}, None, "escapes the target folder"),
        ({"ok.txt": b"1"}, {"leak": "../../../etc/passwd"}, "points outside the target"),
        ({"ok.txt": b"1"}, {"abs": "/etc/passwd"}, "absolute path"),
    ],
)
def test_zip_slip_and_symlink_archives_are_rejected(mirror, mirror_slug, tmp_path, monkeypatch, members, links, why) -> None:  # type: ignore[no-untyped-def]
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_kaggle(mirror, mirror_slug, _zip_bytes(members, links))]))
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 1
    (failed,) = json.loads(out)["failed"]
    assert failed["path"] == "kaggle/set.zip" and why in failed["reason"]
    assert not (dest / "kaggle/ok.txt").exists()
    assert not (tmp_path / "escaped.txt").exists() and not (dest / "escaped.txt").exists()
    assert sorted(p.name for p in (dest / "kaggle").iterdir()) == ["set.zip"]


def _ordered_zip(entries: list[tuple[str, bytes | str]]) -> bytes:
    """A zip whose members come in this order; ``str`` data makes a symbolic link to that text."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # zipfile warns on the duplicate name one case needs
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            if isinstance(data, str):
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return buf.getvalue()


_CHAIN: list[tuple[str, bytes | str]] = [("l0", "."), *[(f"l{i}", f"l{i - 1}/..") for i in range(1, 5)]]


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        # From staging (.medcat/partial/<key>.extract), l4 is the folder that holds the dataset.
        ([*_CHAIN, ("l4/escaped.txt", b"pwned")], "member 'l1' is a link that points outside"),
        ([("ok.txt", b"1"), ("d", "."), ("d/escaped.txt", b"through")], "written through the link 'd'"),
        ([("ok.txt", b"1"), ("dup.txt", b"first"), ("./dup.txt", b"second")], "appears twice"),
        ([("ok.txt", b"1"), ("set.zip", b"not the archive")], "member 'set.zip' would overwrite"),
    ],
)
def test_hostile_kaggle_zips_are_refused_and_nothing_leaves_the_dataset_folder(  # type: ignore[no-untyped-def]
    mirror, mirror_slug, tmp_path, monkeypatch, entries, why
) -> None:
    ident = dataset_id(mirror_slug)
    archive = _ordered_zip(entries)
    use_registry(monkeypatch, tmp_path, entry(ident, [_kaggle(mirror, mirror_slug, archive)]))
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 1, err
    (failed,) = json.loads(out)["failed"]
    assert failed["path"] == "kaggle/set.zip" and why in failed["reason"]
    assert sorted(p.name for p in (dest / "kaggle").iterdir()) == ["set.zip"]
    assert (dest / "kaggle/set.zip").read_bytes() == archive
    assert not (tmp_path / "escaped.txt").exists() and not (dest / "escaped.txt").exists()
    assert not list((dest / ".medcat/partial").glob("*.extract"))


def test_a_drive_zip_at_the_dataset_root_cannot_overwrite_the_manifest(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident = dataset_id(mirror_slug)
    archive = _ordered_zip([("csv/meta.csv", b"id\n1\n"), (".medcat/manifest.json", b'{"files": {}}')])
    use_registry(monkeypatch, tmp_path, entry(ident, [_drive(mirror, mirror_slug, archive)]))
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 1, err
    (failed,) = json.loads(out)["failed"]
    assert "member '.medcat' would write into" in failed["reason"] and "medcat keeps for itself" in failed["reason"]
    assert not (dest / "csv").exists()
    assert "data_clean.zip" in json.loads((dest / ".medcat/manifest.json").read_text())["files"]


def _giab(mirror: MirrorServer, slug: str, *, good_md5: bool = True) -> tuple[dict[str, object], dict[str, bytes]]:
    folder = mirror_root(mirror, f"giab/{slug}")
    files = {"truth.vcf.gz": payload(5, 30_000), "truth.bed": b"chr1\t1\t100\n"}
    lines = []
    for name, data in files.items():
        (folder / name).write_bytes(data)
        digest = hashlib.md5(data).hexdigest() if good_md5 else "0" * 32
        lines.append(f"{digest}  {name}\n")
    (folder / "md5s.txt").write_text("".join(lines))
    base = f"https://ftp-trace.ncbi.nlm.nih.gov/giab/{slug}/"
    source: dict[str, object] = {
        "name": "giab",
        "kind": "urls",
        "files": [{"url": base + name, "path": name} for name in files],
        "checksum_files": [{"url": base + "md5s.txt", "algorithm": "md5", "format": "md5sum"}],
    }
    return source, files


def test_url_list_is_verified_with_the_md5_list_published_beside_it(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source, files = _giab(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"] == {"md5-list": 2}
    manifest = json.loads((tmp_path / "d/.medcat/manifest.json").read_text())
    entry_ = manifest["files"]["truth.bed"]
    assert entry_["algorithm"] == "md5" and entry_["hash"] == hashlib.md5(files["truth.bed"]).hexdigest()
    assert entry_["url"].endswith(f"/giab/{mirror_slug}/truth.bed")


def test_url_list_with_a_wrong_published_md5_is_quarantined(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source, _ = _giab(mirror, mirror_slug, good_md5=False)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    code, out, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1
    assert {f["status"] for f in json.loads(out)["failed"]} == {"quarantined"}
    assert not (tmp_path / "d/truth.bed").exists()


def test_file_mirror_reads_a_local_copy_with_the_same_paths(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    source, files = _giab(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    code, out, err = run_cli("fetch", ident, "--mirror", f"file://{mirror.root}", "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert json.loads(out)["verification"] == {"md5-list": 2} and mirror.requests == []
    assert (tmp_path / "d/truth.vcf.gz").read_bytes() == files["truth.vcf.gz"]


def _drive(mirror: MirrorServer, slug: str, data: bytes) -> dict[str, object]:
    folder = mirror_root(mirror, f"gdrive/{slug}")
    (folder / "data_clean.zip").write_bytes(data)
    return {"name": "gdrive", "kind": "gdrive", "file_id": slug, "filename": "data_clean.zip", "magic": "504b"}


def test_drive_large_file_passes_the_confirmation_page_and_is_extracted(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    archive = _zip_bytes({"data_clean/questions/US/test.jsonl": payload(7, 150_000).hex().encode()})
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_drive(mirror, mirror_slug, archive)]))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert (tmp_path / "d/data_clean.zip").read_bytes() == archive
    assert (tmp_path / "d/data_clean/questions/US/test.jsonl").exists()
    confirmed = [r for r in mirror.requests if r.path == "/download" and r.query.get("confirm") == "t"]
    assert confirmed and confirmed[-1].status == 200


def test_drive_quota_page_fails_cleanly_and_leaves_no_file(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_drive(mirror, mirror_slug, _zip_bytes(CSV))]))
    mirror.gdrive_quota_exceeded = True
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 1
    (failed,) = json.loads(out)["failed"]
    assert "download quota exceeded" in failed["reason"] and "Retry within 24 h" in failed["reason"]
    assert "--mirror file://DIR" in failed["reason"]
    assert not (dest / "data_clean.zip").exists()
    assert not list((dest / ".medcat/partial").glob("*.part"))
    # The user downloads it by hand and points a file:// mirror at the folder.
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "data_clean.zip").write_bytes(_zip_bytes(CSV))
    code, _, err = run_cli("fetch", ident, "--mirror", f"file://{manual}", "--dest", str(dest))
    assert code == 0, err
    assert (dest / "csv/meta.csv").exists()
