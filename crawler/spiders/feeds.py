"""FeedSpider: feeds of a sources file to ``Post`` items (and article pages when asked)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from functools import cached_property
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy.http import Response, TextResponse
from twisted.python.failure import Failure

from archive.feeds import Entry, Feed, FeedError, parse_feed
from crawler.credentials import Credentials, redact_logs, resolve
from crawler.failures import Transient, describe
from crawler.history import History
from crawler.items import Post
from crawler.ledger import BACKFILL, ENTRIES, PAGE_FAILED, ledger_of
from crawler.protocol import (CAPTURE_META, KIND_FEED, KIND_HISTORY, KIND_META, KIND_PAGE, NOT_MODIFIED, OK, REVISIT_META,
                              SOURCE_META, STARTED)
from crawler.sources import MB, Source, SourcesFile, load_sources
from crawler.state import state_of
from crawler.workers import WorkerPool

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self


def fetch_time(response: Response) -> datetime:
    """When ``response`` was fetched: the date of its WARC record (so that a rebuild from the
    archive, ``postarc reextract``, dates posts exactly as the crawl did), else now."""
    capture = response.meta.get(CAPTURE_META)
    return datetime.fromisoformat(capture.date) if capture and capture.date else datetime.now(timezone.utc)


class FeedEntrySpider(scrapy.Spider):
    """What every spider that reads feeds shares: entries to ``Post`` items, article pages.

    ``FeedSpider`` (sources files) and ``UrlSpider`` (``postarc archive``) build on it, so a feed
    entry becomes the same post whichever way its feed was asked for.
    """

    #: Private feeds' secrets (``FeedSpider`` fills them in); what posts keep is redacted.
    credentials: Credentials = Credentials()

    @cached_property
    def transient(self) -> Transient:
        return Transient(self.settings)

    def entry_post(self, entry: Entry, feed: Feed, source: Source, response: Response,
                   fetched_at: datetime) -> Post:
        redact = self.credentials.redact
        return Post(
            source=source.name,
            feed_url=redact(response.url),
            title=entry.title,
            guid=redact(entry.guid),
            link=redact(entry.link) if entry.link else None,
            author=entry.author or feed.title or source.name,
            categories=list(source.categories) or ([feed.title] if feed.title else entry.tags),
            feed_html=entry.html,
            enclosures=[replace(e, url=redact(e.url)) for e in entry.enclosures],
            fetched_at=fetched_at,
            date_raw=entry.published,  # the dates pipeline falls back to updated_raw
            updated_raw=entry.updated,
            timezone=source.timezone,
            gmt_is=source.gmt_is,
            capture=response.meta.get(CAPTURE_META),
            images_mode=source.images,
            image_proxy=source.image_proxy,
            enclosures_mode=source.enclosures,
            max_enclosure_bytes=source.max_enclosure_mb * MB,
            dedup=source.dedup,
        )

    async def read_feed(self, response: Response, content_type: str) -> Feed:
        """``parse_feed`` in the worker pool: feedparser takes seconds on a large feed, and on the
        reactor thread every download under way meanwhile would run into its timeout."""
        pool = self.crawler.get_extension(WorkerPool)
        if pool is None:
            return parse_feed(response.body, response.url, content_type)
        return await pool.run(parse_feed, response.body, response.url, content_type)

    @staticmethod
    def entries(feed: Feed, source: Source) -> list[Entry]:
        """The entries archived: the first ``source.limit`` (feeds list the newest first), all of
        a complete feed (``fh:complete``: the document holds the whole feed)."""
        return feed.entries[: source.limit] if source.limit and not feed.complete else feed.entries

    def feed_items(self, response: Response, feed: Feed, source: Source,
                   whole: bool = False) -> Iterator[Post | scrapy.Request]:
        """One ``Post`` per entry (up to ``source.limit``, unless ``whole``), or its article
        request with ``follow_links``."""
        fetched_at = fetch_time(response)
        for entry in feed.entries if whole else self.entries(feed, source):
            post = self.entry_post(entry, feed, source, response, fetched_at)
            ledger_of(self.crawler).inc(source.name, ENTRIES)
            if source.follow_links and entry.link:
                try:
                    # dont_filter: the request carries its post, and a duplicate dropped by the
                    # scheduler calls no errback (two entries with one link would lose a post).
                    request = response.follow(
                        entry.link,
                        callback=self.parse_page,
                        errback=self.page_failed,
                        cb_kwargs={"post": post},
                        meta={SOURCE_META: source.name, KIND_META: KIND_PAGE, REVISIT_META: source.revisit_s},
                        dont_filter=True,
                    )
                except ValueError as exc:  # no request can be made of it: "http://[x", "mailto:…"
                    yield self.keep_feed_text(post, entry.link, f"unusable link: {exc}")
                    continue
                yield request
            else:
                yield post

    def parse_page(self, response: Response, post: Post) -> Iterator[Post]:
        if response.status == 304:  # a revisit of a page not modified since (crawler.incremental)
            ledger_of(self.crawler).inc(post.source, "revisit_not_modified")
            return
        post.page_url = response.url
        post.page_etag = response.headers.get("ETag", b"").decode("latin-1") or None
        post.page_last_modified = response.headers.get("Last-Modified", b"").decode("latin-1") or None
        post.capture = response.meta.get(CAPTURE_META) or post.capture
        limit = self.settings.getint("POSTARC_PAGE_MAXSIZE")
        if limit and len(response.body) > limit:
            # Archived (the WARC has it) but not extracted: parsing it would take a worker
            # gigabytes and minutes; the post keeps the feed's body.
            yield self.keep_feed_text(post, response.url, f"page of {len(response.body)} bytes, more than "
                                                          f"POSTARC_PAGE_MAXSIZE ({limit}): archived, not extracted")
            return
        if isinstance(response, TextResponse):  # decoded where it is read: Post.page_text
            post.page_body, post.page_encoding = response.body, response.encoding
        yield post

    def page_failed(self, failure: Failure) -> Iterator[Post]:
        """A dead article link still yields the post, from the feed's HTML."""
        post = failure.request.cb_kwargs["post"]
        if self.transient.failure(failure):
            post.missing.append(failure.request.url)
        yield self.keep_feed_text(post, failure.request.url, describe(failure))

    def keep_feed_text(self, post: Post, url: str, reason: str) -> Post:
        """The post without its article page: reported, counted, and made from the feed's HTML."""
        post.page_error = reason
        self.logger.warning("article %s failed (%s); keeping the feed text", url, reason)
        ledger_of(self.crawler).inc(post.source, PAGE_FAILED)
        return post


class FeedSpider(FeedEntrySpider):
    """Fetch every due source's feed and yield one ``Post`` per entry.

    Arguments (``-a``): ``sources`` (path of the sources file), ``only`` (comma-separated source
    names). The spider only yields: files are written by the pipelines and the WARC middleware.
    """

    name = "feeds"
    sources: str
    only: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not getattr(self, "sources", None):
            raise ValueError("FeedSpider needs -a sources=FILE")
        self.config: SourcesFile = load_sources(self.sources)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> Self:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.credentials = resolve(spider.config, crawler.settings.get("POSTARC_SECRETS_FILE") or None)
        redact_logs(spider.credentials.redactor)
        return spider

    def selected(self) -> list[Source]:
        names = {n for n in self.only.split(",") if n}
        return [s for s in self.config.sources if s.enabled and (not names or s.name in names)]

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.histories = self.read_histories([s for s in self.selected() if s.backfill])
        rebuild = bool(self.settings.getlist("POSTARC_REBUILD_POSTS"))
        for source in self.selected():
            if rebuild and source.name in self.histories:
                for url in self.histories.pop(source.name).fetched:
                    yield self.history_document(url, source, walk=False)
            ledger_of(self.crawler).set_status(source.name, STARTED)
            yield scrapy.Request(
                self.credentials.feed_url(self.config, source),
                callback=self.parse_feed,
                errback=self.feed_failed,
                cb_kwargs={"source": source},
                meta={SOURCE_META: source.name, KIND_META: KIND_FEED},
                dont_filter=True,
            )

    async def parse_feed(self, response: Response, source: Source) -> AsyncIterator[Post | scrapy.Request]:
        """The feed's posts (or article requests), the feed parsed in the worker pool (``read_feed``)."""
        ledger = ledger_of(self.crawler)
        if response.status == 304:
            # Answer to the conditional request crawler.incremental made: nothing new to yield.
            ledger.set_status(source.name, NOT_MODIFIED)
            if source.name in self.histories and self.histories[source.name].next:
                for request in self.history_request(response, source, None, head=True):
                    yield request
            return
        try:
            feed = await self.read_feed(response, response.headers.get("Content-Type", b"").decode("latin-1"))
        except FeedError as exc:
            self.logger.error("source %s: %s: %s", source.name, response.url, exc)
            ledger.set_status(source.name, f"failed: {exc}")
            return
        for problem in feed.problems:
            self.logger.warning("source %s: %s: %s", source.name, response.url, problem)
        ledger.set_status(source.name, OK)
        for out in self.feed_items(response, feed, source):
            yield out
        if source.name in self.histories:
            if feed.complete:
                self.history_step(source, None)
            else:
                for request in self.history_request(response, source, feed.prev_archive or feed.next_page, head=True):
                    yield request

    # -- feed history (RFC 5005), backfill: true --------------------------------------

    def read_histories(self, sources: list[Source]) -> dict[str, History]:
        """What the catalogue says was read. A rebuild (``postarc reextract``) does not walk:
        it asks for every document read, and the run being rebuilt has some of them."""
        if not sources:
            return {}
        catalogue = state_of(self.crawler).state
        return {s.name: History.loads((catalogue.source_state(s.name) or {}).get(BACKFILL)) for s in sources}

    def history_step(self, source: Source, link: str | None) -> str | None:
        """Record the step (kept by crawler.incremental.SourceState); the next URL, if any."""
        history = self.histories[source.name]
        url = history.step(link, source.backfill_pages)
        ledger_of(self.crawler).record(source.name, BACKFILL, history.dumps())
        return url

    def history_request(self, response: Response, source: Source, link: str | None,
                        head: bool = False) -> Iterator[scrapy.Request]:
        """The next history document: where an unfinished walk stopped, else the one linked."""
        history = self.histories[source.name]
        if history.done:
            return
        url = history.next if head and history.next else self.history_step(source, link)
        if url:
            yield self.history_document(url, source)

    def history_document(self, url: str, source: Source, walk: bool = True) -> scrapy.Request:
        return scrapy.Request(url, callback=self.parse_history, errback=self.history_failed,
                              cb_kwargs={"source": source, "walk": walk},
                              meta={SOURCE_META: source.name, KIND_META: KIND_HISTORY}, dont_filter=True)

    async def parse_history(self, response: Response, source: Source,
                            walk: bool = True) -> AsyncIterator[Post | scrapy.Request]:
        try:
            feed = await self.read_feed(response, response.headers.get("Content-Type", b"").decode("latin-1"))
        except FeedError as exc:
            self.logger.warning("source %s: history document %s: %s; the next run tries it again",
                                source.name, response.url, exc)
            return
        for out in self.feed_items(response, feed, source, whole=True):  # source.limit is for the head
            yield out
        if not walk:
            return
        history = self.histories[source.name]
        history.fetched.append(history.next or response.url)
        for request in self.history_request(response, source, feed.prev_archive or feed.next_page):
            yield request

    def history_failed(self, failure: Failure) -> None:
        source: Source = failure.request.cb_kwargs["source"]
        if not failure.request.cb_kwargs["walk"]:
            return  # a rebuild asking for a document another run fetched
        self.logger.warning("source %s: history document %s failed (%s); the next run resumes there",
                            source.name, failure.request.url, describe(failure))

    def feed_failed(self, failure: Failure) -> None:
        source: Source = failure.request.cb_kwargs["source"]
        reason = describe(failure)
        self.logger.error("source %s: feed %s failed: %s", source.name, failure.request.url, reason)
        ledger_of(self.crawler).set_status(source.name, f"failed: {reason}")
