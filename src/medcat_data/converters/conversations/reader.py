"""Stream the rows of a normalized output folder, config by config and split by split.

The folder's ``medcat-manifest.json`` lists every config, its splits and their parquet shards in
the order the writer produced them; rows are read shard by shard in small record batches and only
the columns the exporter needs, so memory holds one batch, never a table. This module reads
parquet only; it never writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from medcat_data.converters.build_manifest import MANIFEST_NAME, Manifest, read_manifest
from medcat_data.errors import UsageError

__all__ = ["SplitShards", "iter_rows", "list_splits", "read_columns", "require_manifest"]

BATCH_ROWS = 32
"""Rows per record batch: small because a VQA row may hold several full-size images."""


@dataclass(frozen=True)
class SplitShards:
    """One config/split of an output folder and its shards (absolute paths, in order)."""

    config: str
    split: str
    shards: tuple[Path, ...]

    @property
    def stem(self) -> str:
        """Return ``<config>-<split>``, the name of its export files."""
        return f"{self.config}-{self.split}"


def require_manifest(out_dir: Path) -> Manifest:
    """Return the manifest of a normalized output folder.

    Raises:
        UsageError: the folder holds no readable manifest (not a ``medcat normalize`` output).
    """
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise UsageError(
            f"{out_dir} holds no readable {MANIFEST_NAME}: conversations are exported from a "
            "`medcat normalize` output. Run normalize first (with --conversations)."
        )
    return manifest


def list_splits(out_dir: Path, manifest: Manifest) -> list[SplitShards]:
    """Return every config/split of the folder in manifest order.

    Raises:
        UsageError: a shard listed in the manifest is missing (the folder was edited by hand).
    """
    found = []
    for config, record in manifest.configs.items():
        for split, split_record in record.splits.items():
            shards = tuple(out_dir / shard for shard in split_record.shards)
            missing = [s for s in shards if not s.is_file()]
            if missing:
                raise UsageError(f"{out_dir}: shard {missing[0].relative_to(out_dir)} is missing; run normalize again.")
            found.append(SplitShards(config, split, shards))
    return found


def read_columns(shards: Sequence[Path]) -> list[str]:
    """Return the column names of a split (from its first shard's schema; empty when no shard)."""
    return list(pq.read_schema(shards[0]).names) if shards else []


def iter_rows(shards: Sequence[Path], columns: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Yield the rows of ``shards`` in order as dicts of ``columns`` (images as ``{"bytes", "path"}``)."""
    for shard in shards:
        parquet = pq.ParquetFile(shard)
        try:
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
                yield from batch.to_pylist()
        finally:
            parquet.close()
