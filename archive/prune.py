"""trafilatura's raw-tree prunes as tree walks: the same elements, a third of the CPU.

trafilatura (2.3) prunes the whole page, before anything else, with two lists of XPath
expressions (``RAW_TREE_PRUNE_XPATH``, ``REMOVE_COMMENTS_AND_LISTS_XPATH``). libxml2 evaluates
their ``.//*[self::div or …]`` predicates node by node and each ``re:test`` calls back into
Python, so on a 100 KB page they cost a quarter of the extraction (6 of 25 ms a post,
bench.worker). ``install()`` puts in their place walks over the same tags that test the same
regular expressions in Python: the same elements in the same (document) order, so trafilatura's
result is unchanged. It replaces only an expression whose text is the one written here; another
trafilatura's expressions stay as they are (and ``tests/test_prune.py`` fails, naming them).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml.html import HtmlElement
from trafilatura import xpaths

_ADDED = re.compile(r"mvp-post-add-(?:box|wrap)|infinite-?scroll")
_ADDED_BOX = re.compile(r"mvp-post-add-(?:box|wrap)")
_COMMENTS_ID = re.compile(r"^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)")
_COMMENTS_LIST_ID = re.compile(r"^(?:[Cc]omment(?!ary)|comol)")
_COMMENTS_CLASS = re.compile(r"^[Cc]omment(?!ary)|(?:article|post)-comments")
# Each walk first looks for a few literal strings that every id or class its expressions match
# holds ("omment" is in "[Cc]omment" and "-comments"): a substring test costs a fraction of a
# search, and most of a page's thousand elements hold none of them.


def _appended_articles(tree: HtmlElement) -> list[HtmlElement]:
    found = []
    for el in tree.iter("div", "section", "aside"):
        ident, cls = el.get("id") or "", el.get("class") or ""
        if ("infinite" in cls or "mvp-post-add-" in cls or "infinite" in ident or "mvp-post-add-" in ident) and (
                el is not tree and (_ADDED.search(ident) or _ADDED.search(cls))) and (
                el.find(".//h1") is None or _ADDED_BOX.search(ident) or _ADDED_BOX.search(cls)):
            found.append(el)
    return found


def _share_buttons(tree: HtmlElement) -> list[HtmlElement]:
    return [el for el in tree.iter("div", "section", "aside")
            if el is not tree and "elementor-share-buttons" in (el.get("class") or "")]


def _comments(tree: HtmlElement) -> list[HtmlElement]:
    found = []
    for el in tree.iter("div", "list", "section", "details", "ol", "ul"):
        ident, cls = el.get("id") or "", el.get("class") or ""
        if ("omment" in cls or ident and ("omment" in ident or "comol" in ident or "disqus_thread" in ident)) and (
                el is not tree and (_COMMENTS_ID.search(ident) or _COMMENTS_CLASS.search(cls))) and (
                el.tag not in ("ol", "ul") or _COMMENTS_LIST_ID.search(ident) or _COMMENTS_CLASS.search(cls)):
            found.append(el)
    return found


class _Walk:
    """Called as trafilatura calls an ``XPath``: ``walk(tree)`` is the list of matches."""

    def __init__(self, path: str, select: Callable[[HtmlElement], list[HtmlElement]]) -> None:
        self.path = path  # the expression it stands for
        self.select = select

    def __call__(self, tree: HtmlElement) -> list[HtmlElement]:
        return self.select(tree)


# What each walk stands for: trafilatura 2.3's expressions, as written there.
WALKS = {
    ("RAW_TREE_PRUNE_XPATH", 0): _Walk("""
        .//*[self::div or self::section or self::aside][
        re:test(@id, 'mvp-post-add-(?:box|wrap)|infinite-?scroll') or
        re:test(@class, 'mvp-post-add-(?:box|wrap)|infinite-?scroll')][
        not(.//h1) or re:test(@id, 'mvp-post-add-(?:box|wrap)') or re:test(@class, 'mvp-post-add-(?:box|wrap)')]
        """, _appended_articles),
    ("RAW_TREE_PRUNE_XPATH", 1): _Walk(
        ".//*[self::div or self::section or self::aside][contains(@class, 'elementor-share-buttons')]",
        _share_buttons),
    ("REMOVE_COMMENTS_AND_LISTS_XPATH", 0): _Walk("""
        .//*[self::div or self::list or self::section or self::details or self::ol or self::ul][
        re:test(@id, '^(?:[Cc]omment(?!ary)|comol|disqus_thread|dsq-comments)') or
        re:test(@class, '^[Cc]omment(?!ary)|(?:article|post)-comments')][
        not(self::ol or self::ul) or re:test(@id, '^(?:[Cc]omment(?!ary)|comol)') or re:test(@class, '^[Cc]omment(?!ary)|(?:article|post)-comments')]
        """, _comments),
}


def install() -> list[str]:
    """Replace each expression of ``WALKS`` that trafilatura still writes as written there (in
    its own lists, which every trafilatura module shares); returns those left as they were."""
    kept = []
    for (name, index), walk in WALKS.items():
        expressions = getattr(xpaths, name, None)
        current = expressions[index] if expressions is not None and len(expressions) > index else None
        if current is walk:
            continue
        if getattr(current, "path", None) == walk.path:
            expressions[index] = walk
        else:
            kept.append(f"{name}[{index}]")
    return kept
