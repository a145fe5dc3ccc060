"""A full disk stops the crawl at once, with one clear error, instead of failing every write after.

Every writer (WARC capture, Markdown, images, catalogue) leaves its files whole when a write
fails: WARC records are cut back to the last complete one, Markdown and images are written to a
temp file and renamed, SQLite rolls back. What is left to decide is the crawl's fate: going on
would only turn each following post into an error, so the first write that finds the disk (or
the quota) full closes the spider with the reason ``disk full``; ``postarc crawl`` then exits 5
(interrupted) and the next run, with space again, resumes where this one stopped.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.utils.defer import deferred_from_coro

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure
    from typing_extensions import Self

logger = logging.getLogger(__name__)

#: ``errno`` values of a write that cannot go on: no space, no quota, file size limit.
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
REASON = "disk full"


def disk_full_error(error: BaseException | None) -> BaseException | None:
    """The write refused for want of space behind ``error`` (itself or what caused it), if any."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in FULL:
            return error
        if isinstance(error, sqlite3.OperationalError) and "full" in str(error):  # "database or disk is full"
            return error
        error = error.__cause__ or error.__context__
    return None


class DiskFullGuard:
    """Extension: close the spider (reason ``disk full``) on the first write refused for space.

    Pipelines' failures arrive through ``item_error``; components that write outside the item
    flow (the WARC capture service and middleware, the images store) call ``check`` with their error.
    ``pipelines.diskfull.DiskFullGatePipeline`` then keeps every post still on its way from
    being written. From the engine's start on, a log record carrying a disk-full error (Scrapy's
    "Error processing" of an item, the media pipeline's, a signal handler's) is this one line
    instead of a traceback: the disk filling is the user's to fix, not a bug to report.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stopping = False

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        guard = cls(crawler)
        crawler.signals.connect(guard.item_error, signal=signals.item_error)
        crawler.signals.connect(guard.engine_started, signal=signals.engine_started)
        return guard

    def engine_started(self) -> None:
        # Kept to the end of the process: the WARC files close (and their index is merged) after
        # the engine stops, and that write can meet the full disk too.
        for handler in logging.getLogger().handlers:
            handler.addFilter(self.log_filter)

    def log_filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is logged: not if its exception is a disk-full one (``check`` says it)."""
        error = record.exc_info[1] if record.exc_info else None
        if error is None or disk_full_error(error) is None:
            return True
        if threading.current_thread() is threading.main_thread():  # the reactor's
            self.check(error)
        else:
            from twisted.internet import reactor  # here: at import time it would install Twisted's default reactor

            reactor.callFromThread(self.check, error)
        return False

    def item_error(self, item: Any, response: Any, failure: Failure) -> None:
        self.check(failure.value)

    def check(self, error: BaseException) -> bool:
        """Stop the crawl if ``error`` says the disk is full; returns whether it did."""
        full = disk_full_error(error)
        if full is None:
            return False
        if not self.stopping:
            self.stopping = True
            logger.error("disk full: %s; stopping the crawl (what is written is whole: free some space and "
                         "run again, the next run resumes)", full)
            self.crawler.stats.set_value("postarc/disk_full", str(full))
            engine = self.crawler.engine
            if engine is not None and engine.spider is not None:  # not once closed (the WARC files close after)
                deferred_from_coro(engine.close_spider_async(reason=REASON))
        return True
