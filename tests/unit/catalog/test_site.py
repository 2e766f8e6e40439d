"""Catalog pages: escaping, trees, and the hooks that show recipe features, replica trees and samples.

Recipes and replicas of the real datasets are written elsewhere and arrive over time, so the hook
tests plant a small real kit (``datasets/fake_set/``) on the package path: it follows the recipe
contract of ``converters/recipe.py`` and the replica contract of ``mirror/replicas/base.py``.
"""

from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import datasets
import pytest
from PIL import Image

import medcat_data.datasets as datasets_package
from medcat_data.catalog.croissant import croissant_metadata
from medcat_data.catalog.registry import merge, parse_registry_text
from medcat_data.catalog.site import build, hooks, markdown
from medcat_data.catalog.site.model import dataset_page, tree_lines
from medcat_data.catalog.site.prose import inline, markdown_to_html
from medcat_data.converters.schemas import image_classification_features
from tests.unit.catalog.entries import registry_yaml, valid_entry

FAKE_ID = "fake-set"

FAKE_REPLICA = '''
"""A replica builder following mirror/replicas/base.py: a miniature PhysioNet-shaped tree."""
DATASET_ID = "fake-set"

def build(root, *, seed=0):
    base = root / "files" / "fake-set" / "1.0.0"
    (base / "images").mkdir(parents=True)
    (base / "SHA256SUMS.txt").write_text("x" * 100)
    for i in range(9):
        (base / "images" / f"{i:03d}.png").write_bytes(bytes(10 + seed))
    return []
'''

FAKE_RECIPE = '''
"""A recipe following converters/recipe.py; only ``features`` matters to the catalog."""
from medcat_data.converters.recipe import Recipe
from medcat_data.converters.schemas import image_classification_features

class FakeSet(Recipe[None, None]):
    DATASET_ID = "fake-set"
    CONFIGS = ("labels",)

    def features(self, config, ctx, survey):
        if not ctx.root.is_dir():
            raise FileNotFoundError(ctx.root)
        return image_classification_features(labels={"finding": ["normal", "mass"]})

RECIPE = FakeSet()
'''


def _registry() -> object:
    entry = valid_entry(
        id=FAKE_ID,
        sources=[{"name": "physionet", "kind": "physionet", "slug": FAKE_ID, "version": "1.0.0"}],
    )
    return merge([("<test>", parse_registry_text(registry_yaml(entry), "<test>"))])


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put a ``fake_set`` kit (recipe and replica) on the datasets package path, and take it away after."""
    kit = tmp_path / "datasets" / "fake_set"
    kit.mkdir(parents=True)
    (kit / "__init__.py").write_text("", encoding="utf-8")
    for name, source in (("replica.py", FAKE_REPLICA), ("recipe.py", FAKE_RECIPE)):
        (kit / name).write_text(textwrap.dedent(source), encoding="utf-8")
    monkeypatch.setattr(datasets_package, "__path__", [*datasets_package.__path__, str(kit.parent)])
    hooks._replica_files_cached.cache_clear()
    yield tmp_path
    for name in ("medcat_data.datasets.fake_set.replica", "medcat_data.datasets.fake_set.recipe", "medcat_data.datasets.fake_set"):
        sys.modules.pop(name, None)
    hooks._replica_files_cached.cache_clear()


def test_inline_text_is_escaped_then_marked_up() -> None:
    html = inline("<b>x</b> `a<b>` see https://e.org/p?a=1&b=2. **bold** *em*")
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<code>a&lt;b&gt;</code>" in html
    assert '<a href="https://e.org/p?a=1&amp;b=2">https://e.org/p?a=1&amp;b=2</a>.' in html
    assert "<strong>bold</strong>" in html and "<em>em</em>" in html


def test_markdown_tables_headings_and_lists_become_html() -> None:
    html = markdown_to_html("# Title\n\nSome `code`.\n\n| a | b |\n|---|---|\n| `x\\|y` | *(empty)* |\n\n- one\n- two\n")
    assert '<h1 id="title">Title</h1>' in html
    assert "<p>Some <code>code</code>.</p>" in html
    assert "<td><code>x|y</code></td><td><em>(empty)</em></td>" in html
    assert "<ul><li>one</li><li>two</li></ul>" in html


def test_tree_lists_folders_and_collapses_long_ones() -> None:
    files = [("a/README.txt", 1000)] + [(f"a/img/{i}.png", 10) for i in range(8)]
    assert tree_lines(files, max_files=3) == (
        "a/",
        "    README.txt",
        "    img/",
        "        0.png",
        "        1.png",
        "        2.png",
        "        ... 5 more files",
    )


def test_markdown_cells_keep_pipes_and_lines_inside_the_table() -> None:
    assert markdown.cell("a | b\nc") == "a \\| b c"
    assert markdown.code("x`y") == "`` x`y ``"


def test_without_recipe_or_replica_pages_show_the_task_schema_and_no_tree() -> None:
    registry = _registry()
    page = dataset_page(registry.get(FAKE_ID), registry)  # type: ignore[attr-defined]
    assert page.replica_tree is None
    (config,) = page.configs
    assert config.origin == "task-schema"
    assert [c.name for c in config.columns][:2] == ["image", "patient_id"]


def test_planted_recipe_and_replica_give_features_and_a_tree(planted: Path) -> None:
    registry = _registry()
    entry = registry.get(FAKE_ID)  # type: ignore[attr-defined]
    page = dataset_page(entry, registry)
    assert page.replica_tree is not None
    assert "files/" in page.replica_tree and "            images/" in page.replica_tree
    assert "                ... 3 more files" in page.replica_tree
    assert page.replica_summary == "10 files, built with seed 0"
    (config,) = page.configs
    assert config.origin == "recipe"
    finding = next(c for c in config.columns if c.name == "finding")
    assert finding.hf_type == "ClassLabel(2)" and finding.class_names == ("normal", "mass")
    mirror = markdown.render_dataset(page)
    assert "```text\nfiles/\n" in mirror and "| `finding` | `ClassLabel(2)` |" in mirror
    fields = {f["name"]: f for f in croissant_metadata(entry)["recordSet"][1]["field"]}
    assert fields["finding"]["description"].endswith("ClassLabel: 0 = normal, 1 = mass.")


def test_a_recipe_that_needs_the_data_falls_back_to_the_task_schema(planted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry()
    real = hooks.tempfile.TemporaryDirectory

    class _Gone:
        """An 'empty cache' folder that does not exist, so the planted recipe raises FileNotFoundError."""

        def __init__(self, prefix: str) -> None:
            self.inner = real(prefix=prefix)

        def __enter__(self) -> str:
            return self.inner.__enter__() + "/missing"

        def __exit__(self, *exc: object) -> None:
            self.inner.__exit__(*exc)

    monkeypatch.setattr(hooks.tempfile, "TemporaryDirectory", _Gone)
    (config,) = dataset_page(registry.get(FAKE_ID), registry).configs  # type: ignore[attr-defined]
    assert config.origin == "task-schema"


def _png(value: int, size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("L", size, value).save(buf, format="PNG")
    return buf.getvalue()


def _normalized_folder(root: Path) -> Path:
    """Write a small normalized dataset the way the writer lays it out: parquet per config/split + card."""
    features = image_classification_features(labels={"finding": ["normal", "mass", "calc"]})
    for split, labels in (("train", [0, 1, 1]), ("test", [2])):
        rows = {name: [None] * len(labels) for name in features}
        rows.update(
            image=[{"bytes": _png(40 * i), "path": None} for i in range(len(labels))],
            finding=labels,
            sample_id=[f"{split}-{i}" for i in range(len(labels))],
            split=[split] * len(labels),
            source=["fake-set@1.0.0"] * len(labels),
        )
        (root / "labels").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict(rows, features=features).to_parquet(str(root / "labels" / f"{split}-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: labels\n  data_files:\n  - split: train\n    path: labels/train-*.parquet\n"
        "  - split: test\n    path: labels/test-*.parquet\n---\n",
        encoding="utf-8",
    )
    return root


def test_normalized_dataset_gives_label_counts_and_a_sample_with_thumbnail(tmp_path: Path) -> None:
    facts = hooks.read_normalized(_normalized_folder(tmp_path / "fake-set"))["labels"]
    assert facts.label_counts == {"finding": {"normal": 1, "mass": 2, "calc": 1}}
    assert facts.sample is not None
    cells = dict(facts.sample.cells)
    assert cells["finding"] == "normal" and cells["image"] == "image 40x30" and cells["sample_id"] == "train-0"
    assert facts.sample.thumbnail_png is not None
    assert Image.open(io.BytesIO(facts.sample.thumbnail_png)).size == (40, 30)


def test_pages_render_counts_and_sample_and_the_site_ships_the_thumbnail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Samples come from a normalized replica; here the demo's output folder is stood in by a written one."""
    facts = hooks.read_normalized(_normalized_folder(tmp_path / "fake-set"))
    monkeypatch.setattr(hooks, "normalized_facts", lambda entry: facts)
    registry = _registry()
    catalog = build.collect(registry, samples=True)  # type: ignore[arg-type]
    (config,) = catalog.pages[0].configs
    assert config.origin == "normalized"
    files = build.site_files(catalog)
    assert files[f"samples/{FAKE_ID}/labels.png"][:8] == b"\x89PNG\r\n\x1a\n"
    page = files[f"datasets/{FAKE_ID}.html"].decode()
    assert f'<img src="../samples/{FAKE_ID}/labels.png"' in page
    assert "<td><code>mass</code></td><td class=\"num\">2</td>" in page
    assert "Labels of <code>finding</code> in the replica" in page
    mirror = build.mirror_files(build.collect(registry))  # type: ignore[arg-type]
    assert "in the replica" not in mirror[f"datasets/{FAKE_ID}.md"]


def test_croissant_file_of_the_site_is_the_embedded_document(tmp_path: Path) -> None:
    registry = _registry()
    catalog = build.collect(registry)  # type: ignore[arg-type]
    files = build.site_files(catalog)
    doc = json.loads(files[f"croissant/{FAKE_ID}.json"])
    page = files[f"datasets/{FAKE_ID}.html"].decode()
    embedded = page.split('<script type="application/ld+json">')[1].split("</script>")[0]
    assert json.loads(embedded) == doc


def test_a_normalized_tabular_config_shows_each_table_it_expands_into(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "tables-set"
    (root / "hosp_admissions").mkdir(parents=True)
    rows = {"subject_id": [1, 2], "admission_type": ["URGENT", "ELECTIVE"], "source": ["t@1"] * 2, "sample_id": ["a", "b"], "split": ["train"] * 2}
    datasets.Dataset.from_dict(rows).to_parquet(str(root / "hosp_admissions" / "train-00000-of-00001.parquet"))
    (root / "README.md").write_text(
        "---\nconfigs:\n- config_name: hosp_admissions\n  data_files:\n  - split: train\n    path: hosp_admissions/train-*.parquet\n---\n",
        encoding="utf-8",
    )
    facts = hooks.read_normalized(root)
    monkeypatch.setattr(hooks, "normalized_facts", lambda entry: facts)
    entry = valid_entry(id="tables-set", tasks=["tabular"], configs=[{"name": "tables", "task": "tabular", "splits": ["train"], "description": "A config per CSV."}])
    registry = merge([("<test>", parse_registry_text(registry_yaml(entry), "<test>"))])
    page = dataset_page(registry.get("tables-set"), registry, samples=True)
    assert [c.name for c in page.configs] == ["tables", "hosp_admissions"]
    table = page.configs[1]
    assert table.normalize == "medcat normalize tables-set --out data/ --config hosp_admissions"
    assert [(c.name, c.hf_type) for c in table.columns][:2] == [("subject_id", "int64"), ("admission_type", "string")]
    assert table.sample is not None and dict(table.sample.cells)["admission_type"] == "URGENT"
