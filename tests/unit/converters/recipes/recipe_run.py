"""Run a recipe module the way ``normalize`` does (plan -> executor -> writer) and read the result back.

Used by the recipe unit tests: replica tree in, real ``write_dataset`` out, real ``load_dataset``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from medcat_data.converters.card import CardInfo
from medcat_data.converters.executor import convert_units
from medcat_data.converters.build_manifest import BuildKey
from medcat_data.converters.recipes.base import RecipeContext
from medcat_data.converters.writer import ConfigSpec, DatasetSpec, WriteResult, write_dataset


def run_recipe(recipe: ModuleType, ctx: RecipeContext, configs: Sequence[str], out: Path, *, jobs: int = 1) -> WriteResult:
    """Plan every config, convert its units and write the dataset to ``out``."""
    specs, units = [], []
    for name in configs:
        specs.append(ConfigSpec(name=name, features=recipe.features(name, ctx)))
        units.extend(recipe.plan(name, ctx).units)
    notes = tuple(recipe.card_notes(ctx)) if hasattr(recipe, "card_notes") else ()
    spec = DatasetSpec(source=ctx.source_tag, configs=tuple(specs), card=CardInfo(pretty_name=ctx.dataset_id, summary="test", notes=notes))
    key = BuildKey(inputs=(), options={"configs": list(configs), "recipe": ctx.options.as_json()})
    return write_dataset(out, spec, key, convert_units(units, recipe.convert_unit, spec.encoder(), jobs=jobs))


def read_errors(out: Path) -> list[dict[str, Any]]:
    """Return the records of ``errors.jsonl`` (none when the file is absent)."""
    path = out / "errors.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
