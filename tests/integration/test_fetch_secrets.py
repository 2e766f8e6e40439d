"""Credentials never leak: a distinctive password is searched in everything medcat wrote or printed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medcat_data.mirror.server import Fault, MirrorServer
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

PASSWORD = "s3cr3t-Pa55-XYZ"
KAGGLE_KEY = "kaggle-K3y-QWERTY"


def _run(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "medcat_data", "-vv", *args], env=env, capture_output=True, text=True, timeout=120)
    return f"exit={proc.returncode}\n{proc.stdout}\n{proc.stderr}"


def _everything_written(*roots: Path) -> list[tuple[Path, bytes]]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                found.append((path, path.read_bytes()))
    return found


def test_credentials_never_appear_in_files_logs_errors_progress_or_json(mirror, mirror_slug, tmp_path, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    files = {f"d/{i}.bin": payload(i, 60_000) for i in range(4)}
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), files)
    (mirror.root / "kaggle" / mirror_slug).mkdir(parents=True)
    (mirror.root / "kaggle" / mirror_slug / "set.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    ident = dataset_id(mirror_slug)
    kaggle = {"name": "kaggle", "kind": "kaggle", "owner": mirror_slug, "slug": "set", "default_fetch": False}
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source(mirror_slug), kaggle], access="credentialed"))
    mirror.protect(f"/files/{mirror_slug}/", "alice", PASSWORD)
    mirror.protect("/api/v1/", "kuser", KAGGLE_KEY, user_agents=None)
    # Faults make medcat log retries, resumes and mismatches: every message path is exercised.
    mirror.add_fault(Fault(f"/files/{mirror_slug}/1.0.0/d/0.bin", kind="drop", after_bytes=20_000))
    mirror.add_fault(Fault(f"/files/{mirror_slug}/1.0.0/d/1.bin", kind="status", status=503, retry_after=0))
    mirror.add_fault(Fault(f"/files/{mirror_slug}/1.0.0/d/2.bin", kind="corrupt", times=None))
    env = dict(
        os.environ, PHYSIONET_USERNAME="alice", PHYSIONET_PASSWORD=PASSWORD, KAGGLE_USERNAME="kuser", KAGGLE_KEY=KAGGLE_KEY
    )
    dest = tmp_path / "dest"
    common = ["--mirror", mirror.url, "--dest", str(dest)]
    printed = [
        _run("fetch", ident, *common, "--accept-license", env=env),  # plain progress lines + summary
        _run("fetch", ident, *common, "--json", env=env),
        _run("fetch", ident, *common, "--force", env=dict(env, PHYSIONET_PASSWORD=PASSWORD + "-wrong")),
    ]
    # The cheaper runs in-process, with every medcat log record captured at debug level.
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG, logger="medcat_data")
    for args in (
        ("fetch", ident, *common, "--dry-run"),
        ("fetch", ident, *common, "--source", "kaggle"),
        ("verify", ident, "--dest", str(dest), "--full", "--json"),
    ):
        code, out, err = run_cli(*args)
        printed.append(f"exit={code}\n{out}\n{err}")
    printed.append(caplog.text)
    assert "exit=0" in printed[4] and "sha256 mismatch" in printed[0] and "(HTTP 401)" in printed[2]
    assert "retry" in printed[0] and "DEBUG medcat_data.loaders" in printed[0]  # -vv really logged
    for text in printed:
        assert PASSWORD not in text and KAGGLE_KEY not in text
    written = _everything_written(dest, Path(os.environ["MEDCAT_HOME"]))
    assert any(p.name == "manifest.json" for p, _ in written)
    for path, data in written:
        assert PASSWORD.encode() not in data, path
        assert KAGGLE_KEY.encode() not in data, path
    # The requests did carry them (so the test would notice if nothing had been sent).
    assert any(r.headers.get("authorization", "").startswith("Basic ") for r in mirror.requests)
