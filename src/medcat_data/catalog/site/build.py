"""Build the catalog: the static HTML site, the Markdown mirror, and the check that the mirror is current.

Collects page data once from the registry (and the optional hooks), then hands it to ``html.py``
and ``markdown.py``. Writes only inside the folder it is given; a site folder is marked with
``.medcat-site`` so that a rebuild may remove pages of datasets that left the registry, and a
folder without that mark is never cleaned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import medcat_data
from medcat_data.catalog.croissant import croissant_text
from medcat_data.catalog.registry import Registry, load_registry
from medcat_data.catalog.site import hooks, html, markdown
from medcat_data.catalog.site.model import (
    DatasetPage,
    IndexRow,
    SchemaSection,
    dataset_page,
    index_rows,
    schema_sections,
)
from medcat_data.errors import StaleDocsError, UsageError

log = logging.getLogger(__name__)

SITE_MARKER = ".medcat-site"
MIRROR_PATTERNS = ("README.md", "schemas.md", "datasets/*.md", "croissant/*.json")
"""The files of ``docs/catalog/`` that the mirror owns; anything else there is left alone."""
DEFAULT_MARKDOWN_DIR = Path("docs") / "catalog"


@dataclass(frozen=True)
class Catalog:
    """The page data of the whole catalog, computed once and rendered twice."""

    pages: tuple[DatasetPage, ...]
    rows: tuple[IndexRow, ...]
    sections: tuple[SchemaSection, ...]
    labels_markdown: str | None


@dataclass(frozen=True)
class MirrorDiff:
    """How a Markdown mirror on disk differs from the regenerated one (relative paths, sorted)."""

    stale: tuple[str, ...]
    missing: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not (self.stale or self.missing or self.extra)


class StaleMirrorError(StaleDocsError):
    """The committed Markdown mirror differs from what the registry generates (exit code 1)."""

    def __init__(self, folder: Path, diff: MirrorDiff) -> None:
        self.folder = folder
        self.diff = diff
        super().__init__(self._build())

    def _build(self) -> str:
        lines = [f"the catalog pages in {self.folder} are out of date with the registry:"]
        for label, paths in (("stale", self.diff.stale), ("missing", self.diff.missing), ("extra", self.diff.extra)):
            lines += [f"  {label}: {p}" for p in paths]
        command = "medcat docs build" + ("" if self.folder == _default_or_none() else f" --markdown-dir {self.folder}")
        lines.append(f"Regenerate them with `{command}` and commit the result.")
        return "\n".join(lines)


def collect(registry: Registry | None = None, samples: bool = False) -> Catalog:
    """Compute the page data of every entry, the index rows and the schema sections.

    ``samples`` runs each replica through fetch and normalize (``hooks.normalized_facts``) for
    label counts and a sample row; the Markdown mirror is always collected without them.
    """
    reg = registry if registry is not None else load_registry()
    pages = tuple(dataset_page(entry, reg, samples) for entry in reg)
    return Catalog(pages, index_rows(reg), schema_sections(reg), hooks.labels_markdown())


def site_files(catalog: Catalog) -> dict[str, bytes]:
    """Return every file of the HTML site keyed by relative path: pages, assets, Croissant, samples."""
    files = {path: text.encode("utf-8") for path, text in html.render_site(
        catalog.pages, catalog.rows, catalog.sections, catalog.labels_markdown
    ).items()}
    files.update(html.static_files())
    for page in catalog.pages:
        files[f"croissant/{page.entry.id}.json"] = croissant_text(page.croissant).encode("utf-8")
        for cfg in page.configs:
            if cfg.sample is not None and cfg.sample.thumbnail_png:
                files[f"samples/{page.entry.id}/{cfg.name}.png"] = cfg.sample.thumbnail_png
    return files


def mirror_files(catalog: Catalog) -> Mapping[str, str]:
    """Return every file of the Markdown mirror keyed by path relative to ``docs/catalog/``."""
    return markdown.render_mirror(catalog.pages, catalog.rows, catalog.sections, catalog.labels_markdown is not None)


def build_site(out_dir: Path, catalog: Catalog) -> list[str]:
    """Write the HTML site into ``out_dir`` and return the relative paths written.

    Raises:
        UsageError: ``out_dir`` holds files but was not made by ``medcat docs build``.
    """
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / SITE_MARKER).exists():
        raise UsageError(
            f"{out_dir} is not empty and was not made by `medcat docs build`; choose an empty or new folder."
        )
    files = site_files(catalog)
    _write(out_dir, files)
    old = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}
    for path in sorted(old - set(files) - {SITE_MARKER}):
        (out_dir / path).unlink()
        log.info("removed %s (no longer generated)", path)
    (out_dir / SITE_MARKER).write_text("Made by `medcat docs build`; rebuilt folders are cleaned.\n", encoding="utf-8")
    return sorted(files)


def _write(folder: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)


def _mirror_on_disk(folder: Path) -> set[str]:
    found: set[str] = set()
    for pattern in MIRROR_PATTERNS:
        found.update(p.relative_to(folder).as_posix() for p in folder.glob(pattern) if p.is_file())
    return found


def check_mirror(folder: Path, catalog: Catalog) -> MirrorDiff:
    """Compare the Markdown mirror in ``folder`` with the regenerated one, without writing anything."""
    expected = mirror_files(catalog)
    present = _mirror_on_disk(folder) if folder.is_dir() else set()
    stale = sorted(p for p in expected if p in present and (folder / p).read_text(encoding="utf-8") != expected[p])
    missing = sorted(p for p in expected if p not in present)
    extra = sorted(present - set(expected))
    return MirrorDiff(tuple(stale), tuple(missing), tuple(extra))


def write_mirror(folder: Path, catalog: Catalog) -> MirrorDiff:
    """Rewrite the Markdown mirror in ``folder``; return what changed (as the check would have said)."""
    diff = check_mirror(folder, catalog)
    expected = mirror_files(catalog)
    _write(folder, {p: t.encode("utf-8") for p, t in expected.items()})
    for path in diff.extra:
        (folder / path).unlink()
    return diff


def _default_or_none() -> Path | None:
    try:
        return default_markdown_dir()
    except UsageError:
        return None


def default_markdown_dir() -> Path:
    """Return ``docs/catalog`` of the medcat repository: the one holding this package, else one above cwd.

    Raises:
        UsageError: medcat runs from an installed wheel and cwd is not inside a medcat repository.
    """
    candidates = [Path(medcat_data.__file__).resolve().parents[2], *Path.cwd().resolve().parents]
    candidates.insert(1, Path.cwd().resolve())
    for root in candidates:
        if (root / "pyproject.toml").is_file() and (root / "src" / "medcat_data").is_dir():
            return root / DEFAULT_MARKDOWN_DIR
    raise UsageError(
        "cannot find the medcat repository (docs/catalog) from the package location or the current folder; "
        "pass --markdown-dir DIR."
    )
