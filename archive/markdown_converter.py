"""markdownify as postarc needs it: the converter ``archive.html.to_markdown`` runs.

Apart from ``archive.html`` so that only processes that convert (the worker pool, rebuilds)
import markdownify and BeautifulSoup.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bs4 import NavigableString, Tag
from markdownify import ATX, BACKSLASH, MarkdownConverter

from archive.html import BLOCK_TAGS, CODE_BLANK, mapped_url, normalise_space

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_BACKTICKS = re.compile(r"`+")
# A "<" that CommonMark could read as raw HTML: before a letter, "/", "!" or "?", or last in its
# text (the next element's Markdown may start with a letter).
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?]|\Z)")
_CODE_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){3,}")


class PostConverter(MarkdownConverter):
    """markdownify, plus: images everywhere and relinked, safe code fences, pipes in cells,
    and paragraph breaks for the ``<br>``s that feeds use between paragraphs."""

    def __init__(self, image_map: Mapping[str, str]) -> None:
        super().__init__(heading_style=ATX, bullets="-", newline_style=BACKSLASH, table_infer_header=True,
                         bs4_options="lxml")
        self.image_map = image_map

    def escape(self, text: str, parent_tags: set[str]) -> str:
        # Text is text to every Markdown renderer (Hexo, the replay): a post quoting "<script>"
        # or "[x](javascript:…)" (or a hostile one) must show it, not make a live tag or link of
        # it. "\<", "\[" and "\]" show the character; a "<" that cannot open a tag ("a < b") stays.
        text = super().escape(text, parent_tags).replace("[", r"\[").replace("]", r"\]")
        return _TAG_OPEN.sub(r"\\<", text)

    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # markdownify writes the href as is: a ")" in it would end the link early and what
        # follows would be read as Markdown ("…/a)<script>" made a live tag).
        if el.get("href"):
            el["href"] = _markdown_url(el["href"])
        return super().convert_a(el, text, parent_tags)

    def convert_img(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # markdownify keeps only the alt text inside headings and table cells: we keep images.
        alt = normalise_space(el.get("alt") or "").replace("[", r"\[").replace("]", r"\]")
        url = _markdown_url(mapped_url(el.get("src") or "", self.image_map))
        title = normalise_space(el.get("title") or "").replace('"', r"\"")
        return f'![{alt}]({url} "{title}")' if title else f"![{alt}]({url})"

    def convert_br(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        if "_inline" not in parent_tags and _is_paragraph_break(el):
            return "\n\n"
        return super().convert_br(el, text, parent_tags)

    def convert_pre(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        code = text.strip("\n")
        if not code.strip():
            return ""
        longest = max((len(run) for run in _BACKTICKS.findall(code)), default=0)
        fence = "`" * max(3, longest + 1)
        lines = _CODE_BLANK_RUN.sub("\n\n\n", code).split("\n")
        code = "\n".join(line if line.strip() else CODE_BLANK for line in lines)
        return f"\n\n{fence}\n{code}\n{fence}\n\n"

    def convert_td(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return super().convert_td(el, _UNESCAPED_PIPE.sub(r"\\|", text), parent_tags)

    def convert_th(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return super().convert_th(el, _UNESCAPED_PIPE.sub(r"\\|", text), parent_tags)


def _is_paragraph_break(br: Tag) -> bool:
    """In a block, a <br> beside another <br> or a block, or at the block's edge, separates
    paragraphs (feeds write '<br><br>' for them); inside inline markup it stays a line break."""
    if br.parent is not None and br.parent.name not in BLOCK_TAGS:
        return False
    neighbours = (_content_sibling(br, "previous_sibling"), _content_sibling(br, "next_sibling"))
    return any(n is None or (isinstance(n, Tag) and (n.name == "br" or n.name in BLOCK_TAGS)) for n in neighbours)


def _content_sibling(el: Tag, direction: str) -> Tag | NavigableString | None:
    sibling = getattr(el, direction)
    while isinstance(sibling, NavigableString) and not sibling.strip():
        sibling = getattr(sibling, direction)
    return sibling


def _markdown_url(url: str) -> str:
    """Spaces and parentheses would end a Markdown link destination early."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
