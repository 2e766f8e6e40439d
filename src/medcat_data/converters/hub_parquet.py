"""Hugging Face Hub dataset copies stored as parquet: find the split files, cut work units per row group.

A Hub dataset repo keeps its rows in ``<split>-NNNNN-of-NNNNN[-hash].parquet`` files (under
``data/`` or per config). Recipes of datasets with a Hub copy (VQA-RAD, PathVQA, ROCOv2) find those
files by their split prefix and give each row group to one work unit, which reads it in small
batches in a worker: one unit never holds a whole shard of images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.recipe import RecipeContext

__all__ = ["RowGroupUnit", "split_parquet"]


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
