"""Hostile and broken servers: a resume never stitches two versions of a file, an encoded body is
never stored as the file, a web page is never recorded as a file, a cut body is never a short file.

Every test runs the real fetch engine against a small server on 127.0.0.1 that answers exactly
as scripted. The loopback mirror is a well-behaved static host: it honours ``If-Range`` and never
encodes a body, so it cannot play these servers.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, FetchReport, RetryPolicy, fetch
from tests.unit.loaders.entries import entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration

SIZE = 200_000
CUT = 90_000
V1, V2 = payload(1, SIZE), payload(2, SIZE)
DICOM = b"\0" * 128 + b"DICM" + payload(3, 20_000)
LOGIN = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body><form method=post action=/login>"
    b"<input name=user><input type=password name=pass></form></body></html>"
)
SECRET = "s3cr3t-token-value"
DAY1, DAY2 = "Mon, 01 Jan 2024 00:00:00 GMT", "Tue, 02 Jan 2024 00:00:00 GMT"


@dataclass(frozen=True)
class Answer:
    """One scripted response; ``send`` cuts the body (then the connection closes)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    send: int | None = None
    chunked: bool = False


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it (header names lower-case)."""

    path: str
    headers: dict[str, str]

    @property
    def offset(self) -> int | None:
        value = self.headers.get("range")
        return None if value is None else int(value.removeprefix("bytes=").rstrip("-"))


#: Answers a request, given the requests seen so far for the same path (this one last).
Script = Callable[[Seen, int], Answer]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server = self.server
        assert isinstance(server, _Server)
        seen = Seen(self.path.split("?", 1)[0], {k.lower(): v for k, v in self.headers.items()})
        with server.lock:
            server.seen.append(seen)
            answer = server.script(seen, sum(1 for s in server.seen if s.path == seen.path) - 1)
        headers = dict(answer.headers)
        if answer.chunked:
            headers.setdefault("Transfer-Encoding", "chunked")
        else:
            headers.setdefault("Content-Length", str(len(answer.body)))
        head = f"HTTP/1.1 {answer.status} Scripted\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.wfile.write(head.encode("latin-1") + b"\r\n")
        body = answer.body if answer.send is None else answer.body[: answer.send]
        if answer.chunked:
            for i in range(0, len(body), 8192):
                piece = body[i : i + 8192]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            if answer.send is None:
                self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)
        if answer.send is not None:  # the server goes away mid-body
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: Script) -> None:
        self.script = script
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def serve() -> Iterator[Callable[[Script], _Server]]:
    started: list[_Server] = []

    def start(script: Script) -> _Server:
        server = _Server(script)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def _source(server: _Server, *names: str, query: str = f"?token={SECRET}", **extra: Any) -> dict[str, Any]:
    files = [{"url": f"{server.url}/data/{n}{query}", "path": n} for n in names]
    return {"name": "files", "kind": "urls", "files": files, **extra}


def _fetch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: dict[str, Any], attempts: int = 4) -> FetchReport:
    use_registry(monkeypatch, tmp_path, entry("ft-hostile", [source]))
    options = FetchOptions(dest=tmp_path / "d", jobs=1, retry=RetryPolicy(attempts=attempts, base_s=0.01, max_s=0.05))
    return fetch(resolve("ft-hostile", load_registry()), options)


def _ranged(body: bytes, offset: int, headers: dict[str, str]) -> Answer:
    """What a server answers to ``Range: bytes=<offset>-`` for ``body``."""
    span = f"bytes {offset}-{len(body) - 1}/{len(body)}"
    return Answer(206, {**headers, "Content-Range": span}, body[offset:])


def _no_parts_left(dest: Path) -> bool:
    return not list((dest / ".medcat/partial").glob("*.part"))


# -- resume never stitches two versions --------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "later", "if_range"),
    [
        ({"ETag": '"v1"'}, {"ETag": '"v2"'}, '"v1"'),
        ({"ETag": 'W/"weak"', "Last-Modified": DAY1}, {"ETag": 'W/"weak"', "Last-Modified": DAY2}, DAY1),
        ({"ETag": '"v1"'}, {}, '"v1"'),
    ],
    ids=["etag-changed", "last-modified-changed", "206-without-validator"],
)
def test_a_206_from_a_server_ignoring_if_range_restarts_the_file_from_zero(  # type: ignore[no-untyped-def]
    serve, tmp_path, monkeypatch, first: dict[str, str], later: dict[str, str], if_range: str
) -> None:
    """The file changes upstream mid-transfer; the server answers the resume with 206 anyway."""

    def script(seen: Seen, index: int) -> Answer:
        if index == 0:
            return Answer(200, first, V1, send=CUT)
        if seen.offset is not None:
            return _ranged(V2, seen.offset, later)
        return Answer(200, later, V2)

    server = serve(script)
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"))
    assert report.ok, report.failed
    assert (tmp_path / "d/scan.dcm").read_bytes() == V2
    _, resumed, restarted = server.seen
    assert resumed.offset == CUT and resumed.headers["if-range"] == if_range
    assert restarted.offset is None


def test_a_part_without_validator_or_hash_starts_over_instead_of_resuming(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def script(seen: Seen, index: int) -> Answer:
        if index == 0:
            return Answer(200, {}, V1, send=CUT)
        if seen.offset is not None:
            return _ranged(V2, seen.offset, {})
        return Answer(200, {}, V2)

    server = serve(script)
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"))
    assert report.ok, report.failed
    assert (tmp_path / "d/scan.dcm").read_bytes() == V2
    assert [s.offset for s in server.seen] == [None, None]


def test_a_206_starting_elsewhere_than_the_requested_offset_restarts_from_zero(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A guard: this already held; kept beside the validator checks that now share its code."""

    def script(seen: Seen, index: int) -> Answer:
        if index == 0:
            return Answer(200, {"ETag": '"v1"'}, V1, send=CUT)
        if seen.offset is not None:
            return _ranged(V1, 0, {"ETag": '"v1"'})  # the whole file, labelled as a range from 0
        return Answer(200, {"ETag": '"v1"'}, V1)

    server = serve(script)
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"))
    assert report.ok, report.failed
    assert (tmp_path / "d/scan.dcm").read_bytes() == V1
    assert [s.offset for s in server.seen] == [None, CUT, None]


# -- content codings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress)],
)
def test_a_gzip_or_deflate_body_is_decoded_never_stored_encoded(  # type: ignore[no-untyped-def]
    serve, tmp_path, monkeypatch, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    server = serve(lambda seen, index: Answer(200, {"Content-Encoding": coding, "ETag": '"e"'}, encode(DICOM)))
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"))
    assert report.ok, report.failed
    assert (tmp_path / "d/scan.dcm").read_bytes() == DICOM
    assert server.seen[0].headers["accept-encoding"] == "identity"


def test_a_cut_encoded_body_is_fetched_again_from_zero_never_resumed(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    encoded = gzip.compress(V1)
    headers = {"Content-Encoding": "gzip", "ETag": '"e"'}

    def script(seen: Seen, index: int) -> Answer:
        if index == 0:
            return Answer(200, headers, encoded, send=len(encoded) // 2)
        if seen.offset is not None:  # a naive server ranges over the encoded bytes
            return _ranged(encoded, seen.offset, headers)
        return Answer(200, headers, encoded)

    server = serve(script)
    report = _fetch(tmp_path, monkeypatch, _source(server, "series.zip"))
    assert report.ok, report.failed
    assert (tmp_path / "d/series.zip").read_bytes() == V1
    assert [s.offset for s in server.seen] == [None, None]


@pytest.mark.parametrize(
    ("headers", "chunked", "named"),
    [
        ({"Content-Encoding": "br"}, False, "Content-Encoding: br"),
        ({"Content-Encoding": "gzip, gzip"}, False, "Content-Encoding: gzip, gzip"),
        ({"Transfer-Encoding": "gzip, chunked"}, True, "Transfer-Encoding: gzip"),
    ],
    ids=["brotli", "stacked", "transfer-coding"],
)
def test_an_encoding_medcat_does_not_decode_is_refused_and_nothing_is_kept(  # type: ignore[no-untyped-def]
    serve, tmp_path, monkeypatch, headers: dict[str, str], chunked: bool, named: str
) -> None:
    server = serve(lambda seen, index: Answer(200, headers, gzip.compress(DICOM), chunked=chunked))
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"))
    (failed,) = report.failed
    assert named in failed.reason and f"{server.url}/data/scan.dcm" in failed.reason
    assert SECRET not in failed.reason and "\n" not in failed.reason
    assert not (tmp_path / "d/scan.dcm").exists() and _no_parts_left(tmp_path / "d")
    assert len(server.seen) == 1  # refused, not retried


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "application/gzip"}, {"Content-Type": "text/csv", "Content-Encoding": "gzip"}],
    ids=["gzip-type", "addencoding-gzip"],
)
def test_a_gz_file_is_stored_as_served(serve, tmp_path, monkeypatch, headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """Also a guard: ``AddEncoding x-gzip .gz`` hosts label the .gz file itself as gzip-encoded."""
    packed = gzip.compress(b"id,label\n1,a\n")
    server = serve(lambda seen, index: Answer(200, headers, packed))
    report = _fetch(tmp_path, monkeypatch, _source(server, "labels.csv.gz"))
    assert report.ok, report.failed
    assert (tmp_path / "d/labels.csv.gz").read_bytes() == packed


def test_a_gzip_encoded_checksum_list_is_decoded_so_files_stay_verified(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    listing = f"{hashlib.md5(DICOM).hexdigest()}  scan.dcm\n".encode()

    def script(seen: Seen, index: int) -> Answer:
        if seen.path.endswith("MD5SUMS"):
            return Answer(200, {"Content-Encoding": "gzip"}, gzip.compress(listing))
        return Answer(200, {}, DICOM)

    server = serve(script)
    source = _source(server, "scan.dcm", query="", checksum_files=[{"url": f"{server.url}/data/MD5SUMS", "algorithm": "md5"}])
    report = _fetch(tmp_path, monkeypatch, source)
    assert report.ok, report.failed
    assert dict(report.verification) == {"md5-list": 1}


# -- trust on first use: a web page is not the file --------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type", "body"),
    [
        ("scan.dcm", "text/html; charset=utf-8", LOGIN),
        ("series.zip", "text/html", b"Access denied. Please sign in to continue."),
        ("image.png", "application/octet-stream", LOGIN),
        ("table.parquet", None, b"  <html><body>Quota exceeded</body></html>"),
        ("labels.csv", "text/html", LOGIN),
    ],
    ids=["login-dcm", "text-zip", "html-body-png", "html-body-no-type-parquet", "login-csv"],
)
def test_a_web_page_answered_for_a_file_is_refused_naming_the_url_and_what_came_back(  # type: ignore[no-untyped-def]
    serve, tmp_path, monkeypatch, name: str, content_type: str | None, body: bytes
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    server = serve(lambda seen, index: Answer(200, headers, body))
    report = _fetch(tmp_path, monkeypatch, _source(server, name))
    (failed,) = report.failed
    assert failed.status == "failed" and "\n" not in failed.reason
    assert f"{server.url}/data/{name}?token=***" in failed.reason and SECRET not in failed.reason
    shown = (content_type or "no Content-Type").split(";")[0]
    assert f"answered {shown} beginning {' '.join(body.decode().split())[:20]}" in failed.reason.replace("'", "")
    assert not (tmp_path / "d" / name).exists() and _no_parts_left(tmp_path / "d")


@pytest.mark.parametrize(
    ("name", "content_type", "body"),
    [("scan.dcm", "text/html", DICOM), ("labels.csv", "text/html", b"id,label\n1,a\n"), ("about.html", "text/html", LOGIN)],
    ids=["mislabelled-dicom", "mislabelled-csv", "a-page-that-is-the-file"],
)
def test_files_whose_bytes_are_not_a_page_for_them_are_kept(  # type: ignore[no-untyped-def]
    serve, tmp_path, monkeypatch, name: str, content_type: str, body: bytes
) -> None:
    """A guard against false alarms: a wrong label alone, or a page that is the file, is kept."""
    server = serve(lambda seen, index: Answer(200, {"Content-Type": content_type}, body))
    report = _fetch(tmp_path, monkeypatch, _source(server, name))
    assert report.ok, report.failed
    assert (tmp_path / "d" / name).read_bytes() == body


def test_a_refused_page_is_one_line_on_stderr_without_secret_or_traceback(serve, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    server = serve(lambda seen, index: Answer(200, {"Content-Type": "text/html"}, LOGIN))
    use_registry(monkeypatch, tmp_path, entry("ft-hostile", [_source(server, "scan.dcm")]))
    code, out, err = run_cli("fetch", "ft-hostile", "--dest", str(tmp_path / "d"))
    assert code == 1, err
    (line,) = [text for text in err.splitlines() if "refusing scan.dcm" in text]
    assert "text/html beginning '<!DOCTYPE html> <html><head><title>Sign" in line
    assert SECRET not in err + out and "Traceback" not in err


# -- cut bodies are failed transfers, never short files -----------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked-without-last-chunk"])
def test_a_cut_body_is_resumed_and_never_committed_short(serve, tmp_path, monkeypatch, chunked: bool) -> None:  # type: ignore[no-untyped-def]
    """A guard: this already held; kept so that decoding and the new resume rules keep it."""

    def script(seen: Seen, index: int) -> Answer:
        if seen.offset is not None:
            return _ranged(V1, seen.offset, {"ETag": '"v1"'})
        return Answer(200, {"ETag": '"v1"'}, V1, send=CUT, chunked=chunked)

    server = serve(script)
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"), attempts=1)
    assert not report.ok and not (tmp_path / "d/scan.dcm").exists()
    assert "gave up after 1 attempts" in report.failed[0].reason
    report = _fetch(tmp_path, monkeypatch, _source(server, "scan.dcm"))
    assert report.ok, report.failed
    assert (tmp_path / "d/scan.dcm").read_bytes() == V1
