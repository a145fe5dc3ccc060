"""Several worker processes, one crawl: scrapy-redis's shared frontier, and what it leaves out.

Switched on by the ``crawler.state.SharedCrawl`` add-on when ``REDIS_URL`` is set. scrapy-redis
gives the shared request queue and duplicate filter; a crawl that many workers start and stop
on their own also needs to know when it is over, who fetches which feed, and what a dead
worker was doing. Redis keys (the crawl state's are in ``archive.state_redis``), with
``B`` = ``<prefix>:<spider>`` (``postarc:feeds``):

==========================  ======  =========================================================
``B:requests``              zset    the queue (scrapy-redis ``PriorityQueue``)
``B:run``                   string  the current run (absent between runs)
``B:dupefilter:<run>``      set     request fingerprints seen in the run (scrapy-redis)
``B:feeds:<run>``           set     sources whose feed a worker took in the run
``B:lost:<run>``            set     sources with a post lost to an error or archived incomplete
``B:workers``               set     the run's workers
``B:leases:<worker>``       hash    requests a worker took from the queue and has not finished
``B:starting:<worker>``     string  the worker is still reading its start requests
==========================  ======  =========================================================

- **Runs.** A worker that finds no run starts one; workers started while it lasts join it.
  The last worker to leave with the queue empty ends it and drops its duplicate filter, so the
  next run fetches the feeds again. A run left by dead workers is resumed by the next worker.
- **Feeds.** Every worker reads the sources file; a feed request goes out only from the worker
  that adds its source to ``B:feeds:<run>`` first. The source name is claimed, not the URL:
  two sources may share a feed URL (as they may without Redis, where feed requests are not
  filtered either).
- **Leases.** Taking a request from the queue records it in the worker's lease hash in the
  same Redis script, and the lease is dropped once the request is answered and every post it
  yielded has left the pipelines (or a retry/redirect took its place in the queue). A worker
  whose heartbeat (``P:alive:<worker>``) expires is dead: any other worker — or the next one to
  start — puts its leased requests back in the queue.
- **Idle.** A worker with nothing to do stays up while the queue has requests or another live
  worker holds leases or is still starting: what they yield may be for it. Scrapy's engine
  looks at its scheduler again only on its 5-second heartbeat; a waiting worker looks at the
  queue every second, and hands what it finds to the engine (``engine.crawl``), which wakes it.

scrapy-redis 0.9.1 on Scrapy 2.19: its scheduler passes ``spider=`` to the stats collector on
every request (deprecated in 2.19, a warning each time) and keys the duplicate filter per
spider for ever (with ``SCHEDULER_PERSIST``, which several workers need, no run would fetch a
feed twice); ``SharedScheduler`` overrides exactly ``open``, ``enqueue_request`` and
``next_request`` for that and for leases. The rest (queue, serializer, dupefilter) is used as is.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from scrapy.utils.misc import load_object
from scrapy_redis.connection import get_redis_from_settings
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet.task import LoopingCall

from archive.state_redis import Keys
from crawler.incremental import ELSEWHERE, retry_due
from crawler.items import Post
from crawler.state import is_shared, state_of, worker_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from twisted.python.failure import Failure
    from typing_extensions import Self

logger = logging.getLogger(__name__)

#: ``request.meta`` key of the lease a request was taken under.
LEASE_META = "postarc_lease"
#: ``request.meta`` mark of a request the frontier took from the queue to wake the engine.
WAKE_META = "postarc_wake"
#: How often a worker waiting for others looks at the queue (Scrapy's engine would every 5 s).
WAKE_INTERVAL = 1.0

# Put back in the queue the leased requests of dead workers (and of ARGV[3], a worker
# leaving or a new process that has an old one's id), and strike them from the run.
_REQUEUE = """
local function requeue(workers, queue, base, alive, me)
  local n = 0
  for _, w in ipairs(redis.call('SMEMBERS', workers)) do
    if w == me or redis.call('EXISTS', alive .. w) == 0 then
      local leases = base .. ':leases:' .. w
      for _, v in ipairs(redis.call('HVALS', leases)) do
        local at = string.find(v, ' ', 1, true)
        redis.call('ZADD', queue, string.sub(v, 1, at - 1), string.sub(v, at + 1))
        n = n + 1
      end
      redis.call('DEL', leases, base .. ':starting:' .. w)
      redis.call('SREM', workers, w)
    end
  end
  return n
end
"""
# KEYS: workers, queue; ARGV: base, alive prefix, worker to requeue as if dead ('' for none).
_REAP = _REQUEUE + "return requeue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])"
# KEYS: workers, queue, run, alive key, starting key; ARGV: base, alive prefix, me, new run, ttl.
_JOIN = _REQUEUE + """
local n = requeue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[5])
redis.call('SET', KEYS[5], '1')
local run = redis.call('GET', KEYS[3])
if not run then
  run = ARGV[4]
  redis.call('SET', KEYS[3], run)
end
redis.call('SADD', KEYS[1], ARGV[3])
return {run, n}
"""
# KEYS: workers, queue, run, alive key; ARGV: base, alive prefix, me. Returns the run if it ended.
_LEAVE = _REQUEUE + """
requeue(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3])
redis.call('DEL', KEYS[4])
if redis.call('SCARD', KEYS[1]) > 0 or redis.call('ZCARD', KEYS[2]) > 0 then
  return false
end
local run = redis.call('GET', KEYS[3])
if run then
  redis.call('DEL', KEYS[3], ARGV[1] .. ':dupefilter:' .. run, ARGV[1] .. ':feeds:' .. run,
             ARGV[1] .. ':lost:' .. run)
end
return run
"""
# KEYS: workers, queue; ARGV: base, alive prefix, me. 1 if there is or may come work.
_BUSY = """
if redis.call('ZCARD', KEYS[2]) > 0 then
  return 1
end
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if w ~= ARGV[3] and redis.call('EXISTS', ARGV[2] .. w) == 1 and
     (redis.call('HLEN', ARGV[1] .. ':leases:' .. w) > 0 or
      redis.call('EXISTS', ARGV[1] .. ':starting:' .. w) == 1) then
    return 1
  end
end
return 0
"""
# KEYS: queue, lease hash. Take the first request and lease it, in one step: no moment when
# a request is neither queued nor leased (another worker would think the crawl over).
_POP = """
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then
  return false
end
redis.call('ZREM', KEYS[1], top[1])
local lease = redis.sha1hex(top[1])
redis.call('HSET', KEYS[2], lease, top[2] .. ' ' .. top[1])
return {lease, top[1]}
"""


class FrontierKeys:
    def __init__(self, prefix: str, spider: str, queue: str) -> None:
        self.base = f"{prefix}:{spider}"
        self.queue = queue
        self.run = f"{self.base}:run"
        self.workers = f"{self.base}:workers"

    def leases(self, worker: str) -> str:
        return f"{self.base}:leases:{worker}"

    def starting(self, worker: str) -> str:
        return f"{self.base}:starting:{worker}"

    def dupefilter(self, run: str) -> str:
        return f"{self.base}:dupefilter:{run}"

    def feeds(self, run: str) -> str:
        return f"{self.base}:feeds:{run}"

    def lost(self, run: str) -> str:
        return f"{self.base}:lost:{run}"


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
        self.scheduler: SharedScheduler | None = None
        self._reap = self.redis.register_script(_REAP)
        self._join = self.redis.register_script(_JOIN)
        self._leave = self.redis.register_script(_LEAVE)
        self._busy = self.redis.register_script(_BUSY)
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

    def join(self, scheduler: SharedScheduler, spider: Spider, queue_key: str) -> str:
        """Join the current run, or start one (the scheduler calls this when it opens)."""
        if self.run:
            return self.run
        self.scheduler = scheduler
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
        if not self.waiting or self.scheduler is None:
            return
        request = self.scheduler.queue.pop()
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
        lease = _lease_of(response)
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


def _lease_of(response: Response | Failure | None) -> str | None:
    request = getattr(response, "request", None)
    return request.meta.get(LEASE_META) if request is not None else None


class LeaseQueue(PriorityQueue):
    """scrapy-redis's priority queue whose ``pop`` leases what it takes (``Frontier``)."""

    lease_key = ""  # set by SharedScheduler.open

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pop = self.server.register_script(_POP)

    def pop(self, timeout: int = 0) -> Request | None:
        found = self._pop(keys=[self.key, self.lease_key])
        if not found:
            return None
        lease, data = found
        request = self._decode_request(data)
        request.meta[LEASE_META] = lease.decode()
        return request


class SharedScheduler(Scheduler):
    """scrapy-redis's scheduler, per run and with leases (see the module docstring)."""

    frontier: Frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        scheduler = super().from_crawler(crawler)
        frontier = crawler.get_extension(Frontier)
        if frontier is None:
            raise NotConfigured("SharedScheduler needs the crawler.distributed.Frontier extension")
        scheduler.frontier = frontier
        return scheduler

    def open(self, spider: Spider) -> None:
        self.woken: list[Request] = []  # taken by Frontier.wake, handed back through engine.crawl
        run = self.frontier.join(self, spider, self.queue_key % {"spider": spider.name})
        assert self.frontier.keys is not None
        self.df = load_object(self.dupefilter_cls)(
            self.server, key=self.frontier.keys.dupefilter(run), debug=spider.settings.getbool("DUPEFILTER_DEBUG"))
        super().open(spider)
        self.queue.lease_key = self.frontier.keys.leases(self.frontier.worker)

    def has_pending_requests(self) -> bool:
        return bool(self.woken) or super().has_pending_requests()

    def enqueue_request(self, request: Request) -> bool:
        if request.meta.pop(WAKE_META, False):
            self.woken.append(request)  # already taken from the queue, and leased
            return True
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        request = self.woken.pop() if self.woken else self.queue.pop()
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
            self.frontier.leased(request.meta[LEASE_META])
        return request


def frontier_of(crawler: Crawler) -> Frontier:
    """The crawl's ``Frontier`` extension, which the lease middlewares work through."""
    frontier = crawler.get_extension(Frontier)
    if frontier is None:
        raise NotConfigured("needs the crawler.distributed.Frontier extension")
    return frontier


class LeaseSpiderMiddleware:
    """Spider middleware: feed claims at start, and the end of each leased request's output."""

    def __init__(self, crawler: Crawler, frontier: Frontier) -> None:
        self.stats = crawler.stats
        self.frontier = frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, frontier_of(crawler))

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        try:
            async for obj in start:
                source = obj.meta.get("postarc_source") if isinstance(obj, Request) else None
                if source and obj.meta.get("postarc_kind") == "feed":
                    # Claimed or not, the feed is answered by whichever worker pops its request
                    # from the shared queue, and that worker reports it; if this one does, its
                    # callback or errback overwrites this status.
                    self.stats.set_value(f"postarc/source/{source}/status", ELSEWHERE)
                    if not self.frontier.take_feed(source):
                        continue
                yield obj
        finally:
            self.frontier.started()

    async def process_spider_output(self, response: Response, result: AsyncIterator[Any]) -> AsyncIterator[Any]:
        lease = _lease_of(response)
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
        lease = _lease_of(response)
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
