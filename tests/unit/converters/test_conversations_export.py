"""Conversation export of a normalized folder: formats, image tokens, images once, counts, atomicity, re-runs.

The dataset is written with the real writer (``test_conversations_data.py``) and read back from
its parquet shards, as ``medcat normalize --conversations`` does.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import datasets
import pytest

from medcat_data.converters.conversations import ExportOptions, FormatName, PromptTemplate, export_conversations
from medcat_data.converters.conversations import formats as formats_module
from medcat_data.converters.conversations.items import RowSkipped, to_item
from medcat_data.errors import UsageError
from tests.unit.converters.test_conversations_data import (
    FIGURE_ROWS,
    UPSTREAM_BYTES,
    UPSTREAM_RECORDS,
    png,
    write_toy_dataset,
)

ALL: tuple[FormatName, ...] = ("llava", "sharegpt", "internvl")


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _paths(record: dict[str, Any]) -> list[str]:
    image = record.get("image")
    return [] if image is None else [image] if isinstance(image, str) else list(image)


def _tokens(record: dict[str, Any]) -> int:
    return sum(turn["value"].count("<image>") for turn in record["conversations"])


def _tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    return write_toy_dataset(tmp_path / "toy")


def test_internvl_has_one_image_token_per_image_and_every_path_exists(toy: Path) -> None:
    export_conversations(toy, ExportOptions(("internvl",)))
    conv = toy / "conversations"
    records = [r for f in sorted((conv / "internvl").glob("*.jsonl")) for r in _lines(f)]
    assert len(records) == 13
    for record in records:
        assert _tokens(record) == len(_paths(record)), record
        assert all((conv / p).is_file() and not Path(p).is_absolute() for p in _paths(record))
    by_id = {r["id"]: r for r in records}
    assert isinstance(by_id["v0"]["image"], str)
    assert len(by_id["v3"]["image"]) == 3
    assert by_id["v3"]["conversations"][0]["value"].startswith("<image>\n<image>\n<image>\nHow many")
    assert "image" not in by_id["q0"]


def test_internvl_meta_names_each_jsonl_with_its_line_count(toy: Path) -> None:
    export_conversations(toy, ExportOptions(("internvl",)))
    conv = toy / "conversations"
    meta = json.loads((conv / "internvl" / "meta.json").read_text())
    assert set(meta) == {f"toy-{s}" for s in ("vqa-train", "vqa-test", "upstream-train", "textqa-train", "textqa-test", "figures-train")}
    for entry in meta.values():
        assert entry["annotation"].endswith(".jsonl")
        assert entry["length"] == len((conv / entry["annotation"]).read_text().splitlines())
        assert entry["repeat_time"] == 1 and entry["data_augment"] is False
        assert (conv / entry["root"]).resolve() == conv.resolve()


def test_llava_one_image_path_token_first_text_only_without_image_multi_image_rows_skipped(toy: Path) -> None:
    result = export_conversations(toy, ExportOptions(("llava",)))
    conv = toy / "conversations"
    vqa = {r["id"]: r for r in _lines(conv / "llava" / "vqa-train.jsonl")}
    assert set(vqa) == {"v0", "v1"}
    assert vqa["v0"]["image"].startswith("images/")
    assert vqa["v0"]["conversations"] == [
        {"from": "human", "value": "<image>\nIs there a fracture?\nA. yes\nB. no"},
        {"from": "gpt", "value": "yes"},
    ]
    text = _lines(conv / "llava" / "textqa-train.jsonl")[0]
    assert "image" not in text and _tokens(text) == 0
    counts = result.summary()["files"]["llava"]
    assert counts["vqa-train"] == {"rows": 2, "skipped": {"missing_image": 1, "multi_image": 2, "no_answer": 1}}
    assert counts["upstream-train"] == {"rows": 2, "skipped": {"multi_image": 2}}
    assert result.totals()["llava"]["skipped_multi_image"] == 4


def test_sharegpt_of_upstream_conversations_equals_the_upstream_records_but_for_paths(toy: Path) -> None:
    export_conversations(toy, ExportOptions(("sharegpt",)))
    conv = toy / "conversations"
    exported = _lines(conv / "sharegpt" / "upstream-train.jsonl")
    assert len(exported) == len(UPSTREAM_RECORDS)
    for ours, upstream in zip(exported, UPSTREAM_RECORDS):
        assert {k: v for k, v in ours.items() if k != "image"} == {k: v for k, v in upstream.items() if k != "image"}
        assert list(ours) == list(upstream)
        assert [(conv / p).read_bytes() for p in ours["image"]] == [UPSTREAM_BYTES[p] for p in upstream["image"]]
        assert "<image>" not in ours["conversations"][0]["value"] or upstream["id"] == "Alignment_VQA_3"


def test_sharegpt_rows_without_upstream_turns_have_image_lists_and_null_modality(toy: Path) -> None:
    export_conversations(toy, ExportOptions(("sharegpt",)))
    record = _lines(toy / "conversations" / "sharegpt" / "textqa-test.jsonl")[0]
    assert record == {
        "id": "q1",
        "image": [],
        "conversations": [
            {"from": "human", "value": "Which vitamin deficiency causes scurvy?\nA. Vitamin A\nB. Vitamin C"},
            {"from": "gpt", "value": "Vitamin C"},
        ],
        "modality": None,
        "body_part": None,
    }


def test_upstream_image_tokens_are_kept_not_doubled(toy: Path) -> None:
    export_conversations(toy, ExportOptions(("llava", "internvl")))
    for fmt in ("llava", "internvl"):
        record = {r["id"]: r for r in _lines(toy / "conversations" / fmt / "upstream-train.jsonl")}["Alignment_VQA_3"]
        assert record["conversations"][0]["value"] == "Image-1: <image>\nWhat is marked?"


def test_upstream_tokens_that_do_not_number_the_images_skip_the_row() -> None:
    item = to_item(
        {"sample_id": "x", "images": [{"bytes": png(1), "path": None}] * 2, "conversations": [{"from": "human", "value": "<image>\nq"}, {"from": "gpt", "value": "a"}]},
        "qa",
        PromptTemplate(),
    )  # fmt: skip
    with pytest.raises(RowSkipped) as info:
        formats_module.internvl(item, ["a.png", "b.png"])
    assert info.value.reason == "image_token_mismatch"
    assert formats_module.sharegpt(item, ["a.png", "b.png"])["conversations"][0]["value"] == "<image>\nq"


def test_each_image_is_written_once_named_by_content(toy: Path) -> None:
    result = export_conversations(toy, ExportOptions(ALL))
    images = [p for p in (toy / "conversations" / "images").rglob("*") if p.is_file()]
    contents = [p.read_bytes() for p in images]
    assert len(set(contents)) == len(contents) == result.images
    # v0 and v6 share one image: both records name the same file.
    v0 = _lines(toy / "conversations" / "internvl" / "vqa-train.jsonl")[0]
    v6 = _lines(toy / "conversations" / "internvl" / "vqa-test.jsonl")[0]
    assert v0["image"] == v6["image"] and v0["image"].endswith(".png")
    assert all(p.suffix in (".png", ".jpg") for p in images)


def test_max_images_skips_and_counts_longer_rows_never_truncates(toy: Path) -> None:
    result = export_conversations(toy, ExportOptions(("internvl", "sharegpt"), max_images=2))
    for fmt in ("internvl", "sharegpt"):
        records = _lines(toy / "conversations" / fmt / "upstream-train.jsonl")
        assert [r["id"] for r in records] == ["Alignment_VQA_0", "Alignment_VQA_1", "Alignment_VQA_3"]
        assert all(len(_paths(r)) <= 2 for r in records)
        assert result.totals()[fmt]["skipped_max_images"] == 2  # v3 and Alignment_VQA_2


def test_image_text_rows_ask_the_template_and_answer_the_caption(toy: Path, tmp_path: Path) -> None:
    template_file = tmp_path / "prompt.txt"
    template_file.write_text("Caption {figure_label}. Cited as:\n{inline_mentions}\n", encoding="utf-8")
    export_conversations(toy, ExportOptions(("llava",), template=PromptTemplate.from_file(template_file)))
    first, second = _lines(toy / "conversations" / "llava" / "figures-train.jsonl")
    assert first["conversations"] == [
        {"from": "human", "value": "<image>\nCaption Figure 1. Cited as:\nAs shown in Figure 1, the nodule is small.\nFigure 1 also shows effusion."},
        {"from": "gpt", "value": FIGURE_ROWS[0].values["caption"]},
    ]
    assert second["conversations"][0]["value"] == "<image>\nCaption . Cited as:\n"


def test_default_template_asks_for_the_caption(toy: Path) -> None:
    export_conversations(toy, ExportOptions(("sharegpt",)))
    record = _lines(toy / "conversations" / "sharegpt" / "figures-train.jsonl")[0]
    assert record["conversations"][0] == {"from": "human", "value": "Write the caption of this figure."}


def test_a_rerun_is_a_no_op_and_a_rebuild_writes_the_same_bytes(toy: Path) -> None:
    first = export_conversations(toy, ExportOptions(ALL))
    before = _tree_bytes(toy / "conversations")
    again = export_conversations(toy, ExportOptions(("internvl", "llava", "sharegpt")))
    assert again.skipped_up_to_date and again.totals() == first.totals()
    (toy / "conversations" / "export.json").unlink()
    rebuilt = export_conversations(toy, ExportOptions(ALL))
    assert not rebuilt.skipped_up_to_date
    assert _tree_bytes(toy / "conversations") == before


def test_other_options_rebuild_and_drop_formats_no_longer_asked(toy: Path) -> None:
    export_conversations(toy, ExportOptions(ALL))
    result = export_conversations(toy, ExportOptions(("llava",)))
    assert not result.skipped_up_to_date
    assert sorted(p.name for p in (toy / "conversations").iterdir()) == ["export.json", "images", "llava"]
    assert not [p for p in toy.iterdir() if p.name.startswith(".conversations")]


def test_a_failed_export_leaves_the_previous_one_and_no_staging_folder(toy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    export_conversations(toy, ExportOptions(("llava",)))
    before = _tree_bytes(toy / "conversations")

    def broken(item: Any, paths: Any) -> dict[str, Any]:
        raise OSError("disk full")

    monkeypatch.setitem(formats_module.FORMATS, "llava", formats_module.Format("llava", broken, max_images=1))
    with pytest.raises(OSError, match="disk full"):
        export_conversations(toy, ExportOptions(("llava",), max_images=5))
    assert _tree_bytes(toy / "conversations") == before
    assert not [p for p in toy.iterdir() if p.name.startswith(".conversations")]


def test_the_dataset_still_loads_with_its_conversations_folder(toy: Path) -> None:
    export_conversations(toy, ExportOptions(ALL))
    ds = datasets.load_dataset(str(toy), "vqa")
    assert ds["train"].num_rows == 6 and ds["test"].num_rows == 1


def test_configs_with_nothing_to_ask_are_reported_not_exported(toy: Path, tmp_path: Path) -> None:
    result = export_conversations(toy, ExportOptions(("llava",)))
    assert result.unsupported == ("labels",)
    only_labels = write_toy_dataset(tmp_path / "labels-only", configs=("labels",))
    with pytest.raises(UsageError, match="vqa, text-qa and image-text"):
        export_conversations(only_labels, ExportOptions(("llava",)))
    assert not (only_labels / "conversations").exists()


def test_a_folder_that_is_not_a_normalize_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="medcat-manifest.json"):
        export_conversations(tmp_path, ExportOptions(("llava",)))


def test_unknown_format_and_negative_max_images_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="llava, sharegpt, internvl"):
        ExportOptions(("alpaca",))  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="--max-images"):
        ExportOptions(("llava",), max_images=-1)


def test_a_missing_shard_is_a_usage_error(toy: Path) -> None:
    shutil.rmtree(toy / "figures")
    with pytest.raises(UsageError, match="run normalize again"):
        export_conversations(toy, ExportOptions(("llava",)))
