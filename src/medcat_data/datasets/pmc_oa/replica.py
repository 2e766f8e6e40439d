"""A synthetic PMC Open Access bucket in the 2026 per-article cloud layout, served at the mirror root.

The bucket ``pmc-oa-opendata`` is reached virtual-hosted style, so its keys are URL paths of the
mirror (``mirror.pmc`` answers the ``ListObjectsV2`` listing). Layout (fact sheet §7d; the
metadata fields and the ``metadata/`` prefix are seen in third-party code only, unconfirmed by NLM):

* ``PMC<id>.<version>/PMC<id>.<version>.xml`` (JATS, with the public DOCTYPE naming the external
  DTD, which a reader must never load), ``.txt``, ``.pdf`` and ``.json``, and every media file
  individually: each figure as ``<name>.jpg`` plus its small ``<name>.gif`` thumbnail;
* ``metadata/PMC<id>.<version>.json``: ``pmcid``, ``version``, ``pmid``, ``doi``, ``mid``, ``title``,
  ``citation``, ``is_pmc_openaccess``, ``is_manuscript``, ``is_historical_ocr``, ``is_retracted``,
  ``license_code``, ``xml_url``, ``text_url``, ``pdf_url``, ``media_urls`` (``s3://`` URLs with
  ``?md5=<hex>``).

Ten articles under five licences (two commercial: CC BY, CC0), one of them retracted (its rows are
kept, flagged), one with two versions (only the newer is used), one with a ``<fig-group>``, xrefs
whose ``rid`` lists several figures, ``graphic/@xlink:href`` with and without ``.jpg``. Planted bad
item: one figure that has only its ``.gif`` thumbnail. All text is generated; nothing is copied.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from medcat_data.mirror.replicas.base import Replica

DATASET_ID = "pmc-oa"
BUCKET_URL = "s3://pmc-oa-opendata"
DOCTYPE = (
    '<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving and Interchange DTD with '
    'MathML3 v1.3 20210610//EN" "JATS-archivearticle1-3-mathml3.dtd">'
)
LICENCES = (
    ("CC BY", "https://creativecommons.org/licenses/by/4.0/"),
    ("CC0", "https://creativecommons.org/publicdomain/zero/1.0/"),
    ("CC BY-NC", "https://creativecommons.org/licenses/by-nc/4.0/"),
    ("CC BY-NC-ND", "https://creativecommons.org/licenses/by-nc-nd/4.0/"),
    ("CC BY-SA", "https://creativecommons.org/licenses/by-sa/4.0/"),
)
_TOPICS = ("retinal thickness", "serum ferritin", "gait speed", "tumour volume", "bone density", "heart rate variability")
_GROUPS = ("the treated cohort", "controls", "older patients", "the follow-up visit", "the pilot sample")
_VERBS = ("increased", "decreased", "did not change", "varied widely", "correlated with age")
_KINDS = ("Kaplan-Meier curves", "Representative micrographs", "Box plots", "Axial CT slices", "A flow diagram")


@dataclass
class _Figure:
    fig_id: str
    label: str
    caption: str
    media: str
    href: str
    gif_only: bool = False
    group: str | None = None


@dataclass
class _Article:
    number: int
    version: int
    licence: tuple[str, str]
    retracted: bool = False
    figures: list[_Figure] = field(default_factory=list)
    groups: dict[str, str] = field(default_factory=dict)

    @property
    def pmcid(self) -> str:
        return f"PMC{self.number}"

    @property
    def prefix(self) -> str:
        return f"{self.pmcid}.{self.version}"


def _jpeg(rng: np.random.Generator) -> bytes:
    height, width = int(rng.integers(16, 40)), int(rng.integers(16, 40))
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def _gif(rng: np.random.Generator) -> bytes:
    pixels = rng.integers(0, 255, size=(8, 8), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "GIF")
    return buffer.getvalue()


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(_TOPICS).capitalize()} {rng.choice(_VERBS)} in {rng.choice(_GROUPS)}"


def _plan(seed: int) -> list[_Article]:
    rng = random.Random(seed)
    articles: list[_Article] = []
    for k in range(10):
        number = 9100000 + 37 * k + rng.randrange(30)
        version = 2 if k == 3 else 1
        article = _Article(number, version, LICENCES[k % len(LICENCES)], retracted=(k == 6))
        n_figs = 1 + k % 3
        stem = f"med-{k:02d}-{number % 10000:04d}"
        for i in range(1, n_figs + 1):
            media = f"{stem}-g{i:03d}"
            href = media + ".jpg" if (k + i) % 2 else media  # PMC often omits the extension
            article.figures.append(
                _Figure(f"F{i}", f"Figure {i}", f"{rng.choice(_KINDS)} of {rng.choice(_TOPICS)}.", media, href)
            )
        if k == 4:  # a figure group with two panels, each a <fig>
            group = f"F{n_figs + 1}"
            article.groups[group] = f"Figure {n_figs + 1}"
            for panel in "AB":
                media = f"{stem}-g{n_figs + 1:03d}{panel.lower()}"
                article.figures.append(
                    _Figure(f"{group}{panel}", f"Figure {n_figs + 1}{panel}",
                            f"Panel {panel}: {rng.choice(_TOPICS)}.", media, media, group=group)
                )
        if k == 8:  # planted: the figure's .jpg is missing, only the .gif thumbnail exists
            article.figures[-1].gif_only = True
        articles.append(article)
    return articles


def _mentions(article: _Article, rng: random.Random) -> str:
    """Return body paragraphs whose sentences cite the figures (single ids, rid lists, groups)."""
    ids = [f.fig_id for f in article.figures if f.group is None]
    paragraphs = []
    for n, fig_id in enumerate(ids, 1):
        paragraphs.append(
            f"<p>{_sentence(rng)} (<xref ref-type=\"fig\" rid=\"{fig_id}\">Fig. {n}</xref>). "
            f"{_sentence(rng)}, e.g. in {rng.choice(_GROUPS)}. {_sentence(rng)} as well.</p>"
        )
    if len(ids) >= 2:
        paragraphs.append(
            f"<p>{_sentence(rng)} (<xref ref-type=\"fig\" rid=\"{ids[0]} {ids[1]}\">Figs. 1 and 2</xref>). "
            f"See also <xref ref-type=\"bibr\" rid=\"B1\">[1]</xref>.</p>"
        )
    for group in article.groups:
        paragraphs.append(
            f"<p>{_sentence(rng)} (<xref ref-type=\"fig\" rid=\"{group}\">Fig. 4</xref>). "
            f"{_sentence(rng)} (<xref ref-type=\"fig\" rid=\"{group}B\">Fig. 4B</xref>).</p>"
        )
    return "\n".join(paragraphs)


def _fig_xml(fig: _Figure) -> str:
    return (
        f'<fig id="{fig.fig_id}" position="float"><label>{fig.label}</label>'
        f"<caption><title>{fig.caption.split(' of ')[0]}.</title><p>{fig.caption}</p></caption>"
        f'<graphic xlink:href="{fig.href}"/></fig>'
    )


def _xml(article: _Article, rng: random.Random) -> str:
    licence, url = article.licence
    figs = []
    for fig in article.figures:
        if fig.group is None:
            figs.append(_fig_xml(fig))
    for group, label in article.groups.items():
        panels = "".join(_fig_xml(f) for f in article.figures if f.group == group)
        figs.append(f'<fig-group id="{group}"><label>{label}</label><caption><p>Two panels.</p></caption>{panels}</fig-group>')
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{DOCTYPE}\n"
        '<article xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:mml="http://www.w3.org/1998/Math/MathML" '
        'article-type="research-article">\n'
        "<front><article-meta>"
        f'<article-id pub-id-type="pmc">{article.pmcid}</article-id>'
        f'<article-id pub-id-type="pmid">{article.number - 9000000}</article-id>'
        f'<article-id pub-id-type="doi">10.5555/synthetic.{article.number}</article-id>'
        f"<title-group><article-title>A synthetic study of {rng.choice(_TOPICS)}</article-title></title-group>"
        f'<permissions><license license-type="open-access" xlink:href="{url}"><license-p>{licence}</license-p></license></permissions>'
        "</article-meta></front>\n"
        f"<body><sec><title>Results</title>\n{_mentions(article, rng)}\n{''.join(figs)}</sec></body>\n"
        "</article>\n"
    )


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _s3(key: str, md5: str) -> str:
    return f"{BUCKET_URL}/{key}?md5={md5}"


def _write_article(root: Path, article: _Article, rng: random.Random, nrng: np.random.Generator) -> None:
    prefix = article.prefix
    folder = root / prefix
    media_urls = []
    for fig in article.figures:
        if not fig.gif_only:
            media_urls.append(_s3(f"{prefix}/{fig.media}.jpg", _write(folder / f"{fig.media}.jpg", _jpeg(nrng))))
        media_urls.append(_s3(f"{prefix}/{fig.media}.gif", _write(folder / f"{fig.media}.gif", _gif(nrng))))
    xml = _xml(article, rng).encode()
    xml_md5 = _write(folder / f"{prefix}.xml", xml)
    txt_md5 = _write(folder / f"{prefix}.txt", f"Synthetic plain text of {article.pmcid}.\n".encode())
    pdf_md5 = _write(folder / f"{prefix}.pdf", b"%PDF-1.4\n% synthetic placeholder\n%%EOF\n")
    metadata = {
        "pmcid": article.pmcid,
        "version": article.version,
        "pmid": article.number - 9000000,
        "doi": f"10.5555/synthetic.{article.number}",
        "mid": None,
        "title": f"A synthetic study ({article.pmcid})",
        "citation": f"Synthetic J. 2026; {article.number % 97}:e{article.number % 1000}",
        "is_pmc_openaccess": True,
        "is_manuscript": False,
        "is_historical_ocr": False,
        "is_retracted": article.retracted,
        "license_code": article.licence[0],
        "xml_url": _s3(f"{prefix}/{prefix}.xml", xml_md5),
        "text_url": _s3(f"{prefix}/{prefix}.txt", txt_md5),
        "pdf_url": _s3(f"{prefix}/{prefix}.pdf", pdf_md5),
        "media_urls": sorted(media_urls),
    }
    body = (json.dumps(metadata, indent=2) + "\n").encode()
    _write(folder / f"{prefix}.json", body)
    _write(root / "metadata" / f"{prefix}.json", body)


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the bucket keys under ``root`` and return the replica with its expected counts."""
    rng = random.Random(seed + 1)
    nrng = np.random.default_rng(seed)
    articles = _plan(seed)
    for article in articles:
        if article.version > 1:  # an older version stays in the bucket; normalize must skip it
            old = _Article(article.number, article.version - 1, article.licence, figures=article.figures[:1])
            _write_article(root, old, rng, nrng)
        _write_article(root, article, rng, nrng)
    rows = sum(1 for a in articles for f in a.figures if not f.gif_only)
    planted = [f"{a.prefix}/{f.fig_id}" for a in articles for f in a.figures if f.gif_only]
    expected = {
        "configs": {"figures": {"train": rows}},
        "errors": [{"path": p, "stage": "read"} for p in planted],
        "articles": [a.prefix for a in articles],
        "commercial_articles": [a.prefix for a in articles if a.licence[0] in ("CC BY", "CC0")],
    }
    return [Replica(DATASET_ID, "pmc", expected=expected, group_columns=("article_id",))]
