"""Hugging Face Hub dataset copies stored as parquet: find the split files, cut work units per row group.

A Hub dataset repo keeps its rows in ``<split>-NNNNN-of-NNNNN[-hash].parquet`` files (under
``data/`` or per config). Recipes of datasets with a Hub copy (VQA-RAD, PathVQA, ROCOv2) find those
files by their split prefix and give each row group to one work unit, which reads it in small
batches in a worker: one unit never holds a whole shard of images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.recipe import RecipeContext

__all__ = ["RowGroupUnit", "row_group_cells", "row_group_spans", "split_parquet"]


def split_parquet(ctx: RecipeContext, prefixes: Iterable[str]) -> dict[str, list[Path]]:
    """Return the fetched ``<prefix>-*.parquet`` files under the source folder, per prefix (upstream split name).

    Folders are walked in sorted order (hidden ones skipped), so shards keep their numbering order.
    """
    wanted = set(prefixes)
    found: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            prefix = filename.split("-", 1)[0]
            path = Path(dirpath) / filename
            if filename.endswith(".parquet") and prefix in wanted and ctx.has(path):
                found.setdefault(prefix, []).append(path)
    return found


@dataclass(frozen=True)
class RowGroupUnit:
    """One row group of one parquet file, with its split, first row number and sample ids."""

    config: str
    source_tag: str
    image: ImageOptions
    path: Path
    rel: str
    split: str
    row_group: int
    first_row: int
    sample_ids: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.config}@{self.rel}:{self.row_group}"


def row_group_spans(num_rows: Sequence[int], limit: int | None) -> Iterator[tuple[int, int, int]]:
    """Yield ``(row group, its first row in the file, rows to take)`` for row groups of ``num_rows`` rows each.

    With ``limit``, only the first ``limit`` rows of the file are taken; row groups left with none are skipped.
    """
    first, remaining = 0, limit
    for group, rows in enumerate(num_rows):
        take = rows if remaining is None else min(rows, remaining)
        if remaining is not None:
            remaining -= take
        if take > 0:
            yield group, first, take
        first += rows


def row_group_cells(path: Path, row_group: int, rows: int, columns: Iterable[str], batch_rows: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(offset, row as a dict)`` for the first ``rows`` rows of one row group, read ``batch_rows`` at a time.

    Of ``columns``, those the file has are read.
    """
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    present = [c for c in columns if c in pf.schema_arrow.names]
    batches = pf.iter_batches(batch_size=batch_rows, row_groups=[row_group], columns=present)
    return zip(range(rows), (cell for batch in batches for cell in batch.to_pylist()))
