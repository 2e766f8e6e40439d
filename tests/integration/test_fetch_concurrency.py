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
