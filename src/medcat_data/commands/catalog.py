"""Catalog commands: ``list``, ``info``, ``search`` and ``registry validate|schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from typing import TYPE_CHECKING

from medcat_data import api
from medcat_data.catalog.schema import Access, Task
from medcat_data.cli_options import json_option
from medcat_data.cli_output import Output
from medcat_data.errors import RegistryError

if TYPE_CHECKING:  # what the commands use loads in their bodies: `--help` needs the schema's choices only
    from rich.table import Table
    from rich.text import Text

_ACCESS_STYLE = {"open": "green", "registration": "cyan", "gated": "yellow", "restricted": "magenta", "credentialed": "red"}


def _entries_table(rows: list[dict], title: str | None = None) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=title, show_lines=False, expand=False)
    for col in ("id", "name", "modalities", "tasks", "access", "size", "license"):
        table.add_column(col, overflow="fold", no_wrap=col in {"id", "access", "size"}, ratio=2 if col == "name" else 1)
    for row in rows:
        access = row["access"]
        table.add_row(
            row["id"],
            escape(row["name"]),
            ", ".join(row["modalities"]),
            ", ".join(row["tasks"]),
            f"[{_ACCESS_STYLE[access]}]{access}[/]",
            row["size"],
            escape(row["license"]),
        )
    return table


@click.command("list")
@click.option("--modality", multiple=True, help="Keep datasets of this modality (repeatable); an unknown one is refused with the known ones.")
@click.option("--task", multiple=True, type=click.Choice([t.value for t in Task]), help="Keep datasets with this task schema.")
@click.option("--access", multiple=True, type=click.Choice([a.value for a in Access]), help="Keep datasets with this access type.")
@click.option("--license", "license_", multiple=True, help="Keep datasets whose licence id or name contains this.")
@json_option
def list_cmd(modality: tuple[str, ...], task: tuple[str, ...], access: tuple[str, ...], license_: tuple[str, ...], as_json: bool) -> None:
    """List the datasets of the catalog, optionally filtered."""
    from medcat_data.catalog import query
    from medcat_data.catalog.registry import load_registry

    out = Output(json_mode=as_json)
    filters = query.Filters(modality=modality, task=task, access=access, license=license_)
    query.check_filters(filters)
    rows = [query.summary_row(e) for e in query.filter_entries(load_registry(), filters)]
    if as_json:
        out.result(rows)
    else:
        out.print(_entries_table(rows))
        out.info(f"{len(rows)} dataset(s). `medcat info ID` for details.")


@click.command("info")
@click.argument("ref", metavar="REF")
@json_option
@click.option("--bibtex", is_flag=True, help="Print only the BibTeX citation.")
@click.option("--croissant", is_flag=True, help="Print only the MLCommons Croissant JSON-LD metadata.")
def info_cmd(ref: str, as_json: bool, bibtex: bool, croissant: bool) -> None:
    """Show everything needed to decide on and obtain a dataset."""
    from rich.console import Group

    from medcat_data.catalog import describe
    from medcat_data.catalog.croissant import croissant_metadata, croissant_text
    from medcat_data.catalog.refs import parse_ref, resolve
    from medcat_data.catalog.registry import load_registry
    from medcat_data.commands.info_view import render_info

    out = Output(json_mode=as_json)
    resolved = resolve(parse_ref(ref), load_registry())
    if bibtex:
        out.raw(resolved.entry.citation)
        return
    if croissant:
        out.raw(croissant_text(croissant_metadata(resolved.entry, resolved.version)))
        return
    details = describe.entry_details(resolved)
    local = api.info(ref)
    if as_json:
        out.result({**details, "local": local.local_dict()})
        return
    out.print(Group(*render_info(resolved, details), *_local_section(local)))


def _local_section(found: api.DatasetInfo) -> list[Text]:
    """Say whether and where this version is fetched (and verified) and normalized."""
    from rich.text import Text

    raw, norm = found.raw, found.normalized
    if raw.fetched:
        state = "verified" if raw.verified else "not verified: run `medcat verify` for details"
        fetched = f"yes, {raw.path} ({raw.files} files, {state})"
    else:
        fetched = f"no (a fetch puts it in {raw.path})"
    normalized = f"yes, {norm.path} (configs: {', '.join(norm.configs)})" if norm else "no"
    return [
        Text("\nOn this machine", style="bold underline"),
        Text(f"  fetched     {fetched}"),
        Text(f"  normalized  {normalized}"),
    ]


@click.command("search")
@click.argument("text", nargs=-1, required=True)
@json_option
def search_cmd(text: tuple[str, ...], as_json: bool) -> None:
    """Search ids, names, descriptions, modalities and tasks; best matches first."""
    from medcat_data.catalog import query
    from medcat_data.catalog.registry import load_registry

    out = Output(json_mode=as_json)
    ranked = query.search(load_registry(), " ".join(text))
    rows = [dict(query.summary_row(e), score=round(s, 2)) for e, s in ranked]
    if as_json:
        out.result(rows)
        return
    out.print(_entries_table(rows))
    out.info(f"{len(rows)} match(es) for {' '.join(text)!r}.")


@click.group("registry")
def registry_group() -> None:
    """Check registry files and export the entry schema."""


@registry_group.command("validate")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@json_option
def validate_cmd(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate registry FILES against the schema and the shipped ids (default: every active file)."""
    from medcat_data.catalog.registry import load_registry, validate_files

    out = Output(json_mode=as_json)
    if not files:
        registry = load_registry()
        origins = list(dict.fromkeys(registry.origins.values()))
        out.result([{"file": o, "ok": True} for o in origins]) if as_json else out.print(
            f"ok: {len(registry)} entries in {len(origins)} file(s)"
        )
        return
    results = validate_files(files)
    if as_json:
        out.result(results)
    for r in results:
        if r["ok"] and not as_json:
            out.print(f"ok: {r['file']} ({len(r['entries'])} entries)")
    problems = [p for r in results if not r["ok"] for p in r["problems"]]
    if problems:
        raise RegistryError(problems)


@registry_group.command("schema")
def schema_cmd() -> None:
    """Print the JSON Schema of a registry file (for editors)."""
    from medcat_data.catalog.schema import RegistryFile

    schema = RegistryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "medcat registry file"
    Output().raw(json.dumps(schema, indent=2))


COMMANDS: tuple[click.Command, ...] = (list_cmd, info_cmd, search_cmd, registry_group)
