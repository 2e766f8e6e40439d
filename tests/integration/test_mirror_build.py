"""`medcat mirror build`: seeded, byte-identical replica trees with expected.json, served and fetched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, fetch, verify
from medcat_data.mirror.build import EXPECTED_DIR
from medcat_data.datasets.cbis_ddsm import replica as cbis_ddsm
from medcat_data.datasets.pad_ufes_20 import replica as pad_ufes_20
from medcat_data.mirror.server import MirrorServer
from tests.unit.loaders.entries import entry, run_cli, use_registry

pytestmark = pytest.mark.integration

IDS = ("cbis-ddsm", "pad-ufes-20")


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_seed_gives_a_byte_identical_tree_and_another_seed_a_different_one(tmp_path: Path) -> None:
    trees = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        code, out, err = run_cli("mirror", "build", *IDS, "--out", str(tmp_path / name), "--seed", str(seed))
        assert code == 0, err
        trees[name] = _tree(tmp_path / name)
    assert trees["a"] == trees["b"]
    assert trees["a"].keys() and trees["a"] != trees["c"]
    # Both builders draw from their seed: files of each differ between seeds 5 and 6.
    changed = {k for k in trees["a"] if trees["c"].get(k) != trees["a"][k]}
    assert f"{cbis_ddsm.TCIA_PREFIX}/mass_case_description_train_set.csv" in changed
    assert pad_ufes_20.URL_PATH in changed
    assert not list(tmp_path.glob(".*.building"))  # the staging folder is gone


def test_expected_json_is_the_builders_own_bookkeeping_per_source(tmp_path: Path) -> None:
    out = tmp_path / "replicas"
    code, stdout, err = run_cli("mirror", "build", "cbis-ddsm", "--out", str(out), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    sources = {(r["dataset"], r["source"]) for r in report["replicas"]}
    assert sources == {("cbis-ddsm", "tcia"), ("cbis-ddsm", "kaggle")}
    replicas = cbis_ddsm.build(tmp_path / "again", seed=0)
    for replica in replicas:
        path = out / EXPECTED_DIR / "cbis-ddsm" / replica.source / "expected.json"
        assert json.loads(path.read_text()) == json.loads(json.dumps(dict(replica.expected)))
    assert report["serve"] == f"medcat mirror serve {out} --auth-any-client /api/v1/:replica-user:replica-Pa55word"
    kaggle = next(r for r in report["replicas"] if r["source"] == "kaggle")
    assert kaggle["env"] == {"KAGGLE_USERNAME": "replica-user", "KAGGLE_KEY": "replica-Pa55word"}


def test_the_built_tree_serves_a_real_fetch(tmp_path: Path) -> None:
    out = tmp_path / "replicas"
    code, _, err = run_cli("mirror", "build", "cbis-ddsm", "--out", str(out))
    assert code == 0, err
    assert "serve it with: medcat mirror serve" in err
    resolved = resolve("cbis-ddsm", load_registry())
    with MirrorServer(out) as server:
        report = fetch(resolved, FetchOptions(mirror=server.url, source="tcia", dest=tmp_path / "raw"))
    assert report.ok, json.dumps(report.to_dict(), indent=1)
    assert verify(resolved, tmp_path / "raw").ok
    assert (tmp_path / "raw" / "tcia" / "metadata.csv").is_file()


def test_an_unknown_id_exits_2_with_a_suggestion(tmp_path: Path) -> None:
    code, _, err = run_cli("mirror", "build", "cbis-ddsn", "--out", str(tmp_path / "x"))
    assert code == 2 and "Did you mean 'cbis-ddsm'" in err
    assert not (tmp_path / "x").exists()


def test_ids_without_a_builder_are_listed_not_fatal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = {"name": "files", "kind": "urls", "files": [{"url": "https://example.org/a.csv", "path": "a.csv"}]}
    use_registry(monkeypatch, tmp_path, entry("ft-no-builder", [source]))
    code, out, err = run_cli("mirror", "build", "ft-no-builder", "pad-ufes-20", "--out", str(tmp_path / "x"), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["without_builder"] == ["ft-no-builder"]
    assert [r["dataset"] for r in report["replicas"]] == ["pad-ufes-20"]
    code, _, err = run_cli("mirror", "build", "ft-no-builder", "--out", str(tmp_path / "y"))
    assert code == 0 and "no replica builder yet (skipped): ft-no-builder" in err


def test_a_non_empty_out_folder_is_refused_and_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    code, _, err = run_cli("mirror", "build", "pad-ufes-20", "--out", str(out))
    assert code == 2 and "not an empty folder" in err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
