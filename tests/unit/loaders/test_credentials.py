"""Credentials from the environment, netrc and kaggle.json; licence acceptance is remembered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcat_data.catalog.schema import Entry
from medcat_data.errors import LicenseNotAcceptedError
from medcat_data.loaders import credentials
from tests.unit.loaders.entries import entry, physionet_source


def test_environment_wins_and_repr_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHYSIONET_USERNAME", "alice")
    monkeypatch.setenv("PHYSIONET_PASSWORD", "s3cr3t-Pa55-XYZ")
    cred = credentials.physionet_credentials()
    assert cred is not None and cred.username == "alice" and cred.password == "s3cr3t-Pa55-XYZ"
    assert "s3cr3t" not in repr(cred) and "s3cr3t" not in str(cred)


def test_netrc_named_by_the_netrc_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine physionet.org login bob password pw-from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    cred = credentials.physionet_credentials(("127.0.0.1", "physionet.org"))
    assert cred is not None and (cred.username, cred.password) == ("bob", "pw-from-netrc")
    assert "netrc" in cred.origin


def test_prompt_is_the_last_resort(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def prompt(realm: str) -> tuple[str, str]:
        asked.append(realm)
        return "carol", "typed"

    cred = credentials.physionet_credentials(prompt=prompt)
    assert asked == ["PhysioNet"] and cred is not None and cred.origin == "prompt"
    assert credentials.physionet_credentials() is None


def test_kaggle_token_from_env_then_kaggle_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "kaggle"
    folder.mkdir()
    (folder / "kaggle.json").write_text(json.dumps({"username": "kuser", "key": "kkey-123"}))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(folder))
    cred = credentials.kaggle_credentials()
    assert cred is not None and (cred.username, cred.password) == ("kuser", "kkey-123")
    monkeypatch.setenv("KAGGLE_USERNAME", "envuser")
    monkeypatch.setenv("KAGGLE_KEY", "envkey")
    cred = credentials.kaggle_credentials()
    assert cred is not None and cred.username == "envuser"


def _credentialed() -> Entry:
    return Entry.model_validate(entry("fetchtest-dua", [physionet_source("x")], access="credentialed"))


def test_credentialed_datasets_need_accept_license_once() -> None:
    e = _credentialed()
    with pytest.raises(LicenseNotAcceptedError, match="--accept-license"):
        credentials.ensure_license_accepted(e, accept=False)
    credentials.ensure_license_accepted(e, accept=True)
    credentials.ensure_license_accepted(e, accept=False)  # remembered
    changed = e.model_copy(update={"license": e.license.model_copy(update={"name": "Test Licence 2.0"})})
    with pytest.raises(LicenseNotAcceptedError):
        credentials.ensure_license_accepted(changed, accept=False)


def test_open_datasets_need_no_acceptance() -> None:
    e = Entry.model_validate(entry("fetchtest-open", [physionet_source("x")]))
    credentials.ensure_license_accepted(e, accept=False)


def test_restricted_datasets_need_accept_license_even_without_a_dua_link() -> None:
    e = Entry.model_validate(entry("fetchtest-restricted", [physionet_source("x")], access="restricted"))
    assert e.access_info.dua_url is None
    with pytest.raises(LicenseNotAcceptedError, match="--accept-license"):
        credentials.ensure_license_accepted(e, accept=False)


def test_an_access_denial_shows_its_reason_first_and_at_most_three_steps() -> None:
    from medcat_data.errors import AccessDeniedError

    err = AccessDeniedError(
        "x", "https://u:secret@host/f", 401, reason="PhysioNet rejected user 'alice' (HTTP 401): wrong password.",
        steps=["one", "two", "three", "four"],
    )
    assert str(err).splitlines() == [
        "x: PhysioNet rejected user 'alice' (HTTP 401): wrong password.", "  1. one", "  2. two", "  3. three"
    ]
    assert "secret" not in err.url
