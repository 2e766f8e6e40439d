"""The writer on a full disk and under kill -9: one clear error, the previous output kept or restored.

A full disk cannot be made portably in a test (a small tmpfs needs root), so ``ENOSPC`` is
injected at the file-write layer: the parquet writer's ``write_table`` or the text writes of the
card and manifest raise ``OSError(ENOSPC)``, and the errors file sits on a fake raw file whose
flush fails with ``EIO``, so that clean-up fails too. A kill is real: a child process is sent
SIGKILL by its own hook at a chosen ``os.rename`` of ``staging.publish``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq
import pytest

from medcat_data.converters import writer as writer_module
from medcat_data.converters.build_manifest import BuildKey
from medcat_data.converters.units import UnitResult
from medcat_data.converters.writer import write_dataset
from medcat_data.errors import MedcatError, OutputWriteError
from tests.unit.converters.test_writer import _parquet_bytes, _rows, _spec, _write, encode_units

REPO = Path(__file__).resolve().parents[3]


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FailingRaw(io.RawIOBase):
    """A raw file on a broken disk: every write fails with EIO (what a flush at clean-up meets)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        raise OSError(errno.EIO, os.strerror(errno.EIO))


def _open_on_broken_disk(path: Any, mode: str = "r", **kwargs: Any) -> Any:
    if "w" in mode:
        return io.TextIOWrapper(io.BufferedWriter(_FailingRaw()), encoding=kwargs.get("encoding", "utf-8"))
    return open(path, mode, **kwargs)


@pytest.mark.parametrize("where", ["parquet", "card"])
def test_a_full_disk_is_one_error_naming_the_output_and_the_cause_and_the_previous_output_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    out = tmp_path / "toy"
    _write(out, _rows(5))
    before = _parquet_bytes(out)
    if where == "parquet":
        monkeypatch.setattr(pq.ParquetWriter, "write_table", _enospc)
        # The errors file's buffer fails to flush when clean-up closes it: a second error, never the reported one.
        monkeypatch.setattr(writer_module, "open", _open_on_broken_disk, raising=False)
    else:
        monkeypatch.setattr(Path, "write_text", _enospc)
    with pytest.raises(OutputWriteError) as caught:
        _write(out, _rows(7), key=BuildKey((), {"other": 1}))
    message = str(caught.value)
    assert isinstance(caught.value, MedcatError) and "\n" not in message
    assert str(out) in message and "No space left on device" in message and "ENOSPC" in message
    assert "Input/output error" not in message
    monkeypatch.undo()
    assert _parquet_bytes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"], "temp folder left behind"
    assert datasets.load_dataset(str(out), "default")["train"].num_rows == 4


def test_an_os_error_on_a_first_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pq.ParquetWriter, "write_table", _enospc)
    with pytest.raises(OutputWriteError, match="No space left on device"):
        _write(tmp_path / "toy", _rows(3))
    assert list(tmp_path.iterdir()) == []


def _build(out: Path, rows: int, build: str) -> None:
    """Write ``rows`` rows through ``write_dataset`` with the build key ``{"build": build}``."""
    write_dataset(out, _spec(), BuildKey((), {"build": build}), encode_units(_spec(), _rows(rows)))


_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from medcat_data.converters import staging
    from tests.unit.converters.test_writer_hostile import _build

    when, number = sys.argv[2], int(sys.argv[3])
    calls = 0

    class _Os:
        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def rename(src, dst):
            global calls
            calls += 1
            if when == "before" and calls == number:
                os.kill(os.getpid(), signal.SIGKILL)
            os.rename(src, dst)
            if when == "after" and calls == number:
                os.kill(os.getpid(), signal.SIGKILL)

    staging.os = _Os()
    _build(Path(sys.argv[1]), 9, "new")
    """
)


def _never() -> Iterator[UnitResult]:
    raise AssertionError("an output that is up to date must not be rebuilt")
    yield  # pragma: no cover


@pytest.mark.parametrize(
    ("when", "number", "survivor"),
    [
        ("before", 1, "old"),  # killed before the old output is moved aside
        ("after", 1, "old"),  # killed between the two renames: the final path is empty until the next run
        ("after", 2, "new"),  # killed after the new output is in place, before the old one is removed
    ],
)
def test_a_kill_during_publish_leaves_the_old_or_the_new_output_after_the_next_run(
    tmp_path: Path, when: str, number: int, survivor: str
) -> None:
    rows = {"old": 5, "new": 9}
    reference = tmp_path / "reference" / "toy"
    _build(reference, rows[survivor], survivor)
    out = tmp_path / "out" / "toy"
    _build(out, rows["old"], "old")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run([sys.executable, "-c", _CHILD, str(out), when, str(number)], cwd=REPO, env=env, capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr

    # The next run finds the survivor at the final path, whole and up to date: nothing is rebuilt.
    assert write_dataset(out, _spec(), BuildKey((), {"build": survivor}), _never()).skipped
    assert _parquet_bytes(out) == _parquet_bytes(reference)
    loaded = datasets.load_dataset(str(out), "default")
    assert sum(split.num_rows for split in loaded.values()) == rows[survivor]
    assert sorted(p.name for p in out.parent.iterdir()) == ["toy"], "a folder of the killed run is left"


def test_output_folders_follow_the_umask_so_a_lab_can_share_them(tmp_path: Path) -> None:
    """mkdtemp's 0700 made every published output private; folders now get 0777 & ~umask like any mkdir."""
    from medcat_data.converters.staging import staging_dir

    old = os.umask(0o002)  # a group-shared lab folder
    try:
        folder = staging_dir(tmp_path, ".out.medcat-tmp-")
        made = tmp_path / "plain"
        made.mkdir()
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == stat.S_IMODE(made.stat().st_mode) == 0o775
