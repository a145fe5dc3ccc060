"""Incremental crawling: each run costs almost nothing when a feed has not changed.

Three components, one job each, all reading or writing the crawl state (``state.sqlite``, or
Redis for a shared crawl: ``crawler.state.ArchiveState``):

- ``ConditionalFeedMiddleware`` (downloader): sends a feed's stored ``ETag`` /
  ``Last-Modified`` back as ``If-None-Match`` / ``If-Modified-Since`` and lets the ``304`` through
  to the spider, which yields nothing for it.
- ``SkipUnchangedMiddleware`` (spider): drops a post the archive already holds unchanged
  *before* any request is made for it, so neither its article page nor its images are fetched.
- ``SourceState`` (extension): counts the bytes each source received, and when a crawl
  finishes records per source the run time, the outcome and the feed's new validators.

Validators are stored only at the end of a finished crawl, and only for a source whose every
post made it through the pipelines: a run that is interrupted (or loses a post to an error)
leaves the old validators, so the next run fetches the whole feed again and picks up exactly
the posts that were not archived yet. That is also what makes an interrupted crawl resumable.

A post archived without its article page or an image (their fetch failed: a 503, a timeout)
is not "unchanged" for the next ``POSTARC_RETRY_INCOMPLETE`` runs, and its source stores no
validators meanwhile, so those runs fetch the feed, the page and the images again until the
post is whole.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.spidermiddlewares.base import BaseSpiderMiddleware

from archive.policy import is_unchanged, merged_as, retry_due
from crawler.credentials import credentials_of
from crawler.items import Post, post_hash
from crawler.ledger import BACKFILL, BYTES, RETRY_NEXT, UNCHANGED, SourceLedger, ledger_of
from crawler.protocol import ELSEWHERE, KIND_FEED, KIND_META, OK, REVISIT_META, SOURCE_META, SPOOLED_META
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure
    from typing_extensions import Self

    from archive.state import CrawlState

logger = logging.getLogger(__name__)

#: How ``last_run`` is written to the catalogue (UTC, like every other time there).
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


class _CatalogueReader:
    """Reads the crawl's state (``crawler.state.ArchiveState``)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.archive_dir = Path(crawler.settings["POSTARC_ARCHIVE_DIR"])
        self.state = state_of(crawler)

    @property
    def catalogue(self) -> CrawlState:
        return self.state.state


class ConditionalFeedMiddleware(_CatalogueReader):
    """Make feed requests conditional on what the last finished run stored.

    A downloader middleware rather than headers set in the spider: validators are transport
    state (as in Scrapy's own ``RFC2616Policy``), so the spider stays unaware of them and any
    spider that marks its feed requests (``crawler.protocol``: ``KIND_META`` = ``KIND_FEED`` and
    ``SOURCE_META``) gets them. It sits before the WARC middleware, so the request
    records show the conditional headers as sent.
    """

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        name = request.meta.get(SOURCE_META)
        if request.meta.get(KIND_META) != KIND_FEED or not name:
            return
        state = self.catalogue.source_state(name)
        # Validators belong to one URL: a source whose URL changed starts afresh.
        url = credentials_of(self.crawler).redact(request.url)  # as the catalogue keeps it
        if not state or state["url"] != url or not (state["etag"] or state["last_modified"]):
            return
        if state["etag"]:
            request.headers.setdefault("If-None-Match", state["etag"])
        if state["last_modified"]:
            request.headers.setdefault("If-Modified-Since", state["last_modified"])
        # HttpErrorMiddleware filters non-2xx responses; a 304 here is an answer, not an error.
        allowed = request.meta.get("handle_httpstatus_list", [])
        if 304 not in allowed:
            request.meta["handle_httpstatus_list"] = [*allowed, 304]


class SkipUnchangedMiddleware(_CatalogueReader, BaseSpiderMiddleware):
    """Drop unchanged posts from the spider's output before they cost a request.

    A post reaches the engine either as an item (feed text only) or inside the request for its
    article page (``cb_kwargs["post"]``). Either way, if the catalogue has the same source, guid
    and content hash, and its Markdown exists, nothing is passed on: no page request, no image
    request, no pipeline work, and the Markdown file is not touched.
    """

    def __init__(self, crawler: Crawler) -> None:
        BaseSpiderMiddleware.__init__(self, crawler)
        _CatalogueReader.__init__(self, crawler)
        self.posts_dir = self.archive_dir / "posts"
        self.ledger = ledger_of(crawler)
        self.retries = crawler.settings.getint("POSTARC_RETRY_INCOMPLETE")

    def get_processed_request(self, request: Request, response: Response | None) -> Request | None:
        post = request.cb_kwargs.get("post")
        if not isinstance(post, Post) or not self._unchanged(post):
            return request
        return self._revisit(request, post)

    def _revisit(self, request: Request, post: Post) -> Request | None:
        """The page request of an unchanged post of a source with ``revisit``, if the post was
        published within that window: conditional on the page's stored validators."""
        window = request.meta.get(REVISIT_META)
        known = self.catalogue.post(post.source, post.guid)
        if not window or known is None or not known.date:
            return None
        published = datetime.strptime(known.date, TIME_FORMAT).replace(tzinfo=timezone.utc)
        if (datetime.now(timezone.utc) - published).total_seconds() > window:
            return None
        post.revisit = True
        self.ledger.inc(post.source, "revisits")
        if known.page_etag:
            request.headers.setdefault("If-None-Match", known.page_etag)
        if known.page_last_modified:
            request.headers.setdefault("If-Modified-Since", known.page_last_modified)
        allowed = request.meta.get("handle_httpstatus_list", [])
        if 304 not in allowed:
            request.meta["handle_httpstatus_list"] = [*allowed, 304]
        return request

    def get_processed_item(self, item: Any, response: Response | None) -> Any:
        # A revisited post's page was fetched on purpose: the pipelines compare it.
        return None if isinstance(item, Post) and not item.revisit and self._unchanged(item) else item

    def _unchanged(self, post: Post) -> bool:
        known = self.catalogue.post(post.source, post.guid)
        if known is None and post.dedup == "across":  # an entry merged into another feed's post
            known = merged_as(self.catalogue, post.source, post.guid)
        if not is_unchanged(known, post_hash(post), self.posts_dir, self.retries):
            return False
        self.ledger.inc(post.source, UNCHANGED)
        return True


class SourceState:
    """Per-source bookkeeping: bytes received during the crawl, the catalogue row after it."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.started = datetime.now(timezone.utc)
        self.validators: dict[str, tuple[str, str | None, str | None]] = {}  # name -> url, ETag, Last-Modified
        self.retries = crawler.settings.getint("POSTARC_RETRY_INCOMPLETE")
        self.lost_posts: set[str] = set()  # sources with a post that failed in a pipeline
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.item_error, signal=signals.item_error)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    @cached_property
    def ledger(self) -> SourceLedger:
        """Looked up on first use: extensions cannot look each other up while being built."""
        return ledger_of(self.crawler)

    def spider_opened(self) -> None:
        self.started = datetime.now(timezone.utc)

    def response_downloaded(self, response: Response, request: Request) -> None:
        """Bytes as received (still content-encoded: what the WARC stores), per source."""
        name = request.meta.get(SOURCE_META)
        if not name:
            return
        spooled = request.meta.get(SPOOLED_META)  # an enclosure, in a file (crawler.handlers)
        self.ledger.inc(name, BYTES, os.fstat(spooled.fileno()).st_size if spooled else len(response.body))
        if request.meta.get(KIND_META) == KIND_FEED and response.status == 200:
            url = credentials_of(self.crawler).redact((request.meta.get("redirect_urls") or [request.url])[0])
            self.validators[name] = (url, _header(response, "ETag"), _header(response, "Last-Modified"))

    def item_scraped(self, item: Any) -> None:
        if isinstance(item, Post) and retry_due(item.incomplete_runs, self.retries):
            self.ledger.inc(item.source, RETRY_NEXT)

    def item_error(self, item: Any, failure: Failure) -> None:
        if isinstance(item, Post):
            self.lost_posts.add(item.source)

    def spider_closed(self, spider: Spider, reason: str) -> None:
        catalogue = state_of(self.crawler).state
        for name, status in self.ledger.statuses().items():
            if status == ELSEWHERE:
                continue  # the worker that fetched the feed records it
            history = self.ledger.recorded(name, BACKFILL)
            if history is not None:  # documents read stay read, however the run ends
                catalogue.save_source_state(name, backfill=history)
            if reason != "finished":
                # Keep last_run: the source stays due, so the next run resumes it.
                catalogue.save_source_state(name, last_status=f"interrupted ({reason})")
                continue
            values: dict[str, Any] = {"last_run": self.started.strftime(TIME_FORMAT), "last_status": status}
            if name in self.lost_posts:
                logger.warning("source %s: a post failed; its feed will be fetched in full next run", name)
            elif self.ledger.count(name, RETRY_NEXT):
                logger.info("source %s: a post lacks its page or an image; the next run fetches them again", name)
            elif status == OK and name in self.validators:
                url, etag, last_modified = self.validators[name]
                values.update(url=url, etag=etag, last_modified=last_modified)
            catalogue.save_source_state(name, **values)


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None
