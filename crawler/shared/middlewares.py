"""Spider and downloader middlewares of a shared crawl: feed claims, and the end of each lease."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import Request

from crawler.items import Post
from crawler.ledger import SourceLedger, ledger_of
from crawler.protocol import ELSEWHERE, KIND_FEED, KIND_META, LEASE_META, SOURCE_META
from crawler.shared.frontier import Frontier, frontier_of, lease_of

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self


class LeaseSpiderMiddleware:
    """Spider middleware: feed claims at start, and the end of each leased request's output."""

    def __init__(self, ledger: SourceLedger, frontier: Frontier) -> None:
        self.ledger = ledger
        self.frontier = frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(ledger_of(crawler), frontier_of(crawler))

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for obj in start:
                source = obj.meta.get(SOURCE_META) if isinstance(obj, Request) else None
                if source and obj.meta.get(KIND_META) == KIND_FEED:
                    # Claimed or not, the feed is answered by whichever worker pops its request
                    # from the shared queue, and that worker reports it; if this one does, its
                    # callback or errback overwrites this status.
                    self.ledger.set_status(source, ELSEWHERE)
                    if not self.frontier.take_feed(source):
                        continue
                yield obj
        finally:
            self.frontier.started()

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        lease = lease_of(response)
        try:
            async for obj in result:
                if isinstance(obj, Request):
                    obj.meta.pop(LEASE_META, None)  # new work, not this request again
                elif lease and obj is not None:
                    self.frontier.hold(lease)  # released by item_done once it leaves the pipelines
                yield obj
        finally:
            if lease:
                self.frontier.answered(lease)

    def process_spider_exception(self, response: Response, exception: Exception) -> None:
        lease = lease_of(response)
        if lease:
            self.frontier.answered(lease)


class LeaseDownloaderMiddleware:
    """Downloader middleware (closest to the engine): a request that failed for good is answered.

    Its errback runs next, outside the spider middlewares. A request that carries a post
    (``cb_kwargs["post"]``, the convention ``SkipUnchangedMiddleware`` relies on too) has an
    errback that yields that post (``FeedEntrySpider.page_failed``): the lease waits for it.
    """

    def __init__(self, frontier: Frontier) -> None:
        self.frontier = frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(frontier_of(crawler))

    def process_exception(self, request: Request, exception: Exception) -> None:
        lease = request.meta.get(LEASE_META)
        if lease:
            if request.errback is not None and isinstance(request.cb_kwargs.get("post"), Post):
                self.frontier.hold(lease)
            self.frontier.answered(lease)
