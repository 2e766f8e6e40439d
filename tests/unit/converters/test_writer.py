"""The dataset writer: typed shards that load, a card, a manifest, errors, determinism, atomicity, skipping."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
import yaml
from datasets import ClassLabel, Image, Value
from PIL import Image as PILImage

from medcat_data.catalog.schema import Task
from medcat_data.converters.card import CardInfo
from medcat_data.converters.build_manifest import BuildKey, read_manifest, stat_inputs
from medcat_data.converters.executor import convert_units
from medcat_data.converters.schemas import image_classification_features, tabular_features
from medcat_data.converters.units import ErrorRecord, InputHash, Row, UnitResult
from medcat_data.converters.writer import (
    ConfigSpec,
    DatasetSpec,
    DatasetWriter,
    WriterOptions,
    write_dataset,
)
from medcat_data.errors import ConvertError, UsageError

CITATION = "@article{doe2024, title={A dataset}, year={2024}}\n"


def _png(value: int, size: int = 8) -> bytes:
    buf = io.BytesIO()
    PILImage.new("L", (size, size), value).save(buf, "PNG")
    return buf.getvalue()


def _spec(*configs: ConfigSpec) -> DatasetSpec:
    if not configs:
        configs = (ConfigSpec("default", image_classification_features({"label": ["cat", "dog"]}), Task.IMAGE_CLASSIFICATION),)
    card = CardInfo(
        pretty_name="Toy",
        summary="A toy dataset of grey squares.",
        license_spdx="CC-BY-4.0",
        license_name="Creative Commons Attribution 4.0",
        citation=CITATION,
        tags=("medical", "medcat"),
        upstream_splits={"training": "train"},
    )
    return DatasetSpec("toy@1.0", configs, card)


def _rows(n: int, split_of: object = None) -> list[Row]:
    rows = []
    for i in range(n):
        split = "test" if i % 5 == 4 else "train"
        rows.append(
            Row("default", split, {"image": {"bytes": _png(i), "path": None}, "label": ("cat", "dog")[i % 2], "sample_id": f"img{i:03d}"})
        )
    return rows


@dataclass(frozen=True)
class RowsUnit:
    """A work unit that yields rows given up front (what a recipe's unit yields after converting)."""

    name: str
    rows: tuple[Row, ...]


def _yield_rows(unit: RowsUnit) -> Iterator[Row]:
    yield from unit.rows


def encode_units(spec: DatasetSpec, *chunks: Iterable[Row]) -> Iterator[UnitResult]:
    """Encode each chunk of rows as one unit through the executor, as ``normalize`` feeds the writer."""
    units = [RowsUnit(f"unit{i}", tuple(rows)) for i, rows in enumerate(chunks)]
    return convert_units(units, _yield_rows, spec.encoder())


def add_rows(writer: DatasetWriter, rows: Iterable[Row]) -> None:
    """Add rows to an open writer as one executor unit."""
    for result in encode_units(writer.spec, rows):
        writer.add_unit(result)


def _write(out: Path, rows: list[Row], *, options: WriterOptions = WriterOptions(), key: BuildKey | None = None) -> None:
    with DatasetWriter(out, _spec(), key or BuildKey((), {"max_size": None}), options) as writer:
        add_rows(writer, rows)
        writer.add_error(ErrorRecord("broken.png", "decode", "SampleError", "truncated"))
        writer.close()


def _parquet_bytes(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def test_load_dataset_returns_typed_features_and_rows(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(10))
    ds = datasets.load_dataset(str(out), "default")
    train = ds["train"]
    assert train.features["image"] == Image()
    assert train.features["label"] == ClassLabel(names=["cat", "dog"])
    assert train.features["sample_id"] == Value("string")
    assert (ds["train"].num_rows, ds["test"].num_rows) == (8, 2)
    first = train[0]
    assert first["image"].size == (8, 8) and first["image"].getpixel((0, 0)) == 0
    assert (first["label"], first["sample_id"], first["source"], first["split"]) == (0, "img000", "toy@1.0", "train")


def test_shards_are_bounded_by_rows_and_named_with_the_final_count(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(25), options=WriterOptions(row_group_rows=3, max_shard_rows=7))
    names = sorted(p.name for p in (out / "default").iterdir())
    assert names == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00004.parquet",
        "train-00001-of-00004.parquet",
        "train-00002-of-00004.parquet",
        "train-00003-of-00004.parquet",
    ]
    sizes = [pq.ParquetFile(out / "default" / n).metadata.num_rows for n in names[1:]]
    assert sizes == [6, 6, 6, 2] and all(
        g.num_rows <= 3 for n in names for g in _row_groups(out / "default" / n)
    )


def _row_groups(path: Path) -> list[pq.RowGroupMetaData]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i) for i in range(meta.num_row_groups)]


def test_shards_are_bounded_by_bytes(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    rows = _rows(20)
    row_bytes = max(batch.nbytes for result in encode_units(_spec(), rows[:1]) for _, _, batch in result.batches)
    _write(out, rows, options=WriterOptions(row_group_rows=1, max_shard_bytes=3 * row_bytes + row_bytes // 2))
    train = sorted((out / "default").glob("train-*.parquet"))
    assert [pq.ParquetFile(p).metadata.num_rows for p in train] == [3, 3, 3, 3, 3, 1]


def test_the_same_rows_in_the_same_batches_give_byte_identical_parquet(tmp_path: Path) -> None:
    rows = _rows(30)
    for name in ("a", "b"):
        with DatasetWriter(tmp_path / name, _spec(), BuildKey((), {}), WriterOptions(row_group_rows=4)) as writer:
            for result in encode_units(_spec(), *(rows[i : i + 7] for i in range(0, 30, 7))):
                writer.add_unit(result)
            writer.close()
    assert _parquet_bytes(tmp_path / "a") == _parquet_bytes(tmp_path / "b")


def test_image_bytes_are_stored_uncompressed_and_other_columns_compressed(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(3))
    meta = pq.ParquetFile(next((out / "default").glob("train-*.parquet"))).metadata
    columns = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert columns["image.bytes"].compression == "UNCOMPRESSED"
    assert columns["sample_id"].compression == "SNAPPY"


def test_features_are_stored_in_the_huggingface_schema_metadata(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(3))
    schema = pq.read_schema(next((out / "default").glob("train-*.parquet")))
    meta = json.loads(schema.metadata[b"huggingface"])
    assert meta["info"]["features"]["label"] == {"names": ["cat", "dog"], "_type": "ClassLabel"}
    assert schema.field("image").type.names == ["bytes", "path"]


def test_image_bytes_get_no_statistics_so_footers_stay_small(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(3))
    meta = pq.ParquetFile(next((out / "default").glob("train-*.parquet"))).metadata
    columns = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert columns["image.bytes"].statistics is None
    assert columns["label"].statistics is not None


def test_card_front_matter_declares_configs_license_tasks_and_tags(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(10))
    text = (out / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["pretty_name"] == "Toy"
    assert front["license"] == "cc-by-4.0"
    assert front["task_categories"] == ["image-classification"]
    assert front["tags"] == ["medical", "medcat"]
    (config,) = front["configs"]
    assert config["config_name"] == "default"
    assert config["data_files"] == [
        {"split": "train", "path": "default/train-*.parquet"},
        {"split": "test", "path": "default/test-*.parquet"},
    ]
    assert config["description"].startswith("medcat build ")
    body = text.split("---\n", 2)[2]
    assert "| default | image-classification | train | 8 |" in body
    assert "`training` -> `train`" in body
    assert CITATION.strip() in body
    assert "1 item(s) could not be converted" in body


def test_a_licence_without_hub_id_is_other_with_name_and_link(tmp_path: Path) -> None:
    spec = _spec()
    card = CardInfo("Toy", "A toy.", license_spdx=None, license_name="PhysioNet Credentialed Health Data License 1.5.0", license_url="https://physionet.org/l")
    with DatasetWriter(tmp_path / "toy", DatasetSpec(spec.source, spec.configs, card), BuildKey((), {})) as writer:
        add_rows(writer, _rows(2))
        writer.close()
    front = yaml.safe_load((tmp_path / "toy" / "README.md").read_text().split("---\n")[1])
    assert (front["license"], front["license_name"], front["license_link"]) == (
        "other", "physionet-credentialed-health-data-license-1-5-0", "https://physionet.org/l"
    )


def test_manifest_records_inputs_options_versions_counts_errors_and_seconds(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(_png(1))
    key = BuildKey(stat_inputs([("in.png", src)]), {"max_size": 64})
    out = tmp_path / "toy"
    unit = UnitResult(0, "in.png", input_hashes=(InputHash("in.png", "ab" * 32),))
    write_dataset(out, _spec(), key, [unit])
    manifest = read_manifest(out)
    assert manifest is not None
    assert [(i.path, i.size_bytes, i.sha256) for i in manifest.inputs] == [("in.png", src.stat().st_size, "ab" * 32)]
    assert manifest.options["max_size"] == 64 and manifest.options["writer"]["row_group_rows"] == 100
    assert manifest.tool_version and manifest.libraries["pyarrow"]
    assert manifest.rows() == {"default": {}}
    assert manifest.errors == 0 and manifest.seconds >= 0


def test_errors_jsonl_has_one_line_per_failed_item(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(2))
    lines = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert lines == [{"path": "broken.png", "stage": "decode", "type": "SampleError", "message": "truncated", "config": None, "split": None}]


def test_a_config_without_rows_is_recorded_but_not_offered_to_load_dataset(tmp_path: Path) -> None:
    """``datasets`` cannot load a zero-row split, so the card lists only configs with rows."""
    tables = ConfigSpec("patients", tabular_features({"age": Value("int64")}), Task.TABULAR)
    with DatasetWriter(tmp_path / "t", _spec(_spec().configs[0], tables), BuildKey((), {})) as writer:
        add_rows(writer, _rows(2))
        result = writer.close()
    assert result.rows == {"default": {"train": 2}, "patients": {}}
    text = (tmp_path / "t" / "README.md").read_text()
    front = yaml.safe_load(text.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == ["default"]
    assert "| patients | tabular | (none) | 0 |" in text
    assert not (tmp_path / "t" / "patients").exists()


def test_a_row_for_an_undeclared_config_is_a_failed_item_named_by_the_encoder(tmp_path: Path) -> None:
    rows = [*_rows(1), Row("other", "train", {"sample_id": "x"})]
    result = write_dataset(tmp_path / "toy", _spec(), BuildKey((), {}), encode_units(_spec(), rows))
    assert result.rows == {"default": {"train": 1}} and result.errors == 1
    (line,) = [json.loads(text) for text in (tmp_path / "toy" / "errors.jsonl").read_text().splitlines()]
    assert (line["stage"], line["type"]) == ("encode", "SampleError")
    assert "unknown config 'other'" in line["message"]


def test_rows_for_an_undeclared_split_are_a_recipe_bug(tmp_path: Path) -> None:
    (config,) = _spec().configs
    spec = _spec(ConfigSpec(config.name, config.features, config.task, splits=("train",)))
    with pytest.raises(ConvertError, match="undeclared split 'test'"):
        write_dataset(tmp_path / "toy", spec, BuildKey((), {}), encode_units(spec, _rows(5)))
    assert list(tmp_path.iterdir()) == []


def _never() -> Iterator[UnitResult]:
    raise AssertionError("an up-to-date output must not convert anything")
    yield  # pragma: no cover


def test_a_rerun_with_unchanged_inputs_and_options_does_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(_png(1))
    out = tmp_path / "toy"
    key = BuildKey(stat_inputs([("in.png", src)]), {"max_size": 64})
    first = write_dataset(out, _spec(), key, [])
    second = write_dataset(out, _spec(), key, _never())
    assert (first.skipped, second.skipped) == (False, True)


def test_a_touched_input_with_unchanged_content_does_not_rebuild(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(_png(1))
    out = tmp_path / "toy"
    write_dataset(out, _spec(), BuildKey(stat_inputs([("in.png", src)]), {}), [UnitResult(0, "in", input_hashes=(InputHash("in.png", _sha(src)),))])
    os.utime(src, ns=(1, 1))
    assert write_dataset(out, _spec(), BuildKey(stat_inputs([("in.png", src)]), {}), _never()).skipped


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_changed_option_or_input_rebuilds(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    src.write_bytes(_png(1))
    out = tmp_path / "toy"
    write_dataset(out, _spec(), BuildKey(stat_inputs([("in.png", src)]), {"max_size": 64}), [])
    assert not write_dataset(out, _spec(), BuildKey(stat_inputs([("in.png", src)]), {"max_size": 32}), []).skipped
    src.write_bytes(_png(1, size=16))
    assert not write_dataset(out, _spec(), BuildKey(stat_inputs([("in.png", src)]), {"max_size": 32}), []).skipped


def test_a_failure_leaves_the_previous_output_untouched_and_no_temp_folder(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(5))
    before = _parquet_bytes(out)
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(out, _spec(), BuildKey((), {"other": 1})) as writer:
            add_rows(writer, _rows(7))
            raise RuntimeError("boom")
    assert _parquet_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_a_failure_on_a_first_build_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "toy", _spec(), BuildKey((), {})) as writer:
            add_rows(writer, _rows(3))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_a_rebuild_replaces_the_old_output_completely(tmp_path: Path) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(25), options=WriterOptions(max_shard_rows=5, row_group_rows=5))
    _write(out, _rows(3))
    assert sorted(p.name for p in (out / "default").iterdir()) == ["train-00000-of-00001.parquet"]


def test_a_folder_that_is_not_a_medcat_output_is_never_replaced(tmp_path: Path) -> None:
    out = tmp_path / "docs"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(UsageError, match="not empty"):
        _write(out, _rows(1))
    assert (out / "thesis.tex").read_text() == "precious"


def test_temp_folders_of_killed_runs_are_cleaned_up(tmp_path: Path) -> None:
    stale = tmp_path / ".toy.medcat-tmp-999999999-abc"
    stale.mkdir()
    _write(tmp_path / "toy", _rows(1))
    assert not stale.exists()


def _task_rows() -> dict[str, tuple[ConfigSpec, dict[str, object]]]:
    from medcat_data.converters import schemas

    img = {"bytes": _png(3), "path": None}
    return {
        "det": (
            ConfigSpec("det", schemas.object_detection_features(["mass", "calc"], {"birads": ClassLabel(names=["3", "4"])}), Task.OBJECT_DETECTION),
            {"image": img, "objects": {"bbox": [[1, 2, 3, 4]], "category": ["calc"], "birads": ["4"]}, "width": 8, "height": 8, "scale": 1.0},
        ),
        "rep": (
            ConfigSpec("rep", schemas.report_generation_features({"Edema": ["negative", "positive"]}), Task.REPORT_GENERATION),
            {"images": [img, img], "views": ["PA", "LL"], "findings": "f", "impression": "", "labels": {"Edema": "positive"}},
        ),
        "vqa": (
            ConfigSpec("vqa", schemas.vqa_features(), Task.VQA),
            {"images": [img], "question": "q?", "answer": "no", "answer_type": "closed", "options": ["yes", "no"], "answer_idx": 1},
        ),
        "qa": (
            ConfigSpec("qa", schemas.text_qa_features(), Task.TEXT_QA),
            {"question": "q?", "options": [{"key": "A", "text": "t"}], "answer_idx": 0, "answer": "t"},
        ),
        "fig": (
            ConfigSpec("fig", schemas.image_text_features(), Task.IMAGE_TEXT),
            {"image": img, "caption": "c", "inline_mentions": ["see Fig. 1"], "article_id": "PMC1", "figure_label": "Fig. 1", "license": "CC BY"},
        ),
        "var": (
            ConfigSpec("var", schemas.variant_calling_features(), Task.VARIANT_CALLING),
            {"chrom": "chr1", "pos": 5, "ref": "A", "alt": "T", "genotype": "0/1", "genotype_class": "het", "in_confident_region": True, "stratifications": []},
        ),
    }


@pytest.mark.parametrize("config", ["det", "rep", "vqa", "qa", "fig", "var"])
def test_every_task_schema_is_written_and_loads_back_with_equal_features(tmp_path: Path, config: str) -> None:
    spec, values = _task_rows()[config]
    with DatasetWriter(tmp_path / "d", _spec(spec), BuildKey((), {})) as writer:
        add_rows(writer, [Row(config, "train", {**values, "sample_id": "s1"})])
        writer.close()
    ds = datasets.load_dataset(str(tmp_path / "d"), config, split="train")
    assert ds.features == spec.features
    assert ds[0]["sample_id"] == "s1" and ds[0]["source"] == "toy@1.0"


def test_a_rebuilt_or_another_folder_of_the_same_name_never_loads_rows_of_an_earlier_build(tmp_path: Path) -> None:
    # datasets keys its cache of a local folder by the card's YAML (not by the data files), so
    # without the per-config content digest in the card these loads would return 10 rows each time.
    first, other = tmp_path / "a" / "toy", tmp_path / "b" / "toy"
    _write(first, _rows(10))
    assert datasets.load_dataset(str(first), "default", split="train").num_rows == 8
    _write(other, _rows(15))
    assert datasets.load_dataset(str(other), "default", split="train").num_rows == 12
    _write(first, _rows(20), key=BuildKey((), {"max_size": 512}))
    assert datasets.load_dataset(str(first), "default", split="train").num_rows == 16
