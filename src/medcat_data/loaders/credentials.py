"""Find credentials (PhysioNet, Kaggle, Hugging Face) and remember licence acceptance.

Looks in the environment, ``~/.netrc`` (``$NETRC``), the system keyring when the optional
``keyring`` package is importable, and finally a prompt the caller supplies (CLI on a TTY).
Credentials are returned as values whose ``repr`` hides the secret; every secret found is also
handed to the caller so that it can be redacted from anything written or printed.
"""

from __future__ import annotations

import json
import logging
import netrc
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcat_data.catalog.schema import Access, Entry
from medcat_data.errors import LicenseNotAcceptedError, UsageError
from medcat_data.loaders.options import CredentialPrompt
from medcat_data.paths import medcat_home

log = logging.getLogger(__name__)

PHYSIONET_HOST = "physionet.org"
LICENSES_FILE = "accepted-licenses.json"


@dataclass(frozen=True)
class BasicCredentials:
    """A username and a secret for HTTP Basic auth; ``origin`` says where they were found."""

    username: str
    password: str = field(repr=False)
    origin: str = "environment"

    def __str__(self) -> str:
        return f"{self.username} (from {self.origin})"


def _netrc_path() -> Path | None:
    env = os.environ.get("NETRC")
    if env:
        return Path(env).expanduser()
    for name in (".netrc", "_netrc"):
        candidate = Path.home() / name
        if candidate.is_file():
            return candidate
    return None


def from_netrc(*hosts: str) -> BasicCredentials | None:
    """Return the first ``machine`` entry of ``~/.netrc`` (or ``$NETRC``) matching one of ``hosts``."""
    path = _netrc_path()
    if path is None or not path.is_file():
        return None
    try:
        parsed = netrc.netrc(str(path))
    except (netrc.NetrcParseError, OSError) as err:
        # Never echo the parse error: it may quote a line holding a password.
        log.warning("ignoring unreadable netrc file %s (%s)", path, type(err).__name__)
        return None
    for host in hosts:
        found = parsed.authenticators(host)
        if found and found[0] and found[2]:
            return BasicCredentials(found[0], found[2], origin=f"netrc ({host})")
    return None


def from_keyring(service: str, username: str | None) -> BasicCredentials | None:
    """Ask the system keyring (optional ``keyring`` package) for a password of ``service``."""
    try:
        import keyring  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        if username:
            secret = keyring.get_password(service, username)
            return BasicCredentials(username, secret, origin="keyring") if secret else None
        cred = keyring.get_credential(service, None)
    except Exception as err:  # noqa: BLE001 - any backend failure means "no keyring answer"
        log.debug("keyring lookup for %s failed: %s", service, type(err).__name__)
        return None
    if cred is None or not cred.username or not cred.password:
        return None
    return BasicCredentials(cred.username, cred.password, origin="keyring")


def physionet_credentials(
    hosts: tuple[str, ...] = (PHYSIONET_HOST,),
    prompt: CredentialPrompt | None = None,
) -> BasicCredentials | None:
    """Find PhysioNet credentials: environment, netrc, keyring, then ``prompt``.

    ``hosts`` are the netrc machine names to try, the serving host first (a mirror), then
    ``physionet.org``. Returns ``None`` when nothing is found and no prompt is allowed.
    """
    user = os.environ.get("PHYSIONET_USERNAME") or None
    secret = os.environ.get("PHYSIONET_PASSWORD") or None
    if user and secret:
        return BasicCredentials(user, secret, origin="PHYSIONET_USERNAME/PHYSIONET_PASSWORD")
    found = from_netrc(*hosts) or from_keyring(PHYSIONET_HOST, user)
    if found is not None:
        return found
    if prompt is not None:
        answer = prompt("PhysioNet")
        if answer and answer[0] and answer[1]:
            return BasicCredentials(answer[0], answer[1], origin="prompt")
    return None


def kaggle_credentials() -> BasicCredentials | None:
    """Find the Kaggle API token: ``KAGGLE_USERNAME``/``KAGGLE_KEY``, then ``kaggle.json``.

    ``kaggle.json`` is read from ``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``.
    """
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return BasicCredentials(user, key, origin="KAGGLE_USERNAME/KAGGLE_KEY")
    folder = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle").expanduser()
    path = folder / "kaggle.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("ignoring unreadable %s (%s)", path, type(err).__name__)
        return None
    if isinstance(data, dict) and data.get("username") and data.get("key"):
        return BasicCredentials(str(data["username"]), str(data["key"]), origin=str(path))
    return None


def hf_token() -> str | None:
    """Return the Hugging Face token from the usual places (``HF_TOKEN``, the token file)."""
    from huggingface_hub import get_token

    return get_token()


def needs_license_acceptance(entry: Entry) -> bool:
    """Tell whether fetching ``entry`` requires an explicit ``--accept-license``.

    Restricted and credentialed projects always do (their hosts make a signed data use agreement
    the condition of access); any other entry does when it names a data use agreement.
    """
    return entry.access in (Access.RESTRICTED, Access.CREDENTIALED) or entry.access_info.dua_url is not None


def _licenses_path() -> Path:
    return medcat_home() / LICENSES_FILE


def _read_accepted() -> dict[str, Any]:
    path = _licenses_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("ignoring unreadable %s; licences will be asked for again", path)
        return {}
    return data if isinstance(data, dict) else {}


def ensure_license_accepted(entry: Entry, accept: bool) -> None:
    """Check (and with ``accept``, record) acceptance of the entry's licence or DUA.

    Acceptance is remembered per dataset id and licence name in
    ``$MEDCAT_HOME/accepted-licenses.json``; a changed licence asks again.

    Raises:
        LicenseNotAcceptedError: the licence needs acceptance and none is recorded or given.
    """
    if not needs_license_acceptance(entry):
        return
    accepted = _read_accepted()
    record = accepted.get(entry.id)
    if isinstance(record, dict) and record.get("license") == entry.license.name:
        return
    if not accept:
        raise LicenseNotAcceptedError(entry.id, entry.license.name, entry.access_info.dua_url or entry.license.url)
    accepted[entry.id] = {
        "license": entry.license.name,
        "url": entry.access_info.dua_url or entry.license.url,
        "accepted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = _licenses_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(accepted, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as err:
        raise UsageError(f"cannot record licence acceptance in {path}: {err.strerror}") from err
    log.info("%s: licence %s accepted and remembered", entry.id, entry.license.name)
