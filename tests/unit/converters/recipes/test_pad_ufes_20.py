"""PAD-UFES-20 on its replica: nested zips read in place, typed metadata, patient-grouped stratified splits."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from datasets import load_dataset

from medcat_data.converters.recipes import pad_ufes_20
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.mirror.replicas import pad_ufes_20 as replica_builder

from .recipe_run import read_errors, run_recipe


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The replica's outer zip, stored and extracted as the fetch engine does (into the zip's folder)."""
    served = tmp_path_factory.mktemp("served")
    (replica,) = replica_builder.build(served, seed=0)
    root = tmp_path_factory.mktemp("cache")
    outer = root / "zr7vgbcyr2-1.zip"
    outer.write_bytes((served / replica_builder.URL_PATH).read_bytes())
    with zipfile.ZipFile(outer) as archive:
        archive.extractall(root)
    return root, dict(replica.expected)


def _context(root: Path, **options: object) -> RecipeContext:
    return RecipeContext("pad-ufes-20", "1", root, "mendeley", root, options=RecipeOptions(**options))  # type: ignore[arg-type]


def test_replica_has_upstream_layout_and_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=1)
    replica_builder.build(b, seed=1)
    data = (a / replica_builder.URL_PATH).read_bytes()
    assert data == (b / replica_builder.URL_PATH).read_bytes()
    with zipfile.ZipFile(a / replica_builder.URL_PATH) as outer:
        names = outer.namelist()
        header = outer.read("zr7vgbcyr2-1/metadata.csv").decode().splitlines()[0]
    assert header.split(",") == list(pad_ufes_20.COLUMNS) and len(pad_ufes_20.COLUMNS) == 26
    assert {f"zr7vgbcyr2-1/images/imgs_part_{n}.zip" for n in (1, 2, 3)} <= set(names)


def test_diagnosis_loads_with_grouped_splits_and_missing_png_in_errors(fetched: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = fetched
    assert not list(root.rglob("*.png"))  # the inner zips stay zipped
    ctx = _context(root)
    out = tmp_path / "out"
    run_recipe(pad_ufes_20, ctx, ["diagnosis"], out)
    ds = load_dataset(str(out), "diagnosis")
    assert {s: ds[s].num_rows for s in ds} == expected["configs"]["diagnosis"]
    assert all(ds[s].num_rows for s in ("train", "validation", "test"))
    patients = {s: set(ds[s]["patient_id"]) for s in ds}
    assert not (patients["train"] & patients["validation"] or patients["train"] & patients["test"] or patients["validation"] & patients["test"])
    ids = [i for s in ds for i in ds[s]["sample_id"]]
    assert len(ids) == len(set(ids)) and all(i.startswith("PAT_") for i in ids)
    errors = read_errors(out)
    assert len(errors) == 1 and errors[0]["path"].endswith(expected["errors"][0]["path"])
    assert errors[0]["stage"] == expected["errors"][0]["stage"]
    planted = expected["errors"][0]["path"].removesuffix(".png")
    assert planted not in ids

    train = ds["train"]
    feats = train.features
    assert feats["diagnosis"].names == ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"]
    assert {c: feats[c].dtype for c in ("age", "lesion_id", "fitspatrick", "smoke", "itch", "biopsed", "region")} == {
        "age": "int64", "lesion_id": "int64", "fitspatrick": "float64", "smoke": "bool", "itch": "bool",
        "biopsed": "bool", "region": "string",
    }
    rows = [r for s in ds for r in ds[s].remove_columns("image")]
    assert any(r["smoke"] is None for r in rows) and any(r["smoke"] is not None for r in rows)
    unk = [r for r in rows if r["unk_columns"]]
    assert unk and all(r[c] is None for r in unk for c in r["unk_columns"])
    names = feats["diagnosis"].names
    assert all(r["is_cancer"] == (names[r["diagnosis"]] in {"BCC", "MEL", "SCC"}) for r in rows)
    assert all(names[r["diagnosis"]] == r["diagnostic"] for r in rows)
    first = train[0]
    assert first["image"].format == "PNG" and first["modality"] == "XC"
    notes = " ".join(pad_ufes_20.card_notes(ctx))
    assert "grouped by patient_id" in notes and "UNK" in notes


def test_extracted_pngs_give_the_same_rows(fetched: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = fetched
    loose = tmp_path / "loose"
    for path in root.rglob("*"):
        if path.is_file():
            target = loose / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.name.startswith("imgs_part_"):
                with zipfile.ZipFile(path) as inner:
                    inner.extractall(target.parent)
            else:
                target.write_bytes(path.read_bytes())
    run_recipe(pad_ufes_20, _context(loose), ["diagnosis"], tmp_path / "a")
    run_recipe(pad_ufes_20, _context(root), ["diagnosis"], tmp_path / "b", jobs=2)
    a, b = load_dataset(str(tmp_path / "a"), "diagnosis"), load_dataset(str(tmp_path / "b"), "diagnosis")
    for split in ("train", "validation", "test"):
        assert a[split]["sample_id"] == b[split]["sample_id"]
        assert [x["bytes"] for x in a[split].cast_column("image", a[split].features["image"].__class__(decode=False))["image"]] == [
            x["bytes"] for x in b[split].cast_column("image", b[split].features["image"].__class__(decode=False))["image"]
        ]
