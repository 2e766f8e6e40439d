"""Find what the catalog pages can show beyond the registry: recipe features, replica trees, samples.

The one place the catalog reaches into the parts of medcat that describe data rather than hold it,
each optional and looked up by the entry's id:

* the recipe (``datasets/<module>/recipe.py``, ``RECIPE``) declares a config's features
  (``features(config, ctx, survey)``); without one, the task schema's core columns are shown
  (``converters/schemas.py``, ``TASK_BUILDERS``);
* the replica builder (``datasets/<module>/replica.py``, ``build(root, seed=...)``) writes the
  miniature upstream tree; its file listing becomes the page's layout section;
* with ``samples=True`` the real chain runs on the replica (``medcat_data.demo``: loopback mirror,
  fetch, verify, normalize) and the normalized dataset gives label counts and a sample row;
* ``converters/vocab/docs.py`` renders the label harmonization tables.

A part that does not exist yet means "nothing to show". Replicas are built with ``REPLICA_SEED``
into temporary folders, once per process, so pages are byte-identical between runs. Never reaches
beyond loopback and never writes outside its temporary folders.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import logging
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from medcat_data.catalog.schema import Entry, NormalizedConfig, Task
from medcat_data.errors import MedcatError

log = logging.getLogger(__name__)

RECIPE_MODULE = "medcat_data.converters.recipe"
REPLICA_BASE_MODULE = "medcat_data.mirror.replicas.base"
SCHEMAS_MODULE = "medcat_data.converters.schemas"
VOCAB_DOCS_MODULE = "medcat_data.converters.vocab.docs"
DEMO_MODULE = "medcat_data.demo"

REPLICA_SEED = 0
"""Seed of every replica the catalog builds; fixed so that the generated pages never change by chance."""

THUMBNAIL_MAX_SIDE_PX = 256
SAMPLE_TEXT_MAX_CHARS = 200

FeaturesOrigin = Literal["normalized", "recipe", "task-schema", "core-fields"]


def optional_module(name: str) -> ModuleType | None:
    """Import ``name`` if it exists, else return None; errors inside an existing module propagate."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    if spec is None:
        return None
    return importlib.import_module(name)


def recipe_of(entry: Entry) -> Any | None:
    """Return the recipe (a ``converters.recipe.Recipe``) of an entry, or None while it has none."""
    base = optional_module(RECIPE_MODULE)
    return base.load_recipe(entry.template_of or entry.id) if base is not None else None


def replica_module(entry: Entry) -> ModuleType | None:
    """Return the replica builder module of an entry, or None while it has none."""
    base = optional_module(REPLICA_BASE_MODULE)
    module = base.load_builder(entry.id) if base is not None else None
    return module if module is not None and callable(getattr(module, "build", None)) else None


@dataclass(frozen=True)
class ConfigSchema:
    """The features of one normalized config and where that knowledge came from.

    ``features`` is None when nothing can say without the data (e.g. ``tabular``, whose columns
    are typed at normalize time); pages then show the task's core fields in words.
    """

    features: Any | None
    origin: FeaturesOrigin


def config_schema(entry: Entry, config: NormalizedConfig) -> ConfigSchema:
    """Return the features of a config: the recipe's declaration, else its task schema's core columns."""
    declared = _recipe_features(entry, config.name)
    if declared is not None:
        return ConfigSchema(declared, "recipe")
    features = task_features(config.task)
    return ConfigSchema(features, "task-schema" if features is not None else "core-fields")


def _recipe_features(entry: Entry, config: str) -> Any | None:
    """Ask the recipe for a config's features with nothing fetched; None when it needs the data."""
    recipe = recipe_of(entry)
    base = optional_module(RECIPE_MODULE)
    if recipe is None or base is None or config not in recipe.CONFIGS:
        return None
    source = entry.main_sources[0]
    with tempfile.TemporaryDirectory(prefix="medcat-catalog-empty-") as empty:
        root = Path(empty)
        ctx = base.RecipeContext(
            dataset_id=entry.id,
            version=entry.default_version,
            root=root,
            source=source.name,
            source_dir=root / source.subdir if source.subdir else root,
        )
        try:
            # Most recipes declare features without looking at the data: an empty folder's survey
            # may fail, and the features are asked for without one.
            try:
                survey = recipe.survey(ctx)
            except (MedcatError, OSError, LookupError, ValueError):
                survey = None
            return recipe.features(config, ctx, survey)
        except (MedcatError, OSError, LookupError, ValueError, AttributeError, TypeError) as err:
            log.info("%s/%s: the recipe needs the data to declare features (%s); showing the task schema", entry.id, config, err)
            return None


def task_features(task: Task) -> Any | None:
    """Return the core columns of a task schema, or None when its builder needs dataset knowledge."""
    schemas = optional_module(SCHEMAS_MODULE)
    builders = getattr(schemas, "TASK_BUILDERS", None) if schemas is not None else None
    builder = builders.get(task) if isinstance(builders, Mapping) else None
    if builder is not None and _callable_without_arguments(builder):
        return builder()
    return None


def _callable_without_arguments(func: Any) -> bool:
    params = inspect.signature(func).parameters.values()
    return all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def column_notes(entry: Entry) -> Mapping[str, str]:
    """Return column descriptions the schemas module or the recipe declare (``COLUMN_DESCRIPTIONS``)."""
    notes: dict[str, str] = {}
    for holder in (optional_module(SCHEMAS_MODULE), recipe_of(entry)):
        declared = getattr(holder, "COLUMN_DESCRIPTIONS", None) if holder is not None else None
        if isinstance(declared, Mapping):
            notes.update({str(k): str(v) for k, v in declared.items()})
    return notes


def labels_markdown() -> str | None:
    """Return the Markdown of the label harmonization tables, or None while no vocabulary exists."""
    module = optional_module(VOCAB_DOCS_MODULE)
    render = getattr(module, "render_markdown", None) if module is not None else None
    return render() if callable(render) else None


def replica_files(entry: Entry) -> tuple[tuple[str, int], ...] | None:
    """Return ``(relative path, size in bytes)`` of the entry's replica tree, or None without a replica."""
    if replica_module(entry) is None:
        return None
    return _replica_files_cached(entry.id)


@lru_cache(maxsize=None)
def _replica_files_cached(dataset_id: str) -> tuple[tuple[str, int], ...]:
    base = optional_module(REPLICA_BASE_MODULE)
    builder = base.load_builder(dataset_id) if base is not None else None
    assert builder is not None
    with tempfile.TemporaryDirectory(prefix=f"medcat-catalog-{dataset_id}-") as tmp:
        root = Path(tmp)
        builder.build(root, seed=REPLICA_SEED)
        return tuple(
            (p.relative_to(root).as_posix(), p.stat().st_size) for p in sorted(root.rglob("*")) if p.is_file()
        )


@dataclass(frozen=True)
class SampleView:
    """One normalized row shown on a page: short text cells and an optional PNG thumbnail."""

    cells: tuple[tuple[str, str], ...]
    thumbnail_png: bytes | None = None


@dataclass(frozen=True)
class NormalizedFacts:
    """What one normalized config of the replica shows: its features, label counts and first row."""

    features: Any
    label_counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    sample: SampleView | None = None


def normalized_facts(entry: Entry) -> Mapping[str, NormalizedFacts]:
    """Run the real chain on the entry's replica and return per config its normalized facts.

    Empty when the entry has no recipe or no replica yet, or its demo run fails (logged as a
    warning: the page then simply has no sample).
    """
    if recipe_of(entry) is None or replica_module(entry) is None or optional_module(DEMO_MODULE) is None:
        return {}
    return _normalized_facts_cached(entry.id)


@lru_cache(maxsize=None)
def _normalized_facts_cached(dataset_id: str) -> Mapping[str, NormalizedFacts]:
    demo = importlib.import_module(DEMO_MODULE)
    with tempfile.TemporaryDirectory(prefix=f"medcat-catalog-{dataset_id}-") as tmp:
        rows = demo.run_demo(out=Path(tmp), only=[dataset_id])
        ok = [r for r in rows if r.status == "ok" and r.out_dir]
        if not ok:
            log.warning("%s: no sample for the catalog, the replica run failed: %s", dataset_id, [r.status for r in rows])
            return {}
        return read_normalized(Path(ok[0].out_dir))


def read_normalized(out_dir: Path) -> dict[str, NormalizedFacts]:
    """Read every config of a normalized dataset folder: features, label counts over all splits, first row."""
    import datasets

    facts: dict[str, NormalizedFacts] = {}
    for config in datasets.get_dataset_config_names(str(out_dir)):
        splits = datasets.load_dataset(str(out_dir), config)
        names = [s for s in ("train", "validation", "test") if s in splits] + sorted(set(splits) - {"train", "validation", "test"})
        features = splits[names[0]].features
        labels = label_columns(features)
        counters: dict[str, Counter[str]] = {col: Counter() for col in labels}
        for split in names:
            for col in labels:
                for value in splits[split][col]:
                    for item in value if isinstance(value, list) else [value]:
                        if item is not None:
                            counters[col][labels[col][item]] += 1
        counts = {col: {name: counters[col][name] for name in labels[col] if counters[col][name]} for col in labels}
        first = next((splits[s][0] for s in names if len(splits[s])), None)
        sample = sample_view(first, labels) if first is not None else None
        facts[config] = NormalizedFacts(features, {c: t for c, t in counts.items() if t}, sample)
    return facts


def label_columns(features: Mapping[str, Any]) -> dict[str, list[str]]:
    """Return ``column -> class names`` of the top-level ClassLabel (or list of ClassLabel) columns."""
    out: dict[str, list[str]] = {}
    for name, feature in features.items():
        inner = getattr(feature, "feature", feature)
        if type(inner).__name__ == "ClassLabel":
            out[name] = list(inner.names)
    return out


def sample_view(row: Mapping[str, Any], labels: Mapping[str, list[str]]) -> SampleView:
    """Render one decoded row: label indices as names, long text shortened, the first image as a thumbnail."""
    cells: list[tuple[str, str]] = []
    thumbnail = None
    for name, value in row.items():
        images = [v for v in (value if isinstance(value, list) else [value]) if _is_image(v)]
        if images:
            thumbnail = thumbnail or _thumbnail_png(images[0])
            cells.append((name, ", ".join(f"image {im.width}x{im.height}" for im in images)))
            continue
        if name in labels:
            names = labels[name]
            value = [names[v] for v in value] if isinstance(value, list) else (names[value] if value is not None else None)
        text = str(value)
        if len(text) > SAMPLE_TEXT_MAX_CHARS:
            text = text[: SAMPLE_TEXT_MAX_CHARS - 1] + "…"
        cells.append((name, text))
    return SampleView(tuple(cells), thumbnail)


def _is_image(value: object) -> bool:
    from PIL import Image

    return isinstance(value, Image.Image)


def _thumbnail_png(image: Any) -> bytes:
    """Return a small 8-bit PNG of an image; 16-bit and float greyscale are stretched to their own range."""
    from PIL import Image

    thumb = image.copy()
    if thumb.mode.startswith(("I", "F")):
        import numpy as np

        pixels = np.asarray(thumb, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
        thumb = Image.fromarray(scaled.astype(np.uint8), mode="L")
    elif thumb.mode not in ("L", "RGB", "RGBA"):
        thumb = thumb.convert("RGB")
    thumb.thumbnail((THUMBNAIL_MAX_SIDE_PX, THUMBNAIL_MAX_SIDE_PX))
    buf = io.BytesIO()
    thumb.save(buf, format="PNG")
    return buf.getvalue()
