"""The loopback mirror: serves replica trees with upstream URL shapes, auth rules and faults.

One ``MirrorServer`` answers, on 127.0.0.1 only:

* plain trees (PhysioNet ``/files/...``, NCBI, Zenodo, ...) with listings and byte ranges;
* the Hugging Face Hub API subset that ``huggingface_hub`` needs to download a dataset repo;
* Kaggle's dataset download endpoint and Google Drive's download / confirmation flow;
* the Google Cloud Storage JSON API subset gcsfs uses (``mirror.gcs_api``, buckets under ``root/gcs/``);
* Zenodo's record API with each file's md5 (``mirror.zenodo``, records under ``root/records/``);

with switchable faults and a log of every request. It holds no dataset knowledge: replica
builders write the trees, and tests and ``medcat demo`` point real clients at ``server.url``.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
import socket
import socketserver
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType, TracebackType

from medcat_data.errors import UsageError
from medcat_data.mirror import gdrive, kaggle
from medcat_data.mirror.auth import PHYSIONET_USER_AGENTS, Guard, Protection
from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.faults import Fault, FaultBook
from medcat_data.mirror.hub_api import HubApi
from medcat_data.mirror.hub_repo import RepoIndex
from medcat_data.mirror.request_log import RequestLog, RequestRecord
from medcat_data.mirror.tree import serve_tree

__all__ = ["Fault", "MirrorServer", "RequestRecord", "check_loopback"]

log = logging.getLogger(__name__)

#: Further host endpoints, one module each exporting ``claims(ex: Exchange) -> bool`` and
#: ``serve(ex: Exchange, root: Path) -> None``; tried in order before the plain tree. A module not
#: present in this version is skipped.
HOST_MODULES = (
    "medcat_data.mirror.osf",
    "medcat_data.mirror.pmc",
    "medcat_data.mirror.tcia",
    "medcat_data.mirror.gcs_api",
    "medcat_data.mirror.zenodo",
)


def _host_endpoints() -> list[ModuleType]:
    found = []
    for name in HOST_MODULES:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
    return found


def check_loopback(host: str) -> str:
    """Return ``host`` as a loopback IP address, or refuse it.

    ``localhost`` becomes ``127.0.0.1``.

    Raises:
        UsageError: ``host`` is not a loopback address; the mirror never listens beyond this machine.
    """
    address = "127.0.0.1" if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise UsageError(
            f"the mirror binds to loopback only, not {host!r}. Use --host 127.0.0.1 (the default) "
            "and reach it from this machine."
        )
    return str(ip)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], mirror: MirrorServer, ipv6: bool) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.mirror = mirror
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup we neither need nor want.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "medcat-mirror"
    timeout = 60

    def setup(self) -> None:
        super().setup()
        # Headers and a small body leave in separate sends; without TCP_NODELAY, Nagle holds the
        # second send until the client's delayed ACK (~40 ms) on every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        assert isinstance(self.server, _HTTPServer)
        self.server.mirror._handle(self)

    do_HEAD = do_GET
    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


class MirrorServer:
    """A threaded HTTP server on loopback that serves ``root`` like the upstream hosts.

    Use as a context manager or call ``start()`` / ``stop()``. ``port=0`` picks a free port;
    ``url`` is known once started.

    Attributes:
        root: the directory served.
        requests: every request seen, in arrival order (see ``RequestRecord``).
        hf_tokens: bearer tokens that open gated Hub repos.
        gdrive_quota_exceeded: when true, every Drive download answers Google's quota page.

    Raises:
        UsageError: ``host`` is not a loopback address.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.host = check_loopback(host)
        self.port = port
        self.requests = RequestLog()
        self.hf_tokens: set[str] = set()
        self.gdrive_quota_exceeded = False
        self._faults = FaultBook()
        self._guard = Guard()
        self._hub = HubApi(RepoIndex(self.root), lambda: self.hf_tokens)
        self._hosts = _host_endpoints()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> MirrorServer:
        """Bind and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            return self
        self._httpd = _HTTPServer((self.host, self.port), self, ipv6=":" in self.host)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="medcat-mirror", daemon=True
        )
        self._thread.start()
        log.info("mirror serving %s at %s", self.root, self.url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None
        log.info("mirror stopped")

    def wait(self, timeout_s: float | None = None) -> None:
        """Block until the server is stopped (from another thread) or ``timeout_s`` passes."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout=timeout_s)

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def protect(
        self,
        prefix: str,
        username: str,
        password: str,
        *,
        user_agents: tuple[str, ...] | None = PHYSIONET_USER_AGENTS,
    ) -> None:
        """Require HTTP Basic auth on URL paths starting with ``prefix``.

        Credentials count only from a User-Agent starting with one of ``user_agents`` (PhysioNet's
        rule); ``None`` accepts any client (Kaggle). No or wrong credentials get 401 with a Basic
        challenge; right credentials from another User-Agent get 403.
        """
        self._guard.add(Protection(prefix, username, password, user_agents))

    def unprotect_all(self) -> None:
        """Remove every Basic-auth protection."""
        self._guard.clear()

    def add_fault(self, fault: Fault) -> None:
        """Arm a fault; it applies to matching requests until used up."""
        self._faults.add(fault)

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._faults.clear()

    def count(self, path: str, method: str | None = None) -> int:
        """Count logged requests for a URL path (exact or glob), optionally of one method."""
        return self.requests.count_path(path, method)

    def clear_log(self) -> None:
        """Forget the logged requests."""
        self.requests.reset()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        ex = Exchange.parse(handler, self._faults)
        self.requests.record(ex.record)
        try:
            self._route(ex)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True
            log.debug("client went away during %s %s", ex.method, ex.path)
        except Exception:
            log.exception("mirror failed on %s %s", ex.method, ex.path)
            handler.close_connection = True
            if ex.record.status == 0:
                ex.error(500, "mirror error")

    def _route(self, ex: Exchange) -> None:
        fault = self._faults.take_response_fault(ex.path)
        if fault is not None:
            _answer_fault(ex, fault)
            return
        rule = self._guard.rule_for(ex.path)
        if rule is not None:
            verdict = rule.judge(ex.headers.get("authorization"), ex.record.user_agent)
            if verdict == "challenge":
                ex.error(401, "Unauthorized", {"WWW-Authenticate": f'Basic realm="{rule.realm}"'})
                return
            if verdict == "forbidden":
                ex.error(403, "Forbidden: Basic auth is not accepted from this User-Agent")
                return
        if HubApi.claims(ex.path):
            self._hub.serve(ex)
        elif kaggle.claims(ex.path) and ex.method != "POST":
            kaggle.serve(ex, self.root)
        elif gdrive.claims(ex.path, ex.query) and ex.method != "POST":
            gdrive.serve(ex, self.root, quota_exceeded=self.gdrive_quota_exceeded)
        elif ex.method == "POST":
            ex.error(405, "Method Not Allowed")
        else:
            for host in self._hosts:
                if host.claims(ex):
                    host.serve(ex, self.root)
                    return
            serve_tree(ex, self.root)


def _answer_fault(ex: Exchange, fault: Fault) -> None:
    if fault.kind == "unauthorized":
        ex.error(401, "Unauthorized", {"WWW-Authenticate": 'Basic realm="medcat mirror"'})
        return
    headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Fault"
    ex.error(fault.status, phrase, headers)
