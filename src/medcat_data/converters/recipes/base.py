"""The shape every recipe module has, and the context it is given.

A recipe is a module ``medcat_data.converters.recipes.<module_name(id)>`` exporting::

    DATASET_ID: str
    CONFIGS: tuple[str, ...]
    def features(config: str, ctx: RecipeContext) -> datasets.Features
    def plan(config: str, ctx: RecipeContext) -> Plan          # list work units first (cheap)
    def convert_unit(unit) -> Iterator[Row | SampleError]      # one unit, in a worker process

and optionally ``card_notes(ctx) -> list[str]``, ``EXTRA_OPTIONS: tuple[str, ...]`` (the
``RecipeOptions.extra`` keys it understands, e.g. ``articles``; any other is refused) and
``combine_units(units_by_config) -> list`` (merge the units of several configs that read the same
inputs, so that a run of all configs decodes each input once; rows still carry their config). Units are picklable frozen dataclasses naming
their inputs by path (they carry the context); ``convert_unit`` must not rely on running in the
parent process. Recipes read local files only: decoding goes through ``codecs``, labels through
``vocab``, splits through ``splits``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from datasets import Features

from medcat_data.catalog.schema import module_name
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.tabix import iter_lines
from medcat_data.converters.splits import DEFAULT_SEED
from medcat_data.converters.units import Row
from medcat_data.errors import InputDecodeError, SampleError, UsageError

_LONE_CR = re.compile(r"(?<=\r)(?!\n)")
"""Where a lone carriage return ends a line (split after it, unless a newline follows)."""


# One definition of each: the typed base's (this module goes when every recipe is a kit).
from medcat_data.converters.recipe import Plan, RecipeContext, RecipeOptions  # noqa: E402


class Recipe(Protocol):
    """The module protocol of a recipe (see the module docstring)."""

    DATASET_ID: str
    CONFIGS: tuple[str, ...]

    def features(self, config: str, ctx: RecipeContext) -> Features: ...

    def plan(self, config: str, ctx: RecipeContext) -> Plan: ...

    def convert_unit(self, unit: Any) -> Iterator[Row | SampleError]: ...


def load_recipe(dataset_id: str) -> Recipe | None:
    """Import the recipe module of a dataset id, or return None when it has none yet."""
    name = f"medcat_data.converters.recipes.{module_name(dataset_id)}"
    try:
        module: ModuleType = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name == name:
            return None
        raise
    return cast(Recipe, module)


def require_recipe(dataset_id: str, template_of: str | None = None) -> Recipe:
    """Return the recipe of a dataset id (or of the template it was built from).

    Raises:
        UsageError: no recipe exists yet.
    """
    for candidate in (dataset_id, template_of):
        if candidate:
            recipe = load_recipe(candidate)
            if recipe is not None:
                return recipe
    raise UsageError(
        f"{dataset_id} has no normalize recipe yet; `medcat fetch` still works and the files are "
        "in the raw cache. `medcat convert` turns image folders into a dataset."
    )


def read_text_lines(path: Path, encoding: str = "utf-8", errors: list[SampleError] | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of a plain or gzip text file (gzip by its magic bytes), 1-based, ends kept.

    Lines end at LF, CRLF or a lone CR, as text mode with ``newline=""`` splits them.
    ``encoding`` must be ASCII-compatible (UTF-8, Latin-1); it is decoded strictly, never with a
    replacement character. Without ``errors`` damage is raised; with it, a line whose bytes are not
    valid is appended there and skipped (the other lines go on), and a truncated or corrupt gzip
    stream is appended there and ends the lines.

    Raises:
        InputDecodeError: (without ``errors``) bytes not valid ``encoding``, or a truncated or
            corrupt gzip stream; named ``<file name>:<line>``.
    """
    number = 0
    lines = iter_lines(path)
    while True:
        try:
            got = next(lines, None)
        except InputDecodeError as err:  # numbered here: a lone CR may have split earlier lines
            failure = InputDecodeError(path.name, err.reason, number + 1)
            if errors is None:
                raise failure from None
            errors.append(failure)
            return
        if got is None:
            return
        try:
            text = got[1].decode(encoding)
        except UnicodeDecodeError as err:
            number += 1
            failure = InputDecodeError(path.name, f"bytes not valid {encoding} at column {err.start + 1} ({err.reason})", number)
            if errors is None:
                raise failure from None
            errors.append(failure)
            continue
        for piece in _LONE_CR.split(text) if "\r" in text else (text,):
            if piece:
                number += 1
                yield number, piece


def check_config(dataset_id: str, configs: Sequence[str], config: str) -> None:
    """Refuse a config a recipe does not produce.

    Raises:
        UsageError: ``config`` is not one of ``configs``.
    """
    if config not in configs:
        raise UsageError(f"{dataset_id} has no config {config!r}; configs: {', '.join(configs)}.")


def config_names(recipe: Recipe, wanted: Sequence[str] | None) -> list[str]:
    """Return the configs to build: all of the recipe's, or the requested subset.

    Raises:
        UsageError: a requested config the recipe does not produce.
    """
    if not wanted:
        return list(recipe.CONFIGS)
    unknown = [c for c in wanted if c not in recipe.CONFIGS]
    if unknown:
        raise UsageError(
            f"{recipe.DATASET_ID} has no config {', '.join(map(repr, unknown))}; "
            f"configs: {', '.join(recipe.CONFIGS)}."
        )
    return list(wanted)
