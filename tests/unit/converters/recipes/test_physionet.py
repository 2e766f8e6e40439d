"""The generic PhysioNet table recipe on its replicas: a config per table, inferred types, grouped splits."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from datasets import load_dataset

from medcat_data.converters.recipes import mimic_iv_demo, physionet
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.errors import UsageError
from medcat_data.mirror.replicas import mimic_iv_demo as mimic_replica
from medcat_data.mirror.replicas import physionet as physionet_replica

from .recipe_run import read_errors, run_recipe


def _context(project: Path, dataset_id: str, version: str, **options: object) -> RecipeContext:
    return RecipeContext(dataset_id, version, project, "physionet", project, options=RecipeOptions(**options))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def open_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("replica")
    (replica,) = physionet_replica.build(root, seed=0)
    return root / "files" / "demo-open-project" / "1.0.0", dict(replica.expected)


def test_sha256sums_follow_physionet_format(open_project: tuple[Path, dict]) -> None:
    project, _ = open_project
    lines = (project / "SHA256SUMS.txt").read_text(encoding="utf-8").splitlines()
    paths = [line.split(" ", 1)[1] for line in lines]
    assert all(len(line.split(" ", 1)[0]) == 64 and "  " not in line for line in lines)
    assert paths == sorted(paths, key=lambda p: p.encode()) and "SHA256SUMS.txt" not in paths
    assert {"LICENSE.txt", "RECORDS", "100.hea", "100.dat", "labs/measurements.csv.gz"} <= set(paths)


def test_replica_is_byte_identical_per_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    physionet_replica.build(a, seed=3)
    physionet_replica.build(b, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_configs_expand_per_table(open_project: tuple[Path, dict]) -> None:
    project, expected = open_project
    ctx = _context(project, "physionet-demo-open-project", "1.0.0")
    assert physionet.CONFIGS == ("tables",)
    assert physionet.configs(ctx) == sorted(expected["configs"])
    with pytest.raises(UsageError, match="one config per CSV table"):
        physionet.plan("tables", ctx)
    assert physionet.config_name("hosp/admissions.csv.gz") == "hosp_admissions"
    assert physionet.config_name("Waveform-Data/ECG Summary.CSV") == "waveform_data_ecg_summary"


def test_open_project_loads_with_inferred_types_and_ragged_row_in_errors(open_project: tuple[Path, dict], tmp_path: Path) -> None:
    project, expected = open_project
    ctx = _context(project, "physionet-demo-open-project", "1.0.0")
    names = physionet.configs(ctx)
    out = tmp_path / "out"
    first = run_recipe(physionet, ctx, names, out)
    for name in names:
        ds = load_dataset(str(out), name)
        counts = {split: ds[split].num_rows for split in ds}
        assert counts == expected["configs"][name]
        types = {col: feat.dtype for col, feat in ds["train"].features.items() if col not in ("source", "sample_id", "split")}
        assert types == expected["types"][name]
        ids = ds["train"]["sample_id"]
        assert len(set(ids)) == len(ids) and all(i.startswith(f"{name}:") for i in ids)
        assert set(ds["train"]["source"]) == {"physionet-demo-open-project@1.0.0"}
    subjects = load_dataset(str(out), "subjects")["train"]
    assert "subjects:6" not in subjects["sample_id"]  # the ragged row
    assert None in subjects["smoker"] and "n/a" in subjects["frailty_score"]
    errors = read_errors(out)
    assert [(e["path"], e["stage"]) for e in errors] == [(x["path"], x["stage"]) for x in expected["errors"]]
    assert first.errors == 1
    again = run_recipe(physionet, ctx, names, tmp_path / "again", jobs=2)
    assert again.rows == first.rows
    assert load_dataset(str(tmp_path / "again"), "subjects")["train"]["sample_id"] == subjects["sample_id"]
    notes = " ".join(physionet.card_notes(ctx))
    assert "WFDB record" in notes and "100" in notes


def test_split_by_subject_splits_every_table_alike(tmp_path: Path) -> None:
    (replica,) = mimic_replica.build(tmp_path / "replica", seed=0)
    project = tmp_path / "replica" / "files" / "mimic-iv-demo" / "2.2"
    ctx = _context(project, "mimic-iv-demo", "2.2", split_by="subject_id", seed=7)
    names = mimic_iv_demo.configs(ctx)
    assert names == sorted(replica.expected["configs"])
    out = tmp_path / "out"
    run_recipe(mimic_iv_demo, ctx, names, out)
    where: dict[int, set[str]] = {}
    for name in names:
        ds = load_dataset(str(out), name)
        assert sum(ds[s].num_rows for s in ds) == sum(replica.expected["configs"][name].values())
        for split in ds:
            for sid in ds[split]["subject_id"]:
                where.setdefault(sid, set()).add(split)
    assert all(len(splits) == 1 for splits in where.values())
    assert {s for splits in where.values() for s in splits} == {"train", "validation", "test"}
    errors = read_errors(out)
    assert [(e["path"], e["stage"]) for e in errors] == [(x["path"], x["stage"]) for x in replica.expected["errors"]]


def test_conflicting_values_widen_and_big_tables_split_into_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "p"
    project.mkdir()
    (project / "t.csv").write_text(
        "a,b,c,d,e,sample_id\n1,True,007,1,x,s1\n2,False,8,2.5,,s2\n3,1,9,1e3,\"multi\nline\",s3\n4,,10,,y,s4\n",
        encoding="utf-8",
    )
    with gzip.open(project / "g.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("k\n" + "".join(f"{i}\n" for i in range(5)))
    monkeypatch.setattr(physionet, "CHUNK_ROWS", 2)
    ctx = _context(project, "physionet-x", "1", seed=1)
    feats = physionet.features("t", ctx)
    assert {k: feats[k].dtype for k in ("a", "b", "c", "d", "e", "upstream_sample_id")} == {
        "a": "int64", "b": "string", "c": "string", "d": "float64", "e": "string", "upstream_sample_id": "string"
    }
    assert len(physionet.plan("t", ctx).units) == 2 and len(physionet.plan("g", ctx).units) == 1
    out = tmp_path / "out"
    run_recipe(physionet, ctx, ["g", "t"], out)
    t = load_dataset(str(out), "t")["train"]
    assert t["sample_id"] == ["t:1", "t:2", "t:3", "t:4"]
    assert t["e"] == ["x", None, "multi\nline", "y"] and t["c"] == ["007", "8", "9", "10"]
    assert load_dataset(str(out), "g")["train"]["k"] == [0, 1, 2, 3, 4]
