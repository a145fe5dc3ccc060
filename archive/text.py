"""Plain text of titles, authors and categories: what front matter, file names and replay show.

Feeds put HTML in titles (RSS titles are HTML by usage, Atom's may be ``type="html"``) and
hostile ones put ``<script>`` there; a Hexo theme that prints a title unescaped would run it.
So these fields are text: tags gone (with what ``<script>``/``<style>`` hold), entities decoded,
invisible characters dropped, whitespace folded, length bounded.
"""

from __future__ import annotations

import html
import re

import lxml.html
from lxml import etree

#: Longest title kept (characters, the ellipsis included); authors and categories: ``NAME_MAX``.
TITLE_MAX = 200
NAME_MAX = 100
# More than this is not read at all: a title is never this long, and parsing costs time.
_READ_MAX = 64 * 1024
# What looks like markup: a tag, a comment, a doctype or a processing instruction.
_MARKUP = re.compile(r"<(?=[A-Za-z/!?])")
# C0/C1 controls, DEL, bidi overrides and isolates, zero-width and BOM characters.
_INVISIBLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACE = re.compile(r"\s+")
_DROPPED = ("script", "style", "template", "noscript")


def _strip_tags(text: str) -> str:
    """The text of an HTML fragment (lxml's lenient parser); what scripts and styles hold goes."""
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div")
    except (etree.ParserError, ValueError):
        return _MARKUP.sub("", text)
    etree.strip_elements(root, *_DROPPED, etree.Comment, etree.ProcessingInstruction, with_tail=False)
    return root.text_content()


def plain_text(value: object, limit: int = TITLE_MAX) -> str:
    """``value`` as one line of text: no tag, no entity, no control character, at most ``limit`` characters.

    Decoding an entity can make a tag (``&lt;script&gt;``, double-escaped by the feed), so tags
    and entities go in turns until none is left; a lone ``<`` followed by a space stays.
    """
    text = _INVISIBLE.sub("", str(value or "")[:_READ_MAX])
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    for _ in range(4):
        before = text
        if _MARKUP.search(text):
            text = _strip_tags(text)
        text = html.unescape(text)
        if text == before:
            break
    text = _MARKUP.sub("", text)  # still markup after four rounds: a hostile nesting
    text = _SPACE.sub(" ", _INVISIBLE.sub("", text)).strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_HIDDEN = re.compile(r"<(script|style|template|noscript|iframe|object|svg|math|head|title)\b", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")


def visible_text(html_text: str) -> str:
    """The text an HTML body shows, read without parsing it (so at any depth and size, in linear
    time): what is kept when no parser can read the body. Paragraph breaks are not kept."""
    shown, at, lower = [], 0, html_text.lower()
    while match := _HIDDEN.search(html_text, at):
        shown.append(html_text[at:match.start()])
        end = lower.find(f"</{match[1].lower()}", match.end())
        at = len(html_text) if end < 0 else end
    shown.append(html_text[at:])
    text = _TAG.sub(" ", "".join(shown))
    return _SPACE.sub(" ", _INVISIBLE.sub("", html.unescape(text))).strip()
