"""Cloud bucket sources over loopback: a GCS bucket on the mirror's JSON API, an S3 bucket on moto.

The GCS side is the mirror speaking the subset of the GCS JSON API that gcsfs uses
(``mirror.gcs_api``), read by the real gcsfs with ``token="anon"``. The S3 side is moto in server
mode on 127.0.0.1: it stands in for Amazon S3 (PhysioNet's ``physionet-open`` bucket, read
anonymously) and is read by the real s3fs. Nothing asks a metadata server or a credential chain:
sources are anonymous and their ``endpoint_url`` is the loopback server.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.errors import AccessDeniedError
from medcat_data.loaders import FetchOptions, RetryPolicy, fetch
from medcat_data.loaders.transports import buckets
from medcat_data.mirror.server import Fault, MirrorServer
from medcat_data.progress import NullProgress
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration

FILES = {
    "README.txt": b"a demo project\n",
    "files/p10/s1/a.dcm": payload(1, 3000),
    "files/p10/s2/b.dcm": payload(2, 2000),
    "files/p11/s3/c.dcm": payload(3, 1000),
}


def _sha256sums(files: dict[str, bytes], listed: list[str]) -> bytes:
    return "".join(f"{hashlib.sha256(files[p]).hexdigest()} {p}\n" for p in listed).encode()


@pytest.fixture
def gcs_bucket(mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, Path]:
    """A bucket ``<slug>-1.0.0.physionet.org`` on the mirror, its project under ``files/``; returns (id, bucket, root)."""
    bucket = f"{mirror_slug[:40]}-1.0.0.physionet.org"
    root = mirror_root(mirror, f"gcs/{bucket}")
    for rel, data in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    ident = dataset_id(mirror_slug)
    source = {"name": "gcs", "kind": "gcs", "bucket": bucket, "anonymous": True, "endpoint_url": mirror.url}
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    return ident, bucket, root


def _media_gets(mirror: MirrorServer, bucket: str) -> list[Any]:
    return [r for r in mirror.requests if r.path.startswith(f"/download/storage/v1/b/{bucket}/o/")]


def test_gcs_bucket_is_fetched_and_verified_by_the_objects_md5(gcs_bucket: tuple[str, str, Path], mirror: MirrorServer, tmp_path: Path) -> None:
    ident, bucket, _ = gcs_bucket
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["verification"] == {"gcs-md5": len(FILES)}
    for rel, data in FILES.items():
        assert (dest / rel).read_bytes() == data
    assert {r.path.split("/o/", 1)[1] for r in _media_gets(mirror, bucket)} == set(FILES)
    code, out, err = run_cli("verify", ident, "--dest", str(dest))
    assert code == 0, err
    mirror.clear_log()
    code, out, err = run_cli("fetch", ident, "--dest", str(dest), "--json")
    assert code == 0 and json.loads(out)["present"] == len(FILES)
    assert not _media_gets(mirror, bucket)  # a re-run transfers nothing


def test_gcs_object_with_wrong_bytes_is_quarantined_after_two_md5_mismatches(gcs_bucket: tuple[str, str, Path], mirror: MirrorServer, tmp_path: Path) -> None:
    ident, bucket, _ = gcs_bucket
    bad = "files/p10/s2/b.dcm"
    mirror.add_fault(Fault(f"/download/storage/v1/b/{bucket}/o/{bad}", "corrupt", times=None))
    dest = tmp_path / "d"
    result = fetch(resolve(ident, load_registry()), FetchOptions(dest=dest))
    assert not result.ok
    (failed,) = result.failed
    assert failed.path == bad and failed.status == "quarantined"
    assert "md5" in (failed.reason or "")
    assert not (dest / bad).exists()
    assert list((dest / ".medcat/quarantine").rglob("b.dcm.bad*"))
    assert result.verification["gcs-md5"] == len(FILES) - 1


def test_requester_pays_bucket_is_refused_without_a_billing_project_before_any_request(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"{mirror_slug[:40]}-2.0.0.physionet.org"
    root = mirror_root(mirror, f"gcs/{bucket}")
    (root / "files").mkdir()
    (root / "files/x.dcm").write_bytes(payload(4, 500))
    (root / ".requester-pays").write_text("")
    ident = dataset_id(mirror_slug)
    source = {"name": "gcs", "kind": "gcs", "bucket": bucket, "anonymous": True, "requester_pays": True, "endpoint_url": mirror.url}
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    mirror.clear_log()
    code, _, err = run_cli("fetch", ident, "--dest", str(tmp_path / "d"))
    assert code == 2
    assert "requester-pays" in err and "--option billing_project=PROJECT" in err and "$0.12/GB" in err
    assert not mirror.requests
    code, _, err = run_cli("fetch", ident, "--dest", str(tmp_path / "d"), "--option", "billing_project=my-lab")
    assert code == 0, err
    assert mirror.requests and all(r.query.get("userProject") == "my-lab" for r in mirror.requests)
    assert (tmp_path / "d/files/x.dcm").read_bytes() == payload(4, 500)


def test_only_and_limit_select_objects_of_a_bucket(gcs_bucket: tuple[str, str, Path], mirror: MirrorServer, tmp_path: Path) -> None:
    ident, bucket, _ = gcs_bucket
    dest = tmp_path / "d"
    code, _, err = run_cli("fetch", ident, "--dest", str(dest), "--only", "files/p10/*", "--limit", "1")
    assert code == 0, err
    got = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and ".medcat" not in p.parts)
    assert got == ["files/p10/s1/a.dcm"]
    assert len(_media_gets(mirror, bucket)) == 1


class _CutAfter(NullProgress):
    """Arms a 403 on the object's download once ``n`` bytes arrived: the run stops mid-object."""

    def __init__(self, mirror: MirrorServer, path: str, n: int) -> None:
        self.mirror, self.path, self.n, self.seen = mirror, path, n, 0

    def advance(self, n_bytes: int) -> None:
        self.seen += n_bytes
        if self.seen >= self.n:
            self.mirror.add_fault(Fault(self.path, "status", status=403, times=None))


def test_a_fetch_stopped_mid_object_resumes_with_ranged_reads_from_the_part(
    gcs_bucket: tuple[str, str, Path], mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident, bucket, _ = gcs_bucket
    monkeypatch.setattr(buckets, "CHUNK_BYTES", 1024)
    big = "files/p10/s1/a.dcm"  # 3000 bytes: three ranged reads
    media = f"/download/storage/v1/b/{bucket}/o/{big}"
    dest = tmp_path / "d"
    options = FetchOptions(dest=dest, only=(big,), retry=RetryPolicy(attempts=1))
    with pytest.raises(AccessDeniedError):
        fetch(resolve(ident, load_registry()), options, _CutAfter(mirror, media, 1024))
    (part,) = (dest / ".medcat/partial").glob("*.part")
    assert part.stat().st_size == 1024
    mirror.clear_faults()
    mirror.clear_log()
    result = fetch(resolve(ident, load_registry()), options)
    assert result.ok and result.verification["gcs-md5"] == 1
    assert [r.headers.get("range") for r in mirror.requests if r.path == media] == ["bytes=1024-2047", "bytes=2048-2999"]
    assert (dest / big).read_bytes() == FILES[big]


# -- S3 on moto ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 in server mode on 127.0.0.1 (a free port), standing in for Amazon S3."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_endpoint: str, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """``s3://<slug>/<slug>/1.0.0/`` holding FILES, a SHA256SUMS.txt listing all but one, and a multipart object.

    Objects are public-read, as in the open-data buckets, so anonymous reads succeed.
    """
    import boto3

    for var, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(var, value)
    bucket = mirror_slug[:60].strip("-")
    prefix = f"{bucket[:20]}/1.0.0/"
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    for rel, data in FILES.items():
        client.put_object(Bucket=bucket, Key=prefix + rel, Body=data, ACL="public-read")
    listed = sorted(p for p in FILES if p != "README.txt")
    client.put_object(Bucket=bucket, Key=prefix + "SHA256SUMS.txt", Body=_sha256sums(FILES, listed), ACL="public-read")
    upload = client.create_multipart_upload(Bucket=bucket, Key=prefix + "big/multi.bin", ACL="public-read")
    piece = payload(9, 5 << 20)
    etag = client.upload_part(Bucket=bucket, Key=prefix + "big/multi.bin", PartNumber=1, UploadId=upload["UploadId"], Body=piece)["ETag"]
    client.complete_multipart_upload(
        Bucket=bucket, Key=prefix + "big/multi.bin", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": 1}]},
    )
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(var)  # the fetch itself is anonymous
    ident = dataset_id(mirror_slug)
    source = {
        "name": "s3", "kind": "s3", "bucket": bucket, "prefix": prefix, "anonymous": True,
        "checksum_file": "SHA256SUMS.txt", "endpoint_url": moto_endpoint, "region": "us-east-1",
    }
    use_registry(monkeypatch, tmp_path, entry(ident, [source]))
    return ident, bucket


def test_s3_bucket_is_verified_by_sha256sums_then_the_etag_md5_then_size(s3_bucket: tuple[str, str], tmp_path: Path) -> None:
    ident, _ = s3_bucket
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    # three files in SHA256SUMS.txt, README.txt by its one-part ETag, the multipart object by size
    assert report["verification"] == {"sha256sums": 3, "s3-md5": 1, "tofu": 1}
    for rel, data in FILES.items():
        assert (dest / rel).read_bytes() == data
    assert (dest / "big/multi.bin").read_bytes() == payload(9, 5 << 20)
    manifest_urls = (dest / ".medcat").rglob("*")
    assert any(b"s3://" in p.read_bytes() for p in manifest_urls if p.is_file() and p.suffix in (".json", ".jsonl", ".sqlite", ".db", ""))


def test_s3_limit_counts_objects_after_the_checksum_list(s3_bucket: tuple[str, str], tmp_path: Path) -> None:
    ident, _ = s3_bucket
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--dest", str(dest), "--only", "files/*", "--limit", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["selected"] == 2 and report["verification"] == {"sha256sums": 2}
    assert (dest / "SHA256SUMS.txt").is_file()  # the index, kept for verify


def test_without_the_cloud_extra_the_error_names_the_pip_command(s3_bucket: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ident, _ = s3_bucket
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    code, _, err = run_cli("fetch", ident, "--dest", str(tmp_path / "d"))
    assert code == 2
    assert "pip install 'medcat-data[cloud]'" in err and "s3fs" in err
