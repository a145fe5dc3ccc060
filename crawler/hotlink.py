"""Downloader middleware: images refused for their Referer are asked for again without one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.http import Response

from crawler.ledger import SourceLedger, ledger_of
from crawler.protocol import HOTLINK_RETRY_META, KIND_IMAGE, KIND_META, SOURCE_META

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from typing_extensions import Self



class HotlinkRetryMiddleware:
    """A 403 to an image request sent with a Referer is retried once with no Referer.

    Image hosts that protect against hotlinking refuse a foreign Referer but serve requests
    without one, which is what a browser sends for ``referrerpolicy="no-referrer"`` images.
    The images pipeline first sends the article page as Referer (what the publisher's own
    pages send); this middleware makes the second try. Returning a request from
    ``process_response`` is how Scrapy's own redirect middleware reissues requests: the engine
    downloads it in place of the first (``ExecutionEngine.download_async``), and both exchanges
    pass the WARC capture middleware, so the archive holds the 403 and the retry.
    """

    def __init__(self, stats: StatsCollector, ledger: SourceLedger) -> None:
        self.stats = stats
        self.ledger = ledger

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler.stats, ledger_of(crawler))

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get(KIND_META) != KIND_IMAGE:
            return response
        source = request.meta.get(SOURCE_META)
        if request.meta.get(HOTLINK_RETRY_META):
            outcome = "ok" if response.status == 200 else "failed"
            self._count(f"hotlink_retry_{outcome}", source)
            return response
        if response.status != 403 or not request.headers.get("Referer"):
            return response
        self._count("hotlink_retried", source)
        headers = request.headers.copy()
        del headers["Referer"]
        return request.replace(headers=headers, meta={**request.meta, HOTLINK_RETRY_META: True}, dont_filter=True)

    def _count(self, key: str, source: str | None) -> None:
        self.stats.inc_value(f"postarc/images/{key}")
        if source:
            self.ledger.inc(source, f"images_{key}")
