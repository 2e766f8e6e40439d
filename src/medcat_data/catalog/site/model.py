"""Turn registry entries into page data shared by the HTML site and its Markdown mirror.

Both renderers read the same ``DatasetPage`` so the two can never say different things, and both
take commands and source descriptions from ``catalog.describe`` so they match ``medcat info``.
Pure apart from the optional hooks (features, replicas) of ``site.hooks``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from medcat_data.catalog import describe, query
from medcat_data.catalog.croissant import croissant_metadata, croissant_text, source_globs
from medcat_data.catalog.refs import DatasetRef, ResolvedDataset, parse_ref, resolve
from medcat_data.catalog.registry import Registry
from medcat_data.catalog.schema import Access, Entry, NormalizedConfig, Task
from medcat_data.catalog.site import hooks
from medcat_data.catalog.site.columns import ColumnRow, column_rows

ACCESS_MEANING: Mapping[Access, str] = {
    Access.OPEN: "Anyone can download the files; no account is needed.",
    Access.REGISTRATION: "A free account on the host is needed before downloading.",
    Access.GATED: "Accept the terms on the host's page with your account; then a token gives access.",
    Access.RESTRICTED: (
        "An account on the host and a signed data use agreement; no credentialing review or training. "
        "medcat fetches only with your own login and `--accept-license`."
    ),
    Access.CREDENTIALED: (
        "An account, a credentialing review, human-subjects training and a signed data use agreement. "
        "medcat fetches only with your own login and `--accept-license`."
    ),
}

_TEMPLATE_REFS = {"physionet": "physionet:SLUG@VERSION", "hf": "hf:OWNER/NAME@REVISION", "kaggle": "kaggle:OWNER/SLUG"}
"""How a template entry is referenced, by the kind of its source (placeholders in capitals)."""
_TEMPLATE_DIRS = {"physionet": "physionet-SLUG", "hf": "hf-OWNER-NAME", "kaggle": "kaggle-OWNER-SLUG"}
"""The folder ``medcat normalize`` writes under ``--out`` for a template's reference (``refs.py`` ids)."""
OUT_DIR = "data"
"""The ``--out`` folder of the normalize command the pages show (``catalog.describe.normalize_command``)."""

TREE_MAX_FILES_PER_DIR = 6
_SPLIT_METHOD = {"official": "", "grouped": " (seeded, patient-grouped split)", "none": " (everything in one split)"}


@dataclass(frozen=True)
class Command:
    """One command line shown on a page, with what it does."""

    label: str
    command: str


@dataclass(frozen=True)
class ConfigView:
    """One normalized config: its task, splits, columns, label counts and a sample."""

    name: str
    task: str
    splits: str
    description: str
    core_fields: str
    origin: hooks.FeaturesOrigin
    columns: tuple[ColumnRow, ...]
    label_counts: Mapping[str, Mapping[str, int]]
    sample: hooks.SampleView | None
    normalize: str
    load: str


@dataclass(frozen=True)
class UpstreamSource:
    """One source of the real data: where it lives and the files it fetches, as a tree."""

    name: str
    role: str
    where: str
    tree: tuple[str, ...]


@dataclass(frozen=True)
class DatasetPage:
    """Everything one dataset page shows."""

    entry: Entry
    reference: str
    commands: tuple[Command, ...]
    sources: tuple[Mapping[str, str], ...]
    size_rows: tuple[tuple[str, str], ...]
    upstream: tuple[UpstreamSource, ...]
    replica_tree: tuple[str, ...] | None
    replica_summary: str | None
    configs: tuple[ConfigView, ...]
    croissant: Mapping[str, Any]

    @property
    def size_summary(self) -> str:
        """Return the size in one line: bytes, files and samples that are known."""
        known = [(what, value) for what, value in self.size_rows if what != "note" and value != "unknown"]
        return ", ".join(value if what == "bytes" else f"{value} {what}" for what, value in known) or "unknown"

    @property
    def access_meaning(self) -> str:
        return ACCESS_MEANING[self.entry.access]

    @property
    def croissant_json(self) -> str:
        return croissant_text(self.croissant)


@dataclass(frozen=True)
class IndexRow:
    """One row of the index table with the values the client-side filters read."""

    summary: Mapping[str, Any]
    search_text: str


def resolve_for_page(entry: Entry, registry: Registry) -> ResolvedDataset:
    """Resolve an entry for its commands; a template gets a placeholder reference (``physionet:SLUG@VERSION``)."""
    if not entry.template:
        return resolve(parse_ref(entry.id), registry)
    kind = entry.main_sources[0].kind
    text = _TEMPLATE_REFS.get(kind, entry.id)
    scheme = kind if kind in _TEMPLATE_REFS else "registry"
    return ResolvedDataset(DatasetRef(scheme, text.partition(":")[2], None, text), entry, entry.default_version)  # type: ignore[arg-type]


def commands_for(resolved: ResolvedDataset) -> tuple[Command, ...]:
    """Return the page's command lines: those of ``medcat info``, then per alternative source and config."""
    entry = resolved.entry
    details = describe.entry_details(resolved)
    cmds = [Command("describe", f"medcat info {resolved.ref}"), Command("fetch", details["commands"]["fetch"])]
    for src in entry.main_sources[1:]:
        cmds.append(Command(f"fetch from {src.name}", describe.fetch_command(resolved, src.name)))
    cmds.append(Command("verify", details["commands"]["verify"]))
    if details["commands"]["normalize"]:
        cmds.append(Command("normalize", details["commands"]["normalize"]))
    return tuple(cmds)


def size_rows(entry: Entry) -> tuple[tuple[str, str], ...]:
    """Return the registry's size figures as (what, value) rows, ``~`` marking estimates."""
    size = entry.size
    rows = [("bytes", query.size_text(entry))]
    if size.files is not None:
        rows.append(("files", ("~" if "files" in size.approximate else "") + f"{size.files:,}"))
    if size.samples is not None:
        rows.append(("samples", ("~" if "samples" in size.approximate else "") + f"{size.samples:,}"))
    if size.note:
        rows.append(("note", size.note))
    return tuple(rows)


def tree_lines(files: Sequence[tuple[str, int]], max_files: int = TREE_MAX_FILES_PER_DIR) -> tuple[str, ...]:
    """Render a file listing as an indented tree; a folder lists at most ``max_files`` files, then a count.

    Sizes are left out on purpose: a replica's bytes are synthetic (the real sizes come from the
    registry) and compressed ones vary with the zlib or JPEG 2000 encoder installed, which would
    make the committed pages differ between machines.
    """
    tree: dict[str, Any] = {}
    for path, _size in files:
        node = tree
        *dirs, name = path.split("/")
        for d in dirs:
            node = node.setdefault(d + "/", {})
        node[name] = None
    lines: list[str] = []
    _render_tree(tree, 0, max_files, lines)
    return tuple(lines)


def _render_tree(node: Mapping[str, Any], depth: int, max_files: int, lines: list[str]) -> None:
    pad = "    " * depth
    folders = sorted(k for k in node if k.endswith("/"))
    files = sorted(k for k in node if not k.endswith("/"))
    lines.extend(f"{pad}{name}" for name in files[:max_files])
    if len(files) > max_files:
        lines.append(f"{pad}... {len(files) - max_files} more files")
    for name in folders:
        lines.append(f"{pad}{name}")
        _render_tree(node[name], depth + 1, max_files, lines)


def config_view(
    entry: Entry, cfg: NormalizedConfig, resolved: ResolvedDataset, normalized: hooks.NormalizedFacts | None
) -> ConfigView:
    """Return the page data of one config; the replica's normalized dataset wins when there is one."""
    origin: hooks.FeaturesOrigin
    if normalized is not None:
        features, origin = normalized.features, "normalized"
    else:
        schema = hooks.config_schema(entry, cfg)
        features, origin = schema.features, schema.origin
    columns = tuple(column_rows(features, hooks.column_notes(entry))) if features is not None else ()
    splits = ", ".join(cfg.splits) + _SPLIT_METHOD[cfg.split_method]
    if cfg.upstream_splits:
        splits += "; upstream " + ", ".join(f"{k} -> {v}" for k, v in cfg.upstream_splits.items())
    if cfg.split_counts:
        counts = ", ".join(f"{s} {n:,}" for s, n in cfg.split_counts.items())
        splits += f"; the real data: {counts}" + (f", counting {cfg.split_counts_note}" if cfg.split_counts_note else "")
    return ConfigView(
        name=cfg.name,
        task=cfg.task.value,
        splits=splits,
        description=cfg.description,
        core_fields=describe.TASK_FIELDS[cfg.task],
        origin=origin,
        columns=columns,
        label_counts=normalized.label_counts if normalized else {},
        sample=normalized.sample if normalized else None,
        normalize=describe.normalize_command(resolved, None if _expands(entry, cfg) else cfg.name),
        load=load_snippet(entry, cfg),
    )


def output_dir(entry: Entry) -> str:
    """Return the folder ``medcat normalize REF --out data`` writes the dataset to, e.g. ``data/vqa-rad``."""
    if entry.template:
        return f"{OUT_DIR}/" + _TEMPLATE_DIRS.get(entry.main_sources[0].kind, entry.id)
    return f"{OUT_DIR}/{entry.id}"


def load_snippet(entry: Entry, cfg: NormalizedConfig) -> str:
    """Return the Python lines that load one config after ``medcat normalize``; a ``tabular`` config names its tables."""
    folder = output_dir(entry)
    if _expands(entry, cfg):
        return (
            "import datasets\n"
            f'tables = datasets.get_dataset_config_names("{folder}")  # one config per upstream table\n'
            f'ds = datasets.load_dataset("{folder}", tables[0])'
        )
    return f'import datasets\nds = datasets.load_dataset("{folder}", "{cfg.name}")'


def upstream_sources(entry: Entry, version: str) -> tuple[UpstreamSource, ...]:
    """Return the real layout per source: its coordinates and what it fetches, rooted at the cache folder."""
    views = []
    for source in entry.sources:
        said = describe.describe_source(source, version)
        root = f"{entry.id}/{version}/"
        tree = (root, *("    " + line for line in tree_lines([(path, 0) for path in source_globs(source)])))
        views.append(UpstreamSource(source.name, said["role"], said["where"], tree))
    return tuple(views)


def _expands(entry: Entry, cfg: NormalizedConfig) -> bool:
    """Return whether a config is a declared ``tabular`` one, which normalize expands into one config per table."""
    return cfg.task is Task.TABULAR and any(c.name == cfg.name for c in entry.configs)


def dataset_page(entry: Entry, registry: Registry, samples: bool = False) -> DatasetPage:
    """Return the page data of one entry; ``samples`` runs the replica chain for counts and a sample row."""
    resolved = resolve_for_page(entry, registry)
    files = hooks.replica_files(entry)
    tree = summary = None
    if files is not None:
        tree = tree_lines(files)
        summary = f"{len(files)} file{'' if len(files) == 1 else 's'}, built with seed {hooks.REPLICA_SEED}"
    normalized = hooks.normalized_facts(entry) if samples else {}
    configs = [config_view(entry, cfg, resolved, normalized.get(cfg.name)) for cfg in entry.configs]
    configs += _table_views(entry, resolved, normalized)
    return DatasetPage(
        entry=entry,
        reference=str(resolved.ref),
        commands=commands_for(resolved),
        sources=tuple(describe.describe_source(s, resolved.version) for s in entry.sources),
        size_rows=size_rows(entry),
        upstream=upstream_sources(entry, resolved.version),
        replica_tree=tree,
        replica_summary=summary,
        configs=tuple(configs),
        croissant=croissant_metadata(entry),
    )


def _table_views(
    entry: Entry, resolved: ResolvedDataset, normalized: Mapping[str, hooks.NormalizedFacts]
) -> list[ConfigView]:
    """Return the per-table configs a ``tabular`` config expands into when normalized (one per upstream table)."""
    tabular = next((c for c in entry.configs if c.task is Task.TABULAR), None)
    declared = {c.name for c in entry.configs}
    if tabular is None:
        return []
    views = []
    for name in sorted(set(normalized) - declared):
        table = tabular.model_copy(update={"name": name, "description": f"One upstream table of `{tabular.name}`, typed at normalize time."})
        views.append(config_view(entry, table, resolved, normalized[name]))
    return views


def index_rows(registry: Registry) -> tuple[IndexRow, ...]:
    """Return the index rows in registry order, with the lower-case text the search box matches."""
    rows = []
    for entry in registry:
        words = [entry.id, entry.name, entry.description, *entry.modalities, *(t.value for t in entry.tasks), *entry.tags]
        words += [entry.access.value, entry.license.short] + (["template"] if entry.template else [])
        rows.append(IndexRow(query.summary_row(entry), " ".join(words).lower()))
    return tuple(rows)


@dataclass(frozen=True)
class SchemaSection:
    """One task schema on the schemas page: core fields, columns when known, configs that use it."""

    task: str
    core_fields: str
    columns: tuple[ColumnRow, ...]
    note: str
    configs: tuple[tuple[str, str], ...]


def schema_sections(registry: Registry) -> tuple[SchemaSection, ...]:
    """Return one section per task schema, in the order of ``Task``."""
    sections = []
    for task in Task:
        features = hooks.task_features(task)
        columns = tuple(column_rows(features)) if features is not None else ()
        note = "Label columns (ClassLabel) come from each dataset's recipe." if columns else ""
        users = tuple((e.id, c.name) for e in registry for c in e.configs if c.task is task)
        sections.append(SchemaSection(task.value, describe.TASK_FIELDS[task], columns, note, users))
    return tuple(sections)
