"""The build key's input records: compact for a large fetch, still able to re-hash a touched file; the manifest streamed both ways."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from medcat_data.converters import build_manifest
from medcat_data.converters.build_manifest import (
    MANIFEST_NAME,
    ConfigRecord,
    InputFile,
    InputFiles,
    InputRecord,
    Manifest,
    RecordedInputs,
    SplitRecord,
    _same_inputs,
    read_manifest,
    sha256_file,
    stat_inputs,
    write_manifest,
)


def _files(root: Path) -> list[tuple[str, Path]]:
    pairs = []
    for i, name in enumerate(("a/one.dcm", "a/two.dcm", "b/é three.txt")):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * (10 + i))
        pairs.append((name, path))
    return pairs


def test_inputs_under_a_root_keep_no_local_path_per_file_and_read_back_equal(tmp_path: Path) -> None:
    pairs = _files(tmp_path)
    inputs = stat_inputs(pairs, root=tmp_path)
    plain = tuple(InputFile(n, p.stat().st_size, p.stat().st_mtime_ns) for n, p in pairs)
    assert inputs == plain and list(inputs) == list(plain) and len(inputs) == 3
    assert [f.local for f in inputs] == [os.path.join(tmp_path, n) for n, _ in pairs]
    assert inputs[-1].path == "b/é three.txt" and inputs[1:] == plain[1:]
    assert not hasattr(inputs[0], "__dict__")  # slots: no per-record dict


def test_inputs_hold_each_folder_once_per_run_and_read_back_every_path() -> None:
    folder = "files/mimic-cxr/2.0.0/files/p10/" + "p1000003é/" * 20  # long shared prefixes, as MIMIC-CXR's
    paths = [f"{folder}s{i // 100}/{i:06d}.dcm" for i in range(500)]
    paths += ["top.csv.gz", f"{folder}s0/again.dcm", "x/é.txt"]  # a top-level file; a folder met again later
    inputs = InputFiles("/raw")
    for n, path in enumerate(paths):
        inputs.append(path, n, 10**18 + n, None, None)
    assert [f.path for f in inputs] == paths and inputs[-2].path == paths[-2] and inputs[3].local == f"/raw/{paths[3]}"
    assert inputs == tuple(InputFile(path, n, 10**18 + n) for n, path in enumerate(paths))
    assert inputs.nbytes() < sum(len(path.encode()) for path in paths) / 2


def test_a_touched_input_is_rehashed_from_the_root_and_a_changed_one_is_not_the_same(tmp_path: Path) -> None:
    pairs = _files(tmp_path)
    recorded = [
        InputRecord(path=f.path, size_bytes=f.size_bytes, mtime_ns=f.mtime_ns, sha256=sha256_file(p))
        for f, (_, p) in zip(stat_inputs(pairs, root=tmp_path), pairs)
    ]
    os.utime(pairs[0][1], ns=(1, 1))
    assert _same_inputs(recorded, stat_inputs(pairs, root=tmp_path))
    pairs[0][1].write_bytes(b"\xff" * 10)
    os.utime(pairs[0][1], ns=(1, 1))
    assert not _same_inputs(recorded, stat_inputs(pairs, root=tmp_path))
    # A local path that is not root / name is kept, so the right file is re-hashed.
    elsewhere = tmp_path / "elsewhere.dcm"
    elsewhere.write_bytes(pairs[1][1].read_bytes())
    moved = [pairs[0], ("a/two.dcm", elsewhere), pairs[2]]
    assert stat_inputs(moved, root=tmp_path)[1].local == elsewhere


def _manifest_with(inputs: Sequence[InputRecord]) -> Manifest:
    return Manifest(
        tool_version="1.2.3", source="mimic-cxr@2.0.0", options={"configs": ["a"], "nested": {"inputs": []}, "note": "\u00e9 \"q\""},
        inputs=inputs, configs={"a": ConfigRecord(task="vqa", splits={"train": SplitRecord(rows=2, shards=["a/x.parquet"], bytes=9)})},
        errors=1, seconds=0.5, libraries={"pyarrow": "1"},
    )


def _one_document(manifest: Manifest) -> bytes:
    """The manifest as one ``json.dumps`` of the whole model (the format files on disk have)."""
    return (json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode()


def test_the_manifest_is_written_record_by_record_with_the_bytes_of_one_document(tmp_path: Path) -> None:
    pairs = _files(tmp_path / "raw")
    files = stat_inputs(pairs, root=tmp_path / "raw")
    hashes = {"a/two.dcm": "ab" * 32}  # as workers report them; the others stay null
    streamed = _manifest_with([])
    streamed.inputs = RecordedInputs(files, hashes)
    listed = [InputRecord(path=f.path, size_bytes=f.size_bytes, mtime_ns=f.mtime_ns, sha256=hashes.get(f.path)) for f in files]
    for manifest, expected in ((streamed, _manifest_with(listed)), (_manifest_with([]), _manifest_with([]))):
        out = tmp_path / f"out{len(manifest.inputs)}"
        out.mkdir()
        write_manifest(out, manifest)
        assert (out / MANIFEST_NAME).read_bytes() == _one_document(expected)


def test_a_manifest_is_read_back_in_chunks_into_compact_records_equal_to_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [InputRecord(path=f"files/p1{i}/é{i}.dcm", size_bytes=10**i, mtime_ns=17 * 10**17 + i, sha256=None if i % 2 else "cd" * 32)
               for i in range(12)]
    manifest = _manifest_with(records)
    (tmp_path / MANIFEST_NAME).write_bytes(_one_document(manifest))
    monkeypatch.setattr(build_manifest, "_READ_CHARS", 7)  # cut values (numbers, strings, literals) at chunk ends
    read = read_manifest(tmp_path)
    assert read is not None and isinstance(read.inputs, RecordedInputs)
    assert list(read.inputs) == records and read == manifest
    assert read.model_dump(exclude={"inputs"}) == manifest.model_dump(exclude={"inputs"})


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # cut short
        lambda text: text.replace('"sha256": null', '"sha256": null, "extra": 1', 1),  # a record that is no InputRecord
        lambda text: text.replace('"size_bytes": 1,', '"size_bytes": "big",', 1),
        lambda text: text + "{}",  # two documents
        lambda text: "[" + text + "]",  # not an object
    ],
)
def test_a_damaged_manifest_is_ignored_so_the_output_is_rebuilt(tmp_path: Path, damage: Callable[[str], str]) -> None:
    records = [InputRecord(path=f"f{i}.dcm", size_bytes=1, mtime_ns=2, sha256=None) for i in range(3)]
    (tmp_path / MANIFEST_NAME).write_text(damage(_one_document(_manifest_with(records)).decode()), encoding="utf-8")
    assert read_manifest(tmp_path) is None
