"""MIMIC-IV demo: the PhysioNet table recipe under the entry's own id, on a hand-written tree and on
its replica (``--split-by subject_id`` splitting every table alike), and the whole chain (replica →
fetch over loopback → verify → normalize --jobs 1/2 → load)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.converters.recipe import RecipeOptions
from medcat_data.datasets.mimic_iv_demo import recipe as mimic_iv_demo
from medcat_data.datasets.mimic_iv_demo import replica
from medcat_data.datasets.physionet.recipe import PhysioNetTables
from medcat_data.errors import UsageError
from medcat_data.mirror.replicas.base import csv_bytes, gzip_bytes
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import load, normalize_folder, read_errors, run_chain

DATASET = "mimic-iv-demo"


def _where(out: Path, configs: list[str]) -> dict[int, set[str]]:
    """Return the splits each subject_id is in, over every config holding the column."""
    where: dict[int, set[str]] = {}
    for name in configs:
        ds = load(out, name)
        if "subject_id" not in next(iter(ds.values())).features:
            continue
        for split in ds:
            for sid in ds[split]["subject_id"]:
                where.setdefault(sid, set()).add(split)
    return where


def test_the_recipe_is_the_physionet_one_under_this_entrys_id() -> None:
    assert isinstance(mimic_iv_demo.RECIPE, PhysioNetTables)
    assert mimic_iv_demo.RECIPE.DATASET_ID == DATASET and mimic_iv_demo.RECIPE.CONFIGS == ("tables",)


def test_a_hand_written_demo_tree_gives_a_config_per_table_split_by_subject(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    (root / "hosp").mkdir(parents=True)
    (root / "icu").mkdir()
    subjects = [10000032 + 7 * i for i in range(30)]
    (root / "demo_subject_id.csv").write_bytes(csv_bytes(["subject_id"], [[s] for s in subjects]))
    admissions = [[s, 20000000 + i, f"2180-05-0{1 + i % 9} 12:00:00", "EW EMER." if i % 2 else "URGENT"] for i, s in enumerate(subjects)]
    (root / "hosp" / "admissions.csv.gz").write_bytes(
        gzip_bytes(csv_bytes(["subject_id", "hadm_id", "admittime", "admission_type"], admissions))
    )
    stays = [[s, 30000000 + i, f"{1.5 + i % 4:.2f}"] for i, s in enumerate(subjects[::2])]
    (root / "icu" / "icustays.csv.gz").write_bytes(gzip_bytes(csv_bytes(["subject_id", "stay_id", "los"], stays)))
    (root / "README.txt").write_text("not a table\n", encoding="utf-8")

    result = normalize_folder(DATASET, root, tmp_path / "out", options=RecipeOptions(split_by="subject_id"))
    out = result.out_dir
    assert out.name == DATASET
    configs = ["demo_subject_id", "hosp_admissions", "icu_icustays"]
    assert sorted(result.write.rows) == configs
    assert {c: sum(n.values()) for c, n in result.write.rows.items()} == {
        "demo_subject_id": 30, "hosp_admissions": 30, "icu_icustays": 15
    }
    admissions_ds = load(out, "hosp_admissions")
    train = admissions_ds["train"]
    assert {c: f.dtype for c, f in train.features.items() if c not in ("source", "sample_id", "split")} == {
        "subject_id": "int64", "hadm_id": "int64", "admittime": "string", "admission_type": "string"
    }
    assert set(train["source"]) == {"mimic-iv-demo@2.2"}
    where = _where(out, configs)
    assert set(where) == set(subjects) and all(len(s) == 1 for s in where.values())
    assert set().union(*where.values()) == {"train", "validation", "test"}
    assert read_errors(out) == []
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "Config `hosp_admissions` is `hosp/admissions.csv.gz` (30 data rows)" in card


def test_split_by_subject_splits_every_replica_table_alike(tmp_path: Path) -> None:
    (built,) = replica.build(tmp_path / "replica", seed=0)
    project = tmp_path / "replica" / "files" / "mimic-iv-demo" / "2.2"
    result = normalize_folder(DATASET, project, tmp_path / "out", options=RecipeOptions(split_by="subject_id", seed=7))
    names = sorted(result.write.rows)
    assert names == sorted(built.expected["configs"])
    for name in names:
        ds = load(result.out_dir, name)
        assert sum(ds[s].num_rows for s in ds) == sum(built.expected["configs"][name].values())
    where = _where(result.out_dir, names)
    assert where and all(len(splits) == 1 for splits in where.values())
    assert {s for splits in where.values() for s in splits} == {"train", "validation", "test"}
    errors = read_errors(result.out_dir)
    assert [(e["path"], e["stage"]) for e in errors] == [(x["path"], x["stage"]) for x in built.expected["errors"]]


@pytest.mark.integration
def test_mimic_iv_demo_chain_gives_its_hosp_and_icu_tables(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    assert result.out_dir.name == DATASET
    assert any(name.startswith("hosp_") for name in result.loaded)
    assert any(name.startswith("icu_") for name in result.loaded)


@pytest.mark.integration
def test_split_by_a_column_splits_every_table_holding_it_alike(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, options=RecipeOptions(split_by="subject_id"), expected_splits=False)
    splits_of: dict[int, set[str]] = {}
    for ds in result.loaded.values():
        if "subject_id" not in next(iter(ds.values())).features:
            continue
        for split in ds:
            for sid in ds[split]["subject_id"]:
                splits_of.setdefault(sid, set()).add(split)
    assert splits_of and all(len(s) == 1 for s in splits_of.values())
    assert set().union(*splits_of.values()) == {"train", "validation", "test"}


@pytest.mark.integration
def test_an_option_of_another_recipe_is_refused_not_ignored(mirror: MirrorServer, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"does not take the option\(s\) articles"):
        run_chain(DATASET, mirror, tmp_path, options=RecipeOptions(extra={"articles": "ids.txt"}))
