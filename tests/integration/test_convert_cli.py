"""``medcat convert`` as a user drives it: folders in, datasets that ``load_dataset`` reads out.

Every output is read back with the real ``datasets.load_dataset``. Inputs are generated per test
(seeded PNG/JPEG through Pillow, DICOM through ``mirror.synth``), never committed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pytest
from click.testing import CliRunner
from datasets import ClassLabel, Image, List, Nifti, Value
from PIL import Image as PILImage

from medcat_data.cli import main
from medcat_data.mirror.synth.dicom import (
    BASIC_TEXT_SR,
    MEDIA_STORAGE_DIRECTORY,
    make_dicom,
    make_sr,
    write_not_dicom,
    write_truncated,
)
from medcat_data.mirror.synth.volume import synth_volume, write_dicom_series, write_nifti

pytestmark = pytest.mark.integration


def run(*args: object) -> tuple[int, Any, str]:
    """Run ``medcat convert ARGS --json``; return the exit code, the parsed JSON and stderr."""
    result = CliRunner().invoke(main, ["convert", *map(str, args), "--json"])
    doc = json.loads(result.stdout) if result.stdout.strip() else None
    return result.exit_code, doc, result.stderr


def _png(path: Path, value: int, size: tuple[int, int] = (24, 16)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(value)
    PILImage.fromarray(rng.integers(0, 255, (size[1], size[0]), dtype=np.uint8)).save(path)
    return path


def _jpeg(path: Path, value: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (20, 12), (value, 40, 200 - value)).save(path, quality=90)
    return path


def _parquet(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def _errors(out: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]


@pytest.fixture
def pets(tmp_path: Path) -> Path:
    """An imagefolder: cat/ holds PNGs, dog/ holds JPEGs."""
    root = tmp_path / "pets"
    for i in range(3):
        _png(root / "cat" / f"c{i}.png", i)
        _jpeg(root / "dog" / f"d{i}.jpg", 10 * i)
    return root


def test_an_imagefolder_loads_with_labels_from_folder_names_and_bytes_passed_through(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, doc, _ = run(pets, "--out", out)
    assert code == 0, doc
    assert doc["rows"] == {"default": {"train": 6}} and doc["errors"] == 0 and doc["ok"]
    ds = datasets.load_dataset(str(out), "default", split="train")
    assert ds.features["label"] == ClassLabel(names=["cat", "dog"])
    assert ds.features["image"] == Image()
    assert ds.features["scale"] == Value("float32")
    assert ds["sample_id"] == ["cat/c0.png", "cat/c1.png", "cat/c2.png", "dog/d0.jpg", "dog/d1.jpg", "dog/d2.jpg"]
    assert ds["label"] == [0, 0, 0, 1, 1, 1]
    assert ds["source"][0] == "local:out"
    raw = ds.cast_column("image", Image(decode=False))
    assert raw[0]["image"]["bytes"] == (pets / "cat" / "c0.png").read_bytes()
    assert ds[3]["image"].size == (20, 12) and (ds[3]["width"], ds[3]["height"], ds[3]["scale"]) == (20, 12, 1.0)


def test_max_size_resizes_and_records_the_scale(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(pets, "--out", out, "--max-size", 12)[0] == 0
    row = datasets.load_dataset(str(out), split="train")[0]
    assert row["image"].size == (12, 8)
    assert (row["original_width"], row["original_height"], row["scale"]) == (24, 16, 0.5)


def test_dicom_inputs_add_the_whitelist_columns(tmp_path: Path) -> None:
    src = tmp_path / "scans"
    make_dicom(src / "a.dcm", rows=20, columns=16, tags={"ViewPosition": "PA", "ImageLaterality": "L"}, seed=1)
    make_dicom(src / "b.dcm", rows=20, columns=16, photometric="MONOCHROME1", modality="MG", seed=2)
    out = tmp_path / "out"
    code, doc, _ = run(src, "--out", out)
    assert code == 0, doc
    ds = datasets.load_dataset(str(out), split="train")
    features = ds.features
    assert features["pixel_spacing"] == List(Value("float64"))
    assert features["rows"] == Value("int32") and features["transfer_syntax_uid"] == Value("string")
    assert "label" not in features and "view_position" not in features
    first, second = ds[0], ds[1]
    assert (first["view"], first["laterality"], first["modality"], first["rows"]) == ("PA", "L", "DX", 20)
    assert (second["modality"], second["photometric_interpretation"]) == ("MG", "MONOCHROME1")
    assert first["image"].size == (16, 20) and first["image"].mode == "L"


def test_a_multiframe_dicom_gives_a_row_per_frame_with_frames_all(tmp_path: Path) -> None:
    src = tmp_path / "scans"
    make_dicom(src / "cine.dcm", rows=8, columns=8, frames=3, seed=3)
    out = tmp_path / "out"
    assert run(src, "--out", out, "--frames", "all")[0] == 0
    ds = datasets.load_dataset(str(out), split="train")
    assert ds["sample_id"] == ["cine.dcm#frame=0", "cine.dcm#frame=1", "cine.dcm#frame=2"]
    assert ds["frame_index"] == [0, 1, 2]


def _mixed(root: Path, count: int) -> Path:
    for i in range(count):
        make_dicom(root / "dicom" / f"{i:02d}.dcm", rows=24, columns=20, seed=i)
        _png(root / "png" / f"{i:02d}.png", i)
    return root


def test_jobs_1_and_jobs_2_give_byte_identical_parquet(tmp_path: Path) -> None:
    src = _mixed(tmp_path / "in", 6)
    write_truncated(src / "dicom" / "00.dcm", src / "dicom" / "03b-truncated.dcm")
    assert run(src, "--out", tmp_path / "one" / "ds", "--jobs", 1)[0] == 1
    assert run(src, "--out", tmp_path / "two" / "ds", "--jobs", 2)[0] == 1
    one, two = _parquet(tmp_path / "one" / "ds"), _parquet(tmp_path / "two" / "ds")
    assert one and one == two
    assert _errors(tmp_path / "one" / "ds") == _errors(tmp_path / "two" / "ds")


def test_a_rerun_with_unchanged_inputs_does_nothing_and_a_changed_option_rebuilds(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(pets, "--out", out)[1]["skipped_up_to_date"] is False
    shard = next(out.rglob("*.parquet"))
    mtime = shard.stat().st_mtime_ns
    code, doc, _ = run(pets, "--out", out)
    assert (code, doc["skipped_up_to_date"]) == (0, True) and shard.stat().st_mtime_ns == mtime
    code, doc, _ = run(pets, "--out", out, "--max-size", 8)
    assert (code, doc["skipped_up_to_date"]) == (0, False)
    assert datasets.load_dataset(str(out), split="train")[0]["image"].size == (8, 5)


def test_an_added_file_rebuilds(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(pets, "--out", out)
    _png(pets / "cat" / "c9.png", 9)
    code, doc, _ = run(pets, "--out", out)
    assert (code, doc["skipped_up_to_date"], doc["rows"]["default"]["train"]) == (0, False, 7)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    """One good DICOM and PNG, and every broken case the converter must survive."""
    root = tmp_path / "broken"
    good = make_dicom(root / "good.dcm", rows=16, columns=16, seed=5)
    _png(root / "good.png", 1)
    write_truncated(good, root / "truncated.dcm")
    write_not_dicom(root / "notes.dcm")
    make_sr(root / "report.dcm", sop_class=BASIC_TEXT_SR)
    make_sr(root / "DICOMDIR", sop_class=MEDIA_STORAGE_DIRECTORY)
    (root / "corrupt.png").write_bytes((root / "good.png").read_bytes()[:40])
    (root / "readme.txt").write_text("scanned at site 3\n")
    return root


def test_every_broken_file_is_listed_with_its_reason_and_the_rest_is_converted(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, doc, stderr = run(broken, "--out", out)
    assert code == 1 and "errors.jsonl" in stderr
    assert doc["rows"] == {"default": {"train": 2}} and doc["errors"] == 6 and doc["ok"] is False
    errors = {e["path"]: e for e in _errors(out)}
    assert sorted(errors) == ["DICOMDIR", "corrupt.png", "notes.dcm", "readme.txt", "report.dcm", "truncated.dcm"]
    assert all(e["type"] == "SampleError" and e["message"] for e in errors.values())
    assert "no pixel data" in errors["report.dcm"]["message"]
    assert "no pixel data" in errors["DICOMDIR"]["message"]
    assert "not a DICOM file" in errors["notes.dcm"]["message"]
    assert errors["truncated.dcm"]["stage"] in {"read", "decode"}
    assert errors["readme.txt"]["message"].startswith("not an image")
    assert datasets.load_dataset(str(out), split="train")["sample_id"] == ["good.dcm", "good.png"]


@pytest.mark.parametrize(("limit", "code"), [("6", 0), ("5", 1), ("75%", 0), ("70%", 1)])
def test_max_errors_decides_the_exit_code(broken: Path, tmp_path: Path, limit: str, code: int) -> None:
    exit_code, doc, _ = run(broken, "--out", tmp_path / "out", "--max-errors", limit)
    assert (exit_code, doc["ok"]) == (code, code == 0)


def test_a_malformed_max_errors_is_a_usage_error(pets: Path, tmp_path: Path) -> None:
    code, _, stderr = run(pets, "--out", tmp_path / "out", "--max-errors", "many")
    assert code == 2 and "--max-errors" in stderr


def test_on_bad_item_fail_stops_and_leaves_no_partial_output(broken: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, doc, stderr = run(broken, "--out", out, "--on-bad-item", "fail")
    # With --json, a failure is one JSON error object on stdout (and the message on stderr).
    assert code == 1 and doc is not None and doc["error"]["type"] == "SampleError" and doc["error"]["exit_code"] == 1
    assert "DICOMDIR: read: no pixel data" in stderr  # the first file in sorted order
    assert list(tmp_path.glob("*out*")) == []


def test_a_failed_rebuild_keeps_the_previous_output(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run(pets, "--out", out)
    before = _parquet(out)
    (pets / "cat" / "bad.png").write_bytes(b"\x89PNG broken")
    assert run(pets, "--out", out, "--on-bad-item", "fail")[0] == 1
    assert _parquet(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "pets"]


def test_labels_and_splits_from_a_csv(pets: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("file,dx,fold\nc0,benign,train\nc1,malignant,test\nd0.jpg,benign,train\n")
    out = tmp_path / "out"
    code, doc, _ = run(pets, "--out", out, "--labels", csv, "--id-column", "file", "--label-column", "dx", "--split-column", "fold")
    assert code == 0, doc
    ds = datasets.load_dataset(str(out))
    assert ds["train"].features["label"] == ClassLabel(names=["benign", "malignant"])
    assert ds["test"]["sample_id"] == ["cat/c1.png"] and ds["test"]["label"] == [1]
    labelled = dict(zip(ds["train"]["sample_id"], ds["train"]["label"]))
    assert labelled["cat/c0.png"] == 0 and labelled["dog/d0.jpg"] == 0 and labelled["dog/d1.jpg"] is None


def test_a_missing_label_column_names_the_columns_found(pets: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("file,dx\nc0,benign\n")
    code, _, stderr = run(pets, "--out", tmp_path / "out", "--labels", csv, "--id-column", "file")
    assert code == 2 and "'label'" in stderr and "['file', 'dx']" in stderr


def test_split_names_the_split(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(pets, "--out", out, "--split", "test")[0] == 0
    assert list(datasets.load_dataset(str(out))) == ["test"]


def test_a_nifti_volume_with_a_mask_becomes_aligned_slices(tmp_path: Path) -> None:
    vol = synth_volume((6, 5, 4), seed=1)
    src = tmp_path / "ct"
    write_nifti(src / "imagesTr" / "case1.nii.gz", vol.data, vol.affine)
    assert vol.mask is not None
    write_nifti(src / "labelsTr" / "case1.nii.gz", vol.mask, vol.affine)
    out = tmp_path / "out"
    code, doc, _ = run(src, "--out", out, "--window", "ct-soft-tissue", "--stride", 2)
    assert code == 0, doc
    ds = datasets.load_dataset(str(out), split="train")
    assert ds.features["mask"] == Image() and ds.features["plane"] == Value("string")
    assert ds["sample_id"] == ["imagesTr/case1.nii.gz#axial=0", "imagesTr/case1.nii.gz#axial=2"]
    assert ds["slice_index"] == [0, 2]
    assert ds[0]["image"].size == ds[0]["mask"].size
    assert "label" not in ds.features  # a single folder is no label


def test_whole_volumes_go_to_the_volumes_config(tmp_path: Path) -> None:
    vol = synth_volume((6, 5, 4), seed=2, with_mask=False)
    src = tmp_path / "ct"
    write_nifti(src / "a.nii.gz", vol.data, vol.affine)
    out = tmp_path / "out"
    code, doc, _ = run(src, "--out", out, "--volume", "whole")
    assert code == 0, doc
    ds = datasets.load_dataset(str(out), "volumes", split="train")
    assert ds.features["volume"] == Nifti()
    assert ds[0]["shape"] == [6, 5, 4] and ds[0]["orientation"] == "RAS"
    assert np.asarray(ds[0]["volume"].get_fdata()).shape == (6, 5, 4)


def test_a_dicom_series_is_one_volume_with_volume_slices(tmp_path: Path) -> None:
    vol = synth_volume((8, 6, 5), seed=3, axcodes="LPS", with_mask=False)
    src = tmp_path / "series"
    write_dicom_series(src / "study", vol.data, vol.affine, seed=3)
    out = tmp_path / "out"
    code, doc, _ = run(src, "--out", out, "--volume", "slices")
    assert code == 0, doc
    assert doc["kinds"] == {"series": 1} and doc["rows"] == {"default": {"train": 5}}
    ids = datasets.load_dataset(str(out), split="train")["sample_id"]
    assert all(i.startswith("study/series-") for i in ids) and ids[0].endswith("#axial=0")


def test_an_existing_foreign_folder_is_never_replaced(pets: Path, tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious")
    code, _, stderr = run(pets, "--out", out)
    assert code == 2 and "not empty" in stderr
    assert (out / "chapter1.tex").read_text() == "precious"


def test_the_output_folder_inside_the_input_is_not_an_input(pets: Path) -> None:
    out = pets / "converted"
    assert run(pets, "--out", out)[0] == 0
    code, doc, _ = run(pets, "--out", out)
    assert (code, doc["skipped_up_to_date"], doc["files"]) == (0, True, 6)


def test_files_and_folders_mix(pets: Path, tmp_path: Path) -> None:
    extra = _png(tmp_path / "loose" / "x.png", 3)
    shutil.copy(extra, tmp_path / "y.png")
    code, doc, _ = run(pets / "cat", extra, "--out", tmp_path / "out")
    assert code == 0 and doc["rows"] == {"default": {"train": 4}}
    ids = datasets.load_dataset(str(tmp_path / "out"), split="train")["sample_id"]
    assert ids == ["loose/x.png", "pets/cat/c0.png", "pets/cat/c1.png", "pets/cat/c2.png"]


def test_a_stray_text_file_does_not_stop_folder_labels_and_is_reported(pets: Path, tmp_path: Path) -> None:
    (pets / "notes.txt").write_text("cats left, dogs right\n")
    out = tmp_path / "out"
    code, doc, _ = run(pets, "--out", out)
    assert code == 1 and doc["rows"] == {"default": {"train": 6}}
    assert datasets.load_dataset(str(out), split="train").features["label"] == ClassLabel(names=["cat", "dog"])
    assert [e["path"] for e in _errors(out)] == ["notes.txt"]
