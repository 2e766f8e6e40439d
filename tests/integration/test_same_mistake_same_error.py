"""The same mistake gets the same error class, message and exit code from every command that can meet it.

Usage mistakes exit 2 (an unknown ``--source``; verify or normalize before anything was fetched);
a damaged fetch (a file the manifest records as verified is gone) exits 1 from verify and
normalize alike, as any data problem does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import run_cli, write_physionet_project

pytestmark = pytest.mark.integration


def _error_line(stderr: str) -> str:
    (line,) = [text for text in stderr.splitlines() if text.startswith("error: ")]
    return line


def test_an_unknown_source_is_one_usage_error_in_fetch_verify_and_normalize(tmp_path: Path) -> None:
    runs = {
        "fetch": run_cli("fetch", "vqa-rad", "--source", "nope", "--dest", str(tmp_path / "raw")),
        "verify": run_cli("verify", "vqa-rad", "--source", "nope", "--dest", str(tmp_path / "raw")),
        "normalize": run_cli("normalize", "vqa-rad", "--source", "nope", "--dest", str(tmp_path / "raw"), "--out", str(tmp_path / "out")),
    }
    assert {name: code for name, (code, _, _) in runs.items()} == {"fetch": 2, "verify": 2, "normalize": 2}
    lines = {_error_line(err) for _, _, err in runs.values()}
    assert lines == {"error: vqa-rad has no source 'nope'; its sources are: osf, hf."}


def test_verify_or_normalize_before_a_fetch_is_one_usage_error(tmp_path: Path) -> None:
    empty = tmp_path / "raw"
    empty.mkdir()
    verify = run_cli("verify", "vqa-rad", "--dest", str(empty))
    normalize = run_cli("normalize", "vqa-rad", "--dest", str(empty), "--out", str(tmp_path / "out"))
    assert (verify[0], normalize[0]) == (2, 2)
    for _, _, err in (verify, normalize):
        assert "vqa-rad unversioned is not fetched: nothing in " in _error_line(err)
        assert "Run `medcat fetch vqa-rad` first (or pass --dest DIR where it was fetched)." in _error_line(err)


def test_a_damaged_fetch_exits_1_from_verify_and_normalize(mirror: MirrorServer, mirror_slug: str, tmp_path: Path) -> None:
    write_physionet_project(mirror_root(mirror, f"files/{mirror_slug}/1.0.0"), {"a.csv": b"x\n1\n", "b.csv": b"x\n2\n"})
    ref, dest = f"physionet:{mirror_slug}@1.0.0", tmp_path / "raw"
    code, _, err = run_cli("fetch", ref, "--mirror", mirror.url, "--dest", str(dest), "--quiet")
    assert code == 0, err
    (dest / "a.csv").unlink()
    verify = run_cli("verify", ref, "--dest", str(dest))
    normalize = run_cli("normalize", ref, "--dest", str(dest), "--out", str(tmp_path / "out"))
    assert (verify[0], normalize[0]) == (1, 1)
    assert "error: missing: a.csv" in verify[2] and f"1 missing, 0 truncated, 0 corrupt, 0 unverified file(s). Run `medcat fetch {ref}` to repair." in verify[2]
    assert "1 fetched file(s) are missing, truncated or unverified" in normalize[2] and "a.csv" in normalize[2]
    assert not (tmp_path / "out").exists()


def test_stale_generated_docs_exit_1_from_both_docs_checks(tmp_path: Path) -> None:
    reference, catalog = tmp_path / "cli.md", tmp_path / "catalog"
    reference.write_text("# an old reference\n", encoding="utf-8")
    catalog.mkdir()
    cli = run_cli("docs", "cli", "--out", str(reference), "--check")
    pages = run_cli("docs", "build", "--check", "--markdown-dir", str(catalog))
    assert (cli[0], pages[0]) == (1, 1)
    assert f"{reference} is stale; run `medcat docs cli` and commit it." in cli[2]
    assert "are out of date with the registry" in pages[2]
