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


def test_split_by_a_column_splits_every_table_holding_it_alike(mirror: MirrorServer, tmp_path: Path) -> None:
    from medcat_data.converters.recipes.base import RecipeOptions

    result = run_chain("mimic-iv-demo", mirror, tmp_path, options=RecipeOptions(split_by="subject_id"), expected_splits=False)
    splits_of: dict[int, set[str]] = {}
    for config, ds in result.loaded.items():
        if "subject_id" not in next(iter(ds.values())).features:
            continue
        for split in ds:
            for sid in ds[split]["subject_id"]:
                splits_of.setdefault(sid, set()).add(split)
    assert splits_of and all(len(s) == 1 for s in splits_of.values())
    assert set().union(*splits_of.values()) == {"train", "validation", "test"}


def test_an_option_of_another_recipe_is_refused_not_ignored(mirror: MirrorServer, tmp_path: Path) -> None:
    from medcat_data.converters.recipes.base import RecipeOptions
    from medcat_data.errors import UsageError

    with pytest.raises(UsageError, match=r"does not take the option\(s\) articles"):
        run_chain("mimic-iv-demo", mirror, tmp_path, options=RecipeOptions(extra={"articles": "ids.txt"}))
