"""Any PhysioNet project: every ``*.csv`` / ``*.csv.gz`` table -> a tabular config of its own.

The recipe of the registry's ``physionet`` template: every entry built from it
(``physionet:SLUG``, ``template_of: physionet``) uses it, and ``mimic-iv-demo`` subclasses it.
The registry declares one config, ``tables``; it expands at normalize time into one config per
table, named after its path (``hosp/admissions.csv.gz`` -> ``hosp_admissions``, a top-level
``x.csv`` -> ``x``; lower case, ``-`` and other odd characters -> ``_``). ``configs`` lists
them; ``features``/``plan`` accept those names (``tables`` itself is never built).

Types are inferred in a first streaming pass over each table (``codecs.table``): a column is
``bool`` when every value is ``True``/``False``, ``int64`` when every value is an integer,
``float64`` when numbers mix, else ``string``. An empty cell is null. A conflict widens the type
(int64 -> float64 -> string, bool with anything else -> string); no row is ever dropped for its
values. Integers written with a leading zero (``007``) are strings, so identifiers keep their digits.

Rows are streamed in a second pass. A work unit is a table, or a run of rows of a large
uncompressed table (read from a byte offset the first pass recorded). ``sample_id`` is
``<config>:<row number>`` (1-based data rows, ragged rows counted), so it is stable. A ragged row
(wrong field count) is a ``SampleError`` naming file and line; the run goes on.

``--split-by COLUMN`` assigns the distinct non-empty values of COLUMN, over every table holding it,
to train/validation/test with the seeded grouped split, so one subject is in one split in every
table; rows with an empty value and tables without the column go to ``train``. Without it
everything is ``train``. WFDB records (``RECORDS``, ``.hea``/``.dat``) are listed in the card,
not normalized. Options: ``limit`` keeps the first N data rows of each table.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO

from datasets import Features, Value

from medcat_data.converters.codecs.table import NULL, cell_kind, column_dtype, parse_cell, widen
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import common_features, tabular_features
from medcat_data.converters.splits import grouped_split
from medcat_data.converters.units import Row
from medcat_data.errors import InputDecodeError, SampleError, UsageError

__all__ = ["CHUNK_ROWS", "RECIPE", "TABLES_CONFIG", "PhysioNetTables", "Survey", "TableScan", "TableUnit", "config_name"]

TABLES_CONFIG = "tables"
"""The registry's one declared config; it expands into one config per table."""

CHUNK_ROWS = 200_000
"""Rows per work unit of an uncompressed table (gzip tables are one unit: they cannot seek)."""

SKIP_DIRS = frozenset({".medcat"})


@dataclass(frozen=True)
class Chunk:
    """Where a run of rows starts in an uncompressed table."""

    offset: int
    first_row: int
    first_line: int


@dataclass
class TableScan:
    """What the first pass learnt about one table."""

    config: str
    path: Path
    rel: str
    header: list[str]
    columns: list[str]
    kinds: list[str]
    rows: int = 0
    ragged: int = 0
    chunks: list[Chunk] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)

    def dtype(self, index: int) -> str:
        return column_dtype(self.kinds[index])


@dataclass(frozen=True)
class TableUnit:
    """Rows ``[first_row, first_row + max_rows)`` of one table (``max_rows`` None = to the end)."""

    config: str
    path: Path
    rel: str
    source_tag: str
    columns: tuple[str, ...]
    dtypes: tuple[str, ...]
    offset: int = 0
    first_row: int = 1
    first_line: int = 2
    max_rows: int | None = None
    split_column: int | None = None
    assignment: Mapping[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.config}@{self.first_row}"


# ------------------------------------------------------------------------------------- discovery


def config_name(rel: str) -> str:
    """Return the config of a table path: ``hosp/admissions.csv.gz`` -> ``hosp_admissions``."""
    stem = re.sub(r"\.csv(\.gz)?$", "", rel, flags=re.IGNORECASE)
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower().replace("/", "_").replace("-", "_")).strip("_")
    return name or "table"


def find_tables(ctx: RecipeContext) -> dict[str, tuple[Path, str]]:
    """Return ``config -> (path, path relative to the source folder)`` for every fetched table."""
    found: dict[str, tuple[Path, str]] = {}
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for filename in sorted(filenames):
            lower = filename.lower()
            if not (lower.endswith(".csv") or lower.endswith(".csv.gz")):
                continue
            path = Path(dirpath) / filename
            if not ctx.has(path):
                continue
            rel = ctx.rel(path)
            name = config_name(rel)
            if name == TABLES_CONFIG:
                name = "tables_"
            unique, n = name, 2
            while unique in found:
                unique, n = f"{name}_{n}", n + 1
            found[unique] = (path, rel)
    return found


# ------------------------------------------------------------------------------------- reading


class _LineCounter:
    """Iterate the UTF-8 text lines of a binary stream, counting bytes (chunk offsets) and lines.

    Decoding is strict: a line whose bytes are not UTF-8 is left out and kept in ``errors``
    (``<rel>:<line>``), never turned into replacement characters. ``start`` is the file line of
    the first line handed out since ``begin_record`` (the line a CSV record starts on). A gzip
    stream that ends early or is corrupt raises ``InputDecodeError`` naming the line it stopped at.
    """

    def __init__(self, raw: IO[bytes], rel: str, offset: int = 0, first_line: int = 1) -> None:
        self.raw = raw
        self.rel = rel
        self.position = offset
        self.line = first_line - 1
        """File lines consumed so far."""
        self.start = first_line
        self.errors: list[SampleError] = []
        self._begun = False

    def begin_record(self) -> None:
        """Mark that the next line handed out starts a record."""
        self._begun = False

    def take_errors(self) -> list[SampleError]:
        """Return the lines left out since the last call, and forget them."""
        taken, self.errors = self.errors, []
        return taken

    def __iter__(self) -> Iterator[str]:
        try:
            for data in self.raw:
                self.position += len(data)
                self.line += 1
                try:
                    text = data.decode("utf-8")
                except UnicodeDecodeError as err:
                    reason = f"bytes not valid UTF-8 at column {err.start + 1} ({err.reason}); the line is left out"
                    self.errors.append(SampleError(f"{self.rel}:{self.line}", "read", reason))
                    continue
                if not self._begun:
                    self.start, self._begun = self.line, True
                yield text
        except EOFError:
            raise InputDecodeError(self.rel, "the gzip stream ends early: the file is truncated", self.line + 1) from None
        except (gzip.BadGzipFile, zlib.error) as err:
            raise InputDecodeError(self.rel, f"corrupt gzip data ({err})", self.line + 1) from None


def _open_binary(path: Path) -> IO[bytes]:
    if path.name.lower().endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _clean_columns(header: list[str]) -> list[str]:
    common = set(common_features())
    out: list[str] = []
    for i, name in enumerate(header):
        name = name.strip()
        if i == 0:
            name = name.lstrip("\ufeff")
        if not name:
            name = f"column_{i + 1}"
        if name in common:
            name = f"upstream_{name}"
        unique, n = name, 2
        while unique in out:
            unique, n = f"{name}_{n}", n + 1
        out.append(unique)
    return out


def scan_table(config: str, path: Path, rel: str, *, split_by: str | None, limit: int | None) -> TableScan:
    """First pass: header, column kinds, row count, chunk offsets and (with ``split_by``) the groups.

    Damaged lines are left out here and reported by the unit that converts them; a truncated
    gzip ends the table where it stops (that unit reports it too).

    Raises:
        SampleError: the table has no header line, or its header line is damaged.
    """
    with _open_binary(path) as raw:
        lines = _LineCounter(raw, rel)
        reader = csv.reader(iter(lines))
        try:
            header = next(reader)
        except StopIteration:
            raise SampleError(rel, "parse", "empty table: no header line") from None
        if lines.errors:
            raise lines.errors[0]
        columns = _clean_columns(header)
        scan = TableScan(config, path, rel, header, columns, [NULL] * len(header))
        split_index = header.index(split_by) if split_by and split_by in header else None
        compressed = path.name.lower().endswith(".gz")
        start_pos, start_line = lines.position, lines.line + 1
        try:
            for fields in reader:
                if limit is not None and scan.rows >= limit:
                    break
                scan.rows += 1
                if not compressed and (scan.rows - 1) % CHUNK_ROWS == 0:
                    scan.chunks.append(Chunk(start_pos, scan.rows, start_line))
                start_pos, start_line = lines.position, lines.line + 1
                if len(fields) != len(header):
                    scan.ragged += 1
                    continue
                for i, text in enumerate(fields):
                    if text != "":
                        kind = scan.kinds[i]
                        if kind != "string":
                            scan.kinds[i] = widen(kind, cell_kind(text))
                if split_index is not None and fields[split_index] != "":
                    scan.groups.add(fields[split_index])
        except InputDecodeError:
            pass  # the rows end here; the unit converting them reports the damage
    return scan


# ------------------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class Survey:
    """Every fetched table scanned once, and (with ``--split-by``) the split of each group value."""

    tables: Mapping[str, TableScan]
    assignment: Mapping[str, str]
    split_description: Mapping[str, object] | None


class PhysioNetTables(Recipe[Survey, TableUnit]):
    """Any PhysioNet project's CSV tables, a config per table (see the module docstring)."""

    DATASET_ID = "physionet"
    CONFIGS = (TABLES_CONFIG,)

    def survey(self, ctx: RecipeContext) -> Survey:
        """Scan every fetched table (header, types, rows, chunks) and split the ``--split-by`` groups.

        Raises:
            UsageError: no table has the ``--split-by`` column.
        """
        opts = ctx.options
        tables = {
            name: scan_table(name, path, rel, split_by=opts.split_by, limit=opts.limit)
            for name, (path, rel) in find_tables(ctx).items()
        }
        assignment: dict[str, str] = {}
        description: Mapping[str, object] | None = None
        if opts.split_by:
            holders = [t for t in tables.values() if opts.split_by in t.header]
            if not holders:
                raise UsageError(
                    f"--split-by {opts.split_by!r}: no table has that column; tables: {', '.join(sorted(tables)) or 'none'}."
                )
            groups = sorted(set().union(*(t.groups for t in holders)))
            split = grouped_split(groups, seed=opts.seed)
            assignment = {str(g): s for g, s in split.assignment.items()}
            description = {"column": opts.split_by, **split.describe()}
        return Survey(tables, assignment, description)

    def configs(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Return the configs ``tables`` expands into for this fetch: one per CSV table, sorted."""
        return sorted(survey.tables)

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the tabular features of one table config, with the inferred column types."""
        table = _table(config, ctx, survey)
        return tabular_features({name: Value(table.dtype(i)) for i, name in enumerate(table.columns)})

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[TableUnit]:
        """Return the units of one table: the whole table, or runs of ``CHUNK_ROWS`` rows."""
        table = _table(config, ctx, survey)
        split_by = ctx.options.split_by
        split_column = table.header.index(split_by) if split_by and split_by in table.header else None
        assignment = {g: survey.assignment[g] for g in table.groups} if split_column is not None else {}
        whole = TableUnit(
            config=config,
            path=table.path,
            rel=table.rel,
            source_tag=ctx.source_tag,
            columns=tuple(table.columns),
            dtypes=tuple(table.dtype(i) for i in range(len(table.columns))),
            max_rows=table.rows,
            split_column=split_column,
            assignment=assignment,
        )
        if not table.chunks:
            return Plan(units=[whole])
        units = []
        for i, chunk in enumerate(table.chunks):
            last = table.chunks[i + 1].first_row if i + 1 < len(table.chunks) else table.rows + 1
            units.append(
                replace(whole, offset=chunk.offset, first_row=chunk.first_row, first_line=chunk.first_line, max_rows=last - chunk.first_row)
            )
        return Plan(units=units)

    def convert_unit(self, unit: TableUnit) -> Iterator[Row | SampleError]:
        return convert_unit(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        return card_notes(ctx, survey)


def _table(config: str, ctx: RecipeContext, survey: Survey) -> TableScan:
    """Return the scan of a table config.

    Raises:
        UsageError: ``tables`` itself (it only expands) or a config that is no fetched table.
    """
    tables = survey.tables
    if config == TABLES_CONFIG:
        raise UsageError(
            f"{ctx.dataset_id}: config 'tables' expands into one config per CSV table; "
            f"build those instead ({', '.join(sorted(tables)) or 'no table fetched'})."
        )
    try:
        return tables[config]
    except KeyError:
        raise UsageError(
            f"{ctx.dataset_id} has no table config {config!r}; configs: {', '.join(sorted(tables)) or 'none'}."
        ) from None


def convert_unit(unit: TableUnit) -> Iterator[Row | SampleError]:
    """Yield the rows of one unit; a ragged row, a line not UTF-8 or a truncated gzip is a ``SampleError`` (file:line)."""
    with _open_binary(unit.path) as raw:
        if unit.offset:
            raw.seek(unit.offset)
        lines = _LineCounter(raw, unit.rel, unit.offset, unit.first_line if unit.offset else 1)
        reader = csv.reader(iter(lines))
        try:
            if unit.offset == 0:
                next(reader, None)  # the header
            yield from _table_rows(unit, reader, lines)
        except InputDecodeError as err:
            yield from lines.take_errors()
            yield err


def _table_rows(unit: TableUnit, reader: Iterator[list[str]], lines: _LineCounter) -> Iterator[Row | SampleError]:
    """Yield the unit's rows, each preceded by the damaged lines left out before it."""
    width = len(unit.columns)
    number = unit.first_row
    lines.begin_record()
    for fields in reader:
        if unit.max_rows is not None and number >= unit.first_row + unit.max_rows:
            return  # the next unit reports what lies beyond its start
        yield from lines.take_errors()
        line = lines.start
        sample_id = f"{unit.config}:{number}"
        if len(fields) != width:
            yield SampleError(
                f"{unit.rel}:{line}",
                "parse",
                f"ragged row {sample_id}: {len(fields)} fields, the header has {width}",
            )
        else:
            split = "train"
            if unit.split_column is not None:
                split = unit.assignment.get(fields[unit.split_column], "train")
            try:
                values = {name: parse_cell(text, dtype) for name, text, dtype in zip(unit.columns, fields, unit.dtypes)}
            except (ValueError, KeyError) as err:  # only if the file changed since the first pass
                yield SampleError(f"{unit.rel}:{line}", "parse", f"{sample_id}: {err}")
            else:
                values.update(source=unit.source_tag, sample_id=sample_id, split=split)
                yield Row(unit.config, split, values)
        number += 1
        lines.begin_record()
    yield from lines.take_errors()


def wfdb_records(ctx: RecipeContext) -> list[str]:
    """Return the record names of every ``RECORDS`` file (paths relative to the source folder).

    Raises:
        InputDecodeError: a ``RECORDS`` line is not valid UTF-8 (named ``<path>:<line>``).
    """
    records: list[str] = []
    for dirpath, dirnames, filenames in os.walk(ctx.source_dir):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        if "RECORDS" not in filenames:
            continue
        folder = Path(dirpath)
        if not ctx.has(folder / "RECORDS"):
            continue
        prefix = folder.relative_to(ctx.source_dir).as_posix()
        rel = "RECORDS" if prefix == "." else f"{prefix}/RECORDS"
        for number, data in enumerate((folder / "RECORDS").read_bytes().splitlines(), 1):
            try:
                name = data.decode("utf-8").strip()
            except UnicodeDecodeError as err:
                raise InputDecodeError(rel, f"bytes not valid UTF-8 at column {err.start + 1} ({err.reason})", number) from None
            if name:
                records.append(name if prefix == "." else f"{prefix}/{name}")
    return records


def card_notes(ctx: RecipeContext, survey: Survey) -> list[str]:
    """Describe the tables (rows, inferred types), the split and the WFDB records left out."""
    notes: list[str] = []
    for name, table in sorted(survey.tables.items()):
        types = ", ".join(f"{c}: {table.dtype(i)}" for i, c in enumerate(table.columns))
        ragged = f"; {table.ragged} ragged row(s) in errors.jsonl" if table.ragged else ""
        notes.append(f"Config `{name}` is `{table.rel}` ({table.rows} data rows{ragged}); inferred types: {types}.")
    notes.append(
        "Column types were inferred in a first pass: True/False -> bool, integers -> int64 (leading zeros "
        "stay strings), other numbers -> float64, else string; a conflict widens the type; empty cells are null."
    )
    if survey.split_description:
        notes.append(f"Split: seeded grouped split by column over every table holding it: {dict(survey.split_description)}; "
                     "rows without a value and tables without the column are in train.")
    else:
        notes.append("No split column was given (--split-by): every row is in train.")
    try:
        records = wfdb_records(ctx)
    except InputDecodeError as err:
        records = []
        notes.append(f"The WFDB records are not listed: {err}.")
    if records:
        shown = ", ".join(records[:20]) + (f" and {len(records) - 20} more" if len(records) > 20 else "")
        notes.append(
            f"{len(records)} WFDB record(s) listed in RECORDS are not normalized (signals stay in the raw cache; "
            f"read them with the wfdb package): {shown}."
        )
    return notes


RECIPE = PhysioNetTables()
