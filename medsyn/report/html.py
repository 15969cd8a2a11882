"""A self-contained report.html from the Markdown the report writers produce (no network, no external files).

Handles the subset of Markdown medsyn's reports use: ``#``-``###`` headings, pipe tables, ``- `` bullet lists,
images ``![caption](relative/path.png)`` (read from ``base_dir`` and embedded as base64 data URIs), ``**bold**``
and ```code``` spans, and paragraphs. All text is HTML-escaped. A missing image is an error naming the file,
since a report that silently drops a figure would look complete.
"""

from __future__ import annotations

import base64
import html
import mimetypes
import os
import re
from pathlib import Path

__all__ = ["embed_image", "markdown_to_html"]

_IMAGE = re.compile(r"^!\[(?P<alt>[^\]]*)\]\((?P<path>[^)]+)\)$")
_STYLE = """
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.5em; text-align: left; }
th { background: #eee; }
img { max-width: 100%; }
code { background: #f3f3f3; padding: 0 0.2em; }
"""


def embed_image(path: str | os.PathLike) -> str:
    """``data:`` URI of an image file (its bytes base64-encoded)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"report image not found: {path}")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _inline(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def markdown_to_html(markdown: str, *, base_dir: str | os.PathLike, title: str) -> str:
    """Markdown text -> a complete HTML document; image paths are relative to ``base_dir``."""
    base = Path(base_dir)
    lines = markdown.splitlines()
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{html.escape(title)}</title>",
           f"<style>{_STYLE}</style></head><body>"]
    index = 0
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped:
            index += 1
            continue
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        image = _IMAGE.match(stripped)
        if heading:
            level = len(heading.group(1))
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
            index += 1
        elif image:
            out.append(f"<figure><img alt=\"{html.escape(image.group('alt'))}\" "
                       f"src=\"{embed_image(base / image.group('path'))}\">"
                       f"<figcaption>{_inline(image.group('alt'))}</figcaption></figure>")
            index += 1
        elif stripped.startswith("|"):
            block = []
            while index < len(lines) and lines[index].strip().startswith("|"):
                block.append(lines[index])
                index += 1
            header, body = _cells(block[0]), [row for row in block[1:] if not re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*", row.strip())]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in header) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(row)) + "</tr>" for row in body]
            out.append("</tbody></table>")
        elif stripped.startswith("- "):
            out.append("<ul>")
            while index < len(lines) and lines[index].strip().startswith("- "):
                out.append(f"<li>{_inline(lines[index].strip()[2:])}</li>")
                index += 1
            out.append("</ul>")
        else:
            paragraph = []
            while index < len(lines) and lines[index].strip() and not re.match(r"^(#|\||- |!\[)", lines[index].strip()):
                paragraph.append(lines[index].strip())
                index += 1
            out.append(f"<p>{_inline(' '.join(paragraph))}</p>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
