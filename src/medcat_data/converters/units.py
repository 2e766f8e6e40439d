"""Values that travel between a recipe, the executor and the writer: rows, error records, unit results.

A *work unit* is whatever a recipe lists first and converts on its own (a study, a file, a
JSONL shard). Converting a unit yields ``Row``s and ``SampleError``s in a worker (or, for
line-oriented data with millions of small rows, ``Columns`` blocks of already encoded values); the
executor encodes them in the parent into a ``UnitResult`` of Arrow record batches. Workers never
import ``datasets`` (it costs more than half of a worker's start-up), so this module imports it
only for type checking. Everything here is picklable and holds no open handle. This module never
writes files (``StagedBatch.open`` memory-maps a batch a worker staged).
"""

from __future__ import annotations

import gzip
import logging
import zipfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from medcat_data.errors import SampleError

if TYPE_CHECKING:
    from datasets import Features

log = logging.getLogger(__name__)

__all__ = ["Columns", "ErrorRecord", "IndexedUnit", "InputHash", "Row", "RowEncoder", "StagedBatch", "UnitResult", "describe_damage"]


@dataclass(frozen=True)
class Row:
    """One output row headed for ``config`` / ``split``.

    ``values`` maps column names to values ``Features.encode_example`` accepts (an ``Image``
    takes ``{"bytes": ..., "path": ...}``, a path, a PIL image or an array; a ``ClassLabel`` a name
    or an index). ``split`` and ``source`` are filled in when absent; ``sample_id`` is required.
    """

    config: str
    split: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Columns:
    """A block of rows headed for ``config`` / ``split``, as one list per column.

    Values are already encoded (a ``ClassLabel`` as its index or name, lists as lists): the block
    becomes one Arrow record batch without a per-row walk, which is what makes a million-row VCF
    cheap. Every list has the same length; absent columns are null, ``split``/``source`` filled
    in; ``sample_id`` is required.
    """

    config: str
    split: str
    columns: Mapping[str, list[Any]]

    def __len__(self) -> int:
        return len(self.columns.get("sample_id", ()))


@dataclass(frozen=True)
class ErrorRecord:
    """One failed item as written to ``errors.jsonl``.

    ``path``, ``stage``, exception ``type`` and ``message``, plus the ``config`` and ``split`` the
    item belonged to where known (``None`` otherwise: an item can fail before its split is known).
    """

    path: str
    stage: str
    type: str
    message: str
    config: str | None = None
    split: str | None = None

    @classmethod
    def from_exception(
        cls, exc: BaseException, path: str = "", stage: str = "convert", *, config: str | None = None, split: str | None = None
    ) -> ErrorRecord:
        """Describe ``exc``; a ``SampleError`` supplies its own path, stage and reason.

        Damaged input met by a reader that did not name it (a truncated gzip stream, bytes not
        valid in the expected encoding, a corrupt zip) is worded as such, with stage ``read``.
        """
        if isinstance(exc, SampleError):
            return cls(exc.path, exc.stage, type(exc).__name__, exc.reason, config, split)
        damage = describe_damage(exc)
        if damage is not None:
            return cls(path, "read", type(exc).__name__, damage, config, split)
        return cls(path, stage, type(exc).__name__, str(exc) or repr(exc), config, split)

    def placed(self, config: str | None, split: str | None = None) -> ErrorRecord:
        """Return this record with ``config``/``split`` filled in where it has none."""
        return replace(self, config=self.config or config, split=self.split or split)

    def to_exception(self) -> SampleError:
        """Return a ``SampleError`` equivalent to this record (for ``on_bad_item="fail"``)."""
        reason = self.message if self.type == SampleError.__name__ else f"{self.type}: {self.message}"
        return SampleError(self.path, self.stage, reason)

    def to_json(self) -> dict[str, str | None]:
        return {
            "path": self.path, "stage": self.stage, "type": self.type, "message": self.message,
            "config": self.config, "split": self.split,
        }  # fmt: skip


def describe_damage(exc: BaseException) -> str | None:
    """Word an exception that means "these input bytes are damaged", or return None for any other.

    Python's decompressors and codecs say *what* broke (``Compressed file ended before the
    end-of-stream marker was reached``) but not that the file is truncated or mis-encoded; a
    bare ``EOFError`` is also what click turns into ``Aborted!``.
    """
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"bytes not valid {exc.encoding} at byte {exc.start} of the decoded text ({exc.reason}): the file is "
            "damaged or not in its declared encoding"
        )
    if isinstance(exc, EOFError):
        return f"the compressed stream ends early: the file is truncated ({exc or 'end of file'})"
    if isinstance(exc, (gzip.BadGzipFile, zlib.error)):
        return f"corrupt compressed data ({exc})"
    if isinstance(exc, zipfile.BadZipFile):
        return f"corrupt zip archive ({exc})"
    return None


@dataclass(frozen=True)
class ErrorUnit:
    """A work unit that only reports items a recipe found broken while planning (damaged index lines,
    unmappable split names): its errors reach ``errors.jsonl`` in unit order, no recipe converts it.
    """

    config: str
    errors: tuple[SampleError, ...]

    @property
    def name(self) -> str:
        return f"{self.config}@errors"


@dataclass(frozen=True)
class InputHash:
    """The sha256 of one input file, computed by the worker that read it (for the manifest)."""

    path: str
    sha256: str


@dataclass(frozen=True)
class IndexedUnit:
    """A work unit with its position in the plan, for workers that stage their results under that index."""

    index: int
    unit: Any

    @property
    def name(self) -> str:
        name = getattr(self.unit, "name", None)
        return name if isinstance(name, str) and name else str(self.unit)

    @property
    def config(self) -> str | None:
        return getattr(self.unit, "config", None)

    @property
    def split(self) -> str | None:
        return getattr(self.unit, "split", None)


@dataclass(frozen=True)
class StagedBatch:
    """A record batch a worker left in the staging folder (one Arrow IPC file holding one batch), by path."""

    path: str
    num_rows: int
    nbytes: int | None = None
    """Arrow bytes of the batch as read back from its file (what the shard planner counts), when known."""

    def open(self) -> pa.RecordBatch:
        """Memory-map the batch: its bytes are read only where they are touched."""
        with pa.memory_map(self.path, "r") as source:
            return pa.ipc.open_file(source).get_batch(0)


@dataclass(frozen=True)
class UnitResult:
    """What converting one work unit produced, in the order it was produced.

    ``batches`` holds ``(config, split, record batch)`` triples; consecutive rows for the same
    config and split share one batch. ``items`` counts the items the unit covered (rows +
    errors unless the recipe says otherwise) for progress rates.
    """

    index: int
    name: str
    batches: tuple[tuple[str, str, pa.RecordBatch | StagedBatch], ...] = ()
    """In memory, or (when a worker staged them) ``StagedBatch`` references to Arrow IPC files."""
    errors: tuple[ErrorRecord, ...] = ()
    input_hashes: tuple[InputHash, ...] = ()
    items: int = 0

    @property
    def rows(self) -> int:
        return sum(batch.num_rows for _, _, batch in self.batches)


@dataclass(frozen=True)
class RowEncoder:
    """Encode ``Row``s into Arrow record batches with each config's ``Features``.

    Used in the parent process. ``source`` fills the ``source`` column of rows that do not set it.
    """

    source: str
    features: Mapping[str, Features] = field(default_factory=dict)
    _schemas: dict[str, pa.Schema] = field(default_factory=dict, init=False, repr=False, compare=False)
    _plain: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def schema(self, config: str) -> pa.Schema:
        """Return the Arrow schema of ``config``, with the HF features in its ``huggingface`` metadata.

        Cached: ``Features.arrow_schema`` serialises the features to JSON on every call (about 1 ms
        for a wide config), which per batch was a third of a passthrough recipe's parent time.
        """
        schema = self._schemas.get(config)
        if schema is None:
            schema = self._schemas[config] = self.features[config].arrow_schema
        return schema

    def batches(self, encoded: Iterable[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str, pa.RecordBatch]]:
        """Group already encoded rows ``(config, split, values)`` into record batches, keeping order."""
        groups: list[tuple[str, str, list[dict[str, Any]]]] = []
        for config, split, values in encoded:
            if groups and groups[-1][0] == config and groups[-1][1] == split:
                groups[-1][2].append(values)
            else:
                groups.append((config, split, [values]))
        return [
            (config, split, pa.RecordBatch.from_pylist(items, schema=self.schema(config)))
            for config, split, items in groups
        ]

    def encode_row(self, row: Row) -> dict[str, Any]:
        """Return ``row`` encoded with its config's features (``split``/``source`` filled in).

        Raises:
            SampleError: unknown config, an undeclared column, or a value the feature refuses.
        """
        sample_id = str(row.values.get("sample_id", "?"))
        features = self.features.get(row.config)
        if features is None:
            raise SampleError(sample_id, "encode", f"unknown config {row.config!r}; declared: {sorted(self.features)}")
        values = dict(row.values)
        values.setdefault("split", row.split)
        values.setdefault("source", self.source)
        unknown = sorted(set(values) - set(features))
        if unknown:
            raise SampleError(sample_id, "encode", f"columns {unknown} are not in the features of {row.config!r}")
        for name in features:
            values.setdefault(name, None)
        try:
            plain = self._plain_encoders(row.config)
            if plain is not None:
                return {name: None if values[name] is None else encode(values[name]) for name, encode in plain}
            return features.encode_example(values)  # type: ignore[no-any-return]
        except (TypeError, ValueError, KeyError) as err:
            raise SampleError(sample_id, "encode", f"row does not match the features of {row.config!r}: {err}") from err

    def encode_columns(self, block: Columns) -> pa.RecordBatch:
        """Return a ``Columns`` block as one record batch (``split``/``source`` filled in).

        ``ClassLabel`` columns may hold names; they are mapped to indices here.

        Raises:
            SampleError: unknown config or column, ragged columns, an unknown class name, or a
                value Arrow refuses; named by the block's first ``sample_id``.
        """
        n = len(block)
        first = str(block.columns["sample_id"][0]) if n and "sample_id" in block.columns else "?"
        features = self.features.get(block.config)
        if features is None:
            raise SampleError(first, "encode", f"unknown config {block.config!r}; declared: {sorted(self.features)}")
        unknown = sorted(set(block.columns) - set(features))
        if unknown or "sample_id" not in block.columns:
            raise SampleError(first, "encode", f"columns {unknown or ['sample_id (missing)']} do not fit the features of {block.config!r}")
        ragged = sorted(name for name, values in block.columns.items() if len(values) != n)
        if ragged:
            raise SampleError(first, "encode", f"columns {ragged} are not {n} long like sample_id")
        from datasets import ClassLabel, List

        arrays: dict[str, list[Any]] = {}
        for name, feature in features.items():
            values = block.columns.get(name)
            if values is None:
                fill = block.split if name == "split" else self.source if name == "source" else None
                values = [fill] * n
            elif isinstance(feature, ClassLabel) and any(isinstance(v, str) for v in values):
                values = _class_indices(feature, values, name, first)
            elif isinstance(feature, List) and isinstance(feature.feature, ClassLabel):
                values = [None if v is None else _class_indices(feature.feature, v, name, first) for v in values]
            arrays[name] = values
        try:
            return pa.RecordBatch.from_pydict(arrays, schema=self.schema(block.config))
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise SampleError(first, "encode", f"block does not match the features of {block.config!r}: {err}") from err

    def _plain_encoders(self, config: str) -> list[tuple[str, Any]] | None:
        """Return per-column encoders when every feature is a plain ``Value``/``ClassLabel`` (or a list of one).

        Such rows skip ``Features.encode_example``'s generic walk (``cast_to_python_objects`` and
        the nested-schema recursion, about 40 us a row for a 15-column text config) and call each
        feature's own ``encode_example`` (the same conversions and label checks); images given as
        bytes are kept as they are (see ``_encode_image``). Configs with dicts or other dtypes keep
        the generic path. Cached per config; ``None`` = generic.
        """
        if config not in self._plain:
            self._plain[config] = _plain_encoders(self.features[config])
        return self._plain[config]  # type: ignore[no-any-return]


def _class_indices(feature: Any, values: list[Any], column: str, sample_id: str) -> list[Any]:
    """Map class names to indices (indices and nulls pass); an unknown name is a ``SampleError``."""
    index = {label: i for i, label in enumerate(feature.names)}
    try:
        return [index[v] if isinstance(v, str) else v for v in values]
    except KeyError as err:
        raise SampleError(sample_id, "encode", f"{column}: unknown class {err.args[0]!r}; classes: {feature.names}") from None


_PLAIN_DTYPES: Mapping[str, Any] = {
    "bool": bool, "int8": int, "int16": int, "int32": int, "int64": int, "uint8": int, "uint16": int, "uint32": int,
    "uint64": int, "float16": float, "float32": float, "float64": float, "string": str, "large_string": str,
}
"""The conversion ``Value.encode_example`` applies per Arrow type, looked up once instead of per value."""


def _class_label_encoder(feature: Any) -> Any:
    names = {name: index for index, name in enumerate(feature.names)}

    def encode(value: Any) -> Any:
        if isinstance(value, str):
            index = names.get(value)
            if index is not None:
                return index
        return feature.encode_example(value)  # stripped names, integers and errors as datasets has them

    return encode


def _plain_encoder(feature: Any) -> Any:
    from datasets import ClassLabel, Image, List, Value

    if isinstance(feature, ClassLabel):
        return _class_label_encoder(feature)
    if isinstance(feature, Image):
        return partial(_encode_image, feature)
    if isinstance(feature, Value) and feature.dtype in _PLAIN_DTYPES:
        return _PLAIN_DTYPES[feature.dtype]
    if isinstance(feature, List) and feature.length == -1:
        inner = _plain_encoder(feature.feature)
        if inner is not None:
            return partial(_encode_list, inner)
    return None


def _encode_image(feature: Any, value: Any) -> Any:
    """Keep given image bytes with their name; anything else goes through ``Image.encode_example``.

    ``Image.encode_example`` drops the bytes of ``{"bytes": ..., "path": p}`` whenever ``p``
    happens to name a file relative to the current directory (e.g. normalizing PubMedVision from a
    folder holding upstream's unzipped ``images/``), leaving a dataset that only works there.
    """
    if isinstance(value, dict) and value.get("bytes") is not None:
        return {"bytes": value["bytes"], "path": value.get("path")}
    return feature.encode_example(value)


def _encode_list(encode: Any, items: Any) -> list[Any]:
    """Encode a list as ``encode_nested_example`` does: only if its first non-null item changes."""
    for first in items:
        if first is not None:
            if encode(first) != first:
                return [None if item is None else encode(item) for item in items]
            break
    return list(items)


def _plain_encoders(features: Features) -> list[tuple[str, Any]] | None:
    encoders = []
    for name, feature in features.items():
        encode = _plain_encoder(feature)
        if encode is None:
            return None
        encoders.append((name, encode))
    return encoders
