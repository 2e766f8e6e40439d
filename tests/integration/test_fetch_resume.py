"""Interrupted transfers: resume from the right byte, retry politely, survive a killed process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medcat_data.mirror.server import Fault, MirrorServer
from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, RetryPolicy, fetch
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, physionet_source, run_cli, use_registry, write_physionet_project

pytestmark = pytest.mark.integration

BIG = 300_000


@pytest.fixture
def project(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    files = {"a.txt": b"small\n", "data/big.bin": payload(1, BIG), "data/other.bin": payload(2, 50_000)}
    root = mirror_root(mirror, f"files/{mirror_slug}/1.0.0")
    write_physionet_project(root, files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)]))
    return ident, files, root


def _gets(mirror: MirrorServer, path: str) -> list:  # type: ignore[type-arg]
    return [r for r in mirror.requests if r.path == path and r.method == "GET"]


def test_resume_continues_after_a_dropped_connection_from_the_right_offset(project, mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files, _ = project
    big = f"/files/{mirror_slug}/1.0.0/data/big.bin"
    mirror.add_fault(Fault(big, kind="drop", after_bytes=120_000))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 0, err
    assert (tmp_path / "d/data/big.bin").read_bytes() == files["data/big.bin"]
    first, second = _gets(mirror, big)
    assert "range" not in first.headers and first.bytes_sent == 120_000
    assert second.headers["range"] == "bytes=120000-"
    assert second.headers["if-range"].startswith('"') and second.status == 206
    assert second.bytes_sent == BIG - 120_000
    assert json.loads(out)["bytes_transferred"] == sum(len(d) for d in files.values())


def _interrupted_run(ident: str, mirror: MirrorServer, dest: Path) -> None:
    """Fetch with a single attempt per file, so a dropped transfer stays a part file."""
    resolved = resolve(ident, load_registry())
    report = fetch(resolved, FetchOptions(dest=dest, mirror=mirror.url, retry=RetryPolicy(attempts=1)))
    assert not report.ok


def test_a_file_changed_upstream_is_never_spliced_onto_an_old_part(project, mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files, root = project
    big = f"/files/{mirror_slug}/1.0.0/data/big.bin"
    mirror.add_fault(Fault(big, kind="drop", after_bytes=100_000))
    _interrupted_run(ident, mirror, tmp_path / "d")
    (root / "data/big.bin").write_bytes(payload(99, BIG))  # upstream changed; our checksum list is older
    mirror.clear_log()
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1
    first, second = _gets(mirror, big)
    assert first.headers["range"] == "bytes=100000-"  # resumed (a known hash guards the splice) ...
    assert "range" not in second.headers  # ... the splice failed its hash: once more from zero
    (failed,) = json.loads(out)["failed"]
    assert failed["status"] == "quarantined" and "sha256 mismatch for data/big.bin" in failed["reason"]
    assert "upstream changed" in failed["reason"]
    assert not (tmp_path / "d/data/big.bin").exists()
    assert (tmp_path / "d/.medcat/quarantine/data/big.bin.bad").stat().st_size == BIG


def test_if_range_on_a_changed_validator_makes_the_server_send_the_whole_file(project, mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files, root = project
    big = f"/files/{mirror_slug}/1.0.0/data/big.bin"
    # Slow enough (over a second) for the part to get a resume record holding the ETag.
    mirror.add_fault(Fault(big, kind="slow", bytes_per_s=80_000))
    mirror.add_fault(Fault(big, kind="drop", after_bytes=100_000))
    _interrupted_run(ident, mirror, tmp_path / "d")
    os.utime(root / "data/big.bin", (time.time() + 100, time.time() + 100))  # same bytes, new validator
    mirror.clear_log()
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"))
    assert code == 0, err
    (only,) = _gets(mirror, big)
    assert only.headers["range"] == "bytes=100000-" and only.headers["if-range"].startswith('"')
    assert only.status == 200 and only.bytes_sent == BIG
    assert (tmp_path / "d/data/big.bin").read_bytes() == files["data/big.bin"]


@pytest.mark.parametrize("status", [429, 503])
def test_retries_after_overload_honouring_retry_after(project, mirror, mirror_slug, tmp_path, status: int) -> None:  # type: ignore[no-untyped-def]
    ident, files, _ = project
    other = f"/files/{mirror_slug}/1.0.0/data/other.bin"
    mirror.add_fault(Fault(other, kind="status", status=status, retry_after=1, times=2))
    started = time.monotonic()
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "-j", "1")
    assert code == 0, err
    assert [r.status for r in _gets(mirror, other)] == [status, status, 200]
    assert time.monotonic() - started >= 2.0  # two Retry-After: 1 waits
    assert (tmp_path / "d/data/other.bin").read_bytes() == files["data/other.bin"]


def test_a_server_that_keeps_failing_is_reported_after_the_last_retry(project, mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, _, _ = project
    other = f"/files/{mirror_slug}/1.0.0/data/other.bin"
    mirror.add_fault(Fault(other, kind="status", status=500, retry_after=0, times=None))
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1
    (failed,) = json.loads(out)["failed"]
    assert failed["path"] == "data/other.bin" and "gave up after 6 attempts (HTTP 500)" in failed["reason"]
    assert "1 of 3 file(s) not present and verified" in err
    assert len(_gets(mirror, other)) == 6
    assert (tmp_path / "d/data/big.bin").exists() and not (tmp_path / "d/data/other.bin").exists()


def test_killed_fetch_resumes_without_downloading_any_file_from_zero(project, mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ident, files, _ = project
    big = f"/files/{mirror_slug}/1.0.0/data/big.bin"
    mirror.add_fault(Fault(big, kind="slow", bytes_per_s=60_000))
    dest = tmp_path / "d"
    cmd = [sys.executable, "-m", "medcat_data", "fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "-j", "1", "--quiet"]
    proc = subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not [r for r in _gets(mirror, big) if r.bytes_sent >= 90_000]:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the slow transfer never started"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    received = (dest / ".medcat/partial").glob("*.part")
    partial = max(p.stat().st_size for p in received)
    assert 0 < partial < BIG
    mirror.clear_faults()
    mirror.clear_log()
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0, err
    requested = [r for r in mirror.requests if r.method == "GET"]
    # a.txt was done before the kill (sorted first, one worker); big.bin resumes; other.bin never started.
    assert {r.path for r in requested} == {big, f"/files/{mirror_slug}/1.0.0/data/other.bin"}
    (resumed,) = _gets(mirror, big)
    assert resumed.headers["range"] == f"bytes={partial}-" and resumed.status == 206
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data


def test_one_worker_reuses_one_connection_for_every_file(project, mirror, mirror_slug, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from medcat_data.loaders.transports.http import HttpSettings, UrlChannel, origin_of

    channel = UrlChannel(HttpSettings())
    base = f"{mirror.url}/files/{mirror_slug}/1.0.0/"
    assert channel.get_bytes(base + "a.txt") == b"small\n"
    conn = channel._conns[origin_of(base)]
    sock = conn.sock
    assert channel.get_bytes(base + "data/other.bin") == payload(2, 50_000)
    assert channel.get_bytes(base + "a.txt") == b"small\n"
    assert channel._conns[origin_of(base)] is conn and conn.sock is sock and conn.requests == 3
    channel.close()
