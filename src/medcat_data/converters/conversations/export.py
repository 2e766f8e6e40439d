"""Export a normalized output folder as conversation files for MLLM training (``--conversations``).

Layout, inside the dataset folder ``OUT/<id>/``::

    conversations/<format>/<config>-<split>.jsonl   one record a line, in row order
    conversations/internvl/meta.json                 InternVL's meta file (with internvl)
    conversations/images/<xx>/<sha256>.<ext>         each image once, shared by every format
    conversations/export.json                        options, counts and the build key

Image paths in the records are relative to ``conversations/``. Rows are streamed shard by shard
(``reader.py``); a row becomes a neutral conversation (``items.py``), each format builds its
record (``formats.py``) and images are written once by content (``images.py``). Rows a format
cannot hold are skipped and counted by reason, never truncated: ``multi_image`` (llava),
``max_images`` (``--max-images``), ``image_token_mismatch``, ``no_answer``, ``missing_image``,
``bad_conversation``.

Everything is built in a hidden staging folder and renamed into place when complete, so
``conversations/`` is always a whole export. A re-run with equal shards and options returns the
recorded counts without work; a forced rebuild writes the same bytes. This module never touches
the network and never decodes images.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from medcat_data import __version__
from medcat_data.converters.conversations.formats import FORMATS, FormatName, count_image_tokens
from medcat_data.converters.conversations.images import ImageStore, MissingImage, stage
from medcat_data.converters.conversations.items import Kind, RowSkipped, needed_columns, row_kind, to_item
from medcat_data.converters.conversations.prompt import PromptTemplate
from medcat_data.converters.conversations.reader import SplitShards, iter_rows, list_splits, read_columns, require_manifest
from medcat_data.converters.staging import publish, remove_stale, restore_interrupted, staging_dir
from medcat_data.errors import OutputWriteError, UsageError

log = logging.getLogger(__name__)

__all__ = ["CONVERSATIONS_DIR", "ExportOptions", "ExportResult", "SplitCounts", "export_conversations"]

CONVERSATIONS_DIR = "conversations"
EXPORT_RECORD = "export.json"
INTERNVL_META = "meta.json"
_EXPORT_FORMAT = 1
_TMP_MARK = f".{CONVERSATIONS_DIR}.medcat-tmp-"
_OLD_MARK = f".{CONVERSATIONS_DIR}.medcat-old-"


@dataclass(frozen=True)
class ExportOptions:
    """What to export: the formats, the image cap per row and the image-text prompt template."""

    formats: tuple[FormatName, ...]
    max_images: int | None = None
    template: PromptTemplate = field(default_factory=PromptTemplate)

    def __post_init__(self) -> None:
        unknown = [f for f in self.formats if f not in FORMATS]
        if unknown or not self.formats:
            raise UsageError(f"unknown conversation format(s) {unknown}; choose from {', '.join(FORMATS)}.")
        if self.max_images is not None and self.max_images < 0:
            raise UsageError(f"--max-images must be 0 or more, got {self.max_images}.")

    def key(self) -> dict[str, Any]:
        """Return the options as they enter the build key (format order does not matter)."""
        return {"formats": sorted(set(self.formats)), "max_images": self.max_images, "template": self.template.text}


@dataclass
class SplitCounts:
    """Rows written to one file and rows skipped, by reason."""

    rows: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "skipped": dict(sorted(self.skipped.items()))}


@dataclass(frozen=True)
class ExportResult:
    """Where the export is, counts per format and file, distinct images, configs left out."""

    dir: Path
    counts: Mapping[str, Mapping[str, SplitCounts]]
    images: int
    unsupported: tuple[str, ...] = ()
    skipped_up_to_date: bool = False

    def totals(self) -> dict[str, dict[str, int]]:
        """Return per format ``{"rows": n, "skipped_<reason>": n, ...}`` summed over files."""
        out: dict[str, dict[str, int]] = {}
        for fmt, files in self.counts.items():
            total = {"rows": sum(c.rows for c in files.values())}
            for counts in files.values():
                for reason, n in counts.skipped.items():
                    total[f"skipped_{reason}"] = total.get(f"skipped_{reason}", 0) + n
            out[fmt] = dict(sorted(total.items(), key=lambda kv: (kv[0] != "rows", kv[0])))
        return out

    def summary(self) -> dict[str, Any]:
        """Return the JSON summary printed by ``medcat normalize --json``."""
        return {
            "dir": str(self.dir),
            "formats": self.totals(),
            "files": {fmt: {stem: c.to_json() for stem, c in files.items()} for fmt, files in self.counts.items()},
            "images": self.images,
            "unsupported_configs": list(self.unsupported),
            "skipped_up_to_date": self.skipped_up_to_date,
        }


def export_conversations(out_dir: Path, options: ExportOptions) -> ExportResult:
    """Write the conversation files of the normalized dataset at ``out_dir`` (see the module docstring).

    Raises:
        UsageError: ``out_dir`` is not a normalize output, or none of its configs holds questions
            with answers or captions (nothing to export).
        OutputWriteError: a previous export that a killed run left aside cannot be put back.
    """
    out_dir = Path(out_dir)
    manifest = require_manifest(out_dir)
    splits = list_splits(out_dir, manifest)
    key = _build_key(out_dir, splits, options)
    target = out_dir / CONVERSATIONS_DIR
    try:  # a run killed between publish's two renames left the previous export aside: put it back
        restore_interrupted(target, _OLD_MARK)
    except OSError as err:
        raise OutputWriteError(target, err) from err
    previous = _previous_result(target, key)
    if previous is not None:
        log.info("%s is up to date; nothing to export", target)
        return previous
    remove_stale(out_dir, (_TMP_MARK, _OLD_MARK), "export")
    staging = staging_dir(out_dir, f"{_TMP_MARK}{os.getpid()}-")
    try:
        result = _export_into(staging, target, splits, options, manifest.source.split("@")[0])
        record = {"format": _EXPORT_FORMAT, "key": key, **result.summary()}
        del record["dir"], record["skipped_up_to_date"]
        _write_json(staging / EXPORT_RECORD, record)
        publish(staging, target, target.with_name(f"{_OLD_MARK}{os.getpid()}"))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


def _export_into(
    staging: Path, target: Path, splits: Sequence[SplitShards], options: ExportOptions, dataset_id: str
) -> ExportResult:
    store = ImageStore(staging, previous=target if target.is_dir() else None)
    counts: dict[str, dict[str, SplitCounts]] = {f: {} for f in dict.fromkeys(options.formats)}
    unsupported: list[str] = []
    for split in splits:
        columns = read_columns(split.shards)
        kind = row_kind(columns)
        if kind is None:
            if split.config not in unsupported:
                unsupported.append(split.config)
            continue
        per_format = {fmt: counts[fmt].setdefault(split.stem, SplitCounts()) for fmt in counts}
        _export_split(staging, store, split, kind, needed_columns(kind, columns), options, per_format)
        log.info("exported %s: %s", split.stem, {f: c.rows for f, c in per_format.items()})
    if not any(files for files in counts.values()):
        raise UsageError(
            f"{dataset_id}: no config to export as conversations ({', '.join(unsupported) or 'no rows'}): "
            "conversations come from vqa, text-qa and image-text configs (question and answer, or image and caption)."
        )
    if "internvl" in counts:
        _write_internvl_meta(staging, dataset_id, counts["internvl"])
    return ExportResult(target, counts, store.count, tuple(unsupported))


def _export_split(
    staging: Path,
    store: ImageStore,
    split: SplitShards,
    kind: Kind,
    columns: Sequence[str],
    options: ExportOptions,
    counts: Mapping[str, SplitCounts],
) -> None:
    """Stream one config/split into one JSONL file per format."""
    with ExitStack() as stack:
        files: dict[str, IO[str]] = {}
        for fmt in counts:
            (staging / fmt).mkdir(exist_ok=True)
            files[fmt] = stack.enter_context(open(staging / fmt / f"{split.stem}.jsonl", "w", encoding="utf-8", newline="\n"))
        for row in iter_rows(split.shards, columns):
            for fmt, line in _row_lines(row, kind, options, store, counts).items():
                files[fmt].write(line)
                counts[fmt].rows += 1


def _row_lines(
    row: Mapping[str, Any], kind: Kind, options: ExportOptions, store: ImageStore, counts: Mapping[str, SplitCounts]
) -> dict[str, str]:
    """Return the JSON line of each format that keeps this row; count the others; write its images."""
    try:
        item = to_item(row, kind, options.template)
        staged = [stage(image) for image in item.images]
    except RowSkipped as skipped:
        return _skip_all(counts, skipped.reason)
    except MissingImage:
        return _skip_all(counts, "missing_image")
    paths = [s.name for s in staged]
    lines: dict[str, str] = {}
    for fmt in counts:
        limit = FORMATS[fmt].max_images
        if options.max_images is not None and len(paths) > options.max_images:
            counts[fmt].skip("max_images")
        elif limit is not None and len(paths) > limit:
            counts[fmt].skip("multi_image")
        else:
            try:
                record = FORMATS[fmt].build(item, paths)
            except RowSkipped as skipped:
                counts[fmt].skip(skipped.reason)
                continue
            _check_tokens(fmt, record)
            lines[fmt] = json.dumps(record, ensure_ascii=False) + "\n"
    if lines:
        for image in staged:
            store.write(image)
    return lines


def _skip_all(counts: Mapping[str, SplitCounts], reason: str) -> dict[str, str]:
    for c in counts.values():
        c.skip(reason)
    return {}


def _check_tokens(fmt: str, record: Mapping[str, Any]) -> None:
    """Assert the invariant a trainer relies on: one ``<image>`` token per image (llava, internvl)."""
    if fmt == "sharegpt":
        return
    image = record.get("image")
    n_images = 0 if image is None else 1 if isinstance(image, str) else len(image)
    assert count_image_tokens(record["conversations"]) == n_images, f"{fmt} record {record['id']}: tokens != images"


def _write_internvl_meta(staging: Path, dataset_id: str, counts: Mapping[str, SplitCounts]) -> None:
    """Write InternVL's meta file: one entry per non-empty file, paths relative to ``conversations/``."""
    meta = {
        f"{dataset_id}-{stem}": {
            "root": "./",
            "annotation": f"internvl/{stem}.jsonl",
            "data_augment": False,
            "repeat_time": 1,
            "length": c.rows,
        }
        for stem, c in counts.items()
        if c.rows
    }
    _write_json(staging / "internvl" / INTERNVL_META, meta)


def _build_key(out_dir: Path, splits: Sequence[SplitShards], options: ExportOptions) -> dict[str, Any]:
    shards = []
    for split in splits:
        for shard in split.shards:
            st = shard.stat()
            shards.append([shard.relative_to(out_dir).as_posix(), st.st_size, st.st_mtime_ns])
    return {"tool_version": __version__, "options": options.key(), "shards": shards}


def _previous_result(target: Path, key: Mapping[str, Any]) -> ExportResult | None:
    """Return the recorded result when ``target`` was exported with ``key`` and is complete."""
    try:
        record = json.loads((target / EXPORT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != _EXPORT_FORMAT or record.get("key") != json.loads(json.dumps(key)):
        return None
    files = record.get("files") or {}
    if not all((target / fmt / f"{stem}.jsonl").is_file() for fmt, stems in files.items() for stem in stems):
        return None
    counts = {
        fmt: {stem: SplitCounts(c["rows"], dict(c["skipped"])) for stem, c in stems.items()} for fmt, stems in files.items()
    }
    return ExportResult(target, counts, int(record.get("images", 0)), tuple(record.get("unsupported_configs", ())), True)


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
