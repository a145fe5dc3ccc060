"""Feed documents to entries: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed via json."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import feedparser


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


@dataclass
class Feed:
    title: str
    kind: str
    entries: list[Entry]
    link: str | None = None


def _guid(entry_id: str | None, link: str | None, title: str, html: str) -> str:
    if entry_id:
        return str(entry_id)
    if link:
        return link
    return "urn:sha1:" + hashlib.sha1((title + "\n" + html).encode("utf-8", "surrogatepass")).hexdigest()


def looks_like_json_feed(body: bytes, content_type: str | None) -> bool:
    ct = (content_type or "").lower()
    return "json" in ct or body.lstrip()[:1] == b"{"


def parse_json_feed(body: bytes) -> Feed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise FeedError("JSON document is not a JSON Feed (no jsonfeed.org version)")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError("JSON Feed has no items list")
    feed_title = str(doc.get("title") or "")
    entries = []
    for item in items:
        if not isinstance(item, dict):
            continue
        authors = item.get("authors") or ([item["author"]] if isinstance(item.get("author"), dict) else [])
        author = next((a.get("name") for a in authors if isinstance(a, dict) and a.get("name")), None)
        html = item.get("content_html") or item.get("content_text") or item.get("summary") or ""
        link = item.get("url") or item.get("external_url")
        title = str(item.get("title") or "")
        entries.append(Entry(
            title=title,
            link=str(link) if link else None,
            guid=_guid(item.get("id"), link, title, str(html)),
            author=author,
            html=str(html),
            published=_raw(item.get("date_published")),
            updated=_raw(item.get("date_modified")),
            tags=[str(t) for t in item.get("tags") or [] if t],
        ))
    return Feed(title=feed_title, kind="json", entries=entries, link=doc.get("home_page_url"))


def _raw(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_xml_feed(body: bytes, url: str, content_type: str | None) -> Feed:
    # sanitize_html=False: feedparser's allow-list strips data-original/data-src and
    # referrerpolicy, which carry the real image URLs of lazy-loading posts; postarc cleans
    # the HTML itself (archive.html) after extraction.
    parsed = feedparser.parse(
        body,
        response_headers={"content-location": url, "content-type": content_type or "application/xml"},
        sanitize_html=False,
    )
    if not parsed.version:
        if parsed.bozo and not parsed.entries:
            reason = parsed.get("bozo_exception") or "unrecognised document"
            if body.lstrip()[:1] == b"<" and b"<html" in body[:2048].lower():
                reason = "an HTML page, not a feed"
            raise FeedError(f"not a feed: {reason}")
        if not parsed.entries:
            raise FeedError("not a feed: no RSS, Atom or RDF root element")
    feed_title = parsed.feed.get("title", "") or ""
    entries = []
    for e in parsed.entries:
        content = e.get("content") or []
        html = content[0].get("value", "") if content else (e.get("summary") or e.get("description") or "")
        title = e.get("title", "") or ""
        link = e.get("link")
        entries.append(Entry(
            title=title,
            link=link,
            guid=_guid(e.get("id"), link, title, html),
            author=e.get("author"),
            html=html,
            published=e.get("published"),
            updated=e.get("updated"),
            tags=[t.get("term") for t in e.get("tags") or [] if t.get("term")],
        ))
    return Feed(title=feed_title, kind=parsed.version or "xml", entries=entries, link=parsed.feed.get("link"))


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> Feed:
    """Parse any supported feed document; raise ``FeedError`` with the reason otherwise."""
    if not body.strip():
        raise FeedError("empty document")
    if looks_like_json_feed(body, content_type):
        return parse_json_feed(body)
    return parse_xml_feed(body, url, content_type)
