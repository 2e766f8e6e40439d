"""What a user meets first when something is wrong: a dead mirror, an unknown filter, a --json failure."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcat_data.loaders.transports import wire
from tests.unit.loaders.entries import dataset_id, entry, physionet_source, run_cli, use_registry

pytestmark = pytest.mark.integration


@pytest.fixture
def closed_port() -> Iterator[int]:
    """Return a loopback port that refuses connections: bound (so nothing else takes it), never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_refused_connection_fails_after_one_quick_retry(closed_port, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The connection attempts are counted by wrapping the real ``socket.create_connection`` (a spy, not a fake)."""
    attempts: list[tuple[str, int]] = []
    real = socket.create_connection

    def counting(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(address)
        return real(address, *args, **kwargs)

    monkeypatch.setattr(wire.socket, "create_connection", counting)
    ident = dataset_id("refused")
    use_registry(monkeypatch, tmp_path, entry(ident, [physionet_source("refused")]))
    mirror = f"http://127.0.0.1:{closed_port}"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror, "--dest", str(tmp_path / "d"), "--json")
    assert code == 1
    assert attempts == [("127.0.0.1", closed_port)] * 2  # not six attempts with growing back-off
    message = json.loads(out)["error"]["message"]
    assert message.startswith(f"cannot connect to {mirror}/files/refused/") and "connection refused; is the mirror running?" in message
    assert message in err


def test_an_unknown_modality_suggests_the_known_ones() -> None:
    code, out, err = run_cli("list", "--modality", "xray")
    assert code == 2 and out == ""
    assert "unknown modality 'xray'. Did you mean 'chest-x-ray'?" in err and "mammography" in err


def test_an_unknown_task_lists_the_known_ones_also_as_json() -> None:
    code, out, err = run_cli("list", "--task", "segmentation", "--json")
    assert code == 2
    error = json.loads(out)["error"]
    assert error["exit_code"] == 2 and "'segmentation' is not one of" in error["message"] and "object-detection" in error["message"]


@pytest.mark.parametrize(
    "args",
    [
        ("info", "no-such-dataset", "--json"),
        ("list", "--modality", "xray", "--json"),
        ("search", "x", "--json", "--no-such-option"),
        ("cache", "rm", "nothing-cached", "--json"),
    ],
)
def test_every_json_command_prints_one_json_error_object_on_failure(args: tuple[str, ...], tmp_path: Path) -> None:
    code, out, err = run_cli(*args)
    assert code != 0
    error = json.loads(out)["error"]
    assert set(error) == {"type", "message", "exit_code"} and error["exit_code"] == code and error["message"]


def test_list_access_restricted_keeps_the_restricted_tier() -> None:
    code, out, _ = run_cli("list", "--access", "restricted", "--json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == ["vindr-mammo"]
