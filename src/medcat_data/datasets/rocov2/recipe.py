"""ROCOv2: radiology figures with captions and UMLS concepts -> the image-text schema (``captions``).

One row per image, from either source, with the same features and ``sample_id``s:

* ``zenodo`` (the original release, record 10821435): ``<split>_captions.csv`` (``ID``,
  ``Caption``), ``<split>_concepts.csv`` and ``<split>_concepts_manual.csv`` (``ID``, ``CUIs``:
  ``;``-separated UMLS CUIs), ``cui_mapping.csv`` (``CUI``, ``Canonical name``),
  ``license_information.csv`` (``ID``, then ``PMCID``, ``Attribution``, ``Link`` where present) and
  ``<split>_images.zip`` holding ``<ID>.jpg``. The CSVs (a few MB) are read once while planning;
  the zips are indexed by member name (``converters.image_index``) and read in place in the
  workers, never extracted. Upstream splits are ``train``, ``valid`` and ``test``.
* ``hf`` (``eltorio/ROCOv2-radiology``): ``data/{train,validation,test}-*.parquet`` with ``image``
  ({bytes, path}), ``image_id``, ``caption`` and ``cui`` (a list of CUIs): one work unit per row
  group, read in small batches.

Columns: the image-text core (``image``, ``caption``, ``inline_mentions`` always empty: ROCOv2 has
no citing sentences; ``article_id`` the PMCID; ``figure_label`` null; ``license`` the CC code
found in the image's attribution, else null), then ``image_id`` (upstream's ID), ``cuis`` (the
concepts file's CUIs in upstream order, repeats dropped), ``cuis_manual`` (the manually curated
concepts: modality, and anatomy and direction for X-rays), ``cui_names`` (the canonical name of each
of ``cuis`` from ``cui_mapping.csv``), ``attribution`` and ``link`` (``license_information.csv``).
The Hub copy has no manual concepts, mapping or licence file: those columns are null there.

``sample_id`` is upstream's image ID in both sources (a repeat gets ``-<split><row>`` appended).
The split is upstream's, mapped through the registry's ``upstream_splits``; validation and test
are for evaluation and never move into train. A caption without its image, an empty caption
and undecodable image bytes are ``SampleError``s. This module reads local files only.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, List, Value

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster, load_raster_bytes
from medcat_data.converters.image_index import ImageIndex, LooseImage, build_image_index, derived_dir, walk_files
from medcat_data.converters.hub_parquet import RowGroupUnit, split_parquet
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext, require_columns
from medcat_data.converters.schemas import image_text_features
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError

log = logging.getLogger(__name__)

__all__ = ["EXTRA_COLUMNS", "RECIPE", "HfUnit", "Item", "Rocov2", "ZenodoUnit", "license_code", "split_cuis"]

DATASET_ID = "rocov2"
HfUnit = RowGroupUnit
CONFIG = "captions"
UNIT_ITEMS = 64
_HF_BATCH_ROWS = 32
"""Rows decoded at a time from a parquet row group (images included), bounding a worker's memory."""
MAPPING_NAME = "cui_mapping.csv"
LICENSE_NAME = "license_information.csv"
EXTRA_COLUMNS: dict[str, Any] = {
    "image_id": Value("string"),
    "cuis": List(Value("string")),
    "cuis_manual": List(Value("string")),
    "cui_names": List(Value("string")),
    "attribution": Value("string"),
    "link": Value("string"),
}
_LICENSE = re.compile(r"\bCC[ -]?BY((?:[ -](?:NC|SA|ND))*)(?:[ -](\d\.\d))?", re.IGNORECASE)


def split_cuis(value: str | None) -> tuple[str, ...]:
    """Return the CUIs of a ``;``-separated cell in upstream order, stripped, repeats and empties dropped."""
    return tuple(dict.fromkeys(c.strip() for c in (value or "").split(";") if c.strip()))


def license_code(attribution: str | None) -> str | None:
    """Return the Creative Commons code named in an attribution text (``CC BY-NC 4.0``), else None."""
    match = _LICENSE.search(attribution or "")
    if match is None:
        return None
    terms = "".join(f"-{term}" for term in re.findall(r"NC|SA|ND", match[1].upper()))
    return f"CC BY{terms}" + (f" {match[2]}" if match[2] else "")


@dataclass(frozen=True)
class Item:
    """One image of the Zenodo release, joined from its CSVs."""

    row: int
    image_id: str
    caption: str
    cuis: tuple[str, ...]
    cuis_manual: tuple[str, ...] | None
    cui_names: tuple[str, ...] | None
    pmcid: str | None
    attribution: str | None
    link: str | None


@dataclass(frozen=True)
class ZenodoUnit:
    """A run of images of one split; images are looked up by ``<ID>.jpg`` in the index."""

    config: str
    source_tag: str
    image: ImageOptions
    index: ImageIndex
    split: str
    captions: str
    items: tuple[Item, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.config}@{self.split}:{self.items[0].row if self.items else 0}"


@dataclass(frozen=True)
class Survey:
    """Zenodo: the joined items per (upstream split, our split) and the image index; hf: parquet files per split."""

    items: Mapping[tuple[str, str], list[Item]]
    index: ImageIndex | None
    parquet: Mapping[str, list[Path]]
    captions: Mapping[str, str]


# ------------------------------------------------------------------------------------- reading


def _read_csv(ctx: RecipeContext, path: Path, need: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        require_columns(ctx, path, reader.fieldnames or [], need)
        return list(reader)


def _by_id(ctx: RecipeContext, path: Path, value: str) -> dict[str, str]:
    return {(r.get("ID") or "").strip(): r.get(value) or "" for r in _read_csv(ctx, path, ("ID", value))} if ctx.has(path) else {}


def _zenodo_survey(ctx: RecipeContext, splits: Mapping[str, str]) -> Survey:
    folder = ctx.source_dir
    mapping: dict[str, str] = {}
    if ctx.has(folder / MAPPING_NAME):
        mapping = {r["CUI"].strip(): r["Canonical name"] for r in _read_csv(ctx, folder / MAPPING_NAME, ("CUI", "Canonical name"))}
    licences: dict[str, dict[str, str]] = {}
    if ctx.has(folder / LICENSE_NAME):
        licences = {(r.get("ID") or "").strip(): r for r in _read_csv(ctx, folder / LICENSE_NAME, ("ID",))}
    items: dict[tuple[str, str], list[Item]] = {}
    captions: dict[str, str] = {}
    for upstream, ours in splits.items():
        path = folder / f"{upstream}_captions.csv"
        if not ctx.has(path):
            continue
        captions[upstream] = ctx.rel(path)
        concepts = _by_id(ctx, folder / f"{upstream}_concepts.csv", "CUIs")
        manual_path = folder / f"{upstream}_concepts_manual.csv"
        manual = _by_id(ctx, manual_path, "CUIs")
        joined = []
        for row, record in enumerate(_read_csv(ctx, path, ("ID", "Caption"))):
            image_id = (record.get("ID") or "").strip()
            cuis = split_cuis(concepts.get(image_id))
            licence = licences.get(image_id, {})
            joined.append(Item(
                row, image_id, (record.get("Caption") or "").strip(), cuis,
                split_cuis(manual.get(image_id)) if ctx.has(manual_path) else None,
                tuple(mapping.get(c, "") for c in cuis) if mapping else None,
                _text(licence.get("PMCID")), _text(licence.get("Attribution")), _text(licence.get("Link")),
            ))
        items[(upstream, ours)] = joined
    parts = [p for p in walk_files(folder, ctx.has) if p.name.endswith("_images.zip")]
    loose = (p for p in walk_files(folder, ctx.has) if p.suffix.lower() in (".jpg", ".jpeg"))
    index = build_image_index(folder, derived_dir(ctx.root), prefix=DATASET_ID, loose=loose, parts=parts)
    return Survey(items, index, {}, captions)


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


# ------------------------------------------------------------------------------------- recipe


class Rocov2(Recipe[Survey, "ZenodoUnit | HfUnit"]):
    """ROCOv2 from either source into one ``captions`` config (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = (CONFIG,)

    def survey(self, ctx: RecipeContext) -> Survey:
        """Read the Zenodo CSVs and index the image zips, or else find the Hub's parquet files.

        Raises:
            UsageError: neither layout was fetched.
        """
        splits = ctx.splits_of(CONFIG)
        if any(ctx.has(ctx.source_dir / f"{upstream}_captions.csv") for upstream in splits):
            return _zenodo_survey(ctx, splits)
        parquet = split_parquet(ctx, splits)
        if parquet:
            return Survey({}, None, parquet, {})
        raise UsageError(
            f"{DATASET_ID}: found neither train/valid/test_captions.csv (source zenodo) nor data/<split>-*.parquet "
            f"(source hf) under {ctx.source_dir}. Run `medcat fetch {DATASET_ID} --source {ctx.source}` first."
        )

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the image-text schema with the concept and attribution columns, for either source."""
        self.check_config(config)
        return image_text_features(EXTRA_COLUMNS)

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[ZenodoUnit | HfUnit]:
        """List the work units of whichever layout the source folder holds."""
        self.check_config(config)
        if survey.index is not None:
            return Plan(_plan_zenodo(config, ctx, survey, survey.index))
        return Plan(_plan_hf(config, ctx, survey.parquet))

    def convert_unit(self, unit: ZenodoUnit | HfUnit) -> Iterator[Row | SampleError]:
        return _convert_zenodo(unit) if isinstance(unit, ZenodoUnit) else _convert_hf(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        notes = [
            "Splits are upstream's (train, valid as validation, test); validation and test are for evaluation only: "
            "never train on them. sample_id is upstream's image ID, equal across the zenodo and hf sources.",
            "cuis are the automatically extracted UMLS concepts (upstream order); cuis_manual the manually curated "
            "modality (and, for X-rays, anatomy and direction) concepts. inline_mentions is empty and figure_label "
            "null: ROCOv2 has neither.",
            "Each image keeps its article's licence (CC BY or CC BY-NC per the authors): attribution and link come "
            "from license_information.csv, license is the CC code found in the attribution (null when none is named). "
            "The dataset-level licence is stated differently by different copies; see the registry notes.",
        ]
        if survey.index is None:
            notes.append("Source hf: cuis from the parquet's cui column; cuis_manual, cui_names, article_id, "
                         "attribution, link and license are null (the Hub copy has image, image_id, caption and cui only).")
        else:
            counts = ", ".join(f"{ours} {len(items)}" for (_, ours), items in survey.items.items())
            notes.append(f"Captions listed per split: {counts}.")
        return notes


def _plan_zenodo(config: str, ctx: RecipeContext, survey: Survey, index: ImageIndex) -> Iterator[ZenodoUnit]:
    remaining = ctx.options.limit
    for (upstream, ours), items in survey.items.items():
        chosen = items if remaining is None else items[: max(remaining, 0)]
        if remaining is not None:
            remaining -= len(chosen)
        for i in range(0, len(chosen), UNIT_ITEMS):
            yield ZenodoUnit(config, ctx.source_tag, ctx.options.image, index, ours, survey.captions[upstream],
                             tuple(chosen[i : i + UNIT_ITEMS]))


def _plan_hf(config: str, ctx: RecipeContext, parquet: Mapping[str, list[Path]]) -> list[HfUnit]:
    import pyarrow.parquet as pq

    splits = ctx.splits_of(config)
    units: list[HfUnit] = []
    used: set[str] = set()
    remaining = ctx.options.limit
    for upstream, paths in parquet.items():
        split = splits[upstream]
        for path in paths:
            pf = pq.ParquetFile(path)
            _check_parquet_columns(ctx, pf, path)
            first = 0
            for group in range(pf.num_row_groups):
                if remaining is not None and remaining <= 0:
                    break
                rows = pf.metadata.row_group(group).num_rows
                names = pf.read_row_group(group, columns=["image_id"]).column("image_id").to_pylist()
                if remaining is not None:
                    names = names[:remaining]
                    remaining -= len(names)
                ids = []
                for offset, name in enumerate(names):
                    sample_id = _text(name) or f"{split}-{first + offset}"
                    if sample_id in used:
                        sample_id = f"{sample_id}-{split}{first + offset}"
                    used.add(sample_id)
                    ids.append(sample_id)
                units.append(HfUnit(config, ctx.source_tag, ctx.options.image, path, ctx.rel(path), split, group, first, tuple(ids)))
                first += rows
    return units


def _check_parquet_columns(ctx: RecipeContext, pf: Any, path: Path) -> None:
    """Check the Hub copy's columns and that ``image`` is the Hub's {bytes, path} struct.

    Raises:
        UpstreamFormatError: a column is missing or ``image`` is not a struct with ``bytes``.
    """
    schema = pf.schema_arrow
    require_columns(ctx, path, schema.names, ("image", "image_id", "caption", "cui"))
    kind = schema.field("image").type
    if not (hasattr(kind, "get_field_index") and kind.get_field_index("bytes") >= 0):
        raise UpstreamFormatError(DATASET_ID, ctx.rel(path), f"has an image column of type {kind}, not the Hub's struct of bytes and path")


def _row(unit: ZenodoUnit | HfUnit, data: bytes, image_id: str, caption: str, values: dict[str, Any]) -> Row:
    row = {
        "image": {"bytes": data, "path": f"{image_id}.jpg"},
        "caption": caption,
        "inline_mentions": [],
        "article_id": values.pop("article_id", None),
        "figure_label": None,
        "license": license_code(values.get("attribution")),
        "source": unit.source_tag,
        "sample_id": values.pop("sample_id"),
        "split": unit.split,
        "image_id": image_id,
    }
    row.update(values)
    return Row(unit.config, unit.split, row)


def _convert_zenodo(unit: ZenodoUnit) -> Iterator[Row | SampleError]:
    with unit.index.open() as lookup:
        for item in unit.items:
            name = f"{item.image_id}.jpg"
            try:
                if not item.image_id or not item.caption:
                    raise SampleError(f"{unit.captions}#{item.row}", "parse", f"ID {item.image_id!r}: no ID or an empty caption")
                found = lookup.find(name)
                if found is None:
                    raise SampleError(name, "read", f"{item.image_id}: no {name} in the fetched image zips or folders")
                if isinstance(found, LooseImage):
                    data = load_raster(found.path, unit.image).data
                else:
                    data = load_raster_bytes(lookup.read_member(found), found.label, unit.image).data
            except SampleError as err:
                yield err
                continue
            yield _row(unit, data, item.image_id, item.caption, {
                "sample_id": item.image_id,
                "article_id": item.pmcid,
                "cuis": list(item.cuis),
                "cuis_manual": None if item.cuis_manual is None else list(item.cuis_manual),
                "cui_names": None if item.cui_names is None else list(item.cui_names),
                "attribution": item.attribution,
                "link": item.link,
            })


def _convert_hf(unit: HfUnit) -> Iterator[Row | SampleError]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(unit.path)
    batches = pf.iter_batches(batch_size=_HF_BATCH_ROWS, row_groups=[unit.row_group], columns=["image", "image_id", "caption", "cui"])
    cells = (cell for batch in batches for cell in batch.to_pylist())
    for offset, (sample_id, cell) in enumerate(zip(unit.sample_ids, cells)):
        label = f"{unit.rel}#{unit.first_row + offset}"
        image_id, caption = _text(cell.get("image_id")) or sample_id, _text(cell.get("caption"))
        data = (cell.get("image") or {}).get("bytes")
        try:
            if caption is None:
                raise SampleError(label, "parse", f"ID {image_id!r}: empty caption")
            if not data:
                raise SampleError(label, "read", "the image cell holds no bytes")
            image = load_raster_bytes(data, label, unit.image).data
        except SampleError as err:
            yield err
            continue
        cuis = [c for c in dict.fromkeys(str(c).strip() for c in cell.get("cui") or []) if c]
        yield _row(unit, image, image_id, caption, {
            "sample_id": sample_id, "cuis": cuis, "cuis_manual": None, "cui_names": None, "attribution": None, "link": None,
        })


RECIPE = Rocov2()
