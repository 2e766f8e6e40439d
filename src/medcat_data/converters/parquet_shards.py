"""Parquet shards of one config/split: row groups and shards cut from the row sequence alone.

Buffers at most one row group. Shards are written under temporary ``*.parquet.partial`` names
and renamed ``<split>-00000-of-00004.parquet`` once the count is known. Writes parquet only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from medcat_data.converters.build_manifest import SplitRecord

if TYPE_CHECKING:
    from medcat_data.converters.writer import WriterOptions

__all__ = ["SplitSink"]


class SplitSink:
    """Row groups and shards of one config/split: buffers at most one row group."""

    def __init__(self, folder: Path, split: str, schema: pa.Schema, options: WriterOptions) -> None:
        self.folder = folder
        self.split = split
        self.schema = schema
        self.options = options
        self._buffer: list[pa.RecordBatch] = []
        self._buffer_rows = 0
        self._buffer_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._shard_rows = 0
        self._shard_bytes = 0
        self._shards: list[Path] = []
        self.rows = 0
        self.bytes = 0
        self._leaves, self._binary = _leaves(schema)

    def add(self, batch: pa.RecordBatch) -> None:
        offset = 0
        while offset < batch.num_rows:
            take = min(batch.num_rows - offset, self.options.row_group_rows - self._buffer_rows)
            piece = batch.slice(offset, take)
            offset += take
            self._buffer.append(piece)
            self._buffer_rows += take
            self._buffer_bytes += piece.nbytes
            if self._buffer_rows >= self.options.row_group_rows or self._buffer_bytes >= self.options.row_group_bytes:
                self._flush()

    def finish(self) -> SplitRecord:
        self._flush()
        self._close_shard()
        total = len(self._shards)
        names = []
        for i, partial in enumerate(self._shards):
            final = partial.with_name(f"{self.split}-{i:05d}-of-{total:05d}.parquet")
            partial.rename(final)
            names.append(f"{self.folder.name}/{final.name}")
        return SplitRecord(rows=self.rows, shards=names, bytes=self.bytes)

    def discard(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except (OSError, pa.ArrowException):
                pass
            self._writer = None

    def _flush(self) -> None:
        if not self._buffer_rows:
            return
        rows, nbytes = self._buffer_rows, self._buffer_bytes
        # Not combined into one chunk: that copy costs more than the write. Chunks are the units'
        # batches, equal for every --jobs, so the bytes stay deterministic.
        table = pa.Table.from_batches(self._buffer, schema=self.schema)
        self._buffer, self._buffer_rows, self._buffer_bytes = [], 0, 0
        if self._writer is not None and self._shard_rows and (
            self._shard_rows + rows > self.options.max_shard_rows
            or self._shard_bytes + nbytes > self.options.max_shard_bytes
        ):
            self._close_shard()
        if self._writer is None:
            self._open_shard()
        assert self._writer is not None
        self._writer.write_table(table, row_group_size=rows)
        self._shard_rows += rows
        self._shard_bytes += nbytes
        self.rows += rows
        self.bytes += nbytes

    def _open_shard(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.split}-{len(self._shards):05d}.parquet.partial"
        self._writer = pq.ParquetWriter(
            path,
            self.schema,
            compression={
                **{leaf: self.options.compression for leaf in self._leaves},
                **{leaf: self.options.binary_compression for leaf in self._binary},
            },
            use_dictionary=self._leaves,
            write_statistics=self._leaves,
            store_schema=True,
        )
        self._shards.append(path)
        self._shard_rows = self._shard_bytes = 0

    def _close_shard(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


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
