"""Two fetches of one dataset at once cooperate: each file crosses the wire once, one correct tree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medcat_data.mirror.server import Fault, MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, physionet_source, run_cli, use_registry, write_physionet_project

pytestmark = pytest.mark.integration


def test_two_concurrent_fetches_of_one_dataset_end_with_one_correct_tree(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    files = {f"d/{i:02d}.bin": payload(i, 20_000 + i) for i in range(24)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)]))
    # Slow every file a little so that the two runs overlap for the whole transfer.
    mirror.add_fault(Fault(f"/files/{mirror_slug}/1.0.0/d/*", kind="slow", delay_s=0.15, times=None))
    dest = tmp_path / "shared"
    cmd = [sys.executable, "-m", "medcat_data", "fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "-j", "3", "--json"]
    procs = [subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert all(r["ok"] and r["selected"] == len(files) for r in reports)
    assert sum(r["downloaded"] for r in reports) == len(files)
    assert all(r["downloaded"] > 0 for r in reports), "both processes should have shared the work"
    for rel, data in files.items():
        assert (dest / rel).read_bytes() == data
        assert mirror.count(f"/files/{mirror_slug}/1.0.0/{rel}", "GET") == 1
    assert mirror.count(f"/files/{mirror_slug}/1.0.0/SHA256SUMS.txt", "GET") == 1
    assert not list((dest / ".medcat/partial").glob("*.part"))
    code, out, _ = run_cli("verify", ident, "--dest", str(dest), "--full", "--json")
    assert code == 0 and json.loads(out)["checked"] == len(files) + 1


def test_worker_processes_share_a_fetch_and_report_every_file_to_the_parent(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from medcat_data.catalog.refs import resolve
    from medcat_data.catalog.registry import load_registry
    from medcat_data.loaders import FetchOptions, fetch
    from medcat_data.loaders.progress import PlainProgress

    files = {f"d/{i:02d}.bin": payload(i, 30_000 + i) for i in range(40)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)]))
    base = f"/files/{mirror_slug}/1.0.0/d"
    mirror.add_fault(Fault(f"{base}/03.bin", kind="drop", after_bytes=10_000))
    mirror.add_fault(Fault(f"{base}/06.bin", kind="corrupt", times=None))
    mirror.add_fault(Fault(f"{base}/09.bin", kind="status", status=503, retry_after=0))
    import io

    lines = io.StringIO()
    progress = PlainProgress(lines, interval_s=0.0)
    report = fetch(
        resolve(ident, load_registry()),
        FetchOptions(dest=tmp_path / "d", mirror=mirror.url, processes=3, jobs=3),
        progress,
    )
    assert report.selected == 40 and report.downloaded == 39 and [f.path for f in report.failed] == ["d/06.bin"]
    assert report.failed[0].status == "quarantined"
    assert report.bytes_transferred >= sum(len(d) for p, d in files.items() if p != "d/06.bin")
    assert lines.getvalue().strip().splitlines()[-1].startswith("fetch: 40/40 files, 1 failed")
    for rel, data in files.items():
        if rel != "d/06.bin":
            assert (tmp_path / "d" / rel).read_bytes() == data
            assert mirror.count(f"/files/{mirror_slug}/1.0.0/{rel}", "GET") == (2 if rel in ("d/03.bin", "d/09.bin") else 1)
    code, out, _ = run_cli("verify", ident, "--dest", str(tmp_path / "d"), "--json")
    verdict = json.loads(out)
    assert code == 1 and verdict["missing"] == ["d/06.bin"] and verdict["checked"] == 41  # 40 files + SHA256SUMS.txt


def test_access_denied_in_a_worker_process_stops_the_whole_fetch(mirror, mirror_slug, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from medcat_data.catalog.refs import resolve
    from medcat_data.catalog.registry import load_registry
    from medcat_data.errors import AccessDeniedError
    from medcat_data.loaders import FetchOptions, fetch

    files = {f"d/{i:02d}.bin": payload(i, 1000) for i in range(12)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug)]))
    mirror.add_fault(Fault(f"/files/{mirror_slug}/1.0.0/d/*", kind="unauthorized", times=None))
    with pytest.raises(AccessDeniedError, match=r"asked for a login \(HTTP 401\)"):
        fetch(resolve(ident, load_registry()), FetchOptions(dest=tmp_path / "d", mirror=mirror.url, processes=2, jobs=2))
