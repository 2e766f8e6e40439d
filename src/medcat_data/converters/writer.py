"""The one way medcat writes a dataset: parquet shards, ``README.md``, ``medcat-manifest.json``, ``errors.jsonl``.

Layout of an output folder::

    OUT/README.md                               dataset card (configs, data_files, license, ...)
    OUT/medcat-manifest.json                    inputs, options, versions, counts, seconds
    OUT/errors.jsonl                            one line per failed item (path, stage, type, message, config, split)
    OUT/<config>/<split>-00000-of-00004.parquet shards bounded by rows and bytes

Guarantees:

* **Streaming.** Rows are buffered only up to one row group per config/split (none at all when workers
  staged them: then the writer holds only the piece list of one open shard), so memory does not
  grow with the dataset.
* **Typed.** Each shard's Arrow schema carries the HF ``Features`` under the ``huggingface``
  metadata key, as ``datasets`` writes it, so ``load_dataset(OUT, CONFIG)`` yields ``Image``,
  ``ClassLabel``, ``List`` and ``Value`` types without hints.
* **Deterministic.** Row groups and shards are cut from the row sequence alone (rows and Arrow
  bytes) and nothing time-dependent goes into parquet, so equal units in equal order give
  byte-identical files (for one pyarrow version: its ``created_by`` is fixed per version). The
  executor hands over the same batches for every ``jobs``.
* **Atomic.** Everything is written into a hidden temp folder beside ``OUT`` and renamed into place
  only when complete; a failure leaves the previous output (or nothing) at ``OUT``. An operating
  system error while writing (a full disk: ``ENOSPC``) is one ``OutputWriteError`` naming ``OUT``
  and the cause; clean-up never raises in its place. A run killed between moving the old ``OUT``
  aside and moving the new one in leaves the old one beside ``OUT``, and the next run puts it back.
* **Incremental.** ``write_dataset`` returns at once when ``OUT``'s manifest matches the inputs
  and options (see ``manifest.up_to_date``).

This module writes files only; it never decodes images and never touches the network.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO

import pyarrow as pa
from datasets import Features

from medcat_data.catalog.schema import Task
from medcat_data.converters.card import CardInfo, render_card
from medcat_data.converters.build_manifest import (
    MANIFEST_NAME,
    BuildKey,
    ConfigRecord,
    Manifest,
    RecordedInputs,
    differences,
    library_versions,
    read_manifest,
    sha256_file,
    up_to_date,
    write_manifest,
)
from medcat_data.converters.parquet_shards import ShardRunner, SplitSink
from medcat_data.converters.staging import publish, remove_stale, restore_interrupted, staging_dir
from medcat_data.converters.units import ErrorRecord, RowEncoder, StagedBatch, UnitResult
from medcat_data.errors import ConvertError, OutputExistsError, OutputWriteError, UsageError

log = logging.getLogger(__name__)

ERRORS_NAME = "errors.jsonl"
CARD_NAME = "README.md"
_TMP_MARK = ".medcat-tmp-"
_OLD_MARK = ".medcat-old-"
_CANONICAL_SPLITS = ("train", "validation", "test")

__all__ = [
    "CARD_NAME",
    "ERRORS_NAME",
    "ConfigSpec",
    "DatasetSpec",
    "DatasetWriter",
    "WriteResult",
    "WriterOptions",
    "write_dataset",
]


@dataclass(frozen=True)
class ConfigSpec:
    """One HF config of a dataset: its name, features and task.

    ``splits`` fixes the order of splits in the card; rows for a split not listed are refused
    when it is non-empty.
    """

    name: str
    features: Features
    task: Task | None = None
    description: str = ""
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetSpec:
    """What is written: the ``source`` string of every row, the configs and the card metadata."""

    source: str
    configs: tuple[ConfigSpec, ...]
    card: CardInfo

    def encoder(self) -> RowEncoder:
        """Return the picklable encoder the executor uses to turn rows into Arrow batches."""
        return RowEncoder(self.source, {cfg.name: cfg.features for cfg in self.configs})


@dataclass(frozen=True)
class WriterOptions:
    """Shard and row-group bounds and parquet compression; part of the build key.

    Bytes are Arrow (uncompressed, in-memory) bytes: a deterministic function of the rows,
    close to the file size for already-compressed image columns. Defaults follow what the Hub
    serves well: 100-row row groups for image data, shards under about 500 MiB.
    """

    max_shard_rows: int = 100_000
    max_shard_bytes: int = 500 * 2**20
    row_group_rows: int = 100
    row_group_bytes: int = 64 * 2**20
    compression: str = "snappy"
    # Image and volume bytes are compressed already: snappy on a 2 MB PNG costs ~10 ms and saves nothing.
    binary_compression: str = "none"


@dataclass(frozen=True)
class WriteResult:
    """The outcome of one write: where, how many rows per config/split, errors, whether skipped."""

    out_dir: Path
    rows: Mapping[str, Mapping[str, int]]
    errors: int
    seconds: float
    skipped: bool
    manifest: Manifest = field(repr=False)
    replaced_configs: tuple[str, ...] = ()
    """Configs the previous output at ``out_dir`` held that this (re)build no longer holds."""


def write_dataset(
    out_dir: Path,
    spec: DatasetSpec,
    key: BuildKey,
    results: Iterable[UnitResult],
    options: WriterOptions = WriterOptions(),
    *,
    overwrite: bool = True,
    runner: ShardRunner | None = None,
) -> WriteResult:
    """Write ``results`` (in unit order) as the dataset ``spec`` at ``out_dir``, unless up to date.

    ``results`` is consumed only when a build is needed, so pass a lazy iterable (the executor's
    ``convert_units`` generator) to skip all work on an unchanged re-run. With ``overwrite``
    False, an output built with other options or inputs (or holding configs this build would
    drop) is never replaced: ``OutputExistsError`` names what differs. Results with staged batches
    need a ``runner`` (the executor's ``submit``): workers write their shards.

    Raises:
        UsageError: ``out_dir`` exists, is not empty and is not a medcat output.
        OutputExistsError: ``overwrite`` is False and the build would replace other work.
        ConvertError: a row targets an undeclared config or split.
        OutputWriteError: the operating system refused a write (disk full, permissions).
    """
    key = _with_writer_options(key, options)
    _recover(out_dir)
    existing = read_manifest(out_dir)
    previous = up_to_date(out_dir, existing, key, [cfg.name for cfg in spec.configs])
    if previous is not None:
        log.info("%s is up to date; nothing to do", out_dir)
        return WriteResult(out_dir, previous.rows(), previous.errors, 0.0, True, previous)
    if existing is not None and not overwrite:
        differ = differences(existing, key, [cfg.name for cfg in spec.configs])
        if differ:
            raise OutputExistsError(out_dir, differ)
    old_configs = set(existing.configs) if existing is not None else set()
    del existing, previous  # the previous manifest's input records are not needed while rebuilding
    with DatasetWriter(out_dir, spec, key, options, runner=runner) as writer:
        for result in results:
            writer.add_unit(result)
        written = writer.close()
    return replace(written, replaced_configs=tuple(sorted(old_configs - set(written.rows))))


def _recover(out_dir: Path) -> None:
    """Put back an output a killed run left aside (see ``staging.publish``), then clear killed runs' folders.

    Raises:
        OutputWriteError: the rename back failed.
    """
    if not out_dir.parent.is_dir():
        return
    try:
        restore_interrupted(out_dir, f".{out_dir.name}{_OLD_MARK}")
    except OSError as err:
        raise OutputWriteError(out_dir, err) from err
    remove_stale(out_dir.parent, [f".{out_dir.name}{mark}" for mark in (_TMP_MARK, _OLD_MARK)], "run")


def _with_writer_options(key: BuildKey, options: WriterOptions) -> BuildKey:
    return replace(key, options={**key.options, "writer": asdict(options)})


class DatasetWriter:
    """Assemble configs x splits from rows in arrival order; publish atomically on ``close``.

    Use as a context manager: leaving the block with an exception (or without ``close``) removes
    the temp folder and leaves ``out_dir`` untouched. An ``OSError`` of the writer's own writes is
    raised as ``OutputWriteError`` after that clean-up, which itself never raises. Prefer
    ``write_dataset``, which also skips up-to-date outputs; use this class directly to add unit
    results (``add_unit``) and error records (``add_error``) one at a time.
    """

    def __init__(
        self, out_dir: Path, spec: DatasetSpec, key: BuildKey, options: WriterOptions = WriterOptions(), *, runner: ShardRunner | None = None
    ) -> None:
        self.out_dir = Path(out_dir)
        self.spec = spec
        self.key = key
        self.options = options
        self.runner = runner
        self._encoder = spec.encoder()
        self._configs = {cfg.name: cfg for cfg in spec.configs}
        self._sinks: dict[tuple[str, str], SplitSink] = {}
        self._hashes: dict[str, str] = {}
        self._errors = 0
        self._tmp: Path | None = None
        self._errors_fh: IO[str] | None = None
        self._started = 0.0

    def __enter__(self) -> DatasetWriter:
        _recover(self.out_dir)
        _check_target(self.out_dir)
        with self._writing():
            self.out_dir.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = staging_dir(self.out_dir.parent, f".{self.out_dir.name}{_TMP_MARK}{os.getpid()}-")
            self._errors_fh = open(self._tmp / ERRORS_NAME, "w", encoding="utf-8")
        self._started = time.monotonic()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._abort()

    def add_unit(self, result: UnitResult) -> None:
        """Add one unit's batches, errors and input hashes, in the order the unit produced them."""
        for config, split, batch in result.batches:
            self.add_batch(config, split, batch)
        for record in result.errors:
            self.add_error(record)
        for item in result.input_hashes:
            self._hashes[item.path] = item.sha256

    def add_batch(self, config: str, split: str, batch: pa.RecordBatch | StagedBatch) -> None:
        """Add an encoded batch (or a worker's staged one) for ``config``/``split``.

        Raises:
            ConvertError: undeclared config or split (a recipe bug, reported with names).
        """
        sink = self._sinks.get((config, split))
        if sink is None:
            sink = self._new_sink(config, split)
        with self._writing():
            sink.add(batch)

    def add_error(self, record: ErrorRecord) -> None:
        """Append one failed item to ``errors.jsonl``."""
        assert self._errors_fh is not None, "DatasetWriter used outside its with-block"
        with self._writing():
            self._errors_fh.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
        self._errors += 1

    def close(self) -> WriteResult:
        """Finish every shard, write card and manifest, and move the folder into place.

        Raises:
            OutputWriteError: the operating system refused a write or a rename; ``out_dir`` holds
                the previous output.
        """
        with self._writing():
            return self._close()

    def _close(self) -> WriteResult:
        assert self._tmp is not None and self._errors_fh is not None, "DatasetWriter used outside its with-block"
        records: dict[str, ConfigRecord] = {cfg.name: ConfigRecord(task=cfg.task.value if cfg.task else None) for cfg in self.spec.configs}
        digests: dict[str, str] = {}
        for (config, split), sink in self._ordered_sinks():
            records[config].splits[split] = sink.finish()
            digests.update(sink.digests)
        self._errors_fh.close()
        seconds = round(time.monotonic() - self._started, 3)
        manifest = self._manifest(records, seconds)
        rows = manifest.rows()
        card = render_card(
            self.spec.card, self.spec.configs, rows, source=self.spec.source, options=self.key.options,
            errors=self._errors, tool_version=self.key.tool_version, fingerprints=_fingerprints(self._tmp, records, digests),
        )  # fmt: skip
        (self._tmp / CARD_NAME).write_text(card, encoding="utf-8")
        write_manifest(self._tmp, manifest)
        publish(self._tmp, self.out_dir, self.out_dir.with_name(f".{self.out_dir.name}{_OLD_MARK}{os.getpid()}"))
        self._tmp = None
        log.info("wrote %s: %s rows, %s errors in %.1f s", self.out_dir, rows, self._errors, seconds)
        return WriteResult(self.out_dir, rows, self._errors, seconds, False, manifest)

    def _new_sink(self, config: str, split: str) -> SplitSink:
        assert self._tmp is not None, "DatasetWriter used outside its with-block"
        cfg = self._configs.get(config)
        if cfg is None:
            raise ConvertError(f"{self.spec.source}: rows for undeclared config {config!r}; declared: {sorted(self._configs)}")
        if cfg.splits and split not in cfg.splits:
            raise ConvertError(f"{self.spec.source}: rows for undeclared split {split!r} of config {config!r}")
        sink = SplitSink(self._tmp / config, split, self._encoder.schema(config), self.options, self.runner)
        self._sinks[(config, split)] = sink
        return sink

    def _ordered_sinks(self) -> list[tuple[tuple[str, str], SplitSink]]:
        """Order by declared config, then declared split order (else train, validation, test, a-z)."""
        config_order = [c.name for c in self.spec.configs]

        def rank(item: tuple[tuple[str, str], SplitSink]) -> tuple[int, int, str]:
            (config, split), _ = item
            order = self._configs[config].splits or _CANONICAL_SPLITS
            return (config_order.index(config), order.index(split) if split in order else len(order), split)

        return sorted(self._sinks.items(), key=rank)

    def _manifest(self, records: dict[str, ConfigRecord], seconds: float) -> Manifest:
        # The inputs stay the build key's compact records (with the workers' hashes added when read).
        manifest = Manifest(
            tool_version=self.key.tool_version,
            source=self.spec.source,
            options=dict(self.key.options),
            inputs=[],
            configs=records,
            errors=self._errors,
            seconds=seconds,
            libraries=library_versions(),
        )
        manifest.inputs = RecordedInputs(self.key.inputs, self._hashes)
        return manifest

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Turn an ``OSError`` of a write into ``OutputWriteError``, after cleaning up the temp folder."""
        try:
            yield
        except OSError as err:
            self._abort()
            raise OutputWriteError(self.out_dir, err) from err

    def _abort(self) -> None:
        """Discard the temp folder; never raises, so the error that caused the abort stays the one reported.

        On a full disk, closing the errors file flushes its buffer and fails again: that second
        error is logged, not raised.
        """
        sinks, self._sinks = list(self._sinks.values()), {}
        for sink in sinks:
            try:
                sink.discard()
            except (OSError, pa.ArrowException) as err:
                log.debug("discarding a shard writer failed: %s", err)
        if self._errors_fh is not None and not self._errors_fh.closed:
            try:
                self._errors_fh.close()
            except OSError as err:
                log.debug("closing %s failed: %s", ERRORS_NAME, err)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            if self._tmp.exists():
                log.warning("could not remove the temp folder %s; the next run removes it", self._tmp)
            self._tmp = None


def _check_target(out_dir: Path) -> None:
    if out_dir.exists():
        if not out_dir.is_dir():
            raise UsageError(f"{out_dir} exists and is not a folder. Choose another --out.")
        if any(out_dir.iterdir()) and not (out_dir / MANIFEST_NAME).is_file():
            raise UsageError(
                f"{out_dir} exists, is not empty and holds no {MANIFEST_NAME}: medcat only replaces "
                "its own outputs. Choose a new or empty folder for --out."
            )


def _fingerprints(folder: Path, records: Mapping[str, ConfigRecord], known: Mapping[str, str]) -> dict[str, str]:
    """Return a content digest per config: sha256 over its shards' bytes, in manifest order.

    ``known`` holds the sha256 of shards workers wrote (and hashed); the others are read here.

    It goes into the card's ``configs`` so that ``datasets``, whose cache of a local folder is keyed
    by the card's YAML and not by the data files' contents, never serves rows of an earlier build.
    """
    out: dict[str, str] = {}
    for config, record in records.items():
        digest = hashlib.sha256()
        for split in record.splits.values():
            for shard in split.shards:
                digest.update(shard.encode() + b"\0" + (known.get(shard) or sha256_file(folder / shard)).encode())
        out[config] = digest.hexdigest()
    return out
