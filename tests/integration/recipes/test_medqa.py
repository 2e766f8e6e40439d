"""MedQA end to end over loopback: the Drive flow (interstitial, quota page, hand download), normalize, load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from medcat_data.mirror.replicas import medqa as replica_builder
from medcat_data.mirror.server import MirrorServer
from tests.integration.recipes.harness import replicas, run_chain
from tests.unit.loaders.entries import run_cli

pytestmark = pytest.mark.integration


def test_medqa_chain_passes_the_drive_confirmation_and_keeps_answers_on_their_options(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("medqa", mirror, tmp_path)
    assert set(result.loaded) == {
        "us", "us-4options", "mainland", "mainland-4options", "taiwan", "taiwan-en", "taiwan-zh", "textbooks-en",
    }
    confirmed = [r for r in mirror.requests if r.path == "/download" and r.query.get("confirm") == "t"]
    assert confirmed and confirmed[-1].status == 200, "the fetch did not go through Drive's virus-scan page"
    us = result.loaded["us"]
    assert {s: us[s].num_rows for s in us} == result.replica.expected["configs"]["us"]
    for split in us:
        assert all(r["options"][r["answer_idx"]]["text"] == r["answer"] for r in us[split])
    errors = [json.loads(line) for line in (result.out_dir / "errors.jsonl").read_text().splitlines()]
    assert {e["path"] for e in errors} == {"data_clean/questions/US/train.jsonl:4", "data_clean/questions/Mainland/dev.jsonl:2"}


def test_drive_quota_page_fails_the_fetch_and_a_hand_downloaded_zip_works_through_a_file_mirror(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    replicas("medqa", mirror)
    served = mirror.root / replica_builder.URL_PATH
    mirror.gdrive_quota_exceeded = True
    dest = tmp_path / "raw"
    code, out, err = run_cli("fetch", "medqa", "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code != 0
    (failed,) = json.loads(out)["failed"]
    assert "download quota exceeded" in failed["reason"] and "Retry within 24 h" in failed["reason"]
    assert "medcat fetch medqa --mirror file://DIR" in failed["reason"]
    assert not (dest / "data_clean.zip").exists() and not (dest / "data_clean").exists()
    assert not list(dest.rglob("*.part"))

    # The user downloads the zip by hand into a folder and points a file:// mirror at it.
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "data_clean.zip").write_bytes(served.read_bytes())
    mirror.clear_log()
    code, out, err = run_cli("fetch", "medqa", "--mirror", f"file://{manual}", "--dest", str(dest), "--json")
    assert code == 0, err
    assert mirror.requests == []
    assert (dest / "data_clean/questions/US/dev.jsonl").is_file()
    code, _, err = run_cli("normalize", "medqa", "--dest", str(dest), "--out", str(tmp_path / "out"), "--config", "us", "-j", "1")
    assert code == 1, err  # the planted malformed line is a recorded failure (exit 1 by default), not a crash
    ds = datasets.load_dataset(str(tmp_path / "out/medqa"), "us")
    assert {s: ds[s].num_rows for s in ds} == {"train": 6, "validation": 3, "test": 3}


def test_a_hand_download_saved_under_another_name_is_pointed_out(mirror: MirrorServer, tmp_path: Path) -> None:
    replicas("medqa", mirror)
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "data_clean (1).zip").write_bytes((mirror.root / replica_builder.URL_PATH).read_bytes())
    dest = tmp_path / "raw"
    code, out, _ = run_cli("fetch", "medqa", "--mirror", f"file://{manual}", "--dest", str(dest), "--json")
    assert code != 0
    (failed,) = json.loads(out)["failed"]
    assert "data_clean.zip is not in the local mirror" in failed["reason"]
    assert "holds data_clean (1).zip: if one of them is the download, rename it to data_clean.zip" in failed["reason"]
    (manual / "data_clean (1).zip").rename(manual / "data_clean.zip")
    code, _, err = run_cli("fetch", "medqa", "--mirror", f"file://{manual}", "--dest", str(dest))
    assert code == 0, err


def test_cli_mirror_serving_the_quota_page_makes_medcat_fetch_medqa_fail_without_a_final_file(tmp_path: Path) -> None:
    """The shell check: `medcat mirror build medqa`, `medcat mirror serve --gdrive-quota-exceeded`, `medcat fetch`."""
    code, _, err = run_cli("mirror", "build", "medqa", "--out", str(tmp_path / "tree"))
    assert code == 0, err
    proc = subprocess.Popen(
        [sys.executable, "-m", "medcat_data", "mirror", "serve", str(tmp_path / "tree"), "--gdrive-quota-exceeded", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads("".join(iter(proc.stdout.readline, "}\n")) + "}")["url"]
        dest = tmp_path / "raw"
        code, _, err = run_cli("fetch", "medqa", "--mirror", url, "--dest", str(dest))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert code == 1
    assert "download quota exceeded" in err and "Retry within 24 h" in err and "--mirror file://DIR" in err
    assert not (dest / "data_clean.zip").exists() and not list(dest.rglob("*.part"))
