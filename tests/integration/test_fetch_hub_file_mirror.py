"""Hugging Face sources from a manual download: ``--mirror file://DIR`` reads the repo's files from DIR.

No server is involved (a local folder is the whole point); the engine, manifest and verifier are
the real ones. Files have no Hub ids there, so they are checked by size and recorded by sha256
(trust on first use), and the report says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration


def _download(folder: Path) -> dict[str, bytes]:
    """Lay out a repo as `hf download --local-dir` leaves it, with its hidden cache folder."""
    files = {
        "README.md": b"---\nlicense: mit\n---\n# manual\n",
        ".gitattributes": b"*.jsonl filter=lfs diff=lfs merge=lfs -text\n",
        "puretext.jsonl": payload(3, 30_000),
        "sub dir/compound_image.jsonl": payload(4, 12_000),
    }
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    (folder / ".cache/huggingface/download").mkdir(parents=True)
    (folder / ".cache/huggingface/download/puretext.jsonl.metadata").write_text("abc\n1\n")
    return files


def _source(**changes: object) -> dict[str, object]:
    src: dict[str, object] = {"name": "hf", "kind": "hf", "repo_id": "medcat/manual", "revision": "main", "subdir": "hf"}
    src.update(changes)
    return src


def test_a_manually_downloaded_repo_is_fetched_from_a_file_mirror_by_trust_on_first_use(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    download = tmp_path / "my download"
    files = _download(download)
    ident = dataset_id("hub-file-mirror")
    use_registry(monkeypatch, tmp_path, entry(ident, [_source()]))
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", download.as_uri(), "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"] == {"tofu": len(files)}
    assert report["trust_on_first_use"] == len(files)
    for rel, data in files.items():
        assert (dest / "hf" / rel).read_bytes() == data
    assert not (dest / "hf/.cache").exists(), "the client's hidden cache folder is not a repo file"
    manifest = json.loads((dest / ".medcat/manifest.json").read_text())
    record = manifest["files"]["hf/puretext.jsonl"]
    assert record["verified_by"] == "tofu" and record["size"] == len(files["puretext.jsonl"])

    code, out, err = run_cli("verify", ident, "--dest", str(dest), "--json")
    assert code == 0, err
    code, out, _ = run_cli("fetch", ident, "--mirror", download.as_uri(), "--dest", str(dest), "--json")
    assert code == 0 and json.loads(out)["present"] == len(files)


def test_a_file_mirror_honours_the_sources_allow_patterns(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    download = tmp_path / "dl"
    _download(download)
    ident = dataset_id("hub-file-mirror-allow")
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(allow_patterns=["*.jsonl", "**/*.jsonl"])]))
    code, out, err = run_cli("fetch", ident, "--mirror", download.as_uri(), "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert sorted(p.relative_to(tmp_path / "d/hf").as_posix() for p in (tmp_path / "d/hf").rglob("*") if p.is_file()) == [
        "puretext.jsonl",
        "sub dir/compound_image.jsonl",
    ]


def test_a_missing_download_folder_says_how_to_fill_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident = dataset_id("hub-file-mirror-missing")
    use_registry(monkeypatch, tmp_path, entry(ident, [_source()]))
    missing = tmp_path / "nowhere"
    code, _, err = run_cli("fetch", ident, "--mirror", missing.as_uri(), "--dest", str(tmp_path / "d"))
    assert code == 2
    assert "is not a folder" in err and "hf download medcat/manual --repo-type dataset --local-dir DIR" in err


def test_a_real_hf_download_local_dir_is_verified_against_the_hub_ids_it_recorded(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`hf download --local-dir` (the real client, from the loopback Hub) keeps each file's ETag; a file
    changed afterwards with its old mtime put back is caught by that id, not trusted."""
    import os

    from huggingface_hub import snapshot_download

    from tests.fixtures.loopback import mirror_root

    repo = mirror_root(mirror, f"datasets/medcat/{mirror_slug}")
    files = {"README.md": b"# small\n", "data/big.jsonl": payload(5, 40_000), "data/small.jsonl": b'{"a": 1}\n'}
    for rel, data in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    download = tmp_path / "dl"
    snapshot_download(f"medcat/{mirror_slug}", repo_type="dataset", local_dir=download, endpoint=mirror.url)
    assert (download / ".cache/huggingface/download/data/big.jsonl.metadata").is_file()

    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(repo_id=f"medcat/{mirror_slug}")]))
    code, out, err = run_cli("fetch", ident, "--mirror", download.as_uri(), "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"] == {"hf-lfs": 1, "hf-git": 2} and report["trust_on_first_use"] == 0

    tampered = download / "data/big.jsonl"
    stamp = tampered.stat().st_mtime
    tampered.write_bytes(payload(6, 40_000))
    os.utime(tampered, (stamp, stamp))
    code, out, _ = run_cli("fetch", ident, "--mirror", download.as_uri(), "--dest", str(tmp_path / "d2"), "--json")
    assert code == 1
    (failed,) = json.loads(out)["failed"]
    assert failed["path"] == "hf/data/big.jsonl" and "sha256 mismatch" in failed["reason"]
