"""The MIMIC-CXR-JPG index files, read once: metadata, official split and the label CSVs.

Shared by the ``mimic-cxr-jpg`` recipe (its own files) and the ``mimic-cxr`` recipe (the same files
fetched as its companion ``mimic-cxr-jpg-labels``). Lines are decoded strictly: a damaged line (bytes
not UTF-8, a truncated gzip) is kept as a ``SampleError`` for ``errors.jsonl``, never replaced by
U+FFFD, and the rest of the file is used. Label columns are selected by name, never by position.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medcat_data.converters.codecs.tabix import iter_lines
from medcat_data.converters.recipe import RecipeContext, require_columns
from medcat_data.converters.vocab.chexpert import COLUMN_ALIASES, MENTION, OBSERVATIONS, column_name
from medcat_data.errors import InputDecodeError, SampleError, UsageError

__all__ = [
    "LABEL_FILES", "METADATA", "SPLIT", "TEST_LABELED", "ImageFacts", "LabelFolder", "LabelTable", "PackedLabels", "StudyImages", "csv_header",
    "csv_rows", "label_columns", "mention_names", "mention_values", "read_label_folder", "read_text_lines",
]

METADATA = "mimic-cxr-2.0.0-metadata.csv.gz"
SPLIT = "mimic-cxr-2.0.0-split.csv.gz"
LABEL_FILES = {"chexpert": "mimic-cxr-2.0.0-chexpert.csv.gz", "negbio": "mimic-cxr-2.0.0-negbio.csv.gz"}
TEST_LABELED = "mimic-cxr-2.1.0-test-set-labeled.csv"
"""File names keep their 2.0.0 spelling in 2.1.0 (fact sheet §1.9): never derived from the version."""
LABEL_SOURCE = "mimic-cxr-jpg chexpert/negbio"
TEST_SOURCE = "mimic-cxr-jpg test-set-labeled"

_LONE_CR = re.compile(r"(?<=\r)(?!\n)")
"""Where a lone carriage return ends a line (split after it, unless a newline follows)."""


def read_text_lines(path: Path, encoding: str = "utf-8", errors: list[SampleError] | None = None) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line)`` of a plain or gzip text file (gzip by its magic bytes), 1-based, ends kept.

    Lines end at LF, CRLF or a lone CR, as text mode with ``newline=""`` splits them.
    ``encoding`` must be ASCII-compatible (UTF-8, Latin-1); it is decoded strictly, never with a
    replacement character. Without ``errors`` damage is raised; with it, a line whose bytes are not
    valid is appended there and skipped (the other lines go on), and a truncated or corrupt gzip
    stream is appended there and ends the lines.

    Raises:
        InputDecodeError: (without ``errors``) bytes not valid ``encoding``, or a truncated or
            corrupt gzip stream; named ``<file name>:<line>``.
    """
    number = 0
    lines = iter_lines(path)
    while True:
        try:
            got = next(lines, None)
        except InputDecodeError as err:  # numbered here: a lone CR may have split earlier lines
            failure = InputDecodeError(path.name, err.reason, number + 1)
            if errors is None:
                raise failure from None
            errors.append(failure)
            return
        if got is None:
            return
        try:
            text = got[1].decode(encoding)
        except UnicodeDecodeError as err:
            number += 1
            failure = InputDecodeError(path.name, f"bytes not valid {encoding} at column {err.start + 1} ({err.reason})", number)
            if errors is None:
                raise failure from None
            errors.append(failure)
            continue
        for piece in _LONE_CR.split(text) if "\r" in text else (text,):
            if piece:
                number += 1
                yield number, piece


def label_columns() -> dict[str, tuple[str, ...]]:
    """The 14 label columns (``column_name(obs)``) with the mention-state class names."""
    return {column_name(obs): MENTION.labels for obs in OBSERVATIONS}


# ------------------------------------------------------------------------------------- reading


def csv_rows(path: Path, errors: list[SampleError] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` of a (gzip) CSV; the header is stripped of spaces and a BOM.

    With ``errors``, damaged lines (bytes not UTF-8, a truncated gzip) are appended there as
    ``<file name>:<line>`` errors instead of being raised (see ``read_text_lines``).
    """
    lines = read_text_lines(path, errors=errors)
    header_line = next(lines, None)
    if header_line is None:
        return
    header = [h.strip().lstrip("\ufeff") for h in next(csv.reader([header_line[1]]))]
    for number, line in lines:
        if not line.strip():
            continue
        fields = next(csv.reader(io.StringIO(line)))
        yield number, dict(zip(header, fields))


def csv_header(path: Path) -> list[str]:
    """Return the column names of a (gzip) CSV (spaces and a BOM stripped)."""
    for _, line in read_text_lines(path):
        return [h.strip().lstrip("\ufeff") for h in next(csv.reader([line]))]
    return []


_BITS = 4
"""Bits per raw value in a packed label code: 14 values of up to 15 distinct spellings fit 64 bits."""
_SPELLINGS = (1 << _BITS) - 1


class PackedLabels(Mapping[str, tuple[str, ...]]):
    """study_id -> the 14 raw values, one 64-bit code per study in an array (the tuple is made when read).

    A tuple of 14 values per study took about 180 bytes for each of MIMIC-CXR's 227,835 studies
    and each label file; here a study costs 8 bytes per file, and its position in ``index`` (one
    dict of study ids shared by the folder's files). Code 0 is "no row"; value ``k`` of a study
    is ``spellings[digit k - 1]``. A file with more than 15 distinct spellings keeps the rows it
    cannot pack as tuples (``overflow``), so any value still reaches the worker to be reported.
    """

    def __init__(self, index: dict[str, int]) -> None:
        self._index = index
        self._codes = array("Q")
        self._spellings: dict[str, int] = {}
        self._names: list[str] = []
        self._overflow: dict[str, tuple[str, ...]] = {}
        self._count = 0

    def add(self, study: str, raw: tuple[str, ...]) -> None:
        """Set the values of ``study`` (a later row of the same study replaces an earlier one)."""
        position = self._index.setdefault(study, len(self._index))
        if position >= len(self._codes):  # one slot per study of the index (0: no row), added as it grows
            self._codes.frombytes(bytes(self._codes.itemsize * (len(self._index) - len(self._codes))))
        code = 0
        for k, value in enumerate(raw):
            digit = self._spellings.get(value)
            if digit is None and len(self._names) < _SPELLINGS:
                digit = self._spellings[value] = len(self._names) + 1
                self._names.append(value)
            if digit is None:
                code = -1
                break
            code |= digit << (_BITS * k)
        had = self._codes[position] != 0 or study in self._overflow
        self._overflow.pop(study, None)
        if code < 0 or len(raw) != len(OBSERVATIONS):
            self._codes[position] = 0
            self._overflow[study] = raw
        else:
            self._codes[position] = code
        self._count += not had

    def _raw(self, study: str) -> tuple[str, ...] | None:
        position = self._index.get(study)
        code = self._codes[position] if position is not None and position < len(self._codes) else 0
        if not code:
            return self._overflow.get(study)
        names = self._names
        return tuple(names[((code >> (_BITS * k)) & _SPELLINGS) - 1] for k in range(len(OBSERVATIONS)))

    def __getitem__(self, study: str) -> tuple[str, ...]:
        raw = self._raw(study)
        if raw is None:
            raise KeyError(study)
        return raw

    def __contains__(self, study: object) -> bool:
        return isinstance(study, str) and self._raw(study) is not None

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[str]:
        return (study for study in self._index if study in self)

    def nbytes(self) -> int:
        """Return the bytes this table holds of its own (codes, spellings, overflow rows; not the shared index)."""
        return sum(sys.getsizeof(part) for part in (self._codes, self._spellings, self._names, self._overflow))


@dataclass(frozen=True)
class LabelTable:
    """One label file: study_id -> the 14 raw values in ``OBSERVATIONS`` order (``PackedLabels``).

    A work unit carries its study's raw tuple, and the worker maps it to mention names
    (``mention_names``).
    """

    file: str
    source: str
    values: Mapping[str, tuple[str, ...]]


def read_labels(
    ctx: RecipeContext, path: Path, source: str, errors: list[SampleError] | None = None, index: dict[str, int] | None = None
) -> LabelTable:
    """Read a label file, selecting the 14 observation columns by name (aliases applied).

    With ``errors``, its damaged lines are appended there instead of being raised. ``index`` maps
    study ids already read (e.g. from the metadata) to a position shared by the folder's label
    files (studies not in it are added), so that a study id is held once for every file.

    Raises:
        UpstreamFormatError: the header lacks ``study_id`` or one of the 14 observations.
    """
    names = {COLUMN_ALIASES.get(h, h): h for h in csv_header(path)}
    require_columns(ctx, path, names, ("study_id", *OBSERVATIONS))
    values = PackedLabels(index if index is not None else {})
    for _, row in csv_rows(path, errors):
        study = (row.get("study_id") or "").strip()
        if study:
            values.add(study, tuple(sys.intern((row.get(names[obs]) or "").strip()) for obs in OBSERVATIONS))
    return LabelTable(path.name, source, values)


@dataclass(frozen=True, slots=True)
class StudyImages:
    """One study's images from the metadata file, in upstream order.

    Held for the whole run (227,835 of them for MIMIC-CXR), so kept lean: the subject id string is
    shared by a subject's studies and ``views`` is an interned tuple shared by every study with
    the same views.
    """

    subject_id: str
    study_id: str
    dicom_ids: tuple[str, ...]
    views: tuple[str | None, ...]
    """The metadata's ``ViewPosition`` of each image (None when blank)."""

    @property
    def images(self) -> tuple[tuple[str, str | None], ...]:
        """``(dicom_id, ViewPosition or None)`` pairs."""
        return tuple(zip(self.dicom_ids, self.views))

    @property
    def folder(self) -> str:
        return f"files/p{self.subject_id[:2]}/p{self.subject_id}/s{self.study_id}"


class ImageFacts(Mapping[str, str]):
    """One column of the per-image facts, dicom_id -> ``(upstream split, ViewPosition)``, as a mapping.

    The split and the views share one dict (two dicts of MIMIC-CXR's 377,110 images took about
    15 MiB each); an image whose value is None (not in that file, or a blank view) is absent.
    """

    def __init__(self, facts: Mapping[str, tuple[str | None, str | None]], column: int) -> None:
        self._facts, self._column = facts, column

    def __getitem__(self, dicom_id: str) -> str:
        value = self._facts[dicom_id][self._column]
        if value is None:
            raise KeyError(dicom_id)
        return value

    def __iter__(self) -> Iterator[str]:
        return (dicom_id for dicom_id, pair in self._facts.items() if pair[self._column] is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@dataclass(frozen=True)
class LabelFolder:
    """What the metadata, split and label files of one folder say, read once: studies, splits, labels."""

    studies: tuple[StudyImages, ...]
    split: Mapping[str, str]
    """dicom_id -> upstream split value (``ImageFacts`` column 0)."""
    labels: Mapping[str, LabelTable]
    """Per config (``chexpert``, ``negbio``, ``test-labeled``), the label files that were fetched."""
    errors: Mapping[str, tuple[SampleError, ...]]
    """Damaged lines met while reading, by file key (``metadata``, ``split``, a label key)."""
    index: Mapping[str, int] = field(default_factory=dict)
    """study_id -> the position in ``studies`` of its (first) ``StudyImages``; label-file-only studies sit past the end."""
    views: Mapping[str, str] = field(default_factory=dict)
    """dicom_id -> the metadata's non-blank ViewPosition (``ImageFacts`` column 1; the last row of a dicom_id met twice)."""

    def study(self, study_id: str) -> StudyImages | None:
        """Return the metadata's (first) ``StudyImages`` of ``study_id``, or None."""
        position = self.index.get(study_id)
        return self.studies[position] if position is not None and position < len(self.studies) else None

    def errors_of(self, *keys: str) -> list[SampleError]:
        """Return the damaged lines of these files (the ones one config's rows depend on)."""
        return [err for key in keys for err in self.errors.get(key, ())]


class _StudyGroups:
    """The metadata's images grouped by ``(subject_id, study_id)`` in first-seen order, as the rows stream.

    Upstream lists a study's images together: a run of rows becomes one ``StudyImages`` with no
    list or tuple per image held on the way (they would stay behind as freed but unreturned
    memory). A study met again later is merged into its first ``StudyImages``.
    """

    def __init__(self) -> None:
        self.studies: list[StudyImages] = []
        self.index: dict[str, int] = {}
        """study_id -> the position of its (first) ``StudyImages``; shared by the label tables afterwards."""
        self._others: dict[tuple[str, str], int] = {}
        """(subject_id, study_id) -> position, for a study id met under a second subject."""
        self._views: dict[tuple[str | None, ...], tuple[str | None, ...]] = {}
        self._key: tuple[str, str] | None = None
        self._ids: list[str] = []
        self._run_views: list[str | None] = []

    def add(self, subject: str, study: str, dicom_id: str, view: str | None) -> None:
        key = self._key
        if key is None or key[0] != subject or key[1] != study:
            self._flush()
            self._key = (subject, study)
        self._ids.append(dicom_id)
        self._run_views.append(view)

    def _flush(self) -> None:
        if self._key is None:
            return
        subject, study = self._key
        ids, views = tuple(self._ids), tuple(self._run_views)
        self._ids.clear()
        self._run_views.clear()
        position = self.index.get(study)
        if position is not None and self.studies[position].subject_id != subject:
            position = self._others.get((subject, study))
        if position is None:
            if study in self.index:
                self._others[(subject, study)] = len(self.studies)
            else:
                self.index[study] = len(self.studies)
            self.studies.append(StudyImages(subject, study, ids, self._views.setdefault(views, views)))
        else:
            seen = self.studies[position]
            joined = seen.views + views
            self.studies[position] = StudyImages(subject, seen.study_id, seen.dicom_ids + ids, self._views.setdefault(joined, joined))

    def finish(self) -> tuple[tuple[StudyImages, ...], dict[str, int]]:
        self._flush()
        self._key = None
        return tuple(self.studies), self.index


def read_label_folder(folder: Path, ctx: RecipeContext, label_files: Mapping[str, str]) -> LabelFolder:
    """Read the metadata, split and (fetched) label files under ``folder``.

    A damaged line (bytes not UTF-8, a truncated gzip) is kept in ``errors``, not raised: the
    plans report it in ``errors.jsonl`` and the rest of the file is used.

    Raises:
        UsageError: the metadata or split file was not fetched.
        UpstreamFormatError: a header lacks the columns read.
        InputDecodeError: a header line is damaged.
    """
    needed = {"metadata": folder / METADATA, "split": folder / SPLIT}
    for what, path in needed.items():
        if not ctx.has(path):
            raise UsageError(f"{ctx.dataset_id}: {path} ({what}) was not fetched; run `medcat fetch {ctx.dataset_id}`.")
    present = {k: folder / name for k, name in label_files.items() if ctx.has(folder / name)}
    errors: dict[str, list[SampleError]] = {key: [] for key in (*needed, *present)}
    # One string object per distinct id, shared by the studies, the split and the label tables;
    # dropped once read (a MIMIC-CXR survey would otherwise hold each id two or three times).
    ids: dict[str, str] = {}
    require_columns(ctx, needed["metadata"], csv_header(needed["metadata"]), ("dicom_id", "subject_id", "study_id", "ViewPosition"))
    grouped = _StudyGroups()
    for _, row in csv_rows(needed["metadata"], errors["metadata"]):
        subject, study, dicom_id = (ids.setdefault(t, t) for t in (row["subject_id"].strip(), row["study_id"].strip(), row["dicom_id"].strip()))
        view = row["ViewPosition"].strip()
        grouped.add(subject, study, dicom_id, sys.intern(view) if view else None)
    studies, index = grouped.finish()
    # One dict for what is known per image, (split, view) pairs shared by every image with the same.
    facts: dict[str, tuple[str | None, str | None]] = {}
    pairs: dict[tuple[str | None, str | None], tuple[str | None, str | None]] = {}
    for st in studies:
        for dicom_id, seen_view in zip(st.dicom_ids, st.views):
            facts[dicom_id] = pairs.setdefault((None, seen_view), (None, seen_view))
    require_columns(ctx, needed["split"], csv_header(needed["split"]), ("dicom_id", "split"))
    for _, row in csv_rows(needed["split"], errors["split"]):
        dicom_id = row["dicom_id"].strip()
        dicom_id = ids.get(dicom_id, dicom_id)
        pair = (sys.intern(row["split"].strip()), facts.get(dicom_id, (None, None))[1])
        facts[dicom_id] = pairs.setdefault(pair, pair)
    labels = {
        k: read_labels(ctx, p, TEST_SOURCE if k == "test-labeled" else LABEL_SOURCE, errors[k], index) for k, p in present.items()
    }
    damaged = {k: tuple(v) for k, v in errors.items() if v}
    return LabelFolder(studies, ImageFacts(facts, 0), labels, damaged, index, ImageFacts(facts, 1))


def mention_values(table: LabelTable | None, study_id: str, item: str) -> dict[str, str | None]:
    """The 14 label columns of a study: mention names, or all null when the study is unlabelled.

    Raises:
        SampleError: a value outside the vocabulary (stage ``labels``).
    """
    if table is None:
        return mention_names(None, "", "", item)
    return mention_names(table.values.get(study_id), table.file, table.source, item)


def mention_names(raw: tuple[str, ...] | None, file: str, source: str, item: str) -> dict[str, str | None]:
    """Map a study's 14 raw values (``LabelTable.values``; None: unlabelled) to the label columns.

    Work units carry the raw tuple and the file's name and source; the worker calls this.

    Raises:
        SampleError: a value outside the vocabulary (stage ``labels``), naming ``file`` and the column.
    """
    if raw is None:
        return {column_name(obs): None for obs in OBSERVATIONS}
    return {column_name(obs): MENTION.map(source, value, item=item, column=f"{file}:{obs}") for obs, value in zip(OBSERVATIONS, raw)}
