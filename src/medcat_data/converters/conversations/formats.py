"""One small function per conversation format: a neutral ``Item`` plus its image paths -> one JSON record.

* ``llava`` (LLaVA / LLaVA-Med): ``image`` one path, absent for text-only rows; the first human
  turn starts with ``<image>\\n``. Rows with several images are refused (``multi_image``).
* ``sharegpt`` (the PubMedVision shape): ``image`` always a list, no ``<image>`` token added,
  ``modality`` and ``body_part`` (null when the dataset has none).
* ``internvl`` (InternVL chat fine-tune): ``image`` one path, or a list for several, absent for
  text-only rows; one ``<image>`` token per image (``<image>\\n`` each, before the first human
  turn), checked on write.

Upstream turns keep their text: tokens are added only when the turns hold none; when they already
hold some, the count must match the images (else ``image_token_mismatch``). This module builds
values only; it never writes files.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from medcat_data.converters.conversations.items import Item, RowSkipped

__all__ = ["FORMATS", "FORMAT_NAMES", "IMAGE_TOKEN", "Format", "FormatName", "count_image_tokens"]

IMAGE_TOKEN = "<image>"

FormatName = Literal["llava", "sharegpt", "internvl"]
FORMAT_NAMES: tuple[FormatName, ...] = ("llava", "sharegpt", "internvl")

Record = dict[str, Any]


@dataclass(frozen=True)
class Format:
    """A conversation format: its record builder and the most images one record may hold (None: any)."""

    name: FormatName
    build: Callable[[Item, Sequence[str]], Record]
    max_images: int | None = None


def count_image_tokens(turns: Sequence[dict[str, Any]]) -> int:
    """Return how many ``<image>`` tokens the turns hold, over all turns."""
    return sum(str(t.get("value", "")).count(IMAGE_TOKEN) for t in turns)


def _turns_with_tokens(item: Item, n_images: int) -> list[dict[str, Any]]:
    """Return the turns with one ``<image>\\n`` per image before the first human turn, unless tokens exist.

    Raises:
        RowSkipped: ``image_token_mismatch`` when the tokens do not number the images.
    """
    turns = [dict(t) for t in item.turns]
    if n_images and count_image_tokens(turns) == 0:
        first = item.first_human
        turns[first]["value"] = (IMAGE_TOKEN + "\n") * n_images + str(turns[first]["value"])
    if count_image_tokens(turns) != n_images:
        raise RowSkipped("image_token_mismatch")
    return turns


def llava(item: Item, paths: Sequence[str]) -> Record:
    """Build a LLaVA record (at most one image)."""
    assert len(paths) <= 1, "llava takes at most one image; the exporter skips longer rows"
    record: Record = {"id": item.id}
    if paths:
        record["image"] = paths[0]
    record["conversations"] = _turns_with_tokens(item, len(paths))
    return record


def sharegpt(item: Item, paths: Sequence[str]) -> Record:
    """Build a ShareGPT / PubMedVision record: turns verbatim, image list, modality and body part."""
    return {
        "id": item.id,
        "image": list(paths),
        "conversations": [dict(t) for t in item.turns],
        "modality": item.modality,
        "body_part": item.body_part,
    }


def internvl(item: Item, paths: Sequence[str]) -> Record:
    """Build an InternVL record: one path or a list, as many ``<image>`` tokens as images."""
    record: Record = {"id": item.id}
    if len(paths) == 1:
        record["image"] = paths[0]
    elif paths:
        record["image"] = list(paths)
    record["conversations"] = _turns_with_tokens(item, len(paths))
    return record


FORMATS: Mapping[str, Format] = {
    "llava": Format("llava", llava, max_images=1),
    "sharegpt": Format("sharegpt", sharegpt),
    "internvl": Format("internvl", internvl),
}
"""Every format by name (the choices of ``--conversations``)."""
