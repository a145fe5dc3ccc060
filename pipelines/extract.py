"""Extract pipeline: the post's body (feed HTML or article page) and its images."""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING

from archive.extract import PageTooLarge, choose_body
from archive.text import visible_text
from archive.versions import body_text
from crawler.items import Post
from crawler.ledger import ledger_of
from crawler.workers import WorkerPool

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)


class ExtractPipeline:
    """Runs ``archive.extract.choose_body`` in the worker pool, off the reactor thread.

    Which body won is kept on the post (``body_source``, also in the catalogue) and counted in
    the stats, overall (``postarc/body/feed|page``) and per source.
    """

    def __init__(self, pool: WorkerPool, crawler: Crawler) -> None:
        self.pool = pool
        self.stats = crawler.stats
        self.ledger = ledger_of(crawler)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pool = crawler.get_extension(WorkerPool)
        assert pool is not None, "crawler.workers.WorkerPool must be in EXTENSIONS"
        return cls(pool, crawler)

    async def process_item(self, item: Post) -> Post:
        base = item.link or item.feed_url
        page = item.page_html if item.page_html is not None else item.page_body
        try:
            body = await self.pool.run(choose_body, item.feed_html, base, page, item.page_url, item.page_encoding)
        except Exception as exc:
            # A page the extractor chokes on must not cost the post its feed body. One too large
            # to extract is expected (one line); anything else is a bug (its traceback).
            if not page:
                raise
            log = logger.warning if isinstance(exc, PageTooLarge) else logger.exception
            log("post %s: extracting the page %s failed (%s: %s); keeping the feed's body",
                item.guid, item.page_url, type(exc).__name__, exc)
            self.ledger.inc(item.source, "page_extract_failed")
            body = await self.pool.run(choose_body, item.feed_html, base)
        item.body_html, item.body_source, item.image_urls = body.html, body.source, body.image_urls
        item.version_text = body.version_text
        item.image_named = body.named
        item.page_canonical, item.sketch = body.canonical, body.sketch
        if body.source == "feed" and not visible_text(body.html) and (text := visible_text(item.feed_html)):
            # Nested too deep (thousands of levels) or otherwise past what the parser reads: the
            # body came out empty though the feed's HTML shows text. That text is kept, plain.
            logger.warning("post %s: its feed HTML could not be parsed (too deep or too large); "
                           "keeping its text without markup", item.guid)
            self.stats.inc_value("postarc/body/unparsed_kept_as_text")
            item.body_html = f"<p>{html.escape(text, quote=False)}</p>"
            item.version_text = body_text(item.body_html)
        item.page_html = item.page_body = None  # the page is in the WARC; don't carry it further
        self.stats.inc_value(f"postarc/body/{body.source}")
        self.ledger.inc(item.source, f"body_{body.source}")
        return item
