"""Test-wide guards: an isolated MEDCAT_HOME/HF_HOME, no tokens, and nothing leaves loopback."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest

pytest_plugins: list[str] = ["tests.fixtures.loopback", "tests.fixtures.synth"]

# huggingface_hub and datasets read HF_HOME once, at import: point it at a throwaway folder before
# any test module imports them, so no test ever reads or writes the developer's real cache.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="medcat-tests-hf-")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

_REAL_CONNECT = socket.socket.connect
_REAL_CONNECT_EX = socket.socket.connect_ex
_REAL_CREATE_CONNECTION = socket.create_connection
_REAL_GETADDRINFO = socket.getaddrinfo


class NetworkAccessError(AssertionError):
    """A test tried to reach a non-loopback address."""


def _check_address(address: object) -> None:
    if isinstance(address, (str, bytes)):  # AF_UNIX paths
        return
    host = address[0] if isinstance(address, tuple) else address
    try:
        ip = ipaddress.ip_address(str(host).split("%")[0])
    except ValueError:
        if str(host) in {"localhost"}:
            return
        raise NetworkAccessError(f"tests must not resolve or reach {host!r}: only 127.0.0.1 is allowed") from None
    if not ip.is_loopback:
        raise NetworkAccessError(f"tests must not reach {host!r}: only loopback is allowed")


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _REAL_CONNECT(self, address)  # type: ignore[arg-type]


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _REAL_CONNECT_EX(self, address)  # type: ignore[arg-type]


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in {"localhost"}:
            try:
                ipaddress.ip_address(name.split("%")[0])
            except ValueError:
                raise NetworkAccessError(
                    f"tests must not resolve {name!r}: point the code at the loopback mirror"
                ) from None
            _check_address((name, 0))
    return _REAL_GETADDRINFO(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> None:
    """Make any connection to a non-loopback address fail the test with a clear message."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Give every test its own MEDCAT_HOME and HF_HOME and clear credentials from the environment."""
    home = tmp_path_factory.mktemp("medcat-home")
    monkeypatch.setenv("MEDCAT_HOME", str(home / "medcat"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("NETRC", str(home / "no-netrc"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "kaggle"))
    for var in (
        "MEDCAT_REGISTRY",
        "MEDCAT_MIRROR",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_ENDPOINT",
        "PHYSIONET_USERNAME",
        "PHYSIONET_PASSWORD",
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
    ):
        monkeypatch.delenv(var, raising=False)
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hf" / "hub"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "hf" / "datasets")
    from medcat_data.catalog import registry

    registry._load_cached.cache_clear()
    return home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything is a unit test unless marked integration."""
    for item in items:
        if item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.unit)
