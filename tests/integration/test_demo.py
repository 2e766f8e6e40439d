"""``medcat demo`` runs the real chain offline and reports every dataset."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from medcat_data.cli import main
from medcat_data.catalog.registry import load_registry

pytestmark = pytest.mark.integration


def test_demo_runs_the_chain_and_keeps_outputs(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--only", "mimic-iv-demo", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    (row,) = report["rows"]
    assert row["status"] == "ok" and row["files"] > 0 and row["rows"]
    config = next(iter(row["rows"]))
    ds = datasets.load_dataset(str(tmp_path / "mimic-iv-demo"), config)
    assert sum(len(ds[s]) for s in ds) == sum(row["rows"][config].values())


def test_demo_reports_every_registry_entry_it_is_asked_for(tmp_path: Path) -> None:
    ids = [e.id for e in load_registry()]
    result = CliRunner().invoke(main, ["demo", "--only", "pmc-oa", "--json"])
    report = json.loads(result.stdout)
    assert [r["dataset"] for r in report["rows"]] == ["pmc-oa"]
    assert report["rows"][0]["status"] in {"ok", "no recipe yet"}
    assert "pmc-oa" in ids


def test_demo_unknown_id_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["demo", "--only", "vindr-mamo"])
    assert result.exit_code == 2 and "vindr-mammo" in result.stderr
