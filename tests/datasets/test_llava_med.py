"""LLaVA-Med: records from the host, figures alone from the PMC bucket, the mapping's failures per record file.

Real fetch, mirror and normalize over loopback; the bucket is pmc-oa's replica bucket (the URL list
of the replica points at its figures).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest

from medcat_data.converters.conversations import ExportOptions, export_conversations
from medcat_data.converters.normalize import dataset_root
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.datasets.llava_med import replica as rep
from medcat_data.errors import UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import ChainResult, normalize_folder, read_errors, run_chain

DATASET = "llava-med"


@pytest.fixture
def chain(mirror: MirrorServer, tmp_path: Path) -> tuple[ChainResult, list[str]]:
    """The full chain of the json source (figures come along as its companion) and the bucket files it GETs."""
    mirror.clear_log()
    result = run_chain(DATASET, mirror, tmp_path / "chain", source="json")
    gets = sorted(r.path for r in mirror.requests if r.method == "GET" and r.path.startswith("/PMC"))
    return result, gets


@pytest.mark.integration
def test_chain_fetches_only_the_figures_the_records_name_never_packages(chain: tuple[ChainResult, list[str]]) -> None:
    result, gets = chain
    figures = dict(result.replica.expected["figures"])
    wanted = sorted(v for k, v in figures.items() if k not in (rep.GONE, rep.MISSING))
    assert sorted(f"{p.split('.')[0][1:]}/{p.rsplit('/', 1)[1]}" for p in gets) == wanted  # no XML, gif, other figure, package
    two_versions = figures["31000001_F1"].split("/")[0]
    assert [p for p in gets if p.startswith(f"/{two_versions}.")] == [f"/{two_versions}.2/{figures['31000001_F1'].split('/')[1]}"]


@pytest.mark.integration
def test_rows_carry_the_article_licence_and_the_upstream_turns(chain: tuple[ChainResult, list[str]]) -> None:
    result, _ = chain
    rows = result.loaded["instruct-60k"]["train"]
    assert rows["license"] == ["CC BY-NC-ND", "CC BY-NC", "CC BY-NC", "CC0"]  # each article's own licence
    assert rows["commercial_use"] == [False, False, False, True]
    assert rows["article_version"] == [2, 1, 1, 1]  # the newest version of the article in two versions
    upstream = json.loads((dataset_root(result.resolved, None) / "instruct" / "llava_med_instruct_60k.json").read_text(encoding="utf-8"))
    raw = rows.cast_column("images", datasets.List(datasets.Image(decode=False)))
    for row, record in zip(raw, upstream):
        assert row["conversations"] == record["conversations"] and len(row["conversations"]) == 4
        assert "<image>" not in row["question"] and row["images"][0]["path"] == row["figure_path"]
    captions = result.loaded["instruct-fig-captions"]["train"]
    assert captions["domain"] == ["chest_xray", "ct_scan", "ct_scan", "histology"]
    assert all(m and m[0].startswith("As Fig.") for m in captions["inline_mentions"])


@pytest.mark.integration
def test_the_article_that_left_the_subset_and_the_missing_figure_are_errors_named_by_record_file(
    chain: tuple[ChainResult, list[str]]
) -> None:
    result, _ = chain
    figures = dict(result.replica.expected["figures"])
    gone = f"instruct/llava_med_instruct_10k.json[2] {figures[rep.GONE]}"
    missing = f"alignment/llava_med_alignment_500k.json[2] {figures[rep.MISSING]}"
    errors = {e["path"]: e["message"] for e in read_errors(result.out_dir)}
    assert set(errors) == {gone, missing}
    assert "left the PMC Open Access subset" in errors[gone]
    assert f"does not list {figures[rep.MISSING].split('/')[1]}" in errors[missing]


@pytest.mark.integration
def test_eval_is_a_test_split_without_images(chain: tuple[ChainResult, list[str]]) -> None:
    result, _ = chain
    ds = result.loaded["eval-qa50"]
    assert list(ds) == ["test"]
    assert all(images == [] for images in ds["test"]["images"])
    assert ds["test"]["question_type"] == ["conversation", "detailed_description", "conversation"]
    assert all(len(d) == 1 for d in ds["test"]["domains"])


@pytest.mark.integration
def test_conversation_export_writes_llava_and_sharegpt_with_the_figures(chain: tuple[ChainResult, list[str]]) -> None:
    result, _ = chain
    export = export_conversations(result.out_dir, ExportOptions(("llava", "sharegpt")))
    llava = (result.out_dir / "conversations" / "llava" / "instruct-10k-train.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in llava]
    assert [r["id"] for r in records] == ["31000001_F1", "31000002_F1"]
    for record in records:
        assert sum(t["value"].count("<image>") for t in record["conversations"]) == 1  # upstream's token, not a second one
        assert (result.out_dir / "conversations" / record["image"]).is_file()
    assert export.totals()["llava"]["rows"] >= sum(len(ds["train"]) for c, ds in result.loaded.items() if c != "eval-qa50")


@pytest.mark.integration
def test_instruction_rows_concatenate_with_vqa_rad(
    chain: tuple[ChainResult, list[str]], mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result, _ = chain
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "rad-cache")
    rad = run_chain("vqa-rad", mirror, tmp_path / "rad", source="hf")
    ours, theirs = result.loaded["instruct-60k"]["train"], rad.loaded["vqa"]["test"]
    shared = [c for c in ours.features if c in theirs.features]
    assert {"images", "question", "answer", "answer_type", "sample_id"} <= set(shared)
    both = datasets.concatenate_datasets([ours.select_columns(shared), theirs.select_columns(shared)])
    assert len(both) == len(ours) + len(theirs)


def _tree(chain: tuple[ChainResult, list[str]], tmp_path: Path) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(dataset_root(chain[0].resolved, None), root, ignore=shutil.ignore_patterns(".medcat"))
    return root


@pytest.mark.integration
def test_subset_commercial_keeps_cc_by_and_cc0_articles_only(chain: tuple[ChainResult, list[str]], tmp_path: Path) -> None:
    root = _tree(chain, tmp_path)
    options = RecipeOptions(extra={"subset": "commercial"})
    result = normalize_folder(DATASET, root, tmp_path / "out", source="json", configs=["instruct-60k"], options=options)
    rows = datasets.load_dataset(str(result.out_dir), "instruct-60k")["train"]
    assert rows["license"] == ["CC0"] and rows["commercial_use"] == [True]


@pytest.mark.integration
def test_an_unfetched_figure_and_a_record_without_a_url_line_are_errors(chain: tuple[ChainResult, list[str]], tmp_path: Path) -> None:
    root = _tree(chain, tmp_path)
    pmcid, name = chain[0].replica.expected["figures"]["31000003_F1"].split("/")
    (root / "pmc" / f"{pmcid}.1" / name).unlink()
    path = root / "instruct" / "llava_med_instruct_10k.json"
    records = json.loads(path.read_text(encoding="utf-8"))
    records[0]["id"] = "99999999_F1"
    path.write_text(json.dumps(records), encoding="utf-8")
    result = normalize_folder(DATASET, root, tmp_path / "out", source="json", configs=["instruct-10k", "instruct-60k"])
    reasons = sorted(e["message"] for e in read_errors(result.out_dir))
    assert reasons[0].startswith("99999999_F1 has no line in llava_med_image_urls.jsonl")
    assert any(f"pmc/{pmcid}.1/{name} was not fetched" in r for r in reasons)


@pytest.mark.integration
def test_limit_keeps_the_first_records_and_a_missing_url_list_is_a_usage_error(
    chain: tuple[ChainResult, list[str]], tmp_path: Path
) -> None:
    root = _tree(chain, tmp_path)
    result = normalize_folder(DATASET, root, tmp_path / "out", source="json", configs=["alignment"], options=RecipeOptions(limit=2))
    assert datasets.load_dataset(str(result.out_dir), "alignment")["train"]["id"] == ["31000003_F1", "31000001_F1"]
    (root / "llava_med_image_urls.jsonl").unlink()
    with pytest.raises(UsageError, match="llava_med_image_urls.jsonl was not fetched"):
        normalize_folder(DATASET, root, tmp_path / "out2", source="json", configs=["alignment"])
