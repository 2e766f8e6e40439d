"""Run a fetch: plan, then move, verify and commit every file with a pool of worker threads.

For each file: skip it when the manifest and the file on disk agree (no rehash); claim it so
that no other worker or process touches it; stream it into a part file with retries and resume;
refuse a web page answered for a file that nothing else will judge; verify size, hash or magic
bytes; rename it to its final path; journal it in the manifest; and extract it when the registry
says so. A mismatch is retried once from zero; a second mismatch moves the bytes to
``.medcat/quarantine/``. Never decodes content; never prints.
"""

from __future__ import annotations

import functools
import logging
import os
import posixpath
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.errors import AccessDeniedError, ChecksumMismatchError, FetchError, MedcatError
from medcat_data.loaders import archives, processes
from medcat_data.loaders.cache import DestLayout, PartFile
from medcat_data.loaders.credentials import ensure_license_accepted
from medcat_data.loaders.locks import ClaimTable
from medcat_data.loaders.fetch_manifest import FLUSH_INTERVAL_S, ExtractRecord, FileRecord, Manifest, now_iso
from medcat_data.loaders.options import FetchOptions
from medcat_data.loaders.plan import STRONG, RemoteFile, dataset_dest, select_sources
from medcat_data.loaders.plan_store import PlanStore
from medcat_data.loaders.transports import (
    Channel,
    Denied,
    SecretBook,
    Transient,
    Transport,
    TransportContext,
    Unavailable,
    denied_error,
    make_transport,
    parse_source_options,
)
from medcat_data.loaders.verify import Mismatch, check_file, hash_file, web_page_instead_of
from medcat_data.progress import NullProgress, Progress

log = logging.getLogger(__name__)

Status = Literal["downloaded", "present", "failed", "quarantined"]


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one selected file."""

    path: str
    status: Status
    verified_by: str | None = None
    reason: str | None = None
    bytes_transferred: int = 0
    extracted: bool = False


@dataclass
class FetchReport:
    """The summary of a fetch; ``ok`` only when every selected file is present and verified."""

    dataset_id: str
    version: str
    dest: Path
    dry_run: bool = False
    selected: int = 0
    downloaded: int = 0
    present: int = 0
    failed: list[FileOutcome] = field(default_factory=list)
    verification: Counter[str] = field(default_factory=Counter)
    bytes_transferred: int = 0
    extracted: int = 0
    seconds: float = 0.0
    planned: list[dict[str, Any]] = field(default_factory=list)
    estimated_bytes: int | None = None
    """The sources' published total when the plan lists no sizes (PhysioNet), else ``None``."""

    @property
    def trust_on_first_use(self) -> int:
        """Files with no upstream hash: checked by size (and magic bytes) and recorded."""
        return self.verification["tofu"] + self.verification["magic"]

    @property
    def unverified(self) -> int:
        return self.verification["unverified"]

    @property
    def ok(self) -> bool:
        """Tell whether every selected file is present and verified."""
        if self.dry_run:
            return True
        return not self.failed and not self.unverified and self.downloaded + self.present == self.selected

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (no URLs, no credentials)."""
        data: dict[str, Any] = {
            "dataset": self.dataset_id,
            "version": self.version,
            "dest": str(self.dest),
            "ok": self.ok,
            "dry_run": self.dry_run,
            "selected": self.selected,
            "downloaded": self.downloaded,
            "present": self.present,
            "failed": [{"path": f.path, "status": f.status, "reason": f.reason} for f in self.failed],
            "trust_on_first_use": self.trust_on_first_use,
            "unverified": self.unverified,
            "verification": dict(sorted(self.verification.items())),
            "bytes_transferred": self.bytes_transferred,
            "extracted_archives": self.extracted,
            "seconds": round(self.seconds, 3),
        }
        if self.dry_run:
            data["files"] = self.planned
            data["estimated_bytes"] = self.estimated_bytes
        return data


class _Deferred(Exception):
    """Another worker or process holds the file; come back later."""


class _Interrupted(Exception):
    pass


class Engine:
    """One fetch of one resolved dataset; use ``run()`` once."""

    def __init__(self, resolved: ResolvedDataset, options: FetchOptions, progress: Progress | None = None) -> None:
        self.resolved = resolved
        self.entry = resolved.entry
        self.options = options
        self.progress: Progress = progress or NullProgress()
        self.dest = dataset_dest(resolved, options)
        self.layout = DestLayout(self.dest)
        self.secrets = SecretBook()
        self.ctx = TransportContext(self.entry, resolved.version, self.dest, options, self.secrets, self.progress)
        self.report = FetchReport(self.entry.id, resolved.version, self.dest, dry_run=options.dry_run)
        self._rng = random.Random()
        self._stop = threading.Event()
        self._fatal: BaseException | None = None
        self._lock = threading.Lock()
        self._transports: dict[str, Transport] = {}
        self.manifest: Manifest
        self.claims: ClaimTable
        self.plan: PlanStore | None = None
        self._jobs = options.workers
        self._emit: Callable[[dict[str, Any]], None] | None = None

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> FetchReport:
        """Plan and fetch; return the report.

        Raises:
            UsageError: an unknown source, or a source option no selected source's kind takes.
            LicenseNotAcceptedError: the licence needs ``--accept-license``.
            AccessDeniedError: the server refused access (401/403).
            FetchError: the source cannot be listed (index missing, unsupported kind).
        """
        started = time.monotonic()
        # Usage first: a misplaced option is reported before any licence question or request.
        sources = select_sources(self.resolved, self.options.source)
        kind_options = parse_source_options(self.entry, sources, self.options.source_options)
        ensure_license_accepted(self.entry, self.options.accept_license)
        for source in sources:
            ctx = replace(self.ctx, kind_options=kind_options[source.kind])
            self._transports[source.name] = make_transport(source, ctx)
        self.layout.ensure_dir(self.layout.meta)
        self.manifest = Manifest.open(self.layout.meta, self.entry.id, self.resolved.version)  # type: ignore[assignment]
        self.claims = ClaimTable(self.layout.meta)
        try:
            with self.claims.whole_folder():
                plan = self._plan()
                self.report.selected = plan.selected
                self.report.estimated_bytes = _published_total(self._transports.values())
                if self.options.dry_run:
                    self._dry_run(plan)
                else:
                    self._fetch_all(plan)
        except MedcatError as err:
            _scrub_error(err, self.secrets)
            raise
        finally:
            self.progress.finish()
            self._finish()
            self.report.seconds = time.monotonic() - started
        return self.report

    def _plan(self) -> PlanStore:
        """Stream every source's listing into the on-disk plan; select ``--only`` / ``--limit``."""
        self.plan = plan = PlanStore(self.layout.meta)
        for name, transport in self._transports.items():
            channel = transport.open_channel()
            try:
                listed = plan.add(transport.list_files(functools.partial(self._fetch_index, transport, channel)), self.options.only)
            except Denied as err:
                raise self._denied(transport, err) from None
            finally:
                channel.close()
            log.info("%s: source %s lists %d files", self.entry.id, name, listed)
        # A transport that counts --limit in its own units (not files) has applied it already.
        applied = any(getattr(t, "applies_limit", False) for t in self._transports.values())
        plan.select(None if applied else self.options.limit)
        return plan

    def _fetch_index(self, transport: Transport, channel: Channel, remote: RemoteFile) -> Path:
        with self.claims.hold(remote.path, poll_s=self.options.lock_poll_s):
            final = self.layout.final_str(remote.path)
            self._await_record(remote, final)
            outcome = self._process_claimed(remote, channel, final)
            self.manifest.flush()  # other processes planning from the same index see it at once
        if outcome.status not in ("downloaded", "present"):
            raise FetchError(
                f"{self.entry.id}: cannot list source {remote.source!r}: its index {remote.path} "
                f"could not be fetched ({outcome.reason}). Run the fetch again; if it repeats, check "
                "the source in the registry."
            )
        return self.layout.final(remote.path)

    def _fetch_all(self, plan: PlanStore) -> None:
        present = self._settle_present(plan)
        count = 1
        if plan.todo:
            kinds = sorted({self._transports[name].source.kind for name in plan.todo_sources()})
            count = processes.process_count(plan.todo, kinds, self.options.processes)
        children: list[processes.Shard] = []
        if count > 1:
            # Interleaved shares, forked before any thread or progress display starts.
            self._jobs = max(1, -(-self.options.workers // count))
            self.manifest.flush()
            children = [processes.start(self, plan, count, k) for k in range(1, count)]
            processes.listen(self, children)
            log.info("%s: %d files shared by %d processes", self.entry.id, plan.todo, count)
        self.progress.start(plan.selected, plan.known_bytes() or self.report.estimated_bytes)
        for verified_by in present.elements():
            self.count(FileOutcome("", "present", verified_by))
        try:
            if plan.todo:
                self.run_pool(plan.todo_files(count, 0), plan.share(count, 0))
            processes.join(children)
        finally:
            processes.stop(children)
        for child in children:
            if child.fatal is not None:
                raise self._child_fatal(child.fatal)
        left = sum(child.unreported_count() for child in children)
        if left:
            log.warning("%s: a worker process ended early; finishing its %d files", self.entry.id, left)
            self.manifest.refresh()
            for child in children:
                self.run_pool(plan.todo_files(count, child.index, child.reported), child.unreported_count())
        if children:
            self.manifest.refresh()

    def _settle_present(self, plan: PlanStore) -> Counter[str]:
        """Find the selected files already here as recorded (stat only); mark the others todo.

        One ordered pass joining the plan with the manifest: no request, no hashing, no
        per-file lookup. Returns how many present files each verification source covers.
        """
        self.manifest.flush()
        present: Counter[str] = Counter()

        def needed() -> Iterator[str]:
            for remote, record in plan.with_records(self.manifest.store_path):
                verified_by = self._present_as(remote, record, self.layout.final_str(remote.path))
                if verified_by is None or (remote.extract and self._needs_extraction(remote)):
                    yield remote.path
                else:
                    present[verified_by] += 1

        plan.mark_todo(needed())
        log.info("%s: %d of %d selected files are here already", self.entry.id, plan.selected - plan.todo, plan.selected)
        return present

    def run_pool(self, files: Iterator[tuple[int, RemoteFile]], total: int) -> None:
        """Fetch ``total`` files (seq, file) with this process's worker threads; raise what stopped the run.

        Files are pulled from ``files`` as workers free up: only a bounded window is in memory.
        """
        state = _QueueState(files, total)
        workers = [
            threading.Thread(target=self._worker, args=(state,), name=f"medcat-fetch-{i}", daemon=True)
            for i in range(min(self._jobs, max(1, total)))
        ]
        for w in workers:
            w.start()
        try:
            for w in workers:
                while w.is_alive():
                    w.join(timeout=0.5)
        except KeyboardInterrupt:
            self._stop.set()
            raise
        if self._fatal is not None:
            raise self._fatal

    def become_shard(self, emit: Callable[[dict[str, Any]], None], progress: Progress) -> None:
        """Turn a forked copy of this engine into a child that reports to its parent."""
        self._emit = emit
        self.progress = progress
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._fatal = None
        self._rng = random.Random()
        self.manifest.after_fork()
        self.claims.after_fork()
        if self.plan is not None:
            self.plan.after_fork()

    def _child_fatal(self, fatal: dict[str, Any]) -> MedcatError:
        if fatal.get("kind") == "access":
            transport = next(iter(self._transports.values()))
            return denied_error(
                self.entry.id, transport, int(fatal.get("status", 401)), str(fatal.get("url", "")), self.secrets.scrub
            )
        return FetchError(self.secrets.scrub(str(fatal.get("message", "a worker process failed"))))

    def _worker(self, state: _QueueState) -> None:
        channels: dict[str, Channel] = {}
        try:
            while not self._stop.is_set():
                item = state.take(self._stop)
                if item is None:
                    return
                seq, remote, not_before = item
                wait = not_before - time.monotonic()
                if wait > 0:
                    time.sleep(min(wait, self.options.lock_poll_s))
                channel = channels.get(remote.source)
                if channel is None:
                    channel = channels[remote.source] = self._transports[remote.source].open_channel()
                try:
                    outcome = self._process(remote, channel, deferred=not_before > 0)
                except _Deferred:
                    state.put_back((seq, remote, time.monotonic() + self.options.lock_poll_s))
                    continue
                except Denied as err:
                    self._abort(self._denied(self._transports[remote.source], err))
                    return
                except _Interrupted:
                    return
                except MedcatError as err:
                    outcome = FileOutcome(remote.path, "failed", reason=self.secrets.scrub(str(err)))
                except Exception as err:  # a bug or an OS error on one file: report it, go on
                    log.debug("unexpected error on %s", remote.path, exc_info=True)
                    outcome = FileOutcome(remote.path, "failed", reason=self.secrets.scrub(f"{type(err).__name__}: {err}"))
                self.count(outcome, seq)
                state.done()
        finally:
            for channel in channels.values():
                channel.close()

    def _abort(self, err: BaseException) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = err
        self._stop.set()

    def count(self, outcome: FileOutcome, seq: int = -1) -> None:
        """Add one file's outcome to the report and the progress (or send it to the parent)."""
        if self._emit is not None:
            self._emit(processes.outcome_message(outcome, seq))
            return
        with self._lock:
            r = self.report
            if outcome.status == "downloaded":
                r.downloaded += 1
            elif outcome.status == "present":
                r.present += 1
            else:
                r.failed.append(outcome)
            if outcome.verified_by and outcome.status in ("downloaded", "present"):
                r.verification[outcome.verified_by] += 1
            r.bytes_transferred += outcome.bytes_transferred
            if outcome.extracted:
                r.extracted += 1
        self.progress.item_done(outcome.path, errors=int(outcome.status in ("failed", "quarantined")))

    # -- one file ----------------------------------------------------------------------------

    def _present(self, remote: RemoteFile, final: str) -> str | None:
        """Return the manifest's verification source when the file is there as recorded."""
        if self.options.force:
            return None
        return self._present_as(remote, self.manifest.get(remote.path), final)

    def _present_as(self, remote: RemoteFile, record: FileRecord | None, final: str) -> str | None:
        """Judge a file by its record and one ``stat``: size and mtime as recorded, hash unchanged.

        Records migrated from the JSON manifest carry no mtime and are judged by size alone.
        """
        if self.options.force or record is None or record.status != "ok":
            return None
        if remote.hash and record.hash and record.algorithm == remote.algorithm and record.hash != remote.hash.lower():
            return None  # upstream published a new hash: fetch again
        try:
            st = os.stat(final)
        except FileNotFoundError:
            return None
        if st.st_size != record.size or (record.mtime_ns is not None and st.st_mtime_ns != record.mtime_ns):
            return None  # changed since it was verified: rehashed by _adopt, or fetched again
        return record.verified_by

    def _process(self, remote: RemoteFile, channel: Channel, *, deferred: bool = False) -> FileOutcome:
        final = self.layout.final_str(remote.path)
        verified_by = self._present(remote, final)
        if verified_by is not None and not (remote.extract and self._needs_extraction(remote)):
            return FileOutcome(remote.path, "present", verified_by)
        if not self.claims.try_claim(remote.path):
            raise _Deferred
        try:
            if deferred:
                self._await_record(remote, final)
            return self._process_claimed(remote, channel, final)
        finally:
            self.claims.release(remote.path)

    def _await_record(self, remote: RemoteFile, final: str) -> None:
        """Pick up the record of a file another process just finished.

        Journals are flushed at least every ``FLUSH_INTERVAL_S``; a file that is at its final
        path but not yet in our view of the manifest, and that has no hash to re-check it by,
        is given that long to appear instead of being downloaded again.
        """
        self.manifest.refresh()
        if remote.hash is None and self._present(remote, final) is None and os.path.exists(final):
            time.sleep(2 * FLUSH_INTERVAL_S)
            self.manifest.refresh()

    def _process_claimed(self, remote: RemoteFile, channel: Channel, final: str) -> FileOutcome:
        verified_by = self._present(remote, final)
        if verified_by is None:
            verified_by = self._adopt(remote, final)
        if verified_by is not None:
            outcome = FileOutcome(remote.path, "present", verified_by)
        else:
            outcome = self._transfer(remote, channel, final)
        if remote.extract and outcome.status in ("downloaded", "present"):
            outcome = self._extract(remote, final, outcome)
        return outcome

    def _adopt(self, remote: RemoteFile, final: str) -> str | None:
        """Accept a file already at its final path that the manifest does not know (its
        journal line was lost when a fetch was killed), when it matches the expected hash."""
        if self.options.force or not self.options.hash_while_streaming or not os.access(final, os.F_OK):
            return None  # os.access: no exception object for the common "not there" case
        try:
            size = os.stat(final).st_size
        except FileNotFoundError:
            return None
        if remote.size is not None and size != remote.size:
            return None
        expected: str | None = remote.hash
        verified_by: str = remote.verified_by
        if expected is None:  # touched since verified on first use: the recorded hash decides
            record = self.manifest.get(remote.path)
            if record is None or record.status != "ok" or record.hash is None or record.algorithm != remote.algorithm:
                return None
            expected, verified_by = record.hash, record.verified_by
        digest = hash_file(Path(final), remote.algorithm, size)
        if digest != expected.lower():
            return None
        self._record(remote, size, digest, verified_by)
        log.debug("%s: already present and matches its hash", remote.path)
        return verified_by

    def _new_part(self, remote: RemoteFile) -> PartFile:
        hashing = self.options.hash_while_streaming
        return PartFile(
            self.layout,
            remote.path,
            remote.url,
            algorithm=remote.algorithm if hashing else None,
            expected_size=remote.size,
            expected_hash=remote.hash if hashing else None,
            progress=self.progress,
        )

    def _transfer(self, remote: RemoteFile, channel: Channel, final: str) -> FileOutcome:
        resume = not self.options.force
        transferred = 0
        for attempt in (1, 2):
            part = self._new_part(remote)
            start = part.open(resume=resume)
            try:
                self._download(remote, channel, part)
            except Unavailable as err:
                part.discard()
                return FileOutcome(remote.path, "failed", reason=self.secrets.scrub(err.reason), bytes_transferred=transferred)
            except _TransferFailed as err:
                part.close()
                return FileOutcome(remote.path, "failed", reason=str(err), bytes_transferred=transferred + part.offset - start)
            except BaseException:
                part.close()
                raise
            transferred += part.offset - start
            refusal = self._not_the_file(remote, part)
            if refusal is not None:
                part.discard()
                return FileOutcome(remote.path, "failed", reason=refusal, bytes_transferred=transferred)
            mismatch = self._check(remote, part)
            if mismatch is None:
                digest = part.digest()
                verified_by = remote.verified_by if self.options.hash_while_streaming else "unverified"
                part.commit(final)
                self._record(remote, part.offset, digest, verified_by)
                log.debug("%s: %d bytes, verified by %s", remote.path, part.offset, verified_by)
                return FileOutcome(remote.path, "downloaded", verified_by, bytes_transferred=transferred)
            if attempt == 1:
                log.warning("%s: %s; fetching it again from scratch", remote.path, mismatch)
                part.discard()
                resume = False
                continue
            kept = part.quarantine()
            reason = self._mismatch_text(remote, mismatch, kept)
            log.debug("%s: quarantined at %s", remote.path, kept)
            return FileOutcome(remote.path, "quarantined", reason=reason, bytes_transferred=transferred)
        raise AssertionError("unreachable")

    def _download(self, remote: RemoteFile, channel: Channel, part: PartFile) -> None:
        policy = self.options.retry
        for attempt in range(policy.attempts):
            if self._stop.is_set():
                raise _Interrupted
            try:
                channel.download(remote, part)
                if part.total is not None and part.offset != part.total:
                    raise Transient(f"got {part.offset} of {part.total} bytes")
                return
            except Transient as err:
                if attempt + 1 >= policy.attempts:
                    raise _TransferFailed(
                        f"gave up after {policy.attempts} attempts ({self.secrets.scrub(err.reason)}); "
                        "run the fetch again to resume"
                    ) from None
                delay = policy.delay_s(attempt, err.retry_after_s, self._rng)
                log.info(
                    "%s: %s; retry %d/%d in %.1f s",
                    remote.path, self.secrets.scrub(err.reason), attempt + 1, policy.attempts - 1, delay,
                )
                if self._stop.wait(delay):
                    raise _Interrupted from None

    def _not_the_file(self, remote: RemoteFile, part: PartFile) -> str | None:
        """Word the refusal of a web page answered for a file that nothing else will judge.

        Applies on trust on first use without magic bytes (a checksum or the registry's magic
        judges the others): a login, error or quota page answered with 200 would otherwise be
        recorded as the file. See ``web_page_instead_of`` for what counts.
        """
        if (remote.hash is not None and self.options.hash_while_streaming) or remote.magic is not None:
            return None
        what = web_page_instead_of(remote.path, part.content_type, part.head)
        if what is None:
            return None
        error = FetchError(
            f"{self.entry.id}: refusing {remote.path}: {remote.url} answered {what}, a web page (a login, error or "
            "quota page?), not the file; nothing was kept. Check that the URL still serves the file and that you "
            "have access, then run the fetch again."
        )
        return self.secrets.scrub(str(error))

    def _check(self, remote: RemoteFile, part: PartFile) -> Mismatch | None:
        head = None
        if remote.magic is not None:
            end = remote.magic_offset + len(remote.magic)
            head = part.head[remote.magic_offset:end] if end <= len(part.head) else part.read_at(remote.magic_offset, len(remote.magic))
        return check_file(
            size=part.offset,
            digest=part.digest(),
            expected_size=remote.size,
            expected_hash=remote.hash if self.options.hash_while_streaming else None,
            magic=remote.magic,
            head=head,
        )

    def _mismatch_text(self, remote: RemoteFile, mismatch: Mismatch, kept: Path) -> str:
        if mismatch.what == "hash":
            return str(
                ChecksumMismatchError(self.entry.id, remote.path, remote.algorithm, mismatch.expected, mismatch.actual, kept)
            )
        return (
            f"{self.entry.id}: {remote.path} failed verification twice: {mismatch}. The bytes are kept at "
            f"{kept}. Run the fetch again; if it repeats, upstream changed."
        )

    def _record(self, remote: RemoteFile, size: int, digest: str | None, verified_by: str) -> None:
        try:
            mtime_ns: int | None = os.stat(self.layout.final_str(remote.path)).st_mtime_ns
        except FileNotFoundError:
            mtime_ns = None
        self.manifest.record_verified(remote.path, size, digest, remote.algorithm, verified_by, remote.url, mtime_ns)

    # -- archives ----------------------------------------------------------------------------

    def _needs_extraction(self, remote: RemoteFile) -> bool:
        record = self.manifest.extraction(remote.path)
        return record is None or record.archive_hash != self.manifest.hash_of(remote.path)

    def _extract(self, remote: RemoteFile, final: str, outcome: FileOutcome) -> FileOutcome:
        if not self._needs_extraction(remote):
            return outcome
        staging = self.layout.partial / f"{self.layout.key(remote.path)}.extract"
        archive = Path(final)
        try:
            members = archives.extract(archive, archive.parent, staging, label=remote.path)
        except FetchError as err:
            return FileOutcome(remote.path, "failed", outcome.verified_by, reason=str(err), bytes_transferred=outcome.bytes_transferred)
        folder = posixpath.dirname(remote.path)
        self.manifest.record_extraction(
            ExtractRecord(
                archive=remote.path,
                archive_hash=self.manifest.hash_of(remote.path),
                members=tuple((posixpath.join(folder, m) if folder else m, s) for m, s in members),
                extracted_at=now_iso(),
            )
        )
        return FileOutcome(remote.path, outcome.status, outcome.verified_by, bytes_transferred=outcome.bytes_transferred, extracted=True)

    # -- dry run and wrap-up -----------------------------------------------------------------

    def _dry_run(self, plan: PlanStore) -> None:
        self.manifest.flush()
        for remote, record in plan.with_records(self.manifest.store_path):
            final = self.layout.final_str(remote.path)
            if record is not None and self._present_as(remote, record, final) is not None:
                state, have = "present", record.size
                self.report.present += 1
            else:
                part = self.layout.part(remote.path)
                have = part.stat().st_size if part.exists() else 0
                state = "partial" if have else "missing"
            self.report.planned.append(
                {"path": remote.path, "state": state, "size": remote.size, "have_bytes": have, "verified_by": remote.verified_by}
            )

    def _finish(self) -> None:
        if getattr(self, "manifest", None) is None:
            return
        try:
            for outcome in self.report.failed:
                record = self.manifest.get(outcome.path)
                if record is None or record.status != "ok":
                    self.manifest.record(
                        outcome.path,
                        FileRecord(
                            size=-1, hash=None, algorithm="sha256", verified_by="none", url="",
                            fetched_at=now_iso(), status="failed", reason=outcome.reason,
                        ),
                    )
            self.manifest.compact()
        except OSError as err:
            log.warning("could not write the manifest in %s: %s", self.layout.meta, err.strerror)
        finally:
            self.manifest.close()
            self.claims.close()
            if self.plan is not None:
                self.plan.close()
            strong = sum(self.report.verification[k] for k in STRONG)
            if self.report.trust_on_first_use:
                log.info(
                    "%s: %d file(s) have no upstream checksum; they were checked by size%s and their sha256 "
                    "recorded (trust on first use)",
                    self.entry.id, self.report.trust_on_first_use,
                    " and magic bytes" if self.report.verification["magic"] else "",
                )
            log.info("%s: %d file(s) verified against upstream checksums", self.entry.id, strong)

    def _denied(self, transport: Transport, err: Denied) -> AccessDeniedError:
        return denied_error(self.entry.id, transport, err.status, err.url, self.secrets.scrub)


def _published_total(transports: Iterable[Transport]) -> int | None:
    """Sum the totals the transports know from upstream's pages (``estimated_bytes``); None when none does."""
    totals = [t for t in (getattr(tr, "estimated_bytes", None) for tr in transports) if t is not None]
    return sum(totals) if totals else None


class _TransferFailed(Exception):
    pass


class _QueueState:
    """Hands files to workers from a stream (a bounded window) and counts the unfinished ones.

    A file put back (another process holds it) waits its turn in a short retry queue; new
    files are pulled from the stream meanwhile.
    """

    def __init__(self, files: Iterator[tuple[int, RemoteFile]], total: int) -> None:
        self.files: Iterator[tuple[int, RemoteFile]] | None = files
        self.retry: deque[tuple[int, RemoteFile, float]] = deque()
        self.remaining = total
        self.cond = threading.Condition()

    def take(self, stop: threading.Event) -> tuple[int, RemoteFile, float] | None:
        with self.cond:
            while True:
                if self.retry and self.retry[0][2] <= time.monotonic():
                    return self.retry.popleft()
                if self.files is not None:
                    item = next(self.files, None)
                    if item is not None:
                        return item[0], item[1], 0.0
                    self.files = None
                if self.retry:
                    return self.retry.popleft()
                if self.remaining <= 0 or stop.is_set():
                    return None
                self.cond.wait(0.2)

    def put_back(self, item: tuple[int, RemoteFile, float]) -> None:
        with self.cond:
            self.retry.append(item)
            self.cond.notify()

    def done(self) -> None:
        with self.cond:
            self.remaining -= 1
            if self.remaining <= 0:
                self.cond.notify_all()


def _scrub_error(err: MedcatError, secrets: SecretBook) -> None:
    """Remove every known secret from an error's message (it may quote a server's words)."""
    err.message = secrets.scrub(err.message)
    err.args = (err.message,)


def fetch_dataset(resolved: ResolvedDataset, options: FetchOptions, progress: Progress | None = None) -> FetchReport:
    """Fetch a resolved dataset into its folder; see ``Engine``."""
    return Engine(resolved, options, progress).run()
