"""The PMC Open Access subset in the PMC Cloud Service bucket: per-article files, md5-verified.

Since 2026 the bucket ``pmc-oa-opendata`` holds one prefix per article version,
``PMC<id>.<version>/``, with every file individually (JATS ``.xml``, ``.txt``, ``.pdf``, a metadata
``.json`` and each media file) and, beside them, ``metadata/PMC<id>.<version>.json``. That
metadata record names the article's files as ``s3://pmc-oa-opendata/<key>?md5=<hex>``, so every
file is checked against an upstream md5. Articles are found with S3 ``ListObjectsV2`` on the
``metadata/`` prefix (anonymous HTTPS, paginated with continuation tokens): all of them, or the
ones named in ``--option articles=FILE`` (``PMC123`` picks the newest version, ``PMC123.2`` that
version). ``--option subset=...`` keeps the Commercial Use Collection (``license_code`` CC BY or
CC0) or the rest; ``--limit N`` counts articles, not files. Metadata records are fetched through the engine
as index files (kept in the cache: normalize reads licence, ids and retraction from them).

The legacy layout (``oa_file_list.csv`` and ``oa_package/**/PMC<id>.tar.gz``, moved to
``deprecated/`` on 2026-04-13 and due for removal in August 2026) is not read: when the bucket
has no article in the new layout, the legacy file list is probed only to word the error.

A source with ``figures`` (LLaVA-Med) fetches no whole article: the records named there (files of
a sibling urls source, fetched first as index files) pick lines of a URL list whose
``PMC<id>/<file>`` paths name figures; each article's metadata record is read and only those
figures are listed, md5-verified like any bucket file (``pmc_figures``). ``--only`` picks record
files (a figure's ``key`` is then the record file that asked for it, so the engine's ``--only``
keeps it), ``--limit N`` the first N records of each, ``--option subset=`` applies per article.
Articles no longer in the bucket and figures their record does not list are counted in the log;
normalize reports them per record.

Lists and transfers bytes only; never parses article XML.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit
from xml.etree import ElementTree

from medcat_data.catalog.schema import PmcFigureList, PmcSource, UrlListSource
from medcat_data.errors import FetchError, UsageError
from medcat_data.loaders.plan import (
    RemoteFile,
    apply_mirror,
    join_subdir,
    keep_included,
    mirror_is_local,
    wanted_by_only,
)
from medcat_data.loaders.transports import Denied, IndexFetcher, Transient, TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel
from medcat_data.loaders.transports.pmc_figures import read_record_ids, wanted_figures
from medcat_data.loaders.transports.urls import pinned_remote

log = logging.getLogger(__name__)

__all__ = [
    "COMMERCIAL_LICENCES",
    "OPTIONS",
    "ArticleRef",
    "PmcOptions",
    "PmcTransport",
    "is_commercial",
    "make_transport",
    "parse_listing",
    "read_article_list",
]

#: The Commercial Use Collection: machine-readable CC BY or CC0 (NLM's definition, fact sheet §7d).
COMMERCIAL_LICENCES = frozenset({"CC BY", "CC0"})
METADATA_PREFIX = "metadata/"
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_META_KEY = re.compile(r"^metadata/(PMC\d+)\.(\d+)\.json$")
_ARTICLE = re.compile(r"^(?:PMC)?(\d+)(?:\.(\d+))?$", re.IGNORECASE)
_LISTING_LIMIT_BYTES = 8 << 20
PAGE_KEYS = 1000
"""Keys asked for per ``ListObjectsV2`` page (S3's maximum)."""


@dataclass(frozen=True)
class PmcOptions:
    """What part of the bucket to fetch (``medcat fetch ID --option KEY=VALUE``)."""

    articles: Path | None = field(
        default=None, metadata={"help": "pmc sources: only the articles listed in FILE (PMC123 or PMC123.2, one a line)."}
    )
    subset: Literal["commercial", "noncommercial"] | None = field(
        default=None,
        metadata={
            "help": "pmc sources: only articles whose licence allows (commercial: CC BY or CC0) or does not allow "
            "commercial use."
        },
    )


OPTIONS = PmcOptions


def is_commercial(license_code: str | None) -> bool:
    """Tell whether a ``license_code`` is in the Commercial Use Collection (CC BY or CC0, any version)."""
    code = re.sub(r"\s+\d+(\.\d+)*$", "", (license_code or "").strip()).upper()
    return code in COMMERCIAL_LICENCES


@dataclass(frozen=True, order=True)
class ArticleRef:
    """One article asked for: ``PMC<number>``, and a version or ``None`` for the newest."""

    number: int
    version: int | None = None

    @property
    def pmcid(self) -> str:
        return f"PMC{self.number}"

    def __str__(self) -> str:
        return self.pmcid if self.version is None else f"{self.pmcid}.{self.version}"


def read_article_list(path: Path) -> list[ArticleRef]:
    """Read ``--option articles=FILE``: one ``PMC123``, ``PMC123.2`` or ``123`` a line; ``#`` starts a comment.

    Raises:
        UsageError: the file cannot be read, or a line is not an article id (file and line named).
    """
    refs: list[ArticleRef] = []
    seen: set[ArticleRef] = set()
    try:
        with Path(path).open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, 1):
                text = line.split("#", 1)[0].strip()
                if not text:
                    continue
                match = _ARTICLE.match(text)
                if match is None:
                    raise UsageError(
                        f"{path}:{number}: {text!r} is not a PMC article id; write one PMC123 or PMC123.2 a line."
                    )
                ref = ArticleRef(int(match[1]), int(match[2]) if match[2] else None)
                if ref not in seen:
                    seen.add(ref)
                    refs.append(ref)
    except OSError as err:
        raise UsageError(f"cannot read the article list {path}: {err.strerror or err}") from err
    return refs


def parse_listing(body: bytes) -> tuple[list[str], list[str], str | None]:
    """Return ``(keys, common prefixes, next continuation token)`` of one ``ListObjectsV2`` page.

    Raises:
        FetchError: the body is not a ``ListBucketResult``.
    """
    if b"<!DOCTYPE" in body[:512].upper() or b"<!ENTITY" in body.upper():
        raise FetchError("the bucket listing carries a DOCTYPE or entities; refusing to parse it")
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as err:
        raise FetchError(f"the bucket listing is not S3 XML ({err})") from err
    tag = root.tag.rsplit("}", 1)[-1]
    if tag != "ListBucketResult":
        raise FetchError(f"the bucket answered <{tag}> instead of a ListBucketResult")

    def find_all(path: str) -> list[str]:
        return [e.text or "" for e in root.iterfind(path.replace("{ns}", _S3_NS))] or [
            e.text or "" for e in root.iterfind(path.replace("{ns}", ""))
        ]

    keys = find_all("{ns}Contents/{ns}Key")
    prefixes = find_all("{ns}CommonPrefixes/{ns}Prefix")
    truncated = (find_all("{ns}IsTruncated") or ["false"])[0].strip().lower() == "true"
    tokens = find_all("{ns}NextContinuationToken")
    token = tokens[0] if truncated and tokens else None
    if truncated and not token:
        raise FetchError("the bucket listing is truncated but gives no continuation token")
    return keys, prefixes, token


def _s3_key(url: str) -> tuple[str, str | None]:
    """Split ``s3://bucket/<key>?md5=<hex>`` into ``(key, md5)``."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    md5 = None
    for item in parts.query.split("&"):
        name, _, value = item.partition("=")
        if name == "md5" and re.fullmatch(r"[0-9a-fA-F]{32}", value):
            md5 = value.lower()
    return key, md5


class PmcTransport:
    """List the files of the selected articles from the bucket's metadata records.

    ``applies_limit`` tells the engine that ``--limit`` was applied here, to articles.
    """

    applies_limit = True

    def __init__(self, source: PmcSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        # A context built without options (not through the engine) fetches the whole bucket.
        self.options = ctx.kind_options if isinstance(ctx.kind_options, PmcOptions) else PmcOptions()
        self.bucket = apply_mirror(source.bucket_url.rstrip("/"), ctx.mirror).rstrip("/")
        self.local_root = Path(urlsplit(self.bucket).path) if mirror_is_local(ctx.mirror) else None
        self.settings = HttpSettings(timeouts=ctx.options.timeouts)
        self._rng = random.Random()

    # -- listing -------------------------------------------------------------------------------

    def url(self, key: str) -> str:
        return f"{self.bucket}/{quote(key, safe='/')}"

    def _get(self, channel: UrlChannel, url: str) -> bytes:
        """GET a small body, retrying transient failures like the engine does."""
        retry = self.ctx.options.retry
        for attempt in range(retry.attempts):
            try:
                return channel.get_bytes(url, limit=_LISTING_LIMIT_BYTES)
            except Transient as err:
                if attempt + 1 >= retry.attempts:
                    raise FetchError(
                        f"{self.ctx.entry.id}: the PMC bucket listing failed after {retry.attempts} attempts "
                        f"({err.reason}). Run the fetch again later."
                    ) from None
                time.sleep(retry.delay_s(attempt, err.retry_after_s, self._rng))
        raise AssertionError("unreachable")

    def _list(self, channel: UrlChannel, prefix: str) -> Iterator[str]:
        """Yield every key under ``prefix``, page by page (ListObjectsV2, or a ``file://`` folder)."""
        if self.local_root is not None:
            folder = self.local_root / prefix.rsplit("/", 1)[0]
            if folder.is_dir():
                rest = prefix.rsplit("/", 1)[-1]
                base = prefix.rsplit("/", 1)[0]
                yield from sorted(f"{base}/{p.name}" for p in folder.iterdir() if p.name.startswith(rest))
            return
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix, "max-keys": str(PAGE_KEYS)}
            if token:
                query["continuation-token"] = token
            try:
                body = self._get(channel, f"{self.bucket}/?{urlencode(query)}")
            except Unavailable as err:
                raise FetchError(
                    f"{self.ctx.entry.id}: the PMC bucket at {self.source.bucket_url} cannot be listed ({err.reason})."
                ) from None
            keys, _, token = parse_listing(body)
            yield from keys
            if token is None:
                return

    def _newest_versions(self, channel: UrlChannel, prefix: str) -> Iterator[tuple[str, int]]:
        """Yield ``(pmcid, newest version)`` per article under a metadata prefix, in key order.

        Versions of one article are adjacent in key order (``PMC12.1`` < ``PMC12.2`` < ``PMC120.1``),
        so an article is complete when the next one starts and listing can stop early.
        """
        current: tuple[str, int] | None = None
        for key in self._list(channel, prefix):
            match = _META_KEY.match(key)
            if match is None:
                continue
            pmcid, version = match[1], int(match[2])
            if current is not None and current[0] == pmcid:
                current = (pmcid, max(current[1], version))
                continue
            if current is not None:
                yield current
            current = (pmcid, version)
        if current is not None:
            yield current

    def _candidates(self, channel: UrlChannel, wanted: list[ArticleRef] | None) -> Iterator[str]:
        """Yield the article-version prefixes (``PMC123.2``) to consider, in a stable order."""
        if wanted is None:
            for pmcid, version in self._newest_versions(channel, METADATA_PREFIX + "PMC"):
                yield f"{pmcid}.{version}"
            return
        missing: list[str] = []
        for ref in wanted:
            versions: set[int] = set()
            for key in self._list(channel, f"{METADATA_PREFIX}{ref.pmcid}."):
                match = _META_KEY.match(key)
                if match is not None and match[1] == ref.pmcid:
                    versions.add(int(match[2]))
            version = ref.version if ref.version is not None else max(versions, default=0)
            if version not in versions:
                missing.append(str(ref))
            else:
                yield f"{ref.pmcid}.{version}"
        if missing:
            log.warning(
                "%s: %d article(s) from %s are not in the bucket: %s",
                self.ctx.entry.id, len(missing), self.options.articles or "the records", ", ".join(missing[:20]),
            )

    def list_files(self, fetch_index: IndexFetcher) -> list[RemoteFile]:
        """Return the files of the selected articles (metadata records fetched on the way).

        Raises:
            UsageError: a bad ``articles`` file.
            FetchError: the bucket cannot be listed, or holds no article in the new layout.
        """
        if self.source.figures is not None:
            return self._list_figures(self.source.figures, fetch_index)
        limit, subset = self.ctx.options.limit, self.options.subset
        wanted = read_article_list(self.options.articles) if self.options.articles is not None else None
        channel = UrlChannel(self.settings)
        files: list[RemoteFile] = []
        taken = seen = 0
        try:
            for prefix in self._candidates(channel, wanted):
                if limit is not None and taken >= limit:
                    break
                seen += 1
                meta_key = f"{METADATA_PREFIX}{prefix}.json"
                meta_remote = self._remote(meta_key, None)
                record = self._read_metadata(fetch_index(meta_remote), meta_key)
                if subset is not None and is_commercial(str(record.get("license_code") or "")) != (subset == "commercial"):
                    continue
                taken += 1
                files.append(meta_remote)
                files.extend(self._article_files(record, meta_key))
        finally:
            channel.close()
        if seen == 0:
            raise FetchError(self._nothing_listed(wanted))
        log.info("%s: %d of %d article(s) selected, %d files", self.ctx.entry.id, taken, seen, len(files))
        return files

    def _remote(self, key: str, md5: str | None, only_key: str | None = None) -> RemoteFile:
        return RemoteFile(
            path=join_subdir(self.source.subdir, key),
            url=self.url(key),
            source=self.source.name,
            hash=md5,
            algorithm="md5",
            verified_by="md5-list" if md5 else "tofu",
            key=only_key or key,
            index=md5 is None and key.startswith(METADATA_PREFIX),
        )

    # -- figures named by records ----------------------------------------------------------------

    def _list_figures(self, spec: PmcFigureList, fetch_index: IndexFetcher) -> list[RemoteFile]:
        """Return the metadata records and the figures that the selected records need, nothing else.

        Raises:
            FetchError: the list's source is not a urls source of the entry or does not declare a file.
        """
        only, limit, subset = self.ctx.options.only, self.ctx.options.limit, self.options.subset
        sibling = next((s for s in self.ctx.entry.sources if s.name == spec.source), None)
        if not isinstance(sibling, UrlListSource):
            raise FetchError(f"{self.ctx.entry.id}: source {self.source.name!r} reads its figures from {spec.source!r}, "
                             "which is not a urls source of the entry; check the registry.")
        pinned = {p.path: p for p in sibling.files}

        def remote_of(path: str) -> RemoteFile:
            if path not in pinned:
                raise FetchError(f"{self.ctx.entry.id}: source {spec.source!r} declares no file {path!r}; check the registry.")
            return pinned_remote(sibling, pinned[path], self.ctx.mirror)

        records: dict[str, str] | None = None
        if spec.records:
            records = {}
            for path in spec.records:
                remote = remote_of(path)
                if only and not wanted_by_only(remote, only):
                    continue
                for record_id in read_record_ids(fetch_index(remote), spec.record_keys, limit):
                    records.setdefault(record_id, path)
        wanted = wanted_figures(fetch_index(remote_of(spec.url_list)), spec.path_key, spec.id_key, records)
        if wanted.unlisted:
            log.warning("%s: %d record(s) have no line in %s", self.ctx.entry.id, wanted.unlisted, spec.url_list)
        refs = [ArticleRef(int(pmcid[3:])) for pmcid in wanted.articles()]
        channel = UrlChannel(self.settings)
        files: list[RemoteFile] = []
        found: set[str] = set()
        absent = 0
        try:
            for prefix in self._candidates(channel, refs) if refs else iter(()):
                pmcid = prefix.split(".", 1)[0]
                found.add(pmcid)
                names = wanted.by_article[pmcid]
                origin = next(iter(names.values())) if only else None
                meta_key = f"{METADATA_PREFIX}{prefix}.json"
                meta_remote = self._remote(meta_key, None, origin)
                record = self._read_metadata(fetch_index(meta_remote), meta_key)
                if subset is not None and is_commercial(str(record.get("license_code") or "")) != (subset == "commercial"):
                    continue
                files.append(meta_remote)
                media: dict[str, tuple[str, str | None]] = {}
                listed = record.get("media_urls")
                for url in listed if isinstance(listed, list) else []:
                    if isinstance(url, str):
                        key, md5 = _s3_key(url)
                        if key.startswith(prefix + "/") and ".." not in key.split("/"):
                            media[key.rsplit("/", 1)[-1]] = (key, md5)
                for name, asked_by in names.items():
                    if name in media:
                        key, md5 = media[name]
                        files.append(self._remote(key, md5, asked_by if only else None))
                    else:
                        absent += 1
        finally:
            channel.close()
        gone = len(refs) - len(found)
        log.info("%s: %d figure(s) of %d article(s) selected; %d article(s) not in the bucket, %d figure(s) not "
                 "listed by their article", self.ctx.entry.id, len(files), len(found), gone, absent)
        return files

    def _read_metadata(self, path: Path, key: str) -> dict[str, object]:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise FetchError(
                f"{self.ctx.entry.id}: the metadata record {key} is not JSON ({err}); delete it from the cache and "
                "run the fetch again."
            ) from err
        if not isinstance(record, dict):
            raise FetchError(f"{self.ctx.entry.id}: the metadata record {key} is not a JSON object.")
        return record

    def _article_files(self, record: dict[str, object], meta_key: str) -> list[RemoteFile]:
        urls: list[str] = []
        for name in ("xml_url", "text_url", "pdf_url"):
            value = record.get(name)
            if isinstance(value, str) and value:
                urls.append(value)
        media = record.get("media_urls")
        if isinstance(media, list):
            urls.extend(u for u in media if isinstance(u, str) and u)
        if not isinstance(record.get("xml_url"), str):
            log.warning("%s: %s names no xml_url; the article has no JATS XML to normalize", self.ctx.entry.id, meta_key)
        out: list[RemoteFile] = []
        seen: set[str] = set()
        for url in urls:
            key, md5 = _s3_key(url)
            if not key or key in seen or ".." in key.split("/") or not keep_included(self.source, key):
                continue
            seen.add(key)
            out.append(self._remote(key, md5))
        return out

    def _nothing_listed(self, wanted: list[ArticleRef] | None) -> str:
        entry = self.ctx.entry.id
        if wanted is not None:
            return (
                f"{entry}: none of the {len(wanted)} article(s) in {self.options.articles} is in the PMC bucket "
                f"({self.source.bucket_url}); check the ids (PMC123 or PMC123.2, one a line)."
            )
        legacy = self._legacy_served()
        hint = (
            " The legacy file list is still served under deprecated/, but medcat reads only the per-article "
            "cloud layout."
            if legacy
            else " The legacy packages (deprecated/, removed in August 2026) are not served either."
        )
        return f"{entry}: the PMC bucket at {self.source.bucket_url} lists no article metadata under metadata/.{hint}"

    def _legacy_served(self) -> bool:
        if not self.source.legacy_url or self.local_root is not None:
            return False
        channel = UrlChannel(self.settings)
        try:
            resp = channel.open(apply_mirror(self.source.legacy_url.rstrip("/") + "/oa_file_list.csv", self.ctx.mirror))
            resp.close()
            return True
        except (Transient, Unavailable, Denied):  # only the wording of the error depends on it
            return False
        finally:
            channel.close()

    # -- transfers -----------------------------------------------------------------------------

    def open_channel(self) -> UrlChannel:
        return UrlChannel(self.settings)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, "")


def make_transport(source: PmcSource, ctx: TransportContext) -> PmcTransport:
    return PmcTransport(source, ctx)
