"""Render ``medcat info`` for a terminal: rich renderables built from ``describe.entry_details``."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from medcat_data.catalog import query
from medcat_data.catalog.refs import ResolvedDataset


def _section(title: str) -> Text:
    return Text(f"\n{title}", style="bold underline")


def render_info(resolved: ResolvedDataset, details: dict[str, Any]) -> list[RenderableType]:
    """Return the renderables of ``medcat info``: what, access, licence, size, sources, configs, commands, citation."""
    entry = resolved.entry
    parts: list[RenderableType] = [
        Panel(
            Group(Text(entry.description), Text(f"\nhomepage: {entry.homepage}", style="dim")),
            title=f"[bold]{escape(entry.name)}[/] ({entry.id} @ {resolved.version})",
            expand=False,
        )
    ]
    meta = Table.grid(padding=(0, 2))
    meta.add_row("modalities", ", ".join(entry.modalities))
    meta.add_row("tasks", ", ".join(t.value for t in entry.tasks))
    meta.add_row("access", entry.access.value)
    lic = entry.license
    lic_text = lic.short + (f" ({lic.url})" if lic.url else "") + ("" if lic.confirmed else " [unconfirmed]")
    meta.add_row("license", escape(lic_text))
    size = entry.size
    size_bits = [query.size_text(entry)]
    if size.files is not None:
        size_bits.append(("~" if "files" in size.approximate else "") + f"{size.files:,} files")
    if size.samples is not None:
        size_bits.append(("~" if "samples" in size.approximate else "") + f"{size.samples:,} samples")
    meta.add_row("size", ", ".join(size_bits))
    versions = ", ".join(v.version + (f" ({v.date})" if v.date else "") for v in entry.versions)
    meta.add_row("versions", f"{versions}; default {entry.default_version}")
    parts.append(meta)

    parts.append(_section("How to get access"))
    for i, step in enumerate(entry.access_info.steps, 1):
        parts.append(Text(f"  {i}. {step}"))
    if entry.access_info.dua_url:
        parts.append(Text(f"  DUA: {entry.access_info.dua_url}"))
    if entry.access_info.credentials:
        parts.append(Text("  medcat reads credentials from: " + ", ".join(entry.access_info.credentials), style="dim"))

    parts.append(_section("Sources"))
    src_table = Table(show_header=True, box=None, padding=(0, 1))
    for col in ("name", "kind", "role", "where", "verification"):
        src_table.add_column(col, overflow="fold")
    for src in details["source_descriptions"]:
        src_table.add_row(*(escape(src[k]) for k in ("name", "kind", "role", "where", "verification")))
    parts.append(src_table)

    if entry.configs:
        parts.append(_section("Normalized configs"))
        cfg_table = Table(show_header=True, box=None, padding=(0, 1))
        for col in ("config", "task", "splits", "fields", "description"):
            cfg_table.add_column(col, overflow="fold")
        for cfg in entry.configs:
            cfg_table.add_row(
                cfg.name,
                cfg.task.value,
                ", ".join(cfg.splits) + ("" if cfg.split_method == "official" else f" ({cfg.split_method})"),
                details["config_schemas"][cfg.name],
                escape(cfg.description),
            )
        parts.append(cfg_table)

    parts.append(_section("Commands"))
    for name, cmd in details["commands"].items():
        if cmd:
            parts.append(Text(f"  {name:<10} {cmd}"))

    if entry.notes:
        parts.append(_section("Notes"))
        for note in entry.notes:
            parts.append(Text(f"  - {note}"))

    parts.append(_section("Citation (medcat info --bibtex)"))
    parts.append(Text(entry.citation.rstrip(), style="dim"))
    return parts
