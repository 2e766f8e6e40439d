"""Source-kind options: each ``--option KEY=VALUE`` reaches only the kinds that declare the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from medcat_data.catalog.refs import ResolvedDataset, resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.errors import UsageError
from medcat_data.loaders.plan import select_sources
from medcat_data.loaders.transports import parse_source_options
from medcat_data.loaders.transports.pmc import PmcOptions
from medcat_data.typed_options import NoOptions
from tests.unit.loaders.entries import entry, physionet_source, write_registry


def _resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *sources: dict[str, object]) -> ResolvedDataset:
    path = write_registry(tmp_path, entry("fetchtest-options", list(sources)))
    monkeypatch.setenv("MEDCAT_REGISTRY", str(path))
    return resolve("fetchtest-options", load_registry())


def test_a_key_goes_to_the_kinds_that_declare_it_and_to_no_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = _resolved(
        tmp_path, monkeypatch, {"name": "pmc", "kind": "pmc"}, physionet_source("labels", name="labels", companion=True)
    )
    parsed = parse_source_options(resolved.entry, select_sources(resolved, None), {"subset": "noncommercial"})
    assert parsed == {"pmc": PmcOptions(subset="noncommercial"), "physionet": NoOptions()}


def test_an_option_of_a_source_not_picked_says_to_pick_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = _resolved(
        tmp_path, monkeypatch, physionet_source("main"), {"name": "pmc", "kind": "pmc", "default_fetch": False}
    )
    with pytest.raises(UsageError, match=r"sources of this fetch \(kind physionet\) take no options, so not subset; "
                       r"another source of the entry does: pick it with --source"):
        parse_source_options(resolved.entry, select_sources(resolved, None), {"subset": "commercial"})
    parsed = parse_source_options(resolved.entry, select_sources(resolved, "pmc"), {"subset": "commercial"})
    assert parsed == {"pmc": PmcOptions(subset="commercial")}
