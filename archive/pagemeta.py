"""What an article page says about itself: title, author, description, published date.

The title is the page's OpenGraph title, else its ``<title>``; author, description and site
name (and a title failing both) come from trafilatura's metadata extraction (OpenGraph,
JSON-LD, ``<meta>``, ``<title>``/``<h1>``). Published dates are looked up here,
in the order the dates pipeline trusts them, and returned as the *raw* strings the page
carries, so that ``archive.dates`` reads them with the source's zone and the catalogue
keeps what the page said. htmldate (trafilatura's date finder) comes last: it knows many
more markup conventions, but rewrites what it finds in its own format.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml.etree import XPath
from lxml.html import HtmlElement

logger = logging.getLogger(__name__)

#: Where a page date came from, most trusted first (``PageDate.origin``).
ORIGINS = ("article:published_time", "json-ld", "time", "htmldate")

_PUBLISHED_META = (
    '//meta[@property="article:published_time" or @name="article:published_time"'
    ' or @property="og:article:published_time"]/@content'
)
_LD_JSON = '//script[@type="application/ld+json"]/text()'
# A <time> marked as the publication date, else the first in the article, else the first at all.
_TIME_XPATHS = (
    '//time[@pubdate or @itemprop="datePublished"]/@datetime',
    "//article//time/@datetime",
    "//main//time/@datetime",
    "//time/@datetime",
)
# Broken JSON-LD is common (trailing commas, raw newlines); the field itself is still there.
_LD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{4,64})"')
_META_AUTHOR = '//meta[@name="author" or @property="article:author" or @name="byl"]/@content'
_OG_TITLE = '//meta[@property="og:title" or @name="og:title" or @name="twitter:title"]/@content'
_ARTICLE_H1 = XPath("//article//h1 | //main//h1")
_MAX_FIELD = 300


@dataclass(frozen=True)
class PageDate:
    raw: str  # as the page wrote it
    origin: str  # one of ORIGINS


@dataclass(frozen=True)
class PageMeta:
    title: str | None
    author: str | None
    description: str | None
    site_name: str | None
    dates: list[PageDate] = field(default_factory=list)


# trafilatura and htmldate are imported by the functions that call them: pipelines.dates imports
# this module in the crawl process, which reads a page's dates only when its feed gave none, and
# their imports cost 0.2 s in every run.


def parse_page(html: str | bytes) -> HtmlElement | None:
    """The page as an lxml tree (trafilatura's loader: decodes bytes, repairs, rejects non-HTML)."""
    import trafilatura

    try:
        return trafilatura.load_html(html)
    except (TypeError, ValueError):
        return None


def published_dates(page: str | bytes | HtmlElement | None) -> list[PageDate]:
    """Every published-date candidate of a page, most trusted first; raw strings, not parsed."""
    tree = page if isinstance(page, HtmlElement) else parse_page(page) if page else None
    if tree is None:
        return []
    found: list[PageDate] = []
    found += [PageDate(v, "article:published_time") for v in _texts(tree.xpath(_PUBLISHED_META))]
    found += [PageDate(v, "json-ld") for v in _json_ld_dates(tree)]
    for xpath in _TIME_XPATHS:
        if values := _texts(tree.xpath(xpath)):
            found.append(PageDate(values[0], "time"))
            break
    if guessed := _htmldate(tree):
        found.append(PageDate(guessed, "htmldate"))
    return found


def page_metadata(html: str | bytes, url: str | None = None) -> PageMeta:
    """Title, author, description, site name and date candidates of an article page."""
    tree = parse_page(html)
    if tree is None:
        return PageMeta(None, None, None, None)
    dates = published_dates(tree)
    import trafilatura

    try:
        doc = trafilatura.extract_metadata(tree, default_url=url, extensive=False)
    except Exception:  # noqa: BLE001 - trafilatura's heuristics must not lose the page
        logger.warning("metadata extraction failed for %s", url, exc_info=True)
        doc = None
    # trafilatura drops a <meta name=author> without a space in it ("张三"): take it as is.
    author = (doc.author if doc else None) or next(iter(_texts(tree.xpath(_META_AUTHOR))), None)
    return PageMeta(
        title=_title(tree, _short(doc.title if doc else None)) or _short(tree.findtext(".//title")),
        author=_short(author),
        description=_short(doc.description if doc else None),
        site_name=_short(doc.sitename if doc else None),
        dates=dates,
    )


def _title(tree: HtmlElement, guessed: str | None) -> str | None:
    """The page's own title for readers, OpenGraph's or <title>'s, before trafilatura's guess:
    that guess often is a site banner's <h1> ("Hi, I'm Nicolas.") or a sidebar's (agreement with
    Readability's titles 0.72 -> 0.94, bench.pages). The guess stays when it is the <title> without
    its site name ("Title" of "Title - Site") or the <h1> of the page's <article> or <main>."""
    if og := next(filter(None, map(_short, _texts(tree.xpath(_OG_TITLE)))), None):
        return og
    title = next(filter(None, map(_short, _texts(tree.xpath("//head/title/text()")))), None)
    if not title or not guessed or guessed.casefold() in title.casefold() \
            or guessed in (_short(h1.text_content()) for h1 in _ARTICLE_H1(tree)):
        return guessed or title
    return title


def _texts(values: list[Any]) -> list[str]:
    return [s for v in values if (s := str(v).strip())]


def _short(text: str | None) -> str | None:
    text = " ".join((text or "").split())
    return text[:_MAX_FIELD] or None


def _json_ld_dates(tree: HtmlElement) -> Iterator[str]:
    for script in tree.xpath(_LD_JSON):
        try:
            doc = json.loads(script, strict=False)
        except ValueError:
            yield from (m.group(1) for m in _LD_DATE.finditer(script))
            continue
        yield from _walk_dates(doc, depth=0)


def _walk_dates(node: Any, depth: int) -> Iterator[str]:
    """``datePublished`` values of a JSON-LD document (objects, lists, ``@graph``), in order."""
    if depth > 8:
        return
    if isinstance(node, dict):
        value = node.get("datePublished")
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and str(value).strip():
            yield str(value).strip()
        for child in node.values():
            if isinstance(child, (dict, list)):
                yield from _walk_dates(child, depth + 1)
    elif isinstance(node, list):
        for child in node:
            yield from _walk_dates(child, depth + 1)


def _htmldate(tree: HtmlElement) -> str | None:
    """htmldate's reading of the markup only: its text-pattern search guesses dates from any
    number on the page (a copyright line becomes 1 January), so it stays off."""
    from htmldate import find_date

    try:
        return find_date(tree, extensive_search=False, original_date=True,
                         outputformat="%Y-%m-%dT%H:%M:%S%z")
    except Exception:  # noqa: BLE001 - a heuristic must not lose the page
        return None
