"""One request/response pair of the mirror: parsed request, small responses, and faulted bodies.

Route modules (``tree``, ``hub_api``, ``kaggle``, ``gdrive``) answer through an ``Exchange`` and
never write to the socket themselves. Bodies are streamed in chunks; a file is never read whole.
"""

from __future__ import annotations

import html
import json
import logging
import socket
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from medcat_data.mirror.faults import Fault, FaultBook
from medcat_data.mirror.request_log import RequestRecord

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024
_FLIP = bytes(255 - i for i in range(256))


class Exchange:
    """The parsed request and the response helpers of one HTTP exchange."""

    def __init__(self, handler: BaseHTTPRequestHandler, record: RequestRecord, faults: FaultBook | None = None) -> None:
        self.handler = handler
        self.record = record
        self.faults = faults or FaultBook()
        self.method = record.method
        self.path = record.path
        self.query = record.query
        self.headers = record.headers
        self.body = b""
        self.dropped = False

    @classmethod
    def parse(cls, handler: BaseHTTPRequestHandler, faults: FaultBook | None = None) -> Exchange:
        """Build an exchange (and its request record) from a handler's request line and headers."""
        parts = urlsplit(handler.path)
        record = RequestRecord(
            method=handler.command,
            path=unquote(parts.path) or "/",
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in handler.headers.items()},
            user_agent=handler.headers.get("User-Agent", ""),
        )
        ex = cls(handler, record, faults)
        ex.body = ex._read_body()
        return ex

    @property
    def is_head(self) -> bool:
        """Tell whether the body must be left out (HEAD)."""
        return self.method == "HEAD"

    def _read_body(self, limit_bytes: int = 1 << 20) -> bytes:
        """Read the small request body up front (POST forms, JSON) so keep-alive stays in sync."""
        try:
            length = int(self.headers.get("content-length", "0") or 0)
        except ValueError:
            length = 0
        if length > limit_bytes:
            self.handler.close_connection = True
        return self.handler.rfile.read(min(length, limit_bytes)) if length > 0 else b""

    def start(self, status: int, headers: Mapping[str, str]) -> None:
        """Send the status line and headers; the body follows through ``write`` or ``stream``."""
        self.record.status = status
        self.handler.send_response(status)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        self.handler.end_headers()

    def respond(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
                content_type: str = "text/plain; charset=utf-8") -> None:
        """Send a complete small response (the body is left out for HEAD)."""
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        all_headers.update(headers or {})
        self.start(status, all_headers)
        if body and not self.is_head:
            self.write(body)

    def json(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        """Send a JSON document."""
        body = json.dumps(payload).encode()
        self.respond(status, body, headers, content_type="application/json")

    def html(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        """Send an HTML page."""
        self.respond(status, text.encode(), headers, content_type="text/html; charset=utf-8")

    def error(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        """Send a short plain-text error page."""
        self.respond(status, f"{status} {html.escape(message)}\n".encode(), headers)

    def redirect(self, location: str, status: int = 301) -> None:
        """Send a redirect to ``location``."""
        self.respond(status, b"", {"Location": location})

    def write(self, data: bytes) -> None:
        """Write body bytes, counting them in the request record."""
        self.record.bytes_sent += len(data)
        try:
            self.handler.wfile.write(data)
        except OSError:
            self.record.bytes_sent -= len(data)
            raise

    def stream(self, source: BinaryIO, length: int) -> None:
        """Copy ``length`` bytes from ``source`` to the client in chunks, applying body faults.

        Body faults armed for this path are consumed here: ``corrupt`` flips every byte, ``slow``
        sleeps and throttles, ``drop`` closes the connection once ``after_bytes`` bytes are out.
        Nothing is sent (and no fault consumed) for HEAD.
        """
        if self.is_head:
            return
        by_kind = {f.kind: f for f in self.faults.take_body_faults(self.path)}
        drop, corrupt, slow = by_kind.get("drop"), by_kind.get("corrupt"), by_kind.get("slow")
        budget = min(length, drop.after_bytes) if drop else length
        chunk = CHUNK_BYTES
        if slow and slow.bytes_per_s:
            chunk = max(1, min(CHUNK_BYTES, slow.bytes_per_s // 20))
        if slow and slow.delay_s:
            time.sleep(slow.delay_s)
        started, sent = time.monotonic(), 0
        while sent < budget:
            data = source.read(min(chunk, budget - sent))
            if not data:
                break
            if corrupt:
                data = data.translate(_FLIP)
            self.write(data)
            sent += len(data)
            if slow:
                _pace(slow, sent, started, done=sent >= budget)
        if drop:
            self.drop()

    def drop(self) -> None:
        """Close the connection abruptly, whatever the announced ``Content-Length``."""
        self.dropped = True
        self.handler.close_connection = True
        try:
            self.handler.wfile.flush()
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _pace(slow: Fault, sent: int, started: float, *, done: bool) -> None:
    """Sleep so a body stays under ``bytes_per_s`` and pauses ``delay_s`` between chunks."""
    if slow.bytes_per_s:
        ahead_s = sent / slow.bytes_per_s - (time.monotonic() - started)
        if ahead_s > 0:
            time.sleep(ahead_s)
    if slow.delay_s and not done:
        time.sleep(slow.delay_s)
