"""Dataset references: one grammar for every command, resolved without the network."""

from __future__ import annotations

import pytest

from medcat_data.catalog.refs import parse_ref, resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.catalog.schema import HuggingFaceSource, KaggleSource, PhysioNetSource
from medcat_data.errors import InvalidReferenceError, UnknownDatasetError, UsageError


@pytest.mark.parametrize(
    ("text", "scheme", "name", "version"),
    [
        ("vindr-mammo", "registry", "vindr-mammo", None),
        ("mimic-cxr-jpg@2.0.0", "registry", "mimic-cxr-jpg", "2.0.0"),
        ("physionet:ptb-xl@1.0.3", "physionet", "ptb-xl", "1.0.3"),
        ("physionet:mimic-iv-demo", "physionet", "mimic-iv-demo", None),
        ("hf:FreedomIntelligence/PubMedVision@abc123", "hf", "FreedomIntelligence/PubMedVision", "abc123"),
        ("hf:owner/name", "hf", "owner/name", None),
        ("kaggle:awsaf49/cbis-ddsm-breast-cancer-image-dataset", "kaggle", "awsaf49/cbis-ddsm-breast-cancer-image-dataset", None),
    ],
)
def test_parse_each_form(text: str, scheme: str, name: str, version: str | None) -> None:
    ref = parse_ref(text)
    assert (ref.scheme, ref.name, ref.version, str(ref)) == (scheme, name, version, text)


@pytest.mark.parametrize("text", ["ftp:x/y", "hf:noslash", "Vindr Mammo", "kaggle:a/b@x", "physionet:a@v1", ""])
def test_malformed_references_explain_the_grammar(text: str) -> None:
    with pytest.raises(InvalidReferenceError) as info:
        parse_ref(text)
    assert "ID[@VERSION]" in str(info.value)
    assert info.value.exit_code == 2


def test_registry_id_resolves_to_default_version() -> None:
    resolved = resolve("mimic-cxr-jpg", load_registry())
    assert resolved.entry.id == "mimic-cxr-jpg"
    assert resolved.version == resolved.entry.default_version


def test_unknown_version_lists_known_ones() -> None:
    with pytest.raises(UsageError, match="known versions: "):
        resolve("vindr-mammo@9.9.9", load_registry())


def test_typo_suggests_the_close_id() -> None:
    with pytest.raises(UnknownDatasetError) as info:
        resolve("vindr-mamo", load_registry())
    assert info.value.suggestions[0] == "vindr-mammo"
    assert "Did you mean 'vindr-mammo'" in str(info.value)
    assert info.value.exit_code == 2


def test_any_physionet_project_is_described_offline() -> None:
    resolved = resolve("physionet:ptb-xl@1.0.3", load_registry())
    source = resolved.entry.main_sources[0]
    assert isinstance(source, PhysioNetSource)
    assert (source.slug, source.version, resolved.version) == ("ptb-xl", "1.0.3", "1.0.3")
    assert resolved.entry.id == "physionet-ptb-xl"
    assert resolved.entry.homepage == "https://physionet.org/content/ptb-xl/1.0.3/"


def test_physionet_slug_of_a_registry_entry_resolves_to_that_entry() -> None:
    resolved = resolve("physionet:vindr-mammo", load_registry())
    assert resolved.entry.id == "vindr-mammo"


def test_physionet_template_cannot_be_fetched_by_its_id() -> None:
    with pytest.raises(UsageError, match="physionet:ptb-xl"):
        resolve("physionet", load_registry())


def test_hf_and_kaggle_references_build_entries() -> None:
    hf = resolve("hf:owner/name@v1", load_registry())
    assert isinstance(hf.entry.main_sources[0], HuggingFaceSource)
    assert (hf.entry.main_sources[0].repo_id, hf.version) == ("owner/name", "v1")
    kg = resolve("kaggle:owner/some-set", load_registry())
    src = kg.entry.main_sources[0]
    assert isinstance(src, KaggleSource) and (src.owner, src.slug) == ("owner", "some-set")
    assert kg.entry.access.value == "registration"


@pytest.mark.parametrize("text", ["hf:x/y@..", "hf:../y", "physionet:x@..", "physionet:x@.", "kaggle:../x", "kaggle:x/.."])
def test_dot_segments_in_references_never_reach_the_cache_path(text: str) -> None:
    """A name or version becomes a cache folder (raw/<id>/<version>): '..' would leave the cache."""
    with pytest.raises(InvalidReferenceError, match=r"'\.' and '\.\.' are not names"):
        parse_ref(text)
