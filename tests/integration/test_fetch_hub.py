"""Hugging Face dataset repos through the real huggingface_hub client, from the mirror as Hub endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration


def _repo(mirror: MirrorServer, slug: str) -> dict[str, bytes]:
    root = mirror_root(mirror, f"datasets/medcat/{slug}")
    files = {
        "README.md": b"---\nlicense: cc-by-4.0\n---\n# test\n",
        "data/train-00000-of-00001.parquet": payload(1, 50_000),
        "data/test-00000-of-00001.parquet": payload(2, 20_000),
        "extra/notes.txt": b"not wanted\n",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def _source(slug: str, **changes: object) -> dict[str, object]:
    src: dict[str, object] = {"name": "hf", "kind": "hf", "repo_id": f"medcat/{slug}", "revision": "main", "subdir": "hf"}
    src.update(changes)
    return src


def test_a_hub_dataset_is_fetched_through_huggingface_hub_and_verified(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    files = _repo(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(mirror_slug, allow_patterns=["data/*", "README.md"])]))
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"] == {"hf-git": 1, "hf-lfs": 2}
    for rel in ("README.md", "data/train-00000-of-00001.parquet", "data/test-00000-of-00001.parquet"):
        assert (dest / "hf" / rel).read_bytes() == files[rel]
    assert not (dest / "hf/extra").exists()
    # The real client did the talking: tree listing, then resolve downloads at one commit.
    paths = [r.path for r in mirror.requests]
    assert any(p.startswith(f"/api/datasets/medcat/{mirror_slug}/tree/") for p in paths)
    resolves = [p for p in paths if "/resolve/" in p]
    assert resolves and all("/resolve/main/" not in p for p in resolves)  # pinned to the commit sha
    assert all("medcat-data/" in r.user_agent and "hf_hub/" in r.user_agent for r in mirror.requests if "/resolve/" in r.path)
    manifest = json.loads((dest / ".medcat/manifest.json").read_text())
    assert manifest["files"]["hf/data/train-00000-of-00001.parquet"]["verified_by"] == "hf-lfs"
    mirror.clear_log()
    code, out, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0 and json.loads(out)["present"] == 3


def test_hf_endpoint_is_honoured_without_a_mirror(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _repo(mirror, mirror_slug)
    monkeypatch.setenv("HF_ENDPOINT", mirror.url)
    code, out, err = run_cli("fetch", f"hf:medcat/{mirror_slug}", "--dest", str(tmp_path / "d"), "--only", "README.md", "--json")
    assert code == 0, err
    assert json.loads(out)["downloaded"] == 1
    assert (tmp_path / "d/README.md").exists()


def test_a_gated_repo_without_token_explains_how_to_get_access(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _repo(mirror, mirror_slug)
    (mirror.root / f"datasets/medcat/{mirror_slug}/.gated").write_text("")
    code, _, err = run_cli("fetch", f"hf:medcat/{mirror_slug}", "--mirror", mirror.url, "--dest", str(tmp_path / "d"))
    assert code == 1
    assert "access denied" in err and "accept the terms on the Hub page" in err
    mirror.hf_tokens.add("hf_testtoken_abcdef123")
    monkeypatch.setenv("HF_TOKEN", "hf_testtoken_abcdef123")
    code, out, err = run_cli("fetch", f"hf:medcat/{mirror_slug}", "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert "hf_testtoken_abcdef123" not in out + err


def test_a_corrupted_hub_file_is_caught_by_its_lfs_sha256(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from medcat_data.mirror.server import Fault

    _repo(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(mirror_slug, include=["data/train-*"])]))
    mirror.add_fault(Fault("/datasets/medcat/*/resolve/*/data/train-*", kind="corrupt", times=None))
    code, out, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1
    (failed,) = json.loads(out)["failed"]
    assert failed["status"] == "quarantined" and "sha256 mismatch" in failed["reason"]
    assert not (tmp_path / "d/hf/data/train-00000-of-00001.parquet").exists()
