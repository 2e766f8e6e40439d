"""Small registry entries and replica writers for fetch tests (ids never collide with shipped ones)."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import yaml

_BASE: dict[str, Any] = {
    "name": "Fetch test dataset",
    "description": "A miniature dataset served by the loopback mirror to exercise the fetch engine.",
    "homepage": "https://example.org/fetch-test",
    "modalities": ["ehr"],
    "tasks": ["tabular"],
    "access": "open",
    "access_info": {"steps": ["Register on the example site.", "Sign the data use agreement."]},
    "license": {"name": "Test Licence 1.0"},
    "citation": "@misc{fetchtest, title={Fetch test}}",
    "versions": [{"version": "1.0.0"}],
    "default_version": "1.0.0",
    "size": {},
}


def entry(dataset_id: str, sources: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    """Return a valid registry entry with ``sources`` and top-level ``changes``."""
    data = copy.deepcopy(_BASE)
    data.update({"id": dataset_id, "sources": sources})
    data.update(changes)
    return data


def physionet_source(slug: str, **changes: Any) -> dict[str, Any]:
    src: dict[str, Any] = {"name": "physionet", "kind": "physionet", "slug": slug}
    src.update(changes)
    return src


def write_registry(folder: Path, *entries: dict[str, Any]) -> Path:
    """Write a registry file holding ``entries`` and return its path."""
    path = folder / "registry.yaml"
    path.write_text(yaml.safe_dump({"datasets": list(entries)}, sort_keys=False), encoding="utf-8")
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_physionet_project(root: Path, files: dict[str, bytes], *, checksums: bool = True) -> dict[str, str]:
    """Write ``files`` under ``root`` plus a PhysioNet ``SHA256SUMS.txt``; return path -> sha256."""
    hashes = {}
    for rel, data in files.items():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        hashes[rel] = sha256(data)
    if checksums:
        lines = "".join(f"{hashes[p]} {p}\n" for p in sorted(hashes))
        (root / "SHA256SUMS.txt").write_text(lines, encoding="utf-8")
    return hashes


def payload(seed: int, size: int) -> bytes:
    """Deterministic pseudo-random bytes (incompressible enough, no RNG state)."""
    out = bytearray()
    block = hashlib.sha256(str(seed).encode()).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def use_registry(monkeypatch: Any, folder: Path, *entries: dict[str, Any]) -> Path:
    """Write a registry of ``entries`` into ``folder`` and point ``MEDCAT_REGISTRY`` at it."""
    from medcat_data.catalog import registry

    path = write_registry(folder, *entries)
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    registry._load_cached.cache_clear()
    return path


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``medcat ARGS`` in-process; return (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from medcat_data.cli import main

    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def dataset_id(slug: str) -> str:
    """A registry id derived from a test's unique slug."""
    return "ft-" + slug[:50].strip("-")
