"""``medcat normalize`` on a full disk and on damaged bytes, through the real chain over loopback.

Fetched from the loopback mirror with the real engine, then damaged in the cache the way a bad
disk or a broken upload does it (same size, so normalize's size check passes), or normalized
while the disk is "full". A full disk cannot be made portably (a small tmpfs needs root): the
parquet writer's ``write_table`` is patched to raise ``OSError(ENOSPC)``, nothing else.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.cli import main
from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.errors import SampleError
from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.datasets.harness import fetch_and_verify, replicas

pytestmark = pytest.mark.integration


def _fetch(dataset_id: str, mirror: MirrorServer) -> Path:
    resolved = resolve(dataset_id, load_registry())
    fetch_and_verify(resolved, replicas(dataset_id, mirror)[0], mirror)
    return raw_dir(dataset_id, resolved.version)


def _parquet(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_or_a_damaged_index_is_one_line_and_the_previous_output_stays(
    mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = _fetch("mimic-cxr-jpg", mirror)
    out = tmp_path / "data"
    args = ["normalize", "mimic-cxr-jpg", "--out", str(out), "--max-errors", "10"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    before = _parquet(out / "mimic-cxr-jpg")
    planted = [json.loads(line) for line in (out / "mimic-cxr-jpg" / "errors.jsonl").read_text().splitlines()]
    assert sorted(e["config"] for e in planted) == ["chexpert", "negbio"], planted  # one unreadable JPEG, met per config

    with monkeypatch.context() as patch:
        patch.setattr(pq.ParquetWriter, "write_table", _enospc)
        full = CliRunner().invoke(main, [*args, "--max-size", "16", "--overwrite"])
    assert full.exit_code == 1 and isinstance(full.exception, SystemExit), full.output
    # Off a terminal, progress comes as plain "normalizing: ..." lines; the error is one line of its own.
    problems = [line for line in full.stderr.splitlines() if not line.startswith("normalizing: ")]
    assert len(problems) == 1, full.stderr
    assert problems[0].startswith(f"error: cannot write the output {out / 'mimic-cxr-jpg'}: No space left on device")
    assert "Traceback" not in full.output

    assert _parquet(out / "mimic-cxr-jpg") == before  # the full disk left the previous output as it was

    # Damaged in place, same size: the second half of the metadata index is zeros. The lines before
    # the damage are used; the damage is a line of errors.jsonl naming the file and line, per config.
    metadata = raw / "mimic-cxr-2.0.0-metadata.csv.gz"
    data = metadata.read_bytes()
    metadata.write_bytes(data[: len(data) // 2] + bytes(len(data) - len(data) // 2))
    damaged = CliRunner().invoke(main, [*args, "--max-size", "16", "--overwrite"])
    assert "Aborted!" not in damaged.output and "Traceback" not in damaged.output
    errors = [json.loads(line) for line in (out / "mimic-cxr-jpg" / "errors.jsonl").read_text().splitlines()]
    index_errors = [e for e in errors if e["path"].startswith("mimic-cxr-2.0.0-metadata.csv.gz:")]
    assert index_errors and all(e["stage"] == "read" and "ends early" in e["message"] for e in index_errors), errors
    assert {e["config"] for e in index_errors} >= {"chexpert"}
    assert datasets.load_dataset(str(out / "mimic-cxr-jpg"), "chexpert")["train"].num_rows > 0
    assert sorted(p.name for p in out.iterdir()) == ["mimic-cxr-jpg"]


def test_a_rerun_with_other_options_names_what_differs_and_needs_overwrite(mirror: MirrorServer, tmp_path: Path) -> None:
    """`--limit 3` over a complete output used to replace it silently; now it changes nothing without --overwrite."""
    _fetch("vqa-rad", mirror)
    out = tmp_path / "data"
    first = CliRunner().invoke(main, ["normalize", "vqa-rad", "--out", str(out), "--max-errors", "5"])
    assert first.exit_code == 0, first.output
    before = _parquet(out / "vqa-rad")
    limited = CliRunner().invoke(main, ["normalize", "vqa-rad", "--out", str(out), "--max-errors", "5", "--limit", "3"])
    assert limited.exit_code == 2, limited.output
    assert "recipe.limit unset -> 3" in limited.stderr and "--overwrite" in limited.stderr
    assert _parquet(out / "vqa-rad") == before
    replaced = CliRunner().invoke(main, ["normalize", "vqa-rad", "--out", str(out), "--max-errors", "5", "--limit", "3", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert sum(datasets.load_dataset(str(out / "vqa-rad"), "vqa")[s].num_rows for s in ("train",)) <= 3


class _StopAfter:
    """A progress display that stands in for Ctrl-C: KeyboardInterrupt after ``n`` finished units."""

    def __init__(self, n: int | None = None) -> None:
        self.n, self.done = n, 0

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        pass

    def advance(self, n_bytes: int) -> None:
        pass

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        self.done += 1
        if self.n is not None and self.done > self.n:
            raise KeyboardInterrupt

    def finish(self) -> None:
        pass


def test_an_interrupted_normalize_continues_where_it_stopped_with_identical_output(mirror: MirrorServer, tmp_path: Path) -> None:
    resolved = resolve("vindr-mammo", load_registry())
    _fetch("vindr-mammo", mirror)
    clean = normalize(NormalizeRequest(resolved, tmp_path / "clean"))
    total = _StopAfter()
    normalize(NormalizeRequest(resolved, tmp_path / "count"), total)
    assert total.done > 4

    with pytest.raises(KeyboardInterrupt):
        normalize(NormalizeRequest(resolved, tmp_path / "out"), _StopAfter(3))
    assert not (tmp_path / "out" / "vindr-mammo").exists()  # nothing published
    kept = list((tmp_path / "out" / ".vindr-mammo.medcat-resume").rglob("*.json"))
    # The three shown, and the fourth: its worker had staged it when Ctrl-C came while it was shown.
    assert len(kept) == 4

    rest = _StopAfter()
    resumed = normalize(NormalizeRequest(resolved, tmp_path / "out"), rest)
    assert rest.done == total.done - 4  # only the units not kept ran again
    assert _parquet(resumed.out_dir) == _parquet(clean.out_dir)
    for name in ("README.md", "errors.jsonl"):
        assert (resumed.out_dir / name).read_bytes() == (clean.out_dir / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["vindr-mammo"]  # kept units are cleared


def test_on_bad_item_fail_also_stops_at_a_bad_item_of_a_kept_unit(mirror: MirrorServer, tmp_path: Path) -> None:
    resolved = resolve("vindr-mammo", load_registry())
    _fetch("vindr-mammo", mirror)
    total = _StopAfter()
    counted = normalize(NormalizeRequest(resolved, tmp_path / "count"), total)
    assert counted.write.errors > 0  # the replica plants a damaged DICOM

    with pytest.raises(KeyboardInterrupt):  # every unit converted and kept, nothing published
        normalize(NormalizeRequest(resolved, tmp_path / "out"), _StopAfter(total.done - 1))
    with pytest.raises(SampleError):
        normalize(NormalizeRequest(resolved, tmp_path / "out", on_bad_item="fail"), _StopAfter())
    assert not (tmp_path / "out" / "vindr-mammo").exists()
