"""PathVQA: the recipe on hand-written trees (answer types, split names, duplicates, sample ids, the
pickle policy, bad items), real upstream records, the whole chain from both sources (replica →
fetch over loopback, Hub API and Drive → verify → normalize --jobs 1/2 → load), what the two
sources must agree on, concatenation with VQA-RAD and the conversation export."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path
from typing import Any

import datasets
import pytest
from PIL import Image

from medcat_data.converters.conversations import ExportOptions, export_conversations
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.datasets.pathvqa import recipe as pathvqa
from medcat_data.errors import UpstreamFormatError, UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import normalize_folder, read_errors, run_chain

DATASET = "pathvqa"
FIXTURES = Path(__file__).parents[1] / "fixtures"


def _jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), (shade, 90, 140)).save(buffer, "JPEG")
    return buffer.getvalue()


def _drive_tree(root: Path, records: dict[str, list[Any]], images: dict[str, bytes]) -> None:
    """Write pvqa/qas/<s>/<s>_qa.pkl and pvqa/images/<s>/<stem>.jpg as the extracted pvqa.zip holds them."""
    top = root / "gdrive" / "pvqa"
    for split, rows in records.items():
        (top / "qas" / split).mkdir(parents=True)
        (top / "qas" / split / f"{split}_qa.pkl").write_bytes(pickle.dumps(rows, protocol=2))
    for stem, data in images.items():
        folder = top / "images" / stem.split("_")[0]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.jpg").write_bytes(data)


def _normalize(root: Path, source: str = "gdrive", **options: Any) -> Path:
    return normalize_folder(DATASET, root, root / "out", source=source, options=RecipeOptions(**options)).out_dir


@pytest.mark.parametrize(("answer", "expected"), [("yes", "closed"), ("No", "closed"), (" YES ", "closed"), ("no evidence", "open"), ("liver", "open")])
def test_answer_type_is_closed_for_yes_and_no_answers_only(answer: str, expected: str) -> None:
    assert pathvqa.answer_type(answer) == expected


def test_questions_fold_the_way_the_hub_build_does() -> None:
    assert pathvqa.fold_question("What  is   PRESENT ?") == pathvqa.fold_question("what is present?") == "what is present?"
    assert pathvqa.sample_key(b"x", "Is it red ?") == pathvqa.sample_key(b"x", "is it red?") != pathvqa.sample_key(b"y", "is it red?")


def test_a_pickle_that_names_a_class_or_function_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """The refusal happens in find_class, before the named callable could run: the marker file never appears."""

    class _Plant:
        def __reduce__(self) -> tuple[Any, tuple[str, str]]:
            return (Path.write_text, (tmp_path / "ran", "code ran"))

    path = tmp_path / "train_qa.pkl"
    path.write_bytes(pickle.dumps([{"image": "train_0000", "question": "q", "answer": _Plant()}]))
    with pytest.raises(UpstreamFormatError, match=r"pathvqa: qas/train_qa.pkl is not a plain-data pickle \(refusing to load pathlib"):
        pathvqa.load_data_pickle(path, "qas/train_qa.pkl")
    assert not (tmp_path / "ran").exists()
    assert pathvqa.load_data_pickle(_plain(tmp_path), "plain.pkl") == [{"image": "a", "question": "b", "answer": 1.5}]


def _plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps([{"image": "a", "question": "b", "answer": 1.5}]))
    return path


def test_drive_tree_splits_duplicates_and_bad_records(tmp_path: Path) -> None:
    """val is validation; exact duplicate triplets are dropped and counted; a repeat with another answer is kept."""
    records = {
        "train": [
            {"image": "train_0000", "question": "Is this liver ?", "answer": "yes"},
            {"image": "train_0000", "question": "Is this liver ?", "answer": "yes"},  # exact duplicate: dropped
            {"image": "train_0000", "question": "is this LIVER?", "answer": "no"},  # same folded question: -2
            {"image": "train_0001", "question": "What is shown ?", "answer": None},
            {"image": "train_0404", "question": "What is shown ?", "answer": "cells"},
            "not a record",
        ],
        "val": [{"image": "val_0000", "question": "What is shown ?", "answer": "Granuloma"}],
        "test": [{"image": "test_0000", "question": "Where is this from ?", "answer": "kidney"}],
    }
    _drive_tree(tmp_path, records, {"train_0000": _jpeg(10), "train_0001": _jpeg(40), "val_0000": _jpeg(70), "test_0000": _jpeg(10)})
    out = _normalize(tmp_path)
    ds = datasets.load_dataset(str(out), "vqa")
    assert {s: len(ds[s]) for s in ds} == {"train": 2, "validation": 1, "test": 1}
    key = pathvqa.sample_key(_jpeg(10), "is this liver?")
    assert ds["train"]["sample_id"] == [key, f"{key}-2"]
    names = ds["train"].features["answer_type"].names
    assert [names[v] for v in ds["train"]["answer_type"]] == ["closed", "closed"]
    assert ds["validation"]["answer"] == ["Granuloma"] and ds["validation"]["image_name"] == ["val_0000"]
    assert ds["validation"][0]["answer_type"] == names.index("open")
    errors = {e["path"]: e for e in read_errors(out)}
    assert set(errors) == {"pvqa/qas/train/train_qa.pkl#3", "pvqa/images/train/train_0404.jpg", "pvqa/qas/train/train_qa.pkl#5"}
    assert "image 'train_0404' is not in the fetched images folder" in errors["pvqa/images/train/train_0404.jpg"]["message"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "exact duplicate (image, question, answer) triplets dropped within a split, as the Hub build does: train 1" in card
    assert "1 image(s) (by the sha1 of their bytes) hold questions in more than one split" in card  # train_0000 = test_0000


def test_a_source_folder_with_neither_layout_is_explained(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    with pytest.raises(UsageError, match=r"pathvqa: found neither pvqa/qas/ \(source gdrive\) nor data/"):
        _normalize(tmp_path, "hf")


def test_real_upstream_records_run_through_the_recipe(tmp_path: Path) -> None:
    """A real PathVQA record (MIT-tagged annotations): val_0261 as quoted in the docstring of a public
    PathVQA loader (a ``PathVQADataset`` class found through code search). Only the text is real; the
    image is drawn here, and the record is pickled the way upstream's val_qa.pkl holds it."""
    rows = json.loads((FIXTURES / "pathvqa_records.json").read_text(encoding="utf-8"))
    _drive_tree(tmp_path, {"val": rows}, {r["image"]: _jpeg(20 + 30 * i) for i, r in enumerate(rows)})
    out = _normalize(tmp_path)
    ds = datasets.load_dataset(str(out), "vqa")["validation"]
    assert read_errors(out) == [] and len(ds) == len(rows)
    assert ds[0]["question"] == "What have lost their nuclei?" and ds[0]["answer"] == "neutrophils"


@pytest.mark.integration
def test_hf_chain_keeps_the_hub_text_and_three_splits(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="hf")
    ds = result.loaded["vqa"]
    assert set(ds) == {"train", "validation", "test"}
    assert all(q == q.lower() and " ?" not in q for q in ds["train"]["question"])
    names = ds["train"].features["answer_type"].names
    assert {names[v] for v in ds["train"]["answer_type"]} == {"open", "closed"}
    assert all(n.startswith("img_") for n in ds["test"]["image_name"])


@pytest.mark.integration
def test_both_sources_share_sample_ids_and_concatenate_with_vqa_rad(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drive = run_chain(DATASET, mirror, tmp_path / "gdrive", source="gdrive")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    hub = run_chain(DATASET, mirror, tmp_path / "hf", source="hf")
    for split in ("train", "validation", "test"):
        a, b = drive.loaded["vqa"][split], hub.loaded["vqa"][split]
        assert a.features == b.features and a["sample_id"] == b["sample_id"]
        assert [x.lower() for x in a["answer"]] == b["answer"] and a["answer_type"] == b["answer_type"]
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "rad-cache")
    rad = run_chain("vqa-rad", mirror, tmp_path / "rad", source="hf")
    ours, theirs = hub.loaded["vqa"]["test"], rad.loaded["vqa"]["test"]
    shared = [c for c in ours.features if c in theirs.features]
    assert "image_name" in shared
    both = datasets.concatenate_datasets([ours.select_columns(shared), theirs.select_columns(shared)])
    assert len(both) == len(ours) + len(theirs)


@pytest.mark.integration
def test_the_conversation_export_covers_every_split(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="gdrive")
    export = export_conversations(result.out_dir, ExportOptions(("llava", "sharegpt")))
    assert export.totals()["llava"]["rows"] == sum(len(result.loaded["vqa"][s]) for s in result.loaded["vqa"])
    files = sorted(p.name for p in (result.out_dir / "conversations" / "sharegpt").iterdir())
    assert files == ["vqa-test.jsonl", "vqa-train.jsonl", "vqa-validation.jsonl"]
    record = json.loads((result.out_dir / "conversations" / "llava" / "vqa-test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert record["conversations"][0]["value"].startswith("<image>\n") and record["image"].startswith("images/")
