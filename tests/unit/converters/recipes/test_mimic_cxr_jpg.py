"""MIMIC-CXR-JPG on its replica: study-level labels by name, four states, unlabelled = null, official split."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from datasets import DatasetDict, load_dataset

from medcat_data.converters.recipes import mimic_cxr_jpg
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.converters.vocab.chexpert import OBSERVATIONS, column_name
from medcat_data.mirror.replicas import _mimic
from medcat_data.mirror.replicas import mimic_cxr_jpg as replica_builder

from .recipe_run import read_errors, run_recipe

PROJECT = Path("files/mimic-cxr-jpg/2.1.0")


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    served = tmp_path_factory.mktemp("served")
    (built,) = replica_builder.build(served, seed=0)
    return served / PROJECT, dict(built.expected)


def _context(root: Path, **options: object) -> RecipeContext:
    return RecipeContext("mimic-cxr-jpg", "2.1.0", root, "physionet", root, options=RecipeOptions(**options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def loaded(replica: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, DatasetDict]]:
    root, _ = replica
    out = tmp_path_factory.mktemp("out") / "mimic-cxr-jpg"
    run_recipe(mimic_cxr_jpg, _context(root), list(mimic_cxr_jpg.CONFIGS), out)
    return out, {c: load_dataset(str(out), c) for c in mimic_cxr_jpg.CONFIGS}


def test_replica_is_byte_identical_and_upstream_shaped(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=3)
    replica_builder.build(b, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    project = a / PROJECT
    sums = (project / "SHA256SUMS.txt").read_text().splitlines()
    paths = [line.split(" ", 1)[1] for line in sums]
    assert paths == sorted(paths, key=lambda p: p.encode()) and "SHA256SUMS.txt" not in paths
    assert len(paths) == len([p for p in project.rglob("*") if p.is_file()]) - 1
    with gzip.open(project / "mimic-cxr-2.0.0-chexpert.csv.gz", "rt") as fh:
        assert fh.readline().strip().split(",") == ["subject_id", "study_id", *OBSERVATIONS]
    with gzip.open(project / "mimic-cxr-2.0.0-metadata.csv.gz", "rt") as fh:
        assert fh.readline().strip().split(",") == list(_mimic.METADATA_COLUMNS)
    test_header = (project / "mimic-cxr-2.1.0-test-set-labeled.csv").read_text().splitlines()[0].split(",")
    assert test_header[0] == "study_id" and "Airspace Opacity" in test_header and "Lung Opacity" not in test_header
    listed = (project / "IMAGE_FILENAMES").read_text().splitlines()
    assert listed and all(p.startswith("files/p1") and p.endswith(".jpg") for p in listed)


def test_every_config_loads_with_expected_counts_and_planted_jpg_in_errors_only(
    replica: tuple[Path, dict], loaded: tuple[Path, dict[str, DatasetDict]]
) -> None:
    _, expected = replica
    out, sets = loaded
    for config, ds in sets.items():
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids))
        patients = {s: set(ds[s]["patient_id"]) for s in ds}
        for s1 in patients:
            for s2 in patients:
                assert s1 == s2 or not patients[s1] & patients[s2]
    assert set(sets["test-labeled"]) == {"test"}
    errors = read_errors(out)
    planted = expected["errors"]
    assert len(errors) == len(planted) == 2
    assert all(e["path"].endswith(planted[0]["path"]) and e["stage"] == "read" for e in errors)
    bad_id = Path(planted[0]["path"]).stem
    assert all(bad_id not in ds[s]["sample_id"] for ds in sets.values() for s in ds)


def test_chexpert_has_four_states_and_unlabelled_studies_are_null(loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    _, sets = loaded
    ds = sets["chexpert"]
    columns = [column_name(o) for o in OBSERVATIONS]
    names = ds["train"].features["atelectasis"].names
    assert names == ["negative", "positive", "uncertain", "unmentioned"]
    rows = [r for s in ds for r in ds[s].remove_columns("image")]
    states = {names[r[c]] for r in rows for c in columns if r[c] is not None}
    assert states == set(names)
    unlabelled = [r for r in rows if not r["labelled"]]
    assert unlabelled and all(r[c] is None for r in unlabelled for c in columns)
    assert all(r[c] is not None for r in rows if r["labelled"] for c in columns)
    assert len({r["study_id"] for r in unlabelled}) == 1
    assert {r["view"] for r in rows} >= {"LATERAL"} and any(r["view"] in ("PA", "AP") for r in rows)


def test_jpeg_bytes_pass_through(replica: tuple[Path, dict], loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    root, _ = replica
    _, sets = loaded
    from datasets import Image

    train = sets["negbio"]["train"].cast_column("image", Image(decode=False))
    first = train[0]
    folder = f"files/p{first['patient_id'][:2]}/p{first['patient_id']}/s{first['study_id']}"
    assert first["image"]["bytes"] == (root / folder / f"{first['dicom_id']}.jpg").read_bytes()


def test_test_labeled_reads_airspace_opacity_as_lung_opacity(replica: tuple[Path, dict], loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    root, _ = replica
    _, sets = loaded
    lines = (root / "mimic-cxr-2.1.0-test-set-labeled.csv").read_text().splitlines()
    header = lines[0].split(",")
    upstream = {row.split(",")[0]: row.split(",")[header.index("Airspace Opacity")] for row in lines[1:]}
    want = {"1.0": "positive", "0.0": "negative", "-1.0": "uncertain", "": "unmentioned"}
    test = sets["test-labeled"]["test"]
    names = test.features["lung_opacity"].names
    assert test.num_rows
    for row in test.remove_columns("image"):
        assert names[row["lung_opacity"]] == want[upstream[row["study_id"]]]


def test_sample_ids_stable_and_limit_and_partial_fetch(replica: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = replica
    run_recipe(mimic_cxr_jpg, _context(root), ["chexpert"], tmp_path / "a", jobs=2)
    run_recipe(mimic_cxr_jpg, _context(root), ["chexpert"], tmp_path / "b")
    a, b = load_dataset(str(tmp_path / "a"), "chexpert"), load_dataset(str(tmp_path / "b"), "chexpert")
    for split in a:
        assert a[split]["sample_id"] == b[split]["sample_id"]
    assert len(mimic_cxr_jpg.plan("chexpert", _context(root, limit=2)).units) == 2
    listed = [line.split(" ", 1)[1] for line in (root / "SHA256SUMS.txt").read_text().splitlines()]
    dropped = [p for p in listed if p.endswith(".jpg")][:3]
    ctx = RecipeContext("mimic-cxr-jpg", "2.1.0", root, "physionet", root, available=frozenset(set(listed) - set(dropped)))
    planned = mimic_cxr_jpg.plan("chexpert", ctx)
    assert sorted(planned.not_fetched) == sorted(dropped)
    images = sum(len(u.images) for u in planned.units if hasattr(u, "images"))
    assert images == sum(expected["configs"]["chexpert"].values()) + 1 - len(dropped)
