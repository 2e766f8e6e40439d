"""Hostile archives: links, write-through, duplicates, bad encodings and lying sizes.

Every archive here is built byte by byte in the test. Each refusal must name the archive and the
member, remove the staging folder and leave the target exactly as it was. The extraction folders
sit deep below ``tmp_path`` so that an escape, had it happened, lands in the sandbox and is seen.
"""

from __future__ import annotations

import gzip
import io
import stat
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from medcat_data.errors import UnsafeArchiveError
from medcat_data.loaders.archives import ExtractLimits, extract

Member = tuple[str, str, bytes | str]  # (kind: "file" | "dir" | "link" | "hard", name, data or link target)


def _zip(path: Path, members: list[Member]) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names, which some tests need
        for kind, name, data in members:
            if kind == "link":
                info = zipfile.ZipInfo(name)
                info.create_system = 3
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
                zf.writestr(info, data)
            else:
                assert kind == "file"
                zf.writestr(name, data)
    return path


def _tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, encoding="utf-8", errors="surrogateescape") as tf:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "link": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE}[kind]
            if kind != "dir":
                assert isinstance(data, str)
                info.linkname = data
            tf.addfile(info)
    return path


BUILDERS: dict[str, Callable[[Path, list[Member]], Path]] = {"zip": _zip, "tar.gz": _tar}


class Sandbox:
    """A target already holding one file, and a staging folder, six folders below ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        deep = tmp_path.joinpath(*"abcdef")
        self.target = deep / "out"
        self.staging = deep / "staging"
        self.target.mkdir(parents=True)
        (self.target / "keep.txt").write_bytes(b"kept")

    def extract(self, archive: Path, **kw: object) -> list[tuple[str, int]]:
        return extract(archive, self.target, self.staging, label=f"data/{archive.name}", **kw)  # type: ignore[arg-type]

    def refused(self, archive: Path, *fragments: str, **kw: object) -> str:
        """Extract, expect a refusal naming the archive and ``fragments``; check nothing moved."""
        before = self.files()
        with pytest.raises(UnsafeArchiveError) as caught:
            self.extract(archive, **kw)
        message = str(caught.value)
        assert message.startswith(f"data/{archive.name}: ")
        for fragment in fragments:
            assert fragment in message
        assert not self.staging.exists()
        assert self.files() == before
        return message

    def files(self) -> dict[str, bytes | str]:
        """Everything under ``tmp_path`` except the archives: files with bytes, links with targets."""
        out: dict[str, bytes | str] = {}
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if path.is_symlink():
                out[rel] = str(path.readlink())
            elif path.is_file() and "." + path.name.rsplit(".", 1)[-1] not in (".zip", ".gz", ".tar"):
                out[rel] = path.read_bytes()
        return out


@pytest.fixture
def box(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


def _chain(depth: int) -> list[Member]:
    """``l0 -> .``, ``l1 -> l0/..``, ``l2 -> l1/..`` ...: each harmless read alone, as text."""
    links: list[Member] = [("link", "l0", ".")]
    links += [("link", f"l{i}", f"l{i - 1}/..") for i in range(1, depth + 1)]
    return links


@pytest.mark.parametrize("fmt", BUILDERS)
def test_a_chain_of_links_each_harmless_alone_cannot_lead_a_member_outside(box: Sandbox, fmt: str) -> None:
    archive = BUILDERS[fmt](box.root / f"chain.{fmt}", [*_chain(6), ("file", "l6/escaped.txt", b"pwned")])
    box.refused(archive, "member 'l1'", "points outside the target")
    assert not [p for p in box.root.rglob("escaped.txt")]


@pytest.mark.parametrize("fmt", BUILDERS)
def test_no_member_is_written_through_an_earlier_link_even_one_pointing_inside(box: Sandbox, fmt: str) -> None:
    archive = BUILDERS[fmt](box.root / f"through.{fmt}", [("file", "sub/a.txt", b"a"), ("link", "d", "sub"), ("file", "d/b.txt", b"b")])
    box.refused(archive, "member 'd/b.txt'", "written through the link 'd'")


@pytest.mark.parametrize("fmt", BUILDERS)
def test_a_link_to_the_folder_itself_is_kept_but_nothing_goes_through_it(box: Sandbox, fmt: str) -> None:
    archive = BUILDERS[fmt](box.root / f"self.{fmt}", [("link", "here", "."), ("file", "here/x.txt", b"x")])
    box.refused(archive, "member 'here/x.txt'", "written through the link 'here'")


@pytest.mark.parametrize("fmt", BUILDERS)
def test_inside_links_are_recreated_in_their_resolved_form(box: Sandbox, fmt: str) -> None:
    archive = BUILDERS[fmt](
        box.root / f"ok.{fmt}",
        [("file", "d/a.txt", b"a"), ("link", "d/e/alias", "../../d/./a.txt"), ("link", "top", "d/e/alias")],
    )
    assert dict(box.extract(archive)) == {"d/a.txt": 1, "d/e/alias": -1, "top": -1}
    assert (box.target / "d/e/alias").readlink() == Path("../a.txt")
    assert (box.target / "top").readlink() == Path("d/a.txt")
    assert (box.target / "top").read_bytes() == b"a"


def test_a_hard_link_to_a_link_member_is_refused(box: Sandbox) -> None:
    archive = _tar(box.root / "hard.tar.gz", [("file", "a.txt", b"a"), ("link", "alias", "a.txt"), ("hard", "copy", "alias")])
    box.refused(archive, "member 'copy'", "not a regular file extracted before it")


def test_hard_link_copies_count_against_the_size_cap(box: Sandbox) -> None:
    members: list[Member] = [("file", "big.bin", b"\0" * 100_000)]
    members += [("hard", f"copy{i}", "big.bin") for i in range(20)]
    archive = _tar(box.root / "copies.tar.gz", members)
    box.refused(archive, "member 'copy9'", "expand beyond 1000000 bytes", limits=ExtractLimits(max_total_bytes=1_000_000))


def test_a_link_in_the_target_from_an_earlier_extraction_is_never_written_through(box: Sandbox) -> None:
    elsewhere = box.root / "elsewhere"
    elsewhere.mkdir()
    (box.target / "d").symlink_to(elsewhere)
    archive = _zip(box.root / "later.zip", [("file", "d/x.txt", b"x"), ("file", "y.txt", b"y")])
    box.refused(archive, "member 'd'", "written through the link")
    assert list(elsewhere.iterdir()) == [] and not (box.target / "y.txt").exists()


def test_a_link_that_would_leave_the_target_through_a_link_already_there_is_refused(box: Sandbox) -> None:
    (box.target / "images").symlink_to(box.root)
    archive = _zip(box.root / "alias.zip", [("link", "alias", "images/secret")])
    box.refused(archive, "member 'alias'", "would point outside")


@pytest.mark.parametrize(
    ("member", "shown"),
    [("set.zip", "set.zip"), (".medcat/manifest.json", ".medcat"), (".medcat", ".medcat"), (".medcat/partial/k.extract", ".medcat")],
)
def test_a_member_never_replaces_the_archive_or_the_folder_that_holds_staging(box: Sandbox, member: str, shown: str) -> None:
    """As in the cache: the archive sits in the target, and staging in the target's ``.medcat``."""
    meta = box.target / ".medcat"
    (meta / "partial").mkdir(parents=True)
    (meta / "manifest.json").write_bytes(b"{}")
    box.staging = meta / "partial/k.extract"
    archive = _zip(box.target / "set.zip", [("file", member, b"not yours")])
    box.refused(archive, f"member {shown!r}", "medcat keeps for itself")
    assert archive.exists() and (meta / "manifest.json").read_bytes() == b"{}"


@pytest.mark.parametrize("fmt", BUILDERS)
@pytest.mark.parametrize("second", ["a/b.txt", "a/./b.txt", "a\\b.txt", "./a//b.txt"])
def test_duplicate_member_names_are_refused_after_normalization(box: Sandbox, fmt: str, second: str) -> None:
    archive = BUILDERS[fmt](box.root / f"dup.{fmt}", [("file", "a/b.txt", b"first"), ("file", second, b"second")])
    box.refused(archive, repr(second), "appears twice")


def _patched_zip(path: Path, name: str, raw: bytes, *, utf8_flag: bool) -> Path:
    """A zip with one member whose stored name bytes are ``raw`` (same length as ``name``)."""
    assert len(raw) == len(name.encode())
    data = _zip(path, [("file", name, b"x")]).read_bytes()
    assert bool(zipfile.ZipFile(path).infolist()[0].flag_bits & 0x800) == utf8_flag
    path.write_bytes(data.replace(name.encode(), raw))
    return path


def test_a_zip_name_flagged_utf8_that_is_not_is_refused(box: Sandbox) -> None:
    archive = _patched_zip(box.root / "flagged.zip", "caf\u00e9.txt", b"caf\xff\xfe.txt", utf8_flag=True)
    box.refused(archive, "b'caf\\xff\\xfe.txt'", "not valid UTF-8")


def test_an_unflagged_zip_name_that_is_not_utf8_is_refused(box: Sandbox) -> None:
    archive = _patched_zip(box.root / "latin1.zip", "cafe.txt", b"caf\xe9.txt", utf8_flag=False)
    box.refused(archive, "b'caf\\xe9.txt'", "not valid UTF-8")


def test_an_unflagged_zip_name_in_utf8_keeps_its_utf8_name(box: Sandbox) -> None:
    archive = _patched_zip(box.root / "mac.zip", "cafXY.txt", "caf\u00e9.txt".encode(), utf8_flag=False)
    assert box.extract(archive) == [("caf\u00e9.txt", 1)]
    assert (box.target / "caf\u00e9.txt").read_bytes() == b"x"


def test_a_zip_link_target_that_is_not_utf8_is_refused(box: Sandbox) -> None:
    archive = _zip(box.root / "target.zip", [("file", "a.txt", b"a"), ("link", "alias", b"a.tx\xff")])
    box.refused(archive, "member 'alias'", "b'a.tx\\xff'", "not valid UTF-8")


@pytest.mark.parametrize(
    ("members", "shown"),
    [
        ([("file", "caf\udce9.txt", b"x")], "b'caf\\xe9.txt'"),
        ([("file", "a.txt", b"a"), ("link", "bad\udcff", "a.txt")], "b'bad\\xff'"),
        ([("file", "a.txt", b"a"), ("link", "alias", "a.t\udcffxt")], "member 'alias' is a link whose target b'a.t\\xffxt'"),
    ],
)
def test_tar_names_and_link_targets_that_are_not_utf8_are_refused(box: Sandbox, members: list[Member], shown: str) -> None:
    archive = _tar(box.root / "bytes.tar.gz", members)
    box.refused(archive, shown, "not valid UTF-8")


def _declare(archive: Path, index: int, size: int) -> None:
    """Make the central directory declare ``size`` uncompressed bytes for member ``index`` (the data stays)."""
    raw = bytearray(archive.read_bytes())
    entry = -1
    for _ in range(index + 1):
        entry = raw.index(b"PK\x01\x02", entry + 1)
    raw[entry + 24 : entry + 28] = size.to_bytes(4, "little")  # APPNOTE 4.3.12: uncompressed size
    archive.write_bytes(bytes(raw))
    with zipfile.ZipFile(archive) as zf:
        assert zf.infolist()[index].file_size == size


def test_zip_declared_sizes_are_capped_before_a_byte_is_written(box: Sandbox) -> None:
    """The central directory says 2 GiB; the data holds 5 bytes, so only the declared size can trip the cap."""
    archive = _zip(box.root / "liar.zip", [("file", "small.txt", b"small"), ("file", "huge.bin", b"12345")])
    _declare(archive, 1, 2 << 30)
    box.refused(archive, "member 'huge.bin'", "expand beyond 1073741824 bytes", limits=ExtractLimits(max_total_bytes=1 << 30))


def test_zip_declared_ratio_is_capped_before_a_byte_is_written(box: Sandbox) -> None:
    """The central directory declares 300 kB per member; the data holds 5 bytes each."""
    archive = _zip(box.root / "ratio.zip", [("file", "a.bin", b"12345"), ("file", "b.bin", b"12345")])
    _declare(archive, 0, 300_000)
    _declare(archive, 1, 300_000)
    limits = ExtractLimits(max_ratio=500_000 / archive.stat().st_size, ratio_floor_bytes=100_000)
    box.refused(archive, "member 'b.bin'", "expand more than", limits=limits)


def test_a_tar_header_declaring_too_much_is_refused_before_its_bytes_are_read(box: Sandbox) -> None:
    """The header says 2 GiB and the data stops short: the header alone must trip the cap."""
    header = tarfile.TarInfo("huge.bin")
    header.size = 2 << 30
    plain = header.tobuf(format=tarfile.USTAR_FORMAT) + b"\0" * 4096
    archive = box.root / "liar.tar.gz"
    archive.write_bytes(gzip.compress(plain))
    box.refused(archive, "member 'huge.bin'", "expand beyond 1073741824 bytes", limits=ExtractLimits(max_total_bytes=1 << 30))


def test_a_single_gzip_is_capped_by_ratio_while_it_streams_above_a_low_floor(box: Sandbox) -> None:
    archive = box.root / "zeros.bin.gz"
    archive.write_bytes(gzip.compress(b"\0" * 4_000_000))
    limits = ExtractLimits(max_ratio=100, stream_ratio_floor_bytes=1_000_000)
    box.refused(archive, "member 'zeros.bin'", "expand more than 100x", limits=limits)
    assert ExtractLimits().stream_ratio_floor_bytes < ExtractLimits().ratio_floor_bytes


def test_small_very_compressible_archives_stay_under_the_floor(box: Sandbox) -> None:
    archive = _zip(box.root / "text.zip", [("file", "a.csv", b"0,0\n" * 200_000)])
    assert box.extract(archive) == [("a.csv", 800_000)]
