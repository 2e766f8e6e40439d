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

import json
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.catalog.schema import Entry, Source
from medcat_data.converters.card import CardInfo
from medcat_data.converters.executor import Executor, check_executor, convert_units, make_executor
from medcat_data.converters.parquet_shards import write_shard
from medcat_data.converters.build_manifest import BuildKey, stat_inputs
from medcat_data.converters.resume import ResumeStore, resumed
from medcat_data.converters.units import UnitResult, describe_damage
from medcat_data.converters.recipe import (
    AnyRecipe,
    Plan,
    RecipeContext,
    RecipeOptions,
    Recipe,
    config_names,
    require_recipe,
)
from medcat_data.converters.writer import ConfigSpec, DatasetSpec, WriteResult, WriterOptions, write_dataset
from medcat_data.errors import ConvertError, OutputWriteError, SampleError, UsageError
from medcat_data.paths import raw_dir
from medcat_data.progress import Progress
from medcat_data.typed_options import NoOptions, parse_options

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
    executor: str | None = None
    """``None``: in-process for ``jobs`` 1, else a local pool; or ``dask-local:N``, ``tcp://HOST:PORT``, a scheduler file."""
    units_per_task: int | None = None
    overwrite: bool = False
    """Replace an output built with other options or inputs (else ``OutputExistsError`` names what differs)."""


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
    source = entry.source(name)  # UnknownSourceError (a UsageError) for an unknown name
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


def build_context(request: NormalizeRequest, recipe: AnyRecipe) -> RecipeContext:
    """Check the fetched state and return the context recipes read from.

    Raises:
        UsageError: nothing fetched, fetched files missing/unverified, or options the recipe does not take.
    """
    from medcat_data.converters.fetch_state import check_fetched

    resolved = request.resolved
    source = pick_source(resolved, request.source)
    root = dataset_root(resolved, request.dest)
    options = replace(request.options, extra=recipe_extra(recipe, request.options.extra))
    available = check_fetched(resolved, source, root, explicit_source=request.source)
    return context_for(resolved.entry, resolved.version, root, source, options, available)


def context_for(
    entry: Entry, version: str, root: Path, source: Source, options: RecipeOptions, available: frozenset[str] | None = None
) -> RecipeContext:
    """Return the context of one source of an entry whose files are under ``root``."""
    return RecipeContext(
        dataset_id=entry.id,
        version=version,
        root=root,
        source=source.name,
        source_dir=root / source.subdir if source.subdir else root,
        options=options,
        companions={c.name: root / c.subdir if c.subdir else root for c in entry.companion_sources},
        available=available,
        upstream_splits={
            c.name: {k: str(getattr(v, "value", v)) for k, v in c.upstream_splits.items()} for c in entry.configs if c.upstream_splits
        },
    )


def recipe_extra(recipe: AnyRecipe, extra: object) -> object:
    """Return the recipe's own options as an instance of its ``Options`` class.

    ``extra`` may already be one, be empty, or be a mapping of option names to values (text or
    paths, as from ``--option KEY=VALUE`` or a Python caller), converted by the declared types.

    Raises:
        UsageError: an option the recipe does not take, or a value that does not convert.
    """
    if isinstance(extra, recipe.Options):
        return extra
    if isinstance(extra, NoOptions):
        return recipe.Options()
    if isinstance(extra, Mapping):
        return parse_options(recipe.Options, {str(k): str(v) for k, v in extra.items()}, recipe.DATASET_ID)
    raise UsageError(f"{recipe.DATASET_ID}: options of type {type(extra).__name__} are not {recipe.Options.__name__}.")


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


def _card_notes(recipe: AnyRecipe, ctx: RecipeContext, survey: Any, ref: str) -> list[str]:
    """Return a recipe's card notes; damaged input met while making them is a note, not the end of the run.

    The notes only inform; the work unit that reads the same bytes reports them in ``errors.jsonl``.
    """
    try:
        return list(recipe.card_notes(ctx, survey))
    except Exception as err:
        damage = str(err) if isinstance(err, SampleError) else describe_damage(err)
        if damage is None:
            raise
        log.warning("%s: the recipe's card notes are left out: %s", ref, damage)
        return [f"The recipe's notes on this build are left out: reading its inputs failed ({damage})."]


class _SizedUnits:
    """The units of several configs, streamed in config order, with their total count when known."""

    def __init__(self, units: Iterable[Any], total: int) -> None:
        self._units, self._total = units, total

    def __iter__(self) -> Iterator[Any]:
        return iter(self._units)

    def __len__(self) -> int:
        return self._total


def _unit_stream(
    ref: str, names: Sequence[str], plans: Mapping[str, Plan[Any]], unit_configs: list[str | None]
) -> Iterable[Any]:
    """Stream every config's units in config order, noting each unit's config as it is taken.

    Plans are iterated lazily (the executor pulls a bounded window); damaged input met while a
    plan streams ends the run as it would while listing. Where every plan has a length, the
    stream has one too, so progress can show a total and an ETA.
    """

    def stream() -> Iterator[Any]:
        for name in names:
            with _reading(ref, name):
                for unit in plans[name].units:
                    unit_configs.append(name)
                    yield unit

    sizes = [plans[n].units for n in names]
    if all(isinstance(units, Sized) for units in sizes):
        return _SizedUnits(stream(), sum(len(units) for units in sizes if isinstance(units, Sized)))
    return stream()


CROISSANT_NAME = "croissant.json"


def _write_croissant(entry: Entry, version: str, spec: DatasetSpec, write: WriteResult) -> None:
    """Write ``croissant.json`` beside the shards (atomically): the output's own Croissant document.

    Raises:
        OutputWriteError: the file cannot be written.
    """
    from medcat_data.catalog.croissant import croissant_text, output_croissant

    target = write.out_dir / CROISSANT_NAME
    if write.skipped and target.is_file():
        return
    built = {cfg.name: cfg.features for cfg in spec.configs if cfg.name in write.rows}
    doc = output_croissant(entry, version, built, {c: tuple(s) for c, s in write.rows.items()})
    tmp = target.with_name(f".{CROISSANT_NAME}.part")
    try:
        tmp.write_text(croissant_text(doc), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputWriteError(write.out_dir, err) from err


def _key_text(key: BuildKey, writer: WriterOptions) -> Iterator[str]:
    """Yield the build key as canonical text, in pieces: what kept work units are valid for.

    The pieces join to ``json.dumps({"inputs": [[path, size, mtime], ...], "options", "tool",
    "writer"}, sort_keys=True)``, made one input at a time: the resume store hashes them without
    one string of every input (about 600,000 for MIMIC-CXR), and kept units stay valid across
    this change of how the text is made.
    """
    yield '{"inputs": ['
    sep = ""
    for f in key.inputs:
        yield f"{sep}[{json.dumps(f.path)}, {f.size_bytes}, {f.mtime_ns}]"
        sep = ", "
    yield f'], "options": {json.dumps(key.options, sort_keys=True, default=str)}, "tool": {json.dumps(key.tool_version)}, '
    yield f'"writer": {json.dumps(asdict(writer), sort_keys=True, default=str)}}}'


def _failing_fast(results: Iterable[UnitResult]) -> Iterator[UnitResult]:
    """Stop at the first failed item, also of a unit a previous run kept (``--on-bad-item fail``)."""
    for result in results:
        if result.errors:
            raise result.errors[0].to_exception()
        yield result


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
        UsageError: no recipe, unknown config, source or option, or nothing/partially verified fetched.
        ConvertError: unrecoverable writer problems (never a single bad item).
    """
    entry = request.resolved.entry
    recipe = require_recipe(entry.id, entry.template_of)
    check_executor(request.executor)
    ctx = build_context(request, recipe)
    executor = make_executor(request.executor, request.jobs, request.units_per_task)
    try:
        executor.prestart(recipe.convert_unit)  # workers start and import while the driver surveys and plans
        return run_recipe(
            recipe, entry, ctx, request.out, ref=str(request.resolved.ref), configs=request.configs,
            on_bad_item=request.on_bad_item, progress=progress, executor=executor, overwrite=request.overwrite,
        )
    finally:
        executor.close()


def run_recipe(
    recipe: AnyRecipe,
    entry: Entry,
    ctx: RecipeContext,
    out: Path,
    *,
    ref: str,
    configs: Sequence[str] = (),
    jobs: int = 1,
    on_bad_item: str = "record",
    progress: Progress | None = None,
    executor: Executor | None = None,
    writer_options: WriterOptions | None = None,
    overwrite: bool = False,
) -> NormalizeResult:
    """Survey, plan, convert and write one context's configs into ``out / <id>``.

    Raises:
        UsageError: an unknown config.
        ConvertError: damaged input met while planning, or unrecoverable writer problems.
    """
    with _reading(ref):
        survey = recipe.survey(ctx)
        names = config_names(recipe, ctx, survey, configs)
    specs, plans = [], {}
    declared = {c.name: c for c in entry.configs}
    for name in names:
        # A recipe with dynamic configs (one per upstream table) declares them as one registry config.
        cfg = declared.get(name) or (entry.configs[0] if len(entry.configs) == 1 else None)
        with _reading(ref, name):
            plan: Plan[Any] = recipe.plan(name, ctx, survey)
            features = recipe.features(name, ctx, survey)
        plans[name] = plan
        specs.append(
            ConfigSpec(
                name=name,
                features=features,
                task=cfg.task if cfg else None,
                description=cfg.description if cfg else "",
                # A --split-by split makes train/validation/test where the registry declares one split.
                splits=tuple(cfg.splits) if cfg and not ctx.options.split_by else (),
            )
        )
    not_fetched = {name: len(plan.not_fetched) for name, plan in plans.items() if plan.not_fetched}
    notes = [f"{n} annotated item(s) of config {c} were not fetched (partial fetch) and are left out." for c, n in not_fetched.items()]
    notes += _card_notes(recipe, ctx, survey, ref)
    spec = DatasetSpec(
        source=ctx.source_tag,
        configs=tuple(specs),
        card=CardInfo.from_entry(entry, how_made=f"`medcat normalize {ref}` from the `{ctx.source}` source.", notes=notes),
    )
    inputs = stat_inputs(
        (
            (rel, path)
            for folder in dict.fromkeys([ctx.source_dir, *ctx.companions.values()])
            if folder.exists()
            for rel, path in _files_under(folder, ctx.root)
            if ctx.available is None or rel in ctx.available
        ),
        root=ctx.root,
    )
    options: dict[str, Any] = {
        "configs": names,
        "source": ctx.source,
        "recipe": ctx.options.as_json(),
        "not_fetched": not_fetched,
    }
    key = BuildKey(inputs=inputs, options=options)
    # The config of each unit's errors: known by construction unless a recipe merged the units of
    # several configs (then a unit that declares a ``config`` field names it; see executor.unit_place).
    unit_configs: list[str | None] = []
    if len(names) > 1 and type(recipe).combine_units is not Recipe.combine_units:
        units: Iterable[Any] = recipe.combine_units(plans)
    else:
        units = _unit_stream(ref, names, plans, unit_configs)
    writer = writer_options or recipe.WRITER_OPTIONS
    # Finished units are kept beside the output until it is published: an interrupted run continues.
    store = ResumeStore(out / entry.id, _key_text(key, writer)).open()
    if store.kept:
        log.info("%s: continuing an interrupted run: %d finished work unit(s) are reused", out / entry.id, store.kept)
    owned = executor is None
    runner = executor or make_executor(None, jobs)
    # Workers stage their results beside the output (the resume store) and write its shards; the
    # driver plans the cuts from the staged files and writes card, manifest and errors.jsonl, then
    # publishes. In process too, so every executor measures the same Arrow bytes for the cuts.
    staging = store.staging()
    try:
        results = resumed(
            store,
            units,
            lambda fresh: convert_units(
                fresh,
                recipe.convert_unit,
                spec.encoder(),
                on_bad_item=on_bad_item,  # type: ignore[arg-type]
                progress=progress,
                executor=runner,
                staging=staging,
            ),
            staged=True,
        )
        if on_bad_item == "fail":
            results = _failing_fast(results)
        write = write_dataset(
            out / entry.id, spec, key, _placed(results, unit_configs), writer, overwrite=overwrite,
            runner=lambda task: runner.submit(write_shard, *task),
        )
    finally:
        if owned:
            runner.close()
    store.discard()
    _write_croissant(entry, ctx.version, spec, write)
    dropped = write.replaced_configs
    if dropped:
        log.warning(
            "%s: the rebuilt output holds only %s; config(s) %s of the previous output were built with other "
            "inputs or options and are removed (run without --config to rebuild every config)",
            out / entry.id, ", ".join(names), ", ".join(dropped),
        )
    return NormalizeResult(write=write, not_fetched=not_fetched, source=ctx.source, dropped_configs=dropped)
