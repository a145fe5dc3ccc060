"""A post's cleaned HTML as Markdown that renders as the source reads: ``to_markdown``.

The Markdown must show the same text in marked as Hexo configures it (GFM, autolinks, breaks,
smartypants), in markdown-it (CommonMark, what ``postarc replay`` uses) and on GitHub. So:
emphasis CommonMark cannot open or close where it stands (``**漏洞。**据悉``, ``END**·**``,
``**a****b**``) is written as inline ``<strong>``/``<em>``; text that would start a list, heading,
quote, fence or table is escaped; what marked autolinks (bare URLs, ``www.``, e-mail addresses)
is written as an explicit link, never with backslashes inside; line breaks are ``<br>``, so no
text starts a line where it could read as block syntax; a table Markdown cannot hold (cells
beside the header's count, spans, lists or code in cells) stays an HTML table.

Apart from ``archive.html`` so that only processes that convert (the worker pool, rebuilds)
import markdownify and BeautifulSoup (0.13 s).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import unicodedata
from collections.abc import Mapping
from typing import NamedTuple

from bs4 import BeautifulSoup, Comment, Doctype, NavigableString, Tag
from bs4.builder import HTMLTreeBuilder
from lxml import etree
from lxml.html import HtmlElement
from markdownify import (ATX, MarkdownConverter, re_all_whitespace, re_extract_newlines, re_html_heading,
                         should_remove_whitespace_inside)

from archive.html import (BLOCK_TAGS, CODE_BLANK, block_texts_of, clean_tree, mapped_url, normalise_space, parse_body,
                          tidy_markdown)

_UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")
_BACKTICKS = re.compile(r"`+")
# A "<" that CommonMark could read as raw HTML: before a letter, "/", "!" or "?", or last in its
# text (the next element's Markdown may start with a letter).
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?]|\Z)")
_CODE_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n){3,}")
# "&copy;" written as text would render as "©".
_ENTITY_LIKE = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# What starts a block when it opens a line: list items ("- ", "+ ", "1. ", "1) "), thematic
# breaks, ATX headings, quotes ("*", "_", backticks and "~" are escaped everywhere). Text never
# holds a newline (line breaks are "<br>"), so setext underlines and tables cannot start.
_BLOCK_START = re.compile(r"^(\s*)(?:([-+>]|#(?=#{0,5}(?:\s|\Z)))|(\d{1,9})(?=[.)](?:\s|\Z)))")
# What marked (GFM) autolinks in text: its url and email rules (marked's src/rules.ts).
_AUTOLINK = re.compile(
    r"(?:(?:https?|ftp)://|www\.)(?:[a-zA-Z0-9\-]+\.?)+[^\s<]*"
    r"|[A-Za-z0-9._+-]+@[a-zA-Z0-9_-]+(?:\.[a-zA-Z0-9_-]*[a-zA-Z0-9])+(?![-_])")
# marked's _backpedal: trailing punctuation is not part of an autolinked URL.
_BACKPEDAL = re.compile(r"(?:[^?!.,:;*_'\"~()&]+|\([^)]*\)|&(?![a-zA-Z0-9]+;$)|[?!.,:;*_'\"~)]+(?!$))+")
_EMAIL = re.compile(r"[A-Za-z0-9._+-]+@")
# What CommonMark reads as an e-mail autolink <…> (its spec, 6.5).
_COMMONMARK_EMAIL = re.compile(r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                               r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\Z")
# What a CommonMark autolink <…> may hold.
_AUTOLINK_SAFE = re.compile(r"[^\s<>\x00-\x1f]+\Z")
_EMPHASIS = {"b": "**", "strong": "**", "em": "*", "i": "*", "del": "~~", "s": "~~", "strike": "~~"}
_HTML_OF = {"b": "strong", "strong": "strong", "em": "em", "i": "em", "del": "del", "s": "del", "strike": "del"}
_HEADINGS = frozenset(f"h{n}" for n in range(1, 7))
# Elements that make a table cell more than one line of inline Markdown.
_CELL_BLOCKS = ["p", "div", "ul", "ol", "pre", "table", "blockquote", "hr", "dl", *sorted(_HEADINGS)]
# Markup a fenced code block can stand for: text styles, which code shows plainly.
_CODE_INLINE = frozenset({"br", "code", "span", "b", "strong", "i", "em", "u", "s", "small", "sub", "sup", "kbd",
                          "samp", "var", "mark", "font", "tt"})
_EDGE_SPACE = re.compile(r"^((?:\s|<br>)*)(.*?)((?:\s|<br>)*)\Z", re.DOTALL)
_BLANK_LINE = re.compile(r"\n(?=[ \t]*\n)")


def to_markdown(html: str, base_url: str | None = None, image_map: Mapping[str, str] | None = None, *,
                cleaned: bool = False) -> str:
    """GitHub-flavoured Markdown of the cleaned fragment; ``image_map`` relinks images.

    ``cleaned``: ``html`` is already what ``archive.html.clean_fragment`` made of a body (what
    the worker pool renders), so it is only parsed: cleaning it again changes nothing.
    """
    body = parse_body(html) if cleaned else clean_tree(html, base_url)
    if body is None:
        return ""
    try:
        soup = BeautifulSoup("", builder=_LxmlTreeBuilder(body))
        markdown = PostConverter(image_map or {}).convert_soup(soup)
    except RecursionError:
        # markdownify recurses once per nesting level; soup nested hundreds deep keeps its text.
        markdown = "\n\n".join(text for text in map(normalise_space, block_texts_of(body)) if text)
    return tidy_markdown(markdown)


class _LxmlTreeBuilder(HTMLTreeBuilder):
    """BeautifulSoup's tree made from an lxml tree, as it stands: no second parse of serialized
    HTML (by libxml2, which reads some HTML5 trees differently), and faster."""

    NAME = "postarc-lxml-tree"
    features = [NAME]

    def __init__(self, root: HtmlElement) -> None:
        super().__init__()
        self.root = root

    def prepare_markup(self, markup, user_specified_encoding=None, document_declared_encoding=None,
                       exclude_encodings=None):  # noqa: ANN001, ANN201 - bs4's signature
        yield markup, None, None, False

    def feed(self, markup: str) -> None:
        # The tree bs4's handle_starttag/handle_data/handle_endtag make, at a third of their cost:
        # they take a parser's events (searching the open tags, gathering text), where this tree
        # is nested already, so each node is made and linked into place as they would link it.
        soup, root = self.soup, self.root
        containers, keep_space = self.string_containers, self.preserve_whitespace_tags
        # The open elements: (tag, the class of the strings in it, whether it keeps blank strings).
        open_tags: list[tuple[Tag, type[NavigableString], bool]] = [(soup, NavigableString, False)]
        last, text = None, []  # the node made last (document order); text not yet a string
        # Each of lxml's el.tag, el.text, el.tail makes a new str: read once.
        for event, el in etree.iterwalk(root, events=("start", "end")):
            name = el.tag
            if not isinstance(name, str):  # comments, processing instructions: their tails join the text
                if event == "end" and (tail := el.tail):
                    text.append(tail)
                continue
            if text:
                last = self._string("".join(text), *open_tags[-1], last)
                text = []
            if event == "start":
                parent, strings, keep = open_tags[-1]
                last = Tag(soup, self, name, None, None, dict(el.items()), parent, last)
                parent.contents.append(last)
                open_tags.append((last, containers.get(name, strings), keep or name in keep_space))
                if inner := el.text:
                    text.append(inner)
            else:
                open_tags.pop()
                if el is not root and (tail := el.tail):
                    text.append(tail)

    def _string(self, text: str, parent: Tag, string_class: type[NavigableString], keep: bool,
                previous: Tag | NavigableString | None) -> NavigableString:
        if not keep and not text.strip(self.soup.ASCII_SPACES):
            text = "\n" if "\n" in text else " "  # as bs4 writes blank text outside <pre>, <textarea>
        string = string_class(text)
        string.setup(parent, previous)
        parent.contents.append(string)
        return string


class PostConverter(MarkdownConverter):
    """markdownify, plus what the module docstring lists: images everywhere and relinked, safe
    code fences, pipes in cells, paragraph breaks for the ``<br>``s feeds use between paragraphs."""

    def __init__(self, image_map: Mapping[str, str]) -> None:
        # What markdownify's __init__ sets, without reading its option classes again (dir() of
        # each, for every post: 3 % of a post's conversion). The options are only read.
        self.options = _options()
        self.convert_fn_cache: dict[str, object] = {}
        self.image_map = image_map

    # --- markdownify's walk ------------------------------------------------------------------------

    def process_tag(self, node: Tag, parent_tags: set[str] | None = None) -> str:
        # markdownify's process_tag step for step, but what it asks of every child and sibling
        # several times (is it a block?) is looked up by tag name, and "inside a <pre>?" is read
        # from parent_tags, which names every ancestor (as its process_text reads it), instead of
        # a walk up to the root: half a post's conversion went into those questions.
        if parent_tags is None:
            parent_tags = set()
        name = node.name
        trims_inside = _trims_inside(name)
        children = []
        for el in node.children:
            if isinstance(el, NavigableString):
                if isinstance(el, (Comment, Doctype)):
                    continue
                if not el.strip():  # blank text beside a block, or at a block's edge, goes
                    previous, following = el.previous_sibling, el.next_sibling
                    if ((trims_inside and (not previous or not following)) or _trims_outside(previous)
                            or _trims_outside(following)):
                        continue
            children.append(el)
        tags = set(parent_tags)
        tags.add(name)
        if re_html_heading.match(name) is not None or name in ("td", "th"):
            tags.add("_inline")
        if name in ("pre", "code", "kbd", "samp"):
            tags.add("_noformat")
        strings = [text for text in (self.process_element(el, tags) for el in children) if text]
        if name != "pre" and "pre" not in parent_tags:
            # Newlines at the children's edges collapse, to two at most.
            collapsed = [""]
            for text in strings:
                if text[0] != "\n" and text[-1] != "\n":  # none to collapse (no regex needed)
                    collapsed += (text, "")
                    continue
                leading, content, trailing = re_extract_newlines.match(text).groups()
                if collapsed[-1] and leading:
                    leading = "\n" * min(2, max(len(collapsed.pop()), len(leading)))
                collapsed += (leading, content, trailing)
            strings = collapsed
        text = "".join(strings)
        convert = self.get_conv_fn_cached(name)
        return text if convert is None else convert(node, text, parent_tags=parent_tags)

    def process_text(self, el: NavigableString, parent_tags: set[str] | None = None) -> str:
        # markdownify's process_text (with wrap on, as _options sets it), its block tests by name.
        if parent_tags is None:
            parent_tags = set()
        text = str(el)
        if "pre" not in parent_tags:
            text = re_all_whitespace.sub(" ", text)
        if "_noformat" not in parent_tags:
            text = self.escape(text, parent_tags)
        in_block = el.parent is not None and _trims_inside(el.parent.name)
        previous, following = el.previous_sibling, el.next_sibling
        if _trims_outside(previous) or (in_block and not previous):
            text = text.lstrip(" \t\r\n")
        if _trims_outside(following) or (in_block and not following):
            text = text.rstrip()
        return text

    # --- text ------------------------------------------------------------------------------------

    def escape(self, text: str, parent_tags: set[str]) -> str:
        # Text is text to every Markdown renderer (Hexo, the replay): a post quoting "<script>"
        # or "[x](javascript:…)" (or a hostile one) must show it, not make a live tag or link of
        # it. What marked would autolink is written as a link itself: no escape may fall inside.
        if not text:
            return ""
        if "://" not in text and "www." not in text and "@" not in text:  # every _AUTOLINK match holds one
            return self._escape_plain(text, parent_tags, True)
        out, pos = [], 0
        for match in _AUTOLINK.finditer(text):
            link = _backpedal(match.group())
            if not link or match.start() < pos:
                continue
            out.append(self._escape_plain(text[pos:match.start()], parent_tags, pos == 0))
            out.append(self._autolink(link, parent_tags))
            pos = match.start() + len(link)
        out.append(self._escape_plain(text[pos:], parent_tags, pos == 0))
        return "".join(out)

    def _escape_plain(self, text: str, parent_tags: set[str], at_start: bool) -> str:
        if not text:
            return ""
        text = text.replace("\\", "\\\\")  # doubled, a backslash shows, whatever comes to follow it
        text = super().escape(text, parent_tags)
        text = text.replace("[", r"\[").replace("]", r"\]").replace("`", r"\`").replace("~", r"\~")
        if "<" in text:  # each regex only where what it escapes is there (most text has neither)
            text = _TAG_OPEN.sub(r"\\<", text)
        if "&" in text:
            text = _ENTITY_LIKE.sub(r"\\&", text)
        if at_start:
            # Any text may open a line of Markdown (first in a paragraph, a list item, a cell).
            text = _BLOCK_START.sub(_escape_block_start, text, count=1)
        return text

    def _autolink(self, link: str, parent_tags: set[str]) -> str:
        if "a" in parent_tags:
            # No link in a link. marked autolinks a link's text after an image in it: an empty
            # comment (shown by no renderer) after the first character keeps it from matching.
            return f"{link[0]}<!-- -->{self._escape_plain(link[1:], parent_tags, False)}"
        if _EMAIL.match(link):
            if _COMMONMARK_EMAIL.match(link):
                return f"<{link}>"
            return f"[{self._escape_plain(link, parent_tags | {'a'}, False)}]({_markdown_url('mailto:' + link)})"
        if link.lower().startswith("www."):
            return f"[{self._escape_plain(link, parent_tags | {'a'}, False)}]({_markdown_url('http://' + link)})"
        if _AUTOLINK_SAFE.match(link):
            return f"<{link}>"
        return f"[{self._escape_plain(link, parent_tags | {'a'}, False)}]({_markdown_url(link)})"

    # --- inline ----------------------------------------------------------------------------------

    def _emphasis(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        """``**text**`` where CommonMark reads it as emphasis there, else ``<strong>text</strong>``."""
        if "_noformat" in parent_tags:
            return text
        prefix, text, suffix = _EDGE_SPACE.match(text).groups()
        prefix, suffix = _edge(prefix), _edge(suffix)
        if not text:
            return prefix or suffix
        markup = _EMPHASIS[el.name]
        if markup == "~~":  # marked also reads single "~" runs, markdown-it only pairs: <del> for all
            return f"{prefix}<del>{text}</del>{suffix}"
        before = " " if prefix else _char_beside(el, before=True)
        after = " " if suffix else _char_beside(el, before=False)
        # Beside another run of its character the delimiters would merge ("**a****b**"); runs of
        # it inside (nested emphasis: text's own are escaped) pair up in ways renderers differ on.
        nested = re.search(r"(?<!\\)" + re.escape(markup[0]), text)
        if (not nested and markup[0] not in (before, after) and _can_open(before, text[0])
                and _can_close(text[-1], after)):
            return f"{prefix}{markup}{text}{markup}{suffix}"
        tag = _HTML_OF[el.name]
        return f"{prefix}<{tag}>{text}</{tag}>{suffix}"

    convert_b = convert_strong = convert_em = convert_i = convert_del = convert_s = convert_strike = _emphasis

    def convert_a(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # markdownify writes the href as is: a ")" in it would end the link early and what
        # follows would be read as Markdown ("…/a)<script>" made a live tag).
        if "_noformat" in parent_tags:
            return text
        prefix, text, suffix = _EDGE_SPACE.match(text).groups()
        prefix, suffix = _edge(prefix), _edge(suffix)
        href = el.get("href")
        if not text or not href:
            return prefix + text + suffix
        title = normalise_space(el.get("title") or "").replace('"', r"\"")
        return f'{prefix}[{text}]({_markdown_url(href)}{f" {chr(34)}{title}{chr(34)}" if title else ""}){suffix}'

    def convert_img(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # markdownify keeps only the alt text inside headings and table cells: we keep images.
        alt = normalise_space(el.get("alt") or "").replace("\\", "\\\\").replace("[", r"\[").replace("]", r"\]")
        url = _markdown_url(mapped_url(el.get("src") or "", self.image_map))
        title = normalise_space(el.get("title") or "").replace('"', r"\"")
        return f'![{alt}]({url} "{title}")' if title else f"![{alt}]({url})"

    def convert_br(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # "<br>", not "\" + newline: no text after it starts a line (where "- x" would be a list
        # item), it ends no paragraph as a stray "\", and it works in headings and table cells.
        if not (parent_tags & (_HEADINGS | {"td", "th"})) and _is_paragraph_break(el):
            return "\n\n"
        return "<br>"

    def convert_code(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        if "_noformat" in parent_tags and "pre" in parent_tags:
            return text
        beside = (_char_beside(el, before=True), _char_beside(el, before=False))
        if "`" in beside or any(isinstance(child, Tag) for child in el.descendants):
            # Markup inside (an image, a link, a line break): a code span would show it as text.
            # Beside a backtick (another code span), the backtick runs would merge. And marked
            # reads what follows an inline <code> tag raw (escapes shown): the content, plain.
            return self.process_children(el, parent_tags)
        prefix, text, suffix = _EDGE_SPACE.match(text).groups()
        if not text:
            return _edge(prefix) or _edge(suffix)
        longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
        ticks = "`" * (longest + 1)
        pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
        return f"{_edge(prefix)}{ticks}{pad}{text}{pad}{ticks}{_edge(suffix)}"

    convert_kbd = convert_samp = convert_code

    def process_children(self, el: Tag, parent_tags: set[str]) -> str:
        """The children of ``el`` converted as ordinary (escaped, formatted) content."""
        tags = (parent_tags | {el.name}) - {"_noformat"}
        return "".join(self.process_element(child, tags) for child in el.children)

    # --- blocks ----------------------------------------------------------------------------------

    def convert_hN(self, n: int, el: Tag, text: str, parent_tags: set[str]) -> str:
        text = text.strip()
        if text.endswith("#") and not text.endswith("\\#"):  # would be read as the closing sequence
            text = text[:-1] + "\\#"
        return super().convert_hN(n, el, text, parent_tags)

    def convert_dt(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        # markdownify writes Pandoc's definition lists (": text"), which CommonMark shows as is.
        return self.convert_p(el, text, parent_tags)

    convert_dd = convert_dt

    def convert_pre(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        if any(isinstance(child, Tag) and child.name not in _CODE_INLINE for child in el.descendants):
            # An image, a link or a block inside (``List<Header>`` opens a <header>): a fence would
            # show their Markdown as code, or join lines a browser breaks. A <pre> HTML block ends
            # only at "</pre>", blank lines and all.
            return "\n\n" + self._html(el) + "\n\n"
        code = text.strip("\n")
        if not code.strip():
            return ""
        longest = max((len(run) for run in _BACKTICKS.findall(code)), default=0)
        fence = "`" * max(3, longest + 1)
        lines = _CODE_BLANK_RUN.sub("\n\n\n", code).split("\n")
        code = "\n".join(line if line.strip() else CODE_BLANK for line in lines)
        return f"\n\n{fence}\n{code}\n{fence}\n\n"

    def convert_table(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        if _fits_markdown(el):
            return super().convert_table(el, text, parent_tags)
        # One HTML block: a blank line would end it (a newline before one becomes a reference).
        return "\n\n" + _BLANK_LINE.sub("&#10;", self._html(el)) + "\n\n"

    def _html(self, el: Tag) -> str:
        """``el`` as HTML, its images relinked."""
        for img in el.find_all("img"):
            img["src"] = mapped_url(img.get("src") or "", self.image_map)
        return str(el)

    def convert_td(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return super().convert_td(el, _UNESCAPED_PIPE.sub(r"\\|", text), parent_tags)

    def convert_th(self, el: Tag, text: str, parent_tags: set[str]) -> str:
        return super().convert_th(el, _UNESCAPED_PIPE.sub(r"\\|", text), parent_tags)


@functools.cache
def _options() -> dict[str, object]:
    # wrap without a width: whitespace in text (newlines too) becomes one space, as a browser
    # shows it; a newline left in would be a line break in Hexo (marked's breaks: true).
    return MarkdownConverter(heading_style=ATX, bullets="-", table_infer_header=True, wrap=True,
                             wrap_width=None).options


class _Named(NamedTuple):
    name: str


@functools.lru_cache(maxsize=1024)
def _trims_inside(name: str) -> bool:
    """markdownify's should_remove_whitespace_inside of a tag, which reads only its name."""
    return should_remove_whitespace_inside(_Named(name))


def _trims_outside(node: Tag | NavigableString | None) -> bool:
    """markdownify's should_remove_whitespace_outside: a tag that trims inside, or a <pre>
    (text and no node at all never do)."""
    return isinstance(node, Tag) and (_trims_inside(node.name) or node.name == "pre")


def _escape_block_start(match: re.Match[str]) -> str:
    space, mark, digits = match.groups()
    return f"{space}{digits}\\" if digits else f"{space}\\{mark}"


def _backpedal(link: str) -> str:
    while True:
        match = _BACKPEDAL.match(link)
        shorter = match.group() if match else ""
        if shorter == link:
            return link
        link = shorter


def _edge(space: str) -> str:
    """What stays of whitespace moved out of an inline element: a line break, or one space."""
    return "<br>" if "<br>" in space else " " if space else ""


# --- CommonMark's flanking rules ------------------------------------------------------------------


def _kind(char: str) -> str:
    """"space", "punct" or "other", as CommonMark classes the character beside a delimiter run.

    Unicode symbols count as punctuation in CommonMark 0.31 but not in older renderers: they
    come back as "either", and emphasis next to them is written in HTML.
    """
    if not char or char.isspace():
        return "space"
    category = unicodedata.category(char)
    if category.startswith("P") or (char.isascii() and not char.isalnum()):
        return "punct"
    return "either" if category.startswith("S") else "other"


def _can_open(before: str, first: str) -> bool:
    inner, outer = _kind(first), _kind(before)
    # marked (GFM) does not count "~" as punctuation beside "*" runs as CommonMark does.
    if inner in ("space", "either") or first in "*_~" or before == "~":
        return False
    return inner == "other" or outer in ("space", "punct")


def _can_close(last: str, after: str) -> bool:
    inner, outer = _kind(last), _kind(after)
    if inner in ("space", "either") or last in "*_~" or after == "~":
        return False
    return inner == "other" or outer in ("space", "punct")


def _char_beside(el: Tag, before: bool) -> str:
    """The character the Markdown next to ``el`` (before it, or after it) ends or starts with, as
    far as it can be told from the tree; another emphasis right there counts as its delimiter
    ("*", "~"), which would merge with ours."""
    node = el
    while True:
        sibling = node.previous_sibling if before else node.next_sibling
        while isinstance(sibling, NavigableString) and not str(sibling):
            sibling = sibling.previous_sibling if before else sibling.next_sibling
        if sibling is None:
            node = node.parent
            if node is None or node.name in BLOCK_TAGS or node.name in ("[document]", "td", "th"):
                return " "
            if node.name in _EMPHASIS:
                return _EMPHASIS[node.name][0]
            if node.name == "a":
                return "[" if before else "]"
            continue
        return _edge_char(sibling, last=before)


def _edge_char(node: Tag | NavigableString, last: bool) -> str:
    if isinstance(node, NavigableString):
        text = str(node)
        return text[-1] if last else text[0]
    if node.name in _EMPHASIS:
        return _EMPHASIS[node.name][0]
    if node.name in BLOCK_TAGS or node.name == "br":
        return " "
    if node.name == "a" and node.get("href"):
        return ")" if last else "["
    if node.name == "img":
        return ")" if last else "!"
    if node.name in ("code", "kbd", "samp"):
        # A code span, unless markup inside makes it plain text: then a letter, the safe guess.
        return "a" if node.find(True) is not None else "`"
    # Another inline element (<span>, <u>…): its Markdown starts or ends with its first or last
    # child's ("<span><em>a</em></span>" starts with "*"), not with its text's first character.
    children = [child for child in node.children
                if not isinstance(child, (Comment, Doctype)) and not (isinstance(child, NavigableString) and not child)]
    if not children:
        return "*"  # empty: unknown, be careful
    return _edge_char(children[-1] if last else children[0], last)


def _fits_markdown(table: Tag) -> bool:
    """A GFM table holds it: every row as many cells as the first, no spans, one line per cell."""
    rows = [row for row in table.find_all("tr") if row.find_parent("table") is table]
    if not rows:
        return True
    widths = set()
    for row in rows:
        cells = row.find_all(["td", "th"], recursive=False)
        for cell in cells:
            if cell.get("colspan", "1") != "1" or cell.get("rowspan", "1") != "1":
                return False
            if cell.find(_CELL_BLOCKS) is not None:
                return False
        widths.add(len(cells))
    return len(widths) == 1


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
    return (url.replace("\\", "%5C").replace(" ", "%20").replace("(", "%28").replace(")", "%29")
            .replace("<", "%3C").replace(">", "%3E"))


# markdownify's methods PostConverter.process_tag and process_text follow step for step, by the
# sha256 of their source as markdownify 1.2 writes them. Another markdownify's methods are kept
# as they are (slower, never wrong), and tests/test_html.py fails, naming them.
MIRRORED = {"process_tag": "0e55145576ffbd45", "process_text": "2326ab83ecd4ffcb"}


def mirrors_markdownify(name: str) -> bool:
    source = inspect.getsource(getattr(MarkdownConverter, name))
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16] == MIRRORED[name]


for _name in MIRRORED:
    if not mirrors_markdownify(_name):
        delattr(PostConverter, _name)
del _name
