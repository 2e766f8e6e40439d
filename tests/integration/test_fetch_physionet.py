"""PhysioNet projects over the loopback mirror: auth with the Wget rule, listing, subsets, re-runs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import (
    dataset_id,
    entry,
    payload,
    physionet_source,
    run_cli,
    use_registry,
    write_physionet_project,
)

pytestmark = pytest.mark.integration

PASSWORD = "pw-Fetch-123"


def _project(mirror: MirrorServer, slug: str, n: int = 6) -> dict[str, bytes]:
    files = {f"data/rec{i:02d}.dat": payload(i, 3000 + i) for i in range(n)}
    files["LICENSE.txt"] = b"licence text\n"
    write_physionet_project(mirror_root(mirror, f"files/{slug}/1.0.0"), files)
    return files


def _dest(tmp_path: Path) -> Path:
    return tmp_path / "dest"


@pytest.fixture
def project(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    files = _project(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)], access="credentialed"))
    return ident, files


def _fetch(ident: str, mirror: MirrorServer, dest: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--accept-license", *extra)


def test_basic_auth_is_sent_with_a_wget_user_agent_as_physionet_requires(project, mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident, files = project
    mirror.protect(f"/files/{mirror_slug}/", "alice", PASSWORD)  # Basic auth only from Wget/ or libwfdb/
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", PASSWORD)
    code, out, err = _fetch(ident, mirror, _dest(tmp_path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] and report["downloaded"] == len(files) and report["verification"] == {"sha256sums": len(files)}
    for rel, data in files.items():
        assert (_dest(tmp_path) / rel).read_bytes() == data
    agents = {r.user_agent for r in mirror.requests}
    assert all(a.startswith("Wget/") and "medcat-data/" in a for a in agents)
    assert all(r.status == 200 for r in mirror.requests)


def _denial_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_a_rejected_login_says_so_first_then_at_most_three_steps(project, mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ident, _ = project
    mirror.protect(f"/files/{mirror_slug}/", "alice", PASSWORD)
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "wrong-password-42")
    code, _, err = _fetch(ident, mirror, _dest(tmp_path))
    assert code == 1
    first, *steps = _denial_lines(err)
    assert "rejected user 'alice' (HTTP 401): wrong password, or the DUA is not signed." in first and len(first) < 200
    assert 1 <= len(steps) <= 3 and [s.strip()[:2] for s in steps] == [f"{i}." for i in range(1, len(steps) + 1)]
    assert "credentialed user" in steps[0] and "Sign the data use agreement" in err
    assert "PHYSIONET_USERNAME" in err and "wrong-password-42" not in err
    assert not (_dest(tmp_path) / "data").exists()


def test_a_restricted_project_asks_for_the_dua_and_no_credentialing(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _project(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)], access="restricted"))
    mirror.protect(f"/files/{mirror_slug}/", "alice", PASSWORD)
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "not-it-99")
    code, out, err = _fetch(ident, mirror, _dest(tmp_path), "--json")
    assert code == 1
    error = json.loads(out)["error"]
    assert error["type"] == "AccessDeniedError" and error["exit_code"] == 1
    assert "rejected user 'alice' (HTTP 401)" in error["message"].splitlines()[0]
    assert "credential" not in error["message"].replace("PHYSIONET", "") and "Sign the data use agreement" in error["message"]


def test_a_restricted_project_needs_accept_license(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _project(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)], access="restricted"))
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(_dest(tmp_path)))
    assert code == 1 and "--accept-license" in err and mirror.requests == []


def test_credentialed_dataset_needs_accept_license_once(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, _ = project
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(_dest(tmp_path)))
    assert code == 1 and "--accept-license" in err and mirror.requests == []
    assert _fetch(ident, mirror, _dest(tmp_path))[0] == 0
    code, _, _ = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(_dest(tmp_path)))
    assert code == 0


def test_rerun_of_a_complete_dataset_contacts_no_server(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files = project
    assert _fetch(ident, mirror, _dest(tmp_path))[0] == 0
    mirror.clear_log()
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--json")
    assert code == 0
    report = json.loads(out)
    assert report["present"] == len(files) and report["downloaded"] == 0 and report["bytes_transferred"] == 0
    assert mirror.requests == []


def test_only_limit_and_dry_run_select_a_stable_subset(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files = project
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--only", "data/*", "--limit", "2", "--dry-run", "--json")
    assert code == 0
    planned = json.loads(out)["files"]
    assert [f["path"] for f in planned] == ["data/rec00.dat", "data/rec01.dat"]
    assert {f["state"] for f in planned} == {"missing"}
    assert not (_dest(tmp_path) / "data").exists()
    assert mirror.count("/files/*/data/*") == 0
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--only", "data/*", "--limit", "2", "--json")
    assert code == 0 and json.loads(out)["downloaded"] == 2
    assert sorted(p.name for p in (_dest(tmp_path) / "data").iterdir()) == ["rec00.dat", "rec01.dat"]
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--dry-run", "--json")
    states = {f["path"]: f["state"] for f in json.loads(out)["files"]}
    assert states["data/rec00.dat"] == "present" and states["data/rec05.dat"] == "missing"


def test_dry_run_table_and_summary_for_humans(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files = project
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--dry-run")
    assert code == 0
    assert "data/rec00.dat" in out and f"{len(files)} file(s)" in out and "unknown size" in out


def test_verify_reports_missing_and_corrupt_files_and_fetch_repairs_them(project, mirror, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files = project
    dest = _dest(tmp_path)
    assert _fetch(ident, mirror, dest)[0] == 0
    assert run_cli("verify", ident, "--dest", str(dest))[0] == 0
    (dest / "data/rec01.dat").unlink()
    data = bytearray((dest / "data/rec02.dat").read_bytes())
    data[10] ^= 0xFF
    (dest / "data/rec02.dat").write_bytes(bytes(data))
    (dest / "notes.txt").write_text("mine")
    code, out, err = run_cli("verify", ident, "--dest", str(dest), "--full", "--json")
    report = json.loads(out)
    assert code == 1 and report["missing"] == ["data/rec01.dat"] and report["corrupt"] == ["data/rec02.dat"]
    assert report["extra"] == ["notes.txt"]
    code, _, _ = run_cli("verify", ident, "--dest", str(dest))  # fast check: size only
    assert code == 1
    (dest / "data/rec02.dat").unlink()
    assert _fetch(ident, mirror, dest)[0] == 0
    assert run_cli("verify", ident, "--dest", str(dest), "--full")[0] == 0


def test_file_index_lists_files_the_checksum_file_does_not_cover(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = mirror_root(mirror, f"files/{mirror_slug}/2.0.0")
    dicoms = {f"files/p10/p1000/s{i}/img{i}.dcm": b"\0" * 128 + b"DICM" + payload(i, 500) for i in range(3)}
    index = "subject_id,path\n" + "".join(f"1000,{p}\n" for p in dicoms)
    write_physionet_project(root, {"cxr-record-list.csv.gz": gzip.compress(index.encode()), "LICENSE.txt": b"l\n"})
    for rel, data in dicoms.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    ident = dataset_id(mirror_slug)
    source = physionet_source(
        mirror_slug, file_index={"path": "cxr-record-list.csv.gz", "column": "path", "magic": "4449434d", "magic_offset": 128}
    )
    use_registry(monkeypatch, tmp_path, entry(ident, [source], versions=[{"version": "2.0.0"}], default_version="2.0.0"))
    code, out, err = _fetch(ident, mirror, _dest(tmp_path), "--json")
    assert code == 0, err
    report = json.loads(out)
    # LICENSE.txt is covered by SHA256SUMS.txt; the index itself is listed there too.
    assert report["verification"] == {"magic": 3, "sha256sums": 1}
    assert report["trust_on_first_use"] == 3
    manifest = json.loads((_dest(tmp_path) / ".medcat/manifest.json").read_text())
    first = manifest["files"]["files/p10/p1000/s0/img0.dcm"]
    assert first["verified_by"] == "magic" and len(first["hash"]) == 64


def test_a_file_without_the_expected_magic_is_quarantined(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = mirror_root(mirror, f"files/{mirror_slug}/1.0.0")
    write_physionet_project(root, {"list.txt": b"a.dcm\n"})
    (root / "a.dcm").write_bytes(b"<html>not a dicom</html>" + b" " * 200)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug, file_index={"path": "list.txt", "magic": "4449434d", "magic_offset": 128})]))
    code, out, err = _fetch(ident, mirror, _dest(tmp_path), "--json")
    assert code == 1
    failed = json.loads(out)["failed"]
    assert [f["path"] for f in failed] == ["a.dcm"] and "magic mismatch" in failed[0]["reason"]
    assert not (_dest(tmp_path) / "a.dcm").exists()
    assert (_dest(tmp_path) / ".medcat/quarantine/a.dcm.bad").exists()


def test_companion_source_lands_in_its_subdir(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), {"main.csv": b"a\n"})
    write_physionet_project(
        mirror_root(mirror, f"files/{mirror_slug}-labels/2.1.0"), {"labels-x.csv.gz": b"l", "images/big.jpg": b"j"}
    )
    ident = dataset_id(mirror_slug)
    sources = [
        physionet_source(mirror_slug),
        physionet_source(f"{mirror_slug}-labels", name="labels", version="2.1.0", companion=True, subdir="labels", include=["labels-*"]),
    ]
    use_registry(monkeypatch, tmp_path, entry(ident, sources))
    code, out, err = _fetch(ident, mirror, _dest(tmp_path), "--json")
    assert code == 0, err
    assert (_dest(tmp_path) / "labels/labels-x.csv.gz").read_bytes() == b"l"
    assert not (_dest(tmp_path) / "labels/images").exists()
    assert json.loads(out)["selected"] == 2
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--source", "labels", "--json")
    assert code == 0 and json.loads(out)["selected"] == 1


def test_physionet_ref_of_an_unknown_slug_resolves_through_the_template_entry(mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = _project(mirror, mirror_slug, n=2)
    code, out, err = run_cli(
        "fetch", f"physionet:{mirror_slug}@1.0.0", "--mirror", mirror.url, "--dest", str(_dest(tmp_path)), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["downloaded"] == len(files)


def test_dry_run_shows_the_published_total_of_a_whole_physionet_project(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _project(mirror, mirror_slug)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)], size={"bytes": 570_300_000_000, "approximate": ["bytes"]}))
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--dry-run", "--json")
    assert code == 0 and json.loads(out)["estimated_bytes"] == 570_300_000_000
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--dry-run")
    assert code == 0 and "about 570.3 GB in all" in out
    code, out, _ = _fetch(ident, mirror, _dest(tmp_path), "--dry-run", "--only", "data/*", "--json")
    assert code == 0 and json.loads(out)["estimated_bytes"] is None  # a part of the project has no published total
