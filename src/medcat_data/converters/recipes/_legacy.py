"""Transition only: wrap a recipe module of the first wave in the typed ``Recipe`` base.

Removed when every dataset has its kit folder (``medcat_data.datasets.<id>``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any

from datasets import Features

from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.units import Row
from medcat_data.converters.writer import WriterOptions
from medcat_data.errors import SampleError
from medcat_data.typed_options import given_options


class ModuleRecipe(Recipe[None, Any]):
    def __init__(self, module: ModuleType) -> None:
        self.module = module
        cls = type(self)
        # Per-instance declarations (the class is shared by every wrapped module).
        object.__setattr__(self, "DATASET_ID", module.DATASET_ID)
        object.__setattr__(self, "CONFIGS", module.CONFIGS)
        object.__setattr__(self, "CONFIG_HINTS", getattr(module, "CONFIG_HINTS", {}))
        object.__setattr__(self, "COLUMN_DESCRIPTIONS", getattr(module, "COLUMN_DESCRIPTIONS", {}))
        object.__setattr__(self, "WRITER_OPTIONS", WriterOptions(**getattr(module, "WRITER_OPTIONS", {})))
        fields = [(k, "str | None", dataclasses.field(default=None)) for k in getattr(module, "EXTRA_OPTIONS", ())]
        object.__setattr__(self, "Options", dataclasses.make_dataclass(f"{module.__name__.rsplit('.', 1)[-1]}_options", fields, frozen=True))
        # The module function itself, so that workers unpickle it by name.
        object.__setattr__(self, "convert_unit", module.convert_unit)
        del cls

    def _old(self, ctx: RecipeContext) -> Any:
        return replace(ctx, options=replace(ctx.options, extra=given_options(ctx.options.extra)))

    def configs(self, ctx: RecipeContext, survey: None) -> Sequence[str]:
        dynamic = getattr(self.module, "configs", None)
        return list(dynamic(self._old(ctx))) if dynamic is not None else self.CONFIGS

    def features(self, config: str, ctx: RecipeContext, survey: None) -> Features:
        return self.module.features(config, self._old(ctx))  # type: ignore[no-any-return]

    def plan(self, config: str, ctx: RecipeContext, survey: None) -> Plan[Any]:
        old = self.module.plan(config, self._old(ctx))
        return Plan(units=old.units, not_fetched=old.not_fetched)

    def convert_unit(self, unit: Any) -> Iterator[Row | SampleError]:  # replaced per instance
        raise NotImplementedError

    def combine_units(self, plans: Mapping[str, Plan[Any]]) -> Iterable[Any]:
        combine = getattr(self.module, "combine_units", None)
        if combine is None:
            return super().combine_units(plans)
        return combine({name: list(plan.units) for name, plan in plans.items()})  # type: ignore[no-any-return]

    def card_notes(self, ctx: RecipeContext, survey: None) -> list[str]:
        notes = getattr(self.module, "card_notes", None)
        return list(notes(self._old(ctx))) if notes is not None else []
