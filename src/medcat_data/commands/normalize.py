"""``medcat normalize``: a fetched dataset into a Hugging Face dataset folder."""

from __future__ import annotations

import time
from pathlib import Path

import click

from medcat_data.cli_options import (
    converter_options,
    dest_option,
    jobs_option,
    json_option,
    limit_option,
    max_errors_option,
    OwnedOptionsCommand,
    on_bad_item_option,
    owned_option,
    quiet_option,
    source_option,
)
from medcat_data.cli_output import Output
from medcat_data.commands.export import MAX_IMAGES_HELP, PROMPT_TEMPLATE_HELP, export_options, print_conversations
from medcat_data.converters.conversations import FORMAT_NAMES
from medcat_data.converters.splits import DEFAULT_SEED
from medcat_data.errors import ConvertError
from medcat_data.typed_options import split_pairs

def _recipe_options(ref: str) -> tuple[str, list[tuple[str, str]]]:
    """Describe the options the recipe of ``ref`` declares (for ``medcat normalize REF --help``)."""
    from medcat_data.catalog.refs import parse_ref, resolve
    from medcat_data.catalog.registry import load_registry
    from medcat_data.converters.recipe import require_recipe
    from medcat_data.typed_options import describe_options

    entry = resolve(parse_ref(ref), load_registry()).entry
    recipe = require_recipe(entry.id, entry.template_of)
    return f"Options of the {recipe.DATASET_ID} recipe (--option KEY=VALUE)", describe_options(recipe.Options)


@click.command("normalize", cls=OwnedOptionsCommand, describe=_recipe_options)
@click.argument("ref", metavar="REF")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output folder; the dataset lands in OUT/<id>/.")
@click.option("--config", "configs", multiple=True, help="Only this config (repeatable).")
@jobs_option
@click.option("--executor", default=None, metavar="SPEC", help="Where work units run: dask-local:N (a local Dask cluster on 127.0.0.1), tcp://HOST:PORT (a running Dask scheduler) or a scheduler file (.json); needs medcat-data[dask]. Default: this machine, --jobs processes.")
@click.option("--units-per-task", type=click.IntRange(min=1), default=None, metavar="N", help="With --executor dask...: work units per Dask task (default 4).")
@click.option("--overwrite", is_flag=True, help="Replace an output at OUT/<id> that was built with other options or inputs (or holds configs this run would drop); without it, normalize names what differs and changes nothing.")
@limit_option
@dest_option
@source_option
@converter_options
@max_errors_option
@on_bad_item_option
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of grouped splits.")
@click.option("--split-by", default=None, metavar="COLUMN", help="Seeded grouped split on this column where upstream has none.")
@owned_option("recipe")
@click.option("--conversations", "conversation_formats", multiple=True, type=click.Choice(FORMAT_NAMES), help="Also write OUT/<id>/conversations/FORMAT/<config>-<split>.jsonl for MLLM training (repeatable; docs/conversations.md).")
@click.option("--prompt-template", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None, help="With --conversations: h" + PROMPT_TEMPLATE_HELP[1:])
@click.option("--max-images", type=click.IntRange(min=0), default=None, metavar="N", help="With --conversations: s" + MAX_IMAGES_HELP[1:])
@quiet_option
@json_option
def normalize_cmd(
    ref: str,
    out: Path,
    configs: tuple[str, ...],
    jobs: int | None,
    limit: int | None,
    dest: Path | None,
    source_name: str | None,
    max_size: int | None,
    bit_depth: str,
    window: str,
    frames: str,
    max_errors: str | None,
    on_bad_item: str,
    seed: int,
    split_by: str | None,
    owned_options: tuple[str, ...],
    executor: str | None,
    units_per_task: int | None,
    overwrite: bool,
    conversation_formats: tuple[str, ...],
    prompt_template: Path | None,
    max_images: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Normalize a fetched dataset into OUT/<id>/ (parquet, card, manifest, errors.jsonl)."""
    # Imported here, not at the top: they load the catalog, `datasets` and pyarrow, which `--help` must not pay for.
    from medcat_data.catalog.refs import parse_ref, resolve
    from medcat_data.catalog.registry import load_registry
    from medcat_data.commands.unit_progress import make_unit_progress
    from medcat_data.converters.codecs.image import ImageOptions
    from medcat_data.converters.conversations import export_conversations
    from medcat_data.converters.convert import MaxErrors
    from medcat_data.converters.normalize import NormalizeRequest, normalize
    from medcat_data.converters.recipe import RecipeOptions

    output = Output(json_mode=as_json, quiet=quiet)
    resolved = resolve(parse_ref(ref), load_registry())
    options = RecipeOptions(
        image=ImageOptions(window=window, bit_depth=int(bit_depth), max_size=max_size, frames=frames),  # type: ignore[arg-type]
        limit=limit,
        seed=seed,
        split_by=split_by,
        extra=split_pairs(owned_options),
    )
    budget = MaxErrors.parse(max_errors) if max_errors is not None else MaxErrors()
    export = export_options(conversation_formats, prompt_template, max_images)
    request = NormalizeRequest(
        resolved, out, configs, source_name, dest, jobs or 1, options, on_bad_item, executor=executor, units_per_task=units_per_task,
        overwrite=overwrite,
    )
    started = time.perf_counter()
    result = normalize(request, make_unit_progress(output.stderr, quiet=quiet or as_json, label="normalizing"))
    seconds = time.perf_counter() - started  # the whole run: checks, plan, conversion, writing
    write = result.write
    total_rows = sum(n for per in write.rows.values() for n in per.values())
    summary = {
        "dataset": resolved.entry.id,
        "version": resolved.version,
        "source": result.source,
        "out": str(write.out_dir),
        "rows": {c: dict(s) for c, s in write.rows.items()},
        "errors": write.errors,
        "not_fetched": result.not_fetched,
        "dropped_configs": list(result.dropped_configs),
        "skipped_up_to_date": write.skipped,
        "seconds": round(seconds, 2),
    }
    exported = export_conversations(write.out_dir, export).summary() if export is not None else None
    if exported is not None:
        summary["conversations"] = exported
    if as_json:
        output.result(summary)
    else:
        state = "up to date" if write.skipped else f"{total_rows} rows in {seconds:.1f} s"
        output.print(f"{resolved.entry.id}: {state} -> {write.out_dir}")
        for config, splits in write.rows.items():
            output.print("  " + config + ": " + ", ".join(f"{s} {n}" for s, n in splits.items()))
        if write.errors:
            output.warn(f"{write.errors} item(s) failed; see {write.out_dir / 'errors.jsonl'}")
        if exported is not None:
            print_conversations(output, exported)
    if budget.exceeded(write.errors, total_rows + write.errors):
        raise ConvertError(f"{write.errors} item(s) failed (listed in {write.out_dir / 'errors.jsonl'}).")


COMMANDS: tuple[click.Command, ...] = (normalize_cmd,)
