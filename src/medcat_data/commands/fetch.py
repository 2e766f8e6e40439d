"""``medcat fetch`` and ``medcat verify``: thin commands over ``medcat_data.loaders``."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from medcat_data.cli_options import (
    OwnedOptionsCommand,
    dest_option,
    dry_run_option,
    jobs_option,
    json_option,
    limit_option,
    mirror_option,
    owned_option,
    quiet_option,
    ref_argument,
    source_option,
)
from medcat_data.cli_output import Output
from medcat_data.errors import FetchError, NotFetchedError
from medcat_data.progress import NullProgress, Progress
from medcat_data.typed_options import describe_options, split_pairs

if TYPE_CHECKING:  # the catalog and the loaders load on use: `--help` must not pay for them
    from medcat_data.catalog.refs import ResolvedDataset
    from medcat_data.loaders import FetchReport, VerifyReport

_SHOWN_FAILURES = 20


def _prompt(realm: str) -> tuple[str, str] | None:
    user = click.prompt(f"{realm} username", err=True, default="", show_default=False)
    if not user:
        return None
    return user, click.prompt(f"{realm} password", err=True, hide_input=True)


def _progress(out: Output, silent: bool) -> Progress:
    from medcat_data.loaders.progress import PlainProgress, RichProgress

    if silent:
        return NullProgress()
    if out.stderr.is_terminal:
        return RichProgress(out.stderr)
    return PlainProgress(sys.stderr)


def _resolve(ref: str) -> ResolvedDataset:
    from medcat_data.catalog.refs import parse_ref, resolve
    from medcat_data.catalog.registry import load_registry

    return resolve(parse_ref(ref), load_registry())


def _source_kind_options(ref: str) -> tuple[str, list[tuple[str, str]]]:
    """Describe the options of the kinds of every source of ``ref`` (``--source`` may pick any)."""
    from medcat_data.loaders.transports import kind_options_class

    entry = _resolve(ref).entry
    kinds = list(dict.fromkeys(s.kind for s in entry.sources))
    rows = [row for kind in kinds for row in describe_options(kind_options_class(kind))]
    return f"Options of {entry.id}'s source kinds, {', '.join(kinds)} (--option KEY=VALUE)", rows


@click.command("fetch", cls=OwnedOptionsCommand, describe=_source_kind_options)
@ref_argument
@dest_option
@jobs_option
@mirror_option
@click.option("--only", multiple=True, metavar="GLOB", help="Only files whose relative path matches GLOB (repeatable).")
@limit_option
@click.option("--accept-license", is_flag=True, help="Accept the dataset's licence / DUA (remembered per dataset).")
@dry_run_option
@click.option("--force", is_flag=True, help="Transfer again files that are already present and verified.")
@quiet_option
@json_option
@source_option
@click.option("--no-hash", is_flag=True, hidden=True, help="Benchmarks only: skip hashing (files stay unverified).")
@owned_option("source kind")
def fetch_cmd(
    ref: str, dest: Path | None, jobs: int | None, mirror: str | None, only: tuple[str, ...], limit: int | None,
    accept_license: bool, dry_run: bool, force: bool, quiet: bool, as_json: bool, source_name: str | None, no_hash: bool,
    owned_options: tuple[str, ...],
) -> None:
    """Download a dataset's files, verified, into its cache folder (resumable, safe to run twice)."""
    from medcat_data.loaders import FetchOptions, fetch

    out = Output(json_mode=as_json, quiet=quiet)
    if quiet:  # --quiet: nothing but errors, log warnings included
        logging.getLogger("medcat_data").setLevel(logging.ERROR)
    resolved = _resolve(ref)
    options = FetchOptions(
        dest=dest, jobs=jobs, mirror=mirror, only=only, limit=limit, accept_license=accept_license,
        dry_run=dry_run, force=force, source=source_name, hash_while_streaming=not no_hash,
        interactive=sys.stdin.isatty() and not as_json, prompt=_prompt, source_options=split_pairs(owned_options),
    )
    report = fetch(resolved, options, _progress(out, quiet or as_json or dry_run))
    _render_fetch(out, report)
    if not report.ok:
        raise FetchError(_fetch_verdict(report, ref))


def _render_fetch(out: Output, report: FetchReport) -> None:
    from medcat_data.loaders.progress import human_bytes

    if out.json_mode:
        out.result(report.to_dict())
        return
    if report.dry_run:
        _render_dry_run(out, report)
        return
    if not out.quiet:
        out.print(
            f"{report.dataset_id} {report.version} -> {report.dest}\n"
            f"  {report.downloaded} downloaded, {report.present} already present, {len(report.failed)} failed; "
            f"{human_bytes(report.bytes_transferred)} in {report.seconds:.1f} s"
        )
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(report.verification.items()))
        if kinds:
            out.print(f"  verified by: {kinds}", markup=False)
        if report.trust_on_first_use:
            out.warn(
                f"{report.trust_on_first_use} file(s) have no upstream checksum: checked by size/magic bytes, "
                "sha256 recorded on first use."
            )
    for failure in report.failed[:_SHOWN_FAILURES]:
        reason = failure.reason or failure.status
        out.error(reason if failure.path in reason else f"{failure.path}: {reason}")
    if len(report.failed) > _SHOWN_FAILURES:
        out.error(f"... and {len(report.failed) - _SHOWN_FAILURES} more (see --json)")


def _render_dry_run(out: Output, report: FetchReport) -> None:
    from rich.table import Table

    from medcat_data.loaders.progress import human_bytes

    table = Table(title=f"{report.dataset_id} {report.version} -> {report.dest}")
    for col in ("path", "state", "size", "verified by"):
        table.add_column(col, overflow="fold")
    for row in report.planned[:50]:
        size = "?" if row["size"] is None else human_bytes(row["size"])
        table.add_row(row["path"], row["state"], size, row["verified_by"])
    out.print(table)
    states = {s: sum(1 for r in report.planned if r["state"] == s) for s in ("present", "partial", "missing")}
    sizes = [r["size"] for r in report.planned if r["state"] != "present"]
    known = sum(s for s in sizes if s is not None)
    unknown = sum(1 for s in sizes if s is None)
    more = f" ({len(report.planned) - 50} more not shown)" if len(report.planned) > 50 else ""
    out.print(
        f"{len(report.planned)} file(s){more}: {states['present']} present, {states['partial']} partial, "
        f"{states['missing']} missing; to transfer: {human_bytes(known)}"
        + (f" + {unknown} file(s) of unknown size" if unknown else "")
        + (f" (about {human_bytes(report.estimated_bytes)} in all, upstream's published total)" if unknown and report.estimated_bytes else ""),
        markup=False,
    )


def _fetch_verdict(report: FetchReport, ref: str) -> str:
    missing = report.selected - report.downloaded - report.present - len(report.failed)
    parts = [f"{len(report.failed)} failed"] if report.failed else []
    if missing > 0:
        parts.append(f"{missing} not attempted")
    if report.unverified:
        parts.append(f"{report.unverified} unverified")
    return (
        f"{report.dataset_id}: {report.selected - report.downloaded - report.present + report.unverified} of "
        f"{report.selected} file(s) not present and verified ({', '.join(parts)}). Run `medcat fetch {ref}` "
        "again to resume; files already verified are not transferred again."
    )


@click.command("verify")
@ref_argument
@dest_option
@click.option("--full", is_flag=True, help="Rehash every file instead of checking presence and size.")
@json_option
@source_option
def verify_cmd(ref: str, dest: Path | None, full: bool, as_json: bool, source_name: str | None) -> None:
    """Check a fetched dataset against its manifest: missing, extra, truncated and corrupt files."""
    from medcat_data.loaders import verify

    out = Output(json_mode=as_json)
    resolved = _resolve(ref)
    prefix = None
    if source_name is not None:
        prefix = resolved.entry.source(source_name).subdir.strip("/") or None
    report = verify(resolved, dest, full=full, prefix=prefix)
    _render_verify(out, report)
    if not report.manifest_found:
        fetch_command = f"medcat fetch {ref}" + (f" --source {source_name}" if source_name else "")
        raise NotFetchedError(report.dataset_id, report.version, report.dest, fetch_command)
    if not report.ok:
        raise FetchError(
            f"{report.dataset_id}: {len(report.missing)} missing, {len(report.truncated)} truncated, "
            f"{len(report.corrupt)} corrupt, {len(report.unverified)} unverified file(s). Run `medcat fetch {ref}` to repair."
        )


def _render_verify(out: Output, report: VerifyReport) -> None:
    if out.json_mode:
        out.result(report.to_dict())
        return
    how = "sha256/md5 rehash" if report.full else "presence and size"
    out.print(f"{report.dataset_id} {report.version} at {report.dest} ({how})", markup=False)
    out.print(f"  {len(report.verified)} of {report.checked} file(s) verified", markup=False)
    if report.tofu:
        out.print(f"  {report.tofu} of them by trust on first use (no upstream checksum)", markup=False)
    for label, paths in (("missing", report.missing), ("truncated", report.truncated), ("corrupt", report.corrupt),
                         ("unverified", report.unverified)):
        for p in paths[:_SHOWN_FAILURES]:
            out.error(f"{label}: {p}")
    if report.extra:
        out.print(f"  {len(report.extra)} extra file(s) not in the manifest (not an error)", markup=False)


COMMANDS: tuple[click.Command, ...] = (fetch_cmd, verify_cmd)
