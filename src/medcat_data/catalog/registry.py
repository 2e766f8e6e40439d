"""Load, merge and validate registry files; look entries up with did-you-mean suggestions.

The shipped ``registry.yaml`` is merged with the files named in ``MEDCAT_REGISTRY`` (an
``os.pathsep``-separated path list). Validation errors are reworded as
``<id>.<field path>: expected ..., got ...``; an id defined twice is an error naming both files.

A user's registry file is untrusted input: it is read only when it is a regular file of at most
``MAX_REGISTRY_BYTES`` of UTF-8, and parsed by PyYAML's safe loader with limits on nesting depth
and on the nodes a document expands to through aliases, so that a hostile file ends in one
``RegistryError`` line, never a traceback. Parsed files are cached in-process by path, mtime and
size (plus a hash of the bytes for a file modified in the last seconds): a command that loads the
registry many times parses each unchanged file once.
"""

from __future__ import annotations

import difflib
import hashlib
import logging
import os
import stat
import time
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
SHIPPED_ORIGIN = "<shipped registry.yaml>"
MAX_REGISTRY_BYTES = 16 * 1024 * 1024
MAX_YAML_DEPTH = 64
MAX_YAML_NODES = 2_000_000
MAX_PROBLEMS = 50

RECENT_NS = 2 * 10**9

FileStamp = tuple[str, int, int, str]
"""(absolute path, mtime in ns, size, sha256 or ""): a parsed file is reused while all are unchanged.

File systems stamp mtimes with a coarse clock (a few ms), so a file rewritten twice within one
tick can keep its mtime and size. For a file modified in the last ``RECENT_NS`` the stamp also holds
the hash of its bytes (git's "racily clean" rule); older files are judged by ``stat`` alone.
"""


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
    errors = exc.errors()
    for err in errors[:MAX_PROBLEMS]:
        where = _format_loc(tuple(err["loc"]), raw_entries)
        text = f"{where}: {_expected(dict(err))}"
        if err["type"] not in {"missing"} and "input" in err:
            got = err["input"]
            if not isinstance(got, (dict, list)):
                shown = repr(got)
                text += f", got {shown[:200] + '...' if len(shown) > 200 else shown}"
        problems.append(text)
    if len(errors) > MAX_PROBLEMS:
        problems.append(f"... and {len(errors) - MAX_PROBLEMS} more problems")
    return problems


class _YamlLimitError(yaml.YAMLError):
    """A document beyond the limits medcat accepts for a registry file."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing deep nesting and alias bombs while it composes.

    Every node's weight (the nodes it stands for once aliases are expanded) is known when the node
    is complete, so a "billion laughs" document is refused after composing a few small nodes, before
    any consumer walks the expanded tree. An alias to a collection that is still open (a recursive
    document) is refused too.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._weight: dict[int, int] = {}

    def _where(self) -> str:
        mark = self.peek_event().start_mark
        return f"line {mark.line + 1}, column {mark.column + 1}"

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            where = self._where()
            node = super().compose_node(parent, index)
            if node is not None and id(node) not in self._weight:
                raise _YamlLimitError(f"recursive YAML alias at {where} (an alias inside its own anchor)")
            return node
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise _YamlLimitError(f"YAML nested deeper than {MAX_YAML_DEPTH} levels at {self._where()}")
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if node is None:
            return node
        if isinstance(node, yaml.SequenceNode):
            children: list[yaml.Node] = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        weight = 1 + sum(self._weight[id(child)] for child in children)
        if weight > MAX_YAML_NODES:
            raise _YamlLimitError(
                f"YAML expands to more than {MAX_YAML_NODES:,} nodes through aliases "
                f"(near line {node.start_mark.line + 1}); refusing an alias bomb"
            )
        self._weight[id(node)] = weight
        return node


def _yaml_problem(err: yaml.YAMLError) -> str:
    """Word a PyYAML error as one line with its position."""
    if isinstance(err, _YamlLimitError):
        return str(err)
    if isinstance(err, yaml.reader.ReaderError):
        return f"not valid YAML: character #x{err.character:04x} at offset {err.position} is not allowed ({err.reason})"
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        what = "; ".join(str(part) for part in (err.context, err.problem) if part)
        return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {what}"
    return "not valid YAML: " + " ".join(str(err).split())


def _load_yaml(text: str, origin: str) -> Any:
    try:
        loader = _BoundedLoader(text)  # the reader refuses non-printable characters here
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as err:
        raise RegistryError([_yaml_problem(err)], source=origin) from None
    except (ValueError, TypeError) as err:  # a constructor refusing an explicitly tagged value (!!int x)
        raise RegistryError([f"not valid YAML: {' '.join(str(err).split())}"], source=origin) from None


def parse_registry_text(text: str, origin: str) -> list[Entry]:
    """Validate the YAML text of one registry file and return its entries.

    Raises:
        RegistryError: YAML syntax error, a document beyond the nesting or alias limits, wrong
            top-level shape, or invalid entries.
    """
    data = _load_yaml(text, origin)
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


def _stamp(path: Path) -> FileStamp:
    """Return the cache key of a registry file.

    Raises:
        RegistryError: the file is missing, not a regular file, or larger than the cap.
    """
    try:
        info = path.stat()
    except OSError as err:
        raise RegistryError([f"cannot read file: {err.strerror}"], source=path) from None
    if not stat.S_ISREG(info.st_mode):
        raise RegistryError(["not a regular file"], source=path)
    if info.st_size > MAX_REGISTRY_BYTES:
        raise RegistryError(
            [f"file is {info.st_size:,} bytes; registry files are limited to {MAX_REGISTRY_BYTES // 2**20} MiB"],
            source=path,
        )
    digest = ""
    if time.time_ns() - info.st_mtime_ns < RECENT_NS:
        digest = hashlib.sha256(_read_bytes(str(path), str(path))).hexdigest()
    return (os.path.abspath(path), info.st_mtime_ns, info.st_size, digest)


def _read_bytes(path: str, origin: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_REGISTRY_BYTES + 1)
    except OSError as err:
        raise RegistryError([f"cannot read file: {err.strerror}"], source=origin) from None
    if len(data) > MAX_REGISTRY_BYTES:  # grew since it was stat'ed
        raise RegistryError([f"registry files are limited to {MAX_REGISTRY_BYTES // 2**20} MiB"], source=origin)
    return data


@lru_cache(maxsize=32)
def _parse_file(stamp: FileStamp, origin: str) -> tuple[Entry, ...]:
    data = _read_bytes(stamp[0], origin)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = data[err.start : err.start + 1].hex()
        raise RegistryError(
            [f"not UTF-8 text (byte 0x{bad} at offset {err.start}); save the file as UTF-8"], source=origin
        ) from None
    return tuple(parse_registry_text(text, origin))


def load_registry_file(path: Path) -> list[Entry]:
    """Read and validate one registry file (parsed once while it stays unchanged, see ``FileStamp``).

    Raises:
        RegistryError: unreadable, oversized, not UTF-8, not parseable within the YAML limits, or
            invalid.
    """
    return list(_parse_file(_stamp(path), str(path)))


def shipped_registry_path() -> Path:
    return Path(str(resources.files("medcat_data").joinpath(SHIPPED)))


def _shipped_entries() -> list[Entry]:
    return list(_parse_file(_stamp(shipped_registry_path()), SHIPPED_ORIGIN))


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
def _load_cached(files: tuple[tuple[FileStamp, str], ...]) -> Registry:
    return merge((origin, list(_parse_file(stamp, origin))) for stamp, origin in files)


def load_registry() -> Registry:
    """Return the shipped registry merged with the user's ``MEDCAT_REGISTRY`` files.

    Each call stats the files (and hashes those modified in the last seconds); unchanged files are
    not parsed again.

    Raises:
        RegistryError: an invalid file or colliding ids.
    """
    files = [(_stamp(shipped_registry_path()), SHIPPED_ORIGIN)]
    files += [(_stamp(path), str(path)) for path in user_registry_paths()]
    return _load_cached(tuple(files))


def validate_files(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Validate registry files alone and merged with the shipped registry (ids must not collide).

    Returns one record per file (``file``, ``ok``, ``entries`` or ``problems``); a file that is
    the shipped registry itself is not merged with itself.
    """
    shipped_path = shipped_registry_path().resolve()
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
        parts = loaded if includes_shipped else [(SHIPPED_ORIGIN, _shipped_entries()), *loaded]
        try:
            merge(parts)
        except RegistryError as err:
            results.append({"file": "(merged with the shipped registry)", "ok": False, "problems": err.problems})
    return results
