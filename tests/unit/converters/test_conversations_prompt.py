"""The image-text prompt template and the row -> turns rules of the conversation export."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.converters.conversations import DEFAULT_TEMPLATE, PromptTemplate
from medcat_data.converters.conversations.images import image_suffix
from medcat_data.converters.conversations.items import RowSkipped, row_kind, to_item
from medcat_data.errors import UsageError

FIGURE = {"caption": "A caption.", "inline_mentions": ["First mention.", "Second mention."], "figure_label": "Fig. 2"}


def test_template_fills_the_three_placeholders_mentions_one_per_line() -> None:
    template = PromptTemplate("{figure_label} | {inline_mentions} | {caption}")
    assert template.render(FIGURE) == "Fig. 2 | First mention.\nSecond mention. | A caption."


def test_null_values_render_empty_and_double_braces_are_literal() -> None:
    template = PromptTemplate("{{json}} {figure_label}")
    assert template.render({"caption": "c", "inline_mentions": None, "figure_label": None}) == "{json} "


@pytest.mark.parametrize("text", ["{title}", "{caption!r}", "{caption:>10}", "{0}", "{", "  \n"])
def test_unknown_placeholders_and_bad_syntax_are_usage_errors_naming_the_template(text: str) -> None:
    with pytest.raises(UsageError, match="prompt template mine.txt"):
        PromptTemplate(text, "mine.txt")


def test_template_file_drops_one_final_newline_and_unreadable_files_are_usage_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("Describe {figure_label}.\n\n", encoding="utf-8")
    assert PromptTemplate.from_file(path).text == "Describe {figure_label}.\n"
    with pytest.raises(UsageError, match="cannot read the prompt template"):
        PromptTemplate.from_file(tmp_path / "absent.txt")
    assert PromptTemplate().text == DEFAULT_TEMPLATE


def test_row_kind_follows_the_columns() -> None:
    assert row_kind(["images", "question", "answer", "options"]) == "qa"
    assert row_kind(["question", "options", "answer"]) == "qa"
    assert row_kind(["conversations", "image"]) == "qa"
    assert row_kind(["image", "caption", "inline_mentions"]) == "image-text"
    assert row_kind(["image", "label"]) is None


def test_options_become_lettered_lines_and_answer_idx_fills_a_null_answer() -> None:
    row = {"sample_id": "s", "question": "Q?", "options": [{"key": "opa", "text": "x"}, {"key": "opb", "text": "y"}], "answer": None, "answer_idx": 1}
    item = to_item(row, "qa", PromptTemplate())
    assert item.turns == ({"from": "human", "value": "Q?\nA. x\nB. y"}, {"from": "gpt", "value": "y"})
    assert item.images == ()


def test_upstream_turns_are_kept_verbatim_in_any_stored_shape() -> None:
    turns = [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]
    for stored in (turns, {"from": ["human", "gpt"], "value": ["Q", "A"]}, '[{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]'):
        item = to_item({"sample_id": "s", "id": "up-1", "conversations": stored, "question": "other"}, "qa", PromptTemplate())
        assert list(item.turns) == turns and item.id == "up-1"


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"sample_id": "s", "question": "Q?", "answer": None, "options": []}, "no_answer"),
        ({"sample_id": "s", "conversations": [{"from": "human"}]}, "bad_conversation"),
        ({"sample_id": "s", "conversations": "not json"}, "bad_conversation"),
    ],
)
def test_rows_without_answer_or_with_broken_turns_are_skipped_with_a_reason(row: dict[str, object], reason: str) -> None:
    with pytest.raises(RowSkipped) as info:
        to_item(row, "qa", PromptTemplate())
    assert info.value.reason == reason


def test_image_suffix_comes_from_magic_bytes_then_the_stored_name() -> None:
    assert image_suffix(b"\x89PNG\r\n\x1a\n....", "x.jpg") == ".png"
    assert image_suffix(b"\xff\xd8\xff\xe0....", None) == ".jpg"
    assert image_suffix(b"????", "scan.TIFF") == ".tiff"
    assert image_suffix(b"????", None) == ".img"
