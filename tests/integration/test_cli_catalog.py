"""The catalog command line as a user drives it: list, info, search, registry validate/schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from medcat_data.catalog.registry import load_registry
from medcat_data.cli import main
from tests.unit.catalog.entries import registry_yaml, valid_entry
from tests.unit.catalog.test_shipped_registry import REQUIRED_IDS

pytestmark = pytest.mark.integration


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_json_holds_every_required_id_with_its_facts() -> None:
    code, out, _ = run("list", "--json")
    assert code == 0
    rows = {row["id"]: row for row in json.loads(out)}
    assert set(REQUIRED_IDS) <= set(rows)
    for dataset_id in REQUIRED_IDS:
        row = rows[dataset_id]
        assert row["access"] in {"open", "registration", "gated", "restricted", "credentialed"}
        assert row["license"] and row["modalities"] and row["tasks"] and row["citation"].startswith("@")


def test_list_table_filters_by_access() -> None:
    code, out, _ = run("list", "--access", "open")
    assert code == 0
    assert "cbis-ddsm" in out and "vindr-mammo" not in out


def test_list_json_filter_by_modality() -> None:
    code, out, _ = run("list", "--modality", "mammography", "--json")
    assert code == 0
    assert sorted(row["id"] for row in json.loads(out)) == ["cbis-ddsm", "vindr-mammo"]


def test_list_rejects_an_unknown_access_value() -> None:
    code, _, err = run("list", "--access", "members-only")
    assert code == 2 and "members-only" in err and "restricted" in err


def test_info_says_restricted_and_how_to_get_access() -> None:
    code, out, _ = run("info", "vindr-mammo")
    assert code == 0
    assert "restricted" in out
    assert "How to get access" in out and "DUA" in out
    assert "medcat fetch vindr-mammo --accept-license" in out
    assert "medcat normalize vindr-mammo --out data/" in out


def test_info_json_round_trips() -> None:
    code, out, _ = run("info", "mimic-cxr-jpg", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "mimic-cxr-jpg" and data["access"] == "credentialed"
    assert data["commands"]["fetch"].startswith("medcat fetch mimic-cxr-jpg")
    assert json.loads(json.dumps(data)) == data
    assert {c["name"] for c in data["configs"]} >= {"chexpert", "negbio"}


def test_info_bibtex_prints_only_bibtex() -> None:
    code, out, _ = run("info", "cbis-ddsm", "--bibtex")
    assert code == 0
    assert out.lstrip().startswith("@") and "Table" not in out and "How to get access" not in out


def test_info_physionet_project_without_network() -> None:
    code, out, _ = run("info", "physionet:ptb-xl@1.0.3", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["id"] == "physionet-ptb-xl" and data["version"] == "1.0.3"
    assert "https://physionet.org/files/ptb-xl/1.0.3/" in data["source_descriptions"][0]["where"]


def test_unknown_id_exits_2_with_suggestion() -> None:
    code, _, err = run("info", "vindr-mamo")
    assert code == 2
    assert "did you mean 'vindr-mammo'" in err.lower()
    assert "Traceback" not in err


def test_search_ranks_and_emits_json() -> None:
    code, out, _ = run("search", "mammography", "--json")
    assert code == 0
    rows = json.loads(out)
    assert {r["id"] for r in rows[:2]} == {"vindr-mammo", "cbis-ddsm"}
    assert rows[0]["score"] >= rows[-1]["score"]


def test_registry_validate_accepts_a_good_file(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(registry_yaml(valid_entry()))
    code, out, _ = run("registry", "validate", str(path))
    assert code == 0 and "ok:" in out


def test_registry_validate_rejects_a_hand_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(registry_yaml(valid_entry(id="vindr-mammo-local", access="members-only")))
    code, _, err = run("registry", "validate", str(path))
    assert code == 1
    assert "vindr-mammo-local.access: expected one of open, registration, gated, restricted, credentialed, got 'members-only'" in err
    assert "Traceback" not in err


def test_registry_validate_reports_collisions_with_shipped_ids(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(registry_yaml(valid_entry(id="medqa")))
    code, _, err = run("registry", "validate", str(path))
    assert code == 1 and "medqa: defined in both" in err


def test_registry_schema_is_json_schema_with_every_source_kind() -> None:
    code, out, _ = run("registry", "schema")
    assert code == 0
    schema = json.loads(out)
    text = json.dumps(schema)
    for kind in ("physionet", "hf", "kaggle", "urls", "gdrive"):
        assert f'"const": "{kind}"' in text or f'"{kind}"' in text
    assert schema["properties"]["datasets"]["type"] == "array"


def test_broken_user_registry_fails_every_command_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(registry_yaml(valid_entry(access="members-only")))
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    code, _, err = run("list")
    assert code == 1 and str(path) in err and "my-hospital-cxr.access" in err


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medcat_data", "info", "vindr-mamo"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "vindr-mammo" in proc.stderr


def test_registry_validate_accepts_the_shipped_file_itself() -> None:
    from importlib import resources

    shipped = str(resources.files("medcat_data").joinpath("registry.yaml"))
    code, out, _ = run("registry", "validate", shipped)
    count = len(load_registry().ids)
    assert count >= 18 and code == 0 and f"({count} entries)" in out
