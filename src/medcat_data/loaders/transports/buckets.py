"""Cloud bucket sources (``gcs``, ``s3``): list a prefix, move objects with ranged reads, via fsspec.

The kind modules (``gcs.py``, ``s3.py``) build the fsspec file system (gcsfs, s3fs: the optional
extra ``medcat-data[cloud]``) and say how the store names an object's checksum; this module does
the rest the same way for both. Listing is one recursive object listing under the prefix. Each
object is verified, strongest first, by:

* the source's checksum list (PhysioNet's ``SHA256SUMS.txt`` under the prefix, parsed as the
  ``physionet`` kind parses it): ``verified_by = "sha256sums"``;
* else the store's own md5 (S3's ``ETag`` of an object uploaded in one part, GCS's ``md5Hash``):
  ``"s3-md5"`` / ``"gcs-md5"``;
* else (S3 multipart uploads, GCS composite objects, which carry only a CRC32C) its size, with
  the sha256 recorded on first use (``"tofu"``).

Bytes move in ranged reads of ``CHUNK_BYTES`` appended to the part file, so a cut transfer
resumes from the last whole chunk; the object's ETag (S3) or generation (GCS) is kept as the
part's validator, and a part whose object changed since is restarted from byte 0. Transfers
bytes only: never verifies or commits (the engine does), never decodes content.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from medcat_data.catalog.schema import GcsSource, S3Source
from medcat_data.errors import FetchError, UsageError
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.plan import RemoteFile, VerifiedBy, join_subdir, keep_included, mirror_is_local
from medcat_data.loaders.transports import Denied, IndexFetcher, Transient, TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.physionet import parse_sha256sums

log = logging.getLogger(__name__)

BucketSource = GcsSource | S3Source

#: Bytes asked for per ranged read: what a cut transfer can lose, and one request per 8 MiB
#: (at 100 Mbit/s about 0.7 s of transfer per request, so a round trip of tens of ms costs a few %).
CHUNK_BYTES = 8 << 20

CLOUD_EXTRA = "pip install 'medcat-data[cloud]'"


def require(module: str, kind: str) -> Any:
    """Import an optional client of the ``cloud`` extra, or refuse with the pip command.

    Raises:
        UsageError: the package is not installed (exit 2).
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name is None or err.name.split(".")[0] != module.split(".")[0]:
            raise
        raise UsageError(
            f"{kind} bucket sources need the optional package {module.split('.')[0]}; install it with `{CLOUD_EXTRA}`."
        ) from None


@dataclass(frozen=True)
class StoreHash:
    """The checksum an object store reports for one object, as medcat records it."""

    md5_hex: str | None
    verified_by: str


@dataclass(frozen=True)
class Store:
    """What differs between GCS and S3 once the fsspec file system exists."""

    scheme: str
    """``gs`` or ``s3``: how URLs of objects are written in manifests and messages."""
    fs: Any
    """The fsspec file system (``gcsfs.GCSFileSystem`` or ``s3fs.S3FileSystem``)."""
    checksum: Callable[[Mapping[str, Any]], StoreHash]
    """Read the md5 (or its absence) from one listing entry."""
    validator: Callable[[Mapping[str, Any]], str | None]
    """Read what identifies this version of the object (S3 ETag, GCS generation)."""
    credentials_hint: str


def gcs_md5(info: Mapping[str, Any]) -> StoreHash:
    """Return the hex md5 of a GCS listing entry (``md5Hash`` is base64); composite objects have none."""
    value = info.get("md5Hash")
    if isinstance(value, str) and value:
        try:
            return StoreHash(base64.b64decode(value, validate=True).hex(), "gcs-md5")
        except (binascii.Error, ValueError):
            log.debug("unreadable md5Hash %r", value)
    return StoreHash(None, "tofu")


def s3_md5(info: Mapping[str, Any]) -> StoreHash:
    """Return the md5 an S3 ETag is (one-part uploads); a multipart ETag (``<hex>-<parts>``) is none."""
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag.lower()):
        return StoreHash(etag.lower(), "s3-md5")
    return StoreHash(None, "tofu")


class BucketTransport:
    """List one bucket prefix and open channels reading its objects."""

    def __init__(self, source: BucketSource, ctx: TransportContext, store: Store) -> None:
        self.source = source
        self.ctx = ctx
        self.store = store
        self.bucket = source.bucket.replace("{version}", ctx.version)
        prefix = source.prefix.replace("{version}", ctx.version).strip("/")
        self.root = f"{self.bucket}/{prefix}".rstrip("/")
        self.validators: dict[str, str | None] = {}

    def url_of(self, key: str) -> str:
        """Return the ``gs://`` / ``s3://`` URL of an object key (what the manifest records)."""
        return f"{self.store.scheme}://{self.bucket}/{key}"

    def _remote(self, rel: str, key: str, **kw: Any) -> RemoteFile:
        return RemoteFile(
            path=join_subdir(self.source.subdir, rel), url=self.url_of(key), source=self.source.name, key=key, **kw
        )

    def list_files(self, fetch_index: IndexFetcher) -> list[RemoteFile]:
        listing = self._listing()
        prefix = self.root[len(self.bucket) + 1 :]
        prefix = prefix + "/" if prefix else ""
        objects: dict[str, Mapping[str, Any]] = {}
        for full, info in listing.items():
            key = full.split("/", 1)[1] if "/" in full else ""
            if info.get("type") == "directory" or not key.startswith(prefix) or key.endswith("/"):
                continue
            objects[key[len(prefix) :]] = info
        if not objects:
            raise FetchError(
                f"{self.ctx.entry.id}: {self.store.scheme}://{self.root}/ lists no objects; check the source's "
                "bucket and prefix in the registry."
            )
        sums: dict[str, str] = {}
        name = self.source.checksum_file
        if name is not None:
            found = objects.pop(name, None)
            if found is None:
                raise FetchError(
                    f"{self.ctx.entry.id}: {self.store.scheme}://{self.root}/{name} is not in the bucket; the "
                    "registry's checksum_file is wrong."
                )
            path = fetch_index(self._object(name, prefix + name, found, index=True))
            sums = _read_sums(path, name)
        files = []
        for rel, info in objects.items():
            if not keep_included(self.source, rel):
                continue
            self.validators[join_subdir(self.source.subdir, rel)] = self.store.validator(info)
            digest = sums.get(rel)
            if digest is not None:
                files.append(self._remote(rel, prefix + rel, size=_size(info), hash=digest, verified_by="sha256sums"))
            else:
                files.append(self._object(rel, prefix + rel, info))
        return files

    def _object(self, rel: str, key: str, info: Mapping[str, Any], *, index: bool = False) -> RemoteFile:
        found = self.store.checksum(info)
        self.validators[join_subdir(self.source.subdir, rel)] = self.store.validator(info)
        if found.md5_hex is None:
            return self._remote(rel, key, size=_size(info), verified_by="tofu", index=index)
        # The Literal lists the kinds medcat knew before buckets; the report counts any name.
        return self._remote(
            rel, key, size=_size(info), hash=found.md5_hex, algorithm="md5",
            verified_by=cast(VerifiedBy, found.verified_by), index=index,
        )

    def _listing(self) -> Mapping[str, Mapping[str, Any]]:
        try:
            found = self.store.fs.find(self.root, detail=True)
        except Exception as err:  # noqa: BLE001 - each client raises its own types; worded below
            problem = classify(err, self.url_of(self.root.partition("/")[2]))
            if isinstance(problem, Denied):
                raise problem from None
            raise FetchError(
                f"{self.ctx.entry.id}: cannot list {self.store.scheme}://{self.root}/ ({_short(err)}). "
                "Run the fetch again; if it repeats, check the bucket and your access."
            ) from None
        return cast("Mapping[str, Mapping[str, Any]]", found)

    def open_channel(self) -> BucketChannel:
        return BucketChannel(self)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, self.store.credentials_hint)


class BucketChannel:
    """Read one object at a time in ranged chunks into the part file."""

    def __init__(self, transport: BucketTransport) -> None:
        self.t = transport

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        fs = self.t.store.fs
        key = f"{self.t.bucket}/{remote.key}"
        current = self.t.validators.get(remote.path)
        if part.offset and part.validator is not None and current is not None and part.validator != current:
            log.info("%s: changed upstream since the part was started; starting again", remote.path)
            part.restart()
        part.set_validator(current)
        size = remote.size
        part.total = size
        try:
            while size is None or part.offset < size:
                start = part.offset
                end = start + CHUNK_BYTES if size is None else min(size, start + CHUNK_BYTES)
                data = fs.cat_file(key, start=start, end=end)
                part.write(data)
                if len(data) < end - start:
                    break  # the end of an object of unknown size, or a short answer the engine retries
        except Exception as err:  # noqa: BLE001 - each client raises its own types
            raise classify(err, remote.url) from None

    def close(self) -> None:
        """Nothing to release: the file system's connection pool is shared by the channels."""


def classify(err: BaseException, url: str) -> Exception:
    """Map a gcsfs / s3fs / aiohttp error onto the engine's signals (retry, denied, unavailable)."""
    text = _short(err)
    if isinstance(err, FileNotFoundError):
        return Unavailable(f"{url}: no such object")
    if isinstance(err, PermissionError) or str(err).startswith("Forbidden") or "AccessDenied" in text:
        return Denied(403, url)
    code = getattr(err, "code", None) or getattr(err, "status", None)
    if str(code) in ("401", "403"):
        return Denied(int(str(code)), url)
    if str(code) in ("400", "404", "410", "416"):
        return Unavailable(f"{url}: {text}")
    return Transient(text)


def _short(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())[:300]


def _size(info: Mapping[str, Any]) -> int | None:
    value = info.get("size", info.get("Size"))
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _read_sums(path: Path, name: str) -> dict[str, str]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        return {p: h for h, p in parse_sha256sums(fh) if p != name}


def endpoint(source: BucketSource, ctx: TransportContext) -> str | None:
    """Return the API endpoint to use: ``--mirror`` (http), else the source's, else the store's own.

    Raises:
        FetchError: a ``file://`` mirror, which cannot answer a bucket API.
    """
    if mirror_is_local(ctx.mirror):
        raise FetchError(
            f"{ctx.entry.id}: source {source.name!r} reads a {source.kind} bucket through its API, which a "
            "file:// mirror cannot answer; use an http(s) mirror or the source's endpoint_url."
        )
    return ctx.mirror or source.endpoint_url
