"""TCIA collections: series through the NBIA REST API, laid out as the NBIA Data Retriever does.

Lists a collection with ``GET <api_url>/getSeries?Collection=<name>`` (public, no token: TCIA's
search API v1 never needed one, v2 did until TCIA dropped controlled-access data, and the
current v4 needs none) and downloads each series as the zip ``getImage?NewFileNames=Yes&
SeriesInstanceUID=<uid>`` returns. Each zip lands in the series folder the Retriever's
"descriptive" naming gives, and is extracted there safely by the engine (``loaders.archives``):

    <Collection>/<Subject ID>/<MM-DD-YYYY>-<Study Description>-<last 5 of Study UID>/
        <Series Number>.000000-<Series Description>-<last 5 of Series UID>/<uid>.zip -> 1-1.dcm ...

plus ``metadata.csv`` with the Retriever's header (``Series UID`` ... ``File Location``), built
from the same listing, so recipes resolve files by SeriesInstanceUID. The source's ``files``
(direct downloads, e.g. CBIS-DDSM's case CSVs) are fetched as plain URLs.

Verification: TCIA publishes no checksum. A series zip is checked by its ``PK`` magic, then its
members against the listing (``ImageCount`` DICOMs, ``FileSize`` bytes in all) where the API
gives them, and by the zip's own CRCs on extraction; its sha256 is recorded (trust on first use).
``metadata.csv`` and the direct downloads are trust on first use. Names from the API are
sanitized before they become folder names. Transfers bytes; never decodes a DICOM.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from medcat_data.catalog.schema import TciaSource
from medcat_data.errors import FetchError
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, keep_included, mirror_is_local
from medcat_data.loaders.transports import Transient, TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel
from medcat_data.loaders.transports.urls import pinned_remote

log = logging.getLogger(__name__)

ZIP_MAGIC = b"PK"
METADATA_CSV = "metadata.csv"
METADATA_HEADER = (
    "Series UID", "Collection", "3rd Party Analysis", "Data Description URI", "Subject ID", "Study UID",
    "Study Description", "Study Date", "Series Description", "Manufacturer", "Modality", "SOP Class Name",
    "SOP Class UID", "Number of Images", "File Size", "File Location", "Download Timestamp",
)
"""The NBIA Data Retriever's ``metadata.csv`` header (fact sheet §4.3)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+,-]+")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_DATES = ("%Y-%m-%d", "%m-%d-%Y", "%Y%m%d", "%m/%d/%Y", "%Y/%m/%d")


@dataclass(frozen=True)
class Series:
    """One series of the listing, with the folder it goes to (relative to the source folder)."""

    uid: str
    folder: str
    info: Mapping[str, Any]

    @property
    def image_count(self) -> int | None:
        return _int(self.info.get("ImageCount"))

    @property
    def size_bytes(self) -> int | None:
        return _int(self.info.get("FileSize"))


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def safe_name(text: object, fallback: str = "NA") -> str:
    """Make an API value usable as one folder name: no separators, no leading dot, not empty."""
    cleaned = _UNSAFE.sub("_", str(text or "")).strip(" .")
    return cleaned[:120] or fallback


def retriever_date(value: object) -> str:
    """Return a date as the Retriever's ``MM-DD-YYYY``, or ``""`` when it cannot be read."""
    text = str(value or "").strip()
    for fmt in _DATES:
        try:
            return datetime.strptime(text[:10] if fmt != "%Y%m%d" else text[:8], fmt).strftime("%m-%d-%Y")
        except ValueError:
            continue
    return ""


def series_folders(collection: str, listing: Sequence[Mapping[str, Any]]) -> list[Series]:
    """Place every listed series in its Retriever-style folder, in listing order.

    A series without a well-formed SeriesInstanceUID is skipped with a warning; two series that
    would share a folder keep the later one apart with its full UID.
    """
    placed: list[Series] = []
    taken: set[str] = set()
    for info in listing:
        uid = str(info.get("SeriesInstanceUID") or "").strip()
        if not _UID.match(uid):
            log.warning("%s: skipping a listed series with no usable SeriesInstanceUID (%r)", collection, uid)
            continue
        study = str(info.get("StudyInstanceUID") or "")
        study_dir = "-".join(
            p for p in (retriever_date(info.get("StudyDate")), safe_name(info.get("StudyDesc") or info.get("StudyDescription"), ""), study[-5:]) if p
        ) or "NA"
        number = safe_name(str(info.get("SeriesNumber") or "").split(".")[0], "NA")
        series_dir = f"{number}.000000-{safe_name(info.get('SeriesDescription'), '')}-{uid[-5:]}".replace("--", "-")
        folder = "/".join((safe_name(collection), safe_name(info.get("PatientID")), study_dir, series_dir))
        if folder in taken:
            folder = f"{folder}-{uid}"
        taken.add(folder)
        placed.append(Series(uid, folder, info))
    return placed


def metadata_csv(collection: str, series: Sequence[Series], timestamp: str) -> bytes:
    """Write the Retriever's ``metadata.csv`` for ``series`` (``File Location`` = ``./<folder>``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METADATA_HEADER)
    for s in series:
        i = s.info
        size = s.size_bytes
        writer.writerow([
            s.uid, i.get("Collection") or collection, i.get("ThirdPartyAnalysis") or "NO",
            i.get("CollectionURI") or i.get("DataDescriptionURI") or "", i.get("PatientID") or "",
            i.get("StudyInstanceUID") or "", i.get("StudyDesc") or i.get("StudyDescription") or "",
            retriever_date(i.get("StudyDate")), i.get("SeriesDescription") or "", i.get("Manufacturer") or "",
            i.get("Modality") or "", i.get("SOPClassName") or "", i.get("SOPClassUID") or "",
            s.image_count if s.image_count is not None else "", f"{size / 1e6:.2f} MB" if size is not None else "",
            f"./{s.folder}", timestamp,
        ])
    return buffer.getvalue().encode("utf-8")


def check_series_zip(path: str, series: Series) -> str | None:
    """Compare a downloaded series zip with the listing; return what is wrong, or None."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir()]
    except zipfile.BadZipFile as err:
        return f"series {series.uid}: not a readable zip ({err})"
    dicoms = [m for m in members if m.filename.lower().endswith(".dcm")]
    if series.image_count is not None and len(dicoms) != series.image_count:
        return f"series {series.uid}: {len(dicoms)} DICOM files in the zip, the API lists {series.image_count}"
    size = sum(m.file_size for m in dicoms)
    if series.size_bytes is not None and size != series.size_bytes:
        return f"series {series.uid}: {size} bytes of DICOM in the zip, the API lists {series.size_bytes}"
    return None


class TciaChannel:
    """Download direct files and series zips; write ``metadata.csv`` from the listing."""

    def __init__(self, transport: TciaTransport) -> None:
        self.t = transport
        self.http = UrlChannel(transport.settings)

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        if remote.key == METADATA_CSV:
            if part.offset:
                part.restart()
            part.write(self.t.metadata_bytes())
            return
        self.http.download_url(remote.url, part)
        series = self.t.series_by_path.get(remote.path)
        if series is None:
            return
        problem = check_series_zip(str(part.path), series)
        if problem is not None:
            part.restart()
            raise Transient(problem)

    def close(self) -> None:
        self.http.close()


class TciaTransport:
    """A TCIA collection: its series from the NBIA API plus the source's direct downloads."""

    def __init__(self, source: TciaSource, ctx: TransportContext) -> None:
        if mirror_is_local(ctx.mirror):
            raise FetchError(
                f"{ctx.entry.id}: source {source.name!r} lists series through the NBIA REST API, which a "
                "file:// mirror cannot answer; use an http(s) mirror (e.g. `medcat mirror serve`)."
            )
        self.source = source
        self.ctx = ctx
        self.api = source.api_url.rstrip("/")
        self.settings = HttpSettings(timeouts=ctx.options.timeouts)
        self.series: list[Series] = []
        self.series_by_path: dict[str, Series] = {}
        self._metadata: bytes | None = None

    def api_url(self, endpoint: str, **query: str) -> str:
        """Return an NBIA API URL (mirror applied)."""
        return apply_mirror(f"{self.api}/{endpoint}?{urlencode(query)}", self.ctx.mirror)

    def _listing(self) -> list[Mapping[str, Any]]:
        url = self.api_url("getSeries", Collection=self.source.collection)
        channel = UrlChannel(self.settings)
        policy, rng = self.ctx.options.retry, random.Random()
        try:
            for attempt in range(policy.attempts):
                try:
                    body = channel.get_bytes(url)
                    break
                except Transient as err:
                    if attempt + 1 >= policy.attempts:
                        raise self._listing_error(f"unavailable after {attempt + 1} attempts ({err.reason})") from None
                    time.sleep(policy.delay_s(attempt, err.retry_after_s, rng))
                except Unavailable as err:
                    raise self._listing_error(f"unavailable ({err.reason})") from None
        finally:
            channel.close()
        try:
            listing = json.loads(body.decode("utf-8")) if body.strip() else []
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise self._listing_error(f"not JSON ({err})") from None
        if not isinstance(listing, list) or not all(isinstance(s, dict) for s in listing):
            raise self._listing_error("not a JSON list of series objects")
        if not listing:
            raise self._listing_error("empty: no series in this collection (check the collection name)")
        return listing

    def _listing_error(self, why: str) -> FetchError:
        return FetchError(
            f"{self.ctx.entry.id}: the NBIA series list of collection {self.source.collection!r} "
            f"({self.api}/getSeries) is {why}. Retry later; TCIA's status is announced on "
            "https://www.cancerimagingarchive.net/."
        )

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        files = [pinned_remote(self.source, p, self.ctx.mirror) for p in self.source.files if keep_included(self.source, p.path)]
        self.series = [
            s for s in series_folders(self.source.collection, self._listing()) if keep_included(self.source, s.folder)
        ]
        self._metadata = None
        log.info("%s: %d series listed in %s", self.ctx.entry.id, len(self.series), self.source.collection)
        files.append(RemoteFile(
            path=join_subdir(self.source.subdir, METADATA_CSV),
            url=self.api_url("getSeries", Collection=self.source.collection),
            source=self.source.name,
            verified_by="tofu",
            key=METADATA_CSV,
        ))
        for s in self.series:
            remote = RemoteFile(
                path=join_subdir(self.source.subdir, f"{s.folder}/{s.uid}.zip"),
                url=self.api_url("getImage", NewFileNames="Yes", SeriesInstanceUID=s.uid),
                source=self.source.name,
                verified_by="magic",
                magic=ZIP_MAGIC,
                extract=True,
                key=s.uid,
            )
            self.series_by_path[remote.path] = s
            files.append(remote)
        return files

    def metadata_bytes(self) -> bytes:
        """Return ``metadata.csv`` for the listed series (built once per fetch)."""
        if self._metadata is None:
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000")
            self._metadata = metadata_csv(self.source.collection, self.series, stamp)
        return self._metadata

    def open_channel(self) -> TciaChannel:
        return TciaChannel(self)

    def access_help(self) -> str:
        return access_steps(
            self.ctx.entry, "TCIA's public collections need no account or token (NBIA search API)."
        )


def make_transport(source: TciaSource, ctx: TransportContext) -> TciaTransport:
    return TciaTransport(source, ctx)
