"""The ``Frontier`` extension: this worker's part in a shared crawl (see ``crawler.shared``)."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy_redis.connection import get_redis_from_settings
from twisted.internet.task import LoopingCall

from archive.policy import retry_due
from archive.state_redis import Keys
from crawler.items import Post
from crawler.protocol import LEASE_META, WAKE_META
from crawler.shared import is_shared, scripts, worker_id
from crawler.shared.scripts import FrontierKeys
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure
    from typing_extensions import Self

    from crawler.shared.queue import LeaseQueue

logger = logging.getLogger(__name__)

#: How often a worker waiting for others looks at the queue (Scrapy's engine would every 5 s).
WAKE_INTERVAL = 1.0


@dataclass
class _Lease:
    items: int = 0  # posts it yielded that are still in the pipelines
    answered: bool = False  # its callback is done (or it failed, or a retry/redirect replaced it)


class Frontier:
    """Extension: this worker's part in the shared crawl (run, heartbeat, leases, idle, end)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.redis = get_redis_from_settings(settings)
        self.prefix = settings["POSTARC_REDIS_PREFIX"]
        self.worker = worker_id()
        self.alive = Keys(self.prefix)
        self.timeout = settings.getfloat("POSTARC_REDIS_WORKER_TIMEOUT")
        self.retries = settings.getint("POSTARC_RETRY_INCOMPLETE")
        self.keys: FrontierKeys | None = None
        self.run = ""
        self.leases: dict[str, _Lease] = {}
        self.heartbeat = LoopingCall(self.beat)
        self.waiting = False  # idle, kept open because others may still yield work
        self.waker = LoopingCall(self.wake)
        self.queue: LeaseQueue | None = None  # the scheduler's, once it is open
        self._reap = self.redis.register_script(scripts.REAP)
        self._join = self.redis.register_script(scripts.JOIN)
        self._leave = self.redis.register_script(scripts.LEAVE)
        self._busy = self.redis.register_script(scripts.BUSY)
        for handler, signal in ((self.spider_idle, signals.spider_idle),
                                (self.spider_closed, signals.spider_closed),
                                (self.request_scheduled, signals.request_scheduled),
                                (self.item_scraped, signals.item_scraped),
                                (self.item_done, signals.item_dropped),
                                (self.item_error, signals.item_error)):
            crawler.signals.connect(handler, signal=signal)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not is_shared(crawler.settings):
            raise NotConfigured("REDIS_URL is not set")
        return cls(crawler)

    def _args(self, me: str = "") -> list[str]:
        assert self.keys is not None
        return [self.keys.base, self.alive.alive_prefix, me]

    # -- the run ---------------------------------------------------------------------

    def join(self, spider: Spider, queue_key: str) -> str:
        """Join the current run, or start one (the scheduler calls this when it opens)."""
        if self.run:
            return self.run
        self.keys = keys = FrontierKeys(self.prefix, spider.name, queue_key)
        new_run = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        run, requeued = self._join(
            keys=[keys.workers, keys.queue, keys.run, self.alive.alive(self.worker), keys.starting(self.worker)],
            args=[*self._args(self.worker), new_run, int(self.timeout * 1000)])
        self.run = run.decode()
        if requeued:
            logger.warning("put %d requests of stopped workers back in the queue", requeued)
        logger.info("worker %s %s run %s", self.worker, "started" if self.run == new_run else "joined", self.run)
        self.heartbeat.start(self.timeout / 3, now=False)
        self.waker.start(WAKE_INTERVAL, now=False)
        return self.run

    def beat(self) -> None:
        """Say this worker lives; take back the requests of workers that stopped saying so."""
        assert self.keys is not None
        self.redis.set(self.alive.alive(self.worker), "1", px=int(self.timeout * 1000))
        self.redis.sadd(self.keys.workers, self.worker)
        requeued = self._reap(keys=[self.keys.workers, self.keys.queue], args=self._args())
        if requeued:
            logger.warning("put %d requests of a stopped worker back in the queue", requeued)

    def take_feed(self, source: str) -> bool:
        """Whether this worker fetches ``source``'s feed in this run (no other worker took it)."""
        assert self.keys is not None
        return bool(self.redis.sadd(self.keys.feeds(self.run), source))

    def started(self) -> None:
        """The start requests are all out: this worker no longer keeps the others waiting."""
        if self.keys is not None:
            self.redis.delete(self.keys.starting(self.worker))

    def spider_idle(self) -> None:
        if self.keys is None:
            return
        self.beat()
        self.waiting = bool(self._busy(keys=[self.keys.workers, self.keys.queue], args=self._args(self.worker)))
        if self.waiting:
            raise DontCloseSpider("other workers are still busy")

    def wake(self) -> None:
        """While waiting, take a queued request (leased) and give it to the engine."""
        if not self.waiting or self.queue is None:
            return
        request = self.queue.pop()
        if request is not None:
            self.waiting = False
            request.meta[WAKE_META] = True
            self.crawler.engine.crawl(request)

    def spider_closed(self, reason: str) -> None:
        if self.keys is None:
            return
        for loop in (self.heartbeat, self.waker):
            if loop.running:
                loop.stop()
        self._forget_lost_validators()
        ended = self._leave(keys=[self.keys.workers, self.keys.queue, self.keys.run, self.alive.alive(self.worker)],
                            args=self._args(self.worker))
        if ended:
            logger.info("run %s ended (%s)", ended.decode(), reason)
        else:
            logger.info("left run %s (%s); other workers or queued requests remain", self.run, reason)

    def _forget_lost_validators(self) -> None:
        """Drop the feed validators of every source that lost a post anywhere in the run (or
        archived one without its page or an image, ``POSTARC_RETRY_INCOMPLETE``).

        ``SourceState`` (run before this) stored validators for the feeds this worker fetched;
        a post of one of them may have failed on another worker. Without validators the next
        run fetches that feed in full and archives the missing post (as without Redis).
        """
        assert self.keys is not None
        lost = sorted(n.decode() for n in self.redis.smembers(self.keys.lost(self.run)))
        if not lost:
            return
        state = state_of(self.crawler).state
        for name in lost:
            state.save_source_state(name, etag=None, last_modified=None)

    # -- leases ----------------------------------------------------------------------

    def leased(self, lease: str) -> None:
        self.leases[lease] = _Lease()

    def hold(self, lease: str) -> None:
        if lease in self.leases:
            self.leases[lease].items += 1

    def answered(self, lease: str) -> None:
        if lease in self.leases:
            self.leases[lease].answered = True
            self._release(lease)

    def _release(self, lease: str) -> None:
        held = self.leases[lease]
        if held.answered and held.items <= 0:
            del self.leases[lease]
            assert self.keys is not None
            self.redis.hdel(self.keys.leases(self.worker), lease)

    def request_scheduled(self, request: Request) -> None:
        """A retry or redirect carries its original's lease: it is in the queue now, so the
        original is done."""
        if request.meta.get(WAKE_META):
            return
        lease = request.meta.pop(LEASE_META, None)
        if lease:
            self.answered(lease)

    def item_done(self, response: Response | Failure | None) -> None:
        lease = lease_of(response)
        if lease in self.leases:
            self.leases[lease].items -= 1
            self._release(lease)

    def item_scraped(self, item: Any, response: Response | Failure | None) -> None:
        if isinstance(item, Post) and retry_due(item.incomplete_runs, self.retries) and self.keys is not None:
            self.redis.sadd(self.keys.lost(self.run), item.source)  # fetched in full next run
        self.item_done(response)

    def item_error(self, item: Any, response: Response | Failure | None) -> None:
        # Connected after SourceState's handler; recorded before the lease goes, so that no
        # worker can end the run without seeing it.
        if isinstance(item, Post) and self.keys is not None:
            self.redis.sadd(self.keys.lost(self.run), item.source)
        self.item_done(response)


def lease_of(response: Response | Failure | None) -> str | None:
    request = getattr(response, "request", None)
    return request.meta.get(LEASE_META) if request is not None else None


def frontier_of(crawler: Crawler) -> Frontier:
    """The crawl's ``Frontier`` extension, which the lease middlewares work through."""
    frontier = crawler.get_extension(Frontier)
    if frontier is None:
        raise NotConfigured("needs the crawler.shared.frontier.Frontier extension")
    return frontier
