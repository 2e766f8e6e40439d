"""VQA-RAD recipe on hand-written trees: answer types, splits, paraphrase groups, sample ids, bad items."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medcat_data.converters.recipes import vqa_rad
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.errors import UsageError
from tests.unit.converters.recipes.recipe_run import read_errors, run_recipe


def _jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), shade).save(buffer, "JPEG")
    return buffer.getvalue()


def _item(qid: int, image: str, question: str, phrase: str, link: str, answer: Any = "Yes", atype: Any = "CLOSED") -> dict[str, Any]:
    return {"qid": qid, "phrase_type": phrase, "qid_linked_id": link, "image_case_url": "", "image_name": image,
            "image_organ": "CHEST", "evaluation": "given", "question": question, "question_rephrase": "NULL",
            "question_relation": "NULL", "question_frame": "NULL", "question_type": "PRES", "answer": answer,
            "answer_type": atype}


def _ctx(root: Path, source: str, **options: Any) -> RecipeContext:
    return RecipeContext("vqa-rad", "unversioned", root, source, root / source, RecipeOptions(**options))


def _osf(root: Path, items: list[dict[str, Any]], images: tuple[str, ...] = ("synpic1.jpg", "synpic2.jpg")) -> RecipeContext:
    folder = root / "osf" / "VQA_RAD Image Folder"
    folder.mkdir(parents=True)
    for i, name in enumerate(images):
        (folder / name).write_bytes(_jpeg(40 * i + 20))
    (root / "osf" / "VQA_RAD Dataset Public.json").write_text(json.dumps(items), encoding="utf-8")
    return _ctx(root, "osf")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("CLOSED", "closed"), ("OPEN", "open"), ("OPEN ", "open"), ("closed", "closed"), ("YES", None), (None, None), (1, None)],
)
def test_answer_type_comes_only_from_upstream_spellings(value: Any, expected: str | None) -> None:
    assert vqa_rad.answer_type(value) == expected


def test_sample_key_ignores_case_and_spacing_of_the_question_but_not_the_image() -> None:
    image = vqa_rad.image_key(_jpeg(20))
    assert vqa_rad.sample_key(image, "Is there  a mass?") == vqa_rad.sample_key(image, "is there a MASS?")
    assert vqa_rad.sample_key(image, "Is there a mass?") != vqa_rad.sample_key(vqa_rad.image_key(_jpeg(60)), "Is there a mass?")
    assert vqa_rad.sample_key(image, "Is there a mass?").startswith(image + "-") and len(image) == 12


def test_osf_split_keeps_crossing_paraphrases_and_says_so(tmp_path: Path) -> None:
    items = [
        _item(1, "synpic1.jpg", "Is there a mass?", "freeform", "a"),
        _item(2, "synpic1.jpg", "Does it show a mass?", "para", "a"),
        _item(3, "synpic2.jpg", "How many nodules?", "test_freeform", "b", answer=3, atype="OPEN"),
        _item(4, "synpic2.jpg", "What is the count of nodules?", "test_para", "b", answer=3, atype="OPEN"),
        _item(5, "synpic2.jpg", "Is the heart enlarged?", "test_freeform", "c"),
        _item(6, "synpic1.jpg", "Is the heart big?", "para", "c"),  # a paraphrase of a test question, in train
    ]
    ctx = _osf(tmp_path, items)
    out = tmp_path / "out"
    run_recipe(vqa_rad, ctx, ["vqa"], out)
    ds = datasets.load_dataset(str(out), "vqa")
    assert {s: len(ds[s]) for s in ds} == {"train": 3, "test": 3}
    assert sorted(ds["test"]["answer"]) == ["3", "3", "Yes"]
    assert set(ds["train"]["qid_linked_id"]) & set(ds["test"]["qid_linked_id"]) == {"c"}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "1 paraphrase group(s) (qid_linked_id) have questions in both splits" in card
    assert read_errors(out) == []


def test_osf_bad_items_are_reported_and_repeats_get_distinct_ids(tmp_path: Path) -> None:
    items = [
        _item(1, "synpic1.jpg", "Is there a mass?", "freeform", "a"),
        _item(2, "synpic1.jpg", "Is there a mass?", "freeform", "b"),  # an exact repeat upstream
        _item(3, "synpic1.jpg", "Is it normal?", "freeform", "c", atype="YES"),
        _item(4, "synpic9.jpg", "Is it axial?", "freeform", "d"),
        _item(5, "synpic2.jpg", "Which side?", "freeform", "e", answer=None, atype="OPEN"),
    ]
    ctx = _osf(tmp_path, items)
    out = tmp_path / "out"
    run_recipe(vqa_rad, ctx, ["vqa"], out)
    ds = datasets.load_dataset(str(out), "vqa")
    key = vqa_rad.sample_key(vqa_rad.image_key(_jpeg(20)), "Is there a mass?")
    assert sorted(ds["train"]["sample_id"]) == [key, f"{key}-q2"]
    assert set(ds["train"]["image_name"]) == {"synpic1.jpg"}
    errors = {e["path"]: e for e in read_errors(out)}
    assert set(errors) == {"VQA_RAD Dataset Public.json#2", "VQA_RAD Image Folder/synpic9.jpg", "VQA_RAD Dataset Public.json#4"}
    assert "answer_type 'YES' is neither CLOSED nor OPEN" in errors["VQA_RAD Dataset Public.json#2"]["message"]
    assert "qid 4" in errors["VQA_RAD Image Folder/synpic9.jpg"]["message"]


def _parquet(path: Path, rows: list[dict[str, Any]], *, row_group_size: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("question", pa.string()), ("answer", pa.string()),
    ]))
    pq.write_table(table, path, row_group_size=row_group_size)


def test_hf_rows_are_keyed_by_image_content_across_row_groups_and_limit_stops_early(tmp_path: Path) -> None:
    rows = [
        {"image": {"bytes": _jpeg(10), "path": None}, "question": "Is there a mass?", "answer": "no"},
        {"image": {"bytes": _jpeg(20), "path": None}, "question": "Is there a mass?", "answer": "yes"},
        {"image": {"bytes": _jpeg(20), "path": "synpic1.jpg"}, "question": "Is there a MASS?", "answer": "yes"},
        {"image": {"bytes": b"", "path": None}, "question": "Is it axial?", "answer": "yes"},
    ]
    _parquet(tmp_path / "hf/data/train-00000-of-00001-x.parquet", rows)
    _parquet(tmp_path / "hf/data/test-00000-of-00001-y.parquet", rows[1:2])
    out = tmp_path / "out"
    run_recipe(vqa_rad, _ctx(tmp_path, "hf"), ["vqa"], out)
    ds = datasets.load_dataset(str(out), "vqa")
    first, key = (vqa_rad.sample_key(vqa_rad.image_key(_jpeg(shade)), "Is there a mass?") for shade in (10, 20))
    assert ds["train"]["sample_id"] == [first, key, f"{key}-train2"]
    assert ds["test"]["sample_id"] == [f"{key}-test0"]
    assert set(ds["train"]["answer_type"]) == {None} and ds["train"]["image_name"] == [None, None, "synpic1.jpg"]
    (error,) = read_errors(out)
    assert error["path"] == "data/train-00000-of-00001-x.parquet#3" and "no bytes" in error["message"]
    limited = vqa_rad.plan("vqa", _ctx(tmp_path, "hf", limit=3))
    assert sum(len(u.sample_ids) for u in limited.units) == 3


def test_a_source_folder_with_neither_layout_is_explained(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    with pytest.raises(UsageError, match=r"found neither 'VQA_RAD Dataset Public.json' \(source osf\) nor data/train-\*.parquet"):
        vqa_rad.plan("vqa", _ctx(tmp_path, "hf"))


def test_both_layouts_declare_the_same_features(tmp_path: Path) -> None:
    osf, hf = vqa_rad.features("vqa", _ctx(tmp_path, "osf")), vqa_rad.features("vqa", _ctx(tmp_path, "hf"))
    assert osf == hf
    assert list(osf)[:6] == ["images", "question", "answer", "answer_type", "options", "answer_idx"]


def test_a_hub_copy_with_another_image_column_is_refused_with_the_type_found(tmp_path: Path) -> None:
    path = tmp_path / "hf/data/train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"image": [b"x"], "question": ["q"], "answer": ["a"]}), path)
    with pytest.raises(UsageError, match="column 'image' is binary, not the Hub's struct of bytes and path"):
        vqa_rad.plan("vqa", _ctx(tmp_path, "hf"))
