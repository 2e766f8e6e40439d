"""M3LLM-PMC end to end: Hub replica -> real huggingface_hub fetch over loopback -> verify -> normalize -> load."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from medcat_data.converters.recipes.base import RecipeOptions
from medcat_data.converters.schemas import vqa_features
from medcat_data.mirror.server import MirrorServer
from tests.integration.recipes.harness import run_chain

pytestmark = pytest.mark.integration


def test_m3llm_pmc_chain_gives_six_vqa_configs_with_the_shared_core_columns(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("m3llm-pmc", mirror, tmp_path, options=RecipeOptions())
    assert set(result.loaded) == {"puretext", "bbox", "single-subimage", "multi-subimage", "subimage-option", "compound-image"}
    core = list(vqa_features())
    for config, ds in result.loaded.items():
        names = list(ds["train"].features)
        assert names[: len(core)] == core, f"{config}: core VQA columns first, in schema order"
        assert ds["train"].features["images"] == vqa_features()["images"]

    puretext = result.loaded["puretext"]["train"]
    assert all(images == [] for images in puretext["images"])
    types = puretext.features["answer_type"].names
    assert [types[t] if t is not None else None for t in puretext["answer_type"]].count("open") == 1
    assert puretext["answer_type"].count(None) == len(puretext) - 1, "no options and no upstream type: null, never guessed"
    assert all(a and a.startswith("PMC") for a in puretext["article_id"])
    assert set(puretext["license"]) == {"CC-BY-NC-SA-4.0"}

    option = result.loaded["subimage-option"]["train"]
    for row in option:
        assert len(row["options"]) == 4 and row["answer"] == row["options"][row["answer_idx"]]
        assert row["answer_key"] == "ABCD"[row["answer_idx"]]
        assert option.features["answer_type"].names[row["answer_type"]] == "closed"
        assert len(row["images"]) == 1
    assert option["article_license"].count("CC BY 4.0") == 2

    bbox = result.loaded["bbox"]["train"]
    assert all(len(images) == 3 for images in bbox["images"]), "compound figure first, then the two sub-figures"
    assert bbox[0]["images"][0].size == (48, 32)

    compound = result.loaded["compound-image"]["train"]
    assert "<image>" not in "".join(compound["question"])
    assert set(compound["record_form"]) == {"internvl"}

    # The same core schema as every other VQA dataset: the configs concatenate.
    core_only = [ds["train"].select_columns(core) for ds in result.loaded.values()]
    assert len(datasets.concatenate_datasets(core_only)) == sum(len(ds["train"]) for ds in result.loaded.values())


def test_m3llm_pmc_bbox_images_keep_their_pixels_under_max_size(mirror: MirrorServer, tmp_path: Path) -> None:
    from medcat_data.converters.codecs.image import ImageOptions

    result = run_chain("m3llm-pmc", mirror, tmp_path, options=RecipeOptions(image=ImageOptions(max_size=16)))
    assert result.loaded["bbox"]["train"][0]["images"][0].size == (48, 32)
    assert max(result.loaded["compound-image"]["train"][0]["images"][0].size) == 16


def test_m3llm_pmc_from_a_manual_download_through_a_file_mirror(mirror: MirrorServer, tmp_path: Path) -> None:
    """The user downloads the repo by hand (`hf download ... --local-dir DIR`); no request reaches any server."""
    import json
    import shutil

    from medcat_data.mirror.replicas import m3llm_pmc as replica_builder
    from tests.integration.recipes.harness import replicas
    from tests.unit.loaders.entries import run_cli

    (replica,) = replicas("m3llm-pmc", mirror)
    manual = tmp_path / "manual download"
    shutil.copytree(mirror.root / replica_builder.REPO, manual)
    (manual / ".cache/huggingface/download").mkdir(parents=True)
    (manual / ".cache/huggingface/download/puretext.jsonl.metadata").write_text("x\n")
    mirror.clear_log()
    dest = tmp_path / "raw"
    code, out, err = run_cli("fetch", "m3llm-pmc", "--mirror", manual.as_uri(), "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["verification"]) == {"tofu"} and report["trust_on_first_use"] == report["downloaded"]
    assert mirror.requests == []
    code, out, err = run_cli("verify", "m3llm-pmc", "--dest", str(dest), "--json")
    assert code == 0, err
    code, _, err = run_cli("normalize", "m3llm-pmc", "--dest", str(dest), "--out", str(tmp_path / "out"), "-j", "1")
    assert code == 1, err  # the two planted items are recorded failures, not a crash
    for config, splits in replica.expected["configs"].items():
        ds = datasets.load_dataset(str(tmp_path / "out/m3llm-pmc"), config)
        assert {s: ds[s].num_rows for s in ds} == splits
