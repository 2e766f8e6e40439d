"""The resume key: hashed one input at a time, the same folder as the whole text, and changed by any input's stat."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path

from medcat_data.converters.build_manifest import BuildKey, InputFiles
from medcat_data.converters.normalize import _key_text
from medcat_data.converters.resume import ResumeStore
from medcat_data.converters.writer import WriterOptions


def _key(mtime_of_last: int = 30, inputs: int = 200) -> BuildKey:
    files = InputFiles("/raw")
    for i in range(inputs):
        files.append(f"files/p10/p{i:08d}/s{i}/é{i}.dcm", 1000 + i, 10 + i if i < inputs - 1 else mtime_of_last, None, None)
    return BuildKey(inputs=files, options={"configs": ["reports"], "recipe": {"limit": None, "path": "x"}}, tool_version="9.9")


class _Pieces:
    """The key text's pieces as the store hashes them, remembering the longest."""

    def __init__(self, pieces: Iterable[str]) -> None:
        self.pieces, self.longest, self.count = pieces, 0, 0

    def __iter__(self) -> Iterator[str]:
        for piece in self.pieces:
            self.longest, self.count = max(self.longest, len(piece)), self.count + 1
            yield piece


def test_the_resume_key_is_hashed_input_by_input_and_names_the_folder_the_whole_text_named(tmp_path: Path) -> None:
    key, writer = _key(), WriterOptions(row_group_rows=7)
    pieces = _Pieces(_key_text(key, writer))
    store = ResumeStore(tmp_path / "out", pieces)
    assert pieces.count > len(key.inputs) and pieces.longest < 200  # never one text of every input
    # The text is the one the key was before it was made in pieces: units kept by an earlier run stay valid.
    whole = json.dumps(
        {"inputs": [(f.path, f.size_bytes, f.mtime_ns) for f in key.inputs], "options": key.options,
         "writer": asdict(writer), "tool": key.tool_version}, sort_keys=True, default=str,
    )  # fmt: skip
    assert "".join(_key_text(key, writer)) == whole
    assert store.folder == ResumeStore(tmp_path / "out", whole).folder


def test_the_resume_folder_changes_when_one_inputs_mtime_changes_and_not_otherwise(tmp_path: Path) -> None:
    writer = WriterOptions()

    def folder(key: BuildKey) -> Path:
        pieces = _Pieces(_key_text(key, writer))
        found = ResumeStore(tmp_path / "out", pieces).folder
        assert pieces.longest < 200
        return found

    assert folder(_key()) == folder(_key())
    assert folder(_key(mtime_of_last=31)) != folder(_key())
    assert folder(_key(inputs=199)) != folder(_key())
    assert ResumeStore(tmp_path / "out", _key_text(_key(), WriterOptions(compression="zstd"))).folder != folder(_key())
