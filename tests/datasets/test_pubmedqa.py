"""PubMedQA: the streaming JSON reader, the recipe on hand-written trees (official test split, Hub quirks,
bad records), real upstream records, the whole chain from both main sources (replica → fetch over
loopback → verify → normalize --jobs 1/2 → load) with the Drive companions, and the shared text-qa
columns: concatenation with MedQA and MedMCQA, and the conversation export."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.conversations import ExportOptions, export_conversations
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.converters.schemas import text_qa_features
from medcat_data.datasets.medmcqa import replica as medmcqa_replica
from medcat_data.datasets.medqa import replica as medqa_replica
from medcat_data.datasets.pubmedqa import json_stream
from medcat_data.datasets.pubmedqa import replica as pubmedqa_replica
from medcat_data.errors import UsageError
from medcat_data.loaders import FetchOptions, fetch
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import ChainResult, load, normalize_folder, read_errors, run_chain

DATASET = "pubmedqa"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "pubmedqa"


def _record(decision: Any = "yes", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"QUESTION": "Does it work?", "CONTEXTS": ["c1", "c2"], "LABELS": ["BACKGROUND", "RESULTS"],
                              "MESHES": ["Humans"], "YEAR": "2001", "reasoning_required_pred": "yes",
                              "reasoning_free_pred": "yes", "final_decision": decision, "LONG_ANSWER": "It works."}
    record.update(fields)
    return {k: v for k, v in record.items() if v is not ...}


def _github(root: Path, records: dict[str, Any], test: dict[str, str] | None) -> Path:
    data = root / "github" / "data"
    data.mkdir(parents=True)
    (data / "ori_pqal.json").write_text(json.dumps(records, indent=4), encoding="utf-8")
    if test is not None:
        (data / "test_ground_truth.json").write_text(json.dumps(test), encoding="utf-8")
    return root


# ------------------------------------------------------------------------------------- json_stream


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_members_are_read_one_by_one_whatever_the_chunk_size(tmp_path: Path, chunk: int) -> None:
    data = {"1": {"a": [1, 2.5, "x}"]}, "22": "s", "333": 12345, "4": None, "5": {}}
    path = tmp_path / "f.json"
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")
    assert list(json_stream.iter_members(path, chunk_chars=chunk)) == list(data.items())
    path.write_text("{ }", encoding="utf-8")
    assert list(json_stream.iter_members(path, chunk_chars=chunk)) == []


def test_a_broken_file_yields_what_came_before_then_fails_with_the_offset(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text('{"1": {"a": 1}, "2": {"a": }', encoding="utf-8")
    members = json_stream.iter_members(path, chunk_chars=4)
    assert next(members) == ("1", {"a": 1})
    with pytest.raises(json_stream.MalformedJson, match="malformed JSON at character"):
        next(members)
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(json_stream.MalformedJson, match=r"expected '\{', found '\['"):
        list(json_stream.iter_members(path))


# ------------------------------------------------------------------------------------- the recipe


def test_labeled_split_is_the_official_pmid_list_and_columns_keep_upstream_fields(tmp_path: Path) -> None:
    root = _github(tmp_path, {"11": _record("yes"), "12": _record("no", YEAR=None), "13": _record("maybe")}, {"12": "no"})
    out = normalize_folder(DATASET, root, tmp_path / "out", source="github").out_dir
    ds = load(out, "pqa-labeled")
    assert ds["test"]["sample_id"] == ["pqa-labeled/12"] and ds["train"]["pubid"] == ["11", "13"]
    row = ds["train"][1]
    assert (row["answer"], row["answer_idx"]) == ("maybe", 2)
    assert [o["text"] for o in row["options"]] == ["yes", "no", "maybe"]
    assert row["contexts"] == ["c1", "c2"] and row["context_labels"] == ["BACKGROUND", "RESULTS"]
    assert (row["long_answer"], row["year"], row["explanation"], row["reasoning_free_pred"]) == ("It works.", "2001", None, "yes")
    assert ds["test"][0]["year"] is None
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "pqa-labeled test is the official evaluation split" in card and "(1 PMIDs listed)" in card


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (_record("perhaps"), "final_decision 'perhaps' is not one of yes, no, maybe"),
        (_record(...), "final_decision None"),
        (_record(QUESTION=" "), "no QUESTION"),
        (_record(CONTEXTS="one paragraph"), "CONTEXTS must be a list of strings, got str"),
        (_record(reasoning_required_pred="y"), "reasoning_required_pred 'y' is not one of"),
        ("not an object", "expected an object, got str"),
    ],
)
def test_a_bad_record_is_one_error_naming_file_and_pmid(tmp_path: Path, record: Any, reason: str) -> None:
    root = _github(tmp_path, {"11": _record(), "99": record}, {})
    out = normalize_folder(DATASET, root, tmp_path / "out", source="github").out_dir
    (error,) = read_errors(out)
    assert error["path"] == "data/ori_pqal.json#99" and reason in error["message"]
    assert load(out, "pqa-labeled")["train"]["pubid"] == ["11"]


def test_labeled_without_the_split_list_is_a_usage_error_naming_the_companion(tmp_path: Path) -> None:
    root = _github(tmp_path, {"11": _record()}, None)
    with pytest.raises(UsageError, match=r"needs data/test_ground_truth.json .* --source official-split"):
        normalize_folder(DATASET, root, tmp_path / "out", source="github")


def test_unfetched_drive_sets_are_pointed_at_and_the_fetched_config_builds(tmp_path: Path) -> None:
    root = _github(tmp_path, {"11": _record()}, {})
    with pytest.raises(UsageError, match=r"no config 'pqa-unlabeled' in this fetch.*--source pqa-u"):
        normalize_folder(DATASET, root, tmp_path / "out", source="github", configs=("pqa-unlabeled",))
    unlabeled = root / "gdrive" / "ori_pqau.json"
    unlabeled.parent.mkdir()
    unlabeled.write_text(json.dumps({"21": _record(..., reasoning_required_pred=..., reasoning_free_pred=...)}), encoding="utf-8")
    out = normalize_folder(DATASET, root, tmp_path / "out", source="github", configs=("pqa-unlabeled",)).out_dir
    (row,) = load(out, "pqa-unlabeled")["train"]
    assert (row["answer"], row["answer_idx"], row["reasoning_required_pred"], row["sample_id"]) == (None, None, None, "pqa-unlabeled/21")


def test_a_file_that_stops_being_json_is_one_error_and_the_records_before_it_are_kept(tmp_path: Path) -> None:
    root = _github(tmp_path, {"11": _record()}, {})
    path = root / "github/data/ori_pqal.json"
    path.write_text(path.read_text(encoding="utf-8")[:-2] + ', "12": {"QUESTION": ', encoding="utf-8")
    out = normalize_folder(DATASET, root, tmp_path / "out", source="github").out_dir
    (error,) = read_errors(out)
    assert error["path"] == "data/ori_pqal.json" and "the rest of the file is not read" in error["message"]
    assert load(out, "pqa-labeled")["train"]["pubid"] == ["11"]


def test_hub_rows_join_character_lists_and_limit_keeps_the_first_rows(tmp_path: Path) -> None:
    context = {"contexts": ["c"], "labels": ["RESULTS"], "meshes": [], "reasoning_required_pred": ["n", "o"], "reasoning_free_pred": ["yes"]}
    rows = [{"pubid": 11 + i, "question": "Q?", "context": context, "long_answer": "L", "final_decision": "no"} for i in range(3)]
    path = tmp_path / "hf" / "pqa_labeled" / "train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=2)
    split = tmp_path / "github" / "data" / "test_ground_truth.json"
    split.parent.mkdir(parents=True)
    split.write_text('{"12": "no"}', encoding="utf-8")
    out = normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf").out_dir
    ds = load(out, "pqa-labeled")
    assert ds["train"]["pubid"] == ["11", "13"] and ds["test"]["pubid"] == ["12"]
    assert (ds["test"][0]["reasoning_required_pred"], ds["test"][0]["reasoning_free_pred"], ds["test"][0]["year"]) == ("no", "yes", None)
    limited = normalize_folder(DATASET, tmp_path, tmp_path / "limited", source="hf", options=RecipeOptions(limit=2))
    assert dict(limited.write.rows["pqa-labeled"]) == {"train": 1, "test": 1}


def test_real_records_of_the_authors_repository_go_through_the_recipe(tmp_path: Path) -> None:
    """Two real PQA-L records, PMIDs 21645374 (official test, yes) and 10808977 (not in the test list),
    from pubmedqa/pubmedqa data/ori_pqal.json at commit 1cbae8e (MIT), with their line of
    data/test_ground_truth.json."""
    shutil.copytree(FIXTURES, tmp_path / "github")
    out = normalize_folder(DATASET, tmp_path, tmp_path / "out", source="github").out_dir
    ds = load(out, "pqa-labeled")
    (test,) = ds["test"]
    (train,) = ds["train"]
    assert test["sample_id"] == "pqa-labeled/21645374" and test["answer"] == "yes"
    assert test["question"].startswith("Do mitochondria play a role in remodelling lace plant leaves")
    assert test["context_labels"] == ["BACKGROUND", "RESULTS"] and len(test["contexts"]) == 2 and test["year"] == "2011"
    assert train["pubid"] == "10808977" and train["answer"] == "yes" and train["reasoning_required_pred"] == "yes"
    assert train["context_labels"][0] == "BACKGROUND" and "Mammography" in train["meshes"]
    assert read_errors(out) == []


# ------------------------------------------------------------------------------------- the chain


def _rows(result: ChainResult, config: str) -> dict[str, dict[str, Any]]:
    ds = datasets.load_dataset(str(result.out_dir), config)
    return {r["sample_id"]: {k: v for k, v in r.items() if k != "year"} for split in ds.values() for r in split}


@pytest.mark.integration
def test_hf_chain_rebuilds_the_official_test_split_from_the_companion_list(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="hf")
    labeled = result.loaded["pqa-labeled"]
    listed = json.loads((mirror.root / pubmedqa_replica.GITHUB_DIR / "test_ground_truth.json").read_text(encoding="utf-8"))
    assert sorted(labeled["test"]["pubid"]) == sorted(listed)
    assert {r["pubid"]: r["answer"] for r in labeled["test"]} == listed
    assert set(result.loaded["pqa-unlabeled"]["train"]["answer"]) == {None}
    assert set(result.loaded["pqa-artificial"]["train"]["answer"]) <= {"yes", "no"}
    assert any(r.path.endswith("/test_ground_truth.json") for r in mirror.requests)


@pytest.mark.integration
def test_github_and_drive_files_give_the_rows_of_the_hub_copy(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = run_chain(DATASET, mirror, tmp_path / "hf", source="hf")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    github = run_chain(DATASET, mirror, tmp_path / "github", source="github")
    assert set(github.loaded) == {"pqa-labeled"}
    assert _rows(github, "pqa-labeled") == _rows(hf, "pqa-labeled")
    # The Drive sets come only when asked for; then the github source builds every config.
    resolved = resolve(DATASET, load_registry())
    for companion in ("pqa-u", "pqa-a"):
        report = fetch(resolved, FetchOptions(mirror=mirror.url, accept_license=True, source=companion, jobs=2))
        assert report.ok, report.to_dict()
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache-2")
    full = run_chain(DATASET, mirror, tmp_path / "full", source="github")
    for config in ("pqa-labeled", "pqa-unlabeled", "pqa-artificial"):
        assert _rows(full, config) == _rows(hf, config), config
    drive = [r for r in mirror.requests if r.path in ("/uc", "/download")]
    assert drive and all(r.status in (200, 303) for r in drive)


# ------------------------------------------------------------------------------------- shared columns


def _normalized(tmp_path: Path) -> dict[str, datasets.DatasetDict]:
    """Normalize the replicas of MedQA (us), MedMCQA (hf) and PubMedQA (hf) without fetching."""
    served = tmp_path / "served"
    for builder in (medqa_replica, medmcqa_replica, pubmedqa_replica):
        builder.build(served, seed=0)
    medqa_root = tmp_path / "medqa"
    medqa_root.mkdir()
    with zipfile.ZipFile(served / medqa_replica.URL_PATH) as zf:
        zf.extractall(medqa_root)
    shutil.copytree(served / medmcqa_replica.HF_REPO, tmp_path / "medmcqa" / "hf")
    shutil.copytree(served / pubmedqa_replica.HF_REPO, tmp_path / "pubmedqa" / "hf")
    shutil.copytree(served / pubmedqa_replica.GITHUB_DIR, tmp_path / "pubmedqa" / "github" / "data")
    outs = {
        "medqa": normalize_folder("medqa", medqa_root, tmp_path / "out-medqa", configs=("us",)).out_dir,
        "medmcqa": normalize_folder("medmcqa", tmp_path / "medmcqa", tmp_path / "out-medmcqa", source="hf").out_dir,
        "pubmedqa": normalize_folder(DATASET, tmp_path / "pubmedqa", tmp_path / "out-pubmedqa", source="hf").out_dir,
    }
    return {name: load(out, {"medqa": "us", "medmcqa": "qa", "pubmedqa": "pqa-labeled"}[name]) for name, out in outs.items()}


def test_text_qa_configs_concatenate_with_medqa_on_the_shared_columns(tmp_path: Path) -> None:
    loaded = _normalized(tmp_path)
    shared = list(text_qa_features())
    parts = [ds[split].select_columns(shared) for ds in loaded.values() for split in ds]
    both = datasets.concatenate_datasets(parts)
    assert len(both) == sum(len(p) for p in parts)
    assert both.features == text_qa_features()
    sources = {s.split("@")[0] for s in both["source"]}
    assert sources == {"medqa", "medmcqa", "pubmedqa"}
    evaluation = [r for r in both if r["source"].startswith("medmcqa") and r["split"] == "test"]
    assert evaluation and {r["answer"] for r in evaluation} == {None}


def test_conversation_export_covers_both_and_skips_the_answerless_test_rows(tmp_path: Path) -> None:
    _normalized(tmp_path)
    medmcqa_out, pubmedqa_out = tmp_path / "out-medmcqa" / "medmcqa", tmp_path / "out-pubmedqa" / "pubmedqa"
    result = export_conversations(medmcqa_out, ExportOptions(("sharegpt",)))
    files = result.counts["sharegpt"]
    assert files["qa-test"].rows == 0 and files["qa-test"].skipped == {"no_answer": medmcqa_replica.COUNTS["test"]}
    (record, *_) = [json.loads(line) for line in (medmcqa_out / "conversations/sharegpt/qa-validation.jsonl").read_text().splitlines()]
    human, gpt = record["conversations"]
    assert human["value"].splitlines()[1].startswith("A. ") and len(human["value"].splitlines()) == 5
    assert record["image"] == [] and gpt["value"]
    export_conversations(pubmedqa_out, ExportOptions(("llava",)))
    lines = (pubmedqa_out / "conversations/llava/pqa-labeled-test.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["id"].startswith("pqa-labeled/") and "image" not in first
    assert first["conversations"][0]["value"].endswith("A. yes\nB. no\nC. maybe")
    # The question is about the abstract: the human turn carries its paragraphs first.
    human = first["conversations"][0]["value"]
    assert human.startswith("Context:\n") and human.index("Context:") < human.index("A. yes")
    assert len(human.split("\n\n", 1)[0].splitlines()) > 1
    assert first["conversations"][1]["value"] in ("yes", "no", "maybe")
