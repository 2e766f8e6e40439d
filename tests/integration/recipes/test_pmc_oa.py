"""PMC Open Access figures end to end: bucket replica → fetch over loopback → verify → normalize → load."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.converters.recipes.base import RecipeOptions
from medcat_data.mirror.server import MirrorServer
from tests.integration.recipes.harness import replicas, run_chain

pytestmark = pytest.mark.integration


def _load(out_dir: Path) -> datasets.Dataset:
    # Several outputs share one folder name (pmc-oa) in this test: a cache of their own keeps the
    # datasets cache from handing back (or checking against) a previous output.
    return datasets.load_dataset(str(out_dir), "figures", cache_dir=str(out_dir.parent / "hf-cache"))["train"]


def test_pmc_oa_chain_one_row_per_figure_and_the_gif_only_figure_reported(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("pmc-oa", mirror, tmp_path)
    train = result.loaded["figures"]["train"]
    assert set(train.features) >= {"image", "caption", "inline_mentions", "article_id", "figure_label", "figure_id",
                                   "pmid", "doi", "license", "commercial_use", "retracted"}
    # Every figure image is a decodable JPEG (never the GIF thumbnail).
    for row in train.select(range(3)):
        assert row["image"].format == "JPEG"
    # The newer of the two versions is the one normalized.
    versions = {(r["article_id"], r["article_version"]) for r in train}
    ids = [a for a, _ in versions]
    assert len(ids) == len(set(ids))
    assert any(v == 2 for _, v in versions)
    # Licences travel with their rows; CC BY and CC0 only are commercial.
    for row in train:
        assert row["commercial_use"] == (row["license"] in ("CC BY", "CC0"))
    # The retracted article is kept and flagged.
    assert any(train["retracted"])
    # fig-group panels are rows of their own and cite the group's sentences too.
    panels = [r for r in train if r["figure_id"].endswith(("A", "B")) and r["figure_label"].endswith(("A", "B"))]
    assert len(panels) == 2
    assert all(r["inline_mentions"] for r in panels)
    b = next(r for r in panels if r["figure_id"].endswith("B"))
    a = next(r for r in panels if r["figure_id"].endswith("A"))
    assert len(b["inline_mentions"]) == len(a["inline_mentions"]) + 1
    errors = [json.loads(line) for line in (result.out_dir / "errors.jsonl").read_text().splitlines() if line]
    assert errors[0]["stage"] == "read" and ".gif thumbnail" in errors[0]["message"]


def test_pmc_oa_normalize_selects_articles_subset_and_limit(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("pmc-oa", mirror, tmp_path / "all")
    expected = replicas("pmc-oa", mirror)[0].expected
    commercial = {p.split(".")[0] for p in expected["commercial_articles"]}

    out = normalize(NormalizeRequest(result.resolved, tmp_path / "commercial", options=RecipeOptions(extra={"subset": "commercial"})))
    ds = _load(out.out_dir)
    assert set(ds["article_id"]) == commercial
    assert all(ds["commercial_use"])

    listed = tmp_path / "articles.txt"
    first, second = sorted(expected["articles"])[:2]
    listed.write_text(f"# two articles\n{first.split('.')[0]}\n{second}\n")
    out = normalize(NormalizeRequest(result.resolved, tmp_path / "listed", options=RecipeOptions(extra={"articles": str(listed)})))
    ds = _load(out.out_dir)
    assert set(ds["article_id"]) == {first.split(".")[0], second.split(".")[0]}

    out = normalize(NormalizeRequest(result.resolved, tmp_path / "limited", options=RecipeOptions(limit=3)))
    ds = _load(out.out_dir)
    assert len(set(ds["article_id"])) == 3
