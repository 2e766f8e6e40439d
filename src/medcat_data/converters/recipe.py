"""The typed recipe contract: what every dataset kit's ``recipe.py`` implements, and the context it reads.

A recipe is a subclass of ``Recipe[SurveyT, UnitT]`` in ``medcat_data.datasets.<module>.recipe``,
exported as ``RECIPE``. Every hook is a typed member with a default, so a misspelt hook is a
mypy error, not a silent no-op::

    survey(ctx) -> SurveyT                    once, in the parent: what every other hook needs
    configs(ctx, survey) -> configs built     default: CONFIGS
    features(config, ctx, survey)             the config's datasets.Features
    plan(config, ctx, survey) -> Plan         its work units (iterated lazily) and what was not fetched
    combine_units(plans) -> units             default: every config's units in config order
    convert_unit(unit) -> rows and errors     in a worker: no parent state, inputs named by path
    card_notes(ctx, survey) -> list[str]      lines for the dataset card

plus declared members: ``Options`` (a typed frozen dataclass, see ``typed_options``),
``CONFIG_HINTS``, ``COLUMN_DESCRIPTIONS`` and ``WRITER_OPTIONS``. Recipes read local files only:
decoding goes through ``codecs``, labels through ``vocab``, splits through ``splits``; nothing
is kept at module level between calls (the survey is the only state, and normalize owns it).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, Generic, TypeVar, cast

from datasets import Features

from medcat_data.catalog.schema import module_name
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.splits import DEFAULT_SEED
from medcat_data.converters.units import Columns, ErrorUnit, Row
from medcat_data.converters.writer import WriterOptions
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError
from medcat_data.typed_options import NoOptions, given_options

SurveyT = TypeVar("SurveyT")
UnitT = TypeVar("UnitT")
OptionsT = TypeVar("OptionsT")

DATASETS_PACKAGE = "medcat_data.datasets"


@dataclass(frozen=True)
class RecipeOptions:
    """Options every recipe honours; ``extra`` is an instance of the recipe's own ``Options`` class."""

    image: ImageOptions = field(default_factory=ImageOptions)
    limit: int | None = None
    seed: int = DEFAULT_SEED
    split_by: str | None = None
    extra: Any = field(default_factory=NoOptions)

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
            **{k: str(v) for k, v in sorted(given_options(self.extra).items())},
        }


@dataclass(frozen=True)
class RecipeContext:
    """Where a dataset's fetched files are and which of them may be used.

    ``root`` is the dataset cache of one version; ``source_dir`` the folder of the chosen main
    source (``root / source.subdir``); ``companions`` maps companion source names to their folders;
    ``upstream_splits`` is the registry's mapping of upstream split names to ours (per config,
    ``""`` for the entry-wide one). ``available`` holds the verified relative paths (relative to
    ``root``) after a partial fetch; ``None`` means every file on disk may be used.
    """

    dataset_id: str
    version: str
    root: Path
    source: str
    source_dir: Path
    options: RecipeOptions = field(default_factory=RecipeOptions)
    companions: Mapping[str, Path] = field(default_factory=dict)
    available: frozenset[str] | None = None
    upstream_splits: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

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

    def rel(self, path: Path) -> str:
        """Return a path relative to the source folder (POSIX), or its name when outside it."""
        try:
            return path.relative_to(self.source_dir).as_posix()
        except ValueError:
            return path.name

    def splits_of(self, config: str) -> Mapping[str, str]:
        """Return the registry's upstream-to-ours split names for a config (else the entry's)."""
        return self.upstream_splits.get(config) or self.upstream_splits.get("", {})

    def extra(self, cls: type[OptionsT]) -> OptionsT:
        """Return the recipe's own options, typed."""
        extra = self.options.extra
        return extra if isinstance(extra, cls) else cls()


@dataclass(frozen=True)
class Plan(Generic[UnitT]):
    """The work units of one config, plus the annotated items whose files were not fetched.

    ``units`` may be a generator: normalize iterates it once, lazily. Beside the recipe's own units,
    an ``ErrorUnit`` reports items found broken while planning (no recipe converts it).
    """

    units: Iterable[UnitT | ErrorUnit]
    not_fetched: Sequence[str] = ()


class Recipe(Generic[SurveyT, UnitT]):
    """Base of every recipe; see the module docstring for the hooks."""

    DATASET_ID: ClassVar[str]
    CONFIGS: ClassVar[tuple[str, ...]]
    Options: ClassVar[type] = NoOptions
    CONFIG_HINTS: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Per config: what to do to build it when this fetch cannot (e.g. an option to pass)."""
    COLUMN_DESCRIPTIONS: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Per column: a sentence for the catalog pages."""
    WRITER_OPTIONS: ClassVar[WriterOptions] = WriterOptions()

    def survey(self, ctx: RecipeContext) -> SurveyT:
        """Look at the fetched files once; the result is handed to every other parent-side hook."""
        return cast(SurveyT, None)

    def configs(self, ctx: RecipeContext, survey: SurveyT) -> Sequence[str]:
        """Return the configs this fetch produces (a recipe may expand them per fetch)."""
        return self.CONFIGS

    def features(self, config: str, ctx: RecipeContext, survey: SurveyT) -> Features:
        """Return a config's features. The catalog pages also ask with nothing fetched, passing the
        survey as ``None`` when the empty folder's survey fails; features that need the data may raise."""
        raise NotImplementedError

    def plan(self, config: str, ctx: RecipeContext, survey: SurveyT) -> Plan[UnitT]:
        raise NotImplementedError

    def convert_unit(self, unit: UnitT) -> Iterator[Row | Columns | SampleError]:
        raise NotImplementedError

    def combine_units(self, plans: Mapping[str, Plan[UnitT]]) -> Iterable[UnitT | ErrorUnit]:
        """Return the units to run: by default every config's, in config order.

        A recipe whose configs read the same inputs merges them here, so that a run of all
        configs decodes each input once (rows still carry their config).
        """
        return (unit for plan in plans.values() for unit in plan.units)

    def card_notes(self, ctx: RecipeContext, survey: SurveyT) -> list[str]:
        return []

    def check_config(self, config: str) -> None:
        """Refuse a config this recipe does not produce.

        Raises:
            UsageError: ``config`` is not one of ``CONFIGS``.
        """
        if config not in self.CONFIGS:
            raise UsageError(f"{self.DATASET_ID} has no config {config!r}; configs: {', '.join(self.CONFIGS)}.")


AnyRecipe = Recipe[Any, Any]


def require_columns(ctx: RecipeContext, path: Path, have: Iterable[str], need: Iterable[str]) -> None:
    """Check that an upstream table has the columns a recipe reads.

    Raises:
        UpstreamFormatError: naming the file, the missing columns and the ones it has.
    """
    present = list(have)
    missing = [c for c in need if c not in present]
    if missing:
        raise UpstreamFormatError(ctx.dataset_id, ctx.rel(path), f"lacks the column(s) {', '.join(missing)} (it has {', '.join(present)})")


def load_recipe(dataset_id: str) -> AnyRecipe | None:
    """Return the recipe of a dataset id from its kit folder, or None while it has none."""
    name = f"{DATASETS_PACKAGE}.{module_name(dataset_id)}.recipe"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if err.name is not None and name.startswith(err.name):
            return None
        raise
    recipe = getattr(module, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise TypeError(f"{name} must export RECIPE, an instance of a Recipe subclass")
    return recipe


def require_recipe(dataset_id: str, template_of: str | None = None) -> AnyRecipe:
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


def config_names(recipe: AnyRecipe, ctx: RecipeContext, survey: Any, wanted: Sequence[str]) -> list[str]:
    """Return the configs to build: all this fetch produces, or the requested subset.

    Raises:
        UsageError: a requested config the recipe does not produce for this fetch.
    """
    produced = list(recipe.configs(ctx, survey))
    # A generic config (``tables``) expands to per-fetch names; configs that are all declared
    # (some only built on request, e.g. with an option) are picked one by one instead.
    expands = any(c not in recipe.CONFIGS for c in produced)
    if not wanted or (expands and set(wanted) <= set(recipe.CONFIGS)):
        return produced
    unknown = [c for c in wanted if c not in produced]
    if unknown:
        hints = recipe.CONFIG_HINTS
        raise UsageError(
            f"{recipe.DATASET_ID}: no config {', '.join(map(repr, unknown))} in this fetch; configs: {', '.join(produced)}."
            + "".join(f" {hints[c]}" for c in unknown if c in hints)
        )
    return list(wanted)
