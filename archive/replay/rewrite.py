"""Archived HTML and CSS with every link pointing back into the archive.

A link ``L`` in a page captured at ``T`` becomes ``/web/T/<absolute L>``: the replay serves the
capture of ``L`` nearest ``T``, so pages, images and stylesheets come from the archive and
nothing is fetched from the live web. lxml's ``rewrite_links`` finds the links (attributes,
``url()`` in styles, ``<meta http-equiv=refresh>``); ``srcset`` and the lazy-loading attributes
it does not know are handled here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, urljoin, urlsplit

import lxml.html
from lxml import etree
from w3lib.encoding import html_to_unicode

HTTP_SCHEMES = ("http", "https")
# Attributes lxml's iterlinks() leaves alone but browsers (or lazy-loading scripts) load.
EXTRA_URL_ATTRS = ("poster", "data-src", "data-original", "data-lazy-src", "data-actualsrc",
                   "data-original-src", "data-url")
SRCSET_ATTRS = ("srcset", "data-srcset")
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)|@import\s+(['"])([^'"]*)\3""", re.IGNORECASE)
_SRCSET_ITEM = re.compile(r"\s*([^\s,]+)(\s+[^,]*)?\s*(?:,|$)")
# Everything a URL keeps when put in our path: reserved characters and existing escapes.
_URL_SAFE = ":/?#[]@!$&'()*+,;=%~"


def archive_path(timestamp: str, url: str, modifier: str = "") -> str:
    """``/web/<timestamp><modifier>/<url>``, the URL escaped only where a path needs it."""
    return f"/web/{timestamp}{modifier}/{quote(url, safe=_URL_SAFE)}"


def is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in HTTP_SCHEMES and bool(parts.hostname)


def link_rewriter(base: str, timestamp: str) -> Callable[[str], str]:
    """A function mapping a link found in a document at ``base`` to its archive path."""

    def rewrite(link: str) -> str:
        link = link.strip()
        if not link or link.startswith(("#", "data:", "about:", "blob:")):
            return link
        try:
            absolute = urljoin(base, link)
        except ValueError:
            return link
        return archive_path(timestamp, absolute) if is_http_url(absolute) else link

    return rewrite


def rewrite_css(css: str, base: str, timestamp: str) -> str:
    rewrite = link_rewriter(base, timestamp)

    def sub(m: re.Match[str]) -> str:
        if m.group(2) is not None and m.group(0).lower().startswith("url"):
            quote_char = m.group(1)
            return f"url({quote_char}{rewrite(m.group(2))}{quote_char})"
        return f"@import {m.group(3)}{rewrite(m.group(4))}{m.group(3)}"

    return _CSS_URL.sub(sub, css)


def _rewrite_srcset(value: str, rewrite: Callable[[str], str]) -> str:
    """``srcset`` candidates (``url [descriptor]``, comma-separated) with each URL rewritten."""
    return ", ".join(rewrite(url) + desc for url, desc in _SRCSET_ITEM.findall(value) if url)


def rewrite_tree(root: lxml.html.HtmlElement, base: str, timestamp: str) -> None:
    """Rewrite every link under ``root`` in place; a ``<base href>`` changes the base, then goes."""
    for element in root.iter("base"):
        href = element.get("href")
        if href:
            try:
                base = urljoin(base, href.strip())
            except ValueError:
                pass
        element.drop_tree()
        break
    rewrite = link_rewriter(base, timestamp)
    root.rewrite_links(rewrite, resolve_base_href=False)
    for element in root.iter(etree.Element):
        for attr in EXTRA_URL_ATTRS:
            if element.get(attr):
                element.set(attr, rewrite(element.get(attr)))
        for attr in SRCSET_ATTRS:
            if element.get(attr):
                element.set(attr, _rewrite_srcset(element.get(attr), rewrite))
        if element.tag == "a" and element.get("target"):
            del element.attrib["target"]  # a sandboxed page cannot open windows anyway


def decode_html(body: bytes, content_type: str) -> str:
    """The document's text, by HTTP charset, BOM, ``<meta charset>`` or detection (w3lib)."""
    return html_to_unicode(content_type, body)[1]


def rewrite_html(body: bytes, content_type: str, url: str, timestamp: str,
                 banner: Callable[[], lxml.html.HtmlElement] | None = None) -> bytes:
    """An archived page as UTF-8 HTML whose links lead into the archive, with an optional banner."""
    text = decode_html(body, content_type)
    if not text.strip():
        return b""
    parser = lxml.html.HTMLParser(encoding="utf-8")
    try:
        root = lxml.html.document_fromstring(text.encode("utf-8", "surrogatepass"), parser=parser)
    except (etree.ParserError, ValueError):
        return text.encode("utf-8", "replace")
    rewrite_tree(root, url, timestamp)
    for meta in root.iter("meta"):  # we serve UTF-8 whatever the page declared
        if meta.get("charset"):
            meta.set("charset", "utf-8")
        elif (meta.get("http-equiv") or "").lower() == "content-type":
            meta.set("content", "text/html; charset=utf-8")
    if banner is not None:
        body_el = root.find("body")
        if body_el is None:
            body_el = etree.SubElement(root, "body")
        body_el.insert(0, banner())
    doctype = root.getroottree().docinfo.doctype
    return lxml.html.tostring(root, encoding="utf-8", doctype=doctype or None)


def rewrite_fragment(html: str, base: str, timestamp: str) -> str:
    """A post body rendered to HTML: absolute links into the archive, relative ones kept."""
    if not html.strip():
        return html
    root = lxml.html.fragment_fromstring(html, create_parent="div")
    rewrite = link_rewriter(base, timestamp)

    def absolute_only(link: str) -> str:
        return rewrite(link) if is_http_url(link.strip()) else link

    root.rewrite_links(absolute_only, resolve_base_href=False)
    for element in root.iter(etree.Element):
        for attr in SRCSET_ATTRS:
            if element.get(attr):
                element.set(attr, _rewrite_srcset(element.get(attr), absolute_only))
    return lxml.html.tostring(root, encoding="unicode")
