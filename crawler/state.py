"""The crawl's state, from the settings: ``state.sqlite``, or Redis when ``REDIS_URL`` is set
(docs/distributed.md), opened once per crawl (``ArchiveState``).

Redis support is an optional extra (``pip install 'postarc[redis]'``): nothing here imports
it unless ``REDIS_URL`` is set.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from archive.catalogue import Catalogue
from crawler.shared import is_shared, worker_id

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from typing_extensions import Self

    from archive.state import CrawlState

def open_state(settings: BaseSettings) -> CrawlState:
    """The crawl state for these settings; the caller closes it."""
    record = Catalogue.of_archive(Path(settings["POSTARC_ARCHIVE_DIR"]))
    if not is_shared(settings):
        return record
    from archive.state_redis import RedisState

    state = RedisState.from_url(settings["REDIS_URL"], settings["POSTARC_REDIS_PREFIX"], record, worker_id())
    state.seed()
    return state


class ArchiveState:
    """Extension: the crawl state, opened once per crawl and shared by every component.

    Opened on first use (by then the command holds the archive's lock) and closed on
    ``engine_stopped``, after every pipeline, middleware and extension is done with it. Like
    Scrapy's ``HttpCacheMiddleware`` storage, components reach it through one object rather
    than each opening a connection (or, in a shared crawl, a Redis client) of their own.
    """

    def __init__(self, settings: BaseSettings) -> None:
        self.settings = settings
        self._state: CrawlState | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        holder = cls(crawler.settings)
        crawler.signals.connect(holder.close, signal=signals.engine_stopped)
        return holder

    @property
    def state(self) -> CrawlState:
        if self._state is None:
            self._state = open_state(self.settings)  # state.sqlite, or Redis (and it) when shared
        return self._state

    def close(self) -> None:
        if self._state is not None:
            self._state.close()
            self._state = None


def state_of(crawler: Crawler) -> ArchiveState:
    """The crawl's ``ArchiveState`` extension, for the components that read or write the state."""
    holder = crawler.get_extension(ArchiveState)
    if holder is None:
        raise NotConfigured("crawler.state.ArchiveState is not in EXTENSIONS")
    return holder
