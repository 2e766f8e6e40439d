"""``medcat-manifest.json``: what a normalized dataset was built from, and whether a re-run can skip.

The manifest records the inputs (relative path, size, mtime, sha256 where known), the options,
the tool version, row counts per config and split, the error count and the seconds taken. A
re-run whose inputs and options match the manifest is a no-op. An input counts as unchanged when
its size and mtime match, or when its size matches and its sha256 equals the recorded one (a
``touch`` or a copy does not force a rebuild). This module reads and writes that one JSON file
and stats inputs; it never writes parquet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medcat_data import __version__

log = logging.getLogger(__name__)

MANIFEST_NAME = "medcat-manifest.json"
MANIFEST_FORMAT = 1
_HASH_CHUNK_BYTES = 1 << 20

__all__ = [
    "MANIFEST_NAME",
    "BuildKey",
    "InputFile",
    "InputFiles",
    "Manifest",
    "RecordedInputs",
    "read_manifest",
    "recorded_options",
    "sha256_file",
    "stat_inputs",
    "up_to_date",
]


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input of a build: ``path`` as recorded (relative, posix), and where it is on this machine.

    ``local`` is not recorded; it lets the up-to-date check re-hash a file whose mtime changed.
    """

    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str | None = None
    local: Path | str | None = field(default=None, compare=False)

    def record(self) -> dict[str, Any]:
        return {"path": self.path, "size_bytes": self.size_bytes, "mtime_ns": self.mtime_ns, "sha256": self.sha256}


@dataclass(frozen=True)
class BuildKey:
    """Everything an output depends on: the inputs, the options (JSON-safe) and the tool version.

    ``options`` are kept as given except absolute local paths (``--option candidates=/home/me/calls.vcf``,
    ``--articles``): ``recorded_options`` replaces them by the file name and its sha256. The card
    and the manifest travel with the output, where its maker's folders are nobody's business, and
    an output depends on the file's content, not on where it lay.
    """

    inputs: Sequence[InputFile]
    options: Mapping[str, Any]
    tool_version: str = __version__

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", recorded_options(self.options))


def recorded_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``options`` with every absolute path replaced by ``{"name", "sha256"}`` (sha256 of a file only).

    Values nest (``{"recipe": {"candidates": "/home/me/calls.vcf"}}``); other values are kept.
    Already recorded options come back unchanged, so this may run twice.
    """
    return {key: _recorded_value(value) for key, value in options.items()}


def _recorded_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return recorded_options(value)
    if isinstance(value, (list, tuple)):
        return [_recorded_value(v) for v in value]
    if isinstance(value, (str, Path)) and os.path.isabs(value):
        path = Path(value)
        return {"name": path.name, "sha256": sha256_file(path) if path.is_file() else None}
    return value


def sha256_file(path: Path | str) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class InputFiles(Sequence[InputFile]):
    """The stat records of a build's inputs, held compactly; each ``InputFile`` is made when read.

    A MIMIC-CXR fetch has about 600,000 inputs: one ``InputFile`` object each, with its absolute
    local path, took about 440 bytes per input (257 MiB). Here a recorded path is its folder and
    its name: the names are one UTF-8 blob, each run of inputs in one folder (``os.walk`` lists a
    folder's files together) stores the folder once, sizes and mtimes are two arrays, and
    ``local`` is ``root / path`` (only a local path that differs from it is kept): about 100 bytes
    per input, where MIMIC-CXR's folder prefixes (``files/mimic-cxr/2.0.0/files/pXX/p<subject>/s<study>/``)
    are half of each path.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self._root = None if root is None else str(root)
        self._folders = bytearray()
        self._folder_ends = array("Q")
        self._last_folder: str | None = None
        self._folder_of = array("I")
        """Per input, the index of its folder run."""
        self._names = bytearray()
        self._name_ends = array("Q")
        self._sizes = array("q")
        self._mtimes = array("q")
        self._sha256: dict[int, str] = {}
        self._locals: dict[int, Path | str] = {}
        """Local paths that are not ``root / path``, by index."""

    def append(self, path: str, size_bytes: int, mtime_ns: int, sha256: str | None, local: Path | str | None) -> None:
        """Add one input at the end (only while building: ``stat_inputs``)."""
        index = len(self._name_ends)
        cut = path.rfind("/") + 1
        folder = path[:cut]
        if folder != self._last_folder:
            self._folders += folder.encode("utf-8")
            self._folder_ends.append(len(self._folders))
            self._last_folder = folder
        self._folder_of.append(len(self._folder_ends) - 1)
        self._names += path[cut:].encode("utf-8")
        self._name_ends.append(len(self._names))
        self._sizes.append(size_bytes)
        self._mtimes.append(mtime_ns)
        if sha256 is not None:
            self._sha256[index] = sha256
        if local is not None and (self._root is None or str(local) != os.path.join(self._root, path)):
            self._locals[index] = local

    def __len__(self) -> int:
        return len(self._name_ends)

    def _folder(self, run: int) -> str:
        return self._folders[self._folder_ends[run - 1] if run else 0 : self._folder_ends[run]].decode("utf-8")

    def _item(self, index: int, folder: str | None = None) -> InputFile:
        start = self._name_ends[index - 1] if index else 0
        if folder is None:
            folder = self._folder(self._folder_of[index])
        path = folder + self._names[start : self._name_ends[index]].decode("utf-8")
        local = self._locals.get(index)
        if local is None and self._root is not None:
            local = os.path.join(self._root, path)
        return InputFile(path, self._sizes[index], self._mtimes[index], self._sha256.get(index), local)

    @overload
    def __getitem__(self, index: int) -> InputFile: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[InputFile, ...]: ...

    def __getitem__(self, index: int | slice) -> InputFile | tuple[InputFile, ...]:
        if isinstance(index, slice):
            return tuple(self._item(i) for i in range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("input index out of range")
        return self._item(index)

    def __iter__(self) -> Iterator[InputFile]:
        run, folder = -1, ""
        for i in range(len(self)):
            if self._folder_of[i] != run:
                run = self._folder_of[i]
                folder = self._folder(run)
            yield self._item(i, folder)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # mutable while built, like a list

    def nbytes(self) -> int:
        """Return the bytes these records hold (their arrays, blobs and side tables; not the hashes' strings)."""
        parts = (self._folders, self._folder_ends, self._folder_of, self._names, self._name_ends, self._sizes, self._mtimes)
        return sum(sys.getsizeof(part) for part in (*parts, self._sha256, self._locals))

    def __repr__(self) -> str:
        return f"InputFiles({len(self)} inputs)"


def stat_inputs(
    files: Iterable[tuple[str, Path | str]], known_sha256: Mapping[str, str] | None = None, *, root: Path | str | None = None
) -> InputFiles:
    """Stat ``(recorded name, local path)`` pairs into ``InputFile``s, keeping the given order.

    ``known_sha256`` supplies hashes already known (e.g. from the fetch manifest) by recorded name.
    With ``root``, a local path that is ``root / name`` is not kept but derived when read (the
    records of a large fetch stay small).
    """
    known = known_sha256 or {}
    out = InputFiles(root)
    for name, local in files:
        st = os.stat(local)
        out.append(name, st.st_size, st.st_mtime_ns, known.get(name), local)
    return out


class InputRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    size_bytes: int
    mtime_ns: int
    sha256: str | None = None


class SplitRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: int
    shards: list[str]
    bytes: int


class ConfigRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str | None = None
    splits: dict[str, SplitRecord] = Field(default_factory=dict)


class Manifest(BaseModel):
    """The JSON document ``medcat-manifest.json`` (our trust boundary when read back)."""

    model_config = ConfigDict(extra="forbid")

    format: int = MANIFEST_FORMAT
    tool: str = "medcat-data"
    tool_version: str
    source: str
    options: dict[str, Any]
    inputs: Sequence[InputRecord]
    """Read back and built by the writer as ``RecordedInputs`` (compact; each record made when read)."""
    configs: dict[str, ConfigRecord]
    errors: int
    seconds: float
    libraries: dict[str, str] = Field(default_factory=dict)

    def rows(self) -> dict[str, dict[str, int]]:
        """Return row counts as ``{config: {split: rows}}``."""
        return {c: {s: r.rows for s, r in cfg.splits.items()} for c, cfg in self.configs.items()}


class RecordedInputs(Sequence[InputRecord]):
    """A manifest's inputs held as ``InputFiles`` (compact); each ``InputRecord`` is made when read.

    ``hashes`` adds the sha256 of inputs whose record has none (the writer's: hashed by workers).
    A manifest of about 600,000 inputs as pydantic records took about 800 bytes per input.
    """

    def __init__(self, files: Sequence[InputFile], hashes: Mapping[str, str] | None = None) -> None:
        self._files, self._hashes = files, hashes or {}

    def _record(self, f: InputFile) -> InputRecord:
        sha256 = f.sha256 or self._hashes.get(f.path)
        return InputRecord.model_construct(path=f.path, size_bytes=f.size_bytes, mtime_ns=f.mtime_ns, sha256=sha256)

    def __len__(self) -> int:
        return len(self._files)

    @overload
    def __getitem__(self, index: int) -> InputRecord: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[InputRecord, ...]: ...

    def __getitem__(self, index: int | slice) -> InputRecord | tuple[InputRecord, ...]:
        if isinstance(index, slice):
            return tuple(self._record(f) for f in self._files[index])
        return self._record(self._files[index])

    def __iter__(self) -> Iterator[InputRecord]:
        return (self._record(f) for f in self._files)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RecordedInputs({len(self)} inputs)"


def read_manifest(out_dir: Path) -> Manifest | None:
    """Return the manifest of an output folder, or None when absent or unreadable (then rebuild).

    The file is decoded as it is read, one input record at a time, into ``RecordedInputs``: the
    whole text and one object per input are never in memory together.
    """
    path = out_dir / MANIFEST_NAME
    try:
        with open(path, encoding="utf-8") as handle:
            fields, inputs = _parse_manifest(_JsonText(handle))
        manifest = Manifest.model_validate(fields)
    except FileNotFoundError:
        return None
    except (OSError, ValidationError, ValueError) as err:
        log.warning("ignoring unreadable %s (%s); the output will be rebuilt", path, err)
        return None
    manifest.inputs = RecordedInputs(inputs)
    return manifest


_DECODER = json.JSONDecoder()
_READ_CHARS = 1 << 20


class _JsonText:
    """A JSON text read in chunks, decoded one value at a time."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle, self._text, self._pos, self._eof = handle, "", 0, False

    def _more(self) -> bool:
        chunk = "" if self._eof else self._handle.read(_READ_CHARS)
        self._eof = not chunk
        if chunk:
            self._text, self._pos = self._text[self._pos :] + chunk, 0
        return bool(chunk)

    def peek(self) -> str:
        """Skip whitespace; return the next character ("" at the end)."""
        while True:
            text, pos = self._text, self._pos
            while pos < len(text) and text[pos] in " \t\n\r":
                pos += 1
            self._pos = pos
            if pos < len(text) or not self._more():
                return text[pos] if pos < len(text) else ""

    def take(self, char: str) -> None:
        """Consume ``char``, the next character after whitespace.

        Raises:
            ValueError: another character is next.
        """
        if self.peek() != char:
            raise ValueError(f"expected {char!r} at character {self._pos} of a read chunk")
        self._pos += 1

    def value(self) -> Any:
        """Decode the next JSON value (reading on while it is cut off by the end of the chunk)."""
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._pos)
            except json.JSONDecodeError:
                if self._more():
                    continue
                raise
            if end < len(self._text) or not self._more():  # a number may go on in the next chunk
                self._pos = end
                return value


def _parse_manifest(text: _JsonText) -> tuple[dict[str, Any], InputFiles]:
    """Decode a manifest's top-level fields; its ``inputs`` records go into ``InputFiles`` (validated one by one).

    Raises:
        ValueError: not one JSON object.
        ValidationError: an input record is not an ``InputRecord``.
    """
    fields: dict[str, Any] = {}
    inputs = InputFiles()
    text.take("{")
    more = text.peek() != "}"
    while more:
        name = text.value()
        if not isinstance(name, str):
            raise ValueError("a field name is not a string")
        text.take(":")
        if name == "inputs" and text.peek() == "[":
            text.take("[")
            inputs, fields[name] = InputFiles(), []
            while text.peek() != "]":
                record = InputRecord.model_validate(text.value())
                inputs.append(record.path, record.size_bytes, record.mtime_ns, record.sha256, None)
                if text.peek() != ",":
                    break
                text.take(",")
            text.take("]")
        else:
            fields[name] = text.value()
        more = text.peek() == ","
        if more:
            text.take(",")
    text.take("}")
    if text.peek():
        raise ValueError("extra data after the manifest")
    return fields, inputs


def up_to_date(out_dir: Path, manifest: Manifest | None, key: BuildKey, configs: Sequence[str]) -> Manifest | None:
    """Return ``manifest`` (``out_dir``'s, read by the caller) when it holds ``configs`` built from ``key``; else None.

    Compares the tool version, the options (canonical JSON) and every input (see the module
    docstring for when an input counts as unchanged). Any difference means rebuild.
    """
    if manifest is None:
        return None
    if manifest.tool_version != key.tool_version:
        log.info("rebuilding %s: tool version %s -> %s", out_dir, manifest.tool_version, key.tool_version)
        return None
    if _without_configs(manifest.options) != _without_configs(key.options):
        log.info("rebuilding %s: options changed", out_dir)
        return None
    if not set(configs) <= set(manifest.configs):
        log.info("rebuilding %s: configs %s not built yet", out_dir, sorted(set(configs) - set(manifest.configs)))
        return None
    if not _same_inputs(manifest.inputs, key.inputs):
        log.info("rebuilding %s: inputs changed", out_dir)
        return None
    for cfg in manifest.configs.values():
        for split in cfg.splits.values():
            if not all((out_dir / shard).is_file() for shard in split.shards):
                log.info("rebuilding %s: a shard is missing", out_dir)
                return None
    return manifest


def differences(manifest: Manifest, key: BuildKey, configs: Sequence[str]) -> list[str]:
    """Say what a rebuild from ``key`` of ``configs`` would change in an output built as ``manifest`` records.

    Empty when the rebuild replaces nothing of value: same options and inputs, and every config the
    output holds is built again (only the tool version or missing shards differ).
    """
    found = []
    before, after = _flat(manifest.options), _flat(key.options)
    for name in sorted(set(before) | set(after)):
        if name != "configs" and before.get(name) != after.get(name):
            found.append(f"{name} {_shown(before.get(name))} -> {_shown(after.get(name))}")
    dropped = sorted(set(manifest.configs) - set(configs))
    if dropped:
        found.append(f"config(s) {', '.join(dropped)} would be dropped")
    if not _same_inputs(manifest.inputs, key.inputs):
        old = {r.path: r.size_bytes for r in manifest.inputs}
        new = {f.path: f.size_bytes for f in key.inputs}
        changed = sum(1 for p in old.keys() & new.keys() if old[p] != new[p])
        found.append(
            f"inputs changed ({len(new.keys() - old.keys())} new, {len(old.keys() - new.keys())} gone, "
            f"{changed} of another size, others touched)"
        )
    return found


def _flat(options: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in options.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{name}."))
        else:
            out[f"{prefix}{name}"] = value
    return out


def _shown(value: Any) -> str:
    return "unset" if value is None else json.dumps(value, default=str)


def _without_configs(options: Mapping[str, Any]) -> str:
    """Options as canonical JSON, leaving out which configs were asked for.

    Asking for a subset of the configs an output already holds (``--config birads`` after a full
    run) is then up to date, instead of a rebuild that would drop the other configs.
    """
    return json.dumps({k: v for k, v in options.items() if k != "configs"}, sort_keys=True, default=str)


def _same_inputs(recorded: Sequence[InputRecord], current: Sequence[InputFile]) -> bool:
    if len(recorded) != len(current):
        return False
    for old, new in zip(recorded, current):
        if old.path != new.path or old.size_bytes != new.size_bytes:
            return False
        if old.mtime_ns == new.mtime_ns:
            continue
        if old.sha256 is None or new.local is None:
            return False
        if (new.sha256 or _safe_sha256(new.local)) != old.sha256:
            return False
        log.debug("%s: mtime changed, content unchanged", new.path)
    return True


def _safe_sha256(path: Path | str) -> str | None:
    try:
        return sha256_file(path)
    except OSError:
        return None


def write_manifest(out_dir: Path, manifest: Manifest) -> None:
    """Write ``manifest`` to ``out_dir`` (a folder not yet published, so no temp file is needed).

    The text is ``json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False)``,
    with the inputs written one record at a time (never one string or one dict per input for all).
    """
    dumped = manifest.model_dump(mode="json", exclude={"inputs"})
    text = json.dumps({name: [] if name == "inputs" else dumped[name] for name in Manifest.model_fields}, indent=2, ensure_ascii=False)
    marker = '\n  "inputs": []'  # top-level fields are indented by two spaces, nested ones by more
    assert text.count(marker) == 1, "the manifest's inputs field is not where write_manifest expects it"
    head, tail = text.split(marker)
    with open(out_dir / MANIFEST_NAME, "w", encoding="utf-8") as handle:
        handle.write(head + '\n  "inputs": [')
        sep = "\n"
        for r in manifest.inputs:
            handle.write(
                f'{sep}    {{\n      "path": {json.dumps(r.path, ensure_ascii=False)},\n      "size_bytes": {r.size_bytes},\n'
                f'      "mtime_ns": {r.mtime_ns},\n      "sha256": {json.dumps(r.sha256)}\n    }}'
            )
            sep = ",\n"
        handle.write(("\n  ]" if sep != "\n" else "]") + tail + "\n")


def library_versions() -> dict[str, str]:
    """Return the installed versions of the libraries that shape the output bytes."""
    from importlib import metadata

    versions = {}
    for dist in ("pyarrow", "datasets", "pydicom", "Pillow", "numpy", "nibabel", "SimpleITK"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions
