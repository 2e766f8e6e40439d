"""Render the catalog's HTML pages from page data with the package's Jinja2 templates.

Returns text keyed by relative path; ``build.py`` writes it. Output is deterministic (no dates,
sorted JSON) and self-contained: relative links only, CSS and JS from ``static/``, no CDN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from medcat_data.catalog.site.model import DatasetPage, IndexRow, SchemaSection
from medcat_data.catalog.site.prose import inline, markdown_to_html

STATIC_FILES = ("site.css", "filter.js", "copy.js")
_FILTERS = (("modality", "Modality", "modalities"), ("task", "Task", "tasks"), ("access", "Access", "access"), ("license", "Licence", "license"))


def _jsonld(text: str) -> Markup:
    """Make JSON safe inside ``<script>``: no ``</`` can close the element early."""
    return Markup(text.replace("</", "<\\/"))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Return the Jinja2 environment: autoescaping on, undefined names are errors."""
    env = Environment(
        loader=PackageLoader("medcat_data.catalog.site", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["prose"] = inline
    env.filters["jsonld"] = _jsonld
    return env


def static_files() -> dict[str, bytes]:
    """Return the site's static assets keyed by their path in the site."""
    folder = resources.files("medcat_data.catalog.site").joinpath("static")
    return {f"static/{name}": folder.joinpath(name).read_bytes() for name in STATIC_FILES}


def _filter_options(rows: Sequence[IndexRow]) -> list[dict[str, Any]]:
    options: list[dict[str, Any]] = []
    for key, label, field in _FILTERS:
        values: set[str] = set()
        for row in rows:
            value = row.summary[field]
            values.update(value if isinstance(value, list) else [value])
        options.append({"key": key, "label": label, "options": sorted(values)})
    return options


def render_index(rows: Sequence[IndexRow], has_labels: bool) -> str:
    """Return ``index.html``: the full table (works without JS) and the filter form."""
    template = environment().get_template("index.html.j2")
    return template.render(rows=rows, filters=_filter_options(rows), root="", has_labels=has_labels)


def render_dataset(page: DatasetPage, has_labels: bool) -> str:
    """Return ``datasets/<id>.html``."""
    template = environment().get_template("dataset.html.j2")
    return template.render(page=page, root="../", has_labels=has_labels)


def render_schemas(sections: Sequence[SchemaSection], has_labels: bool) -> str:
    """Return ``schemas.html``: the task schemas, their columns and the configs using each."""
    template = environment().get_template("schemas.html.j2")
    return template.render(schemas=sections, root="", has_labels=has_labels)


def render_labels(markdown: str) -> str:
    """Return ``labels.html`` from the Markdown of the label harmonization tables."""
    template = environment().get_template("labels.html.j2")
    return template.render(body=markdown_to_html(markdown), root="", has_labels=True)


def render_site(
    pages: Sequence[DatasetPage],
    rows: Sequence[IndexRow],
    sections: Sequence[SchemaSection],
    labels_markdown: str | None,
) -> Mapping[str, str]:
    """Return every HTML page of the site keyed by relative path."""
    has_labels = labels_markdown is not None
    out = {"index.html": render_index(rows, has_labels), "schemas.html": render_schemas(sections, has_labels)}
    if labels_markdown is not None:
        out["labels.html"] = render_labels(labels_markdown)
    for page in pages:
        out[f"datasets/{page.entry.id}.html"] = render_dataset(page, has_labels)
    return out
