"""Render every vocabulary and its mapping tables as Markdown: the content of ``docs/labels.md``.

``python -m medcat_data.converters.vocab.docs > docs/labels.md`` regenerates the file; a test keeps
it in sync.
"""

from __future__ import annotations

from medcat_data.converters.vocab import ALL
from medcat_data.converters.vocab.chexpert import COLUMN_ALIASES, OBSERVATIONS, column_name


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "*(empty)*"


def render_markdown() -> str:
    """Return the Markdown of docs/labels.md (deterministic)."""
    lines = [
        "# Label vocabularies",
        "",
        "Generated from `medcat_data.converters.vocab` by "
        "`python -m medcat_data.converters.vocab.docs`; do not edit by hand.",
        "Every upstream value below maps onto exactly one label; any other value is reported in",
        "`errors.jsonl` as a sample error naming the column and the value, never guessed.",
        "",
    ]
    for vocab in ALL:
        lines += [f"## {vocab.title} (`{vocab.name}`)", "", vocab.description, ""]
        lines += ["| index | label | meaning |", "|---|---|---|"]
        for i, label in enumerate(vocab.labels):
            lines.append(f"| {i} | `{label}` | {_cell(vocab.label_notes.get(label, ''))} |")
        lines.append("")
        for source, table in vocab.mappings.items():
            lines += [f"Mapping from {source}:", "", "| upstream value | label |", "|---|---|"]
            lines += [f"| `{k}` | `{v}` |" if k else f"| *(empty)* | `{v}` |" for k, v in table.items()]
            lines.append("")
        if vocab.references:
            lines += ["References: " + "; ".join(vocab.references), ""]
        if vocab.name == "chexpert-mention":
            lines += ["Observation columns (snake_case output name for each upstream name):", ""]
            lines += ["| upstream | column |", "|---|---|"]
            lines += [f"| {o} | `{column_name(o)}` |" for o in OBSERVATIONS]
            lines += [""] + [f"Alias: `{a}` is read as `{b}`." for a, b in COLUMN_ALIASES.items()] + [""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
