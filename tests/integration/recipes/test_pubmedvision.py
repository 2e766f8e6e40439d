"""PubMedVision end to end: Hub replica -> real huggingface_hub fetch over loopback -> verify -> normalize -> load."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.recipes.base import RecipeOptions
from medcat_data.converters.schemas import vqa_features
from medcat_data.mirror.replicas import pubmedvision as replica_module
from medcat_data.mirror.server import MirrorServer
from tests.integration.recipes.harness import replicas, run_chain

pytestmark = pytest.mark.integration

_FILES = {"alignment": replica_module.ALIGNMENT, "instruction": replica_module.INSTRUCTION}


def _upstream(mirror: MirrorServer, config: str) -> list[dict[str, Any]]:
    path = mirror.root / replica_module.HF_REPO / _FILES[config]
    return json.loads(path.read_text(encoding="utf-8"))  # the replica is tiny: loading it whole is fine here


def _undecoded(ds: datasets.Dataset) -> datasets.Dataset:
    """Return ``ds`` with its images as stored ``{bytes, path}`` values instead of PIL images."""
    return ds.cast_column("images", datasets.List(datasets.Image(decode=False)))


def _as_sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an upstream record from a normalized row, as a ShareGPT export would (image paths kept)."""
    turns = row["conversations"] or [{"from": "human", "value": row["question"]}, {"from": "gpt", "value": row["answer"]}]
    return {
        "id": row["id"],
        "image": [image["path"] for image in row["images"]],
        "conversations": turns,
        "modality": row["modality"],
        "body_part": row["body_part"],
    }


def test_pubmedvision_chain_keeps_every_image_and_the_upstream_text(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("pubmedvision", mirror, tmp_path)
    assert set(result.loaded) == {"alignment", "instruction"}
    core = list(vqa_features())
    for config, dsd in result.loaded.items():
        train = dsd["train"]
        columns = list(train.features)
        assert columns[: len(core)] == core  # the VQA core columns first, exactly
        assert columns[len(core):] == ["id", "modality", "body_part", "conversations"]
        rows = _undecoded(train)
        by_id = {row["id"]: row for row in rows}
        upstream = _upstream(mirror, config)
        missing = [r for r in upstream if replica_module.MISSING_IMAGE in r["image"]]
        assert len(missing) == (1 if config == "alignment" else 0)
        assert set(by_id) == {r["id"] for r in upstream} - {r["id"] for r in missing}
        for record in upstream:
            if record in missing:
                continue
            row = by_id[record["id"]]
            # A later --conversations sharegpt export equals upstream but for image paths: nothing lost.
            assert _as_sharegpt(row) == record
            assert all(image["bytes"][:3] == b"\xff\xd8\xff" for image in row["images"])  # JPEG bytes passed through
            assert row["answer_type"] is None and row["options"] == [] and row["answer_idx"] is None
            assert row["sample_id"] == record["id"] and row["conversations"] is None
        assert max(len(r["images"]) for r in rows) == 7  # multi-image rows keep every image
    errors = [json.loads(line) for line in (result.out_dir / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 1 and errors[0]["path"].endswith(f"[{replica_module.MISSING_RECORD}] {replica_module.MISSING_IMAGE}")
    assert errors[0]["path"].startswith(replica_module.ALIGNMENT) and "in the 2 fetched zip part(s)" in errors[0]["message"]
    assert not list((result.out_dir).rglob("*.jpg"))  # nothing extracted next to the output


def test_fetch_with_hf_endpoint_goes_through_huggingface_hub_to_the_mirror(
    mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medcat_data.loaders import FetchOptions, fetch, verify

    replicas("pubmedvision", mirror)
    monkeypatch.setenv("HF_ENDPOINT", mirror.url)
    resolved = resolve("pubmedvision", load_registry())
    report = fetch(resolved, FetchOptions(accept_license=True, jobs=2))
    assert report.ok, json.dumps(report.to_dict(), indent=1)
    assert verify(resolved).ok
    hub = [r for r in mirror.requests if "/FreedomIntelligence/PubMedVision" in r.path]
    assert any(r.path.startswith("/api/datasets/FreedomIntelligence/PubMedVision") for r in hub)
    resolves = [r for r in hub if "/resolve/" in r.path]
    assert {r.path.rsplit("/", 1)[-1] for r in resolves} >= {replica_module.ALIGNMENT, replica_module.INSTRUCTION, "images_0.zip", "images_1.zip"}
    assert all(f"/resolve/{replica_module.HF_REVISION}/" in r.path for r in resolves)  # pinned revision
    assert all("hf_hub/" in r.user_agent for r in hub)  # the real huggingface_hub client did the talking


def test_split_by_image_is_grouped_and_agrees_across_configs(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("pubmedvision", mirror, tmp_path, options=RecipeOptions(split_by="image", seed=7), expected_splits=False)
    split_of: dict[str, str] = {}
    for dsd in result.loaded.values():
        assert set(dsd) <= {"train", "validation", "test"}
        for split, ds in dsd.items():
            for images in _undecoded(ds)["images"]:
                path = images[0]["path"]
                assert split_of.setdefault(path, split) == split, f"{path} in two splits"
    assert len(set(split_of.values())) >= 2  # 24 groups at 70/15/15 reach more than one split
