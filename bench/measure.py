"""Measures shared by the benchmarks and the tests: what a reader sees of a Markdown post.

Paragraph recall compares the text blocks of a post's source HTML (``archive.html.text_blocks``)
with the plain text of the Markdown postarc wrote for it. ``mojibake`` finds text decoded with
the wrong charset.
"""

from __future__ import annotations

import html
import re

from markdown_it import MarkdownIt

from archive.html import text_blocks

# An image in Markdown, or in an HTML block the Markdown holds (tables and code Markdown cannot hold).
_MD_IMAGE_URL = re.compile(r"!\[(?:\\.|[^\]\\])*\]\(([^)\s]*)|<img\b[^>]*?\ssrc=\"([^\"]*)\"")
_RENDERER = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# What wrong decoding leaves: U+FFFD for undecodable bytes; runs of Latin-1/cp1252 letters for
# GBK or UTF-8 read as Latin-1 ("ÖÐÎÄ", "Ã©", "â€œ"); and the CJK characters that UTF-8 punctuation
# and common words turn into when read as GBK ("锛" for "，", "銆" for "。", "鈥" for curly quotes,
# "鐨" for "的") — all four all but unused in real text.
_MOJIBAKE = re.compile(
    "\ufffd"
    "|[\u00c0-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]{3,}"
    "|\u00c3[\u0080-\u00bf]|\u00e2\u20ac"
    "|[\u951b\u9286\u9225\u9428]"
)


def markdown_plain_text(markdown: str) -> str:
    """What a reader of the rendered Markdown reads (markdown-it, as ``postarc replay`` renders
    posts), whitespace-normalised, blocks joined by spaces."""
    return " ".join(text_blocks(_RENDERER.render(markdown)))


def markdown_image_urls(markdown: str) -> list[str]:
    return [md or html.unescape(tag) for md, tag in _MD_IMAGE_URL.findall(markdown)]


def mojibake(text: str) -> list[str]:
    """The stretches of ``text`` that look like wrongly decoded bytes (empty: none)."""
    return _MOJIBAKE.findall(text)
