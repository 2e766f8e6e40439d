"""JATS article XML -> figures: ids, label, caption, graphic href, licence and the body sentences citing each.

Parsed with lxml with no DTD loading, no network and no entity resolution. Knows nothing of files
or images; the recipe matches hrefs to the fetched media.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from typing import Any

from lxml import etree

from medcat_data.errors import SampleError

__all__ = ["ABBREVIATIONS", "ArticleXml", "Figure", "extract_figures", "license_code", "split_sentences"]

XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"
CC_LICENSES = {
    "by": "CC BY", "by-sa": "CC BY-SA", "by-nd": "CC BY-ND", "by-nc": "CC BY-NC", "by-nc-sa": "CC BY-NC-SA",
    "by-nc-nd": "CC BY-NC-ND", "by-nd-nc": "CC BY-NC-ND",  # by-nd-nc: the 1.0 spelling of BY-NC-ND
}
"""creativecommons.org/licenses/<path> -> PMC's ``license_code`` spelling (no version, as the records write it)."""
_CC_LINK = re.compile(r"creativecommons\.org/(?:licenses/([a-z-]+)|publicdomain/(zero))(?![a-z-])", re.IGNORECASE)

#: Tokens (lower case, without their final period) after which a period does not end a sentence.
#: Frozen from the spellings common in biomedical prose; extend with care (each one joins sentences).
ABBREVIATIONS = frozenset({
    "fig", "figs", "e.g", "i.e", "al", "vs", "cf", "approx", "no", "nos", "eq", "eqs", "ref", "refs",
    "dr", "ca", "resp", "suppl", "sect", "sec", "tab", "vol", "ext", "mr", "ms", "st", "spp", "sp",
})
_BOUNDARY = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(\s+)(?=[A-Z0-9(\[\u201c\"])")
_LAST_TOKEN = re.compile(r"(\S+)$")

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
