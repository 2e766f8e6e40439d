"""PMC Open Access subset -> image-text (``figures``): one row per ``<fig>`` of each article's JATS XML.

Inputs are what ``medcat fetch pmc-oa`` leaves (the per-article cloud layout): the metadata
records ``metadata/PMC<id>.<version>.json`` (licence, ids, retraction) and, per article version,
``PMC<id>.<version>/PMC<id>.<version>.xml`` with its media files. Only the newest fetched version
of each article is used. Articles are converted one by one, ``UNIT_ARTICLES`` to a work unit.

Per figure (``<fig>``, also each ``<fig>`` inside a ``<fig-group>``):

* ``image``: the ``.jpg`` (or ``.jpeg``) whose stem matches ``graphic/@xlink:href`` (the href
  often has no extension, or names the original ``.tif``); never the small ``.gif`` thumbnail. A
  figure with only its ``.gif``, or with no file at all, is a ``SampleError`` (stage ``read``).
  The bytes are passed through after a structural check (``read_figure``), not decoded.
* ``caption``: the caption's title and paragraphs, whitespace collapsed; ``figure_label`` the
  ``<label>``; ``figure_id`` the ``@id`` (``fig-<n>`` when absent, n 1-based in document order).
* ``inline_mentions``: the body sentences holding an ``<xref ref-type="fig">`` whose ``rid`` list
  (space-separated ids) names the figure, or its enclosing ``<fig-group>``; in document order,
  each once. Sentences are split at ``.``/``!``/``?`` + space + a capital, digit or bracket,
  except after common abbreviations (``Fig.``, ``e.g.``, ``et al.``; see ``ABBREVIATIONS``).
  Captions, tables and the reference list are not body text.
* ``article_id`` (``PMC<id>``), ``article_version``, ``pmid``, ``doi``, ``license`` (the record's
  ``license_code``, else the code of the first creativecommons.org link in the XML's
  ``permissions``: ``license/@xlink:href``, ``ali:license_ref``, a link in the licence text; see
  ``license_code``), ``commercial_use`` (CC BY or CC0: the Commercial Use Collection), ``retracted``
  (retracted articles are kept, flagged). ``license/@license-type`` (``open-access``) is not a
  licence and a licence sentence is not a code: without a link, ``license`` and ``commercial_use``
  are null. An article whose licence comes from its XML is sorted into its subset once read.

``--option articles=FILE`` (``PMC123`` or ``PMC123.2`` a line), ``--option subset=commercial|noncommercial``
(the options of the fetch side's ``PmcOptions``) and ``--limit N`` (articles) select articles as
``medcat fetch`` does. The JATS XML is read by ``jats.py`` (lxml, no DTD loading, no network,
no entity resolution).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, Value

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import image_text_features
from medcat_data.converters.units import Row
from medcat_data.datasets.pmc_oa.jats import extract_figures
from medcat_data.errors import SampleError, UsageError
from medcat_data.loaders.transports.pmc import PmcOptions, is_commercial, read_article_list

__all__ = ["DATASET_ID", "RECIPE", "ArticleBatch", "ArticleUnit", "PmcOa", "Record", "convert_article", "match_image", "read_figure"]

DATASET_ID = "pmc-oa"
SPLIT = "train"
UNIT_ARTICLES = 32
"""Articles per work unit."""

IMAGE_EXTENSIONS = (".jpg", ".jpeg")
"""Figure files PMC converts for the web; ``.gif`` is the thumbnail and never used."""
_MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + (".gif",)
_META_NAME = re.compile(r"^(PMC\d+)\.(\d+)\.json$")


def match_image(href: str | None, files: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Return ``(image file name, reason it failed)`` for a graphic href among an article's files.

    ``files`` maps lower-case names to real names. The href's directory and extension are ignored;
    the stem is matched case-insensitively to a ``.jpg``/``.jpeg``.
    """
    if not href:
        return None, "the figure has no graphic/@xlink:href"
    base = href.rsplit("/", 1)[-1]
    stem = base.lower()
    root, dot, ext = stem.rpartition(".")
    stems = [stem] + ([root] if dot and 1 <= len(ext) <= 4 else [])
    for candidate in stems:
        for extension in IMAGE_EXTENSIONS:
            name = files.get(candidate + extension)
            if name is not None:
                return name, None
    if any(candidate + ".gif" in files for candidate in stems):
        return None, f"only the .gif thumbnail of {base!r} is present; its .jpg is missing"
    return None, f"no .jpg file matches graphic href {base!r}"


def read_figure(path: Path, options: ImageOptions) -> bytes:
    """Return a figure's JPEG bytes, verbatim, after a structural check; re-encoded only when asked.

    The bytes were md5-verified against the article's metadata record at fetch, so the pixels are
    not decoded here (decoding cost more than everything else per figure): the start-of-image and
    end-of-image markers are checked instead, which catches truncated and non-JPEG files. With
    ``--max-size`` or another output format the image goes through ``codecs.raster``.

    Raises:
        SampleError: ``read`` (cannot read) or ``decode`` (not a complete JPEG).
    """
    if options.max_size is not None or options.output_format not in (None, "jpeg"):
        return load_raster(path, options).data
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SampleError(path.name, "read", f"cannot read the figure: {err.strerror}") from err
    if data[:3] != b"\xff\xd8\xff" or data.rstrip(b"\0\r\n ")[-2:] != b"\xff\xd9":
        raise SampleError(path.name, "decode", "not a complete JPEG (start or end-of-image marker missing)")
    return data


# ----------------------------------------------------------------------------- recipe


@dataclass(frozen=True)
class ArticleUnit:
    """One article version: its XML, media folder and the metadata the rows carry.

    Work units are ``ArticleBatch``es of consecutive articles (per-unit costs of the executor and
    writer are then shared by ``UNIT_ARTICLES`` articles); each article is converted on its own.
    """

    config: str
    prefix: str
    xml: str
    folder: str
    media: tuple[str, ...]
    source_tag: str
    image: ImageOptions
    meta: Mapping[str, Any] = field(default_factory=dict)
    subset: str | None = None
    """The subset option still to apply: the record names no licence, the XML decides."""

    @property
    def name(self) -> str:
        return self.prefix


@dataclass(frozen=True)
class _BrokenUnit(ArticleUnit):
    """An article whose metadata record could not be read while planning."""

    error: SampleError | None = None


@dataclass(frozen=True)
class ArticleBatch:
    """A work unit: consecutive articles (PMCID order), converted one after the other."""

    config: str
    articles: tuple[ArticleUnit, ...]

    @property
    def name(self) -> str:
        return f"{self.config}@{self.articles[0].prefix}" if self.articles else self.config


@dataclass(frozen=True)
class Record:
    """The metadata record of one article version."""

    prefix: str
    pmcid: str
    version: int
    path: Path


class PmcOa(Recipe[list[Record], ArticleBatch]):
    """PMC Open Access articles into one ``figures`` config (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("figures",)
    Options = PmcOptions

    def survey(self, ctx: RecipeContext) -> list[Record]:
        """Return the metadata records of the selected articles (``articles`` option, else the newest of each).

        Raises:
            UsageError: no ``metadata/`` folder was fetched, or the article list cannot be read.
        """
        records = _records(ctx)
        articles = ctx.extra(PmcOptions).articles
        if articles is None:
            return records
        by_id = {r.pmcid: r for r in records}
        versions = {r.prefix for r in records}
        selected = []
        for ref in read_article_list(articles):
            if ref.version is None and ref.pmcid in by_id:
                selected.append(by_id[ref.pmcid])
            elif ref.version is not None and str(ref) in versions:
                # An older version named explicitly: its record file is on disk.
                selected.append(Record(str(ref), ref.pmcid, ref.version, ctx.source_dir / "metadata" / f"{ref}.json"))
        return selected

    def features(self, config: str, ctx: RecipeContext, survey: list[Record]) -> Features:
        """Return the image-text schema plus figure id, article version, PMID, DOI and licence flags."""
        self.check_config(config)
        return image_text_features({
            "figure_id": Value("string"),
            "article_version": Value("int32"),
            "pmid": Value("string"),
            "doi": Value("string"),
            "commercial_use": Value("bool"),
            "retracted": Value("bool"),
        })

    def plan(self, config: str, ctx: RecipeContext, survey: list[Record]) -> Plan[ArticleBatch]:
        """Return one unit per selected article (``articles``, ``subset`` options, ``--limit`` articles)."""
        self.check_config(config)
        subset = ctx.extra(PmcOptions).subset
        limit = ctx.options.limit
        units: list[ArticleUnit] = []
        not_fetched: list[str] = []
        for record in survey:
            if limit is not None and len(units) >= limit:
                break
            try:
                meta = _read_meta(record.path)
            except SampleError as err:
                units.append(_BrokenUnit(config, record.prefix, "", "", (), ctx.source_tag, ctx.options.image, {}, error=err))
                continue
            code = meta.get("license_code")
            commercial = is_commercial(str(code or ""))
            if subset is not None and code and commercial != (subset == "commercial"):
                continue
            xml = _xml_path(ctx, record, meta)
            if not ctx.has(xml):
                not_fetched.append(record.prefix)
                continue
            folder = xml.parent
            media = tuple(sorted(
                n for n in os.listdir(folder) if n.lower().endswith(_MEDIA_EXTENSIONS) and _usable(ctx, folder, n)
            ))
            units.append(ArticleUnit(
                config, record.prefix, str(xml), str(folder), media, ctx.source_tag, ctx.options.image,
                {
                    "pmcid": record.pmcid,
                    "version": record.version,
                    "pmid": _str(meta.get("pmid")),
                    "doi": _str(meta.get("doi")),
                    "license": _str(code),
                    "commercial_use": commercial if code else None,
                    "retracted": meta.get("is_retracted") if isinstance(meta.get("is_retracted"), bool) else None,
                },
                subset=None if code else subset,
            ))
        batches = [ArticleBatch(config, tuple(units[i : i + UNIT_ARTICLES])) for i in range(0, len(units), UNIT_ARTICLES)]
        return Plan(units=batches, not_fetched=not_fetched)

    def convert_unit(self, unit: ArticleBatch) -> Iterator[Row | SampleError]:
        """Yield one row per figure of each article; a figure without its ``.jpg`` is a ``SampleError``."""
        for article in unit.articles:
            yield from convert_article(article)

    def card_notes(self, ctx: RecipeContext, survey: list[Record]) -> list[str]:
        """Record how articles were selected and how figures, images and mentions were read."""
        options = ctx.extra(PmcOptions)
        chosen = []
        if options.articles:
            chosen.append(f"articles listed in {options.articles.name}")
        if options.subset:
            chosen.append(f"the {options.subset} subset (commercial = CC BY or CC0)")
        if ctx.options.limit is not None:
            chosen.append(f"the first {ctx.options.limit} article(s) in PMCID order")
        return [
            "Articles: the newest fetched version of each, " + (", ".join(chosen) if chosen else "all fetched") + ".",
            "One row per <fig> (panels inside <fig-group> included); the image is the .jpg matching "
            "graphic/@xlink:href, never the .gif thumbnail.",
            "inline_mentions: body sentences whose <xref ref-type=\"fig\"> rid list names the figure or its "
            "figure group (rule-based sentence split).",
            "Each row keeps its article's licence (the metadata record's license_code, else the code of the creativecommons.org "
            "link in the XML; null when neither names one); commercial_use is true for CC BY and CC0 only. Retracted "
            "articles are kept with retracted = true.",
        ]


RECIPE = PmcOa()


def _records(ctx: RecipeContext) -> list[Record]:
    """Return the newest fetched metadata record of each article, in PMCID order.

    Raises:
        UsageError: no ``metadata/`` folder under the source folder.
    """
    folder = ctx.source_dir / "metadata"
    if not folder.is_dir():
        raise UsageError(
            f"{ctx.dataset_id}: no metadata/ folder under {ctx.source_dir}; run `medcat fetch {ctx.dataset_id}` first "
            "(the per-article cloud layout; legacy .tar.gz packages are not read)."
        )
    newest: dict[str, Record] = {}
    for name in sorted(os.listdir(folder)):
        match = _META_NAME.match(name)
        if match is None or not _usable(ctx, folder, name):
            continue
        record = Record(f"{match[1]}.{match[2]}", match[1], int(match[2]), folder / name)
        if record.pmcid not in newest or newest[record.pmcid].version < record.version:
            newest[record.pmcid] = record
    return sorted(newest.values(), key=lambda r: (int(r.pmcid[3:]), r.version))


def _usable(ctx: RecipeContext, folder: Path, name: str) -> bool:
    """Tell whether a file just listed in ``folder`` may be used (``ctx.has`` without a stat when all may)."""
    if ctx.available is None:
        return True
    return ctx.has(folder / name)


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SampleError(path.name, "read", f"metadata record is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise SampleError(path.name, "read", "metadata record is not a JSON object")
    return value


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _xml_path(ctx: RecipeContext, record: Record, meta: Mapping[str, Any]) -> Path:
    url = meta.get("xml_url")
    if isinstance(url, str) and url.startswith("s3://"):
        key = url.split("?", 1)[0].split("/", 3)[-1]
        if key and ".." not in key.split("/"):
            return ctx.source_dir / key
    return ctx.source_dir / record.prefix / f"{record.prefix}.xml"


def convert_article(unit: ArticleUnit) -> Iterator[Row | SampleError]:
    """Yield one row per figure of one article; a figure without its ``.jpg`` is a ``SampleError``."""
    if isinstance(unit, _BrokenUnit):
        if unit.error is not None:
            yield unit.error
        return
    xml_path = Path(unit.xml)
    try:
        article = extract_figures(xml_path.read_bytes())
    except OSError as err:
        yield SampleError(f"{unit.prefix}/{xml_path.name}", "read", f"cannot read the article XML: {err.strerror}")
        return
    except SampleError as err:
        yield SampleError(f"{unit.prefix}/{xml_path.name}", err.stage, err.reason)
        return
    meta = unit.meta
    files = {name.lower(): name for name in unit.media}
    license_code = meta.get("license") or article.license
    commercial = meta.get("commercial_use")
    if commercial is None and license_code:
        commercial = is_commercial(str(license_code))
    if unit.subset is not None and bool(commercial) != (unit.subset == "commercial"):
        return  # no licence in the record: the XML's licence sorts the article into its subset
    for fig in article.figures:
        item = f"{unit.prefix}/{fig.figure_id}"
        name, reason = match_image(fig.href, files)
        if name is None:
            yield SampleError(item, "read", reason or "no image")
            continue
        try:
            data = read_figure(Path(unit.folder) / name, unit.image)
        except SampleError as err:
            yield SampleError(item, err.stage, err.reason)
            continue
        yield Row(unit.config, SPLIT, {
            "image": {"bytes": data, "path": name},
            "caption": fig.caption,
            "inline_mentions": list(fig.mentions),
            "article_id": meta.get("pmcid") or article.pmcid,
            "figure_label": fig.label,
            "license": license_code,
            "figure_id": fig.figure_id,
            "article_version": meta.get("version"),
            "pmid": meta.get("pmid") or article.pmid,
            "doi": meta.get("doi") or article.doi,
            "commercial_use": commercial,
            "retracted": meta.get("retracted"),
            "sample_id": item,
            "split": SPLIT,
        })
