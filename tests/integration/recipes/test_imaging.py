"""Imaging datasets end to end: replica → fetch over loopback → verify → normalize (--jobs 1/2) → load."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from tests.integration.recipes.harness import run_chain

pytestmark = pytest.mark.integration


def test_vindr_mammo_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("vindr-mammo", mirror, tmp_path)
    assert set(result.loaded) == {"birads", "findings"}


def test_mimic_cxr_jpg_chain_keeps_all_four_states(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("mimic-cxr-jpg", mirror, tmp_path)
    train = result.loaded["chexpert"]["train"]
    names = train.features["edema"].names
    states = {names[v] for col in train.features if col in {"edema", "atelectasis", "cardiomegaly", "lung_opacity"} for v in train[col] if v is not None}
    assert {"positive", "negative", "uncertain", "unmentioned"} <= states


def test_mimic_cxr_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("mimic-cxr", mirror, tmp_path)
    assert "reports" in result.loaded


def test_cbis_ddsm_kaggle_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("cbis-ddsm", mirror, tmp_path, source="kaggle")
    assert result.loaded["mass"]["train"].features["pathology"].names
