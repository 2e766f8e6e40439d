"""The dataset card ``README.md`` of a written dataset: YAML front matter for the Hub, a body for people.

The front matter carries what ``datasets.load_dataset`` and the Hub read: ``configs`` with
``data_files`` per split, ``dataset_info`` features, ``license``, ``task_categories``,
``pretty_name``, ``tags``, ``size_categories``. The body says what the dataset is, how it was
made, the counts per split, the upstream split names, the citation and notes. Rendering is a
pure function of its arguments (no timestamps), so equal builds give equal cards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from medcat_data.catalog.schema import Task

if TYPE_CHECKING:
    from medcat_data.catalog.schema import Entry
    from medcat_data.converters.writer import ConfigSpec

__all__ = ["HF_TASK_CATEGORIES", "CardInfo", "render_card"]

HF_TASK_CATEGORIES: Mapping[Task, tuple[str, ...]] = {
    Task.IMAGE_CLASSIFICATION: ("image-classification",),
    Task.OBJECT_DETECTION: ("object-detection",),
    Task.REPORT_GENERATION: ("image-to-text",),
    Task.VQA: ("visual-question-answering",),
    Task.TEXT_QA: ("question-answering", "multiple-choice"),
    Task.IMAGE_TEXT: ("image-to-text",),
    # The Hub has no genomics or EHR task; "other" is honest, the tags say what it is.
    Task.VARIANT_CALLING: ("other",),
    Task.TABULAR: ("other",),
}
"""Our task schemas mapped to Hugging Face ``task_categories`` (the Hub's fixed vocabulary)."""

# License ids the Hub accepts as-is (lower-cased SPDX); anything else is "other" + name + link.
_HUB_LICENSES = frozenset(
    {
        "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "gpl-3.0", "lgpl-3.0", "mpl-2.0",
        "cc0-1.0", "cc-by-2.0", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
        "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
        "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "odbl", "odc-by", "pddl",
        "cdla-permissive-2.0", "cdla-sharing-1.0", "unlicense", "afl-3.0", "artistic-2.0",
    }
)  # fmt: skip


@dataclass(frozen=True)
class CardInfo:
    """What the card says beyond the counts: usually built from a registry entry by ``from_entry``."""

    pretty_name: str
    summary: str
    how_made: str = ""
    license_spdx: str | None = None
    license_name: str | None = None
    license_url: str | None = None
    citation: str | None = None
    homepage: str | None = None
    tags: tuple[str, ...] = ()
    upstream_splits: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @classmethod
    def from_entry(cls, entry: Entry, *, how_made: str = "", notes: Sequence[str] = ()) -> CardInfo:
        """Build card metadata from a registry entry: licence, citation, description, split mapping."""
        upstream: dict[str, str] = {}
        for cfg in entry.configs:
            upstream.update(cfg.upstream_splits)
        return cls(
            pretty_name=entry.name,
            summary=entry.description.strip(),
            how_made=how_made,
            license_spdx=entry.license.spdx,
            license_name=entry.license.name,
            license_url=entry.license.url,
            citation=entry.citation,
            homepage=entry.homepage,
            tags=("medical", "medcat", *entry.modalities, *entry.tags),
            upstream_splits=upstream,
            notes=(*entry.notes, *notes),
        )


def render_card(
    info: CardInfo,
    configs: Sequence[ConfigSpec],
    rows: Mapping[str, Mapping[str, int]],
    *,
    source: str,
    options: Mapping[str, Any],
    errors: int,
    tool_version: str,
    fingerprints: Mapping[str, str] | None = None,
) -> str:
    """Return the text of ``README.md`` for ``configs`` with ``rows[config][split]`` counts.

    Only splits with rows are listed in ``data_files``, and only configs with rows in ``configs``:
    ``datasets`` cannot load a split of zero rows. The body still lists every config.
    ``fingerprints`` (config -> content digest) become each config's ``description``: ``datasets``
    keys its cache of a local folder by this YAML, so a rebuilt folder is never read from the cache
    of an earlier build.
    """
    front = _front_matter(info, configs, rows, fingerprints or {})
    body = _body(info, configs, rows, source=source, options=options, errors=errors, tool_version=tool_version)
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100) + "---\n\n" + body


def _front_matter(
    info: CardInfo,
    configs: Sequence[ConfigSpec],
    rows: Mapping[str, Mapping[str, int]],
    fingerprints: Mapping[str, str],
) -> dict[str, Any]:
    front: dict[str, Any] = {"pretty_name": info.pretty_name}
    spdx = (info.license_spdx or "").lower()
    if spdx in _HUB_LICENSES:
        front["license"] = spdx
    else:
        front["license"] = "other"
        front["license_name"] = _slug(info.license_spdx or info.license_name or "unknown")
        if info.license_url:
            front["license_link"] = info.license_url
    categories: list[str] = []
    for cfg in configs:
        for cat in HF_TASK_CATEGORIES.get(cfg.task, ("other",)) if cfg.task else ():
            if cat not in categories:
                categories.append(cat)
    if categories:
        front["task_categories"] = categories
    tags: list[str] = []
    for tag in info.tags:
        if tag not in tags:
            tags.append(tag)
    if tags:
        front["tags"] = tags
    total = sum(n for per_split in rows.values() for n in per_split.values())
    front["size_categories"] = [_size_category(total)]
    loadable = [cfg for cfg in configs if _splits(cfg, rows)]
    front["configs"] = [
        {
            "config_name": cfg.name,
            "data_files": [
                {"split": split, "path": f"{cfg.name}/{split}-*.parquet"} for split in _splits(cfg, rows)
            ],
            **({"default": True} if i == 0 and len(loadable) > 1 else {}),
            **({"description": f"medcat build {fingerprints[cfg.name][:16]}"} if cfg.name in fingerprints else {}),
        }
        for i, cfg in enumerate(loadable)
    ]
    front["dataset_info"] = [
        {"config_name": cfg.name, "features": cfg.features._to_yaml_list()} for cfg in loadable
    ]
    return front


def _splits(cfg: ConfigSpec, rows: Mapping[str, Mapping[str, int]]) -> list[str]:
    counts = rows.get(cfg.name, {})
    return [split for split in counts if counts[split] > 0]


def _body(
    info: CardInfo,
    configs: Sequence[ConfigSpec],
    rows: Mapping[str, Mapping[str, int]],
    *,
    source: str,
    options: Mapping[str, Any],
    errors: int,
    tool_version: str,
    fingerprints: Mapping[str, str] | None = None,
) -> str:
    out = [f"# {info.pretty_name}", "", info.summary, ""]
    if info.homepage:
        out += [f"Homepage: <{info.homepage}>", ""]
    out += ["## Contents", "", "| config | task | split | rows |", "|---|---|---|---:|"]
    for cfg in configs:
        task = cfg.task.value if cfg.task else "-"
        for split, n in rows.get(cfg.name, {}).items():
            out.append(f"| {cfg.name} | {task} | {split} | {n:,} |")
        if not rows.get(cfg.name):
            out.append(f"| {cfg.name} | {task} | (none) | 0 |")
    out.append("")
    for cfg in configs:
        if cfg.description:
            out += [f"- `{cfg.name}`: {cfg.description}"]
    first = configs[0].name if configs else "default"
    out += [
        "",
        "```python",
        "from datasets import load_dataset",
        f'ds = load_dataset("path/to/this/folder", "{first}")',
        "```",
        "",
        "## How it was made",
        "",
    ]
    if info.how_made:
        out += [info.how_made, ""]
    out += [f"Written by medcat-data {tool_version} from `{source}` with these options:", ""]
    out += [f"- `{k}`: `{v}`" for k, v in sorted(options.items())] or ["- (none)"]
    out.append("")
    if info.upstream_splits:
        out += ["Upstream split names map to ours:", ""]
        out += [f"- `{up}` -> `{ours}`" for up, ours in info.upstream_splits.items()]
        out.append("")
    out += [
        f"{errors:,} item(s) could not be converted; each is listed in `errors.jsonl` (path, stage, "
        "reason). Inputs, options and counts are in `medcat-manifest.json`.",
        "",
    ]
    if info.notes:
        out += ["## Notes", ""] + [f"- {note}" for note in info.notes] + [""]
    out += ["## License", "", _license_line(info), ""]
    if info.citation:
        out += ["## Citation", "", "```bibtex", info.citation.strip(), "```", ""]
    return "\n".join(out)


def _license_line(info: CardInfo) -> str:
    name = info.license_name or info.license_spdx or "unknown"
    line = f"{name} (SPDX `{info.license_spdx}`)" if info.license_spdx else name
    return f"{line}: <{info.license_url}>" if info.license_url else line


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) or "unknown"


def _size_category(n: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    for bound, label in bounds:
        if n < bound:
            return label
    return "1M<n<10M" if n < 10_000_000 else "10M<n<100M"
