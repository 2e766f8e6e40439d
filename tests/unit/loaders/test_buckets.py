"""How bucket transports read an object store's checksums and errors (no server needed)."""

from __future__ import annotations

import base64
import hashlib

from medcat_data.loaders.transports import Denied, Transient, Unavailable
from medcat_data.loaders.transports.buckets import classify, gcs_md5, s3_md5


def test_gcs_md5hash_is_base64_and_becomes_hex_verified_as_gcs_md5() -> None:
    digest = hashlib.md5(b"abc").digest()
    found = gcs_md5({"md5Hash": base64.b64encode(digest).decode(), "crc32c": "AAAAAA=="})
    assert (found.md5_hex, found.verified_by) == (digest.hex(), "gcs-md5")


def test_a_composite_gcs_object_without_md5_is_checked_by_size_only() -> None:
    assert gcs_md5({"crc32c": "AAAAAA=="}).verified_by == "tofu"
    assert gcs_md5({"md5Hash": "not base64!"}).md5_hex is None


def test_an_s3_etag_is_an_md5_only_for_one_part_uploads() -> None:
    md5 = hashlib.md5(b"abc").hexdigest()
    assert s3_md5({"ETag": f'"{md5}"'}).verified_by == "s3-md5"
    multipart = s3_md5({"ETag": f'"{md5}-3"'})
    assert (multipart.md5_hex, multipart.verified_by) == (None, "tofu")


def test_store_errors_map_onto_the_engines_signals() -> None:
    assert isinstance(classify(FileNotFoundError("b/k"), "gs://b/k"), Unavailable)
    assert isinstance(classify(OSError("Forbidden: b/k\nno access"), "gs://b/k"), Denied)
    assert isinstance(classify(PermissionError("AccessDenied"), "s3://b/k"), Denied)
    assert isinstance(classify(ConnectionResetError("reset"), "s3://b/k"), Transient)
