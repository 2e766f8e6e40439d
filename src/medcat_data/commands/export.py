"""``medcat export``: conversation files from an already normalized dataset folder (see docs/conversations.md).

``medcat normalize --conversations`` does the same right after normalizing; this command serves
folders normalized earlier (or by ``medcat demo --out``). The option checks and the summary
rendering live here and are shared with ``normalize``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from medcat_data.cli_options import json_option, quiet_option
from medcat_data.cli_output import Output
from medcat_data.converters.conversations import FORMAT_NAMES
from medcat_data.errors import UsageError

if TYPE_CHECKING:  # the export machinery loads pyarrow, which `--help` must not pay for
    from medcat_data.converters.conversations import ExportOptions

PROMPT_TEMPLATE_HELP = "Human turn of image-text rows from FILE ({caption}, {inline_mentions}, {figure_label})."
MAX_IMAGES_HELP = "Skip (and count) rows with more than N images; never truncates."


def export_options(formats: tuple[str, ...], template: Path | None, max_images: int | None) -> ExportOptions | None:
    """Return the conversation export asked for, checked before any work (None when not asked).

    Raises:
        UsageError: --prompt-template or --max-images without --conversations, or a bad template.
    """
    from medcat_data.converters.conversations import ExportOptions, PromptTemplate

    if not formats:
        if template is not None or max_images is not None:
            raise UsageError("--prompt-template and --max-images shape the conversation export; add --conversations FORMAT.")
        return None
    prompt = PromptTemplate.from_file(template) if template is not None else PromptTemplate()
    return ExportOptions(tuple(dict.fromkeys(formats)), max_images, prompt)  # type: ignore[arg-type]


def print_conversations(output: Output, summary: dict[str, Any]) -> None:
    """Print a conversation export summary: where, then rows and skips per format."""
    state = " (up to date)" if summary["skipped_up_to_date"] else ""
    output.print(f"  conversations{state} -> {summary['dir']} ({summary['images']} images)")
    for fmt, totals in summary["formats"].items():
        skipped = ", ".join(f"{k.removeprefix('skipped_')} {n}" for k, n in totals.items() if k != "rows")
        output.print(f"    {fmt}: {totals['rows']} rows" + (f"; skipped {skipped}" if skipped else ""))
    if summary["unsupported_configs"]:
        output.print(f"    not exported (no question or caption): {', '.join(summary['unsupported_configs'])}")


@click.command("export")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--conversations", "formats", multiple=True, required=True, type=click.Choice(FORMAT_NAMES), help="Write DIR/conversations/FORMAT/<config>-<split>.jsonl (repeatable).")
@click.option("--prompt-template", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None, help=PROMPT_TEMPLATE_HELP)
@click.option("--max-images", type=click.IntRange(min=0), default=None, metavar="N", help=MAX_IMAGES_HELP)
@quiet_option
@json_option
def export_cmd(folder: Path, formats: tuple[str, ...], prompt_template: Path | None, max_images: int | None, quiet: bool, as_json: bool) -> None:
    """Export a normalized dataset folder (OUT/<id>) as conversation files for MLLM training."""
    from medcat_data.converters.conversations import export_conversations

    output = Output(json_mode=as_json, quiet=quiet)
    options = export_options(formats, prompt_template, max_images)
    assert options is not None, "click requires --conversations"
    summary = export_conversations(folder, options).summary()
    if as_json:
        output.result(summary)
    else:
        output.print(f"{folder}:")
        print_conversations(output, summary)


COMMANDS: tuple[click.Command, ...] = (export_cmd,)
