"""Find what the catalog pages can show beyond the registry: recipe features, replica trees, samples.

The one place the catalog imports the modules that other parts of medcat provide, each optional:

* ``medcat_data.converters.recipes.<module>`` -- the normalized features of a config, from a
  ``features(config) -> datasets.Features`` function or a ``FEATURES`` mapping; samples and label
  counts from ``iter_samples(raw_dir, config)``;
* ``medcat_data.converters.schemas`` -- the task schemas (``TASK_BUILDERS``), used when the recipe
  declares nothing;
* ``medcat_data.mirror.replicas.<module>`` -- ``build(root, seed)`` writes the miniature upstream
  tree; its file listing becomes the page's layout section;
* ``medcat_data.converters.vocab.docs`` -- ``render_markdown()``, the label harmonization tables.

A module that does not exist yet means "nothing to show" and its section is left out; a module that
exists but fails is a bug and raises. Replicas are built once per process into a temporary
directory with ``REPLICA_SEED`` so that pages are byte-identical between runs. Never touches the
network and never writes outside its temporary directory.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import io
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from medcat_data.catalog.schema import Entry, NormalizedConfig, PhysioNetSource, Task, module_name

log = logging.getLogger(__name__)

RECIPES_PACKAGE = "medcat_data.converters.recipes"
REPLICAS_PACKAGE = "medcat_data.mirror.replicas"
SCHEMAS_MODULE = "medcat_data.converters.schemas"
VOCAB_DOCS_MODULE = "medcat_data.converters.vocab.docs"

REPLICA_SEED = 0
"""Seed of every replica the catalog builds; fixed so that the generated pages never change by chance."""

THUMBNAIL_MAX_SIDE_PX = 256
SAMPLE_TEXT_MAX_CHARS = 300

FeaturesOrigin = Literal["recipe", "task-schema", "core-fields"]


def optional_module(name: str) -> ModuleType | None:
    """Import ``name`` if it exists, else return None; errors inside an existing module propagate."""
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
    if spec is None:
        return None
    return importlib.import_module(name)


def recipe_module(entry: Entry) -> ModuleType | None:
    """Return the recipe module of an entry, or None while it has none."""
    return optional_module(f"{RECIPES_PACKAGE}.{module_name(entry.id)}")


def replica_module(entry: Entry) -> ModuleType | None:
    """Return the replica builder module of an entry, or None while it has none."""
    module = optional_module(f"{REPLICAS_PACKAGE}.{module_name(entry.id)}")
    return module if module is not None and callable(getattr(module, "build", None)) else None


@dataclass(frozen=True)
class ConfigSchema:
    """The features one normalized config has, and where that knowledge came from.

    ``features`` is None when neither the recipe nor the task schema can say without the data
    (e.g. ``tabular``, whose columns are inferred at normalize time); pages then show the core
    fields of the task in words.
    """

    features: Any | None
    origin: FeaturesOrigin


def config_schema(entry: Entry, config: NormalizedConfig) -> ConfigSchema:
    """Return the features of a config: the recipe's, else its task schema's core columns."""
    recipe = recipe_module(entry)
    if recipe is not None:
        declared = getattr(recipe, "features", None)
        if callable(declared):
            return ConfigSchema(declared(config.name), "recipe")
        table = getattr(recipe, "FEATURES", None)
        if isinstance(table, Mapping) and config.name in table:
            return ConfigSchema(table[config.name], "recipe")
    features = task_features(config.task)
    return ConfigSchema(features, "task-schema" if features is not None else "core-fields")


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
    return all(
        p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


def column_notes(entry: Entry) -> Mapping[str, str]:
    """Return column descriptions a recipe or the schemas module declare (``COLUMN_DESCRIPTIONS``)."""
    notes: dict[str, str] = {}
    for module in (optional_module(SCHEMAS_MODULE), recipe_module(entry)):
        declared = getattr(module, "COLUMN_DESCRIPTIONS", None) if module is not None else None
        if isinstance(declared, Mapping):
            notes.update({str(k): str(v) for k, v in declared.items()})
    return notes


def labels_markdown() -> str | None:
    """Return the Markdown of the label harmonization tables, or None while no vocabulary exists."""
    module = optional_module(VOCAB_DOCS_MODULE)
    render = getattr(module, "render_markdown", None) if module is not None else None
    return render() if callable(render) else None


@dataclass(frozen=True)
class SampleView:
    """One normalized row shown on a page: short text cells and an optional PNG thumbnail."""

    cells: tuple[tuple[str, str], ...]
    thumbnail_png: bytes | None = None


@dataclass(frozen=True)
class ReplicaFacts:
    """What a built replica tells the catalog: its files, and per config label counts and a sample."""

    files: tuple[tuple[str, int], ...]
    label_counts: Mapping[str, Mapping[str, Mapping[str, int]]] = field(default_factory=dict)
    samples: Mapping[str, SampleView] = field(default_factory=dict)


def replica_facts(entry: Entry) -> ReplicaFacts | None:
    """Build the entry's replica once per process and return its facts, or None without a replica."""
    if replica_module(entry) is None:
        return None
    return _replica_facts_cached(entry.id, entry.model_dump_json())


@lru_cache(maxsize=None)
def _replica_facts_cached(dataset_id: str, entry_json: str) -> ReplicaFacts:
    entry = Entry.model_validate_json(entry_json)
    builder = replica_module(entry)
    assert builder is not None
    with tempfile.TemporaryDirectory(prefix=f"medcat-catalog-{dataset_id}-") as tmp:
        root = Path(tmp)
        returned = builder.build(root, REPLICA_SEED)
        files = tuple(
            (p.relative_to(root).as_posix(), p.stat().st_size) for p in sorted(root.rglob("*")) if p.is_file()
        )
        raw_dir = _raw_dir(entry, root, returned)
        recipe = recipe_module(entry)
        if raw_dir is None or recipe is None or not callable(getattr(recipe, "iter_samples", None)):
            return ReplicaFacts(files)
        counts: dict[str, dict[str, dict[str, int]]] = {}
        samples: dict[str, SampleView] = {}
        for cfg in entry.configs:
            schema = config_schema(entry, cfg)
            rows = (_as_row(s) for s in recipe.iter_samples(raw_dir, cfg.name))
            cfg_counts, sample = _read_rows(rows, schema.features)
            if cfg_counts:
                counts[cfg.name] = cfg_counts
            if sample is not None:
                samples[cfg.name] = sample
        return ReplicaFacts(files, counts, samples)


def _raw_dir(entry: Entry, root: Path, returned: object) -> Path | None:
    """Return where the replica holds the raw-cache-shaped files a recipe reads.

    A builder that returns a path names it; otherwise a PhysioNet source's files sit under
    ``files/<slug>/<version>/`` as on the real host. Other layouts give no samples.
    """
    if isinstance(returned, (str, Path)):
        return Path(returned)
    source = entry.main_sources[0]
    if isinstance(source, PhysioNetSource):
        candidate = root / "files" / source.slug / (source.version or entry.default_version)
        return candidate if candidate.is_dir() else None
    return None


def _as_row(sample: object) -> Mapping[str, Any]:
    if isinstance(sample, Mapping):
        return sample
    for attr in ("row", "values", "columns"):
        value = getattr(sample, attr, None)
        if isinstance(value, Mapping):
            return value
    raise TypeError(f"cannot read a row from recipe sample of type {type(sample).__name__}")


def _label_columns(features: Any) -> dict[str, list[str]]:
    """Return ``column -> class names`` of the ClassLabel (or list of ClassLabel) columns."""
    out: dict[str, list[str]] = {}
    for name, feature in (features or {}).items():
        inner = getattr(feature, "feature", feature)
        names = getattr(inner, "names", None)
        if isinstance(names, list) and type(inner).__name__ == "ClassLabel":
            out[name] = names
    return out


def _read_rows(
    rows: Iterable[Mapping[str, Any]], features: Any
) -> tuple[dict[str, dict[str, int]], SampleView | None]:
    """Count label values over every row and keep the first row as the sample."""
    label_columns = _label_columns(features)
    counters: dict[str, Counter[str]] = {col: Counter() for col in label_columns}
    sample: SampleView | None = None
    for row in rows:
        if sample is None:
            sample = _sample_view(row)
        for col, names in label_columns.items():
            value = row.get(col)
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                counters[col][names[item] if isinstance(item, int) else str(item)] += 1
    counts = {col: {label: c[label] for label in label_columns[col] if c[label]} for col, c in counters.items()}
    return {col: table for col, table in counts.items() if table}, sample


def _sample_view(row: Mapping[str, Any]) -> SampleView:
    cells: list[tuple[str, str]] = []
    thumbnail = None
    for name, value in row.items():
        image = _as_image(value)
        if image is not None:
            if thumbnail is None:
                thumbnail = _thumbnail_png(image)
            cells.append((name, f"image {image.width}x{image.height}"))
            continue
        text = str(value)
        if len(text) > SAMPLE_TEXT_MAX_CHARS:
            text = text[: SAMPLE_TEXT_MAX_CHARS - 1] + "…"
        cells.append((name, text))
    return SampleView(tuple(cells), thumbnail)


def _as_image(value: object) -> Any | None:
    """Return a PIL image for image-like cell values (PIL image, encoded bytes, HF image dict)."""
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    data = value.get("bytes") if isinstance(value, Mapping) else value
    if isinstance(data, (bytes, bytearray)) and data[:8] in (b"\x89PNG\r\n\x1a\n",) or (
        isinstance(data, (bytes, bytearray)) and data[:3] == b"\xff\xd8\xff"
    ):
        return Image.open(io.BytesIO(bytes(data)))
    return None


def _thumbnail_png(image: Any) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((THUMBNAIL_MAX_SIDE_PX, THUMBNAIL_MAX_SIDE_PX))
    if thumb.mode not in ("L", "RGB", "RGBA"):
        thumb = thumb.convert("L" if thumb.mode.startswith(("I", "F")) else "RGB")
    buf = io.BytesIO()
    thumb.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
