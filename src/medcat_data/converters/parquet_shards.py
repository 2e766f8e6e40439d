"""Parquet shards of one config/split: one planner cuts row groups and shards from the row sequence alone.

``CutPlanner`` decides, batch by batch, where row groups and shards end: a row group closes at
``row_group_rows`` rows or ``row_group_bytes`` Arrow bytes, a shard before a row group that would
take it past ``max_shard_rows`` or ``max_shard_bytes``. It looks at batches only through their row
count and the Arrow bytes of their slices, so the same batches give the same cuts wherever they are.

``SplitSink`` feeds it in one of two ways:

* **in memory** (``--jobs 1``): batches arrive in the driver, which buffers at most one row group
  and writes the shards itself;
* **staged** (a process pool or a Dask cluster): workers left each unit's batches as Arrow IPC files
  in a staging folder and sent back only their paths; the driver memory-maps them (reading only
  their metadata and offsets), plans the cuts, and hands each finished shard, as a list of
  ``(file, offset, length)`` pieces per row group, to a worker that writes it (``write_shard``).

Either way one function writes a shard (``write_shard``, with the parquet settings of
``parquet_writer``), so both give byte-identical files. Shards are written under temporary
``*.parquet.partial`` names and renamed ``<split>-00000-of-00004.parquet`` once the count is known.
Writes parquet only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import pyarrow as pa
import pyarrow.parquet as pq

from medcat_data.converters.build_manifest import SplitRecord
from medcat_data.converters.units import StagedBatch
from medcat_data.errors import ConvertError

if TYPE_CHECKING:
    from medcat_data.converters.writer import WriterOptions

__all__ = ["CutPlanner", "Piece", "RowGroup", "SplitSink", "StagedBatch", "parquet_writer", "write_shard"]

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Piece:
    """Rows ``offset .. offset + length`` of the ``batch``-th batch a sink received."""

    batch: int
    offset: int
    length: int


@dataclass(frozen=True)
class RowGroup:
    """One row group: its shard (0-based, in order), its pieces, rows and Arrow bytes."""

    shard: int
    pieces: tuple[Piece, ...]
    rows: int
    nbytes: int


class CutPlanner:
    """Where row groups and shards end, from batch shapes alone (row counts and slice bytes)."""

    def __init__(self, options: WriterOptions) -> None:
        self.options = options
        self._batches = 0
        self._pieces: list[Piece] = []
        self._rows = 0
        self._bytes = 0
        self._shard = -1
        self._shard_rows = 0
        self._shard_bytes = 0

    def add(self, num_rows: int, slice_bytes: Callable[[int, int], int]) -> list[RowGroup]:
        """Take the next batch (``slice_bytes(offset, length)``: Arrow bytes of its rows); return the row groups it closed."""
        number, self._batches = self._batches, self._batches + 1
        closed: list[RowGroup] = []
        offset = 0
        while offset < num_rows:
            take = min(num_rows - offset, self.options.row_group_rows - self._rows)
            self._pieces.append(Piece(number, offset, take))
            self._rows += take
            self._bytes += slice_bytes(offset, take)
            offset += take
            if self._rows >= self.options.row_group_rows or self._bytes >= self.options.row_group_bytes:
                closed.append(self._close_group())
        return closed

    @property
    def batches(self) -> int:
        """How many batches were added so far (the next one's number)."""
        return self._batches

    def pending_batches(self) -> set[int]:
        """The numbers of the batches the open row group reads."""
        return {piece.batch for piece in self._pieces}

    def finish(self) -> list[RowGroup]:
        """Close the last, partial row group (if any rows are pending)."""
        return [self._close_group()] if self._rows else []

    def _close_group(self) -> RowGroup:
        rows, nbytes = self._rows, self._bytes
        if self._shard < 0 or (
            self._shard_rows
            and (self._shard_rows + rows > self.options.max_shard_rows or self._shard_bytes + nbytes > self.options.max_shard_bytes)
        ):
            self._shard += 1
            self._shard_rows = self._shard_bytes = 0
        group = RowGroup(self._shard, tuple(self._pieces), rows, nbytes)
        self._pieces, self._rows, self._bytes = [], 0, 0
        self._shard_rows += rows
        self._shard_bytes += nbytes
        return group


class _StagedSizes:
    """Arrow bytes of a staged batch's slices: the whole batch from its reference, others from the file.

    The file is memory-mapped only when the planner splits the batch (slice sizes read only its
    offsets and metadata).
    """

    def __init__(self, batch: StagedBatch) -> None:
        self.batch = batch
        self.view: pa.RecordBatch | None = None

    def __call__(self, offset: int, length: int) -> int:
        if offset == 0 and length == self.batch.num_rows and self.batch.nbytes is not None:
            return self.batch.nbytes
        if self.view is None:
            self.view = self.batch.open()
        return int(self.view.slice(offset, length).nbytes)


def parquet_writer(path: Path | str, schema: pa.Schema, options: WriterOptions) -> pq.ParquetWriter:
    """The one place medcat's parquet settings live (per-leaf compression, dictionaries, statistics)."""
    leaves, binary = _leaves(schema)
    return pq.ParquetWriter(
        path,
        schema,
        compression={**{leaf: options.compression for leaf in leaves}, **{leaf: options.binary_compression for leaf in binary}},
        use_dictionary=leaves,
        write_statistics=leaves,
        store_schema=True,
    )


Source = Union[pa.RecordBatch, StagedBatch]
ShardTask = tuple[str, pa.Schema, "WriterOptions", tuple[tuple[tuple[StagedBatch, int, int], ...], ...]]


def write_shard(path: str, schema: pa.Schema, options: WriterOptions, groups: Sequence[Sequence[tuple[Any, int, int]]]) -> str:
    """Write one shard from its row groups (each a list of ``(batch or StagedBatch, offset, length)``); return its sha256.

    Chunks are the received batches' slices, not combined into one: that copy costs more than the
    write, and the slices are the same for every executor, so the bytes are too.
    """
    current: tuple[str, pa.RecordBatch] | None = None  # pieces come in batch order: one staged file mapped at a time

    def batch_of(source: Source) -> pa.RecordBatch:
        nonlocal current
        if not isinstance(source, StagedBatch):
            return source
        if current is None or current[0] != source.path:
            current = (source.path, source.open())
        return current[1]

    writer = parquet_writer(path, schema, options)
    try:
        for group in groups:
            table = pa.Table.from_batches([batch_of(src).slice(offset, length) for src, offset, length in group], schema=schema)
            writer.write_table(table, row_group_size=table.num_rows)
            del table
    finally:
        writer.close()
    current = None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


ShardRunner = Callable[[ShardTask], Any]
"""Starts writing a staged shard (``write_shard(*task)``) somewhere and returns a future (``result()`` -> sha256)."""


class SplitSink:
    """Row groups and shards of one config/split.

    In memory, it buffers at most one row group and writes shards itself. Given a ``runner`` it
    takes ``StagedBatch``es and hands every finished shard to the runner (a worker writes it); it
    then holds only the current shard's piece list, never rows.
    """

    def __init__(self, folder: Path, split: str, schema: pa.Schema, options: WriterOptions, runner: ShardRunner | None = None) -> None:
        self.folder = folder
        self.split = split
        self.schema = schema
        self.options = options
        self.runner = runner
        self.planner = CutPlanner(options)
        self._sources: dict[int, Source] = {}  # the batches the pending pieces read, by number
        self._groups: list[RowGroup] = []  # row groups of the shard being filled
        self._shard = -1
        self._shards: list[Path] = []
        self._pending: list[Any] = []  # the runner's futures, in shard order
        self.digests: dict[str, str] = {}
        """sha256 of each finished shard by final name relative to the output (staged shards only)."""
        self.rows = 0
        self.bytes = 0

    def add(self, batch: pa.RecordBatch | StagedBatch) -> None:
        if isinstance(batch, StagedBatch):
            if self.runner is None:
                raise ValueError("a staged batch needs a shard runner")
            slice_bytes: Callable[[int, int], int] = _StagedSizes(batch)
        else:
            slice_bytes = lambda o, n: batch.slice(o, n).nbytes  # noqa: E731
        number = self.planner.batches
        if batch.num_rows:
            self._sources[number] = batch
        self._take(self.planner.add(batch.num_rows, slice_bytes))

    def finish(self) -> SplitRecord:
        self._take(self.planner.finish())
        self._close_shard()
        digests = [self._result(future) for future in self._pending]
        total = len(self._shards)
        names = []
        for i, partial in enumerate(self._shards):
            final = partial.with_name(f"{self.split}-{i:05d}-of-{total:05d}.parquet")
            partial.rename(final)
            names.append(f"{self.folder.name}/{final.name}")
            if i < len(digests):
                self.digests[names[-1]] = digests[i]
        return SplitRecord(rows=self.rows, shards=names, bytes=self.bytes)

    def _result(self, future: Any) -> str:
        """The sha256 a worker's shard write returned; an infrastructure failure as ``ConvertError``.

        An ``OSError`` (a full disk) passes through: the writer reports it as ``OutputWriteError``.
        """
        try:
            return str(future.result())
        except OSError:
            raise
        except Exception as err:  # noqa: BLE001 - a killed worker, a lost connection: name the shard
            raise ConvertError(
                f"writing a shard of {self.folder.name}/{self.split} failed on a worker ({type(err).__name__}: {err}). "
                "Nothing was published; run again (finished units are reused)."
            ) from err

    def discard(self) -> None:
        """Drop what is pending; wait for shards being written elsewhere, so none lands after the clean-up."""
        self._groups, self._sources = [], {}
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except (OSError, pa.ArrowException):
                pass
        for future in self._pending:
            try:
                future.result()
            except Exception:  # noqa: BLE001 - discarding after a failure: the first error is the one reported
                pass

    def _take(self, groups: list[RowGroup]) -> None:
        for group in groups:
            if group.shard != self._shard:
                self._close_shard()
                self._shard = group.shard
            self.rows += group.rows
            self.bytes += group.nbytes
            if self.runner is None:  # in memory: write the group now, keep no rows
                self._write(group)
            else:
                self._groups.append(group)
        # Keep only the batches that pieces still to be written read.
        needed = self.planner.pending_batches() | {p.batch for g in self._groups for p in g.pieces}
        for number in [k for k in self._sources if k not in needed]:
            del self._sources[number]

    def _close_shard(self) -> None:
        if self.runner is None:
            self._close_writer()
            return
        if not self._groups:
            return
        path = self._new_path()
        pieces = tuple(tuple((self._sources[p.batch], p.offset, p.length) for p in g.pieces) for g in self._groups)
        self._pending.append(self.runner((str(path), self.schema, self.options, pieces)))  # type: ignore[arg-type]
        self._groups = []

    # ---- in-memory writing (one writer open at a time)

    _writer: pq.ParquetWriter | None = None

    def _write(self, group: RowGroup) -> None:
        if self._writer is None:
            self._writer = parquet_writer(self._new_path(), self.schema, self.options)
        chunks = [self._sources[p.batch].slice(p.offset, p.length) for p in group.pieces]  # type: ignore[union-attr]
        self._writer.write_table(pa.Table.from_batches(chunks, schema=self.schema), row_group_size=group.rows)

    def _close_writer(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _new_path(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.split}-{len(self._shards):05d}.parquet.partial"
        self._shards.append(path)
        return path


def _leaves(schema: pa.Schema) -> tuple[list[str], list[str]]:
    """Return the parquet leaf column paths split into (non-binary, binary).

    Binary leaves hold encoded images and volumes: dictionary encoding and min/max statistics
    are useless on them (the statistics would put two images per row group into every footer),
    and they get their own compression (none by default: they are compressed already).
    """
    other: list[str] = []
    binary: list[str] = []

    def walk(prefix: str, typ: pa.DataType) -> None:
        if pa.types.is_struct(typ):
            for i in range(typ.num_fields):
                child = typ.field(i)
                walk(f"{prefix}.{child.name}", child.type)
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
            walk(f"{prefix}.list.element", typ.value_type)
        elif pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
            binary.append(prefix)
        else:
            other.append(prefix)

    for fld in schema:
        walk(fld.name, fld.type)
    return other, binary
