"""No dataset lands half-done: every registry entry that is not a template has a whole kit.

A kit is ``src/medcat_data/datasets/<module>/`` with ``recipe.py`` (``RECIPE``, a typed
``Recipe``) and ``replica.py`` (``build``), and ``tests/datasets/test_<module>.py``, which runs
the full chain through the shared harness (``run_chain``: replica, fetch over loopback, verify,
normalize with ``--jobs 1`` and ``2``, ``load_dataset``) for every main source of the entry (a cloud
bucket copy of another source's tree excepted).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from medcat_data.catalog.registry import load_registry
from medcat_data.catalog.schema import module_name
from medcat_data.converters.recipe import Recipe, load_recipe
from medcat_data.mirror.replicas.base import load_builder

TESTS = Path(__file__).parent
ENTRIES = [e for e in load_registry() if not e.template]


def _chain_calls(module: Path) -> list[ast.Call]:
    """Return the ``run_chain(...)`` calls of a test module."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "run_chain"]


def test_every_shipped_entry_is_in_this_check() -> None:
    assert len(ENTRIES) >= 12


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.id)
def test_every_entry_has_a_kit_with_recipe_replica_and_chain_test(entry: object) -> None:
    dataset_id = entry.id  # type: ignore[attr-defined]
    kit = f"medcat_data.datasets.{module_name(dataset_id)}"
    recipe = load_recipe(dataset_id)
    assert isinstance(recipe, Recipe), f"{dataset_id}: no recipe"
    assert type(recipe).__module__ == f"{kit}.recipe", f"{dataset_id}: the recipe is not in its kit ({type(recipe).__module__})"
    assert recipe.DATASET_ID == dataset_id
    builder = load_builder(dataset_id)
    assert builder is not None and builder.__name__ == f"{kit}.replica", f"{dataset_id}: no replica in its kit"
    assert importlib.import_module(kit).__doc__, f"{kit} says in its docstring what the dataset is"
    module = TESTS / f"test_{module_name(dataset_id)}.py"
    assert module.is_file(), f"{dataset_id}: no tests/datasets/{module.name}"
    calls = _chain_calls(module)
    assert calls, f"{module.name} never runs the full chain (run_chain)"
    # A cloud bucket source is a copy of another source's tree (same folder, same files): the chain of
    # that source covers its normalize; its transport is tested in tests/integration/test_fetch_buckets.py.
    sources = {s.name for s in entry.main_sources if s.kind not in ("gcs", "s3")}  # type: ignore[attr-defined]
    if len(sources) > 1:
        named = {kw.value.value for c in calls for kw in c.keywords if kw.arg == "source" and isinstance(kw.value, ast.Constant)}
        assert named >= sources, f"{module.name} runs the chain for {sorted(named)}, not every source of {sorted(sources)}"


def test_every_kit_folder_is_a_registry_entry() -> None:
    """A kit without an entry is dead code (or a typo in its folder name)."""
    kits = {p.name for p in (Path(importlib.import_module("medcat_data.datasets").__file__).parent).iterdir()  # type: ignore[arg-type]
            if p.is_dir() and (p / "__init__.py").is_file()}
    known = {module_name(e.id) for e in load_registry()}
    assert kits <= known, sorted(kits - known)


def _mutable_globals(module: object) -> dict[str, str]:
    """Return a snapshot of a module's module-level dicts, lists and sets (by repr)."""
    return {
        name: repr(value)
        for name, value in vars(module).items()
        if isinstance(value, (dict, list, set, bytearray)) and not name.startswith("__")
    }


@pytest.mark.integration
def test_no_kit_module_keeps_state_between_runs(tmp_path: Path) -> None:
    """Running every dataset through the real chain leaves every kit module's globals as they were:
    caches keyed by hand-built tuples (the first wave's ``_SURVEYS``) would grow here."""
    import sys

    from medcat_data.demo import demo_failed, run_demo

    for entry in ENTRIES:
        load_recipe(entry.id)
    kits = {name: module for name, module in sys.modules.items() if name.startswith("medcat_data.datasets.") and module is not None}
    before = {name: _mutable_globals(module) for name, module in kits.items()}
    rows = run_demo(out=tmp_path / "out")
    assert not demo_failed(rows), [r.status for r in demo_failed(rows)]
    after = {name: _mutable_globals(module) for name, module in kits.items()}
    assert after == before
