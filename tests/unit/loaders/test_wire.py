"""The lean HTTP/1.1 client against scripted servers: framing, keep-alive, early close."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from medcat_data.loaders.transports.wire import Connection, ProtocolError


@contextmanager
def scripted(*answers: bytes, close_after: bool = False) -> Iterator[tuple[int, list[bytes]]]:
    """Serve one connection: read a request head, send the next scripted answer, repeat."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen: list[bytes] = []

    def run() -> None:
        conn, _ = server.accept()
        with conn:
            for answer in answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                seen.append(data)
                conn.sendall(answer)
            if close_after:
                conn.shutdown(socket.SHUT_RDWR)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], seen
    finally:
        thread.join(timeout=5)
        server.close()


def _connection(port: int) -> Connection:
    return Connection("http", "127.0.0.1", port, connect_timeout_s=5, read_timeout_s=5)


def _body(conn: Connection, target: str = "/x") -> tuple[int, bytes, bool]:
    resp = conn.get(target, {"User-Agent": "t"})
    body = resp.read(1 << 20)
    return resp.status, body, resp.finish()


def test_keep_alive_serves_two_content_length_answers_on_one_connection() -> None:
    answers = (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    with scripted(*answers) as (port, seen):
        conn = _connection(port)
        assert _body(conn) == (200, b"hello", True)
        assert _body(conn, "/y?q=1") == (200, b"abc", True)
        assert conn.requests == 2
        assert seen[1].startswith(b"GET /y?q=1 HTTP/1.1\r\nHost: 127.0.0.1:")
        conn.close()


def test_chunked_bodies_with_extensions_and_trailers() -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
    )
    with scripted(answer) as (port, _):
        conn = _connection(port)
        assert _body(conn) == (200, b"Wikipedia", True)
        assert conn._buf.startswith(b"HTTP/1.1 204")  # the next (pipelined) answer stays buffered
        conn.close()


def test_interim_answers_are_skipped() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    with scripted(answer) as (port, _):
        assert _body(_connection(port)) == (200, b"ok", True)


def test_a_body_without_length_runs_until_close_and_the_connection_is_not_reused() -> None:
    with scripted(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", close_after=True) as (port, _):
        assert _body(_connection(port)) == (200, b"until the end", False)


def test_an_early_close_is_a_protocol_error_not_a_short_file() -> None:
    with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close_after=True) as (port, _):
        conn = _connection(port)
        resp = conn.get("/x", {})
        with pytest.raises(ProtocolError, match="7 body bytes missing"):
            resp.read(100)


def test_readinto1_delivers_what_one_read_brings_into_the_callers_buffer() -> None:
    with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\nabcdef") as (port, _):
        resp = _connection(port).get("/x", {})
        buf = bytearray(4)
        view = memoryview(buf)
        got = b""
        while n := resp.readinto1(view):
            got += bytes(view[:n])
        assert got == b"abcdef" and resp.done and not resp.finish()


@pytest.mark.parametrize("head", [b"garbage\r\n\r\n", b"HTTP/1.1 2x0 OK\r\n\r\n"])
def test_malformed_heads_are_refused(head: bytes) -> None:
    with scripted(head) as (port, _):
        with pytest.raises(ProtocolError, match="malformed status line"):
            _connection(port).get("/x", {})


@pytest.mark.parametrize("value", [b"-1", b"+5", b"1_0"])
def test_a_content_length_that_is_not_plain_digits_is_refused(value: bytes) -> None:
    with scripted(b"HTTP/1.1 200 OK\r\nContent-Length: " + value + b"\r\n\r\nhello") as (port, _):
        with pytest.raises(ProtocolError, match="Content-Length"):
            _connection(port).get("/x", {})


def test_a_repeated_identical_content_length_counts_once() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"
    with scripted(answer) as (port, _):
        assert _body(_connection(port)) == (200, b"hello", True)


@pytest.mark.parametrize("size", [b"-5", b"+5", b"0x5"])
def test_a_chunk_size_that_is_not_hex_digits_is_refused(size: bytes) -> None:
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    with scripted(answer) as (port, _):
        resp = _connection(port).get("/x", {})
        with pytest.raises(ProtocolError, match="bad chunk size"):
            resp.read(100)


def test_the_content_decoder_takes_gzip_members_in_a_row_and_bounds_each_step() -> None:
    import gzip

    from medcat_data.loaders.transports.wire import ContentDecoder, decode_whole

    data = gzip.compress(b"a" * (3 << 20)) + gzip.compress(b"tail")
    pieces: list[bytes] = []
    decoder = ContentDecoder()
    for i in range(0, len(data), 1000):
        decoder.feed(data[i : i + 1000], pieces.append)
    assert decoder.complete and b"".join(pieces) == b"a" * (3 << 20) + b"tail"
    assert max(len(p) for p in pieces) <= 1 << 20
    with pytest.raises(ProtocolError, match="larger than"):
        decode_whole(data, 1 << 20)
    with pytest.raises(ProtocolError, match="ended before its end"):
        decode_whole(data[:20], 1 << 20)
    with pytest.raises(ProtocolError, match="does not decode"):
        decode_whole(b"not gzip at all", 100)
