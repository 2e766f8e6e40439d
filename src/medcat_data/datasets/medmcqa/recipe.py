"""MedMCQA: four-option exam questions -> the text-qa schema, one config ``qa``, from either source.

* ``hf`` (``openlifescienceai/medmcqa``): ``data/{train,validation,test}-00000-of-00001.parquet``
  with ``id``, ``question``, ``opa``-``opd``, ``cop`` (a ClassLabel ``a``-``d``, so 0-based; ``-1``
  on every test row), ``choice_type``, ``exp``, ``subject_name``, ``topic_name``. One work unit
  per row group, read in batches.
* ``gdrive`` (the authors' zip): ``train.json``, ``dev.json``, ``test.json``, JSON Lines despite the
  extension, with the same keys and a 1-based ``cop``; test lines carry neither ``cop`` nor ``exp``.
  The folder holding them is searched for (shallowest), not assumed at a depth. Files are cut into
  spans of ``UNIT_LINES`` lines at line boundaries.

Columns: ``question``; ``options`` the four ``{key, text}`` with upstream's keys ``opa``-``opd`` in
that order; ``answer_idx`` 0-based and ``answer`` the text of that option; ``explanation`` upstream's
``exp`` (null when empty); ``subject`` upstream's ``subject_name``; then ``id`` (upstream's UUID, also
the ``sample_id``), ``topic`` (``topic_name``, null when absent) and ``choice_type`` (``single`` or
``multi``, verbatim).

The test split has no answers upstream: a test row without ``cop`` (JSON) or with ``cop`` ``-1``
(parquet) gets null ``answer``/``answer_idx``; nothing is guessed. On train and validation such a
row is a ``SampleError``, as is a ``cop`` outside the four options, a line that is not a JSON
object, or a missing ``id``/``question``/option. Splits and their order come from the registry's
``upstream_splits`` (``dev`` and the Hub's ``validation`` are our ``validation``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Features, Value

from medcat_data.converters.hub_parquet import row_group_cells, row_group_spans
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import text_qa_features
from medcat_data.converters.units import Row
from medcat_data.converters.line_spans import Span, line_spans, span_lines
from medcat_data.errors import SampleError, UsageError

log = logging.getLogger(__name__)

__all__ = ["CONFIG", "OPTION_KEYS", "RECIPE", "JsonUnit", "MedMCQA", "ParquetUnit", "Survey", "parse_record"]

DATASET_ID = "medmcqa"
CONFIG = "qa"
OPTION_KEYS = ("opa", "opb", "opc", "opd")
UNLABELLED_SPLIT = "test"
"""The split whose answers upstream withholds (AIIMS PG): its rows may, and do, lack ``cop``."""
UNIT_LINES = 5000
"""JSON lines per work unit (a few MB of questions)."""
_BATCH_ROWS = 512
_PARQUET_NAME = re.compile(r"^(?P<split>[a-z]+)-\d{5}-of-\d{5}(-[0-9a-f]+)?\.parquet$")
_COLUMNS = ("id", "question", *OPTION_KEYS, "cop", "choice_type", "exp", "subject_name", "topic_name")
_REQUIRED = ("id", "question", *OPTION_KEYS, "cop")

COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "id": "Upstream's question id (a UUID); also the sample_id. Test predictions are submitted to the authors by this id.",
    "topic": "Upstream's topic_name within the subject (about 2.4k topics), null when upstream has none.",
    "choice_type": "Upstream's choice_type, verbatim: single or multi (multi rows still name one correct option).",
}


@dataclass(frozen=True)
class JsonUnit:
    """A span of lines of one upstream JSON Lines file."""

    config: str
    path: Path
    rel: str
    split: str
    source_tag: str
    span: Span

    @property
    def name(self) -> str:
        return f"{self.config}/{self.rel}@{self.span.first_line}"


@dataclass(frozen=True)
class ParquetUnit:
    """The first ``rows`` rows of one row group of one Hub parquet file."""

    config: str
    path: Path
    rel: str
    split: str
    source_tag: str
    row_group: int
    first_row: int
    rows: int

    @property
    def name(self) -> str:
        return f"{self.config}/{self.rel}:{self.row_group}"


@dataclass(frozen=True)
class Survey:
    """Where the JSON files are (the Drive zip), or the parquet files per upstream split (the Hub)."""

    json_folder: Path | None
    parquet: Mapping[str, list[Path]]


def find_json_folder(ctx: RecipeContext, names: set[str]) -> Path | None:
    """Return the shallowest folder under the source folder holding one of ``names`` (fetched)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(n in filenames and ctx.has(Path(dirpath) / n) for n in names):
            found.append(Path(dirpath))
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


def find_parquet(ctx: RecipeContext, splits: set[str]) -> dict[str, list[Path]]:
    """Return the fetched ``<split>-NNNNN-of-NNNNN.parquet`` files under the source folder, per upstream split."""
    found: dict[str, list[Path]] = defaultdict(list)
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in sorted(filenames):
            match = _PARQUET_NAME.match(filename)
            if match and match["split"] in splits and ctx.has(Path(dirpath) / filename):
                found[match["split"]].append(Path(dirpath) / filename)
    return dict(found)


# ------------------------------------------------------------------------------------- one record


def parse_record(record: Any, label: str, *, one_based: bool, labelled: bool) -> dict[str, Any]:
    """Return the text-qa values of one upstream record (without ``source``/``split``).

    ``one_based``: the JSON release numbers ``cop`` 1-4; the Hub copy 0-3 (``-1`` for none).
    ``labelled``: the record's split has answers, so a record without one is bad.

    Raises:
        SampleError: not an object, a missing field, no answer on a labelled split, or a ``cop``
            that names no option.
    """
    if not isinstance(record, Mapping):
        raise SampleError(label, "parse", f"expected a JSON object, got {type(record).__name__}")
    missing = [k for k in ("id", "question") if _optional(record.get(k)) is None]
    missing += [k for k in OPTION_KEYS if not isinstance(record.get(k), (str, int, float)) or isinstance(record.get(k), bool)]
    if missing:
        raise SampleError(label, "parse", f"missing or empty field(s) {missing}")
    answer_idx = _answer_index(record.get("cop"), label, one_based=one_based, labelled=labelled)
    options = [{"key": key, "text": str(record[key])} for key in OPTION_KEYS]
    record_id = str(record["id"]).strip()
    return {
        "question": str(record["question"]),
        "options": options,
        "answer_idx": answer_idx,
        "answer": None if answer_idx is None else options[answer_idx]["text"],
        "explanation": _optional(record.get("exp")),
        "subject": _optional(record.get("subject_name")),
        "id": record_id,
        "topic": _optional(record.get("topic_name")),
        "choice_type": _optional(record.get("choice_type")),
        "sample_id": record_id,
    }


def _answer_index(cop: Any, label: str, *, one_based: bool, labelled: bool) -> int | None:
    if isinstance(cop, str) and cop.strip().lstrip("-").isdigit():
        cop = int(cop)
    if cop is not None and (isinstance(cop, bool) or not isinstance(cop, int)):
        raise SampleError(label, "parse", f"cop {cop!r} is not an option number")
    if cop is None or cop == (0 if one_based else -1):
        if labelled:
            raise SampleError(label, "parse", "no answer (cop absent or a placeholder) on a split that has answers")
        return None
    index = cop - 1 if one_based else cop
    if not 0 <= index < len(OPTION_KEYS):
        span = "1-4" if one_based else "0-3"
        raise SampleError(label, "parse", f"cop {cop} names no option (expected {span})")
    return index


def _optional(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# ------------------------------------------------------------------------------------- recipe


class MedMCQA(Recipe[Survey, "JsonUnit | ParquetUnit"]):
    """MedMCQA from the Hub parquet or the Drive JSON Lines into ``qa`` (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = (CONFIG,)
    COLUMN_DESCRIPTIONS = COLUMN_DESCRIPTIONS

    def survey(self, ctx: RecipeContext) -> Survey:
        """Find the JSON Lines files (Drive zip) or else the Hub's parquet files.

        Raises:
            UsageError: neither layout was fetched.
        """
        splits = set(ctx.splits_of(CONFIG))
        folder = find_json_folder(ctx, {f"{s}.json" for s in splits})
        if folder is not None:
            return Survey(folder, {})
        parquet = find_parquet(ctx, splits)
        if parquet:
            return Survey(None, parquet)
        raise UsageError(
            f"{DATASET_ID}: found neither train.json/dev.json/test.json (source gdrive) nor "
            f"data/<split>-*.parquet (source hf) under {ctx.source_dir}. Run `medcat fetch {DATASET_ID} --source {ctx.source}` first."
        )

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return text-qa with ``id``, ``topic`` and ``choice_type`` (strings), for either source."""
        self.check_config(config)
        return text_qa_features({"id": Value("string"), "topic": Value("string"), "choice_type": Value("string")})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[JsonUnit | ParquetUnit]:
        """List the units of whichever layout was fetched, in the registry's split order."""
        self.check_config(config)
        units: list[JsonUnit | ParquetUnit] = []
        for upstream, split in ctx.splits_of(config).items():
            if survey.json_folder is not None:
                path = survey.json_folder / f"{upstream}.json"
                if ctx.has(path):
                    units += [JsonUnit(config, path, ctx.rel(path), split, ctx.source_tag, span)
                              for span in line_spans(path, UNIT_LINES, ctx.options.limit)]
            else:
                units += _parquet_units(config, ctx, survey.parquet.get(upstream, []), split)
        missing = set(ctx.splits_of(config).values()) - {u.split for u in units}
        for split in sorted(missing):
            log.warning("%s: no file of split %s was fetched; it is left out", DATASET_ID, split)
        return Plan(units)

    def convert_unit(self, unit: JsonUnit | ParquetUnit) -> Iterator[Row | SampleError]:
        """Yield one row per question; a bad line or row is a ``SampleError`` and the file goes on."""
        return _json_rows(unit) if isinstance(unit, JsonUnit) else _parquet_rows(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Say which splits are for evaluation, that test has no answers, and how cop was read."""
        splits = ", ".join(f"{k} -> {v}" for k, v in ctx.splits_of(CONFIG).items())
        return [
            "The test split (AIIMS PG questions) has no answers upstream: the authors withhold them and score "
            "predictions submitted by id through their form. answer and answer_idx are null on every test row "
            "(the Hub copy's cop -1 there is a placeholder, not an answer); explanation is null too.",
            "validation (NEET PG, upstream dev) and test are evaluation splits: report results on validation, never "
            "train on either; no test question is ever in train. Splits are upstream's, by exam: " + splits + ".",
            "options are opa, opb, opc, opd in that order; answer_idx is 0-based (upstream cop is 1-based in the "
            "JSON release and 0-based, ClassLabel a-d, in the Hub copy: both give the same answer_idx).",
            "choice_type multi questions still name one correct option upstream (medmcqa/medmcqa#4); answer is that "
            "option. subject is subject_name, topic topic_name, explanation exp (null when empty).",
        ]


def _parquet_units(config: str, ctx: RecipeContext, files: list[Path], split: str) -> list[ParquetUnit]:
    import pyarrow.parquet as pq

    units: list[ParquetUnit] = []
    for path in files:
        pf = pq.ParquetFile(path)
        require_columns(ctx, path, pf.schema_arrow.names, _REQUIRED)
        sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
        units += [
            ParquetUnit(config, path, ctx.rel(path), split, ctx.source_tag, group, first, rows)
            for group, first, rows in row_group_spans(sizes, ctx.options.limit)
        ]
    return units


def _row(unit: JsonUnit | ParquetUnit, values: dict[str, Any]) -> Row:
    values.update(source=unit.source_tag, split=unit.split)
    return Row(unit.config, unit.split, values)


def _json_rows(unit: JsonUnit) -> Iterator[Row | SampleError]:
    labelled = unit.split != UNLABELLED_SPLIT
    for number, raw in span_lines(unit.path, unit.span):
        if not raw.strip():
            continue
        label = f"{unit.rel}:{number}"
        try:
            try:
                record = json.loads(raw)
            except UnicodeDecodeError as err:
                raise SampleError(label, "parse", f"the line is not UTF-8 text: {err}") from None
            except json.JSONDecodeError as err:
                raise SampleError(label, "parse", f"malformed JSON at column {err.colno}: {err.msg}") from None
            values = parse_record(record, label, one_based=True, labelled=labelled)
        except SampleError as err:
            yield err
            continue
        yield _row(unit, values)


def _parquet_rows(unit: ParquetUnit) -> Iterator[Row | SampleError]:
    labelled = unit.split != UNLABELLED_SPLIT
    for offset, cell in row_group_cells(unit.path, unit.row_group, unit.rows, _COLUMNS, _BATCH_ROWS):
        try:
            values = parse_record(cell, f"{unit.rel}#{unit.first_row + offset}", one_based=False, labelled=labelled)
        except SampleError as err:
            yield err
            continue
        yield _row(unit, values)


RECIPE = MedMCQA()
