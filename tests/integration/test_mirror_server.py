"""The loopback mirror behaves like the upstream hosts, for real clients over real sockets."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import socket
import subprocess
import sys
import zipfile
from email.utils import formatdate
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.hf_api import RepoFile, RepoFolder

from medcat_data.cli import main
from medcat_data.errors import UsageError
from medcat_data.mirror.server import Fault, MirrorServer
from tests.fixtures.loopback import mirror_root

pytestmark = pytest.mark.integration

WGET_UA = {"User-Agent": "Wget/1.21.3"}


def _project(mirror: MirrorServer, slug: str, files: dict[str, bytes]) -> str:
    """Write a PhysioNet-like project and return its URL prefix ``/files/<slug>/1.0.0/``."""
    base = mirror_root(mirror, f"files/{slug}/1.0.0")
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    return f"/files/{slug}/1.0.0/"


def _payload(size: int) -> bytes:
    return bytes((i * 31 + 7) % 251 for i in range(size))


# --- plain tree ---------------------------------------------------------------------------------


def test_file_is_served_with_length_validators_and_range_support(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(5000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    resp = requests.get(mirror.url + prefix + "a.dat", timeout=10)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["Content-Length"] == "5000"
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["ETag"].startswith('"') and resp.headers["ETag"].endswith('"')
    assert "GMT" in resp.headers["Last-Modified"]


def test_head_sends_headers_without_body(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"x" * 123})
    resp = requests.head(mirror.url + prefix + "a.dat", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == "123"
    assert resp.content == b""


def test_download_query_is_accepted_and_ignored(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"LICENSE.txt": b"license"})
    resp = requests.get(mirror.url + prefix + "LICENSE.txt?download", timeout=10)
    assert resp.content == b"license"
    assert mirror.requests[-1].query == {"download": ""}


def test_missing_file_is_404(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {})
    assert requests.get(mirror.url + prefix + "nope.dat", timeout=10).status_code == 404


def test_path_traversal_is_refused(mirror: MirrorServer, mirror_slug: str) -> None:
    (mirror.root.parent / f"{mirror_slug}-secret.txt").write_text("secret")
    conn = http.client.HTTPConnection("127.0.0.1", mirror.port, timeout=10)
    conn.request("GET", f"/../{mirror_slug}-secret.txt")
    assert conn.getresponse().status == 404
    conn.close()


def test_directory_without_slash_redirects_to_slash_form(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"sub/b.dat": b"b"})
    resp = requests.get(mirror.url + prefix + "sub", allow_redirects=False, timeout=10)
    assert resp.status_code == 301
    assert resp.headers["Location"] == prefix + "sub/"


def test_directory_listing_has_parent_subdirectory_and_file_anchors(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"a", "sub/b.dat": b"b", "SHA256SUMS.txt": b""})
    resp = requests.get(mirror.url + prefix, timeout=10)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    page = resp.text
    assert '<a href="../">../</a>' in page
    assert '<a href="sub/">sub/</a>' in page
    assert '<a href="a.dat">a.dat</a>' in page
    assert '<a href="SHA256SUMS.txt">SHA256SUMS.txt</a>' in page
    assert page.index('href="sub/"') < page.index('href="a.dat"')


# --- ranges ------------------------------------------------------------------------------------


def test_open_ended_range_returns_206_with_content_range(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(1000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    resp = requests.get(mirror.url + prefix + "a.dat", headers={"Range": "bytes=400-"}, timeout=10)
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == "bytes 400-999/1000"
    assert resp.content == data[400:]


def test_closed_range_returns_exactly_those_bytes(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(1000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    resp = requests.get(mirror.url + prefix + "a.dat", headers={"Range": "bytes=10-19"}, timeout=10)
    assert resp.status_code == 206
    assert resp.headers["Content-Length"] == "10"
    assert resp.content == data[10:20]


def test_if_range_with_current_etag_honours_the_range(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(1000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    etag = requests.head(mirror.url + prefix + "a.dat", timeout=10).headers["ETag"]
    resp = requests.get(
        mirror.url + prefix + "a.dat", headers={"Range": "bytes=500-", "If-Range": etag}, timeout=10
    )
    assert resp.status_code == 206
    assert resp.content == data[500:]


def test_if_range_with_stale_etag_sends_the_whole_file(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(1000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    resp = requests.get(
        mirror.url + prefix + "a.dat", headers={"Range": "bytes=500-", "If-Range": '"stale-etag"'}, timeout=10
    )
    assert resp.status_code == 200
    assert resp.content == data


def test_if_range_with_old_date_sends_the_whole_file(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(1000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    old = formatdate(946684800, usegmt=True)  # 2000-01-01
    resp = requests.get(
        mirror.url + prefix + "a.dat", headers={"Range": "bytes=500-", "If-Range": old}, timeout=10
    )
    assert resp.status_code == 200
    assert resp.content == data


def test_range_past_the_end_is_416(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"x" * 100})
    resp = requests.get(mirror.url + prefix + "a.dat", headers={"Range": "bytes=100-"}, timeout=10)
    assert resp.status_code == 416
    assert resp.headers["Content-Range"] == "bytes */100"


def test_matching_if_none_match_is_304(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"x" * 100})
    etag = requests.head(mirror.url + prefix + "a.dat", timeout=10).headers["ETag"]
    resp = requests.get(mirror.url + prefix + "a.dat", headers={"If-None-Match": etag}, timeout=10)
    assert resp.status_code == 304


# --- basic auth --------------------------------------------------------------------------------


def test_protected_path_without_credentials_is_challenged_with_401(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"secret"})
    mirror.protect(prefix, "alice", "s3cret")
    resp = requests.get(mirror.url + prefix + "a.dat", headers=WGET_UA, timeout=10)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_wrong_password_is_401(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"secret"})
    mirror.protect(prefix, "alice", "s3cret")
    resp = requests.get(mirror.url + prefix + "a.dat", auth=("alice", "nope"), headers=WGET_UA, timeout=10)
    assert resp.status_code == 401


def test_good_credentials_from_wget_user_agent_are_accepted(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"secret"})
    mirror.protect(prefix, "alice", "s3cret")
    resp = requests.get(mirror.url + prefix + "a.dat", auth=("alice", "s3cret"), headers=WGET_UA, timeout=10)
    assert resp.status_code == 200
    assert resp.content == b"secret"


def test_good_credentials_from_python_requests_user_agent_are_forbidden(
    mirror: MirrorServer, mirror_slug: str
) -> None:
    """PhysioNet honours Basic auth only from Wget/ and libwfdb/ User-Agents (reference 2.3)."""
    prefix = _project(mirror, mirror_slug, {"a.dat": b"secret"})
    mirror.protect(prefix, "alice", "s3cret")
    resp = requests.get(mirror.url + prefix + "a.dat", auth=("alice", "s3cret"), timeout=10)
    assert resp.status_code == 403


def test_protection_with_any_user_agent_accepts_python_requests(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"secret"})
    mirror.protect(prefix, "alice", "s3cret", user_agents=None)
    resp = requests.get(mirror.url + prefix + "a.dat", auth=("alice", "s3cret"), timeout=10)
    assert resp.status_code == 200


def test_unprotect_all_opens_every_path(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"open"})
    mirror.protect(prefix, "alice", "s3cret")
    mirror.unprotect_all()
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).status_code == 200


# --- faults ------------------------------------------------------------------------------------


def test_drop_fault_closes_the_connection_after_the_given_bytes(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(200_000)
    prefix = _project(mirror, mirror_slug, {"big.dat": data})
    mirror.add_fault(Fault(prefix + "big.dat", "drop", after_bytes=1000))
    received = bytearray()
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        with requests.get(mirror.url + prefix + "big.dat", stream=True, timeout=10) as resp:
            for chunk in resp.iter_content(250):
                received += chunk
    assert bytes(received) == data[:1000]
    again = requests.get(mirror.url + prefix + "big.dat", timeout=10)
    assert again.content == data
    assert [r.bytes_sent for r in mirror.requests] == [1000, 200_000]


def test_status_fault_answers_503_with_retry_after_once(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"ok"})
    mirror.add_fault(Fault(prefix + "*", "status", status=503, retry_after=2))
    first = requests.get(mirror.url + prefix + "a.dat", timeout=10)
    assert first.status_code == 503
    assert first.headers["Retry-After"] == "2"
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).status_code == 200


def test_status_fault_with_times_none_applies_always_and_to_head(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"ok"})
    mirror.add_fault(Fault(prefix + "a.dat", "status", status=429, retry_after=0.5, times=None))
    for _ in range(3):
        resp = requests.get(mirror.url + prefix + "a.dat", timeout=10)
        assert (resp.status_code, resp.headers["Retry-After"]) == (429, "0.5")
    assert requests.head(mirror.url + prefix + "a.dat", timeout=10).status_code == 429


def test_corrupt_fault_keeps_the_length_but_changes_the_bytes(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(3000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    mirror.add_fault(Fault(prefix + "a.dat", "corrupt", times=2))
    bad = [requests.get(mirror.url + prefix + "a.dat", timeout=10).content for _ in range(2)]
    good = requests.get(mirror.url + prefix + "a.dat", timeout=10).content
    assert all(len(b) == len(data) and b != data for b in bad)
    assert hashlib.sha256(good).hexdigest() == hashlib.sha256(data).hexdigest()


def test_corrupt_fault_ignores_head_requests(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(300)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    mirror.add_fault(Fault(prefix + "a.dat", "corrupt"))
    requests.head(mirror.url + prefix + "a.dat", timeout=10)
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).content != data


def test_slow_fault_with_delay_trips_a_client_read_timeout(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"late"})
    mirror.add_fault(Fault(prefix + "a.dat", "slow", delay_s=1.0))
    with pytest.raises(requests.exceptions.ConnectionError):
        with requests.get(mirror.url + prefix + "a.dat", stream=True, timeout=(5, 0.2)) as resp:
            resp.content  # noqa: B018 (reading the body is the point)
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).content == b"late"


def test_slow_fault_with_throughput_cap_still_delivers_every_byte(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _payload(20_000)
    prefix = _project(mirror, mirror_slug, {"a.dat": data})
    mirror.add_fault(Fault(prefix + "a.dat", "slow", bytes_per_s=200_000))
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).content == data


def test_unauthorized_fault_answers_401_even_on_open_paths(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"ok"})
    mirror.add_fault(Fault(prefix + "a.dat", "unauthorized"))
    resp = requests.get(mirror.url + prefix + "a.dat", timeout=10)
    assert resp.status_code == 401
    assert "WWW-Authenticate" in resp.headers
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).status_code == 200


def test_faults_only_hit_matching_paths(mirror: MirrorServer, mirror_slug: str) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"a", "b.hea": b"b"})
    mirror.add_fault(Fault(prefix + "*.dat", "status", status=500, times=None))
    assert requests.get(mirror.url + prefix + "b.hea", timeout=10).status_code == 200
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).status_code == 500
    mirror.clear_faults()
    assert requests.get(mirror.url + prefix + "a.dat", timeout=10).status_code == 200


# --- request log -------------------------------------------------------------------------------


def test_request_log_counts_per_path_and_method_and_keeps_range_headers(
    mirror: MirrorServer, mirror_slug: str
) -> None:
    prefix = _project(mirror, mirror_slug, {"a.dat": b"x" * 100, "b.dat": b"y"})
    with requests.Session() as session:
        session.head(mirror.url + prefix + "a.dat", timeout=10)
        session.get(mirror.url + prefix + "a.dat", headers={"Range": "bytes=50-"}, timeout=10)
        session.get(mirror.url + prefix + "b.dat", timeout=10)
    assert mirror.count(prefix + "a.dat") == 2
    assert mirror.count(prefix + "a.dat", "GET") == 1
    assert mirror.count(prefix + "*.dat", "get") == 2
    ranged = [r for r in mirror.requests if r.method == "GET" and r.path.endswith("a.dat")][0]
    assert ranged.headers["range"] == "bytes=50-"
    assert (ranged.status, ranged.bytes_sent) == (206, 50)
    assert ranged.user_agent.startswith("python-requests/")
    mirror.clear_log()
    assert mirror.count(prefix + "a.dat") == 0


# --- binding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_non_loopback_host_is_refused(tmp_path: Path, host: str) -> None:
    with pytest.raises(UsageError, match="loopback"):
        MirrorServer(tmp_path, host=host)


def test_server_binds_loopback_on_a_free_port_and_stops(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("x")
    with MirrorServer(tmp_path) as server:
        assert server.url.startswith("http://127.0.0.1:") and server.port > 0
        assert requests.get(server.url + "/x.txt", timeout=10).text == "x"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


# --- command line ------------------------------------------------------------------------------


def test_cli_serve_prints_its_url_and_serves_the_tree(tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hello")
    proc = subprocess.Popen(
        [sys.executable, "-m", "medcat_data", "mirror", "serve", str(tmp_path), "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        document = "".join(iter(proc.stdout.readline, "}\n")) + "}"
        url = json.loads(document)["url"]
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(url + "/hello.txt", timeout=10).text == "hello"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_serve_refuses_a_non_loopback_host(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["mirror", "serve", str(tmp_path), "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "loopback" in result.output


# --- Hugging Face Hub API ----------------------------------------------------------------------

HF_CARD = b"---\nlicense: cc-by-4.0\npretty_name: Demo\n---\n# Demo dataset\n"


def _hub_repo(mirror: MirrorServer, slug: str) -> tuple[str, dict[str, bytes]]:
    """Write a dataset repo with small (git) and LFS files; return its id and contents."""
    repo_id = f"medcat/{slug}"
    files = {
        "README.md": HF_CARD,
        "data/labels.csv": b"id,label\n1,a\n2,b\n",
        "data/train-00000-of-00001.parquet": _payload(3000),
        "images/big.bin": _payload(50_000),
    }
    base = mirror_root(mirror, f"datasets/{repo_id}")
    for rel, data in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(data)
    return repo_id, files


def _local_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".cache" not in p.relative_to(folder).parts
    }


def test_hub_dataset_info_reports_sha_siblings_lfs_and_card(mirror: MirrorServer, mirror_slug: str) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    info = HfApi(endpoint=mirror.url).dataset_info(repo_id, files_metadata=True)
    assert info.id == repo_id
    assert info.sha is not None and len(info.sha) == 40
    assert info.card_data is not None and info.card_data.license == "cc-by-4.0"
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == set(files)
    big = siblings["images/big.bin"]
    assert big.lfs is not None and big.lfs.sha256 == hashlib.sha256(files["images/big.bin"]).hexdigest()
    assert siblings["data/train-00000-of-00001.parquet"].lfs is not None
    assert siblings["data/labels.csv"].lfs is None


def test_hub_revision_sha_is_stable_and_changes_with_content(mirror: MirrorServer, mirror_slug: str) -> None:
    repo_id, _ = _hub_repo(mirror, mirror_slug)
    api = HfApi(endpoint=mirror.url)
    first = api.dataset_info(repo_id).sha
    assert api.dataset_info(repo_id, revision=first).sha == first
    (mirror.root / "datasets" / repo_id / "data" / "labels.csv").write_bytes(b"id,label\n1,c\n")
    assert api.dataset_info(repo_id).sha != first


def test_hub_list_repo_files_and_tree_entries(mirror: MirrorServer, mirror_slug: str) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    api = HfApi(endpoint=mirror.url)
    assert sorted(api.list_repo_files(repo_id, repo_type="dataset")) == sorted(files)
    top = {e.path: e for e in api.list_repo_tree(repo_id, repo_type="dataset")}
    assert set(top) == {"README.md", "data", "images"}
    assert isinstance(top["data"], RepoFolder)
    nested = {e.path: e for e in api.list_repo_tree(repo_id, "data", repo_type="dataset")}
    parquet = nested["data/train-00000-of-00001.parquet"]
    assert isinstance(parquet, RepoFile) and parquet.lfs is not None
    assert parquet.lfs.sha256 == hashlib.sha256(files["data/train-00000-of-00001.parquet"]).hexdigest()


def test_hub_paths_info_describes_files_and_folders(mirror: MirrorServer, mirror_slug: str) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    infos = HfApi(endpoint=mirror.url).get_paths_info(
        repo_id, ["data/labels.csv", "images", "missing.txt"], repo_type="dataset"
    )
    by_path = {i.path: i for i in infos}
    assert set(by_path) == {"data/labels.csv", "images"}
    labels = by_path["data/labels.csv"]
    assert isinstance(labels, RepoFile) and labels.size == len(files["data/labels.csv"])
    blob = b"blob %d\0" % len(files["data/labels.csv"]) + files["data/labels.csv"]
    assert labels.blob_id == hashlib.sha1(blob).hexdigest()


def test_hub_resolve_head_carries_the_headers_hf_hub_download_checks(mirror: MirrorServer, mirror_slug: str) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    sha = HfApi(endpoint=mirror.url).dataset_info(repo_id).sha
    resp = requests.head(f"{mirror.url}/datasets/{repo_id}/resolve/main/images/big.bin", timeout=10)
    assert resp.status_code == 200
    assert resp.headers["X-Repo-Commit"] == sha
    digest = hashlib.sha256(files["images/big.bin"]).hexdigest()
    assert resp.headers["ETag"] == resp.headers["X-Linked-Etag"] == f'"{digest}"'
    assert resp.headers["X-Linked-Size"] == resp.headers["Content-Length"] == "50000"
    assert not any(h.lower().startswith("x-xet") for h in resp.headers)


def test_hub_resolve_supports_ranges(mirror: MirrorServer, mirror_slug: str) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    resp = requests.get(
        f"{mirror.url}/datasets/{repo_id}/resolve/main/images/big.bin", headers={"Range": "bytes=100-"}, timeout=10
    )
    assert resp.status_code == 206
    assert resp.content == files["images/big.bin"][100:]


def test_hub_unknown_repo_revision_and_file_raise_the_clients_errors(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path
) -> None:
    repo_id, _ = _hub_repo(mirror, mirror_slug)
    api = HfApi(endpoint=mirror.url)
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info(f"medcat/{mirror_slug}-nope")
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(repo_id, revision="0" * 40)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.txt", repo_type="dataset", endpoint=mirror.url, cache_dir=tmp_path)


def test_hf_hub_download_fetches_one_file_into_the_cache(mirror: MirrorServer, mirror_slug: str, tmp_path: Path) -> None:
    """huggingface_hub reads HF_HOME at import time, so every Hub test passes its own cache_dir."""
    repo_id, files = _hub_repo(mirror, mirror_slug)
    path = hf_hub_download(repo_id, "images/big.bin", repo_type="dataset", endpoint=mirror.url, cache_dir=tmp_path)
    assert Path(path).read_bytes() == files["images/big.bin"]
    assert mirror.count(f"/datasets/{repo_id}/resolve/*/images/big.bin", "GET") == 1


def test_snapshot_download_with_the_real_client_fetches_every_file(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path
) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    sha = HfApi(endpoint=mirror.url).dataset_info(repo_id).sha
    mirror.clear_log()
    out = snapshot_download(
        repo_id, repo_type="dataset", revision=sha, endpoint=mirror.url, local_dir=tmp_path / "out",
        cache_dir=tmp_path / "cache",
    )
    assert _local_files(Path(out)) == files
    assert mirror.count(f"/api/datasets/{repo_id}/tree/{sha}", "GET") == 1
    assert mirror.count(f"/datasets/{repo_id}/resolve/{sha}/*", "GET") == len(files)
    assert not any("xet" in r.path for r in mirror.requests)


def test_snapshot_download_of_main_asks_the_api_for_the_revision(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path
) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    out = snapshot_download(repo_id, repo_type="dataset", endpoint=mirror.url, cache_dir=tmp_path)
    assert _local_files(Path(out)) == files
    assert mirror.count(f"/api/datasets/{repo_id}/revision/main", "GET") == 1


def test_snapshot_download_honours_hf_endpoint_set_before_import(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path
) -> None:
    """HF_ENDPOINT is read when huggingface_hub.constants is imported, so this runs in a fresh interpreter."""
    repo_id, files = _hub_repo(mirror, mirror_slug)
    script = (
        "import sys\nfrom huggingface_hub import snapshot_download\n"
        "print(snapshot_download(sys.argv[1], repo_type='dataset', local_dir=sys.argv[2]))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": mirror.url,
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, repo_id, str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert _local_files(tmp_path / "out") == files
    assert mirror.count(f"/api/datasets/{repo_id}/revision/main") == 1


def test_gated_repo_needs_a_known_bearer_token(mirror: MirrorServer, mirror_slug: str, tmp_path: Path) -> None:
    repo_id, files = _hub_repo(mirror, mirror_slug)
    (mirror.root / "datasets" / repo_id / ".gated").touch()
    with pytest.raises(GatedRepoError):
        HfApi(endpoint=mirror.url).dataset_info(repo_id)
    with pytest.raises(GatedRepoError):
        HfApi(endpoint=mirror.url, token="hf_wrong").dataset_info(repo_id)
    mirror.hf_tokens.add("hf_good")
    out = snapshot_download(
        repo_id, repo_type="dataset", endpoint=mirror.url, token="hf_good", local_dir=tmp_path / "o",
        cache_dir=tmp_path / "cache",
    )
    assert _local_files(Path(out)) == files
    assert HfApi(endpoint=mirror.url, token="hf_good").dataset_info(repo_id).gated == "manual"


# --- Kaggle ------------------------------------------------------------------------------------


def _kaggle_zip(mirror: MirrorServer, slug: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("csv/meta.csv", "patient_id,label\n1,benign\n")
    mirror_root(mirror, f"kaggle/{slug}")
    (mirror.root / "kaggle" / slug / "cbis.zip").write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_kaggle_download_serves_the_zip_as_an_attachment(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _kaggle_zip(mirror, mirror_slug)
    resp = requests.get(
        f"{mirror.url}/api/v1/datasets/download/{mirror_slug}/cbis?datasetVersionNumber=2", timeout=10
    )
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["Content-Disposition"] == "attachment; filename=cbis.zip"


def test_kaggle_download_needs_username_and_key_from_any_client(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _kaggle_zip(mirror, mirror_slug)
    mirror.protect("/api/v1/", "kaggler", "k3y", user_agents=None)
    url = f"{mirror.url}/api/v1/datasets/download/{mirror_slug}/cbis"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("kaggler", "wrong"), timeout=10).status_code == 401
    resp = requests.get(url, auth=("kaggler", "k3y"), timeout=10)
    assert (resp.status_code, resp.content) == (200, data)


def test_kaggle_unknown_dataset_is_404_json(mirror: MirrorServer, mirror_slug: str) -> None:
    resp = requests.get(f"{mirror.url}/api/v1/datasets/download/{mirror_slug}/nothing", timeout=10)
    assert resp.status_code == 404
    assert resp.json()["code"] == 404


# --- Google Drive ------------------------------------------------------------------------------


def _drive_file(mirror: MirrorServer, file_id: str, size: int) -> bytes:
    data = _payload(size)
    (mirror_root(mirror, f"gdrive/{file_id}") / "images.zip").write_bytes(data)
    return data


def test_drive_small_file_downloads_without_confirmation(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _drive_file(mirror, mirror_slug, 5_000)
    resp = requests.get(f"{mirror.url}/uc", params={"export": "download", "id": mirror_slug}, timeout=10)
    assert resp.status_code == 200
    assert resp.content == data
    assert resp.headers["Content-Disposition"] == 'attachment; filename="images.zip"'
    assert [r.path for r in mirror.requests] == ["/uc", "/download"]


def test_drive_large_file_goes_through_the_virus_scan_interstitial(mirror: MirrorServer, mirror_slug: str) -> None:
    data = _drive_file(mirror, mirror_slug, 150_000)
    with requests.Session() as session:
        page = session.get(f"{mirror.url}/uc", params={"export": "download", "id": mirror_slug}, timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "virus" in page.text.lower()
        form = _form(page.text)
        assert form["action"] == "/download"
        assert set(form["fields"]) == {"id", "export", "confirm", "uuid"}
        resp = session.get(mirror.url + form["action"], params=form["fields"], timeout=10)
    assert resp.content == data
    assert resp.headers["Content-Disposition"] == 'attachment; filename="images.zip"'


def test_drive_quota_switch_answers_the_quota_page(mirror: MirrorServer, mirror_slug: str) -> None:
    _drive_file(mirror, mirror_slug, 5_000)
    mirror.gdrive_quota_exceeded = True
    resp = requests.get(
        f"{mirror.url}/download", params={"id": mirror_slug, "export": "download", "confirm": "t"}, timeout=10
    )
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Too many users have viewed or downloaded this file recently" in resp.text
    assert "24 hours" in resp.text


def test_drive_unknown_id_is_404(mirror: MirrorServer, mirror_slug: str) -> None:
    resp = requests.get(f"{mirror.url}/download", params={"id": mirror_slug, "export": "download"}, timeout=10)
    assert resp.status_code == 404


def _form(page: str) -> dict:
    """Extract the download form's action and hidden inputs, as a client would."""

    class _Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.action = ""
            self.fields: dict[str, str] = {}

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = dict(attrs)
            if tag == "form" and a.get("id") == "download-form":
                self.action = a.get("action") or ""
            if tag == "input" and a.get("type") == "hidden":
                self.fields[a.get("name") or ""] = a.get("value") or ""

    parser = _Parser()
    parser.feed(page)
    return {"action": parser.action, "fields": parser.fields}
