"""``medcat cache ls|du|rm`` and the local state in ``medcat info``, on caches filled by real fetches over loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import medcat_data
from medcat_data.cli import main
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import replicas

pytestmark = pytest.mark.integration

DATASET = "vqa-rad"


def _run(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == code, (result.output, result.exception)
    return json.loads(result.stdout) if "--json" in args and code == 0 else result


def _home() -> Path:
    return Path(os.environ["MEDCAT_HOME"])


@pytest.fixture
def cached(mirror: MirrorServer) -> medcat_data.DatasetInfo:
    """vqa-rad fetched (osf source) and normalized into MEDCAT_HOME through the public API."""
    replicas(DATASET, mirror)
    medcat_data.load(DATASET, mirror=mirror.url)
    return medcat_data.info(DATASET)


def test_cache_ls_lists_raw_and_normalized_folders_with_their_state(cached: medcat_data.DatasetInfo) -> None:
    listed = _run("cache", "ls", "--json")
    (raw,) = listed["raw"]
    assert (raw["dataset_id"], raw["version"], raw["sources"], raw["verified"]) == (DATASET, cached.version, ["osf"], True)
    assert raw["files"] == cached.raw.files > 0 and raw["size_bytes"] > 0 and raw["last_used"]
    (normalized,) = listed["normalized"]
    assert normalized["configs"] == ["vqa"] and normalized["version"] == cached.version

    image = next((cached.raw.path / "osf" / "VQA_RAD Image Folder").iterdir())
    image.write_bytes(image.read_bytes()[:10])  # truncated behind the manifest's back
    assert _run("cache", "ls", "--json")["raw"][0]["verified"] is False
    text = _run("cache", "ls").stdout
    assert DATASET in text and "normalized" in text and "osf" in text


def test_cache_du_totals_raw_and_normalized_bytes_per_id(cached: medcat_data.DatasetInfo) -> None:
    assert cached.normalized is not None
    usage = _run("cache", "du", "--json")
    (row,) = usage["datasets"]
    data_bytes = sum(p.stat().st_size for p in (cached.raw.path / "osf").rglob("*") if p.is_file())
    # Raw bytes are the data plus the fetch state under .medcat (its manifest journal varies in size).
    assert row["id"] == DATASET and row["raw_bytes"] > data_bytes > 0
    assert row["normalized_bytes"] == sum(p.stat().st_size for p in cached.normalized.path.rglob("*") if p.is_file())
    assert row["total_bytes"] == row["raw_bytes"] + row["normalized_bytes"] == usage["total"]["total_bytes"]


def test_cache_rm_refuses_without_yes_when_stdin_is_not_a_terminal(cached: medcat_data.DatasetInfo) -> None:
    result = _run("cache", "rm", DATASET, code=2)
    assert "without --yes" in result.output and str(cached.raw.path) in result.output
    assert cached.raw.path.exists()


def test_cache_rm_removes_the_kind_asked_for(cached: medcat_data.DatasetInfo) -> None:
    assert cached.normalized is not None
    _run("cache", "rm", DATASET, "--normalized", "--yes")
    assert not cached.normalized.path.exists() and cached.raw.path.exists()
    removed = _run("cache", "rm", f"{DATASET}@{cached.version}", "--yes", "--json")["removed"]
    assert [r["path"] for r in removed] == [str(cached.raw.path)]
    assert not (_home() / "raw" / DATASET).exists()
    assert not medcat_data.info(DATASET).fetched
    assert "cached ids: none" in _run("cache", "rm", DATASET, "--yes", code=2).output


def test_cache_rm_never_follows_a_symlink_out_of_medcat_home(cached: medcat_data.DatasetInfo, tmp_path: Path) -> None:
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("not medcat's")
    (cached.raw.path / "osf" / "link-out").symlink_to(outside)
    linked_version = _home() / "raw" / "other-id" / "1.0"
    linked_version.parent.mkdir(parents=True)
    linked_version.symlink_to(outside, target_is_directory=True)

    _run("cache", "rm", DATASET, "--raw", "--yes")
    _run("cache", "rm", "other-id", "--yes")
    assert not cached.raw.path.exists() and not linked_version.is_symlink()
    assert (outside / "keep.txt").read_text() == "not medcat's"


def test_cache_rm_refuses_a_cache_folder_that_resolves_outside_medcat_home(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    (outside / "some-id" / "1.0").mkdir(parents=True)
    (outside / "some-id" / "1.0" / "data.bin").write_bytes(b"x")
    _home().mkdir(parents=True, exist_ok=True)
    (_home() / "raw").symlink_to(outside, target_is_directory=True)
    assert "outside MEDCAT_HOME" in _run("cache", "rm", "some-id", "--yes", code=2).output
    assert (outside / "some-id" / "1.0" / "data.bin").exists()


def test_info_says_whether_and_where_a_dataset_is_fetched_and_normalized(mirror: MirrorServer) -> None:
    before = " ".join(_run("info", DATASET).stdout.split())
    assert "fetched no" in before and "normalized no" in before
    assert _run("info", DATASET, "--json")["local"]["raw"]["fetched"] is False

    replicas(DATASET, mirror)
    medcat_data.load(DATASET, mirror=mirror.url)
    after = " ".join(_run("info", DATASET).stdout.split())
    assert "fetched yes" in after and "verified)" in after and "configs: vqa" in after
    local = _run("info", DATASET, "--json")["local"]
    assert local["raw"]["verified"] is True and local["normalized"]["configs"] == ["vqa"]
    assert Path(local["normalized"]["path"]) == _home() / "normalized" / DATASET
