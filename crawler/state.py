"""Which store holds the crawl's state, from the settings: ``state.sqlite``, or Redis when
``REDIS_URL`` is set (docs/distributed.md).

Redis support is an optional extra (``pip install 'postarc[redis]'``): nothing here imports
it unless ``REDIS_URL`` is set.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from archive.catalogue import Catalogue

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings, Settings
    from typing_extensions import Self

    from archive.state import CrawlState

#: What to install when REDIS_URL is set but scrapy-redis or redis is not.
REDIS_EXTRA = "pip install 'postarc[redis]'"


def worker_id() -> str:
    """This process among the workers of a shared crawl: host and pid, as in its WARC file names."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_shared(settings: BaseSettings) -> bool:
    return bool(settings.get("REDIS_URL"))


def redis_problem(settings: BaseSettings) -> str | None:
    """Why a shared crawl cannot start (the extra not installed, a bad URL, no server), or None."""
    url = settings["REDIS_URL"]
    try:
        import redis
        import scrapy_redis  # noqa: F401
    except ImportError as exc:
        return f"REDIS_URL needs {exc.name}: {REDIS_EXTRA}"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
        client.close()
    except ValueError as exc:
        return f"bad Redis URL {url!r}: {exc}"
    except redis.RedisError as exc:
        return f"cannot reach Redis at {url}: {exc}"
    return None


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


class SharedCrawl:
    """Add-on: with ``REDIS_URL`` set (``postarc crawl --redis URL``, ``-s``, a Scrapyd job's
    ``setting=``), this process is one worker of a crawl shared through Redis.

    It swaps in scrapy-redis's scheduler and duplicate filter (as subclassed in
    ``crawler.distributed``) and the components that keep the workers in step. An add-on
    rather than lines in ``settings.py``, because it must see ``REDIS_URL`` wherever it was set.
    """

    def update_settings(self, settings: Settings) -> None:
        if not is_shared(settings):
            return
        try:
            from crawler import distributed  # needs scrapy-redis and redis
        except ImportError as exc:
            raise RuntimeError(f"REDIS_URL is set but {exc.name} is missing: {REDIS_EXTRA}") from exc
        prefix = settings["POSTARC_REDIS_PREFIX"]
        for name, value in {
            "SCHEDULER": "crawler.distributed.SharedScheduler",
            "SCHEDULER_QUEUE_CLASS": "crawler.distributed.LeaseQueue",
            "SCHEDULER_QUEUE_KEY": f"{prefix}:%(spider)s:requests",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            # The queue outlives any one worker: the others, and the next run, go on with it.
            "SCHEDULER_PERSIST": True,
        }.items():
            settings.set(name, value, priority="addon")
        # After crawler.incremental.SourceState (0): on spider_closed it must run second.
        settings.set_in_component_priority_dict("EXTENSIONS", distributed.Frontier, 100)
        # Closest to the engine: they see what every other middleware let through.
        settings.set_in_component_priority_dict("SPIDER_MIDDLEWARES", distributed.LeaseSpiderMiddleware, 10)
        settings.set_in_component_priority_dict("DOWNLOADER_MIDDLEWARES", distributed.LeaseDownloaderMiddleware, 10)
