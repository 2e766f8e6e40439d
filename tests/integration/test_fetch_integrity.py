"""Wrong bytes never reach a final path: retried once from zero, then quarantined and reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcat_data.mirror.server import Fault, MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, physionet_source, run_cli, use_registry, write_physionet_project

pytestmark = pytest.mark.integration


@pytest.fixture
def project(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    files = {"x/one.bin": payload(1, 40_000), "x/two.bin": payload(2, 40_000)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)]))
    return ident, files, f"/files/{mirror_slug}/1.0.0/x/one.bin"


def _fetch(ident: str, mirror: MirrorServer, dest: Path) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    return code, json.loads(out), err


def test_corrupt_once_is_fetched_again_from_zero_and_recovers(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files, one = project
    mirror.add_fault(Fault(one, kind="corrupt", times=1))
    code, report, err = _fetch(ident, mirror, tmp_path / "d")
    assert code == 0, err
    assert report["ok"] and report["downloaded"] == 2
    gets = [r for r in mirror.requests if r.path == one]
    assert len(gets) == 2 and "range" not in gets[1].headers
    assert (tmp_path / "d/x/one.bin").read_bytes() == files["x/one.bin"]
    assert not (tmp_path / "d/.medcat/quarantine").exists()


def test_corrupt_always_is_quarantined_reported_and_exits_non_zero(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files, one = project
    mirror.add_fault(Fault(one, kind="corrupt", times=None))
    code, report, err = _fetch(ident, mirror, tmp_path / "d")
    assert code == 1
    (failed,) = report["failed"]
    assert failed["path"] == "x/one.bin" and failed["status"] == "quarantined"
    assert "sha256 mismatch for x/one.bin" in failed["reason"] and ".medcat/quarantine/x/one.bin.bad" in failed["reason"]
    assert "1 of 2 file(s) not present and verified" in err
    assert not (tmp_path / "d/x/one.bin").exists()
    kept = tmp_path / "d/.medcat/quarantine/x/one.bin.bad"
    assert kept.read_bytes() == bytes(255 - b for b in files["x/one.bin"])
    assert (tmp_path / "d/x/two.bin").read_bytes() == files["x/two.bin"]
    manifest = json.loads((tmp_path / "d/.medcat/manifest.json").read_text())
    assert manifest["files"]["x/one.bin"]["status"] == "failed"
    code, out, _ = run_cli("verify", ident, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1 and json.loads(out)["missing"] == ["x/one.bin"]
    # Upstream is healthy again: the next run repairs the file.
    mirror.clear_faults()
    code, report, err = _fetch(ident, mirror, tmp_path / "d")
    assert code == 0, err and report["downloaded"] == 1 and report["present"] == 1


def test_a_file_missing_upstream_is_reported_and_the_rest_is_fetched(project, mirror, tmp_path, mirror_slug) -> None:  # type: ignore[no-untyped-def]
    ident, files, one = project
    (mirror.root / one.lstrip("/")).unlink()
    code, report, _ = _fetch(ident, mirror, tmp_path / "d")
    assert code == 1
    assert report["failed"] == [{"path": "x/one.bin", "status": "failed", "reason": "HTTP 404"}]
    assert report["downloaded"] == 1
    assert not list((tmp_path / "d/.medcat/partial").glob("*.part"))


def test_what_verify_full_finds_corrupt_the_next_fetch_transfers_again(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Same-size damage keeping its mtime (bit rot) passes the stat-only re-run; verify --full finds it,
    and its advice ("run medcat fetch") then works instead of looping."""
    import os

    ident, files, one = project
    dest = tmp_path / "d"
    assert _fetch(ident, mirror, dest)[0] == 0
    damaged = dest / "x/one.bin"
    st = damaged.stat()
    data = bytearray(damaged.read_bytes())
    data[100] ^= 0xFF
    damaged.write_bytes(bytes(data))
    os.utime(damaged, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, out, err = run_cli("verify", ident, "--dest", str(dest), "--full", "--json")
    assert code != 0 and json.loads(out)["corrupt"] == ["x/one.bin"]
    code, out, _ = run_cli("verify", ident, "--dest", str(dest), "--json")  # the plain check now knows it too
    assert code != 0 and json.loads(out)["corrupt"] == ["x/one.bin"]
    mirror.clear_log()
    code, report, err = _fetch(ident, mirror, dest)
    assert code == 0 and report["downloaded"] == 1, err
    assert [r.path for r in mirror.requests if r.path == one] == [one]
    assert damaged.read_bytes() == files["x/one.bin"]
    assert run_cli("verify", ident, "--dest", str(dest), "--full")[0] == 0
