"""``medcat convert``: local image files and folders into a Hugging Face dataset folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from medcat_data.cli_options import (
    converter_options,
    jobs_option,
    json_option,
    max_errors_option,
    on_bad_item_option,
    quiet_option,
)
from medcat_data.cli_output import Output
from medcat_data.commands.unit_progress import make_unit_progress
from medcat_data.errors import ConvertError

_WINDOW_MODES = ("auto", "minmax", "percentile", "none")


@click.command("convert")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output dataset folder.")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="CSV of labels (default: parent folder names).")
@click.option("--id-column", default="id", show_default=True, help="Column of --labels matching a file's relative path, name or stem.")
@click.option("--label-column", default="label", show_default=True, help="Column of --labels holding the label.")
@click.option("--split", default="train", show_default=True, help="Split of every file.")
@click.option("--split-column", default=None, help="Column of --labels holding each file's split.")
@converter_options
@click.option("--volume", type=click.Choice(["slices", "whole"]), default=None, help="Volumes as 2D slices (default) or one row each; also groups DICOM series.")
@click.option("--plane", type=click.Choice(["axial", "coronal", "sagittal"]), default="axial", show_default=True, help="Slice plane of volumes.")
@click.option("--stride", type=click.IntRange(min=1), default=1, show_default=True, help="Keep every N-th slice.")
@click.option("--name", default=None, help="Dataset name for the card and the source column (default: the --out folder name).")
@jobs_option
@max_errors_option
@on_bad_item_option
@quiet_option
@json_option
def convert_cmd(paths: tuple[Path, ...], out: Path, max_errors: str | None, quiet: bool, as_json: bool, **flags: Any) -> None:
    """Convert DICOM, PNG/JPEG/TIFF/BMP and NIfTI/NRRD/MHA files under PATH... into OUT.

    \b
    medcat convert ./my_dicoms --out data/mine --max-size 1024 --jobs 4
    medcat convert scans/ --labels labels.csv --id-column file --label-column dx --out data/dx
    """
    from medcat_data.converters.convert import MaxErrors, convert

    output = Output(json_mode=as_json, quiet=quiet)
    limit = MaxErrors.parse(max_errors) if max_errors is not None else MaxErrors()
    progress = make_unit_progress(output.stderr, quiet=quiet or as_json)
    result = convert(list(paths), out, _options(**flags), progress)
    summary = _summary(result, limit)
    output.result(summary) if as_json else _render(output, summary)
    if not summary["ok"]:
        raise ConvertError(
            f"{result.errors} of {result.items} item(s) failed, beyond --max-errors {limit}; each is listed "
            f"in {result.out_dir / 'errors.jsonl'} with its reason."
        )


def _options(**flags: Any) -> Any:
    """Build ``ConvertOptions`` from the command's flags."""
    from medcat_data.converters.codecs.image import ImageOptions
    from medcat_data.converters.codecs.volume import VolumeOptions
    from medcat_data.converters.convert import ConvertOptions
    from medcat_data.converters.convert_inputs import check_split_name

    window = flags["window"]
    volume_window = None if window in _WINDOW_MODES else window
    return ConvertOptions(
        image=ImageOptions(
            window=window if window in _WINDOW_MODES else "auto",
            bit_depth=int(flags["bit_depth"]),  # type: ignore[arg-type]
            max_size=flags["max_size"],
            frames=flags["frames"],
        ),
        volume=VolumeOptions(
            mode=flags["volume"] or "slices", plane=flags["plane"], stride=flags["stride"], window=volume_window,
            bit_depth=int(flags["bit_depth"]), max_size=flags["max_size"],  # type: ignore[arg-type]
        ),  # fmt: skip
        group_series=flags["volume"] is not None,
        split=check_split_name(flags["split"]),
        labels=flags["labels"],
        id_column=flags["id_column"],
        label_column=flags["label_column"],
        split_column=flags["split_column"],
        jobs=flags["jobs"],
        on_bad_item=flags["on_bad_item"],
        name=flags["name"],
    )


def _summary(result: Any, limit: Any) -> dict[str, Any]:
    write = result.write
    return {
        "out": str(write.out_dir),
        "skipped_up_to_date": write.skipped,
        "files": result.units,
        "kinds": result.kinds,
        "rows": {config: dict(splits) for config, splits in write.rows.items()},
        "errors": write.errors,
        "errors_file": str(write.out_dir / "errors.jsonl"),
        "max_errors": str(limit),
        "ok": not limit.exceeded(write.errors, result.items),
        "seconds": write.seconds,
    }


def _render(output: Output, summary: dict[str, Any]) -> None:
    state = "up to date, nothing to do" if summary["skipped_up_to_date"] else f"written in {summary['seconds']:.1f} s"
    output.print(f"{summary['out']}: {state}", markup=False)
    for config, splits in summary["rows"].items():
        counts = ", ".join(f"{split} {n:,}" for split, n in splits.items()) or "no rows"
        output.print(f"  {config}: {counts}", markup=False)
    if summary["errors"]:
        output.warn(f"{summary['errors']} item(s) failed; reasons in {summary['errors_file']}")


COMMANDS: tuple[click.Command, ...] = (convert_cmd,)
