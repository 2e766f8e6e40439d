"""Hugging Face Hub dataset (or model) repositories, through ``huggingface_hub`` at a pinned revision.

Listing uses ``HfApi.list_repo_tree`` at the commit the revision resolves to; every file comes
with its size and either its LFS sha256 (large files) or its git blob id (small files), so
every byte is verified against the Hub's own ids. Bytes move through ``hf_hub_download`` into a
staging folder under ``.medcat/partial/`` (the client resumes there itself) and the engine
verifies them before moving them to the dataset layout. The endpoint is ``--mirror`` /
``MEDCAT_MIRROR`` when given, else ``HF_ENDPOINT``, else the Hub. The token comes from the usual
places (``HF_TOKEN``, ``hf auth login``) and is scrubbed from anything shown.

A ``file://DIR`` mirror is a manual download: the repository's files read from ``DIR/<path in the
repo>`` (the layout ``hf download --local-dir DIR`` or a ``git clone`` leaves; hidden folders such
as ``.cache`` and ``.git`` are skipped). No Hub ids exist there, so each file is checked by size
and its sha256 recorded (trust on first use, reported as such), like any local mirror.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from medcat_data import __version__
from medcat_data.catalog.schema import HuggingFaceSource
from medcat_data.errors import FetchError, UsageError
from medcat_data.loaders.cache import PartFile
from medcat_data.loaders.credentials import hf_token
from medcat_data.loaders.plan import RemoteFile, join_subdir, keep_included, matches_any, mirror_is_local
from medcat_data.loaders.transports import Denied, Transient, TransportContext, Unavailable, access_steps
from medcat_data.loaders.transports.http import copy_local
from medcat_data.progress import Progress

log = logging.getLogger(__name__)

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
CREDENTIALS_HINT = (
    "For gated or private repositories accept the terms on the Hub page, then provide a token "
    "(HF_TOKEN or `hf auth login`)."
)


def _forwarding_tqdm(progress: Progress) -> type:
    """Build a silent tqdm class for ``hf_hub_download`` that forwards bytes to our progress."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _Forward(hf_tqdm):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            progress.advance(int(n or 0))
            return None

    return _Forward


def _translate(err: BaseException, url: str) -> Exception:
    """Map a ``huggingface_hub`` / HTTP client error onto the engine's signals."""
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if isinstance(err, RepositoryNotFoundError):  # also GatedRepoError: 401/403/404 on the repo
        status = getattr(getattr(err, "response", None), "status_code", 401)
        return Denied(int(status or 401), url)
    if isinstance(err, RevisionNotFoundError):
        return Unavailable("revision not found on the Hub")
    if isinstance(err, EntryNotFoundError):
        return Unavailable("file not found in the repository at this revision")
    if isinstance(err, HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", None) or 0
        if status in (401, 403):
            return Denied(status, url)
        if status in (408, 429) or status >= 500:
            retry = getattr(getattr(err, "response", None), "headers", {}).get("retry-after")
            try:
                wait = float(retry) if retry is not None else None
            except ValueError:
                wait = None
            return Transient(f"HTTP {status} from the Hub", wait)
        return Unavailable(f"HTTP {status} from the Hub")
    return Transient(f"{type(err).__name__} talking to the Hub")


class HubChannel:
    """Downloads through ``hf_hub_download`` into the staging folder, then hands bytes to the part."""

    def __init__(self, transport: HubTransport) -> None:
        self.t = transport

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        from huggingface_hub import hf_hub_download

        assert remote.key is not None
        try:
            local = hf_hub_download(
                repo_id=self.t.source.repo_id,
                filename=remote.key,
                repo_type=self.t.source.repo_type,
                revision=self.t.commit,
                local_dir=self.t.staging,
                endpoint=self.t.endpoint,
                token=self.t.token,
                tqdm_class=self.t.tqdm_class,
                library_name="medcat-data",
                library_version=__version__,
            )
        except (OSError, ValueError) as err:
            raise _translate(err, remote.url) from None
        except Exception as err:  # httpx2 transport errors and the like
            raise _translate(err, remote.url) from None
        part.adopt(Path(local))

    def close(self) -> None:
        pass


class LocalRepoChannel:
    """Copies repository files from a manual download (a ``file://`` mirror) into parts."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def download(self, remote: RemoteFile, part: PartFile) -> None:
        assert remote.key is not None
        copy_local(self.root / remote.key, part)

    def close(self) -> None:
        pass


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_GIT_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def recorded_hub_id(root: Path, path: str) -> tuple[str, str, str] | None:
    """Return ``(algorithm, digest, verified_by)`` from the record ``hf download --local-dir`` kept for a file.

    The record is ``root/.cache/huggingface/download/<path>.metadata``: three lines, the commit, the
    ETag the Hub sent (an LFS sha256 or a git blob sha1) and the download time. It counts only if the
    file was not modified after that time (the client's own rule), else None (trust on first use).
    """
    record = root / ".cache" / "huggingface" / "download" / f"{path}.metadata"
    try:
        _commit, etag, stamp = record.read_text(encoding="utf-8").splitlines()[:3]
        if (root / path).stat().st_mtime - 1 > float(stamp):
            return None
    except (OSError, ValueError):
        return None
    etag = etag.strip().strip('"').lower()
    if _SHA256.match(etag):
        return "sha256", etag, "hf-lfs"
    if _GIT_SHA1.match(etag):
        return "git-sha1", etag, "hf-git"
    return None


class LocalRepo:
    """A Hub repository downloaded by hand into ``DIR`` (``--mirror file://DIR``): list and copy its files."""

    def __init__(self, source: HuggingFaceSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        self.root = Path(unquote(urlsplit(ctx.mirror or "").path))

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        """Return every file under the folder (hidden folders skipped), filtered like a Hub listing.

        Raises:
            UsageError: the folder does not exist or holds none of the source's files.
        """
        if not self.root.is_dir():
            raise UsageError(
                f"{self.ctx.entry.id}: --mirror {self.ctx.mirror} is not a folder. Download the files of "
                f"{self.source.repo_id} there, keeping the repository layout (e.g. `hf download "
                f"{self.source.repo_id} --repo-type {self.source.repo_type} --local-dir DIR`)."
            )
        files = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                local = Path(dirpath) / filename
                path = local.relative_to(self.root).as_posix()
                if self.source.allow_patterns and not matches_any(path, self.source.allow_patterns):
                    continue
                if not keep_included(self.source, path):
                    continue
                algorithm, digest, verified_by = recorded_hub_id(self.root, path) or ("sha256", None, "tofu")
                files.append(
                    RemoteFile(
                        path=join_subdir(self.source.subdir, path),
                        url=local.as_uri(),
                        source=self.source.name,
                        size=local.stat().st_size,
                        hash=digest,
                        algorithm=algorithm,  # type: ignore[arg-type]
                        verified_by=verified_by,  # type: ignore[arg-type]
                        key=path,
                    )
                )
        if not files:
            raise UsageError(
                f"{self.ctx.entry.id}: {self.root} holds none of the files of {self.source.repo_id} "
                "(after allow_patterns/include). Put the downloaded repository files there, keeping their paths."
            )
        unverified = sum(1 for f in files if f.verified_by == "tofu")
        if unverified:
            log.warning(
                "%s: %d of %d file(s) of %s read from the local folder %s have no Hub id recorded beside them; "
                "sizes checked and sha256 recorded (trust on first use)",
                self.ctx.entry.id, unverified, len(files), self.source.repo_id, self.root,
            )
        return files

    def open_channel(self) -> LocalRepoChannel:
        return LocalRepoChannel(self.root)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, CREDENTIALS_HINT)


class HubTransport:
    """List and download one Hub repository at a pinned revision."""

    def __init__(self, source: HuggingFaceSource, ctx: TransportContext) -> None:
        self.source = source
        self.ctx = ctx
        self.endpoint = (ctx.mirror or os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
        self.token = hf_token()
        ctx.secrets.add(self.token)
        self.staging = ctx.dest / ".medcat" / "partial" / "hf" / source.name
        self.tqdm_class = _forwarding_tqdm(ctx.progress)
        self.commit = source.revision if _COMMIT.match(source.revision) else ""

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token)

    def _resolve_commit(self) -> str:
        if self.commit:
            return self.commit
        info = self._api().repo_info(self.source.repo_id, repo_type=self.source.repo_type, revision=self.source.revision)
        if not info.sha:
            raise FetchError(f"{self.ctx.entry.id}: the Hub did not resolve revision {self.source.revision!r}.")
        log.info("%s: revision %s is commit %s", self.source.repo_id, self.source.revision, info.sha)
        return str(info.sha)

    def resolve_url(self, path: str) -> str:
        kind = "datasets/" if self.source.repo_type == "dataset" else ""
        return f"{self.endpoint}/{kind}{self.source.repo_id}/resolve/{self.commit}/{quote(path, safe='/')}"

    def list_files(self, fetch_index: object) -> list[RemoteFile]:
        from huggingface_hub.hf_api import RepoFile

        repo_url = f"{self.endpoint}/{self.source.repo_id}"
        try:
            self.commit = self._resolve_commit()
            tree = list(
                self._api().list_repo_tree(
                    self.source.repo_id, recursive=True, revision=self.commit, repo_type=self.source.repo_type
                )
            )
        except FetchError:
            raise
        except Exception as err:
            signal = _translate(err, repo_url)
            if isinstance(signal, Denied):
                raise signal from None
            raise FetchError(
                f"{self.ctx.entry.id}: cannot list {self.source.repo_id} at {self.source.revision} on "
                f"{self.endpoint} ({getattr(signal, 'reason', signal)}). Check the endpoint and the revision."
            ) from None
        files = []
        for item in tree:
            if not isinstance(item, RepoFile):
                continue
            path = item.path
            if self.source.allow_patterns and not matches_any(path, self.source.allow_patterns):
                continue
            if not keep_included(self.source, path):
                continue
            if item.lfs is not None:
                digest, algorithm, verified_by = item.lfs.sha256, "sha256", "hf-lfs"
            else:
                digest, algorithm, verified_by = item.blob_id, "git-sha1", "hf-git"
            files.append(
                RemoteFile(
                    path=join_subdir(self.source.subdir, path),
                    url=self.resolve_url(path),
                    source=self.source.name,
                    size=item.size,
                    hash=digest,
                    algorithm=algorithm,  # type: ignore[arg-type]
                    verified_by=verified_by,  # type: ignore[arg-type]
                    key=path,
                )
            )
        return files

    def open_channel(self) -> HubChannel:
        return HubChannel(self)

    def access_help(self) -> str:
        return access_steps(self.ctx.entry, CREDENTIALS_HINT)


def make_transport(source: HuggingFaceSource, ctx: TransportContext) -> HubTransport | LocalRepo:
    """Return the Hub transport, or the manual-download reader for a ``file://`` mirror."""
    if mirror_is_local(ctx.mirror):
        return LocalRepo(source, ctx)
    return HubTransport(source, ctx)
