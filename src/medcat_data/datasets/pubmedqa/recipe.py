"""PubMedQA: PQA-L, PQA-U and PQA-A -> three text-qa configs, from the Hub parquet or the original JSON.

===================== ============================================= =========================
config                ``hf`` (``qiaojin/PubMedQA``)                  original files
===================== ============================================= =========================
``pqa-labeled``       ``pqa_labeled/train-*.parquet``                ``data/ori_pqal.json`` (GitHub)
``pqa-unlabeled``     ``pqa_unlabeled/train-*.parquet``              ``ori_pqau.json`` (Drive, ``--source pqa-u``)
``pqa-artificial``    ``pqa_artificial/train-*.parquet``             ``ori_pqaa.json`` (Drive, ``--source pqa-a``)
===================== ============================================= =========================

The original files are one JSON object keyed by PMID with ``QUESTION``, ``CONTEXTS``, ``LABELS``,
``MESHES``, ``YEAR``, ``LONG_ANSWER``, ``final_decision`` (and, in PQA-L, ``reasoning_required_pred``
and ``reasoning_free_pred``); they are read one member at a time (``json_stream``). The Hub copy
has ``pubid``, ``question``, ``context`` (a struct of lists holding ``contexts``, ``labels``,
``meshes`` and, for PQA-L, the two reasoning predictions), ``long_answer`` and ``final_decision``;
no year. Only the configs whose file was fetched are built.

Columns: ``question``; ``options`` always ``yes``, ``no``, ``maybe`` (key = text); ``answer`` the
decision and ``answer_idx`` its position (both null in PQA-U, which has none); ``explanation`` and
``subject`` null; then ``pubid`` (the PMID, a string), ``contexts`` (the abstract without its
conclusion, one paragraph each), ``context_labels`` (their section labels, aligned), ``meshes``,
``year`` (null from ``hf``), ``long_answer`` (the abstract's conclusion) and the two reasoning
predictions (PQA-L only). ``sample_id`` is ``<config>/<PMID>`` in both sources.

Splits: ``pqa-labeled`` test is the 500 PMIDs of ``data/test_ground_truth.json`` (the companion
``official-split``, fetched with every source), train the other 500; the other configs are one
train split. A record without a question, with contexts that are not a list of strings, or with a
decision outside yes/no/maybe is a ``SampleError``; a file that stops being JSON is one error for
the rest of that file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.hub_parquet import row_group_cells, row_group_spans
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import text_qa_features
from medcat_data.converters.units import Row
from medcat_data.datasets.pubmedqa.json_stream import MalformedJson, iter_members
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

log = logging.getLogger(__name__)

__all__ = ["DECISIONS", "RECIPE", "JsonUnit", "ParquetUnit", "PubMedQA", "Survey", "record_values"]

DATASET_ID = "pubmedqa"
LABELED, UNLABELED, ARTIFICIAL = "pqa-labeled", "pqa-unlabeled", "pqa-artificial"
DECISIONS = ("yes", "no", "maybe")
JSON_FILES = {LABELED: "ori_pqal.json", UNLABELED: "ori_pqau.json", ARTIFICIAL: "ori_pqaa.json"}
HUB_FOLDERS = {LABELED: "pqa_labeled", UNLABELED: "pqa_unlabeled", ARTIFICIAL: "pqa_artificial"}
SPLIT_FILE = "test_ground_truth.json"
_BATCH_ROWS = 256
_HUB_COLUMNS = ("pubid", "question", "context", "long_answer", "final_decision")

COLUMN_DESCRIPTIONS: Mapping[str, str] = {
    "pubid": "PubMed id (PMID) of the abstract, as a string.",
    "contexts": "The abstract without its conclusion, one paragraph per item (upstream CONTEXTS).",
    "context_labels": "Section label of each context paragraph (BACKGROUND, METHODS, RESULTS...), aligned with contexts.",
    "meshes": "MeSH terms of the article.",
    "year": "Publication year as upstream wrote it (null from the Hub copy, which drops it, and for 58 PQA-L records).",
    "long_answer": "The abstract's conclusion, the 'long answer' from which the decision was made.",
    "reasoning_required_pred": "PQA-L annotator's decision when reasoning over the contexts (yes/no/maybe); null elsewhere.",
    "reasoning_free_pred": "PQA-L annotator's decision reading the long answer (yes/no/maybe); null elsewhere.",
}
CONFIG_HINTS: Mapping[str, str] = {
    UNLABELED: "PQA-U is on Google Drive: run `medcat fetch pubmedqa --source pqa-u` (or normalize --source hf).",
    ARTIFICIAL: "PQA-A is on Google Drive: run `medcat fetch pubmedqa --source pqa-a` (or normalize --source hf).",
}


@dataclass(frozen=True)
class JsonUnit:
    """One original JSON file (read member by member), with the official test PMIDs."""

    config: str
    path: Path
    rel: str
    source_tag: str
    test_pmids: frozenset[str]
    limit: int | None

    @property
    def name(self) -> str:
        return f"{self.config}/{self.rel}"


@dataclass(frozen=True)
class ParquetUnit:
    """The first ``rows`` rows of one row group of a Hub parquet file."""

    config: str
    path: Path
    rel: str
    source_tag: str
    test_pmids: frozenset[str]
    row_group: int
    first_row: int
    rows: int

    @property
    def name(self) -> str:
        return f"{self.config}/{self.rel}:{self.row_group}"


@dataclass(frozen=True)
class Survey:
    """The file of each config found (all JSON or all parquet) and the official test PMIDs, if fetched."""

    files: Mapping[str, Path]
    parquet: bool
    test_pmids: frozenset[str] | None


# ------------------------------------------------------------------------------------- finding


def _find(ctx: RecipeContext, name: str, folders: Sequence[Path]) -> Path | None:
    """Return the shallowest fetched file called ``name`` under any of ``folders``."""
    found: list[Path] = []
    for folder in dict.fromkeys(folders):
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            if name in filenames and ctx.has(Path(dirpath) / name):
                found.append(Path(dirpath) / name)
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


def _hub_files(ctx: RecipeContext) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for config, folder in HUB_FOLDERS.items():
        files = sorted(p for p in ctx.source_dir.glob(f"**/{folder}/train-*.parquet") if ctx.has(p))
        if files:
            found[config] = files[0]
    return found


def read_test_pmids(path: Path, label: str) -> frozenset[str]:
    """Return the PMIDs of ``test_ground_truth.json`` (an object PMID -> decision).

    Raises:
        UpstreamFormatError: the file is not a JSON object.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError as err:
        raise UpstreamFormatError(DATASET_ID, label, f"is not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise UpstreamFormatError(DATASET_ID, label, "is not a JSON object of PMID -> decision")
    return frozenset(str(k) for k in data)


# ------------------------------------------------------------------------------------- one record


def record_values(
    config: str, pmid: str, fields: Mapping[str, Any], label: str, test_pmids: frozenset[str], source_tag: str
) -> Row:
    """Return the row of one record given in the original JSON's field names.

    Raises:
        SampleError: no question, contexts/labels/meshes that are not lists of strings, or a
            decision outside yes/no/maybe (required in PQA-L and PQA-A).
    """
    question = fields.get("QUESTION")
    if not isinstance(question, str) or not question.strip():
        raise SampleError(label, "parse", "no QUESTION")
    lists = {key: _strings(fields.get(key), key, label) for key in ("CONTEXTS", "LABELS", "MESHES")}
    decision = fields.get("final_decision")
    if config == UNLABELED:
        decision = None
    elif decision not in DECISIONS:
        raise SampleError(label, "parse", f"final_decision {decision!r} is not one of yes, no, maybe")
    split = "test" if config == LABELED and pmid in test_pmids else "train"
    reasoning = {key: _reasoning(fields.get(key), key, label) if config == LABELED else None
                 for key in ("reasoning_required_pred", "reasoning_free_pred")}
    values: dict[str, Any] = {
        "question": question,
        "options": [{"key": d, "text": d} for d in DECISIONS],
        "answer_idx": None if decision is None else DECISIONS.index(decision),
        "answer": decision,
        "explanation": None,
        "subject": None,
        "source": source_tag,
        "sample_id": f"{config}/{pmid}",
        "split": split,
        "pubid": pmid,
        "contexts": lists["CONTEXTS"],
        "context_labels": lists["LABELS"],
        "meshes": lists["MESHES"],
        "year": None if fields.get("YEAR") is None else str(fields["YEAR"]),
        "long_answer": None if fields.get("LONG_ANSWER") is None else str(fields["LONG_ANSWER"]),
        **reasoning,
    }
    return Row(config, split, values)


def _strings(value: Any, key: str, label: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SampleError(label, "parse", f"{key} must be a list of strings, got {type(value).__name__}")
    return value


def _reasoning(value: Any, key: str, label: str) -> str | None:
    """Return a reasoning prediction; a list (the Hub's sequence encoding) is joined, character lists included."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        value = "".join(value)
    if value is None or value == "":
        return None
    if value not in DECISIONS:
        raise SampleError(label, "parse", f"{key} {value!r} is not one of yes, no, maybe")
    return str(value)


def _hub_fields(cell: Mapping[str, Any]) -> dict[str, Any]:
    """Map a Hub row to the original JSON's field names."""
    context = cell.get("context") or {}
    return {
        "QUESTION": cell.get("question"),
        "CONTEXTS": context.get("contexts"),
        "LABELS": context.get("labels"),
        "MESHES": context.get("meshes"),
        "YEAR": None,
        "LONG_ANSWER": cell.get("long_answer"),
        "final_decision": cell.get("final_decision"),
        "reasoning_required_pred": context.get("reasoning_required_pred"),
        "reasoning_free_pred": context.get("reasoning_free_pred"),
    }


# ------------------------------------------------------------------------------------- recipe


class PubMedQA(Recipe[Survey, "JsonUnit | ParquetUnit"]):
    """PubMedQA's three sets from the Hub parquet or the original JSON (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = (LABELED, UNLABELED, ARTIFICIAL)
    COLUMN_DESCRIPTIONS = COLUMN_DESCRIPTIONS
    CONFIG_HINTS = CONFIG_HINTS

    def survey(self, ctx: RecipeContext) -> Survey:
        """Find each config's file (Hub parquet, else original JSON) and read the official test PMIDs.

        Raises:
            UsageError: no file of any config was fetched.
        """
        folders = [ctx.source_dir, *ctx.companions.values()]
        split_file = _find(ctx, SPLIT_FILE, folders)
        test_pmids = read_test_pmids(split_file, ctx.rel(split_file)) if split_file else None
        hub = _hub_files(ctx)
        if hub:
            return Survey(hub, True, test_pmids)
        found = {config: _find(ctx, name, folders) for config, name in JSON_FILES.items()}
        files = {config: path for config, path in found.items() if path is not None}
        if not files:
            raise UsageError(
                f"{DATASET_ID}: found neither pqa_*/train-*.parquet (source hf) nor data/ori_pqal.json (source github) "
                f"under {ctx.source_dir}. Run `medcat fetch {DATASET_ID} --source {ctx.source}` first."
            )
        return Survey(files, False, test_pmids)

    def configs(self, ctx: RecipeContext, survey: Survey) -> Sequence[str]:
        """Return the configs whose file this fetch holds."""
        return [c for c in self.CONFIGS if c in survey.files]

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return text-qa with PubMedQA's columns, the same for every config and source."""
        self.check_config(config)
        strings = List(Value("string"))
        return text_qa_features({
            "pubid": Value("string"), "contexts": strings, "context_labels": strings, "meshes": strings,
            "year": Value("string"), "long_answer": Value("string"),
            "reasoning_required_pred": Value("string"), "reasoning_free_pred": Value("string"),
        })

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[JsonUnit | ParquetUnit]:
        """Return one unit per JSON file, or one per parquet row group.

        Raises:
            UsageError: the config's file was not fetched, or PQA-L without the official split list.
        """
        self.check_config(config)
        path = survey.files.get(config)
        if path is None:
            raise UsageError(f"{DATASET_ID}: no file of config {config} in this fetch. {CONFIG_HINTS.get(config, '')}".strip())
        if config == LABELED and survey.test_pmids is None:
            raise UsageError(f"{DATASET_ID}: {config} needs data/{SPLIT_FILE} for its official test split; "
                             f"run `medcat fetch {DATASET_ID} --source official-split`.")
        pmids = survey.test_pmids if config == LABELED and survey.test_pmids is not None else frozenset()
        if not survey.parquet:
            return Plan([JsonUnit(config, path, ctx.rel(path), ctx.source_tag, pmids, ctx.options.limit)])
        return Plan(_parquet_units(config, ctx, path, pmids))

    def convert_unit(self, unit: JsonUnit | ParquetUnit) -> Iterator[Row | SampleError]:
        """Yield one row per record; a bad record is a ``SampleError`` and the file goes on."""
        return _json_rows(unit) if isinstance(unit, JsonUnit) else _parquet_rows(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """Say which split is for evaluation, where it comes from, and what each source leaves null."""
        listed = "no test_ground_truth.json was fetched" if survey.test_pmids is None else f"{len(survey.test_pmids)} PMIDs listed"
        notes = [
            f"pqa-labeled test is the official evaluation split: the PMIDs of data/{SPLIT_FILE} ({listed}); "
            "train is the rest of PQA-L (upstream's 10-fold cross-validation pool). Never train on test. "
            "pqa-unlabeled and pqa-artificial are training data, one train split each.",
            "options are always yes, no, maybe; answer is final_decision and answer_idx its position; pqa-unlabeled has "
            "no decision (both null). long_answer is the abstract's conclusion; explanation and subject are null.",
            "sample_id is <config>/<PMID> from every source.",
        ]
        if survey.parquet:
            notes.append("Source hf: year is null (the Hub copy drops YEAR); the reasoning predictions are read from "
                         "the context struct, a list of characters joined back into the word.")
        return notes


def _parquet_units(config: str, ctx: RecipeContext, path: Path, pmids: frozenset[str]) -> list[JsonUnit | ParquetUnit]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    require_columns(ctx, path, pf.schema_arrow.names, ("pubid", "question", "context", "long_answer"))
    sizes = [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)]
    return [
        ParquetUnit(config, path, ctx.rel(path), ctx.source_tag, pmids, group, first, rows)
        for group, first, rows in row_group_spans(sizes, ctx.options.limit)
    ]


def _json_rows(unit: JsonUnit) -> Iterator[Row | SampleError]:
    members = iter_members(unit.path)
    count = 0
    while unit.limit is None or count < unit.limit:
        try:
            pmid, fields = next(members)
        except StopIteration:
            return
        except (MalformedJson, UnicodeDecodeError) as err:
            yield SampleError(unit.rel, "parse", f"{err}; the rest of the file is not read")
            return
        count += 1
        label = f"{unit.rel}#{pmid}"
        if not isinstance(fields, dict):
            yield SampleError(label, "parse", f"expected an object, got {type(fields).__name__}")
            continue
        try:
            yield record_values(unit.config, pmid, fields, label, unit.test_pmids, unit.source_tag)
        except SampleError as err:
            yield err


def _parquet_rows(unit: ParquetUnit) -> Iterator[Row | SampleError]:
    for offset, cell in row_group_cells(unit.path, unit.row_group, unit.rows, _HUB_COLUMNS, _BATCH_ROWS):
        label = f"{unit.rel}#{unit.first_row + offset}"
        try:
            if cell.get("pubid") is None:
                raise SampleError(label, "parse", "no pubid")
            yield record_values(unit.config, str(cell["pubid"]), _hub_fields(cell), label, unit.test_pmids, unit.source_tag)
        except SampleError as err:
            yield err


RECIPE = PubMedQA()
