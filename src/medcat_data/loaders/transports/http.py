"""Move bytes over HTTP(S) (and from ``file://`` mirrors) into part files, with resume.

One ``UrlChannel`` per worker keeps one keep-alive connection per origin (``wire.Connection``,
a lean HTTP/1.1 client: for many small files the per-request CPU is the bottleneck, and
``requests`` costs about four times as much per file; see docs/benchmarks.md). What a general
client would add is done here explicitly: redirects (credentials are never forwarded to another
origin), proxies from the environment, timeouts, reconnects.

Resume never stitches two versions of a file. A part with ``offset > 0`` asks
``Range: bytes=<offset>-`` with ``If-Range`` on the validator its first answer carried (a strong
ETag, else Last-Modified). A ``200`` restarts from zero; so does a ``206`` that starts elsewhere
than the offset or carries another validator than the part started with (a server that ignores
``If-Range``). A part with no validator resumes only when an upstream hash covers the file (a
splice then fails the hash and is fetched again from zero); otherwise it starts over.

Content codings: medcat asks for ``identity``. A ``gzip`` or ``deflate`` body is decoded while it
streams (never resumed: a range of encoded bytes cannot continue decoded ones); any other coding,
or a transfer coding other than ``chunked``, is refused. A gzip coding on a ``.gz``/``.tgz`` file
is the file itself (the ``AddEncoding x-gzip .gz`` set-up) and is stored as served, as curl and
wget do. Never verifies or commits; the engine does.
"""

from __future__ import annotations

import base64
import email.utils
import ipaddress
import logging
import os
import socket
import ssl
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from medcat_data import __version__
from medcat_data.errors import ServerUnreachableError, redact
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.credentials import BasicCredentials
from medcat_data.loaders.options import Timeouts
from medcat_data.loaders.plan import RemoteFile
from medcat_data.loaders.transports import Denied, Transient, Unavailable, wire

log = logging.getLogger(__name__)

USER_AGENT = f"medcat-data/{__version__} (+https://github.com/medcat-data/medcat)"
BUFFER_BYTES = 1 << 20
MAX_REDIRECTS = 8
_RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NETWORK_ERRORS = (OSError, ssl.SSLError)
#: Pause before the one retry of a refused connection (then the fetch stops: nothing listens there).
REFUSED_RETRY_S = 0.2
#: Content codings decoded while streaming; ``x-gzip`` is gzip's old name (RFC 9110 8.4.1.3).
_DECODED_CODINGS = frozenset({"gzip", "x-gzip", "deflate"})
#: Names of files that are gzip streams themselves: a gzip coding on them is the file, not a wrapper.
_GZIP_NAMES = (".gz", ".tgz")

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin:
    """Return (scheme, host, port) of a URL, with the default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower(), port


def is_loopback(host: str) -> bool:
    """Tell whether a host name or address is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def retry_after_s(value: str | None) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date) into seconds from now."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def basic_auth_header(cred: BasicCredentials) -> str:
    token = base64.b64encode(f"{cred.username}:{cred.password}".encode()).decode("ascii")
    return f"Basic {token}"


def content_range_start(value: str | None) -> tuple[int, int | None] | None:
    """Parse ``Content-Range: bytes a-b/total`` into (a, total)."""
    if not value or not value.startswith("bytes "):
        return None
    span, _, total = value[6:].partition("/")
    start, _, _ = span.partition("-")
    try:
        return int(start), (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


@dataclass(frozen=True)
class HttpSettings:
    """How a channel talks to servers.

    Attributes:
        user_agent: the ``User-Agent`` header.
        timeouts: connect / read timeouts.
        auth: Basic credentials, sent only to ``auth_origins`` (never after a redirect elsewhere).
        auth_origins: origins that may receive ``auth``.
        headers: extra headers for every request (no secrets here: they are not origin-bound).
    """

    user_agent: str = USER_AGENT
    timeouts: Timeouts = field(default_factory=Timeouts)
    auth: BasicCredentials | None = None
    auth_origins: frozenset[Origin] = frozenset()
    headers: tuple[tuple[str, str], ...] = ()


class Response:
    """An open response: status, headers, the URL it came from, and its body to read."""

    def __init__(self, channel: UrlChannel, origin: Origin, raw: wire.Response, url: str) -> None:
        self.channel = channel
        self.origin = origin
        self.raw = raw
        self.url = url
        self.status = raw.status

    def header(self, name: str) -> str | None:
        return self.raw.header(name)

    def read(self, limit: int) -> bytes:
        return self.raw.read(limit)

    def close(self, *, reusable: bool = False) -> None:
        """Finish with the response; the connection is kept only when the body was fully read."""
        if not (reusable and self.raw.finish()):
            self.channel.drop_connection(self.origin)


class UrlChannel:
    """One worker's connections: keep-alive HTTP(S) per origin, plus ``file://`` reads."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self._conns: dict[Origin, wire.Connection] = {}
        self._auth_header = basic_auth_header(settings.auth) if settings.auth else None
        self._ssl: ssl.SSLContext | None = None
        self._buf = bytearray(BUFFER_BYTES)
        self._view = memoryview(self._buf)
        self._origins: dict[str, Origin] = {}

    # -- connections -------------------------------------------------------------------------

    def _connection(self, origin: Origin) -> wire.Connection:
        conn = self._conns.get(origin)
        if conn is not None:
            return conn
        scheme, host, port = origin
        if scheme not in ("http", "https"):
            raise Unavailable(f"unsupported URL scheme {scheme!r}")
        proxy = None if is_loopback(host) else _proxy_for(scheme, host)
        if scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        conn = wire.Connection(
            scheme,
            host,
            port,
            connect_timeout_s=self.settings.timeouts.connect_s,
            read_timeout_s=self.settings.timeouts.read_s,
            ssl_context=self._ssl,
            proxy=proxy,
        )
        self._conns[origin] = conn
        return conn

    def drop_connection(self, origin: Origin) -> None:
        conn = self._conns.pop(origin, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for origin in list(self._conns):
            self.drop_connection(origin)

    # -- requests ----------------------------------------------------------------------------

    def _split(self, url: str) -> tuple[Origin, str]:
        """Return (origin, request target) of a URL; origins are parsed once per channel."""
        scheme_end = url.find("://")
        path_start = url.find("/", scheme_end + 3) if scheme_end > 0 else -1
        prefix = url if path_start < 0 else url[:path_start]
        origin = self._origins.get(prefix)
        if origin is None:
            parts = urlsplit(prefix)
            scheme = parts.scheme.lower()
            origin = (scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80))
            self._origins[prefix] = origin
        target = "/" if path_start < 0 else url[path_start:]
        if "#" in target:
            target = target[: target.index("#")]
        return origin, target

    def _send(self, url: str, headers: dict[str, str]) -> Response:
        origin, target = self._split(url)
        all_headers = {"User-Agent": self.settings.user_agent, "Accept-Encoding": "identity"}
        all_headers.update(self.settings.headers)
        if self._auth_header and origin in self.settings.auth_origins:
            all_headers["Authorization"] = self._auth_header
        all_headers.update(headers)
        for attempt in (1, 2):
            conn = self._connection(origin)
            reused = conn.is_open
            try:
                # A plain-http proxy takes the absolute URL as the request target.
                raw = conn.get(url if conn.proxy and origin[0] == "http" else target, all_headers)
            except (socket.timeout, TimeoutError) as err:
                self.drop_connection(origin)
                raise Transient(f"timed out talking to {origin[1]}") from err
            except ConnectionRefusedError as err:
                # Nothing listens there: a stopped mirror, a wrong port. One quick retry covers a server
                # restarting between two requests; the engine's six retries over ~12 s would not help.
                self.drop_connection(origin)
                if attempt == 1:
                    time.sleep(REFUSED_RETRY_S)
                    continue
                raise ServerUnreachableError(url, is_loopback(origin[1])) from err
            except _NETWORK_ERRORS as err:
                self.drop_connection(origin)
                if reused and attempt == 1:
                    continue  # a kept-alive connection the server had closed: retry at once
                raise Transient(f"connection to {origin[1]} failed ({type(err).__name__})") from err
            return Response(self, origin, raw, url)
        raise AssertionError("unreachable")

    def open(self, url: str, headers: dict[str, str] | None = None) -> Response:
        """GET ``url`` following redirects; return a 2xx/206/304/416 response.

        Raises:
            Transient: network trouble, 408/425/429/5xx (with ``Retry-After``).
            Denied: 401 or 403.
            Unavailable: 404, 410 and other client errors.
            ServerUnreachableError: the connection was refused twice (nothing listens there).
        """
        headers = dict(headers or {})
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(current, headers)
            status = resp.status
            if status in _REDIRECTS:
                location = resp.header("Location")
                resp.close(reusable=_drain(resp))
                if not location:
                    raise Unavailable(f"redirect without Location (HTTP {status})")
                nxt = urljoin(current, location)
                if origin_of(nxt) != origin_of(current) and origin_of(current) in self.settings.auth_origins:
                    log.debug("redirected to another host; credentials are not forwarded")
                current = nxt
                continue
            if status < 300 or status in (304, 416):
                return resp
            wait = retry_after_s(resp.header("Retry-After"))
            resp.close(reusable=_drain(resp))
            if status in (401, 403):
                raise Denied(status, url)
            if status in _RETRY_STATUSES or status >= 500:
                raise Transient(f"HTTP {status}", wait)
            raise Unavailable(f"HTTP {status}")
        raise Unavailable(f"more than {MAX_REDIRECTS} redirects")

    def get_bytes(self, url: str, limit: int = 64 << 20) -> bytes:
        """Return a small body whole (checksum lists, API answers), at most ``limit`` bytes."""
        if url.startswith("file:"):
            path = _local_path(url)
            try:
                with path.open("rb") as fh:
                    return fh.read(limit)
            except OSError as err:
                raise Unavailable(f"cannot read {path}: {err.strerror}") from err
        resp = self.open(url)
        try:
            coding = content_coding(resp, urlsplit(url).path, url)
            data = resp.read(limit)
            if coding is not None:
                data = wire.decode_whole(data, limit)
        except _NETWORK_ERRORS as err:
            resp.close()
            raise Transient(f"connection lost ({type(err).__name__})") from err
        except BaseException:
            resp.close()
            raise
        resp.close(reusable=True)
        return data

    # -- downloads ---------------------------------------------------------------------------

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        """Stream a file into ``part``, resuming from ``part.offset`` when possible."""
        if remote.url.startswith("file:"):
            copy_local(_local_path(remote.url), part)
            return
        self.download_url(remote.url, part)

    def download_url(self, url: str, part: PartFile) -> None:
        """Stream ``url`` into ``part`` (resume-aware); see the module docstring.

        Raises:
            Transient: network trouble, a cut body, or a resume that had to restart from zero.
            Unavailable: a coding medcat does not decode, or the file cannot be had.
        """
        offset = part.offset
        if offset and part.expected_size is not None and offset >= part.expected_size:
            return
        if offset and part.validator is None and part.expected_hash is None:
            # Nothing could tell the next bytes from another version's, nor catch a splice later.
            log.debug("%s: no validator and no hash to guard a resume; starting over", part.rel)
            part.restart()
            offset = 0
        headers: dict[str, str] = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if part.validator:
                headers["If-Range"] = part.validator
        resp = self.open(url, headers)
        decoder: wire.ContentDecoder | None = None
        try:
            total, decoder = self._start_body(resp, part, offset, url)
            if decoder is None:
                self._stream(resp, part)
            else:
                self._stream_decoded(resp, part, decoder)
        except _NETWORK_ERRORS as err:
            resp.close()
            if decoder is not None:
                part.restart()  # decoded bytes have no offset in the encoded body: never resumed
                raise Transient(f"encoded body failed after {part.offset} bytes ({err}); restarting from zero") from err
            raise Transient(f"connection lost after {part.offset} bytes ({type(err).__name__})") from err
        except BaseException:
            resp.close()
            raise
        resp.close(reusable=True)
        if decoder is not None and not decoder.complete:
            part.restart()
            raise Transient("the encoded body ended before its end; restarting from zero")
        if total is not None and part.offset != total:
            raise Transient(f"body ended at {part.offset} of {total} bytes")

    def _start_body(
        self, resp: Response, part: PartFile, offset: int, url: str
    ) -> tuple[int | None, wire.ContentDecoder | None]:
        """Check the answer against the request, restart the part if needed.

        Returns the total size (``None`` when unknown) and the decoder of a content coding.
        """
        status = resp.status
        if status == 416:
            # Nothing past our offset: either the part is complete, or it is longer than the file.
            span = content_range_start(resp.header("Content-Range"))
            changed = part.validator is not None and _validator(resp) is not None and not _same_version(part.validator, resp)
            resp.close(reusable=_drain(resp))
            if span and span[1] is not None and span[1] == offset and not changed:
                return offset, None
            part.restart()
            raise Transient("range not satisfiable; restarting from zero", 0.0)
        coding = content_coding(resp, part.rel, url)
        length = _int(resp.header("Content-Length"))
        if status == 206:
            span = _resumed_span(resp, part, offset, coding)
            total = span[1] if span[1] is not None else (None if length is None else offset + length)
        else:
            if offset:
                log.debug("%s: server sent the whole file (range ignored or file changed); restarting", part.rel)
                part.restart()
            total = length
        part.content_type = resp.header("Content-Type")
        if coding is not None:
            # Sizes on the wire are the encoded ones, and a later range could not continue
            # decoded bytes: no total to check against, no validator to resume with.
            log.debug("%s: decoding a %s-encoded body", part.rel, coding)
            part.set_validator(None)
            part.total = None
            return None, wire.ContentDecoder()
        part.set_validator(_validator(resp))
        part.total = total
        return total, None

    def _stream(self, resp: Response, part: PartFile) -> None:
        # One socket read per chunk: bytes reach the part file (and a resume point) as they
        # arrive, through one reused buffer.
        view = self._view
        readinto1 = resp.raw.readinto1
        write = part.write
        while n := readinto1(view):
            write(view[:n])

    def _stream_decoded(self, resp: Response, part: PartFile, decoder: wire.ContentDecoder) -> None:
        view = self._view
        readinto1 = resp.raw.readinto1
        while n := readinto1(view):
            decoder.feed(view[:n], part.write)


def _proxy_for(scheme: str, host: str) -> tuple[str, int] | None:
    """Return the (host, port) of the proxy the environment names for ``scheme``, if any."""
    proxies = urllib.request.getproxies()
    if not proxies or urllib.request.proxy_bypass(host):
        return None
    url = proxies.get(scheme)
    if not url:
        return None
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return (parts.hostname or "", parts.port or 8080)


def content_coding(resp: Response, name: str, url: str) -> str | None:
    """Return the content coding to undo (``gzip``, ``deflate``), or ``None`` when the body is the file.

    ``name`` is the file's name or path: a gzip coding on a ``.gz`` / ``.tgz`` file is the file.

    Raises:
        Unavailable: a transfer coding other than ``chunked``, stacked codings, or a coding that
            medcat does not decode (``br``, ``zstd``, ``compress``, ...).
    """
    transfer = [c for c in _codings(resp.header("Transfer-Encoding")) if c != "chunked"]
    if transfer:
        raise Unavailable(_coding_refusal("Transfer-Encoding", transfer, url))
    content = [c for c in _codings(resp.header("Content-Encoding")) if c != "identity"]
    if not content:
        return None
    if len(content) == 1 and content[0] in ("gzip", "x-gzip") and name.lower().endswith(_GZIP_NAMES):
        return None
    if len(content) > 1 or content[0] not in _DECODED_CODINGS:
        raise Unavailable(_coding_refusal("Content-Encoding", content, url))
    return content[0]


def _codings(value: str | None) -> list[str]:
    return [c.strip().lower() for c in (value or "").split(",") if c.strip()]


def _coding_refusal(header: str, codings: list[str], url: str) -> str:
    return (
        f"{redact(url)} answered with {header}: {', '.join(codings)}, which medcat does not decode (it asks "
        "for identity); nothing was kept. Ask the host to serve the file unencoded, or download it by hand "
        "and fetch with --mirror file://DIR."
    )


def _resumed_span(resp: Response, part: PartFile, offset: int, coding: str | None) -> tuple[int, int | None]:
    """Accept a 206 only when it continues the part's version of the file at its offset.

    Returns the (start, total) of its ``Content-Range``.

    Raises:
        Transient: after restarting the part from zero (retried at once).
    """
    span = content_range_start(resp.header("Content-Range"))
    if span is None or span[0] != offset:
        why = "unexpected Content-Range"
    elif coding is not None:
        why = f"a {coding}-encoded range cannot continue decoded bytes"
    elif part.validator is not None and not _same_version(part.validator, resp):
        why = "the file changed upstream (its validator is not the one the part started with)"
    else:
        return span
    part.restart()
    raise Transient(f"{why}; restarting from zero", 0.0)


def _same_version(stored: str, resp: Response) -> bool:
    """Tell whether an answer carries the validator a part started with (strong ETag or date)."""
    if stored.startswith('"'):
        return resp.header("ETag") == stored
    return resp.header("Last-Modified") == stored


def _validator(resp: Response) -> str | None:
    etag = resp.header("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return resp.header("Last-Modified")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _drain(resp: Response, limit: int = 64 << 10) -> bool:
    """Read a small error/redirect body so the connection can be reused; tell whether it can."""
    try:
        length = _int(resp.header("Content-Length"))
        if length is not None and length > limit:
            return False
        resp.read(limit)
        return resp.raw.done
    except _NETWORK_ERRORS:
        return False


def _local_path(url: str) -> Path:
    parts = urlsplit(url)
    return Path(unquote(parts.path))


def copy_local(path: Path, part: PartFile) -> None:
    """Copy a local file (a ``file://`` mirror) into ``part`` from ``part.offset`` on."""
    try:
        fh = path.open("rb", buffering=0)
    except FileNotFoundError as err:
        raise Unavailable(f"not in the local mirror: {path}") from err
    except OSError as err:
        raise Unavailable(f"cannot read {path}: {err.strerror}") from err
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if part.offset > size:
            part.restart()
        fh.seek(part.offset)
        part.total = size
        buf = bytearray(BUFFER_BYTES)
        view = memoryview(buf)
        while n := fh.readinto(buf):
            part.write(view[:n])


