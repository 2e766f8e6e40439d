"""The one error hierarchy of medcat.

Every error a user can cause or meet is a ``MedcatError``. Context is kept as attributes and
the message is built in ``__str__`` so that it always answers three questions: what failed, on
which item, and what to do next. Anything that may hold a URL or a credential is redacted when
the exception is *constructed*, never later. ``cli.py`` is the only place that turns these into
printed messages and exit codes.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Sequence
from pathlib import Path

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|key|password|passwd|sig|signature|access_token)=)[^&\s]+")
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*(?:basic|bearer)\s+)\S+")


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove credentials from free text: ``user:pass@`` in URLs, secret query values, auth headers.

    ``secrets`` are literal values (passwords, tokens) that must vanish wherever they appear.
    """
    text = _USERINFO.sub(r"\g<scheme>", text)
    text = _SECRET_QUERY.sub(r"\1***", text)
    text = _AUTH_HEADER.sub(r"\1***", text)
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


class MedcatError(Exception):
    """Base of every medcat error; the CLI exits with ``exit_code`` and no traceback."""

    exit_code: int = 1

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = redact(message)

    def __str__(self) -> str:
        return self.message


class UsageError(MedcatError):
    """The user asked for something that cannot be done as asked (exit code 2)."""

    exit_code = 2


class OutputExistsError(UsageError):
    """An output folder holds work built otherwise, which a rebuild would replace; ``--overwrite`` allows it."""

    def __init__(self, out_dir: str | Path, differences: Sequence[str]) -> None:
        self.out_dir = str(out_dir)
        self.differences = list(differences)
        super().__init__(
            f"{self.out_dir} holds an output built otherwise: {'; '.join(self.differences)}. Nothing was changed; "
            "run again with --overwrite to replace it, or pick another --out."
        )


class UnknownDatasetError(UsageError, LookupError):
    """A dataset reference names no registry entry; carries close matches."""

    def __init__(self, ref: str, suggestions: Sequence[str] = ()) -> None:
        self.ref = ref
        self.suggestions = list(suggestions)
        super().__init__(self._build())

    def _build(self) -> str:
        msg = f"unknown dataset {self.ref!r}."
        if self.suggestions:
            msg += " Did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        msg += " Run `medcat list` to see every dataset, or `medcat search TEXT`."
        return msg


class UnknownSourceError(UsageError, LookupError):
    """A source name (``--source``) names no source of the dataset; lists the names there are."""

    def __init__(self, dataset_id: str, name: str, names: Sequence[str]) -> None:
        self.dataset_id, self.name, self.names = dataset_id, name, list(names)
        super().__init__(f"{dataset_id} has no source {name!r}; its sources are: {', '.join(self.names)}.")


class NotFetchedError(UsageError):
    """A command that reads a dataset's cache (verify, normalize) found nothing fetched there (exit code 2).

    Running it before ``medcat fetch``, or without the ``--dest`` the fetch used, is the user's
    mistake, not damaged data; damaged or missing files of a fetch are ``FetchError``s (exit 1).
    """

    def __init__(self, dataset_id: str, version: str, folder: str | Path, fetch_command: str) -> None:
        self.dataset_id, self.version, self.folder = dataset_id, version, str(folder)
        super().__init__(
            f"{dataset_id} {version} is not fetched: nothing in {self.folder}. Run `{fetch_command}` first "
            "(or pass --dest DIR where it was fetched)."
        )


class InvalidReferenceError(UsageError, ValueError):
    """A dataset reference does not follow the grammar ``ID[@VERSION]`` / ``physionet:`` / ``hf:`` / ``kaggle:``."""


class RegistryError(MedcatError):
    """A registry file or entry is invalid; carries the file, entry id and field path."""

    def __init__(
        self,
        problems: Sequence[str],
        *,
        source: str | Path | None = None,
    ) -> None:
        self.problems = list(problems)
        self.source = str(source) if source is not None else None
        where = f"{self.source}: " if self.source else ""
        if len(self.problems) == 1:
            text = f"{where}invalid registry: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{where}invalid registry ({len(self.problems)} problems):\n{lines}"
        super().__init__(text + "\nFix the entry, then check it with `medcat registry validate FILE`.")


class StaleDocsError(MedcatError):
    """Committed generated documentation differs from what the code and registry generate (exit code 1)."""


class FetchError(MedcatError):
    """Bytes could not be obtained or verified."""


class AccessDeniedError(FetchError):
    """The server refused the credentials (401/403); says why first, then how to obtain access.

    ``reason`` is the first line when the source can word it (``PhysioNet rejected user 'alice'
    (HTTP 401): wrong password, or the DUA is not signed``); ``steps`` follow, numbered, at most
    ``MAX_STEPS`` of them. Without ``steps`` the older one-paragraph ``how_to_get_access`` follows.
    """

    MAX_STEPS = 3

    def __init__(
        self,
        dataset_id: str,
        url: str,
        status: int,
        how_to_get_access: str = "",
        *,
        reason: str = "",
        steps: Sequence[str] = (),
    ) -> None:
        self.dataset_id = dataset_id
        self.url = redact(url)
        self.status = status
        self.reason = reason
        self.steps = list(steps)[: self.MAX_STEPS]
        msg = f"{dataset_id}: {reason}" if reason else f"{dataset_id}: access denied (HTTP {status}) for {self.url}."
        if self.steps:
            msg += "".join(f"\n  {i}. {step}" for i, step in enumerate(self.steps, 1))
        elif how_to_get_access:
            msg += f" {how_to_get_access}"
        super().__init__(msg)


class ServerUnreachableError(FetchError):
    """Nothing accepts connections at the server's address: retrying will not help, so none is made."""

    def __init__(self, url: str, loopback: bool) -> None:
        self.url = redact(url)
        hint = (
            "is the mirror running? Start it with `medcat mirror serve`, or fix --mirror."
            if loopback
            else "is the host down, or a firewall or proxy in the way? Run the fetch again when it answers."
        )
        super().__init__(f"cannot connect to {self.url}: connection refused; {hint}")


class LicenseNotAcceptedError(FetchError):
    """A DUA or credentialed dataset was fetched without ``--accept-license``."""

    def __init__(self, dataset_id: str, license_name: str, license_url: str | None = None) -> None:
        self.dataset_id = dataset_id
        where = f" ({license_url})" if license_url else ""
        super().__init__(
            f"{dataset_id} is distributed under {license_name}{where}. Read it, then run the fetch "
            "again with --accept-license (remembered for this dataset)."
        )


class ChecksumMismatchError(FetchError):
    """A file's hash differs from the expected one; the bytes are kept aside."""

    def __init__(
        self,
        dataset_id: str,
        path: str,
        algorithm: str,
        expected: str,
        actual: str,
        quarantined: Path | None = None,
    ) -> None:
        self.dataset_id = dataset_id
        self.path = path
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        self.quarantined = quarantined
        kept = f" The bytes are kept at {quarantined}." if quarantined else ""
        super().__init__(
            f"{dataset_id}: {algorithm} mismatch for {path} (expected {expected[:12]}..., got "
            f"{actual[:12]}...).{kept} Run the fetch again; if it repeats, upstream changed."
        )


class UnsafeArchiveError(FetchError):
    """An archive member would escape the target or exceed the size caps."""


class LockTimeoutError(FetchError):
    """Another process holds the lock on a dataset cache for too long."""


class ConvertError(MedcatError):
    """Local files could not be turned into a dataset."""


class UpstreamFormatError(ConvertError):
    """A fetched upstream file lacks what a recipe needs (a column, a member, a field): exit 1.

    Names the dataset, the file (relative to the dataset's folder) and what is missing, and how
    to tell a damaged copy from a changed upstream format.
    """

    def __init__(self, dataset_id: str, file: str, problem: str) -> None:
        self.dataset_id, self.file, self.problem = dataset_id, file, problem
        super().__init__(
            f"{dataset_id}: {file} {problem}. Check the fetched copy with `medcat verify --full {dataset_id}` "
            f"(then `medcat fetch {dataset_id}` repairs it); if it is intact, the upstream format has changed."
        )


class OutputWriteError(ConvertError):
    """The output folder could not be written (disk full, permissions, I/O error).

    Raised after the half-written temp folder is removed: the previous output at ``out_dir`` is
    left as it was. The message names the folder and the operating system's reason, on one line.
    """

    def __init__(self, out_dir: str | Path, cause: OSError) -> None:
        self.out_dir = str(out_dir)
        self.cause = cause
        reason = cause.strerror or str(cause) or type(cause).__name__
        name = errno.errorcode.get(cause.errno) if cause.errno is not None else None
        code = f" [{name}]" if name else ""
        super().__init__(
            f"cannot write the output {self.out_dir}: {reason}{code}. The previous output there (if any) "
            "is left as it was; free disk space or fix the folder's permissions, then run again."
        )


class SampleError(ConvertError):
    """One item could not be converted; recorded in ``errors.jsonl`` and never fatal to a run."""

    config: str | None = None
    """The config the item belongs to, where the unit that met it serves several (else the unit's)."""
    split: str | None = None

    def __init__(self, path: str | Path, stage: str, reason: str) -> None:
        self.path = str(path)
        self.stage = stage
        self.reason = redact(reason)
        super().__init__(f"{self.path}: {stage}: {self.reason}")

    def at(self, config: str | None, split: str | None = None) -> SampleError:
        """Name the config (and split) this failed item belongs to; return the error itself."""
        self.config, self.split = config, split
        return self


class InputDecodeError(SampleError):
    """An input's bytes cannot be read as declared: a truncated gzip or zip member, or bytes not valid in its encoding.

    One broken item (``errors.jsonl``, stage ``read``) named ``file:line`` where the input is
    line-based; never replaced by U+FFFD and never silently cut short.
    """

    def __init__(self, file: str | Path, reason: str, line: int | None = None) -> None:
        self.file = str(file)
        self.line = line
        super().__init__(f"{self.file}:{line}" if line is not None else self.file, "read", reason)


class UnsupportedFormatError(ConvertError):
    """A file format or encoding that no installed codec can read; names what to install."""


class MissingDependencyError(MedcatError, ImportError):
    """An optional package needed for one format is not installed."""

    def __init__(self, feature: str, packages: Sequence[str]) -> None:
        self.feature = feature
        self.packages = list(packages)
        super().__init__(
            f"{feature} needs {', '.join(self.packages)}; install with "
            f"`pip install {' '.join(self.packages)}`."
        )
