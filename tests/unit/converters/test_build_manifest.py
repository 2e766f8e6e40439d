"""The build key's input records: compact for a large fetch, and still able to re-hash a touched file."""

from __future__ import annotations

import os
from pathlib import Path

from medcat_data.converters.build_manifest import InputFile, InputRecord, _same_inputs, sha256_file, stat_inputs


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
