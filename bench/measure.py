"""Measures shared by the benchmarks and the tests: what a reader sees of a Markdown post.

Paragraph recall compares the text blocks of a post's source HTML (``archive.html.text_blocks``)
with the plain text of the Markdown postarc wrote for it. ``mojibake`` finds text decoded with
the wrong charset.
"""

from __future__ import annotations

import re

_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE = re.compile(r'!\[(?:\\.|[^\]\\])*\]\([^)\s]*(?:\s+"(?:\\.|[^"\\])*")?\)')
_LINK = re.compile(r'\[((?:\\.|[^\]\\])*)\]\([^)\s]*(?:\s+"(?:\\.|[^"\\])*")?\)')
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_QUOTE_PREFIX = re.compile(r"^\s*(?:>\s?)*")
_TABLE_ROW = re.compile(r"^\|.*\|$")
_TABLE_RULE = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+$")
_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_MD_IMAGE_URL = re.compile(r"!\[(?:\\.|[^\]\\])*\]\(([^)\s]*)")
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


def _plain_inline(text: str, table_row: bool) -> str:
    """Markup of one line outside code spans: images, links, emphasis, escapes, cell pipes."""
    text = _IMAGE.sub(" ", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = re.sub(r"(?<!\\)\*+", "", text)
    if table_row:
        text = re.sub(r"(?<!\\)\|", " ", text)
    return _ESCAPE.sub(r"\1", text.removesuffix("\\"))


def markdown_plain_text(markdown: str) -> str:
    """What a reader of the rendered Markdown reads, whitespace-normalised; code kept verbatim.

    Heading and list markers may stay: blocks are looked up as substrings. Quote markers go,
    as they would split a block that spans several lines.
    """
    out: list[str] = []
    fence = ""
    for line in markdown.splitlines():
        stripped = _QUOTE_PREFIX.sub("", line)
        if fence:
            if stripped.startswith(fence) and not stripped.strip("`"):
                fence = ""
            else:
                out.append(line)
            continue
        if stripped.startswith("```"):
            fence = stripped
            continue
        if _TABLE_RULE.match(stripped):
            continue
        parts = _CODE_SPAN.split(stripped)
        plain = [
            _plain_inline(part, bool(_TABLE_ROW.match(stripped))) if i % 3 == 0 else part if i % 3 == 2 else ""
            for i, part in enumerate(parts)
        ]
        out.append("".join(plain))
    return " ".join(" ".join(out).split())


def markdown_image_urls(markdown: str) -> list[str]:
    return _MD_IMAGE_URL.findall(markdown)


def mojibake(text: str) -> list[str]:
    """The stretches of ``text`` that look like wrongly decoded bytes (empty: none)."""
    return _MOJIBAKE.findall(text)
