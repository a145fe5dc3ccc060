"""Feed documents to entries: what feedparser reads (RSS 0.9x/1.0/2.0, Atom, CDF), and JSON Feed.

A document is a feed when it parses as one, never because of a substring: an RSS entry whose
body starts with ``<html>`` is still an entry of a feed. ``FeedError.not_feed`` tells a document
that is no feed at all (maybe a page) from a feed that cannot be used.

**Entry identity** (what a post is keyed on, with its source): the entry's guid (RSS ``guid``,
Atom ``id``, JSON Feed ``id``), else its link, else ``urn:sha1:`` of its title and content. An
entry that repeats an earlier entry of the same document exactly (identity, title, link, content
and dates) is that entry listed twice and is archived once; one that repeats only the identity,
with other content, is a distinct entry, known as ``<identity>#<12 hex of its content>``. The
first entry with an identity keeps it bare, so a feed that edits an entry updates its post.
"""

from __future__ import annotations

import hashlib
import html as html_lib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from xml.sax import SAXException


from archive.enclosures import Enclosure, from_feedparser, from_json_feed
from archive.text import NAME_MAX, plain_text

# A numeric character reference (``&#55296;``, ``&#xD800;``).
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,16})|([0-9]{1,24}));")
_HTML_MARK = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
# JSON Feed versions as feeds write them: the spec's URL (any scheme, with or without a slash)
# or a bare number.
_JSON_VERSION = re.compile(r"^(?:https?://(?:www\.)?jsonfeed\.org/version/)?v?1(?:\.[01])?/?$", re.IGNORECASE)


class FeedError(ValueError):
    """A document that is not a usable feed; the message says why.

    ``not_feed``: the document is no feed at all (no feed format reads it), so it may be a page.
    """

    def __init__(self, message: str, *, not_feed: bool = False) -> None:
        super().__init__(message)
        self.not_feed = not_feed


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
    #: What was wrong with a document still read (malformed XML, JSON fields of the wrong type).
    problems: list[str] = field(default_factory=list)
    duplicates: int = 0  # entries that repeated an earlier one exactly (archived once)
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


def _fingerprint(entry: Entry) -> str:
    parts = (entry.title, entry.link or "", entry.html, entry.published or "", entry.updated or "")
    return hashlib.sha1("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def identify(entries: list[Entry]) -> tuple[list[Entry], int]:
    """Each entry's identity (see the module's doc): guid, else link, else a hash of title and
    content, made distinct within the document. Returns the entries archived and how many were
    exact repeats."""
    seen: dict[str, set[str]] = {}
    kept: list[Entry] = []
    for entry in entries:
        if not entry.guid:
            entry.guid = entry.link or "urn:sha1:" + hashlib.sha1(
                (entry.title + "\n" + entry.html).encode("utf-8", "surrogatepass")).hexdigest()
        fingerprint = _fingerprint(entry)
        versions = seen.setdefault(entry.guid, set())
        if fingerprint in versions:
            continue
        versions.add(fingerprint)
        if len(versions) > 1:
            entry.guid = f"{entry.guid}#{fingerprint[:12]}"
            seen.setdefault(entry.guid, {fingerprint})
        kept.append(entry)
    return kept, len(entries) - len(kept)


def _feed(title: str, kind: str, entries: list[Entry], link: str | None, problems: list[str]) -> Feed:
    kept, duplicates = identify(entries)
    if duplicates:
        problems.append(f"{duplicates} entr{'y' if duplicates == 1 else 'ies'} repeated an earlier one exactly; "
                        "archived once")
    return Feed(title=plain_text(title), kind=kind, entries=kept, link=link, problems=problems,
                duplicates=duplicates)


# -- JSON Feed -------------------------------------------------------------------------


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    """JSON by its first character, else by its type (markup served as JSON is still read as XML)."""
    first = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"<":
        return False
    return first in (b"{", b"[") or (content_type or "").split(";")[0].strip().lower().endswith("json")


class _Fields:
    """A JSON Feed object's fields read leniently: a wrong type is coerced where its meaning is
    clear (a number for a string), else dropped with a problem noted, never shown as a repr."""

    def __init__(self, obj: dict[str, Any], where: str, problems: list[str]) -> None:
        self.obj, self.where, self.problems = obj, where, problems

    def dropped(self, name: str, value: Any) -> None:
        self.problems.append(f"{self.where}: {name} is a JSON {_json_type(value)}, not a string; ignored")

    def string(self, *names: str) -> str | None:
        """The first of ``names`` that holds text (a number counts as its digits)."""
        for name in names:
            value = self.obj.get(name)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                return _text(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return _text(value)
            self.dropped(name, value)
        return None

    def strings(self, name: str) -> list[str]:
        """A list of strings (one string counts as a list of one); other members are dropped."""
        value = self.obj.get(name)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        out = [_text(v) for v in values if isinstance(v, (str, int, float)) and not isinstance(v, bool) and v != ""]
        if len(out) < len([v for v in values if v not in (None, "")]):
            self.problems.append(f"{self.where}: {name} holds values that are not strings; those ignored")
        return out

    def author(self) -> str | None:
        """JSON Feed 1.1's ``authors`` (a list), else 1.0's ``author`` (an object); a bare name counts."""
        for name in ("authors", "author"):
            value = self.obj.get(name)
            for person in value if isinstance(value, list) else [value]:
                if isinstance(person, str) and person.strip():
                    return _text(person)
                if isinstance(person, dict):
                    found = _Fields(person, f"{self.where}: {name}", self.problems).string("name")
                    if found:
                        return found
        return None


def _json_type(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean", str: "string", int: "number",
            float: "number"}.get(type(value), type(value).__name__)


def parse_json_feed(body: bytes) -> Feed:
    """JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), read as feeds write them."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedError(f"not a feed: invalid JSON ({exc})", not_feed=True) from exc
    except RecursionError as exc:
        raise FeedError("not a feed: invalid JSON (nested too deep)", not_feed=True) from exc
    if not isinstance(doc, dict):
        raise FeedError("not a feed: a JSON document that is not a JSON Feed", not_feed=True)
    version, items = doc.get("version"), doc.get("items")
    known_version = isinstance(version, (str, int, float)) and bool(_JSON_VERSION.match(str(version).strip()))
    if not known_version and not isinstance(items, list):
        raise FeedError("not a feed: a JSON document that is not a JSON Feed (no jsonfeed.org version)",
                        not_feed=True)
    problems: list[str] = []
    if not known_version:
        problems.append(f"JSON Feed version {str(version)[:40]!r} unknown; read as 1.1")
    if not isinstance(items, list):
        problems.append(f"items is a JSON {_json_type(items)}, not an array; no entries" if items is not None
                        else "no items; no entries")
        items = []
    feed = _Fields(doc, "feed", problems)
    entries = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(f"item {n + 1} is a JSON {_json_type(item)}, not an object; ignored")
            continue
        fields = _Fields(item, f"item {n + 1}", problems)
        html = fields.string("content_html") or _text_as_html(fields.string("content_text")) or \
            fields.string("summary") or ""
        entries.append(Entry(
            title=plain_text(fields.string("title") or ""),
            link=fields.string("url", "external_url"),
            guid=fields.string("id") or "",
            author=_name(fields.author()),
            html=html,
            published=fields.string("date_published"),
            updated=fields.string("date_modified"),
            tags=[t for t in (plain_text(t, NAME_MAX) for t in fields.strings("tags")) if t],
            enclosures=from_json_feed(item) if isinstance(item.get("attachments"), (list, type(None))) else [],
        ))
    next_url = doc.get("next_url")
    feed = _feed(feed.string("title") or "", "json", entries, feed.string("home_page_url"), problems)
    feed.next_page = _text(next_url) if isinstance(next_url, str) and next_url else None
    return feed


def _text_as_html(text: str | None) -> str | None:
    """JSON Feed's ``content_text`` is plain text: escaped, so that ``<b>`` in it stays text."""
    if not text:
        return None
    return "<p>" + html_lib.escape(text).replace("\n\n", "</p><p>").replace("\n", "<br>") + "</p>"


def _name(value: str | None) -> str | None:
    return plain_text(value, NAME_MAX) or None if value else None


# -- XML feeds (feedparser) -------------------------------------------------------------


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
    """What feedparser reads: a feed when it names a format (``version``), finds entries or a
    channel title."""
    # sanitize_html=False: feedparser's allow-list strips data-original/data-src and
    # referrerpolicy, which carry the real image URLs of lazy-loading posts; postarc cleans
    # the HTML itself (archive.html) after extraction.
    import feedparser  # here, not above: the crawl process imports this module but parses in the pool (0.06 s)

    try:
        parsed = feedparser.parse(
            _valid_char_refs(body),
            response_headers={"content-location": url, "content-type": content_type or "application/xml"},
            sanitize_html=False,
        )
    except Exception as exc:  # noqa: BLE001 - on garbage feedparser's lenient parser can raise anything
        raise FeedError(f"not a feed: the parser gave up ({type(exc).__name__})", not_feed=True) from exc
    # CDF has no version in feedparser; a well-formed document with a channel title and no
    # entries is an empty feed (an HTML page's <title> is never read as one).
    empty_feed = "title" in parsed.feed and not isinstance(parsed.get("bozo_exception"), SAXException)
    if not parsed.version and not parsed.entries and not empty_feed:
        error = parsed.get("bozo_exception")
        if _HTML_MARK.search(body[:4096]):  # only to say why: the parse decided
            reason = "an HTML page"
        elif isinstance(error, SAXException):
            reason = f"not well-formed XML ({error})"
        else:
            reason = "no RSS, Atom, RDF or CDF root element"
        raise FeedError(f"not a feed: {reason}", not_feed=True)
    entries = []
    for e in parsed.entries:
        content = e.get("content") or []
        html = _text(content[0].get("value", "") if content else (e.get("summary") or e.get("description") or ""))
        entries.append(Entry(
            title=plain_text(_text(e.get("title", "") or "")),
            link=_optional(e.get("link")),
            guid=_text(e.get("id") or ""),
            author=_name(_optional(e.get("author"))),
            html=html,
            published=_optional(e.get("published")),
            updated=_optional(e.get("updated")),
            tags=[t for t in (plain_text(_text(t.get("term")), NAME_MAX) for t in e.get("tags") or []
                              if t.get("term")) if t],
            enclosures=from_feedparser(e),
        ))
    problems = []
    # The strict XML parser failed and feedparser's lenient one read what it could.
    error = parsed.get("bozo_exception")
    if isinstance(error, SAXException):
        problems.append(f"not well-formed XML ({error}); read leniently")
    feed = _feed(_text(parsed.feed.get("title", "") or ""), parsed.version or "xml", entries,
                 _optional(parsed.feed.get("link")), problems)
    links = {link.get("rel"): link.get("href") for link in reversed(parsed.feed.get("links") or []) if link.get("href")}
    feed.prev_archive, feed.next_page = _optional(links.get("prev-archive")), _optional(links.get("next"))
    feed.complete = "fh_complete" in parsed.feed
    return feed


def parse_feed(body: bytes, url: str, content_type: str | None = None) -> Feed:
    """Parse any supported feed document; raise ``FeedError`` with the reason otherwise."""
    if not body.strip():
        raise FeedError("empty document")
    if looks_like_json(body, content_type):
        return parse_json_feed(body)
    return parse_xml_feed(body, url, content_type)

