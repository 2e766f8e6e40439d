"""CBIS-DDSM on its replica: both sources give equal ids and labels; absent series in errors; masks to boxes."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.recipes import cbis_ddsm, vindr_mammo
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.loaders.archives import extract
from medcat_data.loaders.transports import tcia
from medcat_data.mirror.replicas import cbis_ddsm as replica_builder

from .recipe_run import read_errors, run_recipe


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tcia tree as served and the kaggle zip extracted as the fetch engine does."""
    served = tmp_path_factory.mktemp("served")
    replicas = replica_builder.build(served, seed=0)
    kaggle = tmp_path_factory.mktemp("kaggle")
    with zipfile.ZipFile(served / replica_builder.KAGGLE_ZIP) as archive:
        archive.extractall(kaggle)
    return {
        "roots": {"tcia": _retriever_layout(served, tmp_path_factory.mktemp("tcia")), "kaggle": kaggle},
        "expected": {r.source: dict(r.expected) for r in replicas},
    }


def _retriever_layout(served: Path, dest: Path) -> Path:
    """Lay the served NBIA series out as the tcia transport does (its own placement and
    metadata.csv), without the network: the wire path is tested in tests/integration."""
    api = served / replica_builder.TCIA_API_DIR
    listing = json.loads((api / "series.json").read_text())
    series = tcia.series_folders(replica_builder.COLLECTION, listing)
    (dest / "metadata.csv").write_bytes(tcia.metadata_csv(replica_builder.COLLECTION, series, "2024-01-01T00:00:00.000"))
    for s in series:
        extract(api / f"{s.uid}.zip", dest / s.folder, dest / ".staging")
    for csv_file in (served / replica_builder.TCIA_PREFIX).glob("*.csv"):
        (dest / csv_file.name).write_bytes(csv_file.read_bytes())
    return dest


@pytest.fixture(scope="module")
def outputs(sources: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {}
    for source, root in sources["roots"].items():
        out = tmp_path_factory.mktemp(f"out-{source}")
        run_recipe(cbis_ddsm, _context(root, source), list(cbis_ddsm.CONFIGS), out)
        outs[source] = out
    return outs


def _context(root: Path, source: str, **options: object) -> RecipeContext:
    return RecipeContext("cbis-ddsm", "2017-09-14", root, source, root, options=RecipeOptions(**options))  # type: ignore[arg-type]


def _rows(out: Path, config: str) -> list[dict[str, Any]]:
    ds = load_dataset(str(out), config)
    return [r for s in ds for r in ds[s].remove_columns("image")]


def test_replica_has_upstream_csv_quirks_and_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=2)
    replica_builder.build(b, seed=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in files)
    tcia = a / replica_builder.TCIA_PREFIX
    mass = (tcia / "mass_case_description_train_set.csv").read_bytes().decode()
    calc = (tcia / "calc_case_description_train_set.csv").read_bytes().decode()
    assert mass.startswith("patient_id,breast_density,") and calc.startswith("patient_id,breast density,")
    assert mass.count("\r\n") == len(mass.splitlines()) - mass.count('\n"') and '.dcm\n"\r\n' in mass  # CRLF records; LF quoted in the last field
    assert '.dcm\n",' in calc and '.dcm\n"\r\n' not in calc  # calc: the quoted LF ends the crop path
    with zipfile.ZipFile(a / replica_builder.KAGGLE_ZIP) as archive:
        names = archive.namelist()
        assert archive.read("csv/mass_case_description_train_set.csv").decode() == mass
        info = list(csv.DictReader(archive.read("csv/dicom_info.csv").decode().splitlines()))
    assert {"csv/dicom_info.csv", "csv/meta.csv"} <= set(names) and any(n.startswith("jpeg/") for n in names)
    assert all(r["image_path"].startswith("CBIS-DDSM/jpeg/") for r in info)
    assert {r["SeriesDescription"] for r in info} == {"full mammogram images", "cropped images", "ROI mask images"}


@pytest.mark.parametrize("source", ["tcia", "kaggle"])
def test_every_config_loads_with_expected_counts_and_planted_row_in_errors(
    sources: dict[str, Any], outputs: dict[str, Path], source: str
) -> None:
    expected = sources["expected"][source]
    out = outputs[source]
    errors = read_errors(out)
    assert len(errors) == len(expected["errors"])
    for got, want in zip(errors, expected["errors"]):
        assert got["path"].endswith(want["path"]) and got["stage"] == want["stage"]
    planted = expected["errors"][0]["path"]
    ctx = _context(sources["roots"][source], source)
    for config in cbis_ddsm.CONFIGS:
        ds = load_dataset(str(out), config)
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        assert ds["train"].features == cbis_ddsm.features(config, ctx)
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids)) and not any(planted.startswith(i) or i == planted for i in ids)
        patients = {s: set(ds[s]["patient_id"]) for s in ds}
        assert not patients["train"] & patients["test"]
        assert all(p.startswith("P_") for s in ds for p in ds[s]["patient_id"])


def test_sources_give_equal_ids_and_labels(outputs: dict[str, Path]) -> None:
    for config in cbis_ddsm.CONFIGS:
        tcia, kaggle = _rows(outputs["tcia"], config), _rows(outputs["kaggle"], config)
        if config.endswith("-roi"):
            for rows in (tcia, kaggle):
                for row in rows:
                    row["objects"].pop("mask")
        assert [r["sample_id"] for r in tcia] == [r["sample_id"] for r in kaggle]
        for a, b in zip(tcia, kaggle):
            a.pop("source"), b.pop("source")
            assert a == b


def test_labels_read_both_density_spellings_and_split_descriptors(sources: dict[str, Any], outputs: dict[str, Path]) -> None:
    calc = _rows(outputs["tcia"], "calc")
    mass = _rows(outputs["tcia"], "mass")
    assert all(r["density"] is not None for r in calc + mass if r["sample_id"] not in _off_scale(sources))
    assert any(r["calc_type"] and len(r["calc_type"]) > 1 for r in calc)
    assert any(r["calc_distribution"] is None for r in calc)  # N/A
    assert all(r["mass_shape"] for r in mass)
    ds = load_dataset(str(outputs["tcia"]), "mass")
    assert ds["train"].features["birads"].names == vindr_mammo.features("birads", _context(Path("."), "physionet"))["birads"].names


def _off_scale(sources: dict[str, Any]) -> set[str]:
    """The replica's calc-test rows with density 0 (upstream has two such rows), by sample_id."""
    rows = cbis_ddsm.read_case_csv(sources["roots"]["tcia"] / "calc_case_description_test_set.csv")
    return {
        f"Calc-Test_{row['patient_id']}_{row['left or right breast']}_{row['image view']}_{row['abnormality id']}"
        for _, row in rows
        if row["breast density"] == "0"
    }


@pytest.mark.parametrize("source", ["tcia", "kaggle"])
def test_a_density_outside_1_to_4_is_null_and_noted_but_the_row_is_kept(
    sources: dict[str, Any], outputs: dict[str, Path], source: str
) -> None:
    off_scale = _off_scale(sources)
    assert off_scale, "the replica plants upstream's density 0"
    calc = {r["sample_id"]: r for r in _rows(outputs[source], "calc")}
    for sample_id in off_scale:
        row = calc[sample_id]
        assert row["density"] is None
        assert row["pathology"] is not None and row["birads"] is not None and row["abnormality_id"] >= 1
    roi = {r["sample_id"]: r for r in _rows(outputs[source], "calc-roi")}
    for set_id in {s.rsplit("_", 1)[0] for s in off_scale}:
        assert roi[set_id]["density"] is None and roi[set_id]["objects"]["bbox"]
    full = load_dataset(str(outputs[source]), "calc")
    assert all(img.size[0] > 0 for img in full["test"].filter(lambda r: r["sample_id"] in off_scale)["image"])
    card = (outputs[source] / "README.md").read_text(encoding="utf-8")
    assert "outside 1-4" in card and all(s in card for s in off_scale)
    assert not any(s in json.dumps(read_errors(outputs[source])) for s in off_scale)


def test_roi_boxes_follow_resized_masks(sources: dict[str, Any], tmp_path: Path) -> None:
    root = sources["roots"]["tcia"]
    full = _rows_with_images(root, tmp_path / "full", None)
    small = _rows_with_images(root, tmp_path / "small", 48)
    for big, little in zip(full, small):
        assert big["sample_id"] == little["sample_id"]
        assert max(little["width"], little["height"]) == 48
        for (x0, y0, x1, y1), mask in zip(little["objects"]["bbox"], little["objects"]["mask"]):
            assert mask.size == (little["width"], little["height"])
            assert 0 <= x0 < x1 <= little["width"] and 0 <= y0 < y1 <= little["height"]
        for box, small_box in zip(big["objects"]["bbox"], little["objects"]["bbox"]):
            assert all(abs(s - b * little["scale"]) <= 2 for s, b in zip(small_box, box))


def _rows_with_images(root: Path, out: Path, max_size: int | None) -> list[dict[str, Any]]:
    run_recipe(cbis_ddsm, _context(root, "tcia", image=ImageOptions(max_size=max_size)), ["calc-roi"], out)
    ds = load_dataset(str(out), "calc-roi")
    return [r for s in ds for r in ds[s]]


def test_missing_series_index_names_both_sources(tmp_path: Path) -> None:
    (tmp_path / "mass_case_description_train_set.csv").write_text("x\n")
    with pytest.raises(Exception, match="metadata.csv.*dicom_info.csv"):
        cbis_ddsm.plan("mass", _context(tmp_path, "tcia"))
