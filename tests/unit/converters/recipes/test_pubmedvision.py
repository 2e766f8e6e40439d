"""PubMedVision recipe on hand-made inputs: odd records, loose images, --limit, --split-by."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest
from PIL import Image

from medcat_data.converters.recipes import pubmedvision as recipe
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.errors import UsageError
from tests.unit.converters.recipes.recipe_run import read_errors, run_recipe


def _jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (shade, shade, shade)).save(out, "JPEG")
    return out.getvalue()


def _record(n: int, images: list[str], turns: Any = None) -> dict[str, Any]:
    return {
        "id": f"Alignment_VQA_{n}",
        "image": images,
        "conversations": turns if turns is not None else [{"from": "human", "value": f"Q{n}?"}, {"from": "gpt", "value": f"A{n}."}],
        "modality": "Others",
        "body_part": None,
    }


def _ctx(root: Path, **options: Any) -> RecipeContext:
    return RecipeContext("pubmedvision", "test", root, "hf", root, options=RecipeOptions(**options))


def _write(root: Path, records: list[Any] | str, members: dict[str, bytes]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = records if isinstance(records, str) else json.dumps(records, indent=1)
    (root / recipe.JSON_FILES["alignment"]).write_text(text, encoding="utf-8")
    with zipfile.ZipFile(root / "images_0.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _rows(out: Path, split: str = "train") -> list[dict[str, Any]]:
    ds = datasets.load_dataset(str(out), "alignment", split=split)
    return ds.cast_column("images", datasets.List(datasets.Image(decode=False))).to_list()


def test_odd_records_are_one_error_each_and_unusual_conversations_are_kept_verbatim(tmp_path: Path) -> None:
    three_turns = [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}, {"from": "human", "value": "More?"}]
    good = _record(0, ["images/pmc_0_0.jpg"])
    text = json.dumps(
        [good, _record(1, ["images/pmc_0_0.jpg"], three_turns), 5, {"image": ["images/pmc_0_0.jpg"]},
         _record(4, ["images/pmc_0_0.jpg"], [{"from": "gpt", "value": "only an answer"}])]
    )
    text = text[:-1] + ', {"id": "Alignment_VQA_6", "image": tru}]'  # brackets balance, content does not parse
    _write(tmp_path / "raw", text, {"images/pmc_0_0.jpg": _jpeg(100)})
    out = tmp_path / "out"
    run_recipe(recipe, _ctx(tmp_path / "raw"), ["alignment"], out)
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["Alignment_VQA_0", "Alignment_VQA_1"]
    assert rows[0]["conversations"] is None
    assert rows[1]["conversations"] == three_turns and (rows[1]["question"], rows[1]["answer"]) == ("Q?", "A.")
    assert rows[0]["body_part"] is None and rows[0]["modality"] == "Others"
    errors = read_errors(out)
    name = recipe.JSON_FILES["alignment"]
    assert [e["path"] for e in errors] == [f"{name}[2]", f"{name}[3]", f"{name}[4]", name]
    assert "must be a JSON object" in errors[0]["message"] and "'id'" in errors[1]["message"]
    assert "'human' and a 'gpt' turn" in errors[2]["message"] and "element 5" in errors[3]["message"]


def test_loose_images_are_used_first_and_limit_keeps_the_first_records(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(n, [f"images/pmc_{n}_0.jpg", f"images/pmc_{n}_1.jpg"]) for n in range(5)],
           {f"x/pmc_{n}_{k}.jpg": _jpeg(10) for n in range(5) for k in range(2)})
    (raw / "images").mkdir()
    (raw / "images" / "pmc_0_1.jpg").write_bytes(_jpeg(250))
    out = tmp_path / "out"
    run_recipe(recipe, _ctx(raw, limit=3), ["alignment"], out)
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["Alignment_VQA_0", "Alignment_VQA_1", "Alignment_VQA_2"]
    assert rows[0]["images"][1]["bytes"] == _jpeg(250) and rows[0]["images"][0]["bytes"] == _jpeg(10)
    assert [i["path"] for i in rows[2]["images"]] == ["images/pmc_2_0.jpg", "images/pmc_2_1.jpg"]
    assert read_errors(out) == []


def test_split_by_hashes_the_group_key_with_the_seed(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(n, [f"images/pmc_{n // 2}_0.jpg"]) for n in range(40)], {f"pmc_{n}_0.jpg": _jpeg(n) for n in range(20)})
    out = tmp_path / "out"
    run_recipe(recipe, _ctx(raw, split_by="image", seed=3), ["alignment"], out)
    placed = {s: _rows(out, s) for s in datasets.load_dataset(str(out), "alignment")}
    split_of: dict[str, str] = {}
    for split, rows in placed.items():
        for row in rows:
            assert row["split"] == split
            assert split_of.setdefault(row["images"][0]["path"], split) == split
    assert split_of == {f"images/pmc_{n}_0.jpg": recipe.hashed_split(f"images/pmc_{n}_0.jpg", 3) for n in range(20)}


def test_hashed_split_follows_the_fractions_on_average_and_depends_on_the_seed() -> None:
    counts = Counter(recipe.hashed_split(f"k{i}", 1) for i in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.70) < 0.02 and abs(counts["test"] / 20_000 - 0.15) < 0.02
    assert [recipe.hashed_split(f"k{i}", 1) for i in range(50)] != [recipe.hashed_split(f"k{i}", 2) for i in range(50)]


def test_unknown_split_key_and_unfetched_json_are_usage_errors(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(0, ["images/pmc_0_0.jpg"])], {})
    with pytest.raises(UsageError, match="--split-by takes one of id, image, modality, body_part"):
        recipe.plan("alignment", _ctx(raw, split_by="patient_id"))
    with pytest.raises(UsageError, match="PubMedVision_InstructionTuning_VQA.json was not fetched"):
        recipe.plan("instruction", _ctx(raw))


def test_an_empty_turn_keeps_the_conversation_verbatim(tmp_path: Path) -> None:
    """An exporter rebuilds turns from question/answer only when both hold text, so an empty one is kept as is."""
    empty = [{"from": "human", "value": ""}, {"from": "gpt", "value": "A."}]
    _write(tmp_path / "raw", [_record(0, ["images/pmc_0_0.jpg"], empty)], {"pmc_0_0.jpg": _jpeg(1)})
    run_recipe(recipe, _ctx(tmp_path / "raw"), ["alignment"], tmp_path / "out")
    (row,) = _rows(tmp_path / "out")
    assert row["question"] == "" and row["conversations"] == empty
