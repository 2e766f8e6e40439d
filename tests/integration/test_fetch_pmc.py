"""Fetching the PMC Open Access subset from the bucket's per-article layout, over loopback.

The replica bucket is the ``pmc-oa`` replica built into the session mirror (the bucket's keys are
the mirror's URL paths, as with the virtual-hosted bucket host). Every fetch goes to its own
``--dest``.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from xml.etree import ElementTree

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, fetch
from medcat_data.loaders.transports import pmc as pmc_transport
from medcat_data.mirror.faults import Fault
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import replicas
from tests.unit.loaders.entries import run_cli

pytestmark = pytest.mark.integration

_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _expected(mirror: MirrorServer) -> dict[str, list[str]]:
    return dict(replicas("pmc-oa", mirror)[0].expected)


def _articles(dest: Path) -> set[str]:
    return {p.name for p in dest.iterdir() if p.is_dir() and p.name.startswith("PMC")}


def test_limit_counts_articles_not_files(mirror: MirrorServer, tmp_path: Path) -> None:
    expected = _expected(mirror)
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", "pmc-oa", "--mirror", mirror.url, "--dest", str(dest), "--limit", "2", "--json")
    assert code == 0, err
    first_two = sorted(expected["articles"], key=lambda p: int(p[3:].split(".")[0]))[:2]
    assert _articles(dest) == set(first_two)
    for prefix in first_two:
        assert (dest / prefix / f"{prefix}.xml").is_file()
        assert (dest / "metadata" / f"{prefix}.json").is_file()
        assert any(p.suffix == ".jpg" for p in (dest / prefix).iterdir())
    report = json.loads(out)
    assert report["verification"]["md5-list"] >= 6  # xml, txt, pdf and media carry the record's md5


def test_articles_file_picks_the_newest_version_or_the_one_named(mirror: MirrorServer, tmp_path: Path) -> None:
    expected = _expected(mirror)
    two_versions = next(p for p in expected["articles"] if p.endswith(".2"))
    pmcid = two_versions.split(".")[0]
    other = next(p for p in expected["articles"] if not p.startswith(pmcid))
    listed = tmp_path / "articles.txt"
    listed.write_text(f"# newest of one, a named old version of the same, one missing\n{pmcid}\n{pmcid}.1\n{other.lower()}\nPMC1\n")
    dest = tmp_path / "d"
    code, _, err = run_cli("fetch", "pmc-oa", "--mirror", mirror.url, "--dest", str(dest), "--option", f"articles={listed}")
    assert code == 0, err
    assert _articles(dest) == {two_versions, f"{pmcid}.1", other}


def test_subset_commercial_keeps_cc_by_and_cc0_only(mirror: MirrorServer, tmp_path: Path) -> None:
    expected = _expected(mirror)
    code, _, err = run_cli(
        "fetch", "pmc-oa", "--mirror", mirror.url, "--dest", str(tmp_path / "c"), "--option", "subset=commercial"
    )
    assert code == 0, err
    assert _articles(tmp_path / "c") == set(expected["commercial_articles"])
    for path in (tmp_path / "c" / "metadata").glob("*.json"):
        record = json.loads(path.read_text())
        if path.stem in expected["commercial_articles"]:
            assert record["license_code"] in ("CC BY", "CC0")


def test_listing_follows_continuation_tokens(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _expected(mirror)
    monkeypatch.setattr(pmc_transport, "PAGE_KEYS", 4)  # the replica is small; S3 pages hold 1000
    result = fetch(resolve("pmc-oa", load_registry()), FetchOptions(mirror=mirror.url, dest=tmp_path / "d", dry_run=True))
    listings = [r for r in mirror.requests if r.path == "/" and r.query.get("list-type") == "2"]
    assert len(listings) >= 3
    assert all(r.query["max-keys"] == "4" for r in listings)
    assert len({r.query.get("continuation-token") for r in listings}) == len(listings)
    assert result.ok and {row["path"].split("/")[0] for row in result.planned} >= set(expected["articles"])


def test_the_mirror_answers_list_objects_v2_with_prefixes_and_pages(mirror: MirrorServer) -> None:
    _expected(mirror)
    url = f"{mirror.url}/?list-type=2&delimiter=/&prefix=PMC&max-keys=3"
    seen: list[str] = []
    token = None
    while True:
        page = ElementTree.fromstring(urllib.request.urlopen(url + (f"&continuation-token={token}" if token else "")).read())
        assert page.tag == f"{_NS}ListBucketResult"
        seen += [e.text or "" for e in page.iter(f"{_NS}Prefix") if e.text and e.text.endswith("/")]
        assert int(page.findtext(f"{_NS}KeyCount") or 0) <= 3
        if page.findtext(f"{_NS}IsTruncated") != "true":
            break
        token = page.findtext(f"{_NS}NextContinuationToken")
    assert seen == sorted(set(seen)) and all(s.startswith("PMC") and s.count("/") == 1 for s in seen)
    assert len(seen) == 11  # ten articles, one of them with two versions


def test_a_corrupt_figure_is_caught_by_the_records_md5(mirror: MirrorServer, tmp_path: Path) -> None:
    expected = _expected(mirror)
    first = sorted(expected["articles"], key=lambda p: int(p[3:].split(".")[0]))[0]
    mirror.add_fault(Fault(f"/{first}/*.jpg", "corrupt", times=None))
    listed = tmp_path / "one.txt"
    listed.write_text(first + "\n")
    result = fetch(
        resolve("pmc-oa", load_registry()),
        FetchOptions(mirror=mirror.url, dest=tmp_path / "d", source_options={"articles": str(listed)}),
    )
    assert not result.ok
    assert result.failed and all(f.path.endswith(".jpg") for f in result.failed)
    assert "md5" in result.failed[0].reason or "mismatch" in result.failed[0].reason


def test_an_option_is_refused_for_a_dataset_whose_sources_take_none(tmp_path: Path) -> None:
    # vindr-mammo needs --accept-license: the misplaced option is reported before that question.
    code, _, err = run_cli("fetch", "vindr-mammo", "--option", "subset=commercial", "--dest", str(tmp_path))
    assert code == 2
    assert "vindr-mammo: its sources (kind physionet) take no options, so not subset" in err
    code, _, err = run_cli("fetch", "vqa-rad", "--option", "subset=commercial", "--dest", str(tmp_path))
    assert code == 2
    assert "its sources (kinds osf, hf) take no options" in err


def test_an_unknown_option_is_refused_naming_the_accepted_ones_before_any_request(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    _expected(mirror)
    mirror.clear_log()
    code, _, err = run_cli("fetch", "pmc-oa", "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--option", "artcles=x")
    assert code == 2
    assert "pmc-oa: no source of this fetch takes the option artcles; options: articles, subset (kind pmc)" in err
    assert not mirror.requests
    assert not (tmp_path / "d").exists()


def test_a_bad_choice_or_a_missing_file_is_refused_before_any_request(mirror: MirrorServer, tmp_path: Path) -> None:
    _expected(mirror)
    mirror.clear_log()
    base = ("fetch", "pmc-oa", "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--option")
    code, _, err = run_cli(*base, "subset=free")
    assert code == 2
    assert "subset must be one of commercial, noncommercial, not 'free'" in err
    code, _, err = run_cli(*base, f"articles={tmp_path / 'absent.txt'}")
    assert code == 2
    assert "absent.txt" in err and "is not a file" in err
    assert not mirror.requests


def test_fetch_help_after_a_ref_lists_its_source_kinds_options() -> None:
    code, out, _ = run_cli("fetch", "pmc-oa", "--help")
    assert code == 0
    flat = " ".join(out.split())  # help text is wrapped to the terminal width
    assert "--option articles=FILE pmc sources: only the articles listed in FILE" in flat
    assert "--option subset=commercial|noncommercial pmc sources: only articles whose licence allows" in flat
    assert "--articles" not in out and "--subset" not in out


def test_fetch_help_without_a_ref_still_works() -> None:
    code, out, _ = run_cli("fetch", "--help")
    assert code == 0
    assert "--option KEY=VALUE" in out and "articles=FILE" not in out


def test_an_empty_bucket_says_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with MirrorServer(tmp_path / "root") as empty:
        code, _, err = run_cli("fetch", "pmc-oa", "--mirror", empty.url, "--dest", str(tmp_path / "d"))
    assert code == 1
    assert "lists no article metadata" in err and "removed in August 2026" in err


def test_a_bad_articles_line_names_file_and_line(mirror: MirrorServer, tmp_path: Path) -> None:
    listed = tmp_path / "bad.txt"
    listed.write_text("PMC1\nnot-an-id\n")
    code, _, err = run_cli(
        "fetch", "pmc-oa", "--mirror", mirror.url, "--dest", str(tmp_path / "d"), "--option", f"articles={listed}"
    )
    assert code == 2
    assert "bad.txt:2" in err


def test_a_local_copy_of_the_bucket_works_as_a_file_mirror(mirror: MirrorServer, tmp_path: Path) -> None:
    expected = _expected(mirror)
    dest = tmp_path / "d"
    code, out, err = run_cli(
        "fetch", "pmc-oa", "--mirror", mirror.root.as_uri(), "--dest", str(dest), "--option", "subset=noncommercial", "--json"
    )
    assert code == 0, err
    assert _articles(dest) == set(expected["articles"]) - set(expected["commercial_articles"])
    assert not [r for r in mirror.requests if r.path == "/"]  # no listing went over HTTP
