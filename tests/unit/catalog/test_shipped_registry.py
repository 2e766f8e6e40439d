"""The shipped registry: every required dataset, every required field, nothing invented silently."""

from __future__ import annotations

import re

import pytest

from medcat_data.catalog.registry import load_registry
from medcat_data.catalog.schema import Access, PhysioNetSource

REQUIRED_IDS = [
    "mimic-cxr",
    "mimic-cxr-jpg",
    "physionet",
    "mimic-iv-demo",
    "vindr-mammo",
    "cbis-ddsm",
    "pad-ufes-20",
    "medqa",
    "vqa-rad",
    "pmc-oa",
    "m3llm-pmc",
    "pubmedvision",
    "precisionfda-truth-v2",
]


def test_shipped_registry_validates_and_holds_every_required_id() -> None:
    ids = load_registry().ids
    assert set(REQUIRED_IDS) <= set(ids)


@pytest.mark.parametrize("dataset_id", REQUIRED_IDS)
def test_entry_has_every_required_field_filled(dataset_id: str) -> None:
    entry = load_registry().get(dataset_id)
    assert entry.name and entry.description and entry.homepage.startswith("https://")
    assert entry.modalities and entry.tasks
    assert entry.access_info.steps and all(len(step) > 10 for step in entry.access_info.steps)
    assert entry.license.name
    assert re.search(r"@\w+\{", entry.citation)
    assert entry.versions and entry.default_version
    assert entry.sources
    if not entry.template:
        assert entry.configs, "every concrete dataset declares the configs normalize produces"
    assert entry.size.bytes is not None or entry.size.samples is not None or entry.template


@pytest.mark.parametrize("dataset_id", REQUIRED_IDS)
def test_every_config_task_is_a_declared_task(dataset_id: str) -> None:
    entry = load_registry().get(dataset_id)
    assert {c.task for c in entry.configs} <= set(entry.tasks)


@pytest.mark.parametrize(
    ("dataset_id", "tier"),
    [("mimic-cxr", Access.CREDENTIALED), ("mimic-cxr-jpg", Access.CREDENTIALED), ("vindr-mammo", Access.RESTRICTED)],
)
def test_physionet_sets_carry_the_hosts_own_access_tier(dataset_id: str, tier: Access) -> None:
    """PhysioNet lists VinDr-Mammo as "Restricted Access" (account + DUA), the MIMIC-CXR sets as credentialed."""
    entry = load_registry().get(dataset_id)
    assert entry.access is tier
    assert isinstance(entry.main_sources[0], PhysioNetSource)
    assert any("DUA" in step or "data use agreement" in step.lower() for step in entry.access_info.steps)


@pytest.mark.parametrize("dataset_id", REQUIRED_IDS)
def test_every_entry_states_its_download_bytes_or_file_count(dataset_id: str) -> None:
    """Where upstream publishes no byte total, the file count (or the note's reason) stands in; estimates are marked."""
    size = load_registry().get(dataset_id).size
    if dataset_id in {"physionet", "pmc-oa", "m3llm-pmc"}:  # a template; millions of articles; no published total
        assert size.note
        return
    assert size.bytes is not None or size.files is not None
    assert size.note or not size.approximate


def test_mimic_cxr_verifies_dicoms_from_the_record_list() -> None:
    entry = load_registry().get("mimic-cxr")
    main = entry.main_sources[0]
    assert isinstance(main, PhysioNetSource) and main.file_index is not None
    assert main.file_index.path == "cxr-record-list.csv.gz"
    companions = entry.companion_sources
    assert companions and isinstance(companions[0], PhysioNetSource) and companions[0].slug == "mimic-cxr-jpg"


BUCKET_KINDS = ("gcs", "s3")


def test_sources_of_an_entry_do_not_share_a_folder() -> None:
    """Different trees never share a folder: main sources have one each, and a companion shares one only
    with sources of its own kind (PubMedQA's split file beside its GitHub files). A cloud bucket copy
    of a source's tree shares that source's."""
    for entry in load_registry():
        mains = [s.subdir for s in entry.main_sources if s.kind not in BUCKET_KINDS]
        assert len(mains) == len(set(mains)), entry.id
        for companion in entry.companion_sources:
            kinds = {s.kind for s in entry.sources if s.subdir == companion.subdir and s.kind not in BUCKET_KINDS}
            assert kinds == {companion.kind}, f"{entry.id}: {companion.name} shares {companion.subdir!r} with another kind"
        subdirs = [s.subdir for s in entry.sources if s.kind not in BUCKET_KINDS]
        for bucket in (s for s in entry.sources if s.kind in BUCKET_KINDS):
            assert bucket.subdir in subdirs, f"{entry.id}: bucket source {bucket.name} is a copy of no other source's folder"


def test_pinned_hashes_only_where_the_registry_has_them_from_upstream() -> None:
    """Nothing invented: every pinned hash is well-formed (its absence is allowed)."""
    for entry in load_registry():
        for source in entry.sources:
            for f in getattr(source, "files", []):
                assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)


def test_published_split_counts_name_only_declared_splits_and_say_what_they_count() -> None:
    counted = [(e, c) for e in load_registry() for c in e.configs if c.split_counts]
    assert len(counted) >= 5
    for entry, cfg in counted:
        assert set(cfg.split_counts) <= set(cfg.splits), f"{entry.id}/{cfg.name}"
        assert all(n > 0 for n in cfg.split_counts.values()) and cfg.split_counts_note, f"{entry.id}/{cfg.name}"
