"""ROCOv2: the recipe on hand-written trees (CUI sequences, licence codes, loose images, missing files,
damaged tables, repeated Hub ids) and the whole chain from both sources (replica → fetch over loopback,
Zenodo file URLs checked against the record API's md5s and Hub API → verify → normalize --jobs 1/2 →
load), plus what the two sources must agree on, the concatenation with PMC-OA's image-text rows and the
conversation export."""

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

from medcat_data.converters.conversations import ExportOptions, export_conversations
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.converters.schemas import image_text_features
from medcat_data.datasets.rocov2 import recipe as rocov2
from medcat_data.errors import UpstreamFormatError, UsageError
from medcat_data.loaders.cache import META_DIR
from medcat_data.loaders.fetch_manifest import Manifest
from medcat_data.loaders.options import FetchOptions
from medcat_data.loaders.plan import dataset_dest
from medcat_data.mirror.replicas.base import csv_bytes, zip_bytes
from medcat_data.mirror.server import Fault, MirrorServer
from tests.datasets.harness import ChainResult, normalize_folder, read_errors, replicas, run_chain
from tests.unit.loaders.entries import run_cli

DATASET = "rocov2"
CORE = list(image_text_features())[:6]


def _jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), shade).save(buffer, "JPEG")
    return buffer.getvalue()


def _zenodo(root: Path, captions: list[tuple[str, str]], *, images: dict[str, bytes], loose: dict[str, bytes] | None = None,
            manual: bool = True, header: tuple[str, str] = ("ID", "Caption")) -> Path:
    """Write a Zenodo-layout tree with one train split; return the normalize output folder."""
    folder = root / "zenodo"
    folder.mkdir(parents=True)
    (folder / "train_captions.csv").write_bytes(csv_bytes(header, captions))
    (folder / "train_concepts.csv").write_bytes(csv_bytes(["ID", "CUIs"], [(i, " C0040405; C0817096;C0040405") for i, _ in captions]))
    if manual:
        (folder / "train_concepts_manual.csv").write_bytes(csv_bytes(["ID", "CUIs"], [(i, "C0040405") for i, _ in captions]))
    (folder / "cui_mapping.csv").write_bytes(csv_bytes(["CUI", "Canonical name"], [("C0040405", "X-Ray Computed Tomography"), ("C0817096", "Chest")]))
    (folder / "license_information.csv").write_bytes(csv_bytes(
        ["ID", "PMCID", "Attribution", "Link"], [(i, "PMC1", "Someone et al., CC BY-NC 4.0", "https://example.org/PMC1") for i, _ in captions]))
    (folder / "train_images.zip").write_bytes(zip_bytes([(f"train/{k}.jpg", v) for k, v in images.items()], date_time=(2024, 1, 1, 0, 0, 0)))
    for name, data in (loose or {}).items():
        (folder / "train").mkdir(exist_ok=True)
        (folder / "train" / f"{name}.jpg").write_bytes(data)
    return normalize_folder(DATASET, root, root / "out", source="zenodo").out_dir


@pytest.mark.parametrize(
    ("cell", "expected"), [("C1;C2", ("C1", "C2")), (" C1 ; C2;C1;; ", ("C1", "C2")), ("", ()), (None, ())],
)
def test_cuis_are_a_sequence_in_upstream_order_without_repeats(cell: str | None, expected: tuple[str, ...]) -> None:
    assert rocov2.split_cuis(cell) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("A et al. 2020, CC BY 4.0", "CC BY 4.0"), ("cc by-nc-sa", "CC BY-NC-SA"), ("CC-BY-NC 4.0", "CC BY-NC 4.0"), ("open access", None), (None, None)],
)
def test_the_licence_code_is_read_from_the_attribution_only_when_named(text: str | None, expected: str | None) -> None:
    assert rocov2.license_code(text) == expected


def test_zenodo_rows_join_the_csvs_and_read_images_from_zips_and_loose_files(tmp_path: Path) -> None:
    out = _zenodo(tmp_path, [("R_1", "CT of the chest."), ("R_2", "A loose image."), ("R_3", ""), ("R_4", "No image.")],
                  images={"R_1": _jpeg(10)}, loose={"R_2": _jpeg(90)})
    ds = datasets.load_dataset(str(out), "captions")["train"]
    assert ds["sample_id"] == ["R_1", "R_2"] and ds["image_id"] == ["R_1", "R_2"]
    row = ds[0]
    assert row["cuis"] == ["C0040405", "C0817096"] and row["cui_names"] == ["X-Ray Computed Tomography", "Chest"]
    assert row["cuis_manual"] == ["C0040405"] and row["article_id"] == "PMC1" and row["license"] == "CC BY-NC 4.0"
    assert row["inline_mentions"] == [] and row["figure_label"] is None and row["image"].size == (8, 8)
    errors = {e["path"]: e for e in read_errors(out)}
    assert set(errors) == {"train_captions.csv#2", "R_4.jpg"}
    assert "empty caption" in errors["train_captions.csv#2"]["message"]


def test_a_release_without_manual_concepts_leaves_them_null(tmp_path: Path) -> None:
    out = _zenodo(tmp_path, [("R_1", "CT.")], images={"R_1": _jpeg(10)}, manual=False)
    assert datasets.load_dataset(str(out), "captions")["train"][0]["cuis_manual"] is None


def test_a_captions_file_without_its_columns_is_an_upstream_format_error(tmp_path: Path) -> None:
    with pytest.raises(UpstreamFormatError, match=r"rocov2: train_captions.csv lacks the column\(s\) Caption"):
        _zenodo(tmp_path, [("R_1", "CT.")], images={"R_1": _jpeg(10)}, header=("ID", "Text"))


def _hub(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("image_id", pa.string()), ("caption", pa.string()), ("cui", pa.list_(pa.string())),
    ])), path, row_group_size=2)


def test_hub_rows_keep_upstream_ids_repeats_get_distinct_ids_and_limit_stops_early(tmp_path: Path) -> None:
    def row(image_id: str | None, shade: int = 10) -> dict[str, Any]:
        return {"image": {"bytes": _jpeg(shade), "path": None}, "image_id": image_id, "caption": "CT.", "cui": ["C1", "C1", "C2"]}

    _hub(tmp_path / "hf/data/train-00000-of-00001.parquet", [row("R_1"), row("R_2"), row("R_1"), row(None)])
    _hub(tmp_path / "hf/data/validation-00000-of-00001.parquet", [row("R_9")])
    out = normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf").out_dir
    ds = datasets.load_dataset(str(out), "captions")
    assert ds["train"]["sample_id"] == ["R_1", "R_2", "R_1-train2", "train-3"]
    assert ds["validation"]["sample_id"] == ["R_9"] and ds["train"][0]["cuis"] == ["C1", "C2"]
    assert {ds["train"][0][c] for c in ("cuis_manual", "cui_names", "article_id", "attribution", "license")} == {None}
    limited = normalize_folder(DATASET, tmp_path, tmp_path / "limited", source="hf", options=RecipeOptions(limit=3))
    assert dict(limited.write.rows["captions"]) == {"train": 3}


def test_a_hub_copy_without_the_cui_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "hf/data/train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"image": [{"bytes": b"x", "path": None}], "image_id": ["R"], "caption": ["c"]}), path)
    with pytest.raises(UpstreamFormatError, match=r"lacks the column\(s\) cui"):
        normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf")


def test_a_source_folder_with_neither_layout_is_explained(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    with pytest.raises(UsageError, match=r"found neither train/valid/test_captions.csv \(source zenodo\)"):
        normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf")


def _rows(result: ChainResult) -> dict[str, dict[str, Any]]:
    return {row["sample_id"]: row for split in result.loaded["captions"].values() for row in split.remove_columns("image")}


@pytest.mark.integration
def test_zenodo_chain_keeps_the_official_splits_and_every_concept_column(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="zenodo")
    ds = result.loaded["captions"]
    assert list(ds["train"].features)[:6] == CORE
    assert ds["train"].features == image_text_features(rocov2.EXTRA_COLUMNS)
    assert {split: {sid.split("_")[2] for sid in ds[split]["sample_id"]} for split in ds} == {
        "train": {"train"}, "validation": {"valid"}, "test": {"test"}}
    row = ds["train"][1]
    assert len(row["cuis"]) == len(set(row["cuis"])) == len(row["cui_names"]) and all(row["cui_names"])
    assert row["cuis_manual"] and row["license"] in ("CC BY 4.0", "CC BY-NC 4.0") and row["article_id"].startswith("PMC")
    assert mirror.count("/records/10821435/files/train_images.zip") >= 1
    folder = dataset_dest(result.resolved, FetchOptions())
    manifest = Manifest.open(folder / META_DIR, DATASET, result.resolved.version, create=False)
    assert manifest is not None
    records = {path: record for path, record in manifest.files() if path.startswith("zenodo/")}
    manifest.close()
    assert len(records) == 14 and {r.verified_by for r in records.values()} == {"zenodo-md5"}
    assert {r.algorithm for r in records.values()} == {"md5"} and mirror.count("/api/records/10821435") >= 1


@pytest.mark.integration
def test_a_zenodo_file_whose_bytes_differ_from_the_records_md5_is_quarantined(mirror: MirrorServer, tmp_path: Path) -> None:
    replicas(DATASET, mirror)
    url_path = "/records/10821435/files/valid_captions.csv"
    mirror.add_fault(Fault(url_path, kind="corrupt", times=None))
    try:
        code, out, err = run_cli("fetch", DATASET, "--source", "zenodo", "--only", "zenodo/valid_*.csv", "--mirror", mirror.url,
                                 "--dest", str(tmp_path / "d"), "--json")
    finally:
        mirror.clear_faults()
    assert code == 1, err
    report = json.loads(out)
    (failed,) = report["failed"]
    assert failed["path"] == "zenodo/valid_captions.csv" and failed["status"] == "quarantined"
    assert "md5 mismatch for zenodo/valid_captions.csv" in failed["reason"]
    assert (tmp_path / "d/.medcat/quarantine/zenodo/valid_captions.csv.bad").is_file()
    assert not (tmp_path / "d/zenodo/valid_captions.csv").exists()
    assert report["verification"] == {"zenodo-md5": 2}  # the two files that arrived intact


@pytest.mark.integration
def test_both_sources_share_features_and_sample_ids_and_concatenate(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zenodo = run_chain(DATASET, mirror, tmp_path / "zenodo", source="zenodo")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    hf = run_chain(DATASET, mirror, tmp_path / "hf", source="hf")
    assert hf.loaded["captions"]["train"].features == zenodo.loaded["captions"]["train"].features
    z_rows, h_rows = _rows(zenodo), _rows(hf)
    assert set(h_rows) < set(z_rows)  # the Hub copy's rows are Zenodo's, minus its planted bad row
    for sid, row in h_rows.items():
        assert (row["split"], row["caption"], row["cuis"]) == (z_rows[sid]["split"], z_rows[sid]["caption"], z_rows[sid]["cuis"])
    both = datasets.concatenate_datasets([zenodo.loaded["captions"]["test"], hf.loaded["captions"]["test"]])
    assert len(both) == 2 * len(hf.loaded["captions"]["test"])


@pytest.mark.integration
def test_captions_concatenate_with_pmc_oa_figures_and_export_as_conversations(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roco = run_chain(DATASET, mirror, tmp_path / "roco", source="hf")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "pmc-cache")
    pmc = run_chain("pmc-oa", mirror, tmp_path / "pmc")
    shared = [c for c in pmc.loaded["figures"]["train"].column_names if c in roco.loaded["captions"]["train"].column_names]
    assert shared[:6] == CORE
    joined = datasets.concatenate_datasets([pmc.loaded["figures"]["train"].select_columns(shared),
                                            roco.loaded["captions"]["train"].select_columns(shared)])
    assert len(joined) == len(pmc.loaded["figures"]["train"]) + len(roco.loaded["captions"]["train"])

    result = export_conversations(roco.out_dir, ExportOptions(("llava", "sharegpt")))
    assert result.totals()["llava"]["rows"] == sum(len(s) for s in roco.loaded["captions"].values())
    lines = (roco.out_dir / "conversations/llava/captions-test.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    test = roco.loaded["captions"]["test"]
    assert record["id"] == test[0]["sample_id"] and record["conversations"][1]["value"] == test[0]["caption"]
    assert record["conversations"][0]["value"].startswith("<image>\n") and (roco.out_dir / "conversations" / record["image"]).is_file()
    shared_gpt = json.loads((roco.out_dir / "conversations/sharegpt/captions-validation.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert len(shared_gpt["image"]) == 1 and shared_gpt["conversations"][1]["from"] == "gpt"
