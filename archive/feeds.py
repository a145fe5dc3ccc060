"""Feed documents to entries: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed via json."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax import SAXException

import feedparser

from archive.enclosures import Enclosure, from_feedparser, from_json_feed

# A numeric character reference (``&#55296;``, ``&#xD800;``).
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,24}));")


class FeedError(ValueError):
    """A document that is not a usable feed; the message says why."""


@dataclass
class Entry:
    title: str
    link: str | None
    guid: str
    author: str | None
    html: str
    published: str | None = None
    updated: str | None = None
    tags: list[str] = field(default_factory=list)
    enclosures: list[Enclosure] = field(default_factory=list)


@dataclass
class Feed:
    title: str
    kind: str
    entries: list[Entry]
    link: str | None = None
    problem: str | None = None  # what was wrong with a document still read (malformed XML)
    # RFC 5005 feed history: the archive document before this one, the next page of a paged
    # feed, and whether this document holds every entry (fh:complete).
    prev_archive: str | None = None
    next_page: str | None = None
    complete: bool = False


def _text(value: Any) -> str:
    """``value`` as text that UTF-8 can hold.

    JSON's ``"\\ud800"`` and XML character references give lone surrogates, which no file,
    database or YAML writer accepts; each becomes U+FFFD, so one bad character costs that character.
    """
    return str(value).encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _optional(value: Any) -> str | None:
    return _text(value) if value else None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _guid(entry_id: Any, link: str | None, title: str, html: str) -> str:
    if entry_id:
        return _text(entry_id)
    if link:
        return link
    return "urn:sha1:" + hashlib.sha1((title + "\n" + html).encode("utf-8")).hexdigest()


def looks_like_json_feed(body: bytes, content_type: str | None) -> bool:
    ct = (content_type or "").lower()
    return "json" in ct or body.lstrip()[:1] == b"{"


def parse_json_feed(body: bytes) -> Feed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"invalid JSON: {exc}") from exc
    except RecursionError as exc:
        raise FeedError("invalid JSON: nested too deep") from exc
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise FeedError("JSON document is not a JSON Feed (no jsonfeed.org version)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError("JSON Feed has no items list")
    feed_title = _text(doc.get("title") or "")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        authors = _list(item.get("authors")) or ([item["author"]] if isinstance(item.get("author"), dict) else [])
        author = next((a.get("name") for a in authors if isinstance(a, dict) and a.get("name")), None)
        html = _text(item.get("content_html") or item.get("content_text") or item.get("summary") or "")
        link = _optional(item.get("url") or item.get("external_url"))
        title = _text(item.get("title") or "")
        entries.append(Entry(
            title=title,
            link=link,
            guid=_guid(item.get("id"), link, title, html),
            author=_optional(author),
            html=html,
            published=_raw(item.get("date_published")),
            updated=_raw(item.get("date_modified")),
            tags=[_text(t) for t in _list(item.get("tags")) if t],
            enclosures=from_json_feed(item),
        ))
    next_url = doc.get("next_url")
    return Feed(title=feed_title, kind="json", entries=entries, link=_optional(doc.get("home_page_url")),
                next_page=_text(next_url) if isinstance(next_url, str) and next_url else None)


def _raw(value: Any) -> str | None:
    return None if value is None else _text(value)


def _valid_char_refs(body: bytes) -> bytes:
    """``body`` with each reference to a code point no document may hold (a surrogate, beyond
    U+10FFFF) made ``&#xFFFD;``.

    feedparser's lenient parser turns such a reference into a ``chr()`` that raises (or into a
    lone surrogate), so one bad reference would cost the whole feed instead of one character.
    """
    def valid(match: re.Match[bytes]) -> bytes:
        hex_digits, digits = match.groups()
        code = int(hex_digits, 16) if hex_digits else int(digits)
        return match[0] if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else b"&#xFFFD;"

    return _CHAR_REF.sub(valid, body)


def parse_xml_feed(body: bytes, url: str, content_type: str | None) -> Feed:
    # sanitize_html=False: feedparser's allow-list strips data-original/data-src and
    # referrerpolicy, which carry the real image URLs of lazy-loading posts; postarc cleans
    # the HTML itself (archive.html) after extraction.
    try:
        parsed = feedparser.parse(
            _valid_char_refs(body),
            response_headers={"content-location": url, "content-type": content_type or "application/xml"},
            sanitize_html=False,
        )
    except Exception as exc:  # noqa: BLE001 - on garbage feedparser's lenient parser can raise anything
        raise FeedError(f"not a feed: the parser gave up ({type(exc).__name__}: {exc})") from exc
    if not parsed.version:
        if parsed.bozo and not parsed.entries:
            reason = parsed.get("bozo_exception") or "unrecognised document"
            if body.lstrip()[:1] == b"<" and b"<html" in body[:2048].lower():
                reason = "an HTML page, not a feed"
            raise FeedError(f"not a feed: {reason}")
        if not parsed.entries:
            raise FeedError("not a feed: no RSS, Atom or RDF root element")
    feed_title = _text(parsed.feed.get("title", "") or "")
    entries = []
    for e in parsed.entries:
        content = e.get("content") or []
        html = _text(content[0].get("value", "") if content else (e.get("summary") or e.get("description") or ""))
        title = _text(e.get("title", "") or "")
        link = _optional(e.get("link"))
        entries.append(Entry(
            title=title,
            link=link,
            guid=_guid(e.get("id"), link, title, html),
            author=_optional(e.get("author")),
            html=html,
            published=_optional(e.get("published")),
            updated=_optional(e.get("updated")),
            tags=[_text(t.get("term")) for t in e.get("tags") or [] if t.get("term")],
            enclosures=from_feedparser(e),
        ))
    # The strict XML parser failed and feedparser's lenient one read what it could.
    error = parsed.get("bozo_exception")
    problem = f"not well-formed XML ({error}); read leniently" if isinstance(error, SAXException) else None
    links = {link.get("rel"): link.get("href") for link in reversed(parsed.feed.get("links") or []) if link.get("href")}
    return Feed(title=feed_title, kind=parsed.version or "xml", entries=entries,
                link=_optional(parsed.feed.get("link")), problem=problem,
                prev_archive=_optional(links.get("prev-archive")), next_page=_optional(links.get("next")),
                complete="fh_complete" in parsed.feed)


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> Feed:
    """Parse any supported feed document; raise ``FeedError`` with the reason otherwise."""
    if not body.strip():
        raise FeedError("empty document")
    if looks_like_json_feed(body, content_type):
        return parse_json_feed(body)
    return parse_xml_feed(body, url, content_type)
