"""VQA-RAD end to end from both sources: replica → fetch over loopback (OSF API, Hub API) → verify →
normalize (--jobs 1/2) → load, plus what the two sources must agree on."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from medcat_data.converters.schemas import vqa_features
from medcat_data.loaders.manifest import Manifest
from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.integration.recipes.harness import ChainResult, run_chain

pytestmark = pytest.mark.integration

CORE = list(vqa_features())[:6]


def _records(result: ChainResult) -> dict[str, dict[str, object]]:
    return {
        row["sample_id"]: row
        for split in result.loaded["vqa"].values()
        for row in split.remove_columns("images")
    }


def test_osf_chain_keeps_upstream_columns_and_official_split(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("vqa-rad", mirror, tmp_path, source="osf")
    ds = result.loaded["vqa"]
    assert list(ds["train"].features)[:6] == CORE == ["images", "question", "answer", "answer_type", "options", "answer_idx"]
    assert ds["train"].features == vqa_features({c: datasets.Value("string") for c in
                                                 ("qid", "qid_linked_id", "phrase_type", "question_type", "image_organ", "image_name")})
    assert set(ds["test"]["phrase_type"]) == {"test_freeform", "test_para"}
    assert set(ds["train"]["phrase_type"]) == {"freeform", "para"}
    names = ds["train"].features["answer_type"].names
    assert {names[v] for v in ds["train"]["answer_type"]} == {"closed", "open"}
    assert "2" in list(ds["train"]["answer"]) + list(ds["test"]["answer"])  # a JSON number became a string
    row = ds["test"][0]
    assert len(row["images"]) == 1 and row["images"][0].size[0] > 0
    assert row["options"] == [] and row["answer_idx"] is None
    # Every file (names with spaces included) was verified against the sha256 of OSF's metadata.
    raw = raw_dir("vqa-rad", result.resolved.version)
    manifest = Manifest.open(raw / ".medcat", "vqa-rad", result.resolved.version, create=False)
    assert manifest is not None
    osf_files = {path: record for path, record in manifest.files() if path.startswith("osf/")}
    assert "osf/VQA_RAD Dataset Public.json" in osf_files
    assert any(path.startswith("osf/VQA_RAD Image Folder/synpic") for path in osf_files)
    assert {record.verified_by for record in osf_files.values()} == {"osf-meta"}


def test_hf_chain_has_the_same_features_and_null_answer_type(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("vqa-rad", mirror, tmp_path, source="hf")
    ds = result.loaded["vqa"]
    assert list(ds["train"].features)[:6] == CORE
    assert set(ds["train"]["answer_type"]) == {None}
    assert set(ds["train"]["phrase_type"]) == {None}
    assert set(ds["train"]["image_name"]) == {None}  # the Hub copy names no image


def test_both_sources_concatenate_and_share_sample_ids(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    osf = run_chain("vqa-rad", mirror, tmp_path / "osf", source="osf")
    # datasets' cache would hand back the osf build for the second folder of the same name
    # (same dataset name, config and shard names): give the second load its own cache.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    hf = run_chain("vqa-rad", mirror, tmp_path / "hf", source="hf")
    both = datasets.concatenate_datasets([osf.loaded["vqa"]["test"], hf.loaded["vqa"]["test"]])
    assert len(both) == len(osf.loaded["vqa"]["test"]) + len(hf.loaded["vqa"]["test"])
    osf_rows, hf_rows = _records(osf), _records(hf)
    shared = set(osf_rows) & set(hf_rows)
    assert shared == set(hf_rows)  # every hf triplet is an osf question on the same image bytes
    for sid in shared:
        assert osf_rows[sid]["question"] == hf_rows[sid]["question"]
        assert osf_rows[sid]["split"] == hf_rows[sid]["split"]


def test_demo_counts_each_source_from_its_own_output(tmp_path: Path) -> None:
    """Both sources write a folder named vqa-rad with the same config and shard names; each demo row
    must count its own rows, not the other source's cached ones."""
    from click.testing import CliRunner

    from medcat_data.cli import main
    from medcat_data.mirror.replicas import vqa_rad

    expected = {r.source: r.expected["configs"]["vqa"] for r in vqa_rad.build(tmp_path / "replica")}
    assert expected["osf"] != expected["hf"]
    result = CliRunner().invoke(main, ["demo", "--only", "vqa-rad", "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["source"]: row for row in json.loads(result.stdout)["rows"]}
    assert {source: row["rows"]["vqa"] for source, row in rows.items()} == expected
    assert all(row["status"] == "ok" and row["errors"] == 1 for row in rows.values())
