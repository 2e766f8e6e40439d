"""PhysioNet projects: ``https://physionet.org/files/<slug>/<version>/``, listed by ``SHA256SUMS.txt``.

The checksum file is both the file index and the hash source (one line per file: 64 hex digits,
one space, the path; it does not list itself). Projects whose checksum file does not cover the
bulk data (MIMIC-CXR) declare a ``file_index`` (a CSV column of paths); those files are checked
by size and magic bytes and their sha256 is recorded on first use.

PhysioNet accepts HTTP Basic auth only from a ``User-Agent`` starting with ``Wget/`` or
``libwfdb/`` (server ``project/utility.py``); other clients must log in with a session cookie.
We send ``Wget/1.21.3 (medcat-data/<version>; +<homepage>)``: it satisfies the rule as the
PhysioNet-documented ``wget`` would, and still names medcat to the server operators.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

from medcat_data import __version__
from medcat_data.catalog.schema import Access, PhysioNetSource
from medcat_data.errors import FetchError
from medcat_data.loaders.credentials import PHYSIONET_HOST, BasicCredentials, physionet_credentials
from medcat_data.loaders.plan import RemoteFile, apply_mirror, join_subdir, keep_included, mirror_is_local
from medcat_data.loaders.transports import IndexFetcher, TransportContext, access_steps
from medcat_data.loaders.transports.http import HttpSettings, UrlChannel, is_loopback, origin_of

log = logging.getLogger(__name__)

WGET_USER_AGENT = f"Wget/1.21.3 (medcat-data/{__version__}; +https://github.com/medcat-data/medcat)"
LOGIN_URL = "https://physionet.org/login/"
CREDENTIALING_URL = "https://physionet.org/settings/credentialing/"
CREDENTIALS_HINT = (
    "medcat reads PhysioNet credentials from PHYSIONET_USERNAME and PHYSIONET_PASSWORD, ~/.netrc "
    "(machine physionet.org, or $NETRC), the system keyring (service physionet.org) or a prompt on a "
    "terminal; the account must be credentialed and have signed this project's DUA."
)


def parse_sha256sums(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """Yield (sha256, path) from a PhysioNet ``SHA256SUMS.txt`` (also the coreutils two-space form).

    The separator is split on the first space; a leading ``*`` (binary mode) or ``./`` is
    dropped. Blank and malformed lines are skipped.
    """
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line or line.startswith("#"):
            continue
        digest, sep, path = line.partition(" ")
        if not sep or len(digest) != 64:
            log.debug("skipping a malformed checksum line")
            continue
        if path.startswith(" ") or path.startswith("*"):
            path = path[1:]
        while path.startswith("./"):
            path = path[2:]
        try:
            int(digest, 16)
        except ValueError:
            continue
        if path:
            yield digest.lower(), path


def read_file_index(path: Path, column: str | None) -> Iterator[str]:
    """Yield the relative paths listed in a file index (CSV column, or one path per line; .gz ok)."""
    raw = path.open("rb")
    stream = gzip.open(raw) if path.name.endswith(".gz") else raw
    with stream, io.TextIOWrapper(stream, encoding="utf-8", newline="") as text:
        if column is None:
            for line in text:
                line = line.strip()
                if line:
                    yield line
            return
        reader = csv.DictReader(text)
        if reader.fieldnames is None or column not in reader.fieldnames:
            raise FetchError(f"{path.name}: no column {column!r} (columns: {reader.fieldnames}); the registry's file_index is wrong.")
        for row in reader:
            value = (row.get(column) or "").strip()
            if value:
                yield value


class PhysioNetTransport:
    """List and download the files of one PhysioNet project version."""

    def __init__(self, source: PhysioNetSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        version = source.version or ctx.version
        upstream = f"{source.base_url.rstrip('/')}/files/{source.slug}/{version}/"
        self.base = apply_mirror(upstream, ctx.mirror)
        self.credentials = self._credentials(upstream)
        origin = origin_of(self.base)
        self.estimated_bytes = self._published_total()
        self.settings = HttpSettings(
            user_agent=WGET_USER_AGENT,
            timeouts=ctx.options.timeouts,
            auth=self.credentials,
            auth_origins=frozenset({origin}) if self.credentials else frozenset(),
        )

    def _published_total(self) -> int | None:
        """Return the project's published total size when this fetch takes the whole project, else None.

        ``SHA256SUMS.txt`` lists no sizes and PhysioNet's listings round them, so the plan of a
        PhysioNet fetch has no byte total; the registry's size (the project page's "Total
        uncompressed size") stands in for it in the progress display and ``--dry-run``, as an
        estimate. A part of the project (``include``, ``--only``, ``--limit``) or a companion
        source has no published total.
        """
        options = self.ctx.options
        if self.source.companion or self.source.include or options.only or options.limit is not None:
            return None
        return self.ctx.entry.size.bytes

    def _credentials(self, upstream: str) -> BasicCredentials | None:
        if mirror_is_local(self.ctx.mirror):
            return None
        open_project = self.ctx.entry.access is Access.OPEN
        host = urlsplit(self.base).hostname or PHYSIONET_HOST
        prompt = self.ctx.options.prompt if self.ctx.options.interactive and not open_project else None
        cred = physionet_credentials((host, urlsplit(upstream).hostname or PHYSIONET_HOST), prompt)
        if cred is None:
            return None
        scheme = urlsplit(self.base).scheme
        if scheme != "https" and not is_loopback(host):
            raise FetchError(
                f"{self.ctx.entry.id}: refusing to send PhysioNet credentials over plain http to {host}. "
                "Use an https:// mirror (or none)."
            )
        self.ctx.secrets.add(cred.password)
        log.info("PhysioNet credentials from %s", cred.origin)
        return cred

    def url(self, rel: str) -> str:
        return self.base + quote(rel, safe="/")

    def _remote(self, rel: str, **kw: object) -> RemoteFile:
        return RemoteFile(
            path=join_subdir(self.source.subdir, rel), url=self.url(rel), source=self.source.name, key=rel, **kw  # type: ignore[arg-type]
        )

    def list_files(self, fetch_index: IndexFetcher) -> Iterator[RemoteFile]:
        """Yield the files of the checksum list, then those only the file index names.

        Streams: nothing per file is kept here. A path both lists name is yielded twice; the
        plan keeps the first (checksum-verified) one.
        """
        checksum_name = self.source.checksum_file
        if checksum_name is None:
            raise FetchError(
                f"{self.ctx.entry.id}: source {self.source.name!r} has no checksum file, and medcat does not "
                "crawl directory listings; add checksum_file or file_index to the registry entry."
            )
        sums_path = fetch_index(self._remote(checksum_name, index=True))
        index = self.source.file_index
        index_hash: str | None = None
        with sums_path.open(encoding="utf-8", errors="replace") as fh:
            for h, p in parse_sha256sums(fh):
                if p == checksum_name:
                    continue
                if index is not None and p == index.path:
                    index_hash = h
                elif keep_included(self.source, p):
                    yield self._remote(p, hash=h, algorithm="sha256", verified_by="sha256sums")
        if index is None:
            return
        index_remote = self._remote(
            index.path, hash=index_hash, verified_by="sha256sums" if index_hash else "tofu", index=True
        )
        index_path = fetch_index(index_remote)
        magic = bytes.fromhex(index.magic) if index.magic else None
        for rel in read_file_index(index_path, index.column):
            if keep_included(self.source, rel) and rel != index.path:
                yield self._remote(rel, verified_by="magic" if magic else "tofu", magic=magic, magic_offset=index.magic_offset)

    def open_channel(self) -> UrlChannel:
        return UrlChannel(self.settings)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, CREDENTIALS_HINT)

    def denial(self, status: int) -> tuple[str, list[str]]:
        """Word a 401/403: who was refused and the likely cause, then at most three steps for this tier.

        PhysioNet answers 401 to a wrong password and 403 to a valid user without access (no DUA
        signed, or not credentialed); a user who signed nothing may see either.
        """
        entry, cred = self.ctx.entry, self.credentials
        host = urlsplit(self.base).netloc
        where = "PhysioNet" if host == PHYSIONET_HOST else f"The PhysioNet mirror at {host}"
        credentialed = entry.access is Access.CREDENTIALED
        if cred is None:
            reason = f"{where} asked for a login (HTTP {status}) and medcat has none (the registry says: {entry.access.value} access)."
        elif status == 401:
            reason = f"{where} rejected user {cred.username!r} (HTTP 401): wrong password, or the DUA is not signed."
        else:
            lacking = "the DUA is not signed, or the account is not credentialed" if credentialed else "the DUA is not signed"
            reason = f"{where} refused user {cred.username!r} (HTTP 403): the account has no access to this project ({lacking})."
        if entry.access is Access.OPEN:
            return reason, [f"Check the project page, {entry.homepage}: its access may have changed.", _login_step(cred)]
        steps = [f"Become a credentialed user (training included): {CREDENTIALING_URL}"] if credentialed else []
        steps.append(f"Sign the data use agreement, logged in as that user, on {entry.homepage}")
        steps.append(_login_step(cred))
        return reason, steps


def _login_step(cred: BasicCredentials | None) -> str:
    if cred is None:
        return (
            "Give medcat your login: PHYSIONET_USERNAME and PHYSIONET_PASSWORD, ~/.netrc (machine physionet.org) "
            "or the keyring (service physionet.org)."
        )
    return f"Check the password by logging in at {LOGIN_URL} (medcat read it from {cred.origin})."


def make_transport(source: PhysioNetSource, ctx: TransportContext) -> PhysioNetTransport:
    return PhysioNetTransport(source, ctx)
