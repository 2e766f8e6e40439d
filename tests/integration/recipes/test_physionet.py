"""PhysioNet projects end to end: replica → fetch over loopback → verify → normalize → load."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from tests.integration.recipes.harness import run_chain

pytestmark = pytest.mark.integration


def test_any_open_physionet_project_normalizes_to_one_config_per_table(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("physionet", mirror, tmp_path, ref="physionet:demo-open-project@1.0.0")
    assert result.out_dir.name == "physionet-demo-open-project"
    assert len(result.loaded) >= 2


def test_mimic_iv_demo_tables(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("mimic-iv-demo", mirror, tmp_path)
    assert any(name.startswith("hosp_") for name in result.loaded)
