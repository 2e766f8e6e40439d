"""Filters and search over the shipped catalog return the expected ids."""

from __future__ import annotations

from medcat_data.catalog import query
from medcat_data.catalog.registry import load_registry


def _ids(filters: query.Filters) -> set[str]:
    return {e.id for e in query.filter_entries(load_registry(), filters)}


def test_modality_filter_keeps_the_mammography_sets() -> None:
    assert _ids(query.Filters(modality=("mammography",))) == {"vindr-mammo", "cbis-ddsm"}


def test_access_open_excludes_credentialed_sets() -> None:
    open_ids = _ids(query.Filters(access=("open",)))
    assert "vindr-mammo" not in open_ids and "mimic-cxr" not in open_ids
    assert {"cbis-ddsm", "mimic-iv-demo"} <= open_ids


def test_task_filter() -> None:
    ids = _ids(query.Filters(task=("object-detection",)))
    assert {"vindr-mammo", "cbis-ddsm"} <= ids
    assert "medqa" not in ids


def test_filters_combine_as_and() -> None:
    both = _ids(query.Filters(modality=("chest-x-ray",), access=("open",)))
    assert both == _ids(query.Filters(modality=("chest-x-ray",))) & _ids(query.Filters(access=("open",)))
    assert "mimic-cxr" not in both and "vqa-rad" not in both  # credentialed; open but no chest-x-ray modality


def test_license_filter_matches_spdx_and_name() -> None:
    assert "pad-ufes-20" in _ids(query.Filters(license=("CC-BY-4.0",)))
    assert {"mimic-cxr", "mimic-cxr-jpg"} <= _ids(query.Filters(license=("credentialed health data",)))


def test_search_ranks_exact_id_first() -> None:
    ranked = query.search(load_registry(), "vindr-mammo")
    assert ranked[0][0].id == "vindr-mammo"


def test_search_requires_every_word() -> None:
    ids = [e.id for e, _ in query.search(load_registry(), "chest radiographs")]
    assert ids and set(ids) <= {"mimic-cxr", "mimic-cxr-jpg"}


def test_search_finds_by_modality_and_description() -> None:
    ids = [e.id for e, _ in query.search(load_registry(), "mammography")]
    assert ids[:2] and set(ids[:2]) == {"vindr-mammo", "cbis-ddsm"}
    assert query.search(load_registry(), "zzzz-nothing") == []


def test_human_bytes() -> None:
    assert query.human_bytes(570_300_000_000) == "570.3 GB"
    assert query.human_bytes(512) == "512 B"
    assert query.human_bytes(None) == "unknown"


def test_access_restricted_keeps_only_the_restricted_tier() -> None:
    assert _ids(query.Filters(access=("restricted",))) == {"vindr-mammo"}
    assert "vindr-mammo" not in _ids(query.Filters(access=("credentialed",)))


def test_an_unknown_modality_is_refused_with_the_close_and_the_known_ones() -> None:
    import pytest

    from medcat_data.errors import UsageError

    with pytest.raises(UsageError, match=r"unknown modality 'xray'\. Did you mean 'chest-x-ray'\? Known modality values: chest-x-ray, "):
        query.check_filters(query.Filters(modality=("xray",)))
    with pytest.raises(UsageError, match=r"unknown task 'detection'\. Did you mean 'object-detection'\?"):
        query.check_filters(query.Filters(task=("detection",)))
    query.check_filters(query.Filters(modality=("Mammography",), task=("VQA",)))


def test_the_list_size_falls_back_to_the_file_count_when_bytes_are_unknown() -> None:
    registry = load_registry()
    assert query.list_size_text(registry.get("vindr-mammo")) == "unknown (~20,005 files)"
    assert query.list_size_text(registry.get("pad-ufes-20")) == "unknown (1 file)"
    assert query.list_size_text(registry.get("mimic-cxr-jpg")) == "~570.3 GB"
    assert query.list_size_text(registry.get("pmc-oa")) == "unknown"
