"""``medcat convert``: a user's own files (DICOM, PNG/JPEG/TIFF/BMP, NIfTI/NRRD/MHA volumes) into a dataset.

The pipeline: find the files (``convert_inputs``), skip the run when the output is up to date,
convert each file in a work unit (``convert_rows``, through the executor, ``jobs`` processes)
and write the result with the one writer. Bad files are recorded in ``errors.jsonl`` with their
reason and never stop the run (unless ``on_bad_item="fail"``). Reads local files only.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from medcat_data import __version__
from medcat_data.catalog.schema import Task
from medcat_data.converters.card import CardInfo
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.volume import VolumeOptions
from medcat_data.converters.convert_inputs import Inventory, LabelTable, discover, read_label_table
from medcat_data.converters.convert_features import image_features, volume_features
from medcat_data.converters.convert_rows import IMAGES_CONFIG, VOLUMES_CONFIG, UnitOptions, convert_file
from medcat_data.converters.executor import OnBadItem, convert_units
from medcat_data.converters.build_manifest import BuildKey, stat_inputs
from medcat_data.converters.writer import ConfigSpec, DatasetSpec, WriteResult, WriterOptions, write_dataset
from medcat_data.errors import UsageError
from medcat_data.progress import Progress

log = logging.getLogger(__name__)

# Starting a spawned worker costs about a second (imports); below this many files per worker a
# pool is slower than one process.
_FILES_PER_WORKER = 32

__all__ = ["ConvertOptions", "ConvertResult", "MaxErrors", "convert"]


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that shapes a ``medcat convert`` output (``jobs`` excepted: it never changes it).

    Attributes:
        image: DICOM/raster options (window, bit depth, max size, frames).
        volume: Volume options (slices or whole, plane, stride, window).
        group_series: Read DICOM series of several files as volumes (set by ``--volume``).
        split: Split of every file unless ``split_column`` gives one.
        labels: A CSV of labels; ``id_column`` matches a file's relative path, name or stem.
        jobs: Worker processes; the output is byte-identical for every value. ``None`` picks one
            per CPU (at most 8) when there are enough files to repay starting them, else 1.
        on_bad_item: ``record`` (default) or ``fail`` at the first bad file.
        writer: Shard bounds and compression.
        name: Dataset name for the card and the ``source`` column (default: the output folder name).
    """

    image: ImageOptions = field(default_factory=ImageOptions)
    volume: VolumeOptions = field(default_factory=VolumeOptions)
    group_series: bool = False
    split: str = "train"
    labels: Path | None = None
    id_column: str = "id"
    label_column: str | None = "label"
    split_column: str | None = None
    jobs: int | None = 1
    on_bad_item: OnBadItem = "record"
    writer: WriterOptions = field(default_factory=WriterOptions)
    name: str | None = None

    def as_json(self) -> dict[str, Any]:
        """Return the options that shape the output, JSON-safe (the build key and the manifest)."""
        img, vol = self.image, self.volume
        return {
            "window": img.window,
            "bit_depth": img.bit_depth,
            "max_size": img.max_size,
            "frames": img.frames,
            "output_format": img.output_format,
            "group_series": self.group_series,
            "volume_mode": vol.mode,
            "plane": vol.plane,
            "stride": vol.stride,
            "volume_window": list(vol.window) if isinstance(vol.window, tuple) else vol.window,
            "split": self.split,
            "labels": self.labels.name if self.labels else None,
            "id_column": self.id_column if self.labels else None,
            "label_column": self.label_column if self.labels else None,
            "split_column": self.split_column if self.labels else None,
            "name": self.name,
        }


@dataclass(frozen=True)
class MaxErrors:
    """``--max-errors``: how many failed items a run tolerates before it exits non-zero.

    ``count`` is absolute, ``percent`` relative to every item (rows + failures). The default,
    ``MaxErrors(count=0)``, makes any error an exit code 1 (after everything else finished).
    """

    count: int | None = 0
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> MaxErrors:
        """Parse ``N`` or ``P%``.

        Raises:
            UsageError: anything else.
        """
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
        if not match or (not match.group(2) and "." in match.group(1)):
            raise UsageError(f"--max-errors: expected a count like 10 or a share like 2.5%, got {text!r}.")
        value = float(match.group(1))
        if match.group(2):
            if value > 100:
                raise UsageError(f"--max-errors: a share is at most 100%, got {text!r}.")
            return cls(count=None, percent=value)
        return cls(count=int(value))

    def exceeded(self, errors: int, items: int) -> bool:
        """Return whether ``errors`` failures out of ``items`` are beyond the limit."""
        if self.percent is not None:
            return items > 0 and 100.0 * errors / items > self.percent
        return errors > (self.count or 0)

    def __str__(self) -> str:
        return f"{self.percent:g}%" if self.percent is not None else str(self.count)


@dataclass(frozen=True)
class ConvertResult:
    """The writer's result plus what was found."""

    write: WriteResult
    units: int
    kinds: dict[str, int]

    @property
    def out_dir(self) -> Path:
        return self.write.out_dir

    @property
    def errors(self) -> int:
        return self.write.errors

    @property
    def rows(self) -> int:
        return sum(n for per_split in self.write.rows.values() for n in per_split.values())

    @property
    def items(self) -> int:
        """Rows written plus items that failed: the base of ``--max-errors P%``."""
        return self.rows + self.errors


def convert(
    paths: Sequence[Path], out_dir: Path, options: ConvertOptions = ConvertOptions(), progress: Progress | None = None
) -> ConvertResult:
    """Convert the files under ``paths`` into a Hugging Face dataset at ``out_dir``.

    Files are found recursively in sorted order; each becomes a work unit converted by the
    codec its extension or content calls for. Labels come from ``options.labels`` or from the
    parent folder names (imagefolder convention). The output loads with
    ``datasets.load_dataset(out_dir)``: config ``default`` for 2D images (DICOM frames, rasters,
    volume slices) and ``volumes`` for whole volumes. A re-run with unchanged inputs and options
    does nothing.

    Raises:
        UsageError: a path does not exist, nothing was found, or the labels CSV is unusable.
        SampleError: with ``on_bad_item="fail"``, the first bad file.
    """
    out_dir = Path(out_dir)
    labels = _labels(options)
    inventory = discover(
        [Path(p) for p in paths],
        split=options.split,
        labels=labels,
        group_series=options.group_series,
        exclude=[out_dir] + ([options.labels] if options.labels else []),
    )
    label_names = tuple(sorted(set(labels.labels.values()))) if labels else inventory.label_names
    spec = _spec(inventory, label_names, options, out_dir)
    key = BuildKey(stat_inputs(inventory.inputs), options.as_json(), __version__)
    unit_options = UnitOptions(image=options.image, volume=options.volume)
    results = convert_units(
        inventory.units,
        partial(convert_file, options=unit_options),
        spec.encoder(),
        jobs=options.jobs or _auto_jobs(len(inventory.units)),
        on_bad_item=options.on_bad_item,
        progress=progress,
    )
    write = write_dataset(out_dir, spec, key, results, options.writer)
    kinds = Counter(u.kind for u in inventory.units)
    return ConvertResult(write=write, units=len(inventory.units), kinds=dict(sorted(kinds.items())))


def _auto_jobs(units: int) -> int:
    """One process per CPU, at most 8, and only when each would get a few dozen files."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, 8, units // _FILES_PER_WORKER))


def _labels(options: ConvertOptions) -> LabelTable | None:
    if options.labels is None:
        if options.split_column:
            raise UsageError("--split-column needs --labels CSV (the column is read from that file).")
        return None
    return read_label_table(options.labels, options.id_column, options.label_column, options.split_column)


def _spec(inventory: Inventory, label_names: tuple[str, ...], options: ConvertOptions, out_dir: Path) -> DatasetSpec:
    whole = options.volume.mode == "whole"
    volumes = bool(inventory.kinds & {"volume", "series"})
    configs = []
    if not (whole and volumes and inventory.kinds <= {"volume", "series"}):
        features = image_features(
            label_names,
            dicom="dicom" in inventory.kinds,
            volumes=volumes and not whole,
            masks=inventory.has_masks and not whole,
        )
        configs.append(ConfigSpec(IMAGES_CONFIG, features, Task.IMAGE_CLASSIFICATION, "2D images, one row per image, frame or slice."))
    if whole and volumes:
        configs.append(ConfigSpec(VOLUMES_CONFIG, volume_features(label_names, masks=inventory.has_masks), None, "Whole volumes, one row each (NIfTI, RAS+)."))
    name = options.name or out_dir.name
    return DatasetSpec(source=f"local:{name}", configs=tuple(configs), card=_card(name, inventory, options))


def _card(name: str, inventory: Inventory, options: ConvertOptions) -> CardInfo:
    kinds = Counter(u.kind for u in inventory.units)
    found = ", ".join(f"{n:,} {kind}" for kind, n in sorted(kinds.items()))
    if options.labels:
        labelled = f"Labels from `{options.labels.name}` (column `{options.label_column}`, matched on `{options.id_column}`)."
    elif inventory.label_names:
        labelled = "Labels are the names of the folders directly below the input folder (imagefolder convention)."
    else:
        labelled = "Unlabelled."
    return CardInfo(
        pretty_name=name,
        summary=f"Local files converted into a Hugging Face dataset with `medcat convert` ({found} input file(s)).",
        how_made=(
            "Each input file is one work unit, in sorted path order. DICOM goes through the modality LUT, "
            "VOI window and MONOCHROME1 inversion to PNG; PNG/JPEG/TIFF/BMP pass through byte for byte "
            f"unless resized; volumes are reoriented to RAS+. {labelled} `sample_id` is the path relative "
            "to the input folder (with `#frame=N` or `#<plane>=N` for frames and slices)."
        ),
        tags=("medical", "medcat", "medcat-convert"),
        notes=("ClassLabel names are sorted alphabetically.",) if inventory.label_names or options.labels else (),
    )
