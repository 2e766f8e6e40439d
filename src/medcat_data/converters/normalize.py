"""Normalize a fetched dataset: its recipe's work units through the executor into the writer.

Reads the raw cache only (never the network). Before any work it checks what was fetched: nothing
→ a ``UsageError`` naming the fetch command; missing or unverified files → the first ten of them
and the verify command. Files left out on purpose by a partial fetch (``--only``/``--limit``)
are "not fetched" (counted in the card), not errors. That check compares sizes with the fetch
manifest and never rehashes: damage that keeps a file's size is found by ``medcat verify --full``,
or met while reading. Damaged bytes met while planning (a truncated gzip index, bytes not valid
in a file's encoding) end the run with one ``ConvertError`` naming the config, before anything is
written; met while converting a unit, they are that unit's line in ``errors.jsonl``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.catalog.schema import Source
from medcat_data.converters.card import CardInfo
from medcat_data.converters.executor import Progress, convert_units
from medcat_data.converters.manifest import BuildKey, stat_inputs
from medcat_data.converters.units import UnitResult, describe_damage
from medcat_data.converters.recipes.base import (
    Plan,
    RecipeContext,
    RecipeOptions,
    check_extra_options,
    config_names,
    require_recipe,
)
from medcat_data.converters.writer import ConfigSpec, DatasetSpec, WriteResult, WriterOptions, write_dataset
from medcat_data.errors import ConvertError, SampleError, UsageError
from medcat_data.paths import raw_dir

log = logging.getLogger(__name__)

FETCH_STATE_DIR = ".medcat"


@dataclass(frozen=True)
class NormalizeRequest:
    """What to normalize, where from and where to."""

    resolved: ResolvedDataset
    out: Path
    configs: Sequence[str] = ()
    source: str | None = None
    dest: Path | None = None
    jobs: int = 1
    options: RecipeOptions = field(default_factory=RecipeOptions)
    on_bad_item: str = "record"


@dataclass(frozen=True)
class NormalizeResult:
    """The writer's result plus what the plan left out."""

    write: WriteResult
    not_fetched: dict[str, int]
    source: str
    dropped_configs: tuple[str, ...] = ()
    """Configs the previous output held that this rebuild (of fewer configs) no longer holds."""

    @property
    def out_dir(self) -> Path:
        return self.write.out_dir


def pick_source(resolved: ResolvedDataset, name: str | None) -> Source:
    """Return the requested main source, or the default one.

    Raises:
        UsageError: an unknown or companion source name.
    """
    entry = resolved.entry
    try:
        source = entry.source(name)
    except KeyError:
        names = ", ".join(s.name for s in entry.main_sources)
        raise UsageError(f"{entry.id} has no source {name!r}; sources: {names}.") from None
    if source.companion:
        raise UsageError(f"{entry.id}: {name!r} is a companion source, fetched with the main one; pick a main source.")
    return source


def dataset_root(resolved: ResolvedDataset, dest: Path | None) -> Path:
    """Return the raw cache folder of a dataset version (``--dest`` or the default)."""
    return dest if dest is not None else raw_dir(resolved.entry.id, resolved.version)


def _files_under(folder: Path, root: Path) -> Iterator[tuple[str, str]]:
    """Yield ``(path relative to root, posix; local path)`` of the fetched files under ``folder``.

    String operations rather than ``Path.relative_to`` per file: a PMC or MIMIC fetch holds
    hundreds of thousands of files.
    """
    prefix = os.path.join(str(root), "")
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d != FETCH_STATE_DIR)
        for name in sorted(filenames):
            if not name.endswith(".part"):
                full = os.path.join(dirpath, name)
                rel = full[len(prefix):] if full.startswith(prefix) else os.path.relpath(full, root)
                yield rel.replace(os.sep, "/"), full


def build_context(request: NormalizeRequest) -> RecipeContext:
    """Check the fetched state and return the context recipes read from.

    Raises:
        UsageError: nothing fetched, or fetched files missing/unverified.
    """
    from medcat_data.converters.fetch_state import check_fetched

    resolved = request.resolved
    source = pick_source(resolved, request.source)
    root = dataset_root(resolved, request.dest)
    available = check_fetched(resolved, source, root, explicit_source=request.source)
    return RecipeContext(
        dataset_id=resolved.entry.id,
        version=resolved.version,
        root=root,
        source=source.name,
        source_dir=root / source.subdir if source.subdir else root,
        options=request.options,
        companions={c.name: root / c.subdir if c.subdir else root for c in resolved.entry.companion_sources},
        available=available,
    )


def _config_names(recipe: Any, ctx: RecipeContext, wanted: Sequence[str]) -> list[str]:
    """Return the configs to build; a recipe may expand them per fetch with ``configs(ctx)``.

    Raises:
        UsageError: a requested config the recipe does not produce for this fetch.
    """
    dynamic = getattr(recipe, "configs", None)
    if dynamic is None:
        return config_names(recipe, wanted)
    produced = list(dynamic(ctx))
    # A generic config (``tables``) expands to per-fetch names; configs that are all declared
    # (some only built on request, e.g. with an option) are picked one by one instead.
    expands = any(c not in recipe.CONFIGS for c in produced)
    if not wanted or (expands and set(wanted) <= set(recipe.CONFIGS)):
        return produced
    unknown = [c for c in wanted if c not in produced]
    if unknown:
        hints = getattr(recipe, "CONFIG_HINTS", {})
        raise UsageError(
            f"{recipe.DATASET_ID}: no config {', '.join(map(repr, unknown))} in this fetch; configs: {', '.join(produced)}."
            + "".join(f" {hints[c]}" for c in unknown if c in hints)
        )
    return list(wanted)


@contextmanager
def _reading(ref: str, config: str | None = None) -> Iterator[None]:
    """Turn damaged input met by a recipe in this process (planning) into one ``ConvertError``.

    Recipes read their index files (CSV, JSON, gzip) while planning; a bare ``EOFError`` from a
    truncated gzip would reach click as ``Aborted!``, a ``UnicodeDecodeError`` as a traceback.

    Raises:
        ConvertError: what is damaged, the config being planned, and how to find the file.
    """
    try:
        yield
    except Exception as err:
        damage = describe_damage(err)
        if damage is None:
            raise
        where = f" config {config}:" if config else ""
        raise ConvertError(
            f"{ref}:{where} cannot read a fetched file: {damage}. Nothing was written. Run `medcat verify --full {ref}` "
            f"to find the damaged file, then `medcat fetch {ref}` to repair it."
        ) from err


def _card_notes(card_notes: Any, ctx: RecipeContext, ref: str) -> list[str]:
    """Return a recipe's card notes; damaged input met while making them is a note, not the end of the run.

    The notes only inform; the work unit that reads the same bytes reports them in ``errors.jsonl``.
    """
    try:
        return list(card_notes(ctx))
    except Exception as err:
        damage = str(err) if isinstance(err, SampleError) else describe_damage(err)
        if damage is None:
            raise
        log.warning("%s: the recipe's card notes are left out: %s", ref, damage)
        return [f"The recipe's notes on this build are left out: reading its inputs failed ({damage})."]


def _placed(results: Iterable[UnitResult], configs: Sequence[str | None]) -> Iterator[UnitResult]:
    """Name the config of every error record that lacks one, from the unit it came from."""
    for result in results:
        config = configs[result.index] if result.index < len(configs) else None
        if config is not None and any(e.config is None for e in result.errors):
            result = replace(result, errors=tuple(e.placed(config) for e in result.errors))
        yield result


def normalize(request: NormalizeRequest, progress: Progress | None = None) -> NormalizeResult:
    """Normalize a fetched dataset into ``request.out / <id>``.

    Raises:
        UsageError: no recipe, unknown config or source, or nothing/partially verified fetched.
        ConvertError: unrecoverable writer problems (never a single bad item).
    """
    entry = request.resolved.entry
    template = "physionet" if entry.id.startswith("physionet-") else None
    recipe = require_recipe(entry.id, template)
    check_extra_options(recipe, request.options)
    ctx = build_context(request)
    ref = str(request.resolved.ref)
    with _reading(ref):
        names = _config_names(recipe, ctx, request.configs)
    specs, plans = [], {}
    declared = {c.name: c for c in entry.configs}
    for name in names:
        # A recipe with dynamic configs (one per upstream table) declares them as one registry config.
        cfg = declared.get(name) or (entry.configs[0] if len(entry.configs) == 1 else None)
        with _reading(ref, name):
            plan: Plan = recipe.plan(name, ctx)
            features = recipe.features(name, ctx)
        plans[name] = plan
        specs.append(
            ConfigSpec(
                name=name,
                features=features,
                task=cfg.task if cfg else None,
                description=cfg.description if cfg else "",
                # A --split-by split makes train/validation/test where the registry declares one split.
                splits=tuple(cfg.splits) if cfg and not request.options.split_by else (),
            )
        )
    not_fetched = {name: len(plan.not_fetched) for name, plan in plans.items() if plan.not_fetched}
    notes = [f"{n} annotated item(s) of config {c} were not fetched (partial fetch) and are left out." for c, n in not_fetched.items()]
    card_notes = getattr(recipe, "card_notes", None)
    if card_notes is not None:
        notes += _card_notes(card_notes, ctx, ref)
    spec = DatasetSpec(
        source=ctx.source_tag,
        configs=tuple(specs),
        card=CardInfo.from_entry(
            entry,
            how_made=f"`medcat normalize {request.resolved.ref}` from the `{ctx.source}` source.",
            notes=notes,
        ),
    )
    inputs = stat_inputs(
        (rel, path)
        for folder in dict.fromkeys([ctx.source_dir, *ctx.companions.values()])
        if folder.exists()
        for rel, path in _files_under(folder, ctx.root)
        if ctx.available is None or rel in ctx.available
    )
    options: dict[str, Any] = {
        "configs": names,
        "source": ctx.source,
        "recipe": request.options.as_json(),
        "not_fetched": not_fetched,
    }
    key = BuildKey(inputs=inputs, options=options)
    combine = getattr(recipe, "combine_units", None)
    # The config of each unit's errors: known by construction unless a recipe merged the units of
    # several configs (then a unit that declares a ``config`` field names it; see executor.unit_place).
    if combine is not None and len(names) > 1:
        units = list(combine({name: plans[name].units for name in names}))
        unit_configs: list[str | None] = []
    else:
        units = [unit for name in names for unit in plans[name].units]
        unit_configs = [name for name in names for _ in plans[name].units]
    results = convert_units(
        units,
        recipe.convert_unit,
        spec.encoder(),
        jobs=request.jobs,
        on_bad_item=request.on_bad_item,  # type: ignore[arg-type]
        progress=progress,
    )
    # A recipe of many small rows (VCF records) may ask for larger row groups than the image default.
    writer_options = WriterOptions(**getattr(recipe, "WRITER_OPTIONS", {}))
    write = write_dataset(request.out / entry.id, spec, key, _placed(results, unit_configs), writer_options)
    dropped = write.replaced_configs
    if dropped:
        log.warning(
            "%s: the rebuilt output holds only %s; config(s) %s of the previous output were built with other "
            "inputs or options and are removed (run without --config to rebuild every config)",
            request.out / entry.id, ", ".join(names), ", ".join(dropped),
        )
    return NormalizeResult(write=write, not_fetched=not_fetched, source=ctx.source, dropped_configs=dropped)
