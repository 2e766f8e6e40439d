"""Turn one normalized row into a format-neutral conversation: id, images, turns, modality, body part.

Three row shapes are exported (by the columns a config has, so ``medcat convert`` outputs work too):

* **qa** (vqa and text-qa schemas): the human turn is the question followed by the options as
  ``A. text`` lines (letters by position, ``A`` for the first option), after the row's
  ``contexts`` paragraphs where it has them (PubMedQA's abstract); the gpt turn is the answer
  (the option at ``answer_idx`` when ``answer`` is null). A row whose config keeps an upstream
  ``conversations`` column (PubMedVision, M3LLM) uses those turns verbatim instead.
* **image-text**: the human turn is the prompt template rendered from the row; the gpt turn is
  the caption.

Image tokens are not added here: each format adds the ones it needs (``formats.py``). This module
builds values only; it never reads or writes files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from medcat_data.converters.conversations.prompt import PromptTemplate

__all__ = ["Item", "Kind", "RowSkipped", "needed_columns", "row_kind", "to_item"]

Kind = Literal["qa", "image-text"]

HUMAN, GPT = "human", "gpt"
_HUMAN_SPEAKERS = (HUMAN, "user")
_QA_COLUMNS = (
    "id", "sample_id", "images", "image", "contexts", "question", "options", "answer", "answer_idx", "conversations",
    "modality", "body_part",
)
_IMAGE_TEXT_COLUMNS = ("id", "sample_id", "image", "caption", "inline_mentions", "figure_label", "modality", "body_part")


class RowSkipped(Exception):
    """A row that cannot become a conversation (internal signal: skipped and counted by ``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Item:
    """A row as a conversation before image tokens: ``images`` are the row's raw image values."""

    id: str
    images: tuple[Mapping[str, Any] | None, ...]
    turns: tuple[dict[str, str], ...]
    modality: str | None = None
    body_part: str | None = None

    @property
    def first_human(self) -> int:
        """Return the index of the first human turn (0 when no turn is marked human)."""
        return next((i for i, t in enumerate(self.turns) if t.get("from") in _HUMAN_SPEAKERS), 0)


def row_kind(columns: Sequence[str]) -> Kind | None:
    """Return how rows with these columns are exported, or None when they cannot be (no Q/A, no caption)."""
    names = set(columns)
    if "conversations" in names or {"question", "answer"} <= names:
        return "qa"
    if {"image", "caption"} <= names:
        return "image-text"
    return None


def needed_columns(kind: Kind, columns: Sequence[str]) -> list[str]:
    """Return the columns to read for ``kind``, in the split's own order."""
    wanted = set(_QA_COLUMNS if kind == "qa" else _IMAGE_TEXT_COLUMNS)
    return [c for c in columns if c in wanted]


def to_item(row: Mapping[str, Any], kind: Kind, template: PromptTemplate) -> Item:
    """Build the conversation of one row.

    Raises:
        RowSkipped: ``no_answer`` (nothing to put in the gpt turn) or ``bad_conversation`` (an
            upstream ``conversations`` value without text).
    """
    row_id = row.get("id") if isinstance(row.get("id"), str) and row.get("id") else row.get("sample_id")
    images = _images(row)
    if kind == "image-text":
        caption = row.get("caption")
        if not caption:
            raise RowSkipped("no_answer")
        turns: tuple[dict[str, str], ...] = ({"from": HUMAN, "value": template.render(row)}, {"from": GPT, "value": caption})
    else:
        turns = _upstream_turns(row.get("conversations")) or _qa_turns(row)
    return Item(str(row_id), images, turns, row.get("modality"), row.get("body_part"))


def _images(row: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, ...]:
    if "images" in row:
        return tuple(row.get("images") or ())
    if "image" in row:
        return (row["image"],)
    return ()


def _qa_turns(row: Mapping[str, Any]) -> tuple[dict[str, str], ...]:
    options = [_option_text(o) for o in row.get("options") or ()]
    answer = row.get("answer")
    idx = row.get("answer_idx")
    if not answer and isinstance(idx, int) and 0 <= idx < len(options):
        answer = options[idx]
    question = row.get("question") or ""
    if not answer or not question:
        raise RowSkipped("no_answer")
    lines = [question, *(f"{_letter(i)}. {text}" for i, text in enumerate(options))]
    contexts = [str(c) for c in row.get("contexts") or () if c]
    if contexts:  # reading comprehension (PubMedQA): the question is about this text
        lines = ["Context:", *contexts, "", *lines]
    return ({"from": HUMAN, "value": "\n".join(lines)}, {"from": GPT, "value": str(answer)})


def _option_text(option: Any) -> str:
    if isinstance(option, Mapping):
        return str(option.get("text") or "")
    return str(option)


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def _upstream_turns(value: Any) -> tuple[dict[str, str], ...]:
    """Return upstream turns verbatim (list of ``{from, value}``; also a dict of lists or JSON text).

    Raises:
        RowSkipped: ``bad_conversation`` for a value that is present but holds no usable turn.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise RowSkipped("bad_conversation") from None
    if isinstance(value, Mapping):  # a struct of lists: {"from": [...], "value": [...]}
        value = [{"from": f, "value": v} for f, v in zip(value.get("from") or (), value.get("value") or ())]
    if not value:
        return ()
    turns = []
    for turn in value:
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
            raise RowSkipped("bad_conversation")
        turns.append({str(k): v for k, v in turn.items()})
    return tuple(turns)
