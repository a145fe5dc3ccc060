"""Aliases pipeline: each image also recorded under the URL its post's HTML named.

postarc fetches an image behind a CORS or image proxy (``https://proxy/?https://cdn/x.jpg``)
under its unwrapped URL, but the archived page still asks for the proxied one: a ``revisit``
record under that URL, pointing at the image's first capture, lets pywb, ReplayWeb.page and
``postarc replay`` show the page's image from the archive.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crawler.items import Post
from crawler.middlewares import WarcCaptureMiddleware

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self


class AliasRecordsPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.capture: WarcCaptureMiddleware | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def open_spider(self) -> None:
        # None when WARC capture is switched off (WARC_ENABLED = False) or in a rebuild.
        self.capture = self.crawler.get_downloader_middleware(WarcCaptureMiddleware)

    async def process_item(self, item: Post) -> Post:
        if self.capture is None:
            return item
        for url, named in item.image_named.items():
            fetched = item.image_captures.get(url)
            if fetched is not None:
                written, *head = fetched
                await self.capture.write_alias(named, written, tuple(head))
        return item
