"""Safe extraction: what is accepted, and every kind of unsafe member refused with nothing left behind."""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from medcat_data.errors import UnsafeArchiveError
from medcat_data.loaders.archives import ExtractLimits, archive_kind, extract


def _zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


def _tar(path: Path, build) -> Path:  # type: ignore[no-untyped-def]
    with tarfile.open(path, "w:gz") as tf:
        build(tf)
    return path


def _add(tf: tarfile.TarFile, name: str, data: bytes = b"x", **attrs: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if attrs.get("type", tarfile.REGTYPE) == tarfile.REGTYPE else 0
    for k, v in attrs.items():
        setattr(info, k, v)
    tf.addfile(info, io.BytesIO(data) if info.size else None)


def _run(tmp_path: Path, archive: Path, **kw: object) -> list[tuple[str, int]]:
    return extract(archive, tmp_path / "out", tmp_path / "staging", **kw)  # type: ignore[arg-type]


def test_zip_members_land_under_the_target_with_their_sizes(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"data_clean/questions/US/train.jsonl": b"{}\n" * 10, "top.txt": b"hi"})
    members = _run(tmp_path, archive)
    assert sorted(members) == [("data_clean/questions/US/train.jsonl", 30), ("top.txt", 2)]
    assert (tmp_path / "out/top.txt").read_bytes() == b"hi"
    assert not (tmp_path / "staging").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil", "C:/evil.txt", "..\\evil.txt"])
def test_zip_slip_is_refused_and_nothing_is_extracted(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "slip.zip", {"good.txt": b"ok", name: b"pwned"})
    with pytest.raises(UnsafeArchiveError, match="refusing to extract"):
        _run(tmp_path, archive)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_zip_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "link.zip", {"a.txt": b"ok"}, links={"leak": "../../etc/passwd"})
    with pytest.raises(UnsafeArchiveError, match="points outside"):
        _run(tmp_path, archive)
    assert not (tmp_path / "out").exists()


def test_zip_symlink_inside_the_target_is_kept(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "ok.zip", {"d/a.txt": b"ok"}, links={"d/alias": "a.txt"})
    members = dict(_run(tmp_path, archive))
    assert members["d/alias"] == -1
    assert (tmp_path / "out/d/alias").is_symlink() and (tmp_path / "out/d/alias").read_bytes() == b"ok"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda tf: _add(tf, "../up.txt"), "'..'"),
        (lambda tf: _add(tf, "/abs.txt"), "absolute"),
        (lambda tf: _add(tf, "link", type=tarfile.SYMTYPE, linkname="/etc/passwd"), "absolute"),
        (lambda tf: _add(tf, "d/link", type=tarfile.SYMTYPE, linkname="../../outside"), "points outside"),
        (lambda tf: _add(tf, "hard", type=tarfile.LNKTYPE, linkname="../outside"), "'..'"),
        (lambda tf: _add(tf, "dev", type=tarfile.CHRTYPE), "device or FIFO"),
        (lambda tf: _add(tf, "fifo", type=tarfile.FIFOTYPE), "device or FIFO"),
    ],
)
def test_tar_unsafe_members_are_refused_with_nothing_left_behind(tmp_path: Path, build, message: str) -> None:  # type: ignore[no-untyped-def]
    def members(tf: tarfile.TarFile) -> None:
        _add(tf, "fine.txt", b"fine")
        build(tf)

    archive = _tar(tmp_path / "bad.tar.gz", members)
    with pytest.raises(UnsafeArchiveError, match=message):
        _run(tmp_path, archive)
    assert not (tmp_path / "out").exists()


def test_tar_gz_with_directories_and_inside_links(tmp_path: Path) -> None:
    def members(tf: tarfile.TarFile) -> None:
        _add(tf, "d", type=tarfile.DIRTYPE)
        _add(tf, "d/a.txt", b"abc")
        _add(tf, "d/rel", type=tarfile.SYMTYPE, linkname="a.txt")
        _add(tf, "d/hard", type=tarfile.LNKTYPE, linkname="d/a.txt")

    members_out = dict(_run(tmp_path, _tar(tmp_path / "ok.tgz", members)))
    assert members_out == {"d/a.txt": 3, "d/rel": -1, "d/hard": 3}
    assert (tmp_path / "out/d/hard").read_bytes() == b"abc"


def test_bombs_are_stopped_by_the_ratio_and_total_caps(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * 5_000_000})
    with pytest.raises(UnsafeArchiveError, match="expand more than 10x"):
        _run(tmp_path, archive, limits=ExtractLimits(max_ratio=10, ratio_floor_bytes=1_000_000))
    with pytest.raises(UnsafeArchiveError, match="expand beyond 1000 bytes"):
        _run(tmp_path, archive, limits=ExtractLimits(max_total_bytes=1000))
    assert not (tmp_path / "out").exists()


def test_single_file_gzip_loses_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "table.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,2\n"))
    assert _run(tmp_path, path) == [("table.csv", 8)]
    assert (tmp_path / "out/table.csv").read_text() == "a,b\n1,2\n"


def test_kind_is_guessed_from_the_magic_bytes_when_the_name_says_nothing(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "download", {"a": b"1"})
    assert archive_kind(archive) == "zip"
    with pytest.raises(UnsafeArchiveError, match="not a zip, tar or gzip archive"):
        other = tmp_path / "plain"
        other.write_bytes(b"hello")
        _run(tmp_path, other)


def test_a_damaged_zip_is_reported_not_crashed_on(tmp_path: Path) -> None:
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 50)
    with pytest.raises(UnsafeArchiveError, match="damaged zip archive"):
        _run(tmp_path, path)
