"""UrlSpider: ``postarc archive URL…`` — each URL archived now, as a feed or as one post page.

A URL whose response a feed format reads (RSS, Atom, RDF, CDF, JSON Feed) yields every
entry as a crawl does (``FeedEntrySpider``); an HTML page yields one post whose title, author
and date come from the page's own metadata. What became of each URL is announced with the
``url_resolved`` signal, so a command can report per URL without reaching into the spider.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import scrapy
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure
from w3lib.encoding import html_to_unicode
from w3lib.url import canonicalize_url

from archive.feeds import FeedError, looks_like_json
from archive.pagemeta import page_metadata
from archive.text import NAME_MAX, plain_text
from crawler.items import Post
from crawler.failures import describe
from crawler.protocol import CAPTURE_META, KIND_META, KIND_URL, URL_META
from crawler.sources import Source
from crawler.spiders.feeds import FeedEntrySpider, fetch_time

#: Sent once per URL: ``url`` (as asked), ``kind`` ("feed", "page" or None), ``reason`` (why it
#: failed, or None), ``warc`` (file of the URL's response record, or None), ``posts`` (how many
#: posts it yields).
url_resolved = object()

#: ``Post.source`` of one-off pages; their guid is the page's canonical URL.
PAGE_SOURCE = "archive"

_HTML_MARK = re.compile(rb"<!doctype\s+html|<html[\s>]", re.IGNORECASE)
_FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
               "application/xml", "text/xml", "application/x-rss+xml", "application/json"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_SNIFF = 4096


def is_page(body: bytes, mime: str) -> bool:
    """Whether a document that no feed format reads is an HTML page: by its type, else its start."""
    if looks_like_json(body, mime):
        return False
    return mime in _HTML_TYPES or bool(_HTML_MARK.search(body[:_SNIFF]))


def feed_source_name(feed_url: str) -> str:
    """A source name per feed URL (entries of two feeds may share a guid): ``archive-<host>-<hash>``."""
    canonical = canonicalize_url(feed_url)
    host = urlsplit(canonical).hostname or "feed"
    return f"archive-{host}-{hashlib.sha1(canonical.encode()).hexdigest()[:8]}"


def _as_list(value: Any, sep: str) -> list[str]:
    """Spider arguments come as lists from a command, or as strings from ``-a name=value``."""
    if isinstance(value, str):
        value = value.split(sep) if sep else value.split()
    return [v.strip() for v in value or [] if v and v.strip()]


class UrlSpider(FeedEntrySpider):
    """Arguments: ``urls`` (list, or whitespace-separated), ``categories`` (list, or comma-separated),
    ``limit`` (entries per feed), ``follow_links`` (fetch feed entries' article pages), ``timezone``
    (for dates without a zone)."""

    name = "url"

    def __init__(self, urls: Any = (), categories: Any = (), limit: Any = None, follow_links: Any = False,
                 timezone: str = "UTC", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.urls = _as_list(urls, "")
        self.categories = _as_list(categories, ",")
        self.limit = int(limit) if limit else None
        self.follow_links = str(follow_links).lower() in ("1", "true", "yes", "on")
        ZoneInfo(timezone)  # an unknown zone is a usage error, raised before any request
        self.timezone = timezone

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, errback=self.failed, dont_filter=True,
                                 meta={URL_META: url, KIND_META: KIND_URL})

    async def parse(self, response: Response, **kwargs: Any) -> AsyncIterator[Post | scrapy.Request]:
        """A feed when a feed format reads it (whatever its type or its entries' HTML), else a page."""
        url = response.meta[URL_META]
        content_type = response.headers.get("Content-Type", b"").decode("latin-1")
        mime = content_type.split(";")[0].strip().lower()
        try:
            feed = await self.read_feed(response, content_type)
        except FeedError as exc:
            if exc.not_feed and is_page(response.body, mime):
                self.resolve(response, "page", posts=1)
                yield self.page_post(response)
            elif exc.not_feed and mime not in _FEED_TYPES:
                self.resolve(response, None, f"not HTML or a feed ({mime or 'no content type'})")
            else:
                self.resolve(response, "feed", str(exc))
            return
        source = Source(name=feed_source_name(response.url), url=response.url, categories=self.categories,
                        timezone=self.timezone, follow_links=self.follow_links, limit=self.limit,
                        dedup="within")  # one post per URL or entry asked for: no sources file to say otherwise
        for problem in feed.problems:
            self.logger.warning("%s: %s", response.url, problem)
        self.resolve(response, "feed", posts=len(self.entries(feed, source)))
        for out in self.feed_items(response, feed, source):
            post = out.cb_kwargs["post"] if isinstance(out, scrapy.Request) else out
            post.requested_url = url
            yield out

    def page_post(self, response: Response) -> Post:
        """One post from an article page: its metadata, and the page as the body's source."""
        if isinstance(response, TextResponse):
            html = response.text
        else:  # served as binary, sniffed as HTML: decode it as Scrapy decodes text responses
            html = html_to_unicode(response.headers.get("Content-Type", b"").decode("latin-1"), response.body)[1]
        meta = page_metadata(html, response.url)
        return Post(
            source=PAGE_SOURCE,
            feed_url=response.url,
            title=plain_text(meta.title) or response.url,
            guid=canonicalize_url(response.url),
            link=response.url,
            author=plain_text(meta.author or meta.site_name, NAME_MAX) or urlsplit(response.url).hostname or "",
            categories=list(self.categories),
            feed_html="",
            fetched_at=fetch_time(response),
            timezone=self.timezone,
            page_url=response.url,
            page_html=html,
            capture=response.meta.get(CAPTURE_META),
            requested_url=response.meta[URL_META],
            dedup="within",
        )

    def failed(self, failure: Failure) -> None:
        request = failure.request
        capture = request.meta.get(CAPTURE_META)
        self._announce(request.meta[URL_META], None, describe(failure),
                       capture.filename if capture else None)

    def resolve(self, response: Response, kind: str | None, reason: str | None = None, posts: int = 0) -> None:
        capture = response.meta.get(CAPTURE_META)
        self._announce(response.meta[URL_META], kind, reason, capture.filename if capture else None, posts)

    def _announce(self, url: str, kind: str | None, reason: str | None, warc: str | None, posts: int = 0) -> None:
        if reason:
            self.logger.info("%s failed: %s", url, reason)
        self.crawler.stats.inc_value(f"postarc/urls/{'failed' if reason else 'ok'}")
        self.crawler.signals.send_catch_log(url_resolved, url=url, kind=kind, reason=reason, warc=warc, posts=posts)
