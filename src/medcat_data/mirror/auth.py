"""HTTP Basic auth of the mirror, including PhysioNet's User-Agent rule.

PhysioNet honours Basic credentials only when the ``User-Agent`` starts with ``Wget/`` or
``libwfdb/`` (server ``project/utility.py``; see ``shared/reference/imaging-datasets.md`` 2.3).
The mirror enforces the same rule so the tests prove our transport copes with it. Kaggle's
API takes Basic auth from any client (``user_agents=None``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import threading
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

PHYSIONET_USER_AGENTS: tuple[str, ...] = ("Wget/", "libwfdb/")

Verdict = Literal["ok", "challenge", "forbidden"]


@dataclass(frozen=True)
class Protection:
    """Basic auth on every URL path starting with ``prefix``."""

    prefix: str
    username: str
    password: str
    user_agents: tuple[str, ...] | None = PHYSIONET_USER_AGENTS
    realm: str = "medcat mirror"

    def judge(self, authorization: str | None, user_agent: str) -> Verdict:
        """Decide on a request: ``ok``, ``challenge`` (401) or ``forbidden`` (403).

        No or wrong credentials get a challenge; right credentials from a User-Agent that may not
        use Basic auth are forbidden.
        """
        if not _credentials_match(authorization, self.username, self.password):
            return "challenge"
        if self.user_agents is not None and not user_agent.startswith(self.user_agents):
            return "forbidden"
        return "ok"


def _credentials_match(authorization: str | None, username: str, password: str) -> bool:
    if not authorization:
        return False
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, sep, secret = decoded.partition(":")
    return bool(sep) and hmac.compare_digest(user, username) and hmac.compare_digest(secret, password)


class Guard:
    """The protections of one server; the longest matching prefix decides."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Protection] = []

    def add(self, rule: Protection) -> None:
        """Protect a prefix (replacing an earlier rule on the same prefix)."""
        with self._lock:
            self._rules = [r for r in self._rules if r.prefix != rule.prefix] + [rule]

    def clear(self) -> None:
        """Remove every protection."""
        with self._lock:
            self._rules.clear()

    def rule_for(self, url_path: str) -> Protection | None:
        """Return the protection covering ``url_path``, if any."""
        with self._lock:
            matching = [r for r in self._rules if url_path.startswith(r.prefix)]
        return max(matching, key=lambda r: len(r.prefix)) if matching else None
