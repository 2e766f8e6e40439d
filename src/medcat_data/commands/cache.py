"""``medcat cache ls|du|rm``: what medcat keeps in ``$MEDCAT_HOME``, how big it is, and removing it.

Reads folders and manifests only (no hashing, no network) through ``medcat_data.api``; removal
goes through ``paths.remove_inside_home``, which never follows a symlink out of ``MEDCAT_HOME``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medcat_data.cli_options import json_option
from medcat_data.cli_output import Output
from medcat_data.errors import UsageError
from medcat_data.paths import medcat_home, normalized_folders, raw_folders, remove_inside_home, tree_size

if TYPE_CHECKING:
    from medcat_data.api import NormalizedCopy, RawCopy


def _human(size: int) -> str:
    from medcat_data.loaders.progress import human_bytes

    return human_bytes(size)


def _entries() -> dict[str, Any]:
    """Map cached ids to their registry entries (ids the registry does not know are left out)."""
    from medcat_data.catalog.registry import load_registry

    return {e.id: e for e in load_registry()}


def _raw_copies() -> Iterator[RawCopy]:
    from medcat_data.api import raw_copy

    entries = _entries()
    for dataset_id, version, folder in raw_folders():
        yield raw_copy(dataset_id, version, folder, entries.get(dataset_id))


def _normalized_copies() -> Iterator[NormalizedCopy]:
    from medcat_data.api import normalized_copy

    for _, folder in normalized_folders():
        copy = normalized_copy(folder)
        if copy is not None:
            yield copy


def _when(copy: RawCopy | NormalizedCopy) -> str:
    return copy.last_used.astimezone().strftime("%Y-%m-%d %H:%M") if copy.last_used else "-"


@click.group("cache")
def cache_group() -> None:
    """List, measure and remove what medcat keeps in $MEDCAT_HOME (raw and normalized)."""


@cache_group.command("ls")
@json_option
def ls_cmd(as_json: bool) -> None:
    """List every cached dataset: raw folders per version and normalized folders."""
    from rich.console import Console
    from rich.table import Table

    # A piped run has no terminal width: give the table room instead of rich's 80 columns.
    out = Output(json_mode=as_json, stdout=Console(width=None if sys.stdout.isatty() else 140))
    raw, normalized = list(_raw_copies()), list(_normalized_copies())
    if as_json:
        out.result({"home": str(medcat_home()), "raw": [c.to_dict() for c in raw], "normalized": [c.to_dict() for c in normalized]})
        return
    if not raw and not normalized:
        out.info(f"nothing cached in {medcat_home()}.")
        return
    table = Table(title=f"medcat cache ({medcat_home()})", box=None, padding=(0, 1))
    for col in ("id", "version", "kind", "sources / configs", "size", "files", "verified", "last used"):
        table.add_column(col, overflow="fold", min_width=7, justify="right" if col in ("size", "files") else "left")
    for r in raw:
        verified = "yes" if r.verified else "no" if r.fetched else "no manifest"
        table.add_row(r.dataset_id, r.version, "raw", ", ".join(r.sources) or "-", _human(r.size_bytes), str(r.files), verified, _when(r))
    for n in normalized:
        table.add_row(n.dataset_id, n.version or "?", "normalized", ", ".join(n.configs) or "-", _human(n.size_bytes), str(n.files), "-", _when(n))
    out.print(table)
    out.info(f"{len(raw)} raw and {len(normalized)} normalized folder(s). `medcat cache rm ID[@VERSION]` removes one.")


@cache_group.command("du")
@json_option
def du_cmd(as_json: bool) -> None:
    """Show the disk use per dataset id: raw (every version), normalized and both."""
    from rich.table import Table

    out = Output(json_mode=as_json)
    raw: dict[str, int] = {}
    normalized: dict[str, int] = {}
    for r in _raw_copies():
        raw[r.dataset_id] = raw.get(r.dataset_id, 0) + r.size_bytes
    for n in _normalized_copies():
        normalized[n.dataset_id] = n.size_bytes
    rows: list[dict[str, Any]] = [
        {"id": i, "raw_bytes": raw.get(i, 0), "normalized_bytes": normalized.get(i, 0), "total_bytes": raw.get(i, 0) + normalized.get(i, 0)}
        for i in sorted(raw.keys() | normalized.keys())
    ]
    keys = ("raw_bytes", "normalized_bytes", "total_bytes")
    total = {k: sum(int(row[k]) for row in rows) for k in keys}
    if as_json:
        out.result({"home": str(medcat_home()), "datasets": rows, "total": total})
        return
    if not rows:
        out.info(f"nothing cached in {medcat_home()}.")
        return
    table = Table(title=f"medcat cache ({medcat_home()})", show_footer=True)
    table.add_column("id", footer="total")
    for key, title in zip(keys, ("raw", "normalized", "total")):
        table.add_column(title, justify="right", footer=_human(total[key]))
    for row in rows:
        table.add_row(str(row["id"]), *(_human(int(row[k])) for k in keys))
    out.print(table)


def _targets(dataset_id: str, version: str | None, raw: bool, normalized: bool) -> list[Path]:
    """Return the cache folders ``rm`` would remove (a normalized folder only when built from that version)."""
    from medcat_data.api import normalized_copy

    found: list[Path] = []
    if raw:
        found += [f for i, v, f in raw_folders() if i == dataset_id and (version is None or v == version)]
    if normalized:
        for i, folder in normalized_folders():
            copy = normalized_copy(folder) if i == dataset_id else None
            if copy is not None and (version is None or copy.version == version):
                found.append(folder)
    return found


@cache_group.command("rm")
@click.argument("ref", metavar="ID[@VERSION]")
@click.option("--raw", "only_raw", is_flag=True, help="Only the raw (fetched) folders.")
@click.option("--normalized", "only_normalized", is_flag=True, help="Only the normalized folder.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask; needed when stdin is not a terminal.")
@json_option
def rm_cmd(ref: str, only_raw: bool, only_normalized: bool, yes: bool, as_json: bool) -> None:
    """Remove a dataset's raw folders (every version, or one) and its normalized folder.

    Symlinks are removed, never followed: nothing outside $MEDCAT_HOME is touched.
    """
    out = Output(json_mode=as_json)
    dataset_id, _, version = ref.partition("@")
    both = only_raw == only_normalized
    targets = _targets(dataset_id, version or None, raw=both or only_raw, normalized=both or only_normalized)
    if not targets:
        cached = sorted({i for i, _, _ in raw_folders()} | {i for i, _ in normalized_folders()})
        raise UsageError(f"nothing cached for {ref} in {medcat_home()}; cached ids: {', '.join(cached) or 'none'}.")
    sizes = {t: _size(t) for t in targets}
    listing = "\n".join(f"  {t} ({_human(s)})" for t, s in sizes.items())
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"refusing to remove {len(targets)} folder(s) without --yes (stdin is not a terminal):\n{listing}")
        click.echo(f"This removes:\n{listing}", err=True)
        if not click.confirm("Remove?", default=False, err=True):
            out.info("nothing removed.")
            return
    for target in targets:
        remove_inside_home(target)
        _drop_if_empty(target.parent)
    if as_json:
        out.result({"removed": [{"path": str(t), "bytes": s} for t, s in sizes.items()]})
    else:
        out.print(f"removed {len(targets)} folder(s), {_human(sum(sizes.values()))}:\n{listing}", markup=False)


def _size(folder: Path) -> int:
    return 0 if folder.is_symlink() else tree_size(folder)[0]


def _drop_if_empty(folder: Path) -> None:
    """Remove ``raw/<id>`` once its last version is gone (never the layout's own folders)."""
    home = medcat_home()
    if folder not in (home / "raw", home / "normalized", home):
        try:
            folder.rmdir()
        except OSError:
            pass


COMMANDS: tuple[click.Command, ...] = (cache_group,)
