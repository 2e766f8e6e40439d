"""Loading a registry file: every kind of invalid entry yields its own precise message."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.catalog.registry import load_registry, load_registry_file, parse_registry_text
from medcat_data.errors import RegistryError
from tests.unit.catalog.entries import registry_yaml, valid_entry


def _problems(text: str) -> list[str]:
    with pytest.raises(RegistryError) as info:
        parse_registry_text(text, "user.yaml")
    assert "Traceback" not in str(info.value)
    return info.value.problems


def test_valid_entry_loads() -> None:
    entries = parse_registry_text(registry_yaml(valid_entry()), "user.yaml")
    assert [e.id for e in entries] == ["my-hospital-cxr"]


def test_bad_access_names_entry_field_and_allowed_values() -> None:
    (problem,) = _problems(registry_yaml(valid_entry(id="vindr-mammo-copy", access="members-only")))
    assert problem == (
        "vindr-mammo-copy.access: expected one of open, registration, gated, restricted, credentialed, got 'members-only'"
    )


def test_missing_field_is_named() -> None:
    entry = valid_entry()
    del entry["license"]
    assert _problems(registry_yaml(entry)) == ["my-hospital-cxr.license: required field is missing"]


def test_unknown_field_is_reported_as_a_spelling_problem() -> None:
    (problem,) = _problems(registry_yaml(valid_entry(homepgae="https://x.org")))
    assert problem.startswith("my-hospital-cxr.homepgae: unknown field")


def test_unknown_source_kind_lists_the_kinds() -> None:
    entry = valid_entry(sources=[{"name": "s", "kind": "ftp", "url": "ftp://x"}])
    (problem,) = _problems(registry_yaml(entry))
    assert problem.startswith("my-hospital-cxr.sources[0]: expected a source kind, one of physionet, hf")
    assert "got" not in problem or "'ftp'" in problem


def test_field_inside_a_source_has_its_path_without_the_kind_tag() -> None:
    entry = valid_entry(sources=[{"name": "p", "kind": "physionet", "slug": "bad slug!"}])
    (problem,) = _problems(registry_yaml(entry))
    assert problem.startswith("my-hospital-cxr.sources[0].slug: ")
    assert "got 'bad slug!'" in problem


def test_bad_pinned_hash_is_rejected() -> None:
    entry = valid_entry()
    entry["sources"][0]["files"][0]["sha256"] = "abc"
    (problem,) = _problems(registry_yaml(entry))
    assert problem.startswith("my-hospital-cxr.sources[0].files[0].sha256: expected 64 lowercase hex")


def test_default_version_must_exist() -> None:
    (problem,) = _problems(registry_yaml(valid_entry(default_version="9.9")))
    assert problem.startswith("my-hospital-cxr: default_version '9.9' is not one of the versions")


def test_config_task_must_be_declared_in_tasks() -> None:
    entry = valid_entry(configs=[{"name": "boxes", "task": "object-detection", "splits": ["train"], "description": "Boxes."}])
    (problem,) = _problems(registry_yaml(entry))
    assert "config 'boxes' has task 'object-detection' missing from tasks" in problem


def test_citation_must_be_bibtex() -> None:
    (problem,) = _problems(registry_yaml(valid_entry(citation="Smith et al. 2020")))
    assert problem.startswith("my-hospital-cxr.citation: expected BibTeX")


def test_several_problems_are_all_reported_with_their_entry() -> None:
    bad_a = valid_entry(id="a-one", access="members-only")
    bad_b = valid_entry(id="b-two", modalities=["x-ray-vision"])
    problems = _problems(registry_yaml(bad_a, bad_b))
    assert any(p.startswith("a-one.access") for p in problems)
    assert any(p.startswith("b-two.modalities[0]") for p in problems)


def test_entry_without_id_is_named_by_position() -> None:
    entry = valid_entry()
    del entry["id"]
    assert "datasets[0].id: required field is missing" in _problems(registry_yaml(entry))


def test_top_level_must_be_a_mapping_with_datasets() -> None:
    (problem,) = _problems("- id: x\n")
    assert "top-level 'datasets:' list" in problem


def test_yaml_syntax_error_is_a_registry_error() -> None:
    (problem,) = _problems("datasets: [\n  {id: x,\n")
    assert problem.startswith("not valid YAML")


def test_duplicate_id_in_one_file() -> None:
    problems = _problems(registry_yaml(valid_entry(), valid_entry()))
    assert problems == ["my-hospital-cxr: id defined more than once in this file"]


def test_error_message_names_the_file_and_how_to_check(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(registry_yaml(valid_entry(access="members-only")))
    with pytest.raises(RegistryError) as info:
        load_registry_file(path)
    text = str(info.value)
    assert str(path) in text and "my-hospital-cxr.access" in text and "medcat registry validate" in text


def test_user_registry_is_merged_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(registry_yaml(valid_entry()))
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    registry = load_registry()
    assert registry.get("my-hospital-cxr").name == "My Hospital CXR"
    assert registry.origins["my-hospital-cxr"] == str(path)


def test_user_entry_colliding_with_shipped_id_fails_loudly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(registry_yaml(valid_entry(id="vindr-mammo")))
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    with pytest.raises(RegistryError) as info:
        load_registry()
    assert "vindr-mammo: defined in both <shipped registry.yaml> and " + str(path) in str(info.value)
