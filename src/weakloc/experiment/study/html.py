"""report.md as one self-contained HTML page: the Markdown rendered by markdown-it-py (CommonMark + tables), every
image inlined as a data: URI, so the page can be mailed or archived alone and opens offline in any browser."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from ...files import write_text

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
th { background: #f2f2f2; }
img { max-width: 100%; border: 1px solid #ddd; }
code { background: #f5f5f5; padding: 0 0.2em; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ddd; margin-top: 1.6em; }
"""
IMG = re.compile(r'<img src="([^"]+)"')


def _inline(match: re.Match, folder: Path) -> str:
    src = html.unescape(match.group(1))
    path = folder / src
    if src.startswith("data:") or not path.is_file():
        return match.group(0)
    kind = "png" if path.suffix.lower() == ".png" else "jpeg"
    return f'<img src="data:image/{kind};base64,{base64.b64encode(path.read_bytes()).decode()}"'


def markdown_to_html(text: str, folder: Path, title: str) -> str:
    """A complete HTML document of the Markdown ``text``; images relative to ``folder`` inlined."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark").enable("table").render(text)
    body = IMG.sub(lambda m: _inline(m, folder), body)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n{body}</body></html>\n")


def write_html(markdown_path: Path, html_path: Path, title: str) -> Path:
    write_text(html_path, markdown_to_html(markdown_path.read_text(), markdown_path.parent, title))
    return html_path
