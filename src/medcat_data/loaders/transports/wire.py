"""A lean HTTP/1.1 client connection: one GET at a time, keep-alive, bodies read into a caller's buffer.

Why not ``http.client`` or ``requests``: for thousands of small files the per-request CPU is the
bottleneck, and most of it is spent outside the transfer (``email``-based header parsing, a
``makefile`` per response, header validation, a fresh buffer per read). This module does the
minimum HTTP/1.1 needs for downloads: send one request line with headers, parse the status line
and headers, and deliver the body (``Content-Length``, ``chunked`` or until close) straight into
a reusable buffer. It speaks TLS through ``ssl`` and tunnels through an HTTP proxy with
``CONNECT``. Measured figures are in docs/benchmarks.md. Knows nothing of files or retries.
"""

from __future__ import annotations

import socket
import ssl
import struct
import sys
import zlib
from collections.abc import Callable

_MAX_HEAD_BYTES = 64 << 10
_RECV_BYTES = 64 << 10
#: Decoded bytes produced per step, so that a small encoded body cannot balloon in memory at once.
_DECODE_STEP_BYTES = 1 << 20
#: SO_RCVTIMEO/SO_SNDTIMEO as struct timeval("ll") is the Linux ABI; elsewhere Python timeouts.
_KERNEL_TIMEOUTS = sys.platform.startswith("linux")


class ProtocolError(ConnectionError):
    """The peer broke HTTP/1.1 (a malformed head, a bad chunk) or closed the connection early."""


def _content_length(value: str) -> int:
    """Parse ``Content-Length``: digits only; repeated identical values count once (RFC 9110 8.6).

    Raises:
        ProtocolError: a sign, a blank, differing values or anything but digits.
    """
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1:
        raise ProtocolError(f"conflicting Content-Length values {value[:40]!r}")
    (text,) = values
    if not text.isascii() or not text.isdigit():
        raise ProtocolError(f"malformed Content-Length {value[:40]!r}")
    return int(text)


def _timed_out(err: OSError) -> TimeoutError:
    """A kernel receive/send timeout surfaces as EAGAIN on a blocking socket."""
    return TimeoutError(f"no data within the read timeout ({err.strerror})")


class Connection:
    """One keep-alive connection to an origin (optionally through a proxy)."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        proxy: tuple[str, int] | None = None,
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.ssl_context = ssl_context
        self.proxy = proxy
        self.sock: socket.socket | None = None
        self._buf = bytearray()
        self._host_header = host if port in (80, 443) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            self._host_header = f"[{host}]" if port in (80, 443) else f"[{host}]:{port}"
        self.requests = 0

    # -- connection --------------------------------------------------------------------------

    def connect(self) -> None:
        """Open the TCP (and TLS) connection; through ``CONNECT`` when a proxy is set for https."""
        address = self.proxy or (self.host, self.port)
        sock = socket.create_connection(address, timeout=self.connect_timeout_s)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                if self.proxy is not None:
                    self._tunnel(sock)
                context = self.ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.host)
                sock.settimeout(self.read_timeout_s)
            elif _KERNEL_TIMEOUTS:
                # Blocking socket with kernel-enforced timeouts: Python's own timeout costs a
                # poll() before every recv/send, a measurable share of a small file's CPU.
                sock.settimeout(None)
                seconds = int(self.read_timeout_s)
                micros = int((self.read_timeout_s - seconds) * 1e6)
                value = struct.pack("ll", seconds, micros)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
            else:
                sock.settimeout(self.read_timeout_s)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._buf.clear()

    def _tunnel(self, sock: socket.socket) -> None:
        line = f"CONNECT {self.host}:{self.port} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n\r\n"
        sock.sendall(line.encode("ascii"))
        self.sock = sock
        try:
            status, _, _ = self._read_head()
        finally:
            self.sock = None
        if status != 200:
            raise ProtocolError(f"proxy refused the tunnel (HTTP {status})")
        self._buf.clear()

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self._buf.clear()

    @property
    def is_open(self) -> bool:
        return self.sock is not None

    # -- exchange ----------------------------------------------------------------------------

    def get(self, target: str, headers: dict[str, str]) -> Response:
        """Send ``GET target`` with ``headers`` and return the response (body not yet read).

        ``target`` is the origin-form path and query, or an absolute URL for a plain-http proxy.
        """
        if self.sock is None:
            self.connect()
        assert self.sock is not None
        lines = [f"GET {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        except BlockingIOError as err:
            raise _timed_out(err) from None
        self.requests += 1
        while True:
            status, version, fields = self._read_head()
            if not 100 <= status < 200:
                return Response(self, status, version, fields)

    def _read_head(self) -> tuple[int, str, dict[str, str]]:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > _MAX_HEAD_BYTES:
                raise ProtocolError("response head too large")
            chunk = self._recv()
            if not chunk:
                raise ProtocolError("connection closed before a response")
            buf += chunk
            end = buf.find(b"\r\n\r\n", max(0, len(buf) - len(chunk) - 3))
        head = bytes(buf[:end]).decode("latin-1")
        del buf[: end + 4]
        status_line, _, rest = head.partition("\r\n")
        version, _, tail = status_line.partition(" ")
        code = tail[:3]
        if not version.startswith("HTTP/") or not code.isdigit():
            raise ProtocolError(f"malformed status line {status_line[:80]!r}")
        fields: dict[str, str] = {}
        for line in rest.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                value = value.strip()
                fields[key] = f"{fields[key]}, {value}" if key in fields else value
        return int(code), version, fields

    def _recv(self) -> bytes:
        assert self.sock is not None
        try:
            return self.sock.recv(_RECV_BYTES)
        except BlockingIOError as err:
            raise _timed_out(err) from None


class Response:
    """A response whose body is delivered by ``readinto1`` (Content-Length, chunked or until close)."""

    def __init__(self, conn: Connection, status: int, version: str, headers: dict[str, str]) -> None:
        self.conn = conn
        self.status = status
        self.headers = headers
        connection = headers.get("connection", "").lower()
        self.will_close = "close" in connection or (version == "HTTP/1.0" and "keep-alive" not in connection)
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        self.remaining: int | None = None
        if status in (204, 304):
            self.remaining = 0
        elif not self.chunked and "content-length" in headers:
            self.remaining = _content_length(headers["content-length"])
        elif not self.chunked:
            self.will_close = True  # body runs until the server closes the connection
        self.done = self.remaining == 0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def readinto1(self, view: memoryview) -> int:
        """Read at most ``len(view)`` body bytes with at most one socket read; 0 at the end.

        Raises:
            ProtocolError: the connection closed before the announced end of the body.
        """
        if self.done:
            return 0
        if self.chunked:
            return self._chunked_into(view)
        limit = len(view) if self.remaining is None else min(len(view), self.remaining)
        n = self._take(view, limit)
        if n == 0:
            if self.remaining is None:
                self.done = True
                return 0
            raise ProtocolError(f"connection closed with {self.remaining} body bytes missing")
        if self.remaining is not None:
            self.remaining -= n
            if self.remaining == 0:
                self.done = True
        return n

    def _take(self, view: memoryview, limit: int) -> int:
        """Move up to ``limit`` bytes from the connection's leftover buffer, else one recv."""
        buf = self.conn._buf
        n = 0
        if buf:
            n = min(limit, len(buf))
            view[:n] = buf[:n]
            del buf[:n]
            if n == limit or buf:
                return n
        # More bytes are due (n < limit): one read tops the view up, so that a small body
        # arrives in one piece (one write, one hash update) instead of two.
        sock = self.conn.sock
        if sock is None:
            return n
        try:
            return n + sock.recv_into(view[n:], limit - n)
        except BlockingIOError as err:
            raise _timed_out(err) from None

    def _chunked_into(self, view: memoryview) -> int:
        if self._chunk_left == 0:
            size = self._chunk_size()
            if size == 0:
                self._skip_trailers()
                self.done = True
                return 0
            self._chunk_left = size
        n = self._take(view, min(len(view), self._chunk_left))
        if n == 0:
            raise ProtocolError("connection closed inside a chunk")
        self._chunk_left -= n
        if self._chunk_left == 0:
            self._expect_crlf()
        return n

    def _line(self) -> bytes:
        buf = self.conn._buf
        while (end := buf.find(b"\r\n")) < 0:
            if len(buf) > _MAX_HEAD_BYTES:
                raise ProtocolError("chunk header too long")
            chunk = self.conn._recv()
            if not chunk:
                raise ProtocolError("connection closed inside a chunked body")
            buf += chunk
        line = bytes(buf[:end])
        del buf[: end + 2]
        return line

    def _chunk_size(self) -> int:
        line = self._line().split(b";", 1)[0].strip()
        # Hex digits only: int() would also take a sign, "0x" or underscores.
        if not line or len(line) > 16 or line.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError(f"bad chunk size {line[:20]!r}")
        return int(line, 16)

    def _expect_crlf(self) -> None:
        if self._line() != b"":
            raise ProtocolError("missing CRLF after a chunk")

    def _skip_trailers(self) -> None:
        while self._line():
            pass

    def read(self, limit: int) -> bytes:
        """Read the body whole, up to ``limit`` bytes (small answers: lists, pages, errors)."""
        out = bytearray()
        scratch = bytearray(min(limit, 1 << 20) or 1)
        view = memoryview(scratch)
        while len(out) < limit and (n := self.readinto1(view[: min(len(view), limit - len(out))])):
            out += view[:n]
        return bytes(out)

    def finish(self) -> bool:
        """Release the connection for the next request if the body was read to its end.

        Returns whether the connection can be reused; otherwise it is closed.
        """
        if self.done and not self.will_close:
            return True
        self.conn.close()
        return False


class ContentDecoder:
    """Undo a ``gzip`` or ``deflate`` content coding while a body streams, in bounded steps.

    Takes gzip (several members in a row, as RFC 1952 allows) and the zlib format that RFC 9110
    calls ``deflate``; the header tells which. Knows nothing of files: decoded bytes go to the
    caller's ``write``.
    """

    def __init__(self) -> None:
        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)

    def feed(self, data: bytes | memoryview, write: Callable[[bytes], object]) -> None:
        """Decode ``data`` and hand the result to ``write``.

        Raises:
            ProtocolError: the body is not gzip or zlib data.
        """
        pending = bytes(data)
        try:
            while pending:
                out = self._z.decompress(pending, _DECODE_STEP_BYTES)
                if out:
                    write(out)
                if self._z.eof:
                    pending = self._z.unused_data
                    if pending:  # another gzip member follows
                        self._z = zlib.decompressobj(zlib.MAX_WBITS | 32)
                else:
                    pending = self._z.unconsumed_tail
        except zlib.error as err:
            raise ProtocolError(f"the encoded body does not decode ({err})") from None

    @property
    def complete(self) -> bool:
        """Tell whether the encoded stream reached its end (a cut one has not)."""
        return self._z.eof


def decode_whole(data: bytes, limit: int) -> bytes:
    """Decode a small gzip/deflate answer whole (a list, an API answer), at most ``limit`` bytes.

    Raises:
        ProtocolError: the answer does not decode, ends early, or decodes past ``limit``.
    """
    out = bytearray()

    def add(chunk: bytes) -> None:
        if len(out) + len(chunk) > limit:
            raise ProtocolError(f"decoded answer larger than {limit} bytes")
        out.extend(chunk)

    decoder = ContentDecoder()
    decoder.feed(data, add)
    if not decoder.complete:
        raise ProtocolError("the encoded answer ended before its end")
    return bytes(out)
