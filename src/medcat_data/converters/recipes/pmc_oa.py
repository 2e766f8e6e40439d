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
  are null. An article whose licence comes from its XML is sorted into ``--subset`` once read.

``--articles FILE`` (``PMC123`` or ``PMC123.2`` a line), ``--subset commercial|noncommercial`` and
``--limit N`` (articles) select articles as ``medcat fetch`` does. XML is parsed with lxml with
no DTD loading, no network and no entity resolution.
"""

from __future__ import annotations

import bisect
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, Value
from lxml import etree

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.codecs.raster import load_raster
from medcat_data.converters.recipes.base import Plan, RecipeContext, check_config
from medcat_data.converters.schemas import image_text_features
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError
from medcat_data.loaders.transports.pmc import ArticleRef, is_commercial, read_article_list

__all__ = [
    "ABBREVIATIONS",
    "CONFIGS",
    "DATASET_ID",
    "EXTRA_OPTIONS",
    "ArticleBatch",
    "ArticleUnit",
    "Figure",
    "card_notes",
    "convert_article",
    "convert_unit",
    "extract_figures",
    "features",
    "license_code",
    "plan",
    "read_figure",
    "split_sentences",
]

DATASET_ID = "pmc-oa"
CONFIGS: tuple[str, ...] = ("figures",)
EXTRA_OPTIONS: tuple[str, ...] = ("articles", "subset")
SPLIT = "train"
UNIT_ARTICLES = 32
"""Articles per work unit."""

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"
CC_LICENSES = {
    "by": "CC BY", "by-sa": "CC BY-SA", "by-nd": "CC BY-ND", "by-nc": "CC BY-NC", "by-nc-sa": "CC BY-NC-SA",
    "by-nc-nd": "CC BY-NC-ND", "by-nd-nc": "CC BY-NC-ND",  # by-nd-nc: the 1.0 spelling of BY-NC-ND
}
"""creativecommons.org/licenses/<path> -> PMC's ``license_code`` spelling (no version, as the records write it)."""
_CC_LINK = re.compile(r"creativecommons\.org/(?:licenses/([a-z-]+)|publicdomain/(zero))(?![a-z-])", re.IGNORECASE)
IMAGE_EXTENSIONS = (".jpg", ".jpeg")
"""Figure files PMC converts for the web; ``.gif`` is the thumbnail and never used."""
_MEDIA_EXTENSIONS = IMAGE_EXTENSIONS + (".gif",)

#: Tokens (lower case, without their final period) after which a period does not end a sentence.
#: Frozen from the spellings common in biomedical prose; extend with care (each one joins sentences).
ABBREVIATIONS = frozenset({
    "fig", "figs", "e.g", "i.e", "al", "vs", "cf", "approx", "no", "nos", "eq", "eqs", "ref", "refs",
    "dr", "ca", "resp", "suppl", "sect", "sec", "tab", "vol", "ext", "mr", "ms", "st", "spp", "sp",
})
_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(\s+)(?=[A-Z0-9(\[\u201c\"])")
_LAST_TOKEN = re.compile(r"(\S+)$")
_META_NAME = re.compile(r"^(PMC\d+)\.(\d+)\.json$")

#: Elements whose paragraphs are not body text (their own figure text, tables, references).
_NOT_BODY = frozenset({"fig", "fig-group", "table-wrap", "caption", "ref-list", "front", "front-stub", "back"})

_PARSER = etree.XMLParser(
    load_dtd=False, no_network=True, resolve_entities=False, dtd_validation=False, huge_tree=False,
    remove_comments=True, remove_pis=True,
)


# ----------------------------------------------------------------------------- JATS extraction


@dataclass(frozen=True)
class Figure:
    """One ``<fig>``: ids, label, caption, graphic href and the sentences that cite it."""

    figure_id: str
    label: str | None
    caption: str
    href: str | None
    group_id: str | None
    mentions: tuple[str, ...]


@dataclass(frozen=True)
class ArticleXml:
    """What the XML says about the article (ids, licence) and its figures in document order."""

    pmcid: str | None
    pmid: str | None
    doi: str | None
    license: str | None
    figures: tuple[Figure, ...]


def _clean(text: str) -> str:
    return " ".join(text.split())


def _text(element: Any) -> str:
    return _clean("".join(element.itertext())) if element is not None else ""


def _block_text(element: Any) -> str:
    """Return an element's text with its block children (caption title, paragraphs) space-separated."""
    if element is None:
        return ""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            parts.append("".join(child.itertext()))
        parts.append(child.tail or "")
    return _clean(" ".join(parts))


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return ``(start, end)`` character spans of the sentences of ``text`` (spans cover the text).

    A sentence ends at ``.``, ``!`` or ``?`` (closing quotes or brackets included) followed by
    whitespace and a capital letter, digit or opening bracket, unless the word before the period
    is one of ``ABBREVIATIONS`` (``Fig. 2``, ``e.g. CT``, ``Smith et al. Reported``).
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if text[match.start()] == ".":
            token = _LAST_TOKEN.search(text, start, match.start())
            word = token[1].lstrip("([\"'\u201c").lower() if token else ""
            if word in ABBREVIATIONS:
                continue
        end = match.start(1)
        spans.append((start, end))
        start = match.end(1)
    if start < len(text) or not spans:
        spans.append((start, len(text)))
    return spans


def _flatten(p: Any) -> tuple[str, list[tuple[int, tuple[str, ...]]]]:
    """Return a paragraph's text and the ``(offset, rids)`` of its figure xrefs."""
    parts: list[str] = []
    marks: list[tuple[int, tuple[str, ...]]] = []
    offset = 0

    def walk(element: Any) -> None:
        nonlocal offset
        if element.text:
            parts.append(element.text)
            offset += len(element.text)
        for child in element:
            if not isinstance(child.tag, str):
                pass
            elif child.tag in _NOT_BODY:
                pass  # a figure or table inside a paragraph is not its prose
            else:
                if child.tag == "xref" and child.get("ref-type") == "fig":
                    marks.append((offset, tuple((child.get("rid") or "").split())))
                walk(child)
            if child.tail:
                parts.append(child.tail)
                offset += len(child.tail)

    walk(p)
    return "".join(parts), marks


def _citing_paragraphs(root: Any) -> list[Any]:
    """Return the body paragraphs holding a figure xref, in document order, each once.

    Found from the xrefs up (most paragraphs cite no figure), the outermost ``<p>`` of each.
    """
    found: dict[Any, None] = {}
    for xref in root.iter("xref"):
        if xref.get("ref-type") != "fig":
            continue
        paragraph = None
        for ancestor in xref.iterancestors():
            if ancestor.tag in _NOT_BODY:
                paragraph = None
                break
            if ancestor.tag == "p":
                paragraph = ancestor
        if paragraph is not None:
            found.setdefault(paragraph, None)
    return list(found)


def _mentions(root: Any) -> dict[str, list[tuple[int, str]]]:
    """Map each cited figure id to ``(order, sentence)`` pairs of the body sentences citing it."""
    found: dict[str, list[tuple[int, str]]] = {}
    order = 0
    for p in _citing_paragraphs(root):
        text, marks = _flatten(p)
        if not marks:
            continue
        spans = split_sentences(text)
        starts = [start for start, _ in spans]
        cited: dict[int, list[str]] = {}
        for offset, ids in marks:
            # The sentence that starts at or before the xref; the blank between two sentences
            # belongs to the next one (an xref may begin with a space).
            index = max(0, bisect.bisect_right(starts, offset) - 1)
            if offset >= spans[index][1] and index + 1 < len(spans):
                index += 1
            cited.setdefault(index, []).extend(ids)
        for index in sorted(cited):
            start, end = spans[index]
            sentence = _clean(text[start:end])
            order += 1
            for rid in dict.fromkeys(cited[index]):
                found.setdefault(rid, []).append((order, sentence))
    return found


def _article_id(root: Any, kinds: tuple[str, ...]) -> str | None:
    for element in root.iterfind("front/article-meta/article-id"):
        if element.get("pub-id-type") in kinds and (element.text or "").strip():
            return (element.text or "").strip()
    return None


def license_code(link: str) -> str | None:
    """Return the licence code (``CC BY-NC``, ``CC0`` ...) of a creativecommons.org link, or None.

    Any scheme, ``www.`` or not, any version and tail (``legalcode``, ``deed.en``); a Public Domain
    Mark or an unknown path is None, never guessed.
    """
    match = _CC_LINK.search(link)
    if match is None:
        return None
    return "CC0" if match[2] else CC_LICENSES.get(match[1].lower())


def _license(root: Any) -> str | None:
    """Return the code of the first creativecommons.org link in the article's permissions, or None.

    Links are read in document order from ``xlink:href`` attributes and ``ali:license_ref``, then
    from the licence text. ``license-type`` values (``open-access``) name no licence.
    """
    permissions = root.find("front/article-meta/permissions")
    if permissions is None:
        return None
    links = [
        link
        for element in permissions.iter()
        for link in (element.get(XLINK_HREF), element.text if element.tag == ALI_LICENSE_REF else None)
        if link
    ]
    links += [_text(element) for element in permissions.iter("license")]
    return next((code for code in map(license_code, links) if code), None)


def extract_figures(data: bytes) -> ArticleXml:
    """Parse one JATS article and return its ids, licence and figures (with their mentions).

    Raises:
        SampleError: the XML is not well-formed (stage ``parse``; path left empty for the caller).
    """
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as err:
        raise SampleError("", "parse", f"not well-formed XML: {err}") from err
    mentions = _mentions(root)
    figures = []
    for n, fig in enumerate(root.iter("fig"), 1):
        fig_id = fig.get("id") or f"fig-{n}"
        group = next((a for a in fig.iterancestors("fig-group")), None)
        group_id = group.get("id") if group is not None else None
        cited = list(mentions.get(fig_id, []))
        if group_id:
            cited += mentions.get(group_id, [])
        ordered = [s for _, s in sorted(set(cited))]
        graphic = next(fig.iter("graphic"), None)
        caption = fig.find("caption")
        label = _text(fig.find("label")) or None
        figures.append(
            Figure(
                figure_id=fig_id,
                label=label,
                caption=_block_text(caption),
                href=graphic.get(XLINK_HREF) if graphic is not None else None,
                group_id=group_id,
                mentions=tuple(dict.fromkeys(ordered)),
            )
        )
    return ArticleXml(
        pmcid=_article_id(root, ("pmc", "pmcid")),
        pmid=_article_id(root, ("pmid",)),
        doi=_article_id(root, ("doi",)),
        license=_license(root),
        figures=tuple(figures),
    )


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


# ----------------------------------------------------------------------------- recipe protocol


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
    """``--subset`` still to apply: the record names no licence, the XML decides."""

    @property
    def name(self) -> str:
        return self.prefix


def features(config: str, ctx: RecipeContext) -> Features:
    """Return the image-text schema plus figure id, article version, PMID, DOI and licence flags."""
    check_config(DATASET_ID, CONFIGS, config)
    return image_text_features({
        "figure_id": Value("string"),
        "article_version": Value("int32"),
        "pmid": Value("string"),
        "doi": Value("string"),
        "commercial_use": Value("bool"),
        "retracted": Value("bool"),
    })


@dataclass(frozen=True)
class _Record:
    prefix: str
    pmcid: str
    version: int
    path: Path


def _records(ctx: RecipeContext) -> list[_Record]:
    """Return the newest fetched metadata record of each article, in PMCID order."""
    folder = ctx.source_dir / "metadata"
    if not folder.is_dir():
        raise UsageError(
            f"{ctx.dataset_id}: no metadata/ folder under {ctx.source_dir}; run `medcat fetch {ctx.dataset_id}` first "
            "(the per-article cloud layout; legacy .tar.gz packages are not read)."
        )
    newest: dict[str, _Record] = {}
    for name in sorted(os.listdir(folder)):
        match = _META_NAME.match(name)
        if match is None or not _usable(ctx, folder, name):
            continue
        path = folder / name
        record = _Record(f"{match[1]}.{match[2]}", match[1], int(match[2]), path)
        if record.pmcid not in newest or newest[record.pmcid].version < record.version:
            newest[record.pmcid] = record
    return sorted(newest.values(), key=lambda r: (int(r.pmcid[3:]), r.version))


def _usable(ctx: RecipeContext, folder: Path, name: str) -> bool:
    """Tell whether a file just listed in ``folder`` may be used (``ctx.has`` without a stat when all may)."""
    if ctx.available is None:
        return True
    return ctx.has(folder / name)


def _wanted(ctx: RecipeContext) -> list[ArticleRef] | None:
    articles = ctx.options.extra.get("articles")
    return read_article_list(Path(str(articles))) if articles else None


def _subset(ctx: RecipeContext) -> str | None:
    subset = ctx.options.extra.get("subset")
    if subset not in (None, "commercial", "noncommercial"):
        raise UsageError(f"{ctx.dataset_id}: --subset must be commercial or noncommercial, got {subset!r}.")
    return subset


def _select(ctx: RecipeContext) -> Iterator[_Record]:
    records = _records(ctx)
    wanted = _wanted(ctx)
    if wanted is None:
        yield from records
        return
    by_id = {r.pmcid: r for r in records}
    versions = {r.prefix for r in records}
    for ref in wanted:
        if ref.version is None and ref.pmcid in by_id:
            yield by_id[ref.pmcid]
        elif ref.version is not None and str(ref) in versions:
            # An older version named explicitly: its record file is on disk.
            yield _Record(str(ref), ref.pmcid, ref.version, ctx.source_dir / "metadata" / f"{ref}.json")


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SampleError(path.name, "read", f"metadata record is not JSON: {err}") from err
    if not isinstance(value, dict):
        raise SampleError(path.name, "read", "metadata record is not a JSON object")
    return value


def plan(config: str, ctx: RecipeContext) -> Plan:
    """Return one unit per selected article (``--articles``, ``--subset``, ``--limit`` articles)."""
    check_config(DATASET_ID, CONFIGS, config)
    subset = _subset(ctx)
    limit = ctx.options.limit
    units: list[Any] = []
    not_fetched: list[str] = []
    for record in _select(ctx):
        if limit is not None and len(units) >= limit:
            break
        try:
            meta = _read_meta(record.path)
        except SampleError as err:
            units.append(_BrokenUnit(config, record.prefix, "", "", (), ctx.source_tag, ctx.options.image, {}, error=err))
            continue
        license_code = meta.get("license_code")
        commercial = is_commercial(str(license_code or ""))
        if subset is not None and license_code and commercial != (subset == "commercial"):
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
                "license": _str(license_code),
                "commercial_use": commercial if license_code else None,
                "retracted": meta.get("is_retracted") if isinstance(meta.get("is_retracted"), bool) else None,
            },
            subset=None if license_code else subset,
        ))
    batches = [
        ArticleBatch(config, tuple(units[i : i + UNIT_ARTICLES])) for i in range(0, len(units), UNIT_ARTICLES)
    ]
    return Plan(units=batches, not_fetched=not_fetched)


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _xml_path(ctx: RecipeContext, record: _Record, meta: Mapping[str, Any]) -> Path:
    url = meta.get("xml_url")
    if isinstance(url, str) and url.startswith("s3://"):
        key = url.split("?", 1)[0].split("/", 3)[-1]
        if key and ".." not in key.split("/"):
            return ctx.source_dir / key
    return ctx.source_dir / record.prefix / f"{record.prefix}.xml"


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


def convert_unit(unit: ArticleBatch) -> Iterator[Row | SampleError]:
    """Yield one row per figure of each article; a figure without its ``.jpg`` is a ``SampleError``."""
    for article in unit.articles:
        yield from convert_article(article)


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


def card_notes(ctx: RecipeContext) -> list[str]:
    """Record how articles were selected and how figures, images and mentions were read."""
    extra = ctx.options.extra
    chosen = []
    if extra.get("articles"):
        chosen.append(f"articles listed in {Path(str(extra['articles'])).name}")
    if extra.get("subset"):
        chosen.append(f"the {extra['subset']} subset (commercial = CC BY or CC0)")
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
