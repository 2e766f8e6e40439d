"""Docs commands: ``medcat docs build`` writes the catalog site and its Markdown mirror, or checks the mirror."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from medcat_data.cli_options import json_option
from medcat_data.cli_output import Output
from medcat_data.errors import StaleDocsError


@click.group("docs")
def docs() -> None:
    """Generate the catalog documentation from the registry."""


@docs.command("build")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the static HTML site (pages, Croissant files) into DIR.")
@click.option("--markdown-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The Markdown mirror folder (default: docs/catalog of the medcat repository).")
@click.option("--check", is_flag=True, help="Only compare the Markdown mirror with the registry; exit 1 when stale.")
@click.option("--samples", is_flag=True,
              help="Run every replica through fetch and normalize to add label counts and a sample row to the site.")
@json_option
def build_cmd(out_dir: Path | None, markdown_dir: Path | None, check: bool, samples: bool, as_json: bool) -> None:
    """Build the catalog site (--out) and rewrite the Markdown mirror, or --check that it is current.

    \b
    medcat docs build --out site/          the HTML site only
    medcat docs build                      rewrite docs/catalog/ of the repository
    medcat docs build --check              exit 1 listing stale, missing and extra pages
    """
    from medcat_data.catalog.site import build  # jinja and the whole catalog: not for `--help`

    out = Output(json_mode=as_json)
    plain = build.collect()
    report: dict[str, Any] = {}
    if out_dir is not None:
        files = build.build_site(out_dir, build.collect(samples=True) if samples else plain)
        report["site"] = {"dir": str(out_dir), "files": len(files)}
        out.info(f"site: {len(files)} files in {out_dir}; open {out_dir / 'index.html'}")
    diff = None
    if check or markdown_dir is not None or out_dir is None:
        folder = markdown_dir if markdown_dir is not None else build.default_markdown_dir()
        diff = build.check_mirror(folder, plain) if check else build.write_mirror(folder, plain)
        report["markdown"] = {"dir": str(folder), "checked": check, "stale": diff.stale, "missing": diff.missing, "extra": diff.extra}
        out.info(f"markdown: {folder} " + ("is current" if diff.ok else "was stale" if check else "updated"))
    if as_json:
        out.result(report)
    if check and diff is not None and not diff.ok:
        raise build.StaleMirrorError(folder, diff)


@docs.command("cli")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write the reference (default: docs/cli.md of the medcat repository).")
@click.option("--check", is_flag=True, help="Only compare; exit 1 when the file differs from the code.")
def cli_cmd(out_file: Path | None, check: bool) -> None:
    """Write the command-line reference (every command and option), or --check that it is current."""
    from medcat_data.cli import main
    from medcat_data.cli_reference import render

    from medcat_data.catalog.site import build

    target = out_file if out_file is not None else build.default_markdown_dir().parent / "cli.md"
    text = render(main)
    current = target.read_text(encoding="utf-8") if target.is_file() else None
    if check:
        if current != text:
            raise StaleDocsError(f"{target} is stale; run `medcat docs cli` and commit it.")
        Output().info(f"{target} is current")
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    Output().info(f"wrote {target}")


COMMANDS: tuple[click.Command, ...] = (docs,)
