"""The public Python API (``medcat_data.fetch/normalize/load/info``), used through its public names only,
against the replicas served on the loopback mirror."""

from __future__ import annotations

import os
from pathlib import Path

import datasets
import pytest

import medcat_data
from medcat_data.errors import FetchError, LicenseNotAcceptedError, NotFetchedError, UsageError
from medcat_data.mirror.faults import Fault
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import replicas

pytestmark = pytest.mark.integration

DATASET = "vqa-rad"


def _expected(server: MirrorServer, source: str = "osf") -> dict[str, int]:
    replica = next(r for r in replicas(DATASET, server) if r.source == source)
    return dict(replica.expected["configs"]["vqa"])


def test_load_fetches_and_normalizes_on_first_use_then_reads_only_the_cache(mirror: MirrorServer) -> None:
    expected = _expected(mirror)
    loaded = medcat_data.load(DATASET, mirror=mirror.url)
    assert isinstance(loaded, datasets.DatasetDict)
    assert {split: len(ds) for split, ds in loaded.items()} == expected
    assert mirror.requests, "the first load fetched nothing"

    mirror.clear_log()
    train = medcat_data.load(DATASET, "vqa", split="train", mirror=mirror.url)
    assert isinstance(train, datasets.Dataset)
    assert len(train) == expected["train"]
    assert list(mirror.requests) == [], "a second load went back to the network"


def test_info_tells_where_the_dataset_is_fetched_and_normalized(mirror: MirrorServer) -> None:
    before = medcat_data.info(DATASET)
    assert before.id == DATASET and before.configs == ("vqa",) and before.access == "open"
    assert not before.fetched and before.normalized is None
    assert before.raw.path == Path(os.environ["MEDCAT_HOME"]) / "raw" / DATASET / before.version

    _expected(mirror)
    medcat_data.load(DATASET, mirror=mirror.url)
    after = medcat_data.info(DATASET)
    assert after.fetched and after.raw.verified and after.raw.sources == ("osf",)
    assert after.raw.files > 0 and after.raw.size_bytes > 0 and after.raw.last_used is not None
    assert after.normalized is not None
    assert after.normalized.configs == ("vqa",) and after.normalized.version == after.version
    assert after.normalized.rows["vqa"] == _expected(mirror)
    assert datasets.load_dataset(str(after.normalized.path), "vqa", split="test").num_rows == _expected(mirror)["test"]


def test_fetch_returns_the_verified_folder_and_normalize_the_dataset_folder(mirror: MirrorServer, tmp_path: Path) -> None:
    _expected(mirror)
    raw = medcat_data.fetch(DATASET, mirror=mirror.url, dest=tmp_path / "raw")
    assert raw == tmp_path / "raw" and (raw / "osf" / "VQA_RAD Dataset Public.json").exists()

    out = medcat_data.normalize(DATASET, out=tmp_path / "data", dest=raw, config="vqa", limit=5)
    assert out == tmp_path / "data" / DATASET
    loaded = datasets.load_dataset(str(out), "vqa")
    assert 0 < sum(len(ds) for ds in loaded.values()) <= 5


def test_normalize_defaults_to_the_cache_that_load_reads(mirror: MirrorServer) -> None:
    _expected(mirror)
    medcat_data.fetch(DATASET, mirror=mirror.url)
    out = medcat_data.normalize(DATASET)
    assert out == medcat_data.info(DATASET).normalized.path  # type: ignore[union-attr]
    mirror.clear_log()
    assert len(medcat_data.load(DATASET, split="test", fetch_if_missing=False)) == _expected(mirror)["test"]
    assert list(mirror.requests) == []


def test_normalize_passes_recipe_options_and_refuses_unknown_ones(mirror: MirrorServer) -> None:
    _expected(mirror)
    medcat_data.fetch(DATASET, mirror=mirror.url)
    with pytest.raises(UsageError, match="no-such-option"):
        medcat_data.normalize(DATASET, options={"no-such-option": "1"})


def test_fetch_raises_a_fetch_error_naming_the_file_it_could_not_get(mirror: MirrorServer) -> None:
    _expected(mirror)
    mirror.add_fault(Fault("/download/*", kind="status", status=404, times=None))
    with pytest.raises(FetchError, match=r"not present and verified.*Fetch vqa-rad again"):
        medcat_data.fetch(DATASET, mirror=mirror.url)


def test_load_without_fetch_if_missing_raises_not_fetched() -> None:
    with pytest.raises(NotFetchedError, match="medcat fetch vqa-rad"):
        medcat_data.load(DATASET, fetch_if_missing=False)


def test_load_of_a_credentialed_dataset_still_needs_accept_license(mirror: MirrorServer) -> None:
    replicas("vindr-mammo", mirror)
    with pytest.raises(LicenseNotAcceptedError):
        medcat_data.load("vindr-mammo", "birads", mirror=mirror.url)


def test_load_names_the_configs_when_asked_for_one_it_does_not_have(mirror: MirrorServer) -> None:
    _expected(mirror)
    with pytest.raises(UsageError, match="its configs are: vqa"):
        medcat_data.load(DATASET, "nope", mirror=mirror.url)


def test_info_of_an_unknown_id_suggests_close_ones() -> None:
    with pytest.raises(LookupError, match="vqa-rad"):
        medcat_data.info("vqa-rda")
