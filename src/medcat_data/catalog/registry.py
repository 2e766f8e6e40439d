"""Load, merge and validate registry files; look entries up with did-you-mean suggestions.

The shipped ``registry.yaml`` is merged with the files named in ``MEDCAT_REGISTRY`` (an
``os.pathsep``-separated path list). Validation errors are reworded as
``<id>.<field path>: expected ..., got ...``; an id defined twice is an error naming both files.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from medcat_data.catalog.schema import SOURCE_KINDS, Entry, RegistryFile
from medcat_data.errors import RegistryError, UnknownDatasetError

log = logging.getLogger(__name__)

REGISTRY_ENV = "MEDCAT_REGISTRY"
SHIPPED = "registry.yaml"


@dataclass(frozen=True)
class Registry:
    """An ordered, id-unique collection of validated entries and the file each came from."""

    entries: tuple[Entry, ...]
    origins: dict[str, str] = field(default_factory=dict)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.entries]

    def get(self, dataset_id: str) -> Entry:
        """Return the entry with this id.

        Raises:
            UnknownDatasetError: no such id; carries close matches for "did you mean".
        """
        for entry in self.entries:
            if entry.id == dataset_id:
                return entry
        raise UnknownDatasetError(dataset_id, suggest(dataset_id, self.ids))


def suggest(word: str, candidates: Sequence[str], n: int = 3) -> list[str]:
    """Return up to ``n`` candidates close to ``word`` (typos, missing letters, prefixes)."""
    close = difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)
    for cand in candidates:
        if cand not in close and len(word) >= 3 and (cand.startswith(word) or word in cand):
            close.append(cand)
    return close[:n]


def _format_loc(loc: tuple[Any, ...], raw_entries: list[Any]) -> str:
    """Turn a pydantic error location into ``<entry id>.<field path>``."""
    parts = list(loc)
    prefix = "<file>"
    if len(parts) >= 2 and parts[0] == "datasets" and isinstance(parts[1], int):
        idx = parts[1]
        raw = raw_entries[idx] if idx < len(raw_entries) else None
        ident = raw.get("id") if isinstance(raw, dict) else None
        prefix = str(ident) if ident else f"datasets[{idx}]"
        parts = parts[2:]
    path = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            path += f"[{part}]"
        elif i == 2 and parts[0] == "sources" and part in SOURCE_KINDS:
            continue  # the discriminated union inserts the kind tag into the location
        else:
            path += f".{part}"
    return prefix + path


def _expected(err: dict[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    etype = err["type"]
    if etype in {"enum", "literal_error"}:
        raw = str(ctx.get("expected", ""))
        options = [o.strip().strip("'\"") for o in raw.replace(" or ", ", ").split(",") if o.strip()]
        return "expected one of " + ", ".join(options)
    if etype == "union_tag_invalid":
        tags = str(ctx.get("expected_tags", "")).replace("'", "")
        return f"expected a source kind, one of {tags}"
    if etype == "union_tag_not_found":
        return "expected a 'kind' field naming the source kind"
    if etype == "missing":
        return "required field is missing"
    if etype == "extra_forbidden":
        return "unknown field (check its spelling against `medcat registry schema`)"
    msg = str(err.get("msg", "invalid value"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg[0].lower() + msg[1:] if msg else "invalid value"


def _describe_errors(exc: ValidationError, raw_entries: list[Any]) -> list[str]:
    problems = []
    for err in exc.errors():
        where = _format_loc(tuple(err["loc"]), raw_entries)
        text = f"{where}: {_expected(dict(err))}"
        if err["type"] not in {"missing"} and "input" in err:
            got = err["input"]
            if not isinstance(got, (dict, list)):
                text += f", got {got!r}"
        problems.append(text)
    return problems


def parse_registry_text(text: str, origin: str) -> list[Entry]:
    """Validate the YAML text of one registry file and return its entries.

    Raises:
        RegistryError: YAML syntax error, wrong top-level shape, or invalid entries.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RegistryError([f"not valid YAML: {err}"], source=origin) from err
    if not isinstance(data, dict) or "datasets" not in data:
        raise RegistryError(
            ["expected a mapping with a top-level 'datasets:' list of entries"], source=origin
        )
    raw_entries = data.get("datasets")
    if not isinstance(raw_entries, list):
        raise RegistryError(["'datasets' must be a list of entries"], source=origin)
    try:
        parsed = RegistryFile.model_validate(data)
    except ValidationError as err:
        raise RegistryError(_describe_errors(err, raw_entries), source=origin) from err
    ids = [e.id for e in parsed.datasets]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise RegistryError([f"{i}: id defined more than once in this file" for i in dup], source=origin)
    return list(parsed.datasets)


def load_registry_file(path: Path) -> list[Entry]:
    """Read and validate one registry file.

    Raises:
        RegistryError: unreadable or invalid file.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RegistryError([f"cannot read file: {err.strerror}"], source=path) from err
    return parse_registry_text(text, str(path))


def shipped_registry_text() -> str:
    return resources.files("medcat_data").joinpath(SHIPPED).read_text(encoding="utf-8")


def user_registry_paths(env: str | None = None) -> list[Path]:
    """Return the extra registry files named in ``MEDCAT_REGISTRY``."""
    value = os.environ.get(REGISTRY_ENV, "") if env is None else env
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p.strip()]


def merge(sources: Iterable[tuple[str, list[Entry]]]) -> Registry:
    """Merge entry lists in order; an id seen twice is an error naming both origins.

    Raises:
        RegistryError: colliding ids.
    """
    entries: list[Entry] = []
    origins: dict[str, str] = {}
    problems = []
    for origin, items in sources:
        for entry in items:
            if entry.id in origins:
                problems.append(
                    f"{entry.id}: defined in both {origins[entry.id]} and {origin}; "
                    "rename one (ids must be unique across registry files)"
                )
                continue
            origins[entry.id] = origin
            entries.append(entry)
    if problems:
        raise RegistryError(problems)
    return Registry(tuple(entries), origins)


@lru_cache(maxsize=8)
def _load_cached(env_value: str) -> Registry:
    parts: list[tuple[str, list[Entry]]] = [
        ("<shipped registry.yaml>", parse_registry_text(shipped_registry_text(), "<shipped registry.yaml>"))
    ]
    for path in user_registry_paths(env_value):
        parts.append((str(path), load_registry_file(path)))
    return merge(parts)


def load_registry() -> Registry:
    """Return the shipped registry merged with the user's ``MEDCAT_REGISTRY`` files.

    Raises:
        RegistryError: an invalid file or colliding ids.
    """
    return _load_cached(os.environ.get(REGISTRY_ENV, ""))


def validate_files(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Validate registry files alone and merged with the shipped registry (ids must not collide).

    Returns one record per file (``file``, ``ok``, ``entries`` or ``problems``); a file that is
    the shipped registry itself is not merged with itself.
    """
    shipped_path = Path(str(resources.files("medcat_data").joinpath(SHIPPED))).resolve()
    results: list[dict[str, Any]] = []
    loaded: list[tuple[str, list[Entry]]] = []
    includes_shipped = False
    for path in paths:
        try:
            entries = load_registry_file(path)
        except RegistryError as err:
            results.append({"file": str(path), "ok": False, "problems": err.problems})
            continue
        if path.resolve() == shipped_path:
            includes_shipped = True
        loaded.append((str(path), entries))
        results.append({"file": str(path), "ok": True, "entries": [e.id for e in entries]})
    if all(r["ok"] for r in results):
        parts = loaded if includes_shipped else [
            ("<shipped registry.yaml>", parse_registry_text(shipped_registry_text(), "<shipped registry.yaml>")),
            *loaded,
        ]
        try:
            merge(parts)
        except RegistryError as err:
            results.append({"file": "(merged with the shipped registry)", "ok": False, "problems": err.problems})
    return results
