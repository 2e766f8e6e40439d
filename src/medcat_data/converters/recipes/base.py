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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, cast

from datasets import Features

from medcat_data.catalog.schema import module_name
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.splits import DEFAULT_SEED
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError


@dataclass(frozen=True)
class RecipeOptions:
    """Options every recipe honours; ``extra`` holds recipe-specific ones (documented by the recipe)."""

    image: ImageOptions = field(default_factory=ImageOptions)
    limit: int | None = None
    seed: int = DEFAULT_SEED
    split_by: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the options as JSON-safe data (part of the build key and the manifest)."""
        img = self.image
        return {
            "window": img.window,
            "bit_depth": img.bit_depth,
            "max_size": img.max_size,
            "frames": img.frames,
            "limit": self.limit,
            "seed": self.seed,
            "split_by": self.split_by,
            **{k: str(v) for k, v in sorted(self.extra.items())},
        }


@dataclass(frozen=True)
class RecipeContext:
    """Where a dataset's fetched files are and which of them may be used.

    ``root`` is the dataset cache of one version; ``source_dir`` the folder of the chosen main
    source (``root / source.subdir``); ``companions`` maps companion source names to their folders.
    ``available`` holds the verified relative paths (relative to ``root``) after a partial fetch;
    ``None`` means every file on disk may be used.
    """

    dataset_id: str
    version: str
    root: Path
    source: str
    source_dir: Path
    options: RecipeOptions = field(default_factory=RecipeOptions)
    companions: Mapping[str, Path] = field(default_factory=dict)
    available: frozenset[str] | None = None

    @property
    def source_tag(self) -> str:
        """Return the ``source`` column value: ``<dataset id>@<version>``."""
        return f"{self.dataset_id}@{self.version}"

    def has(self, path: Path) -> bool:
        """Return whether a file may be used: it exists and, after a partial fetch, was fetched."""
        if not path.is_file():
            return False
        if self.available is None:
            return True
        try:
            rel = path.relative_to(self.root).as_posix()
        except ValueError:
            return True
        return rel in self.available


@dataclass(frozen=True)
class Plan:
    """The work units of one config, plus the annotated items whose files were not fetched."""

    units: Sequence[Any]
    not_fetched: Sequence[str] = ()


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


def read_text_lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of a text file (gzip when the name ends in .gz), 1-based."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding=encoding, newline="") as handle:  # type: ignore[operator]
        for number, line in enumerate(handle, 1):
            yield number, line


def check_config(dataset_id: str, configs: Sequence[str], config: str) -> None:
    """Refuse a config a recipe does not produce.

    Raises:
        UsageError: ``config`` is not one of ``configs``.
    """
    if config not in configs:
        raise UsageError(f"{dataset_id} has no config {config!r}; configs: {', '.join(configs)}.")


def check_extra_options(recipe: Recipe, options: RecipeOptions) -> None:
    """Refuse recipe-specific options the recipe does not understand (never ignore them silently).

    Raises:
        UsageError: an option in ``options.extra`` that is not in the recipe's ``EXTRA_OPTIONS``.
    """
    accepted = set(getattr(recipe, "EXTRA_OPTIONS", ()))
    unknown = sorted(set(options.extra) - accepted)
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise UsageError(f"{recipe.DATASET_ID} does not take {flags}.")


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
