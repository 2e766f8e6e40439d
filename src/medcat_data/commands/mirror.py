"""Mirror commands: ``medcat mirror serve`` and ``medcat mirror build`` under one ``mirror`` group."""

from __future__ import annotations

from pathlib import Path

import click

from medcat_data.cli_options import json_option
from medcat_data.cli_output import Output
from medcat_data.errors import UsageError


@click.group("mirror")
def mirror() -> None:
    """Serve replica trees on loopback with the upstream hosts' URL shapes."""


def _parse_auth(spec: str) -> tuple[str, str, str]:
    prefix, sep1, rest = spec.partition(":")
    user, sep2, password = rest.partition(":")
    if not (sep1 and sep2 and prefix.startswith("/") and user):
        raise UsageError(f"--auth expects PREFIX:USER:PASSWORD with PREFIX starting with '/', got {spec.split(':')[0]!r}:...")
    return prefix, user, password


@mirror.command("serve")
@click.argument("root", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True, help="Port; 0 picks a free one.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind; others are refused.")
@click.option("--auth", "auths", multiple=True, metavar="PREFIX:USER:PASSWORD",
              help="Basic auth on a URL prefix, honoured from Wget/ and libwfdb/ User-Agents only (PhysioNet's rule).")
@click.option("--auth-any-client", "open_auths", multiple=True, metavar="PREFIX:USER:PASSWORD",
              help="Basic auth on a URL prefix from any User-Agent (Kaggle's rule).")
@click.option("--gdrive-quota-exceeded", "gdrive_quota", is_flag=True,
              help="Answer every Google Drive download with Drive's quota page (to try the quota failure).")
@json_option
def serve(
    root: Path, port: int, host: str, auths: tuple[str, ...], open_auths: tuple[str, ...], gdrive_quota: bool, as_json: bool
) -> None:
    """Serve ROOT at http://127.0.0.1:PORT until interrupted (Ctrl-C)."""
    out = Output(json_mode=as_json)
    from medcat_data.mirror.server import MirrorServer  # the server and its hosts' routes: not for `--help`

    server = MirrorServer(root, host=host, port=port)
    server.gdrive_quota_exceeded = gdrive_quota
    for spec in auths:
        server.protect(*_parse_auth(spec))
    for spec in open_auths:
        server.protect(*_parse_auth(spec), user_agents=None)
    with server:
        out.result({"url": server.url, "root": str(server.root)} if as_json else server.url)
        out.info(f"serving {root}; use --mirror {server.url} (or HF_ENDPOINT={server.url}). Ctrl-C stops.")
        try:
            server.wait()
        except KeyboardInterrupt:
            out.info("mirror stopped.")


@mirror.command("build")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="New or empty folder to build into.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the builders; a seed gives a byte-identical tree.")
@json_option
def build(ids: tuple[str, ...], out_dir: Path, seed: int, as_json: bool) -> None:
    """Build the replicas of IDs (default: every dataset that has a replica builder) into --out.

    Each replica's expected counts and planted items go to
    OUT/.medcat-replicas/<id>/<source>/expected.json.
    """
    from medcat_data.mirror.build import build_replicas

    out = Output(json_mode=as_json)
    report = build_replicas(ids, out_dir, seed=seed)
    if as_json:
        out.result(report.to_dict())
        return
    if report.built:
        out.raw("\n".join(f"{r.dataset_id}\t{r.source}\t{r.expected_path}" for r in report.built))
    if report.without_builder:
        out.info(f"no replica builder yet (skipped): {', '.join(report.without_builder)}")
    creds = sorted({f"{k}={v}" for r in report.built for k, v in r.env.items()})
    out.info(f"serve it with: {report.serve_command()}")
    if creds:
        out.info(f"fetch through it with --mirror URL and the replicas' demo credentials: {' '.join(creds)}")


COMMANDS: tuple[click.Command, ...] = (mirror,)
"""Click commands, grouped by job; registered in cli.py."""
