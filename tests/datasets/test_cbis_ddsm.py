"""CBIS-DDSM: both sources give equal ids and labels, absent series in errors.jsonl, density off the
scale kept and noted, masks to boxes, damaged case tables, and the whole chain over loopback for
both sources (NBIA API and Kaggle)."""

from __future__ import annotations

import csv
import json
import re
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.normalize import context_for, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.datasets.cbis_ddsm import recipe as cbis_ddsm
from medcat_data.datasets.cbis_ddsm import replica as replica_builder
from medcat_data.datasets.vindr_mammo import recipe as vindr_mammo
from medcat_data.converters.units import ErrorUnit
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError
from medcat_data.loaders.archives import extract
from medcat_data.loaders.transports import tcia
from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.datasets.harness import ChainResult, load, normalize_folder, read_errors, run_chain

DATASET = "cbis-ddsm"
RECIPE = cbis_ddsm.RECIPE


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A dataset folder holding the tcia tree as the transport lays it out and the kaggle zip extracted as the fetch engine does."""
    served = tmp_path_factory.mktemp("served")
    replicas = replica_builder.build(served, seed=0)
    root = tmp_path_factory.mktemp("raw")
    with zipfile.ZipFile(served / replica_builder.KAGGLE_ZIP) as archive:
        archive.extractall(root / "kaggle")
    _retriever_layout(served, root / "tcia")
    return {"root": root, "expected": {r.source: dict(r.expected) for r in replicas}}


def _retriever_layout(served: Path, dest: Path) -> Path:
    """Lay the served NBIA series out as the tcia transport does (its own placement and
    metadata.csv), without the network: the wire path is the chain test's."""
    dest.mkdir()
    api = served / replica_builder.TCIA_API_DIR
    listing = json.loads((api / "series.json").read_text())
    series = tcia.series_folders(replica_builder.COLLECTION, listing)
    (dest / "metadata.csv").write_bytes(tcia.metadata_csv(replica_builder.COLLECTION, series, "2024-01-01T00:00:00.000"))
    for s in series:
        extract(api / f"{s.uid}.zip", dest / s.folder, dest / ".staging")
    for csv_file in (served / replica_builder.TCIA_PREFIX).glob("*.csv"):
        (dest / csv_file.name).write_bytes(csv_file.read_bytes())
    return dest


def _context(root: Path, source: str, **options: Any) -> RecipeContext:
    """The context normalize builds for one source of a folder (registry facts included)."""
    resolved = resolve(DATASET, load_registry())
    return context_for(resolved.entry, resolved.version, root, pick_source(resolved, source), RecipeOptions(**options))


def _normalize(root: Path, out: Path, source: str, configs: tuple[str, ...] = (), **options: Any) -> Path:
    return normalize_folder(DATASET, root, out, source=source, configs=configs, options=RecipeOptions(**options)).out_dir


@pytest.fixture(scope="module")
def outputs(sources: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {source: _normalize(sources["root"], tmp_path_factory.mktemp(f"out-{source}"), source) for source in ("tcia", "kaggle")}


def _rows(out: Path, config: str) -> list[dict[str, Any]]:
    ds = load(out, config)
    return [r for s in ds for r in ds[s].remove_columns("image")]


def test_replica_has_upstream_csv_quirks_and_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=2)
    replica_builder.build(b, seed=2)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in files)
    prefix = a / replica_builder.TCIA_PREFIX
    mass = (prefix / "mass_case_description_train_set.csv").read_bytes().decode()
    calc = (prefix / "calc_case_description_train_set.csv").read_bytes().decode()
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
    ctx = _context(sources["root"], source)
    for config in cbis_ddsm.CONFIGS:
        ds = load(out, config)
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        assert ds["train"].features == RECIPE.features(config, ctx, RECIPE.survey(ctx))
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids)) and not any(planted.startswith(i) or i == planted for i in ids)
        patients = {s: set(ds[s]["patient_id"]) for s in ds}
        assert not patients["train"] & patients["test"]
        assert all(p.startswith("P_") for s in ds for p in ds[s]["patient_id"])


def test_sources_give_equal_ids_and_labels(outputs: dict[str, Path]) -> None:
    # Two outputs were read, not one twice: DICOMs become PNG, the Kaggle JPEGs pass through.
    assert [load(outputs[s], "mass")["train"][0]["image"].format for s in ("tcia", "kaggle")] == ["PNG", "JPEG"]
    for config in cbis_ddsm.CONFIGS:
        tcia_rows, kaggle_rows = _rows(outputs["tcia"], config), _rows(outputs["kaggle"], config)
        if config.endswith("-roi"):
            for rows in (tcia_rows, kaggle_rows):
                for row in rows:
                    row["objects"].pop("mask")
        assert [r["sample_id"] for r in tcia_rows] == [r["sample_id"] for r in kaggle_rows]
        for a, b in zip(tcia_rows, kaggle_rows):
            a.pop("source"), b.pop("source")
            assert a == b


def test_labels_read_both_density_spellings_and_split_descriptors(sources: dict[str, Any], outputs: dict[str, Path]) -> None:
    calc = _rows(outputs["tcia"], "calc")
    mass = _rows(outputs["tcia"], "mass")
    assert all(r["density"] is not None for r in calc + mass if r["sample_id"] not in _off_scale(sources))
    assert any(r["calc_type"] and len(r["calc_type"]) > 1 for r in calc)
    assert any(r["calc_distribution"] is None for r in calc)  # N/A
    assert all(r["mass_shape"] for r in mass)
    ds = load(outputs["tcia"], "mass")
    assert ds["train"].features["birads"].names == vindr_mammo.RECIPE.features("birads", None, None)["birads"].names  # type: ignore[arg-type]


def _off_scale(sources: dict[str, Any]) -> set[str]:
    """The replica's calc-test rows with density 0 (upstream has two such rows), by sample_id."""
    ctx = _context(sources["root"], "tcia")
    rows = cbis_ddsm.read_case_csv(ctx, ctx.source_dir / "calc_case_description_test_set.csv")
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
    full = load(outputs[source], "calc")
    assert all(img.size[0] > 0 for img in full["test"].filter(lambda r: r["sample_id"] in off_scale)["image"])
    card = (outputs[source] / "README.md").read_text(encoding="utf-8")
    assert "outside 1-4" in card and all(s in card for s in off_scale)
    assert not any(s in json.dumps(read_errors(outputs[source])) for s in off_scale)


def test_roi_boxes_follow_resized_masks(sources: dict[str, Any], tmp_path: Path) -> None:
    root = sources["root"]
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
    ds = load(_normalize(root, out, "tcia", ("calc-roi",), image=ImageOptions(max_size=max_size)), "calc-roi")
    return [r for s in ds for r in ds[s]]


def test_missing_series_index_names_both_sources(tmp_path: Path) -> None:
    (tmp_path / "tcia").mkdir()
    (tmp_path / "tcia" / "mass_case_description_train_set.csv").write_text("x\n")
    with pytest.raises(UsageError, match="metadata.csv.*dicom_info.csv"):
        _normalize(tmp_path, tmp_path / "out", "tcia", ("mass",))


def test_a_case_csv_lacking_a_column_is_an_upstream_format_error(sources: dict[str, Any], tmp_path: Path) -> None:
    """A case table without a column the recipe reads is a conversion error (exit 1) naming file and column."""
    root = tmp_path / "raw"
    (root / "tcia").mkdir(parents=True)
    (root / "tcia" / "metadata.csv").write_bytes((sources["root"] / "tcia" / "metadata.csv").read_bytes())
    text = (sources["root"] / "tcia" / "calc_case_description_test_set.csv").read_text()
    (root / "tcia" / "calc_case_description_test_set.csv").write_text(text.replace("breast density,", "density,", 1))
    with pytest.raises(UpstreamFormatError, match=r"cbis-ddsm: calc_case_description_test_set\.csv lacks a density column "
                                                  r"\(breast_density or breast density\)") as caught:
        _normalize(root, tmp_path / "out", "tcia", ("calc",))
    assert caught.value.exit_code == 1
    (root / "tcia" / "calc_case_description_test_set.csv").write_text(text.replace(",pathology,", ",diagnosis,", 1))
    with pytest.raises(UpstreamFormatError, match=r"calc_case_description_test_set\.csv lacks the column\(s\) pathology"):
        _normalize(root, tmp_path / "out", "tcia", ("calc",))


def test_upstream_split_names_are_the_registry_entrys(sources: dict[str, Any]) -> None:
    """``Training`` becomes ``train`` because the registry entry says so, not a copy in code."""
    ctx = _context(sources["root"], "kaggle")
    survey = RECIPE.survey(ctx)
    assert ctx.splits_of("mass") == {"Training": "train", "Test": "test"}
    renamed = replace(ctx, upstream_splits={"mass": {"Training": "validation", "Test": "test"}})
    assert {u.split for u in RECIPE.plan("mass", renamed, survey).units} == {"validation", "test"}
    unmapped = replace(ctx, upstream_splits={"mass": {"Test": "test"}})
    units = list(RECIPE.plan("mass", unmapped, survey).units)
    assert {u.split for u in units[:-1]} == {"test"}
    assert isinstance(units[-1], ErrorUnit)  # reported by the executor in unit order, converted by no recipe
    (error,) = units[-1].errors
    assert error.path == "mass_case_description_train_set.csv" and "unknown upstream split 'Training'" in error.reason


def _labels(result: ChainResult, config: str) -> dict[str, list[tuple[object, ...]]]:
    """Per split, the sorted (sample_id, labels...) of a config, images and masks left out."""
    out = {}
    for split, ds in result.loaded[config].items():
        if config.endswith("-roi"):
            rows = [
                (r["sample_id"], r["patient_id"], tuple(sorted(zip(r["objects"]["abnormality_id"], r["objects"]["category"], r["objects"]["pathology"], r["objects"]["birads"]))))
                for r in ds.remove_columns("image")
            ]
        else:
            keep = [c for c in ds.column_names if c not in ("image", "source")]
            rows = [tuple(r[c] for c in keep) for r in ds.remove_columns("image")]
        out[split] = sorted(rows, key=repr)
    return out


@pytest.mark.integration
def test_both_source_chains_give_equal_sample_ids_and_labels(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tcia source (NBIA API series zips laid out as the Data Retriever does) normalizes to the
    same configs, features, sample_ids and labels as the kaggle JPEG copy; the planted absent
    series is reported by both (run_chain checks errors.jsonl)."""
    mirror.clear_log()
    tcia_run = run_chain(DATASET, mirror, tmp_path / "tcia", source="tcia")
    # Each load gets its own datasets cache: the two outputs share dataset, config and shard names.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "kaggle-cache")
    kaggle_run = run_chain(DATASET, mirror, tmp_path / "kaggle", source="kaggle")
    assert set(tcia_run.loaded) == set(kaggle_run.loaded) == {"mass", "calc", "mass-roi", "calc-roi"}
    assert kaggle_run.loaded["mass"]["train"].features["pathology"].names
    assert tcia_run.loaded["mass"]["train"][0]["image"].format == "PNG"
    assert kaggle_run.loaded["mass"]["train"][0]["image"].format == "JPEG"
    for config in tcia_run.loaded:
        for split in tcia_run.loaded[config]:
            assert tcia_run.loaded[config][split].features == kaggle_run.loaded[config][split].features
        assert _labels(tcia_run, config) == _labels(kaggle_run, config), config
    fetched = raw_dir(DATASET, tcia_run.resolved.version) / "tcia"
    header = (fetched / "metadata.csv").read_text().splitlines()[0]
    assert header.startswith("Series UID,Collection,") and header.endswith(",File Location,Download Timestamp")
    dicoms = sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*.dcm"))
    assert dicoms and all(re.fullmatch(r"CBIS-DDSM/(Mass|Calc)-(Training|Test)_P_\d{5}_(LEFT|RIGHT)_(CC|MLO)(_\d+)?/"
                                       r"07-20-2016-DDSM-\d{5}/\d\.000000-[a-zA-Z ]+-\d{5}/1-[12]\.dcm", d) for d in dicoms), dicoms[:3]
    assert mirror.count("/nbia-api/services/v4/getSeries") >= 1
    assert mirror.count("/nbia-api/services/v4/getImage") == len({d.rsplit("/", 1)[0] for d in dicoms})
