"""PhysioNet template: any project's CSV tables as a config each, inferred types, damaged lines as
errors, on hand-written trees and its replica, and the whole chain through
``physionet:demo-open-project@1.0.0`` (replica → fetch over loopback → verify → normalize --jobs 1/2 → load)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import context_for, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.datasets.physionet import recipe as physionet
from medcat_data.datasets.physionet import replica
from medcat_data.errors import UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import load, normalize_folder, read_errors, run_chain

DEMO_REF = "physionet:demo-open-project@1.0.0"
HAND_REF = "physionet:hand-made@1"
"""Any PhysioNet project resolves through the template; the hand-written trees are normalized as one."""


def _truncated_gzip(text: str) -> bytes:
    data = gzip.compress(text.encode(), mtime=0)
    return data[: len(data) // 2]


def _context(ref: str, folder: Path, **options: Any) -> RecipeContext:
    resolved = resolve(ref, load_registry())
    return context_for(resolved.entry, resolved.version, folder, pick_source(resolved, None), RecipeOptions(**options))


def _normalize(ref: str, folder: Path, out: Path, **options: Any) -> Path:
    return normalize_folder(ref, folder, out, options=RecipeOptions(**options)).out_dir


@pytest.fixture(scope="module")
def open_project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("replica")
    (built,) = replica.build(root, seed=0)
    return root / "files" / "demo-open-project" / "1.0.0", dict(built.expected)


# ------------------------------------------------------------------------------------- replica


def test_sha256sums_follow_physionet_format(open_project: tuple[Path, dict[str, Any]]) -> None:
    project, _ = open_project
    lines = (project / "SHA256SUMS.txt").read_text(encoding="utf-8").splitlines()
    paths = [line.split(" ", 1)[1] for line in lines]
    assert all(len(line.split(" ", 1)[0]) == 64 and "  " not in line for line in lines)
    assert paths == sorted(paths, key=lambda p: p.encode()) and "SHA256SUMS.txt" not in paths
    assert {"LICENSE.txt", "RECORDS", "100.hea", "100.dat", "labs/measurements.csv.gz"} <= set(paths)


def test_replica_is_byte_identical_per_seed(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica.build(a, seed=3)
    replica.build(b, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


# ------------------------------------------------------------------------------------- recipe


def test_the_template_link_is_registry_data_and_its_entries_use_this_recipe() -> None:
    entry = resolve(DEMO_REF, load_registry()).entry
    assert entry.template_of == "physionet" and entry.id == "physionet-demo-open-project"
    assert physionet.RECIPE.DATASET_ID == "physionet" and physionet.RECIPE.CONFIGS == ("tables",)


def test_configs_expand_per_table(open_project: tuple[Path, dict[str, Any]]) -> None:
    project, expected = open_project
    ctx = _context(DEMO_REF, project)
    survey = physionet.RECIPE.survey(ctx)
    assert physionet.RECIPE.configs(ctx, survey) == sorted(expected["configs"])
    with pytest.raises(UsageError, match="one config per CSV table"):
        physionet.RECIPE.plan("tables", ctx, survey)
    with pytest.raises(UsageError, match="has no table config 'nope'"):
        physionet.RECIPE.features("nope", ctx, survey)
    assert physionet.config_name("hosp/admissions.csv.gz") == "hosp_admissions"
    assert physionet.config_name("Waveform-Data/ECG Summary.CSV") == "waveform_data_ecg_summary"


def test_open_project_loads_with_inferred_types_and_ragged_row_in_errors(open_project: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    project, expected = open_project
    first = normalize_folder(DEMO_REF, project, tmp_path / "out")
    out = first.out_dir
    assert out.name == "physionet-demo-open-project"
    for name in expected["configs"]:
        ds = load(out, name)
        assert {split: ds[split].num_rows for split in ds} == expected["configs"][name]
        types = {col: feat.dtype for col, feat in ds["train"].features.items() if col not in ("source", "sample_id", "split")}
        assert types == expected["types"][name]
        ids = ds["train"]["sample_id"]
        assert len(set(ids)) == len(ids) and all(i.startswith(f"{name}:") for i in ids)
        assert set(ds["train"]["source"]) == {"physionet-demo-open-project@1.0.0"}
    subjects = load(out, "subjects")["train"]
    assert "subjects:6" not in subjects["sample_id"]  # the ragged row
    assert None in subjects["smoker"] and "n/a" in subjects["frailty_score"]
    errors = read_errors(out)
    assert [(e["path"], e["stage"]) for e in errors] == [(x["path"], x["stage"]) for x in expected["errors"]]
    assert first.write.errors == 1
    again = normalize_folder(DEMO_REF, project, tmp_path / "again", jobs=2)
    assert again.write.rows == first.write.rows
    assert load(again.out_dir, "subjects")["train"]["sample_id"] == subjects["sample_id"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "WFDB record" in card and ": 100." in card


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
    ctx = _context(HAND_REF, project, seed=1)
    survey = physionet.RECIPE.survey(ctx)
    feats = physionet.RECIPE.features("t", ctx, survey)
    assert {k: feats[k].dtype for k in ("a", "b", "c", "d", "e", "upstream_sample_id")} == {
        "a": "int64", "b": "string", "c": "string", "d": "float64", "e": "string", "upstream_sample_id": "string"
    }
    assert len(list(physionet.RECIPE.plan("t", ctx, survey).units)) == 2
    assert len(list(physionet.RECIPE.plan("g", ctx, survey).units)) == 1
    out = _normalize(HAND_REF, project, tmp_path / "out", seed=1)
    t = load(out, "t")["train"]
    assert t["sample_id"] == ["t:1", "t:2", "t:3", "t:4"]
    assert t["e"] == ["x", None, "multi\nline", "y"] and t["c"] == ["007", "8", "9", "10"]
    assert load(out, "g")["train"]["k"] == [0, 1, 2, 3, 4]


def test_split_by_a_column_no_table_has_is_refused_naming_the_tables(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"--split-by 'subject_id': no table has that column; tables: a\."):
        _normalize(HAND_REF, tmp_path, tmp_path / "out", split_by="subject_id")


# ------------------------------------------------------------------------------------- damaged input


def test_a_table_line_not_utf8_is_an_error_line_and_no_value_holds_a_replacement_character(tmp_path: Path) -> None:
    (tmp_path / "subjects.csv").write_bytes(b"subject_id,name\n1,ann\n2,b\xe9a\n3,cid\n")
    out = _normalize(HAND_REF, tmp_path, tmp_path / "out")
    assert load(out, "subjects")["train"]["name"] == ["ann", "cid"]
    (error,) = read_errors(out)
    assert (error["path"], error["stage"], error["config"]) == ("subjects.csv:3", "read", "subjects")
    assert "bytes not valid UTF-8 at column 4" in error["message"] and "\ufffd" not in error["message"]


def test_a_truncated_gzip_table_keeps_its_rows_and_names_file_and_line(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i * 7919 % 100003},v{i * 31 % 997}\n" for i in range(3000))
    (tmp_path / "labs.csv.gz").write_bytes(_truncated_gzip("id,value,code\n" + rows))
    out = _normalize(HAND_REF, tmp_path, tmp_path / "out")
    kept = load(out, "labs")["train"].num_rows
    (error,) = read_errors(out)
    assert 0 < kept < 3000
    assert (error["path"], error["stage"]) == (f"labs.csv.gz:{kept + 2}", "read")
    assert "the file is truncated" in error["message"]


def test_records_not_utf8_is_a_card_note_not_a_replacement_character(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "RECORDS").write_bytes(b"100\n1\xff1\n")
    ctx = _context(HAND_REF, tmp_path)
    notes = physionet.RECIPE.card_notes(ctx, physionet.RECIPE.survey(ctx))
    assert not any("\ufffd" in note for note in notes)
    assert any("RECORDS:2: read: bytes not valid UTF-8" in note for note in notes)


# ------------------------------------------------------------------------------------- chain


@pytest.mark.integration
def test_any_open_physionet_project_normalizes_to_one_config_per_table(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("physionet", mirror, tmp_path, ref=DEMO_REF)
    assert result.out_dir.name == "physionet-demo-open-project"
    assert set(result.loaded) == {"subjects", "labs_measurements"}
    subjects = result.loaded["subjects"]["train"]
    assert subjects.features["smoker"].dtype == "bool" and subjects.features["weight_kg"].dtype == "float64"
