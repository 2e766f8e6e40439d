"""Filter and search registry entries; render them as plain data for tables and JSON.

Pure functions over ``Entry`` objects: no printing, no network.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from medcat_data.catalog.registry import suggest
from medcat_data.catalog.schema import Entry, Modality, Task
from medcat_data.errors import UsageError

MODALITIES: tuple[str, ...] = get_args(Modality)
TASKS: tuple[str, ...] = tuple(t.value for t in Task)


@dataclass(frozen=True)
class Filters:
    """Each non-empty field keeps entries matching any of its values (case-insensitive)."""

    modality: tuple[str, ...] = ()
    task: tuple[str, ...] = ()
    access: tuple[str, ...] = ()
    license: tuple[str, ...] = ()


def check_filters(filters: Filters) -> None:
    """Refuse a modality or task outside the closed vocabularies, naming the close and the known ones.

    Without this an unknown value (``--modality xray``) matches nothing and prints an empty table.

    Raises:
        UsageError: a value that no entry can have; the message suggests the close ones.
    """
    for kind, given, known in (("modality", filters.modality, MODALITIES), ("task", filters.task, TASKS)):
        for value in given:
            if value.lower() not in known:
                bare = value.lower().replace("-", "")
                close = suggest(value.lower(), known) or [k for k in known if bare in k.replace("-", "")][:3]
                hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise UsageError(f"unknown {kind} {value!r}.{hint} Known {kind} values: {', '.join(known)}.")


def _matches_license(entry: Entry, wanted: Sequence[str]) -> bool:
    names = {entry.license.name.lower()}
    if entry.license.spdx:
        names.add(entry.license.spdx.lower())
    return any(w.lower() in names or any(w.lower() in n for n in names) for w in wanted)


def filter_entries(entries: Iterable[Entry], filters: Filters) -> list[Entry]:
    """Return entries matching every given filter; template entries are kept (they describe a source)."""
    out = []
    for entry in entries:
        if filters.modality and not {m.lower() for m in filters.modality} & set(entry.modalities):
            continue
        if filters.task and not {t.lower() for t in filters.task} & {t.value for t in entry.tasks}:
            continue
        if filters.access and entry.access.value not in {a.lower() for a in filters.access}:
            continue
        if filters.license and not _matches_license(entry, filters.license):
            continue
        out.append(entry)
    return out


_FIELD_WEIGHTS = (("id", 8.0), ("name", 6.0), ("modalities", 4.0), ("tasks", 4.0), ("tags", 3.0), ("description", 1.0))


def _field_text(entry: Entry, field: str) -> str:
    value: Any = getattr(entry, field)
    if isinstance(value, list):
        return " ".join(str(getattr(v, "value", v)) for v in value)
    return str(value)


def search(entries: Iterable[Entry], text: str) -> list[tuple[Entry, float]]:
    """Rank entries by how well ``text`` matches ids, names, modalities, tasks, tags and descriptions.

    Every word of the query must occur somewhere in the entry; exact id/name matches rank first.
    """
    words = [w for w in re.split(r"\s+", text.lower().strip()) if w]
    if not words:
        return []
    scored = []
    for entry in entries:
        texts = {f: _field_text(entry, f).lower() for f, _ in _FIELD_WEIGHTS}
        total = 0.0
        for word in words:
            best = 0.0
            for field, weight in _FIELD_WEIGHTS:
                hay = texts[field]
                if word not in hay:
                    continue
                bonus = 2.0 if re.search(rf"\b{re.escape(word)}\b", hay) else 1.0
                best = max(best, weight * bonus)
            if best == 0.0:
                break
            total += best
        else:
            query = " ".join(words)
            if query in (entry.id, entry.name.lower()):
                total += 100.0
            scored.append((entry, total))
    scored.sort(key=lambda pair: (-pair[1], pair[0].id))
    return scored


def human_bytes(n: int | None) -> str:
    """Format a byte count with binary-free SI units (as hosts print sizes): 570.3 GB."""
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def size_text(entry: Entry) -> str:
    """Return the byte size as shown in tables, ``~`` marking estimates."""
    if entry.size.bytes is None:
        return "unknown"
    mark = "~" if "bytes" in entry.size.approximate else ""
    return mark + human_bytes(entry.size.bytes)


def list_size_text(entry: Entry) -> str:
    """Return the size column of ``medcat list``: the bytes, else the file count, else unknown."""
    files = entry.size.files
    if entry.size.bytes is not None or files is None:
        return size_text(entry)
    return f"unknown ({'~' if 'files' in entry.size.approximate else ''}{files:,} file{'s' if files != 1 else ''})"


def summary_row(entry: Entry) -> dict[str, Any]:
    """Return the fields of ``medcat list`` for one entry, as JSON-ready data."""
    return {
        "id": entry.id,
        "name": entry.name,
        "modalities": list(entry.modalities),
        "tasks": [t.value for t in entry.tasks],
        "access": entry.access.value,
        "size_bytes": entry.size.bytes,
        "size": list_size_text(entry),
        "size_approximate": "bytes" in entry.size.approximate,
        "size_files": entry.size.files,
        "license": entry.license.short,
        "citation": entry.citation,
        "template": entry.template,
    }
