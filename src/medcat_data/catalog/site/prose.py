"""Render the small Markdown subset of medcat's generated docs and registry text as safe HTML.

Handles what ``docs/labels.md`` and registry descriptions use: ``#`` headings, paragraphs, ``-``
lists, pipe tables, `` `code` ``, ``*emphasis*``, ``**strong**`` and bare ``http(s)`` URLs. Every
input character is HTML-escaped before any markup is added, so registry text cannot inject HTML.
"""

from __future__ import annotations

import html
import re

from markupsafe import Markup

_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")
_EM = re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])")
_URL = re.compile(r"https?://[^\s<>()\"']+[^\s<>()\"'.,;:]")
_BULLET = re.compile(r"^\s*[-*]\s+")
_TABLE_SEP = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def slug(text: str) -> str:
    """Return a lower-case, hyphenated anchor for a heading."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def inline(text: str) -> Markup:
    """Return one line of text as HTML: escaped, with code spans, emphasis and links."""
    parts = _CODE.split(text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"<code>{html.escape(part, quote=False)}</code>")
            continue
        escaped = html.escape(part, quote=False)
        escaped = _URL.sub(lambda m: f'<a href="{html.escape(html.unescape(m.group(0)))}">{m.group(0)}</a>', escaped)
        escaped = _STRONG.sub(r"<strong>\1</strong>", escaped)
        escaped = _EM.sub(r"<em>\1</em>", escaped)
        out.append(escaped)
    return Markup("".join(out))


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def markdown_to_html(text: str, heading_offset: int = 0) -> Markup:
    """Convert Markdown (the subset above) to HTML; ``heading_offset`` demotes headings (1: ``#`` -> h2)."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", line)
        if heading:
            level = min(6, len(heading.group(1)) + heading_offset)
            title = heading.group(2).strip()
            out.append(f'<h{level} id="{slug(title)}">{inline(title)}</h{level}>')
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and _TABLE_SEP.match(lines[i + 1].strip()):
            i = _table(lines, i, out)
        elif _BULLET.match(line):
            items = []
            while i < len(lines) and _BULLET.match(lines[i]):
                items.append(f"<li>{inline(_BULLET.sub('', lines[i]))}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not _starts_block(lines, i):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{inline(' '.join(para))}</p>")
    return Markup("\n".join(out) + "\n")


def _starts_block(lines: list[str], i: int) -> bool:
    line = lines[i]
    if re.match(r"^(#{1,6})\s+", line) or _BULLET.match(line):
        return True
    return line.lstrip().startswith("|") and i + 1 < len(lines) and bool(_TABLE_SEP.match(lines[i + 1].strip()))


def _table(lines: list[str], i: int, out: list[str]) -> int:
    header = _split_row(lines[i])
    rows = []
    i += 2
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        rows.append(_split_row(lines[i]))
        i += 1
    head = "".join(f"<th>{inline(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in rows)
    out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return i
